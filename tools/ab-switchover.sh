#!/bin/bash
# Switchover latency of two builds, side by side: each build's own receiver and sender (snapshot formats may differ
# between builds, so a pair is never mixed), alternating A/B, medians of launch-to-resume, downtime, its breakdown
# and the receiver's resumeMs.
#   tools/ab-switchover.sh A_KVMPRESYNC B_KVMPRESYNC [PAIRS] [EXTRA run OPTIONS...]
# e.g. tools/ab-switchover.sh /work/old/build/kvmpresync build/kvmpresync 7
# Default: 7 pairs, 256 MiB text guest (AB_WORKLOAD=audio|movie|idle for another), --link-rate 1gbit on both sides,
# launch after 10 s, loopback.
# Keep the machine otherwise quiet while it runs. Result files stay in $AB_WORK (default: a temp dir, removed).
set -euo pipefail
a=$(readlink -f "$1"); b=$(readlink -f "$2"); shift 2
pairs=${1:-7}; shift || true
work=${AB_WORK:-$(mktemp -d)}
[ -n "${AB_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
(umask 077; openssl rand -hex 32 > "$work/psk")
port=$((20000 + RANDOM % 20000))
for ((i = 1; i <= pairs; i++)); do
    for side in A B; do
        bin=$a; [ $side = B ] && bin=$b
        once=(); "$bin" receive --help 2>&1 | grep -q -- '--once' && once=(--once)   # older builds served one session anyway
        port=$((port + 1))
        "$bin" receive "${once[@]}" --listen 127.0.0.1:$port --psk-file "$work/psk" --link-rate 1gbit --run-seconds 1 \
            --json "$work/$side-$i.rx.json" > "$work/rx.log" 2>&1 &
        rx=$!
        sleep 1
        "$bin" run --workload "${AB_WORKLOAD:-text}" --memory 256M --presync-to 127.0.0.1:$port --psk-file "$work/psk" --link-rate 1gbit \
            --launch-after 10 --json "$work/$side-$i.json" "$@" < /dev/null > "$work/tx.log" 2>&1 || { cat "$work/tx.log" "$work/rx.log" >&2; exit 1; }
        wait $rx || { cat "$work/rx.log" >&2; exit 1; }
        python3 - "$work/$side-$i" "$side" "$i" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + ".json")); r = json.load(open(sys.argv[1] + ".rx.json"))
print(f"{sys.argv[2]} run {sys.argv[3]}: launch-to-resume {d['launchToResumeMs']:.1f} ms, downtime {d['downtimeMs']:.1f} ms = "
      + ", ".join(f"{k.removesuffix('Ms')} {v:.1f}" for k, v in (d.get('downtime') or {}).items())
      + f"; receiver resume {r['resumeMs']:.1f} ms; verified {d['verified']}", flush=True)
PY
    done
done
python3 - "$work" "$pairs" "$a" "$b" <<'PY'
import json, statistics, sys
work, pairs = sys.argv[1], int(sys.argv[2])
for side, path in (("A", sys.argv[3]), ("B", sys.argv[4])):
    ds = [json.load(open(f"{work}/{side}-{i}.json")) for i in range(1, pairs + 1)]
    rs = [json.load(open(f"{work}/{side}-{i}.rx.json")) for i in range(1, pairs + 1)]
    med = lambda xs: statistics.median(xs)
    parts = ", ".join(f"{k.removesuffix('Ms')} {med(d['downtime'][k] for d in ds):.1f}" for k in ds[0].get("downtime") or {})
    print(f"median {side} ({pairs} runs, {path}): launch-to-resume {med(d['launchToResumeMs'] for d in ds):.1f} ms, "
          f"downtime {med(d['downtimeMs'] for d in ds):.1f} ms = {parts}; receiver resume {med(r['resumeMs'] for r in rs):.1f} ms")
PY
