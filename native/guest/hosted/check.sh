#!/usr/bin/env bash
# check.sh — hosted self-checks of the workload guest (development tool; no KVM involved).
# Usage: check.sh path/to/kp-hosted      Exit 0 only if every check passes (~95 s).
# Rates are checked within 5 % (text: mean in-burst keystroke interval within 10 %, a statistic
# over ~40 pseudo-random intervals of a fixed seed). Heartbeats must report 0 errors, except in
# the corruption checks, which must detect the flipped byte.
set -u
BIN=${1:?usage: check.sh path/to/kp-hosted}
pass=0 fail=0
run() {
    local name=$1; shift
    local out
    out=$("$BIN" "$@" 2>&1); local rc=$?
    echo "== $name: $BIN $*"
    echo "$out" | sed 's/^/   /'
    if [ $rc -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "   ^^^ FAILED"; fi
}
run idle        --workload idle  --seconds 10
run text        --workload text  --seconds 10 --expect-key-ms 200 --tolerance-pct 10
run audio       --workload audio --seconds 10 --expect-rate 50
run movie       --workload movie --seconds 10 --expect-rate 25
run database    --workload database --seconds 10 --expect-rate 2200
run pattern     --workload pattern --fill-kib 0 --pattern-pages 1000 --seconds 3
run pattern-0   --workload pattern --fill-kib 0 --seconds 2
run corrupt-newest-text  --workload text  --seconds 4 --corrupt newest --corrupt-after-ms 1500 --expect-errors
run corrupt-newest-movie --workload movie --seconds 3 --corrupt newest --corrupt-after-ms 1000 --expect-errors
run corrupt-newest-database --workload database --seconds 3 --corrupt newest --corrupt-after-ms 1000 --expect-errors
run corrupt-fill --workload idle --fill-kib 256 --seconds 10 --corrupt fill --corrupt-after-ms 500 --expect-errors
# compressible content (docs/WORKLOADS.md, "Page content"): the same self-check, the same detection
run movie-compressible   --workload movie --seconds 3 --expect-rate 25 --content-lz4-permille 248
run corrupt-newest-movie-compressible --workload movie --seconds 3 --corrupt newest --corrupt-after-ms 1000 --expect-errors --content-lz4-permille 248
run corrupt-fill-compressible --workload idle --fill-kib 256 --seconds 3 --corrupt fill --corrupt-after-ms 500 --expect-errors --content-lz4-permille 161
run bad-content --workload idle --content-lz4-permille 1001 --expect-exit 1
run bad-magic   --workload idle --magic 5 --expect-exit 1
run bad-heap    --workload idle --heap-start 0x300000 --expect-exit 1
run bad-fill    --workload idle --fill-kib 300000 --expect-exit 1
run bad-kind    --workload 9 --expect-exit 2
run no-memory   --workload movie --mem-mib 64 --fill-kib 60000 --expect-exit 3
echo "guest hosted checks: $pass passed, $fail failed"
[ $fail -eq 0 ]
