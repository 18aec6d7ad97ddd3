# Passes ava's TAP through and makes its end agree with the test lines above
# it. ava's plan ("1..N") and "# pass/# fail" leave out crashes, failed hooks
# and files that stopped early, although each of those printed an "ok"/"not
# ok" line; here every such line counts once, and the summary that
# scripts/test.sh prints is the same numbers.
/^(not )?ok [0-9]+/ {
  tests++
  if ($0 ~ /^not ok/) failed++
  else if ($0 ~ / # SKIP$/) skipped++
  else if ($0 ~ / # TODO$/) failed++
  else passed++
  print; fflush(); next
}
/^1\.\.[0-9]+$/ || /^# (tests|pass|skip|fail) [0-9]+$/ { next }
{ print; fflush() }
END {
  printf "\n1..%d\n# tests %d\n# pass %d\n# skip %d\n# fail %d\n", tests, tests, passed + 0, skipped + 0, failed + 0
}
