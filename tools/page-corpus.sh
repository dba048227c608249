#!/usr/bin/env bash
# make page-corpus: samples the contents of the pages five real programs write (vim typing, mpv audio, mpv 720p video under
# Xvfb, PostgreSQL under pgbench, memcached under memaslap) into bench/corpus/pages/ (or $1): per program NAME.pages (256
# written, non-zero 4 KiB pages, a uniform sample over the run, 1 MiB) and NAME.pages.txt (what was sampled). Runs the
# tools/traces/*.sh drivers with `trace capture --sample-pages` (KPTRACE_SAMPLE_PAGES); the trace itself is thrown away.
# CORPUS="text cache" limits the set; CORPUS_SECONDS (default 20) sets each run's length. The compression benchmark
# (bench/KvmPresync.Bench, CompressionBenchmarks) reads these files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
outdir=$(realpath -m "${1:-$root/bench/corpus/pages}")
seconds=${CORPUS_SECONDS:-20}
declare -A file=([text]=text-vim [audio]=audio-mpv [video]=video-mpv [database]=database-postgres [cache]=cache-memcached)
"$root/tools/traces/inputs.sh" >/dev/null
mkdir -p "$outdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in ${CORPUS:-text audio video database cache}; do
  [ -n "${file[$name]:-}" ] || { echo "page-corpus: unknown program '$name' (text audio video database cache)" >&2; exit 2; }
  target="$outdir/${file[$name]}.pages"
  echo "page-corpus: $name -> $target (${seconds} s)" >&2
  KPTRACE_SAMPLE_PAGES="$target" "$root/tools/traces/$name.sh" "$work/$name.kptrace" "$seconds"
  head -3 "$target.txt" >&2
done
