#!/usr/bin/env bash
# Soak: joulebench run for a long time against a fake Ollama server (a
# separate process, 100 tokens/s) with fixture RAPL counters (another
# process), sampling joulebench's memory and CPU time every minute. Not
# part of the default tests.
#
#   scripts/soak.sh [MINUTES]        (default 30)
#
# Prints one row per sample (RSS, CPU time of the whole process and of the
# meter's sampler thread "jb-meter", requests finished), then the RSS growth
# from the first sample to the last (target: none) and the overhead as a
# share of one core over time. Environment: BUILD (default build),
# SAMPLE_S (default 60), TOKENS_PER_S (default 100), TOKENS (per answer,
# default 200), INTERVAL_MS (the meter's sampler period, default 20),
# KEEP=1 keeps the run directory.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-30}
case "$minutes" in
  ''|*[!0-9]*|0) echo "soak.sh: MINUTES must be a whole number above 0, got '$minutes'" >&2; exit 2 ;;
esac
build=${BUILD:-build}
sample_s=${SAMPLE_S:-60}
tps=${TOKENS_PER_S:-100}
tokens=${TOKENS:-200}
interval_ms=${INTERVAL_MS:-20}
for v in "SAMPLE_S=$sample_s" "TOKENS_PER_S=$tps" "TOKENS=$tokens" "INTERVAL_MS=$interval_ms"; do
  case "${v#*=}" in
    ''|*[!0-9]*|0) echo "soak.sh: ${v%%=*} must be a whole number above 0, got '${v#*=}'" >&2; exit 2 ;;
  esac
