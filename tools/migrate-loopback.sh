#!/usr/bin/env bash
# Migrates a workload guest over loopback N times (receiver in its own process) and prints each run's
# launch-to-resume and downtime, then the medians. Usage:
#   tools/migrate-loopback.sh WORKLOAD [RUNS=3] [PRESYNC_SECONDS=20] [extra 'run' options...]
set -euo pipefail
workload=${1:?usage: tools/migrate-loopback.sh WORKLOAD [RUNS] [PRESYNC_SECONDS] [run options...]}
runs=${2:-3}
seconds=${3:-20}
shift $(( $# < 3 ? $# : 3 ))
cli=${KVMPRESYNC:-build/kvmpresync}
[ -x "$cli" ] || { echo "migrate-loopback: $cli not found; run 'make cli' first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 32 /dev/urandom > "$work/psk"
chmod 600 "$work/psk"
l2r=(); down=()
for i in $(seq 1 "$runs"); do
  port=$((17000 + RANDOM % 20000))
  "$cli" receive --once --listen "127.0.0.1:$port" --psk-file "$work/psk" --run-seconds 2 > "$work/rx$i.log" 2>&1 &
  rx=$!
  sleep 1
  "$cli" run --workload "$workload" --memory 256M --presync-to "127.0.0.1:$port" --psk-file "$work/psk" \
      --launch-after "$seconds" --json "$work/run$i.json" "$@" < /dev/null > "$work/run$i.log" 2>&1 || true
  wait "$rx" || true
  line=$(grep '^migrated:' "$work/run$i.log" || true)
  if [ -z "$line" ]; then
    echo "run $i: FAILED"; tail -3 "$work/run$i.log"; tail -3 "$work/rx$i.log"; continue
  fi
  a=$(sed -E 's/.*launch-to-resume ([0-9.]+) ms.*/\1/' <<<"$line"); d=$(sed -E 's/.*downtime ([0-9.]+) ms.*/\1/' <<<"$line")
  l2r+=("$a"); down+=("$d")
  echo "run $i: $line"
  grep -E '^before the pause:|^downtime:|^readiness at launch:|^compression|MSG_ZEROCOPY' "$work/run$i.log" | sed 's/^/       /' || true
  grep -E 'continuity errors' "$work/rx$i.log" | tail -1 | sed 's/^/       destination: /'
  grep -oE "resume_ms=[0-9.]+" "$work/rx$i.log" | sed "s/^/       destination, its own verify+restore+resume: /" || true
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
echo "$workload: ${#l2r[@]}/$runs runs migrated; median launch-to-resume $(median "${l2r[@]}") ms, median downtime $(median "${down[@]}") ms"
