#!/usr/bin/env bash
# End-to-end demo of slapos-node on this machine, as root, after
# `bash scripts/install-deps.sh`. Everything happens inside a network
# namespace made for the demo (a bridge with fd00:5a:: IPv6 and 10.77.0.0/24
# IPv4; no traffic leaves it):
#   1. our master (SQLite) on the namespace's loopback, with TLS as install.sh
#      --proxy sets it up (client certificates; the node writes each
#      partition's certificate for its instance),
#   2. `slapos node format` of a node with 3 partitions,
#   3. supply of the example release (examples/hello-http) and its build,
#   4. two instance requests, `slapos node instance`,
#   5. the services answering on their partitions' addresses, and their
#      connection parameters as the master has them (`slapos info`).
# Every node and master command writes its JSON log lines to one file
# (--log-file; $SLAPOS_DEMO_LOG, default $DIR/slapos.jsonl): the end shows jq
# filters on it by partition and by computer (docs/operations.md, "Logs").
# --keep leaves it all running (and prints how to look and how to clean up);
# otherwise everything is removed at the end, also on failure: namespace,
# users and groups named slapdemo*, directories, supervisord, master.
# `scripts/demo.sh --clean` removes what an earlier --keep left.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

NS=slapdemo
PREFIX=slapdemo
DIR=${SLAPOS_DEMO_DIR:-/srv/slapos-demo}
PORT=5000
CFG=$DIR/slapos.cfg
# Outside $DIR, the log outlives the clean-up.
LOG=${SLAPOS_DEMO_LOG:-$DIR/slapos.jsonl}
KEEP=false
case "${1:-}" in
  --keep) KEEP=true ;;
  --clean) CLEAN_ONLY=true ;;
  '') ;;
  *) echo "usage: $0 [--keep | --clean]" >&2; exit 1 ;;
esac

[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 5; }
NODE=$(command -v node)
SLAPOS=("$NODE" "$REPO/bin/slapos.js" --log-file "$LOG")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Runs a command in the namespace, with a /sys of the namespace (tap ownership)
# but the host's /sys/fs/cgroup (which `ip netns exec` would hide): the one way
# into a namespace, the tests' too (inNetnsCommand in test/helpers/format.ts,
# supervisord included).
in_ns() {
  local hold
  hold=$(mktemp -d /tmp/slapdemo-cg.XXXXXX)
  nsenter --net="/run/netns/$NS" unshare -m --propagation private sh -c \
    'mount --rbind /sys/fs/cgroup "$0" && mount -t sysfs sysfs /sys && mount --rbind "$0" /sys/fs/cgroup && umount -l "$0" && exec "$@"' \
    "$hold" "$@"
  local status=$?
  rmdir "$hold" 2>/dev/null || true
  return $status
}

