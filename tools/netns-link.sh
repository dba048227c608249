#!/usr/bin/env bash
# The realistic link: two network namespaces joined by a veth pair, each end shaped with
# `tc tbf rate RATE` (so both directions are limited). Needs root (ip, tc from iproute2).
#   tools/netns-link.sh up [RATE=1gbit]   creates kp-src (10.231.0.1) and kp-dst (10.231.0.2)
#   tools/netns-link.sh down              removes both namespaces (and the veth pair with them)
#   tools/netns-link.sh status
# Run a command inside one with: ip netns exec kp-dst build/kvmpresync receive --listen 10.231.0.2:7700 ...
set -euo pipefail
SRC=kp-src DST=kp-dst SRC_IP=10.231.0.1 DST_IP=10.231.0.2
cmd=${1:-status}
need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "netns-link: creating network namespaces needs root (ip netns add); run as root or use the in-process link (repro --link-kind loopback)" >&2
    exit 1
  fi
  command -v ip >/dev/null && command -v tc >/dev/null || {
    echo "netns-link: 'ip' and 'tc' (Debian package iproute2) are required: apt-get install iproute2" >&2; exit 1; }
}
case "$cmd" in
  up)
    need_root
    rate=${2:-1gbit}
    "$0" down >/dev/null 2>&1 || true
    ip netns add "$SRC"
    ip netns add "$DST"
    ip link add kp-veth-s type veth peer name kp-veth-d
    ip link set kp-veth-s netns "$SRC"
    ip link set kp-veth-d netns "$DST"
    ip -n "$SRC" addr add "$SRC_IP/30" dev kp-veth-s
    ip -n "$DST" addr add "$DST_IP/30" dev kp-veth-d
    for ns in "$SRC" "$DST"; do ip -n "$ns" link set lo up; done
    ip -n "$SRC" link set kp-veth-s up
    ip -n "$DST" link set kp-veth-d up
    # burst: enough for one timer tick at the rate; latency bounds the queue (tc-tbf(8))
    ip netns exec "$SRC" tc qdisc add dev kp-veth-s root tbf rate "$rate" burst 256kb latency 50ms
    ip netns exec "$DST" tc qdisc add dev kp-veth-d root tbf rate "$rate" burst 256kb latency 50ms
    echo "netns link up: $SRC ($SRC_IP) <-> $DST ($DST_IP), tbf $rate each way"
    ;;
  down)
    need_root
    ip netns del "$SRC" 2>/dev/null || true
    ip netns del "$DST" 2>/dev/null || true
    echo "netns link down"
    ;;
  status)
    ip netns list 2>/dev/null | grep -E "^($SRC|$DST)\b" || echo "netns link is down"
    ;;
  *)
    echo "usage: tools/netns-link.sh up [RATE] | down | status" >&2
    exit 2
    ;;
esac
