#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, into build-fuzz/) and runs
# each for a set time on its seeds, its saved corpus and its kept crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, all)
#
# Seeds: fuzz/corpus/<target>/ (in git). Inputs the fuzzer finds go to
# build-fuzz/corpus/<target>/ and are reused next time. Kept crashes,
# tests/data/fuzz-regressions/<target>/, are replayed first; the unit test
# test_fuzz_replay replays them too in every normal and ASan build. A
# crash or hang leaves its input in build-fuzz/artifacts/<target>/ and the
# script exits 1 after the other targets have run. JOBS (default 2) sets
# the build's parallelism; FUZZ_CC the compiler (default clang);
# FUZZ_BUILD_DIR the build folder (default build-fuzz); FUZZ_NO_BUILD=1 runs
# what that folder already holds (the CMake target fuzz-run does that).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
[ $# -gt 0 ] && shift
case "$secs" in
  ''|*[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number, got '$secs'" >&2; exit 2 ;;
esac
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || {
  echo "fuzz.sh: clang is needed (Debian: apt-get install clang libclang-rt-dev)" >&2; exit 1; }

b=${FUZZ_BUILD_DIR:-build-fuzz}
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  CC=$cc cmake -S . -B "$b" -DJB_FUZZ=ON -DJB_BUILD_TESTS=OFF -DJB_BUILD_BENCH=OFF \
    -DJB_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$b" -j "${JOBS:-2}" --target fuzz >/dev/null
fi

if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < "$b/fuzz/targets.txt"; fi

# Inputs are small documents; the run directory and the GGUF targets take
# whole files, the tokenizer's vocabulary stays bounded.
max_len_of() {
  case "$1" in
    report_load|report_charts) echo 131072 ;;
    gguf|tokenizer_load) echo 65536 ;;
    *) echo 16384 ;;
  esac
}

failed=()
for t in "${targets[@]}"; do
  exe="$b/fuzz/fuzz_$t"
  [ -x "$exe" ] || { echo "fuzz.sh: no target '$t' (see $b/fuzz/targets.txt)" >&2; exit 2; }
  work="$b/corpus/$t" art="$b/artifacts/$t" log="$b/logs/$t.log"
  mkdir -p "$work" "$art" "$b/logs"
  dirs=("$work" "fuzz/corpus/$t")
  [ -d "tests/data/fuzz-regressions/$t" ] && dirs+=("tests/data/fuzz-regressions/$t")
  rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0} \
    "$exe" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len_of "$t")" \
    -artifact_prefix="$art/" -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} runs; log $log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: |.*runtime error|artifact_prefix|Test unit written)' \
      "$log" | head -8 >&2 || true
    failed+=("$t")
  else
    echo "fuzz_$t: ${runs:-?} runs in ${secs}s, ${cov:-cov ?}, corpus $(ls "$work" | wc -l) new"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}; inputs in $b/artifacts/" >&2
  exit 1
fi