cleanup() {
  say "cleaning up"
  local pidfile=$DIR/inst/var/run/supervisord.pid
  if [ -s "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -s "$DIR/master.pid" ]; then
    local master
    master=$(cat "$DIR/master.pid")
    kill "$master" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
  fi
  for user in $(cut -d: -f1 /etc/passwd | grep "^$PREFIX" || true); do userdel "$user" 2>/dev/null || true; done
  for group in $(cut -d: -f1 /etc/group | grep "^$PREFIX" || true); do groupdel "$group" 2>/dev/null || true; done
  for parent in /sys/fs/cgroup/*/"$PREFIX" /sys/fs/cgroup/"$PREFIX"; do
    [ -d "$parent" ] || continue
    find "$parent" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$parent" 2>/dev/null || true
  done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
  echo "removed: namespace $NS, users/groups $PREFIX*, $DIR, supervisord, master"
}

if [ "${CLEAN_ONLY:-false}" = true ]; then cleanup; exit 0; fi
if ip netns list | grep -qw "$NS" || [ -e "$DIR" ]; then
  echo "demo: a previous demo is still there; remove it with $0 --clean" >&2
  exit 1
fi
[ -f "$REPO/dist/src/cli/main.js" ] || npm run build >/dev/null
$KEEP || trap cleanup EXIT

say "network namespace $NS: bridge slapbr0 with fd00:5a::1/64 and 10.77.0.1/24"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add slapbr0 type bridge
ip -n "$NS" link add port0 type veth peer name port0p
ip -n "$NS" link set port0 master slapbr0
ip -n "$NS" link set port0 up
ip -n "$NS" link set port0p up
ip -n "$NS" link set slapbr0 up
ip -n "$NS" addr add fd00:5a::1/64 dev slapbr0 nodad
ip -n "$NS" addr add 10.77.0.1/24 dev slapbr0

mkdir -p "$DIR"
chmod 755 "$DIR"
cat > "$CFG" <<EOF
[slapos]
computer_id = COMP-DEMO
master_url = http://127.0.0.1:$PORT/
software_root = $DIR/soft
instance_root = $DIR/inst
certificate_repository_path = $DIR/certs
pidfile_software = $DIR/slapgrid-sr.pid
pidfile_instance = $DIR/slapgrid-cp.pid
instance_min_free_space = 10M
software_min_free_space = 10M

[slapformat]
partition_amount = 3
interface_name = slapbr0
ipv4_local_network = 10.77.0.0/24
create_tap = true
tap_base_name = ${PREFIX}t
partition_base_name = slappart
user_base_name = ${PREFIX}u
software_user = ${PREFIX}s
computer_xml = $DIR/slapos.xml
computer_json = $DIR/slapos.json
cgroup_parent = $PREFIX

[slapproxy]
host = 127.0.0.1
port = $PORT
database_uri = $DIR/proxy.db
computer_id = COMP-DEMO
EOF
mkdir -p "$DIR/certs"
# TLS by default, as install.sh --proxy: CA, the master's, the node's and admin's certificates.
"${SLAPOS[@]}" proxy init-ca --dir "$DIR/ssl" --configure "$CFG" --client-configuration "$DIR/client.cfg"
CLIENT=$DIR/client.cfg

say "master on https://127.0.0.1:$PORT inside $NS"
# The shell records its own pid, then becomes the master: the pid file names the master itself.
in_ns sh -c 'echo $$ > "$0"; exec "$@"' "$DIR/master.pid" "${SLAPOS[@]}" proxy start --cfg "$CFG" >"$DIR/master.log" 2>&1 &
for _ in $(seq 50); do
  in_ns "${SLAPOS[@]}" list --cfg "$CLIENT" >/dev/null 2>&1 && break
  sleep 0.2
done

say "slapos node format (3 partitions)"
in_ns "${SLAPOS[@]}" node format --now --cfg "$CFG"

say "slapos supply + slapos node software (examples/hello-http)"
RELEASE=$REPO/examples/hello-http/software.cfg
in_ns "${SLAPOS[@]}" supply "$RELEASE" COMP-DEMO --cfg "$CLIENT"
in_ns "${SLAPOS[@]}" node software --now --cfg "$CFG"

say "slapos request: two instances"
in_ns "${SLAPOS[@]}" request hello-one "$RELEASE" --cfg "$CLIENT" || true
in_ns "${SLAPOS[@]}" request hello-two "$RELEASE" --cfg "$CLIENT" || true

say "slapos node instance (first pass deploys, second is a no-op)"
in_ns "${SLAPOS[@]}" node instance --now --cfg "$CFG"
in_ns "${SLAPOS[@]}" node instance --now --cfg "$CFG"

say "each instance's certificate, written by the node for its partition user"
ls -l "$DIR/certs"

say "slapos node status"
"${SLAPOS[@]}" node status --cfg "$CFG"

say "the services, on their partitions' addresses"
for title in hello-one hello-two; do
  info=$(in_ns "${SLAPOS[@]}" info "$title" --json --cfg "$CLIENT")
  echo "slapos info $title:"
  echo "$info" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const i=JSON.parse(s);console.log(JSON.stringify(i.connectionParameters??i.connection_parameters??i,null,2))})'
  for url in $(echo "$info" | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const i=JSON.parse(s);const c=i.connectionParameters??i.connection_parameters??{};console.log([c.url,c["url-ipv4"]].filter(Boolean).join(" "))})'); do
    printf '  GET %-40s → ' "$url"
    in_ns "$NODE" -e "fetch(process.argv[1]).then(r=>r.text()).then(t=>console.log(t.trim()),e=>{console.log('FAILED',e.cause?.message??e.message);process.exitCode=1})" "$url"
  done
done

say "their log lines (--log-file $LOG), by partition and by computer"
if command -v jq >/dev/null; then
  partition=$(jq -r 'select(.msg == "request" and .partition != null) | .partition' "$LOG" | head -n 1 || true)
  echo "jq -c 'select(.partition == \"$partition\") | {time, msg, code}' $LOG | head -n 5"
  jq -c --arg p "$partition" 'select(.partition == $p) | {time, msg, code}' "$LOG" | head -n 5 || true
  echo "jq -r 'select(.computer == \"COMP-DEMO\" and .msg == \"request\") | \"\(.route) \(.status)\"' $LOG | sort | uniq -c"
  jq -r 'select(.computer == "COMP-DEMO" and .msg == "request") | "\(.route) \(.status)"' "$LOG" | sort | uniq -c
else
  echo "(jq is not installed: apt-get install jq, then see docs/operations.md, \"Logs\")"
fi

if $KEEP; then
  say "left running (--keep)"
  echo "look:    ip netns exec $NS ${SLAPOS[*]} node status --cfg $CFG"
  echo "usage:   ip netns exec $NS ${SLAPOS[*]} node collect --json --cfg $CFG   # cgroup counters per partition (found under ip netns exec too)"
  echo "request: ip netns exec $NS ${SLAPOS[*]} request TITLE $RELEASE --cfg $CLIENT"
  echo "clean:   $0 --clean"
fi
