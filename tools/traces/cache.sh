#!/usr/bin/env bash
# cache: memcached (256 MB, 2 threads) under memaslap's load (Debian's libmemcached-tools: 16 connections, 2 threads,
# 9:1 get:set, 1 KiB values over a key space larger than the cache), as a web tier would drive it.
# Usage: cache.sh OUT.kptrace [SECONDS]
. "$(dirname "$0")/common.sh"
work=$(mktemp -d /tmp/kptrace-cache.XXXXXX)
port=$(( 20000 + $$ % 10000 ))
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/load.cnf" <<CNF
key
64 64 1
value
1024 1024 1
cmd
0 0.1
1 0.9
CNF
capture_exec cache $((seconds + 30)) runuser -u memcache -- \
  memcached -m 256 -t 2 -c 1024 -l 127.0.0.1 -p "$port" -U 0 &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
memcaslap -s "127.0.0.1:$port" -F "$work/load.cnf" -c 16 -T 2 -t "${seconds}s" -S 10s 2>&1 | grep -E '^(Run time|Global|Ops)' | tail -3 >&2 || true
kill -TERM "$server" 2>/dev/null || true
wait "$server" || true
