#!/usr/bin/env bash
# Side by side: `run --presync-to` with --compression off and with --compression auto (or $COMPRESSION), alternating
# (off, auto, off, auto, …) so load drift hits both alike, over loopback at --link-rate 1gbit (both sides' defaults).
# For each workload prints every run and the medians of launch-to-resume, downtime, bytes before/after launch and the
# payload bytes before/after compression. Run it under the benchmark lock:
#   flock /work/bench.lock tools/ab-compression.sh "text audio movie" 3 8
# Usage: tools/ab-compression.sh "WORKLOADS" [RUNS=3] [PRESYNC_SECONDS=8] [extra 'run' options...]
set -euo pipefail
workloads=${1:?usage: tools/ab-compression.sh "WORKLOADS" [RUNS] [PRESYNC_SECONDS] [run options...]}
runs=${2:-3}
seconds=${3:-8}
shift $(( $# < 3 ? $# : 3 ))
other=${COMPRESSION:-auto}
cli=${KVMPRESYNC:-build/kvmpresync}
[ -x "$cli" ] || { echo "ab-compression: $cli not found; run 'make cli' first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 32 /dev/urandom > "$work/psk"
chmod 600 "$work/psk"
one() { # WORKLOAD MODE I -> appends a JSON summary line to $work/WORKLOAD-MODE.jsonl
  local w=$1 mode=$2 i=$3 port=$((17000 + RANDOM % 20000))
  shift 3
  timeout 120 "$cli" receive --once --listen "127.0.0.1:$port" --psk-file "$work/psk" --run-seconds 2 > "$work/rx.log" 2>&1 &
  local rx=$!
  sleep 1
  timeout 120 "$cli" run --workload "$w" --memory 256M --presync-to "127.0.0.1:$port" --psk-file "$work/psk" --launch-after "$seconds" \
      --compression "$mode" --json "$work/r.json" "$@" < /dev/null > "$work/run.log" 2>&1 || true
  wait "$rx" || true
  if ! grep -q '^migrated:' "$work/run.log"; then echo "$w $mode run $i: FAILED"; tail -3 "$work/run.log"; return; fi
  python3 - "$work/r.json" "$w" "$mode" "$i" >> "$work/$w-$mode.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); c = r.get("compression") or {}
print(json.dumps({"l2r": r["launchToResumeMs"], "down": r["downtimeMs"], "sync": r["syncBytes"], "launch": r["launchBytes"],
                  "payload": c.get("payloadBytes", 0), "wire": c.get("payloadWireBytes", 0), "raw": c.get("rawBatches", 0),
                  "lz4": c.get("lz4Batches", 0), "zstd": c.get("zstdBatches", 0), "ms": c.get("compressMs", 0)}))
PY
  tail -1 "$work/$w-$mode.jsonl" | sed "s/^/$w $mode run $i: /"
}
for w in $workloads; do
  for i in $(seq 1 "$runs"); do
    if (( i % 2 )); then one "$w" off "$i" "$@"; one "$w" "$other" "$i" "$@"; else one "$w" "$other" "$i" "$@"; one "$w" off "$i" "$@"; fi
  done
done
python3 - "$work" $workloads "$other" <<'PY'
import json, statistics, sys, os
work, *ws, other = sys.argv[1:]
print(f"{'workload':9} {'mode':5} {'runs':>4} {'launch-to-resume':>17} {'downtime':>9} {'sync MiB':>9} {'launch KiB':>10} {'payload MiB':>11} {'on wire MiB':>11} {'batches raw/lz4/zstd':>21} {'compress ms':>11}")
for w in ws:
    for m in ("off", other):
        p = os.path.join(work, f"{w}-{m}.jsonl")
        rows = [json.loads(l) for l in open(p)] if os.path.exists(p) else []
        if not rows: print(f"{w:9} {m:5} {0:>4}"); continue
        med = lambda k: statistics.median(r[k] for r in rows)
        print(f"{w:9} {m:5} {len(rows):>4} {med('l2r'):>14.1f} ms {med('down'):>6.1f} ms {med('sync')/2**20:>9.1f} {med('launch')/1024:>10.1f} "
              f"{med('payload')/2**20:>11.1f} {med('wire')/2**20:>11.1f} {med('raw'):>9.0f}/{med('lz4'):.0f}/{med('zstd'):.0f} {med('ms'):>11.0f}")
PY
