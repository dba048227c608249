#!/usr/bin/env bash
# kvm-check.sh — runs workload.bin on /dev/kvm (kp-kvmrun, CPL 3) for each workload; exit 0 if all pass.
# Usage: kvm-check.sh path/to/kp-kvmrun path/to/workload.bin     (~45 s; needs read-write /dev/kvm)
set -u
RUN=${1:?usage: kvm-check.sh kp-kvmrun workload.bin}
BIN=${2:?usage: kvm-check.sh kp-kvmrun workload.bin}
if [ ! -w /dev/kvm ]; then echo "kvm-check: /dev/kvm is not accessible: nothing checked" >&2; exit 1; fi
pass=0 fail=0
run() {
    local name=$1; shift
    echo "== $name: $RUN $BIN $*"
    if "$RUN" "$BIN" "$@" 2>&1 | sed 's/^/   /'; [ "${PIPESTATUS[0]}" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "   ^^^ FAILED"; fi
}
run idle    --workload 0 --seconds 8
run text    --workload 1 --seconds 8
run audio   --workload 2 --seconds 8 --expect-rate 50
run movie   --workload 3 --seconds 8 --expect-rate 25
run pattern --workload 4 --fill-mib 0 --pattern-pages 20 --seconds 2 --show-pages
echo "guest kvm checks: $pass passed, $fail failed"
[ $fail -eq 0 ]
