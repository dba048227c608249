# Shared by tools/traces/*.sh (sourced). Each app script captures one real program with `kvmpresync trace capture`
# while driving it as a person would, into the trace file given as $1, for $2 seconds (default 60).
# KPTRACE_DRY=1 runs the program and its driver without capture (to try a driver).
# KPTRACE_SAMPLE_PAGES=FILE also samples the written pages' contents into FILE (trace capture --sample-pages; tools/page-corpus.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
CLI=${KVMPRESYNC:-$root/build/kvmpresync}
INPUTS=${KPTRACE_INPUTS:-$root/build/trace-inputs}
out=${1:?usage: $0 OUT.kptrace [SECONDS]}
seconds=${2:-60}
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"
[ -x "$CLI" ] || { echo "$0: $CLI is missing; run 'make cli' first" >&2; exit 1; }

# capture WORKLOAD LIMIT_SECONDS COMMAND ARGS... : the program under `trace capture`, at most LIMIT_SECONDS (the capture
# ends earlier when the program exits or the capture gets SIGTERM). `capture_exec` replaces the calling (sub)shell, so
# `capture_exec ... &` leaves the capture's own pid in $!.
capture_command() {
  local workload=$1 limit=$2
  shift 2
  if [ "${KPTRACE_DRY:-0}" = 1 ]; then
    cmd=(timeout --foreground --signal=TERM "$limit" "$@")
  else
    cmd=("$CLI" trace capture ${KPTRACE_QUIET:+--quiet} --workload "$workload" --interval 100ms --seconds "$limit" -o "$out"
      ${KPTRACE_SAMPLE_PAGES:+--sample-pages "$KPTRACE_SAMPLE_PAGES"} -- "$@")
  fi
}
capture() { local cmd; capture_command "$@"; "${cmd[@]}"; }
capture_exec() { local cmd; capture_command "$@"; exec "${cmd[@]}"; }

# pause MIN_MS SPREAD_MS: a person's pause, MIN + RANDOM % SPREAD milliseconds.
pause() {
  local ms=$(( $1 + RANDOM % $2 ))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}
