#!/bin/sh
# The client path against wrk: how much CPU one downstream call of
# async-group costs the orchlab process, next to what one request costs wrk,
# both against the same out-of-process orchlab-mock (3 services, --threads 1,
# zero delay, 64-byte bodies), alternated ROUNDS times in one run.
# Usage: scripts/bench_client.sh BUILD_DIR [ROUNDS] [SECONDS]   (-h, --help: this text)
#   BUILD_DIR  a built tree (make bench-client uses build/release)
#   ROUNDS     alternations of the two measurements (default 3)
#   SECONDS    each measurement's window (default 4)
# Per round: `orchlab run --scenario zero-delay --services A,B,C --patterns
# async-group --fanout 10 --concurrency 64` (CPU from the report: the
# process's rusage over the window and drain, divided by the calls it made),
# then `wrk -t1 -c64` on service A (CPU from /usr/bin/time's user + sys,
# divided by its requests). Prints each round and the medians with the two
# ratios the targets are stated in (docs/async_group.md).
set -eu
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: scripts/bench_client.sh BUILD_DIR [ROUNDS] [SECONDS] (-h for help)" >&2; exit 2; }
BUILD=$1 ROUNDS=${2:-3} SECONDS_=${3:-4}
case $ROUNDS in '' | *[!0-9]*) echo "bench_client: ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2 ;; esac
case $SECONDS_ in '' | *[!0-9]*) echo "bench_client: SECONDS must be a positive integer, got '$SECONDS_'" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$SECONDS_" -ge 1 ] || { echo "bench_client: ROUNDS and SECONDS must be >= 1" >&2; exit 2; }
PYTHON=${PYTHON:-/usr/bin/python3}
PROG=bench_client
. "$(dirname "$0")/client_mock.sh"
command -v wrk >/dev/null 2>&1 || { echo "bench_client: wrk not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench_client: /usr/bin/time not found (Debian package time)" >&2; exit 1; }

start_client_mock
first=${urls%%,*}
echo "bench_client: orchlab-mock (pid $mock_pid) at $urls; $ROUNDS rounds of ${SECONDS_}s" >&2

: > "$tmp/rows"
r=1
while [ "$r" -le "$ROUNDS" ]; do
  "$ORCHLAB" run --scenario zero-delay --services "$urls" --patterns async-group --fanout 10 \
    --concurrency 64 --duration "${SECONDS_}s" --repetitions 1 --out "$tmp/report.json" >/dev/null 2>"$tmp/orchlab.err" ||
    { cat "$tmp/orchlab.err" >&2; echo "bench_client: orchlab run failed" >&2; exit 1; }
  /usr/bin/time -f '%U %S' -o "$tmp/wrk.time" wrk -t1 -c64 -d"${SECONDS_}s" "$first/" > "$tmp/wrk.out" 2>&1 ||
    { cat "$tmp/wrk.out" >&2; echo "bench_client: wrk failed" >&2; exit 1; }
  "$PYTHON" - "$tmp/report.json" "$tmp/wrk.out" "$tmp/wrk.time" "$SECONDS_" "$r" >> "$tmp/rows" <<'PY'
import json, re, sys
report, wrk_out, wrk_time, seconds, rnd = sys.argv[1:6]
rep = [b for b in json.load(open(report))["benchmarks"] if b.get("run_type") == "iteration"][0]
calls, cpu = rep["calls"], rep["cpu_s"]
window = rep.get("window_s") or float(seconds)
text = open(wrk_out).read()
m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
if not m:
    sys.exit("bench_client: cannot read wrk's request count")
reqs = int(m.group(1))
dur = float(m.group(2)) / (1000.0 if m.group(3) == "ms" else 1.0)
user, sys_ = (float(x) for x in open(wrk_time).read().split()[-2:])
print(f"{rnd} {cpu / calls * 1e6:.3f} {calls / window:.1f} {(user + sys_) / reqs * 1e6:.3f} {reqs / dur:.1f}")
PY
  r=$((r + 1))
done

"$PYTHON" - "$tmp/rows" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
print("| round | async-group CPU per call (µs) | async-group calls/s | wrk CPU per request (µs) | wrk req/s |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {float(r[1]):.2f} | {float(r[2]):,.0f} | {float(r[3]):.2f} | {float(r[4]):,.0f} |")
med = [statistics.median(float(r[i]) for r in rows) for i in range(1, 5)]
print(f"| median of {len(rows)} | {med[0]:.2f} | {med[1]:,.0f} | {med[2]:.2f} | {med[3]:,.0f} |")
print()
print(f"CPU ratio (async-group per call / wrk per request): {med[0] / med[2]:.2f} (target <= 2.0)")
print(f"throughput ratio (async-group calls/s / wrk req/s): {med[1] / med[3]:.2f} (target >= 0.8)")
PY
