#!/usr/bin/env bash
# Runs the xunit v3 test executable and ends with one plain line "N passed, N failed, N skipped".
# Exit status: non-zero when any test failed or the runner itself failed.
set -uo pipefail
exe="$1"; shift
log=$(mktemp)
"$exe" -noColor "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E 'Total: [0-9]+, Errors: [0-9]+, Failed: [0-9]+, Skipped: [0-9]+' "$log" | tail -n 1)
rm -f "$log"
if [ -z "$summary" ]; then
  echo "run-tests: the test runner printed no summary (exit $rc)" >&2
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
total=$(sed -E 's/.*Total: ([0-9]+).*/\1/' <<<"$summary")
errors=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$summary")
failed=$(sed -E 's/.*Failed: ([0-9]+).*/\1/' <<<"$summary")
skipped=$(sed -E 's/.*Skipped: ([0-9]+).*/\1/' <<<"$summary")
notrun=$(sed -E 's/.*Not Run: ([0-9]+).*/\1/' <<<"$summary")
failed=$((failed + errors))
passed=$((total - failed - skipped - notrun + errors))
[ "$passed" -lt 0 ] && passed=0
echo "$passed passed, $failed failed, $skipped skipped"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
