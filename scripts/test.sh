#!/usr/bin/env bash
# The test command: installs what the tests need (see install-deps.sh), runs
# the whole ava suite as TAP, and ends with a plain "N passed, N failed" line.
# Integration tests need root (namespaces, users, taps, cgroups).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

out="$(mktemp)"
# What the tests create is recorded here (test/helpers/registry.ts), so that
# the clean-up below removes that and nothing else on the machine.
SLAPOS_TEST_REGISTRY="$(mktemp -t slapos-test-registry.XXXXXX)"
export SLAPOS_TEST_REGISTRY
trap 'rm -f "$out" "$SLAPOS_TEST_REGISTRY"' EXIT
npx ava --tap "$@" | awk -f scripts/tap-totals.awk | tee "$out"
status=${PIPESTATUS[0]}

# Tests clean up in their teardown; this catches what a killed test could not.
bash scripts/clean-test-leftovers.sh "$SLAPOS_TEST_REGISTRY"

count() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$out" | tail -n 1; }
passed=$(count pass); failed=$(count fail); skipped=$(count skip)
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
# A run that executed no test is a failure.
if [ "${passed:-0}" -eq 0 ]; then exit 1; fi
exit "$status"
