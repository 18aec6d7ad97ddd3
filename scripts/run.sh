#!/usr/bin/env bash
# The main command of the README: installs what is missing, then runs slapos.
# Arguments are passed to slapos (default: --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >&2
if [ "$#" -eq 0 ]; then set -- --help; fi
exec node bin/slapos.js "$@"
