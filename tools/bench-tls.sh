#!/bin/bash
# Plain vs TLS, side by side: the same CLI migration run alternately without and with mutual TLS, medians of each.
#   tools/bench-tls.sh [RUNS] [EXTRA run OPTIONS...]     (default 5 runs each; needs build/kvmpresync: make cli)
# Default: 256 MiB text guest, --link-rate 1gbit on both sides, launch after 10 s of presync, loopback.
# Prints one line per run and the medians of launch-to-resume and downtime (ms) per mode.
set -euo pipefail
runs=${1:-5}; shift || true
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/kvmpresync
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/tools/make-test-certs.sh" "$work/tls" >/dev/null
(umask 077; openssl rand -hex 32 > "$work/psk")
port=$((20000 + RANDOM % 20000))
for ((i = 1; i <= runs; i++)); do
    for mode in plain tls; do
        port=$((port + 1))
        rx_tls=(); tx_tls=()
        if [ "$mode" = tls ]; then
            rx_tls=(--tls-cert "$work/tls/receiver.crt" --tls-key "$work/tls/receiver.key" --tls-ca "$work/tls/ca.crt")
            tx_tls=(--tls-cert "$work/tls/sender.crt" --tls-key "$work/tls/sender.key" --tls-ca "$work/tls/ca.crt")
        fi
        "$bin" receive --once --listen 127.0.0.1:$port --psk-file "$work/psk" --link-rate 1gbit --run-seconds 1 "${rx_tls[@]}" > "$work/rx.log" 2>&1 &
        rx=$!
        sleep 1
        "$bin" run --workload text --memory 256M --presync-to 127.0.0.1:$port --psk-file "$work/psk" --link-rate 1gbit \
            --launch-after 10 --json "$work/$mode-$i.json" "${tx_tls[@]}" "$@" < /dev/null > "$work/tx.log" 2>&1 || { cat "$work/tx.log" "$work/rx.log" >&2; exit 1; }
        wait $rx || { cat "$work/rx.log" >&2; exit 1; }
        python3 - "$work/$mode-$i.json" "$mode" "$i" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:5} run {sys.argv[3]}: launch-to-resume {d['launchToResumeMs']:.1f} ms, downtime {d['downtimeMs']:.1f} ms, "
      f"sync {d['syncBytes']/2**20:.1f} MiB, launch {d['launchBytes']/2**10:.1f} KiB, verified {d['verified']}; downtime = "
      + ", ".join(f"{k.removesuffix('Ms')} {v:.1f}" for k, v in (d.get('downtime') or {}).items()) + " ms")
PY
    done
done
python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
for mode in ("plain", "tls"):
    ds = [json.load(open(f"{work}/{mode}-{i}.json")) for i in range(1, runs + 1)]
    l2r = statistics.median(d["launchToResumeMs"] for d in ds); dt = statistics.median(d["downtimeMs"] for d in ds)
    print(f"median {mode:5} ({runs} runs): launch-to-resume {l2r:.1f} ms, downtime {dt:.1f} ms")
PY
