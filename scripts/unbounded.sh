#!/bin/sh
# Claim 10's stress run: a thread per call without a limit, for real, in a
# child process under resource limits and a watchdog, beside bounded-group
# under the same limits. Each run is `orchlab run -s claims/fanout-1000
# -p PATTERN -c CALLERS --no-thread-budget` (1000 calls per orchestration,
# deadline 2 s) started through `prlimit --as=... --nproc=...` and
# `timeout -s KILL`; how it ends is recorded: the report (orchestrations
# complete, those that threw and the first error, threads, RSS), or the exit
# status and signal when it died. The orchestrations of one run share one
# process and run out of resources together, so they are not independent:
# the claim's interval comes from several runs (UNBOUNDED_PLAN), each a
# fresh process, the patterns alternating run by run.
# Usage: scripts/unbounded.sh BUILD_DIR OUT_DIR   (-h, --help: this text)
#   BUILD_DIR  a built tree (make bench uses build/release)
#   OUT_DIR    writes OUT_DIR/unbounded.json and one report per run in
#              OUT_DIR/unbounded/
# Environment: UNBOUNDED_AS_MB (address space, default 4096),
#   UNBOUNDED_NPROC (processes and threads of the user, default 4096; root
#   is exempt from it, the address space is what binds there),
#   UNBOUNDED_WATCHDOG_S (default 60),
#   UNBOUNDED_PLAN (default "16:6 4:1": CALLERS:RUNS pairs; 6 independent
#   runs at 16 callers, the fewest whose sign-test interval of a median
#   reaches 95 % (96.9 %), one at 4 callers for context; about 55 s),
#   UNBOUNDED_DURATION (default 2s: an orchestration of bounded-group at 16
#   callers takes about as long as its 2 s deadline).
set -eu
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -eq 2 ] || { echo "usage: scripts/unbounded.sh BUILD_DIR OUT_DIR (-h for help)" >&2; exit 2; }
BUILD=$1 OUT=$2
AS_MB=${UNBOUNDED_AS_MB:-4096}
NPROC=${UNBOUNDED_NPROC:-4096}
WATCHDOG=${UNBOUNDED_WATCHDOG_S:-60}
PLAN=${UNBOUNDED_PLAN:-"16:6 4:1"}
DURATION=${UNBOUNDED_DURATION:-2s}
for v in "$AS_MB" "$NPROC" "$WATCHDOG"; do
  case $v in '' | *[!0-9]*) echo "unbounded: limits must be positive integers, got '$v'" >&2; exit 2 ;; esac
done
for p in $PLAN; do
  case $p in
    *[!0-9:]* | :* | *: | *:*:* | [!0-9]*) echo "unbounded: UNBOUNDED_PLAN takes CALLERS:RUNS pairs, got '$p'" >&2; exit 2 ;;
    *:*) ;;
    *) echo "unbounded: UNBOUNDED_PLAN takes CALLERS:RUNS pairs, got '$p'" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-/usr/bin/python3}
ORCHLAB=$BUILD/harness/orchlab
[ -x "$ORCHLAB" ] || { echo "unbounded: $ORCHLAB not built (run make release)" >&2; exit 1; }
for tool in prlimit timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "unbounded: $tool not found (util-linux, coreutils)" >&2; exit 1; }
done
mkdir -p "$OUT/unbounded"
rows=$OUT/unbounded/runs.txt
: > "$rows"
for p in $PLAN; do
  c=${p%%:*} runs=${p#*:}
  i=1
  while [ "$i" -le "$runs" ]; do
    for pattern in cancellable-group bounded-group; do
      name=$pattern-c$c-r$i
      report=$OUT/unbounded/$name.json
      rm -f "$report"
      echo "unbounded: $pattern, $c callers x 1000 calls, run $i of $runs, address space $AS_MB MiB, watchdog ${WATCHDOG}s" >&2
      start=$(date +%s.%N)
      status=0
      prlimit --as=$((AS_MB * 1024 * 1024)) --nproc="$NPROC" -- \
        timeout -s KILL "$WATCHDOG" "$ORCHLAB" run -s claims/fanout-1000 -p "$pattern" -c "$c" \
        -d "$DURATION" -r 1 --no-thread-budget -q -o "$report" >/dev/null 2>"$OUT/unbounded/$name.err" ||
        status=$?
      end=$(date +%s.%N)
      echo "$pattern $c $i $status $start $end" >> "$rows"
    done
    i=$((i + 1))
  done
done
"$PYTHON" - "$rows" "$OUT" "$AS_MB" "$NPROC" "$WATCHDOG" <<'PY'
import json, os, signal, sys
rows, out, as_mb, nproc, watchdog = sys.argv[1:6]
runs = []
for line in open(rows):
    pattern, c, i, status, start, end = line.split()
    status = int(status)
    name = f"{pattern}-c{c}-r{i}"
    rel = f"unbounded/{name}.json"
    path = os.path.join(out, rel)
    run = {"pattern": pattern, "concurrency": int(c), "run": int(i), "exit": status,
           "wall_s": float(end) - float(start),
           "report": rel if os.path.isfile(path) else None, "died": None}
    if status == 124 or status == 137:
        run["died"] = f"killed by the {watchdog} s watchdog"
    elif status > 128:
        run["died"] = f"signal {signal.Signals(status - 128).name}"
    elif status != 0:
        err = open(os.path.join(out, f"unbounded/{name}.err")).read().strip().splitlines()
        run["died"] = f"exit {status}" + (f": {err[-1]}" if err else "")
    runs.append(run)
doc = {"experiment": "claims/fanout-1000 under prlimit and a watchdog (scripts/unbounded.sh)",
       "limits": {"address_space_mb": int(as_mb), "nproc": int(nproc), "watchdog_s": int(watchdog),
                  "as_root": os.geteuid() == 0},
       "runs": runs}
with open(os.path.join(out, "unbounded.json"), "w") as f:
    json.dump(doc, f, indent=1)
for r in runs:
    print(f"unbounded: {r['pattern']} x{r['concurrency']} run {r['run']}: "
          + (r["died"] or f"ran to the end, report {r['report']}"),
          file=sys.stderr)
PY
rm -f "$rows"
find "$OUT/unbounded" -name '*.err' -empty -delete
