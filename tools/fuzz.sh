#!/usr/bin/env bash
# `make fuzz`: AFL++ over the SharpFuzz harness (fuzz/README.md). Installs afl++ if missing, restores the sharpfuzz
# tool (.config/dotnet-tools.json), publishes fuzz/KvmPresync.Fuzz to build/fuzz/bin, instruments
# KvmPresync.Wire.dll and KvmPresync.Migration.dll there, runs afl-fuzz for FUZZ_SECONDS per target, then prints
# executions and crashes per target (from fuzzer_stats). Exits 1 when any target found a crash.
#   FUZZ_SECONDS=N (default 60)   FUZZ_TARGET=frames|handshake|receiver (default: all three, one after the other)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGET:-frames handshake receiver}
out=build/fuzz
bin=$out/bin

if ! command -v afl-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing afl++ (apt)" >&2
  [ "$(id -u)" -eq 0 ] || { echo "fuzz: need root to apt-get install afl++" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
dotnet tool restore >/dev/null
rm -rf "$bin"
dotnet publish fuzz/KvmPresync.Fuzz/KvmPresync.Fuzz.csproj -c Release -o "$bin" -nologo -v:q -clp:ErrorsOnly
for dll in KvmPresync.Wire.dll KvmPresync.Migration.dll; do
  dotnet tool run sharpfuzz "$bin/$dll" >/dev/null
done

export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
failed=0
summary=()
for t in $targets; do
  [ -d "fuzz/corpus/$t" ] || { echo "fuzz: unknown target $t (no fuzz/corpus/$t)" >&2; exit 2; }
  rm -rf "$out/findings/$t"; mkdir -p "$out/findings"
  echo "fuzz: $t for ${seconds}s" >&2
  # -t: generous per-input timeout in ms (in persistent mode a timeout kills the whole harness, so keep it far above any real run; afl++ 4.04c ignores "-t N+" and falls back to 20 ms); -m none: the CLR reserves lots of VM
  afl-fuzz -V "$seconds" -t 30000 -m none -i "fuzz/corpus/$t" -o "$out/findings/$t" -- "$bin/KvmPresync.Fuzz" "$t" \
    > "$out/afl-$t.log" 2>&1 || { echo "fuzz: afl-fuzz failed for $t, see $out/afl-$t.log" >&2; tail -20 "$out/afl-$t.log" >&2; exit 2; }
  stats="$out/findings/$t/default/fuzzer_stats"
  execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
  crashes=$(awk -F' *: *' '$1=="saved_crashes"||$1=="unique_crashes"{print $2}' "$stats" | head -1)
  hangs=$(awk -F' *: *' '$1=="saved_hangs"||$1=="unique_hangs"{print $2}' "$stats" | head -1)
  paths=$(awk -F' *: *' '$1=="corpus_count"||$1=="paths_total"{print $2}' "$stats" | head -1)
  summary+=("$(printf '%-10s %6ss  execs %10s  corpus %5s  crashes %3s  hangs %3s' "$t" "$seconds" "$execs" "$paths" "$crashes" "$hangs")")
  [ "${crashes:-0}" -eq 0 ] || failed=1
done
echo "fuzz results (findings in $out/findings/<target>/default/{crashes,hangs}; replay: $bin/KvmPresync.Fuzz run <target> <file>):"
printf '  %s\n' "${summary[@]}"
exit $failed
