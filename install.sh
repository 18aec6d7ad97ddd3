#!/usr/bin/env bash
# Installs slapos-node on a Debian 12 server, from this checkout, idempotently:
#   apt packages, npm ci, native addon and TypeScript build (scripts/install-deps.sh),
#   /usr/local/bin/slapos (a wrapper running this checkout's bin/slapos.js),
#   /etc/opt/slapos/slapos.cfg from slapos.cfg.example if there is none,
#   the systemd units (slapos node install-systemd), enabled with --enable or
#   when systemd is running.
#
# Usage: ./install.sh [--root DIR] [--enable] [--daemon] [--proxy] [--no-deps]
#        ./install.sh --uninstall [--root DIR]
#   --root DIR   install under DIR instead of / (packaging, tests); add --no-deps
#                when DIR is not the machine being set up
#   --enable     enable boot, supervisord and the timers (default when systemd runs and root is /)
#   --no-enable  never enable anything
#   --daemon     enable slapos-node-daemon.service instead of the four timers
#   --proxy      also enable the master (slapos-proxy.service), with TLS: a CA and
#                the master's, the node's (computer_id of the configuration) and an
#                admin user's certificates in /etc/opt/slapos/ssl, the configuration's
#                keys set (slapos proxy init-ca --configure; kept when it already
#                has server_key_file) and root's ~/.slapos/slapos-client.cfg
#   --no-deps    skip apt, npm ci and the builds (they must have been done)
#   --uninstall  disable and remove the units and the wrapper; keeps
#                /etc/opt/slapos, /opt/slapos, the software and instance roots
set -euo pipefail
PROJECT="$(cd "$(dirname "$0")" && pwd)"
ROOT=/
ENABLE=auto
DEPS=1
UNINSTALL=0
PROXY=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --enable) ENABLE=yes; shift ;;
    --no-enable) ENABLE=no; shift ;;
    --daemon) EXTRA+=(--daemon); shift ;;
    --proxy) EXTRA+=(--proxy); PROXY=1; shift ;;
    --no-deps) DEPS=0; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
mkdir -p "$ROOT"
ROOT="$(cd "$ROOT" && pwd)"
if [ "$ROOT" = / ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or give --root DIR)" >&2
  exit 5
fi
R="${ROOT%/}"              # prefix for paths: "" for /
CFG=/etc/opt/slapos/slapos.cfg
WRAPPER="$R/usr/local/bin/slapos"
MARK="# slapos-node wrapper (install.sh)"
NODE="$(command -v node || true)"
[ -n "$NODE" ] || { echo "install.sh: node (>= 20.19) is needed on PATH" >&2; exit 1; }
slapos() { "$NODE" "$PROJECT/bin/slapos.js" "$@"; }

if [ "$UNINSTALL" = 1 ]; then
  [ -f "$PROJECT/dist/src/cli/main.js" ] && slapos node install-systemd --uninstall --root "$ROOT" --cfg "$CFG"
  if [ -f "$WRAPPER" ] && grep -qF "$MARK" "$WRAPPER"; then rm -f "$WRAPPER"; echo "removed $WRAPPER"; fi
  echo "install.sh: uninstalled; kept $R/etc/opt/slapos and the node's data"
  exit 0
fi

if [ "$DEPS" = 1 ]; then "$PROJECT/scripts/install-deps.sh"; fi
[ -f "$PROJECT/dist/src/cli/main.js" ] || { echo "install.sh: $PROJECT is not built (run without --no-deps)" >&2; exit 1; }

# The wrapper: rewritten only when it changes (the project or node moved).
wrapper_text="#!/bin/sh
$MARK; runs $PROJECT
exec $NODE $PROJECT/bin/slapos.js \"\$@\""
mkdir -p "$(dirname "$WRAPPER")"
if [ ! -f "$WRAPPER" ] || [ "$(cat "$WRAPPER")" != "$wrapper_text" ]; then
  printf '%s\n' "$wrapper_text" > "$WRAPPER.tmp" && chmod 755 "$WRAPPER.tmp" && mv -f "$WRAPPER.tmp" "$WRAPPER"
  echo "installed $WRAPPER"
fi

# The configuration: never overwritten.
mkdir -p "$R/etc/opt/slapos"
if [ ! -e "$R$CFG" ]; then
  install -m 0640 "$PROJECT/slapos.cfg.example" "$R$CFG"
  echo "installed $R$CFG from slapos.cfg.example: set computer_id, master_url and [slapformat] before enabling"
fi

# The master with TLS (client certificates; the node writes each partition's
# certificate and key for its instance): idempotent, an already configured
# file is left as it is.
if [ "$PROXY" = 1 ]; then
  slapos proxy init-ca --dir "$R/etc/opt/slapos/ssl" --configure "$R$CFG" --client-configuration "$R/root/.slapos/slapos-client.cfg"
fi

if [ "$ENABLE" = auto ]; then
  if [ "$ROOT" = / ] && [ -d /run/systemd/system ]; then ENABLE=yes; else ENABLE=no; fi
fi
args=(node install-systemd --root "$ROOT" --cfg "$CFG")
[ "$ENABLE" = yes ] && args+=(--enable)
slapos "${args[@]}" "${EXTRA[@]}"
[ "$ENABLE" = yes ] || echo "install.sh: units installed, not enabled (--enable to enable them)"
echo "install.sh: done; check the configuration with: slapos node config"
