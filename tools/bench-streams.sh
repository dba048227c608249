#!/usr/bin/env bash
# Several streams (protocol 1.3) against one: the initial copy of an idle guest, loopback or two network namespaces.
#   tools/bench-streams.sh lo|ns MEMORY "1 2 4" [RATE=10gbit]     (run from the repository, after `make cli`; root for ns)
# Each run: `kvmpresync receive --once` + `kvmpresync run --workload idle --policy none --bandwidth 100gbit --streams N`
# (the engine then sends ~1.25 GB rounds as fast as the streams take them); prints initialCopyMs, the round rates and the
# CPU time of both processes. Take it under the shared lock: flock /work/bench.lock tools/bench-streams.sh …
# The namespaces are kps-src (10.233.0.1) / kps-dst (10.233.0.2), tbf RATE with a 4 MB burst (a 256 kb burst caps 10 Gbit/s).
set -euo pipefail
kind=${1:?lo|ns} mem=${2:?memory, e.g. 8G} counts=${3:-"1 2 4"} rate=${4:-10gbit}
bin=$(pwd)/build/kvmpresync out=$(mktemp -d)
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$out/psk")
rx_ns=() tx_ns=() ip=127.0.0.1
if [ "$kind" = ns ]; then
  ip netns del kps-src 2>/dev/null || true; ip netns del kps-dst 2>/dev/null || true
  ip netns add kps-src; ip netns add kps-dst
  ip link add kps-veth-s type veth peer name kps-veth-d
  ip link set kps-veth-s netns kps-src; ip link set kps-veth-d netns kps-dst
  ip -n kps-src addr add 10.233.0.1/30 dev kps-veth-s; ip -n kps-dst addr add 10.233.0.2/30 dev kps-veth-d
  for ns in kps-src kps-dst; do ip -n $ns link set lo up; done
  ip -n kps-src link set kps-veth-s up; ip -n kps-dst link set kps-veth-d up
  ip netns exec kps-src tc qdisc add dev kps-veth-s root tbf rate "$rate" burst 4mb latency 50ms
  ip netns exec kps-dst tc qdisc add dev kps-veth-d root tbf rate "$rate" burst 4mb latency 50ms
  trap 'ip netns del kps-src 2>/dev/null; ip netns del kps-dst 2>/dev/null' EXIT
  rx_ns=(ip netns exec kps-dst) tx_ns=(ip netns exec kps-src) ip=10.233.0.2
fi
port=7950
for n in $counts; do
  port=$((port + 1))
  "${rx_ns[@]}" /usr/bin/time -f "receiver cpu: user %U s, system %S s" "$bin" receive --once --listen $ip:$port --psk-file "$out/psk" \
    --run-seconds 1 --max-memory 64G > "$out/rx-$n.log" 2>&1 &
  sleep 1
  "${tx_ns[@]}" /usr/bin/time -f "sender cpu: user %U s, system %S s" "$bin" run --workload idle --memory "$mem" --presync-to $ip:$port \
    --psk-file "$out/psk" --launch-after 60 --link-rate none --bandwidth 100gbit --policy none --streams "$n" --json "$out/r-$n.json" > "$out/tx-$n.log" 2>&1 || true
  wait
  echo "== $n stream(s)"
  grep -E "initial copy|migrated|failed" "$out/tx-$n.log" || true
  python3 - "$out/r-$n.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
big = [x for x in r["rounds"] if x.get("phase") == "Sync" and x.get("sentBytes", 0) > 1e8]
print("large rounds (GB/s):", [round(x["sentBytes"] / x["intervalMs"] / 1e6, 3) for x in big])
PY
  tail -1 "$out/tx-$n.log"; tail -1 "$out/rx-$n.log"
done
echo "logs: $out"
