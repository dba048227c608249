#!/usr/bin/env bash
# Soak: a movie guest presyncs for MINUTES (default 30) into a receive service, then launches. Every 30 s the resident
# memory (VmRSS) and open file descriptors of both processes are sampled into build/soak/samples.csv; after the warm-up
# (the first 2 minutes, or half of a shorter run: initial copy, JIT, pools) they must stay flat: RSS within max(5 %, 32 MiB) of the warm-up
# sample and the same number of descriptors (±2). The migration must verify. Prints the start and end figures.
set -euo pipefail
minutes=${1:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
cli="$here/build/kvmpresync"
out="$here/build/soak"
rm -rf "$out"; mkdir -p "$out"
head -c 32 /dev/urandom > "$out/psk"; chmod 600 "$out/psk"
port=$((20000 + RANDOM % 20000))
"$cli" receive --listen "127.0.0.1:$port" --psk-file "$out/psk" --run-seconds 5 > "$out/receiver.log" 2>&1 &
rx=$!
trap 'kill $rx $tx 2>/dev/null || true' EXIT
sleep 2
"$cli" run --workload movie --memory 256M --presync-to "127.0.0.1:$port" --psk-file "$out/psk" --launch-after "${minutes}m" \
  --json "$out/result.json" > "$out/sender.log" 2>&1 < /dev/null &
tx=$!
sample() { # pid -> "rss_kib fds"
  local rss fds
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
  fds=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
  echo "$rss $fds"
}
echo "seconds,sender_rss_kib,sender_fds,receiver_rss_kib,receiver_fds" > "$out/samples.csv"
start=$(date +%s)
while kill -0 $tx 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  read -r srss sfds < <(sample $tx)
  read -r rrss rfds < <(sample $rx)
  echo "$now,$srss,$sfds,$rrss,$rfds" >> "$out/samples.csv"
  printf 'soak: %5d s  sender %6d MiB %4d fds   receiver %6d MiB %4d fds\n' "$now" $((srss / 1024)) "$sfds" $((rrss / 1024)) "$rfds"
  sleep 30
done
wait $tx; code=$?
kill -TERM $rx 2>/dev/null || true; wait $rx || true
tail -n 3 "$out/sender.log"
python3 - "$out/samples.csv" "$minutes" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if int(r['sender_rss_kib']) > 0]
warmup = min(120, int(sys.argv[2]) * 60 // 2)
warm = next((r for r in rows if int(r['seconds']) >= warmup), rows[0])
end = rows[-1]
ok = True
for side in ('sender', 'receiver'):
    r0, r1 = int(warm[f'{side}_rss_kib']), int(end[f'{side}_rss_kib'])
    f0, f1 = int(warm[f'{side}_fds']), int(end[f'{side}_fds'])
    grow = r1 - r0
    flat = grow <= max(0.05 * r0, 32 * 1024) and abs(f1 - f0) <= 2
    ok &= flat
    print(f"soak: {side}: after warm-up ({warm['seconds']} s) {r0 // 1024} MiB, {f0} fds; at the end ({end['seconds']} s) {r1 // 1024} MiB, {f1} fds -> {'flat' if flat else 'GROWING'}")
sys.exit(0 if ok else 1)
PY
flat=$?
grep -q "memory digest verified" "$out/sender.log" || { echo "soak: the migration did not verify (exit $code)" >&2; exit 1; }
[ $flat -eq 0 ] && [ $code -eq 0 ] && echo "soak: passed ($minutes min)" || { echo "soak: failed" >&2; exit 1; }
