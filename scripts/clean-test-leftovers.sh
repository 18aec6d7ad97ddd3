#!/usr/bin/env bash
# Safety net after the test suite: tests remove what they create in their own
# teardown, but a test process killed by a timeout cannot. This removes what
# the test run recorded in its registry (test/helpers/registry.ts; the file is
# $1 or $SLAPOS_TEST_REGISTRY, set by scripts/test.sh), and nothing else: a
# node or another test run on the same machine is left alone.
#   prefix P   namespaces, users, groups and top-level cgroups named P…
#   netns/user/group N   that exact name
#   dir D      the directory; servers whose pid file (supervisord.pid,
#              postmaster.pid) is in it are stopped first
set -uo pipefail
registry="${1:-${SLAPOS_TEST_REGISTRY:-}}"
if [ -z "$registry" ] || [ ! -f "$registry" ]; then
  echo "clean: no test registry given; nothing to do"
  exit 0
fi

# Values as recorded; a line that does not look like a test-made name is ignored.
entries() { awk -v k="$1" '$1 == k && NF == 2 {print $2}' "$registry" | sort -u; }
valid_name() { [[ "$1" =~ ^[a-z][a-z0-9-]{2,31}$ ]]; }

prefixes=(); for p in $(entries prefix); do valid_name "$p" && prefixes+=("$p"); done
matches_prefix() { local n="$1" p; for p in "${prefixes[@]}"; do [[ "$n" == "$p"* ]] && return 0; done; return 1; }

# 1. Servers started in recorded directories: the pid file's process must still be that server.
for dir in $(entries dir); do
  [[ "$dir" == /?*/?* ]] && [ -d "$dir" ] && [ ! -L "$dir" ] || continue
  while IFS= read -r pidfile; do
    pid=$(head -n 1 "$pidfile" 2>/dev/null | tr -dc 0-9)
    [ -n "$pid" ] && [ "$pid" -gt 1 ] || continue
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -Eq 'supervisord|postgres'; then
      kill "$pid" 2>/dev/null && echo "clean: stopped pid $pid ($pidfile)"
    fi
  done < <(find "$dir" -xdev -maxdepth 6 -type f \( -name supervisord.pid -o -name postmaster.pid \) 2>/dev/null)
done

# 2. Network namespaces (and what still runs in them).
namespaces=$(ip netns list 2>/dev/null | awk '{print $1}')
for ns in $namespaces; do
  if entries netns | grep -qxF "$ns" || matches_prefix "$ns"; then
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" && echo "clean: removed network namespace $ns"
  fi
done

# 3. Users (their processes first) and groups.
users=$( { entries user; awk -F: '{print $1}' /etc/passwd | while read -r u; do matches_prefix "$u" && echo "$u"; done; } | sort -u)
for user in $users; do
  getent passwd "$user" >/dev/null || continue
  pkill -9 -u "$user" 2>/dev/null
  userdel "$user" 2>/dev/null && echo "clean: removed user $user"
done
groups=$( { entries group; awk -F: '{print $1}' /etc/group | while read -r g; do matches_prefix "$g" && echo "$g"; done; } | sort -u)
for group in $groups; do
  getent group "$group" >/dev/null || continue
  groupdel "$group" 2>/dev/null && echo "clean: removed group $group"
done

# 4. Top-level cgroups named by a recorded prefix, on every cgroup mount (children first).
mounts=$(awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts | sort -u)
for mount in $mounts; do
  for dir in "$mount"/*/; do
    dir="${dir%/}"
    [ -d "$dir" ] && matches_prefix "$(basename "$dir")" || continue
    find "$dir" -depth -type d -exec sh -c 'for p in $(cat "$1/cgroup.procs" 2>/dev/null); do kill -9 "$p"; done; rmdir "$1"' _ {} \; 2>/dev/null
    [ -d "$dir" ] || echo "clean: removed cgroup $dir"
  done
done

# 5. Recorded temporary directories.
for dir in $(entries dir); do
  [[ "$dir" == /?*/?* ]] && [ -d "$dir" ] && [ ! -L "$dir" ] || continue
  rm -rf --one-file-system "$dir" && echo "clean: removed $dir"
done
exit 0
