#!/usr/bin/env bash
# Safety net after the test suite: tests remove what they create in their own
# teardown, but a test process killed by a timeout cannot. This removes any
# object with the tests' reserved prefixes ("slt" for namespaces, users and
# groups; "slapos-test-" / "slt" for cgroup parents) and says what it found.
set -uo pipefail
found=0
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^slt' || true); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns" && echo "clean: removed network namespace $ns" && found=1
done
# supervisord started by a test for a node under /tmp (a production node's
# configuration is under its instance_root, never /tmp).
for pid in $( { pgrep -x supervisord; pgrep -f 'supervisord -c /tmp/'; } 2>/dev/null | sort -u); do
  if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- '-c /tmp/'; then
    kill "$pid" 2>/dev/null && echo "clean: stopped supervisord $pid" && found=1
  fi
done
# supervisord of a node made by test/instance (root, so not caught by the user loop below).
for pidfile in /tmp/slapos-format-*/inst/var/run/supervisord.pid; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if grep -q supervisord "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" && echo "clean: stopped supervisord $pid ($pidfile)" && found=1
  fi
done
for user in $(awk -F: '$1 ~ /^slt/ {print $1}' /etc/passwd); do
  pkill -9 -u "$user" 2>/dev/null
  userdel "$user" 2>/dev/null && echo "clean: removed user $user" && found=1
done
for group in $(awk -F: '$1 ~ /^slt/ {print $1}' /etc/group); do
  groupdel "$group" 2>/dev/null && echo "clean: removed group $group" && found=1
done
for dir in /sys/fs/cgroup/*/slapos-test-* /sys/fs/cgroup/*/slt* /sys/fs/cgroup/slapos-test-* /sys/fs/cgroup/slt*; do
  [ -d "$dir" ] || continue
  # children first, then the parent
  find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
  [ -d "$dir" ] || { echo "clean: removed cgroup $dir"; found=1; }
done
exit 0
