#!/bin/sh
# Instructions per downstream call of async-group's client path, counted by
# callgrind: deterministic where times are not (a noisy or shared machine).
# Usage: scripts/callgrind_client.sh BUILD_DIR [TOP]   (-h, --help: this text)
#   BUILD_DIR  a built tree (Release: build/release)
#   TOP        functions to list by instructions per call (default 15)
# Starts an out-of-process orchlab-mock (3 services, --threads 1, zero delay,
# 64-byte bodies, not under valgrind), then runs `orchlab run --scenario
# zero-delay --services A,B,C --patterns async-group --fanout 10
# --concurrency 8 --warmup 0` under `valgrind --tool=callgrind` twice, for 1 s
# and for 3 s. Instructions per call = (Ir of the long run - Ir of the short
# one) / (calls of the long run - calls of the short one): start-up, the
# report and the drain cancel out. Prints that, and the TOP functions by
# their own instructions per call in the long run (start-up included there).
# User-space instructions only: the kernel's TCP work is not in them.
set -eu
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: scripts/callgrind_client.sh BUILD_DIR [TOP] (-h for help)" >&2; exit 2; }
BUILD=$1 TOP=${2:-15}
case $TOP in '' | *[!0-9]*) echo "callgrind_client: TOP must be a positive integer, got '$TOP'" >&2; exit 2 ;; esac
PYTHON=${PYTHON:-/usr/bin/python3}
PROG=callgrind_client
. "$(dirname "$0")/client_mock.sh"
command -v valgrind >/dev/null 2>&1 || { echo "callgrind_client: valgrind not found" >&2; exit 1; }
command -v callgrind_annotate >/dev/null 2>&1 || { echo "callgrind_client: callgrind_annotate not found" >&2; exit 1; }

start_client_mock

for d in 1 3; do
  echo "callgrind_client: ${d}s under callgrind ..." >&2
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$d" -q \
    "$ORCHLAB" run --scenario zero-delay --services "$urls" --patterns async-group --fanout 10 \
    --concurrency 8 --duration "${d}s" --warmup 0 --repetitions 1 --seed 1 \
    --out "$tmp/r$d.json" -q 2>"$tmp/err.$d" ||
    { cat "$tmp/err.$d" >&2; echo "callgrind_client: orchlab under callgrind failed" >&2; exit 1; }
  callgrind_annotate --threshold=100 "$tmp/cg.$d" > "$tmp/annotate.$d" 2>/dev/null
done

"$PYTHON" - "$tmp" "$TOP" <<'PY'
import json, re, sys
tmp, top = sys.argv[1], int(sys.argv[2])
def total(d):
    for line in open(f"{tmp}/cg.{d}"):
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    sys.exit("callgrind_client: no totals in the callgrind output")
def calls(d):
    e = [b for b in json.load(open(f"{tmp}/r{d}.json"))["benchmarks"] if b["run_type"] == "iteration"][0]
    return e["calls"]
i1, i3, c1, c3 = total(1), total(3), calls(1), calls(3)
if c3 <= c1:
    sys.exit(f"callgrind_client: the 3 s run made no more calls ({c3}) than the 1 s run ({c1})")
print(f"runs: 1 s {c1:,} calls {i1:,} Ir; 3 s {c3:,} calls {i3:,} Ir")
print(f"instructions per call (difference of the two runs): {(i3 - i1) / (c3 - c1):,.0f}")
print()
print(f"top {top} functions by own instructions per call (3 s run, {c3:,} calls, start-up included):")
rows = []
for line in open(f"{tmp}/annotate.3"):
    m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*)$", line)
    if m and "PROGRAM TOTALS" not in line:
        rows.append((int(m.group(1).replace(",", "")), m.group(2)))
for ir, fn in rows[:top]:
    fn = re.sub(r"^[^:]*:", "", fn, count=1) if ":" in fn.split("(")[0] else fn
    print(f"{ir / c3:10.1f}  {fn[:150]}")
PY
