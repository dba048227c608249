#!/usr/bin/env bash
# make traces: captures the five real-application traces (docs/WORKLOADS.md, "Real applications") into
# tests/data/traces/apps/ (or $1), each at least 60 s of the program under load, with `kvmpresync trace capture`.
# Installs the Debian packages the programs come from when missing, generates the inputs (tools/traces/inputs.sh),
# then runs tools/traces/{text,audio,video,database,cache}.sh one after another (they must not share the 2 cores).
# TRACES="text cache" limits the set; TRACE_SECONDS (default 62) sets each capture's length.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
outdir=$(realpath -m "${1:-$root/tests/data/traces/apps}")
seconds=${TRACE_SECONDS:-62}
declare -A file=([text]=text-vim [audio]=audio-mpv [video]=video-mpv [database]=database-postgres [cache]=cache-memcached)
declare -A tool=([vim]=vim [tmux]=tmux [mpv]=mpv [Xvfb]=xvfb [ffmpeg]=ffmpeg [memcached]=memcached [memcaslap]=libmemcached-tools)
missing=()
for t in "${!tool[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("${tool[$t]}"); done
ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "make traces: need root to apt-get install ${missing[*]}" >&2; exit 1; }
  echo "make traces: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
"$root/tools/traces/inputs.sh" >/dev/null
mkdir -p "$outdir"
for name in ${TRACES:-text audio video database cache}; do
  [ -n "${file[$name]:-}" ] || { echo "make traces: unknown trace '$name' (text audio video database cache)" >&2; exit 2; }
  target="$outdir/${file[$name]}.kptrace"
  echo "make traces: $name -> $target (${seconds} s)" >&2
  "$root/tools/traces/$name.sh" "$target.tmp" "$seconds"
  mv "$target.tmp" "$target"
  "$root/build/kvmpresync" trace info "$target" | head -12
done
