#!/usr/bin/env bash
# Installs what slapos-node needs on a Debian 12 machine, idempotently:
# system packages (apt), the npm dependencies, the native addon and the
# TypeScript build. Run as root. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  iproute2          # tests create network namespaces, veth and bridges with `ip netns`
  passwd            # useradd/pwck for tests; the node edits the user database itself
  util-linux        # setpriv: tests run commands as partition users
  python3 make g++  # node-gyp builds native/*.cc and better-sqlite3
  supervisor        # the node's process manager
  python3-zc.buildout  # builds software releases and instances
  openssl           # the master's CA: slapos proxy init-ca and per-partition certificates
  postgresql        # master tests start a throw-away PostgreSQL 15 cluster (/usr/lib/postgresql/15/bin)
  chromium          # master tests load the status page in headless Chromium
  curl              # the instance end-to-end test fetches the example service inside a namespace
  libxml2-utils     # xmllint: tests check our TioXML validation against the reconstructed XSDs
  systemd           # systemctl and systemd-analyze: install-systemd, unit tests (harmless without systemd as init)
  time              # /usr/bin/time: the fleet benchmark reads the peak RSS of each node loop
  debootstrap       # the package test installs the .deb into a fresh Debian 12 root (test/package/deb.test.ts)
  nftables          # nft: the managers (portredir, whitelistfirewall) and [firewall] rules, one transaction per change
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages must not start their system services (PostgreSQL's main cluster,
  # supervisor's daemon): tests start the servers they need themselves.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi

# node-gyp cannot download Node's headers here: point it at the local install.
export npm_config_nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"

# npm ci when node_modules is absent or older than the lock file; it also runs
# the root "install" script (node-gyp rebuild of native/*.cc).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund
fi
[ -f build/Release/slapos_native.node ] && [ -f build/Release/slapos-launch ] && [ -f build/Release/slapos-buildout-client ] || npm run --silent build:native
npm run --silent build