done
[ "$(uname -s)" = Linux ] || { echo "soak.sh: reads /proc; Linux only" >&2; exit 1; }
for exe in joulebench jb-fakeserver jb-fixture; do
  [ -x "$build/$exe" ] || { echo "soak.sh: no $build/$exe; build first (cmake --build $build)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/jb-soak-XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # a failed soak keeps its evidence
  if [ "${KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "soak.sh: kept $work (run directory, samples, the programs' output)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# Fixture counters at 25 W package, 15 W cores, 3 W DRAM.
"$build/jb-fixture" --watts 25 --hz 100 >"$work/fixture" &
pids+=($!)
# The fake server: a fixed answer length at a fixed token rate; it exits
# when its stdin (this script's pipe) closes.
exec 3> >(exec "$build/jb-fakeserver" --flavour ollama --tokens "$tokens" \
              --tokens-per-s "$tps" --ttft 0.05 --stdin-eof >"$work/port")
for _ in $(seq 100); do
  [ -s "$work/port" ] && [ "$(wc -l <"$work/fixture")" -ge 2 ] && break
  sleep 0.1
done
port=$(head -1 "$work/port")
sysfs=$(sed -n 1p "$work/fixture") procfs=$(sed -n 2p "$work/fixture")
[ -n "$port" ] && [ -n "$sysfs" ] || { echo "soak.sh: the fake server or the fixture did not start" >&2; exit 1; }

# Enough repetitions to outlast the soak; SIGINT ends it on time (the run
# is then marked interrupted, with every finished request kept).
per_req_s=$(awk -v t="$tokens" -v r="$tps" 'BEGIN { print t / r + 0.1 }')
reps=$(awk -v m="$minutes" -v s="$per_req_s" 'BEGIN { printf "%d", m * 60 / s * 2 + 10 }')
JOULEBENCH_SYSFS_ROOT=$sysfs JOULEBENCH_PROCFS_ROOT=$procfs XDG_CACHE_HOME=$work \
  "$build/joulebench" run -e ollama --url "http://127.0.0.1:$port" -m fake:latest \
  --prompt "Write a long story about energy." --reps "$reps" --warmup 1 --baseline 2 \
  --max-tokens "$tokens" --interval-ms "$interval_ms" --no-grade -q -o "$work/run" \
  >"$work/stdout" 2>"$work/stderr" 3>&- &
jb=$!
pids+=($jb)

hz=$(getconf CLK_TCK)
# CPU seconds of a /proc stat file: utime + stime (fields 14 and 15; the
# command name in field 2 has no spaces here).
cpu_of() { awk -v hz="$hz" '{ printf "%.3f", ($14 + $15) / hz }' "$1" 2>/dev/null || echo nan; }
meter_cpu() {
  local t
  for t in /proc/"$jb"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = jb-meter ] && { cpu_of "$t/stat"; return; }
  done
  echo nan
}
sample() {
  local rss cpu mcpu reqs
  rss=$(awk '/^VmRSS:/ { print $2 }' /proc/"$jb"/status 2>/dev/null || echo nan)
  cpu=$(cpu_of /proc/"$jb"/stat)
  mcpu=$(meter_cpu)
  reqs=$(wc -l <"$work/run/requests.jsonl" 2>/dev/null || echo 0)
  echo "$1 $rss $cpu $mcpu $reqs" >>"$work/samples"
}

echo "soak.sh: $minutes min, fake server at $tps tokens/s ($tokens per answer), sampling every ${sample_s}s" >&2
t0=$(date +%s)
: >"$work/samples"
sleep 5  # past the baseline and the load: the first sample is the reference
sample $(( $(date +%s) - t0 ))
end=$(( t0 + minutes * 60 ))
while [ "$(date +%s)" -lt "$end" ] && kill -0 "$jb" 2>/dev/null; do
  left=$(( end - $(date +%s) ))
  sleep $(( left < sample_s ? left : sample_s ))
  kill -0 "$jb" 2>/dev/null && sample $(( $(date +%s) - t0 ))
done
if ! kill -0 "$jb" 2>/dev/null; then
  echo "soak.sh: joulebench ended before the soak did:" >&2; tail -5 "$work/stderr" >&2; exit 1
fi
kill -INT "$jb"
rc=0; wait "$jb" || rc=$?
[ "$rc" -eq 130 ] || { echo "soak.sh: joulebench exited $rc after SIGINT (expected 130):" >&2; tail -5 "$work/stderr" >&2; exit 1; }

# The meter keeps every sample for timeline.csv (by design, up to 131072
# samples, then thinned), three more for each request's window and mark:
# that much growth is expected. Per sample: the time, and per sensor the
# joules and a valid byte (src/meter).
nsens=$(head -1 "$work/run/timeline.csv" 2>/dev/null | awk -F, '{ print NF - 3 }') || true
[ -n "$nsens" ] || { echo "soak.sh: joulebench wrote no $work/run/timeline.csv:" >&2; tail -5 "$work/stderr" >&2; exit 1; }
awk -v ms="$interval_ms" -v n="$nsens" '
  { t[NR] = $1; rss[NR] = $2; cpu[NR] = $3; m[NR] = $4; q[NR] = $5 }
  END {
    printf "%8s %10s %10s %9s %12s %10s %9s\n", "t_s", "rss_kib", "cpu_s", "cpu_%", "meter_cpu_s", "meter_%", "requests"
    for (i = 1; i <= NR; i++) {
      dt = i > 1 ? t[i] - t[i-1] : 0
      pc = dt > 0 ? 100 * (cpu[i] - cpu[i-1]) / dt : 0
      pm = dt > 0 ? 100 * (m[i] - m[i-1]) / dt : 0
      printf "%8d %10d %10.2f %9.3f %12.3f %10.4f %9d\n", t[i], rss[i], cpu[i], pc, m[i], pm, q[i]
    }
    if (NR < 2) { print "soak.sh: fewer than two samples; run longer"; exit }
    span = t[NR] - t[1]; reqs = q[NR] - q[1]
    growth = rss[NR] - rss[1]
    max = rss[1]; for (i = 1; i <= NR; i++) if (rss[i] > max) max = rss[i]
    per = 9 + 9 * n; cap = 131072
    s0 = t[1] * 1000 / ms + 3 * q[1]; s1 = t[NR] * 1000 / ms + 3 * q[NR]
    if (s0 > cap) s0 = cap; if (s1 > cap) s1 = cap
    tl = (s1 - s0) * per / 1024
    printf "\nRSS: %d KiB at t=%ds, %d KiB at t=%ds (peak %d): growth %+d KiB (%+.0f KiB/hour)\n",
           rss[1], t[1], rss[NR], t[NR], max, growth, growth * 3600 / span
    printf "  the meter timeline (%d sensors, %d bytes a sample, kept for timeline.csv) explains %+.0f KiB;\n",
           n, per, tl
    printf "  the rest: %+.0f KiB (%+.0f bytes a request over %d requests)\n",
           growth - tl, (reqs > 0 ? (growth - tl) * 1024 / reqs : 0), reqs
    printf "CPU: joulebench %.3f%% of one core over %ds, of which the meter thread %.3f%%; %.2f requests/s\n",
           100 * (cpu[NR] - cpu[1]) / span, span, 100 * (m[NR] - m[1]) / span, reqs / span
  }' "$work/samples"
lines=$(wc -l <"$work/run/requests.jsonl")
status=$(sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p' "$work/run/run.json" | head -1)
echo "run directory: $lines records, status ${status:-?}"
