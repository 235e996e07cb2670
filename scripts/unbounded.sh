#!/bin/sh
# Claim 10's stress run: a thread per call without a limit, for real, in a
# child process under resource limits and a watchdog, beside bounded-group
# under the same limits. Each run is `orchlab run -s claims/fanout-1000
# -p PATTERN -c CALLERS --no-thread-budget` (1000 calls per orchestration,
# deadline 2 s) started through `prlimit --as=... --nproc=...` and
# `timeout -s KILL`; how it ends is recorded: the report (orchestrations
# complete, those that threw and the first error, threads, RSS), or the exit
# status and signal when it died.
# Usage: scripts/unbounded.sh BUILD_DIR OUT_DIR   (-h, --help: this text)
#   BUILD_DIR  a built tree (make bench uses build/release)
#   OUT_DIR    writes OUT_DIR/unbounded.json and one report per run in
#              OUT_DIR/unbounded/
# Environment: UNBOUNDED_AS_MB (address space, default 4096),
#   UNBOUNDED_NPROC (processes and threads of the user, default 4096; root
#   is exempt from it, the address space is what binds there),
#   UNBOUNDED_WATCHDOG_S (default 60), UNBOUNDED_CALLERS (default "4 16"),
#   UNBOUNDED_DURATION (default 2s: an orchestration of bounded-group at 16
#   callers takes about as long as its 2 s deadline).
set -eu
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -eq 2 ] || { echo "usage: scripts/unbounded.sh BUILD_DIR OUT_DIR (-h for help)" >&2; exit 2; }
BUILD=$1 OUT=$2
AS_MB=${UNBOUNDED_AS_MB:-4096}
NPROC=${UNBOUNDED_NPROC:-4096}
WATCHDOG=${UNBOUNDED_WATCHDOG_S:-60}
CALLERS=${UNBOUNDED_CALLERS:-"4 16"}
DURATION=${UNBOUNDED_DURATION:-2s}
for v in "$AS_MB" "$NPROC" "$WATCHDOG" $CALLERS; do
  case $v in '' | *[!0-9]*) echo "unbounded: limits and callers must be positive integers, got '$v'" >&2; exit 2 ;; esac
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
for c in $CALLERS; do
  for pattern in cancellable-group bounded-group; do
    report=$OUT/unbounded/$pattern-c$c.json
    rm -f "$report"
    echo "unbounded: $pattern, $c callers x 1000 calls, address space $AS_MB MiB, watchdog ${WATCHDOG}s" >&2
    start=$(date +%s.%N)
    status=0
    prlimit --as=$((AS_MB * 1024 * 1024)) --nproc="$NPROC" -- \
      timeout -s KILL "$WATCHDOG" "$ORCHLAB" run -s claims/fanout-1000 -p "$pattern" -c "$c" \
      -d "$DURATION" -r 1 --no-thread-budget -q -o "$report" >/dev/null 2>"$OUT/unbounded/$pattern-c$c.err" ||
      status=$?
    end=$(date +%s.%N)
    echo "$pattern $c $status $start $end" >> "$rows"
  done
done
"$PYTHON" - "$rows" "$OUT" "$AS_MB" "$NPROC" "$WATCHDOG" <<'PY'
import json, os, signal, sys
rows, out, as_mb, nproc, watchdog = sys.argv[1:6]
runs = []
for line in open(rows):
    pattern, c, status, start, end = line.split()
    status = int(status)
    rel = f"unbounded/{pattern}-c{c}.json"
    path = os.path.join(out, rel)
    run = {"pattern": pattern, "concurrency": int(c), "exit": status, "wall_s": float(end) - float(start),
           "report": rel if os.path.isfile(path) else None, "died": None}
    if status == 124 or status == 137:
        run["died"] = f"killed by the {watchdog} s watchdog"
    elif status > 128:
        run["died"] = f"signal {signal.Signals(status - 128).name}"
    elif status != 0:
        err = open(os.path.join(out, f"unbounded/{pattern}-c{c}.err")).read().strip().splitlines()
        run["died"] = f"exit {status}" + (f": {err[-1]}" if err else "")
    runs.append(run)
doc = {"experiment": "claims/fanout-1000 under prlimit and a watchdog (scripts/unbounded.sh)",
       "limits": {"address_space_mb": int(as_mb), "nproc": int(nproc), "watchdog_s": int(watchdog),
                  "as_root": os.geteuid() == 0},
       "runs": runs}
with open(os.path.join(out, "unbounded.json"), "w") as f:
    json.dump(doc, f, indent=1)
for r in runs:
    print(f"unbounded: {r['pattern']} x{r['concurrency']}: " + (r["died"] or f"ran to the end, report {r['report']}"),
          file=sys.stderr)
PY
rm -f "$rows"
find "$OUT/unbounded" -name '*.err' -empty -delete
