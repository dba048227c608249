#!/usr/bin/env bash
# database: a PostgreSQL server (Debian's, default settings: 128 MB shared buffers) under pgbench's TPC-B-like load,
# 4 clients on a scale-10 database (1 M accounts, ~160 MB), as an application server would drive it. The whole
# server is captured: the postmaster and every backend and background process it forks.
# Usage: database.sh OUT.kptrace [SECONDS]
. "$(dirname "$0")/common.sh"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/kptrace-db.XXXXXX)
chown postgres: "$work"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
pgctl() { as_pg "$bin/pg_ctl" -D "$work/data" -s -w "$@"; }
server_opts="-k $work -c listen_addresses="
trap 'pgctl stop -m immediate >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
as_pg "$bin/initdb" -D "$work/data" -A trust -U postgres >/dev/null
pgctl start -o "$server_opts" -l "$work/log"
as_pg "$bin/pgbench" -h "$work" -U postgres -i -s 10 -q postgres 2>&1 | tail -1 >&2
pgctl stop -m fast
# the server under capture; pgbench runs beside it for SECONDS, then the server is stopped (ending the capture)
capture_exec database $((seconds + 60)) runuser -u postgres -- \
  "$bin/postgres" -D "$work/data" $server_opts 2>"$work/server.log" &
server=$!
for _ in $(seq 300); do as_pg "$bin/pg_isready" -q -h "$work" && break; sleep 0.1; done
as_pg "$bin/pgbench" -h "$work" -U postgres -c 4 -j 2 -T "$seconds" -n postgres 2>&1 | grep -E '^(tps|number of transactions actually)' >&2
pgctl stop -m fast
wait "$server"
