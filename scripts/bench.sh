#!/bin/sh
# Runs the benchmark pipeline into one results folder:
#   orchlab run (report.json) -> orchlab-micro (micro.json) -> unbounded.sh
#   (unbounded.json, claim 10's stress run) -> go_micro.py (go_micro.json,
#   BM_Aggregate's Go twin) -> demos.py (demos.json, the Go demonstrations of
#   claims 12 and 13) -> plot.py (plots/)
#   -> claims.py (CLAIMS.md) -> report_html.py (index.html), then points
#   results/latest at the folder.
# The sweep of make bench and bench-quick also traces repetition 0 of each cell
# of one-hangs and fail-fast (OUT_DIR/trace.json: plots/timelines_*.png and
# the traces/ that index.html links; docs/analysis.md, Traces). BENCH_TRACE
# names other scenarios (comma separated); BENCH_TRACE= traces nothing.
# Usage: scripts/bench.sh BUILD_DIR OUT_DIR SCENARIO [--quick] [--resume]   (-h, --help: this text)
#   BUILD_DIR  a configured and built tree (make bench uses build/release)
#   OUT_DIR    the results folder to create, e.g. results/20260101T000000Z
#   SCENARIO   scenario NAME or FILE for orchlab run (default sweep: scenarios/default.json)
#   --quick    short microbenchmark runs too (make bench-quick)
#   --resume   continue the orchlab run of OUT_DIR from its journal
#              (OUT_DIR/report.json.journal; make bench RESUME=OUT_DIR), then
#              the rest of the pipeline
# A step whose program is missing is skipped with a note; an interrupted
# orchlab run (Ctrl-C) still keeps the partial report and exits 130. A run
# that fails or is killed says first how to resume it.
set -eu
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

usage() { echo "usage: scripts/bench.sh BUILD_DIR OUT_DIR SCENARIO [--quick] [--resume]" >&2; exit 2; }
[ $# -ge 3 ] || usage
BUILD=$1 OUT=$2 SCENARIO=$3
shift 3
QUICK=0 RESUME=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --resume) RESUME=1 ;;
    *) usage ;;
  esac
done
PYTHON=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ORCHLAB=$BUILD/harness/orchlab
MICRO=$BUILD/harness/micro/orchlab-micro
start=$(date +%s)

[ -x "$ORCHLAB" ] || { echo "bench: $ORCHLAB not built (run make release)" >&2; exit 1; }
mkdir -p "$OUT"

note() { echo "bench: $*" >&2; }

# How to continue this bench from the journal of its orchlab run.
case "$SCENARIO" in
  scenarios/default.json | default) again="make bench RESUME=$OUT" ;;
  scenarios/quick.json | quick) again="make bench-quick RESUME=$OUT" ;;
  scenarios/scaling.json | scaling) again="make bench-scaling RESUME=$OUT" ;;
  *) again="scripts/bench.sh $BUILD $OUT $SCENARIO$([ "$QUICK" -eq 1 ] && echo " --quick" || :) --resume" ;;
esac

# Traced scenarios: the sweeps that have one-hangs and fail-fast trace them.
case "$SCENARIO" in
  scenarios/default.json | default | scenarios/quick.json | quick) traced=one-hangs,fail-fast ;;
  *) traced= ;;
esac
traced=${BENCH_TRACE-$traced}
set --
[ -n "$traced" ] && set -- --trace "$OUT/trace.json" --trace-scenarios "$traced"

# 1. The sweep. 130 (Ctrl-C) keeps the partial report and ends the pipeline;
# every finished repetition is in $OUT/report.json.journal either way.
status=0
if [ "$RESUME" -eq 1 ]; then
  [ -d "$OUT" ] || { echo "bench: --resume: no folder $OUT" >&2; exit 2; }
  # The resumed run writes the trace of what it runs (the cells taken from
  # the journal say so in it): the earlier part's trace is kept beside it.
  if [ -n "$traced" ] && [ -f "$OUT/trace.json" ]; then
    mv "$OUT/trace.json" "$OUT/trace.before-resume.json"
    note "kept the earlier trace as $OUT/trace.before-resume.json"
  fi
  "$ORCHLAB" run --scenario "$SCENARIO" --resume "$OUT/report.json" "$@" || status=$?
else
  "$ORCHLAB" run --scenario "$SCENARIO" --out "$OUT/report.json" "$@" || status=$?
fi
if [ "$status" -ne 0 ] && [ "$status" -ne 130 ]; then
  note "orchlab run failed (exit $status); resume it with: $again"
  exit "$status"
fi
[ "$status" -eq 130 ] && note "orchlab run interrupted; resume it with: $again"

if [ "$status" -eq 0 ]; then
  # 2. Microbenchmarks: Google Benchmark's own JSON.
  if [ -x "$MICRO" ]; then
    # Repetitions in a random interleaved order, so that a slow spell of the
    # machine spreads over every benchmark instead of landing on one; claims.py
    # takes its intervals over them (5 in make bench, 4 in bench-quick: the
    # fewest for a 95 % Hodges-Lehmann interval).
    if [ "$QUICK" -eq 1 ]; then min_time=0.01 reps=4; else min_time=0.05 reps=5; fi
    note "microbenchmarks: $reps interleaved repetitions of ${min_time}s each (about half a minute)"
    "$MICRO" --benchmark_min_time=$min_time --benchmark_repetitions=$reps \
      --benchmark_enable_random_interleaving=true --benchmark_out="$OUT/micro.json" \
      --benchmark_out_format=json >/dev/null || note "orchlab-micro failed; continuing without micro.json"
  else
    note "skipping microbenchmarks: $MICRO not built"
  fi
  # Claim 10's stress run: a thread per call without a limit, in child
  # processes under resource limits (about 55 s: 6 independent runs at 16
  # callers, since the orchestrations of one run fail together).
  # bench-quick: one run per pattern and callers (no interval: claim 10 stays
  # inconclusive there); make bench: unbounded.sh's default, 6 runs at 16 callers.
  if [ -x "$ROOT/scripts/unbounded.sh" ]; then
    if [ "$QUICK" -eq 1 ]; then export UNBOUNDED_PLAN="${UNBOUNDED_PLAN:-16:1 4:1}"; fi
    "$ROOT/scripts/unbounded.sh" "$BUILD" "$OUT" || note "unbounded.sh failed; claim 10 goes without its stress run"
  fi
  # BM_Aggregate's Go twin (claims 5 and 9 in Go): every benchmark once per pass,
  # at GOMAXPROCS 1 to the usable cores; about 20 s on 2 cores (5 passes of
  # 0.05 s per benchmark), about 5 s in bench-quick (4 passes of 0.01 s).
  if [ -f "$ROOT/scripts/go_micro.py" ]; then
    if [ "$QUICK" -eq 1 ]; then go_args="--repetitions 4 --benchtime 0.01s"; else go_args="--repetitions 5 --benchtime 0.05s"; fi
    # shellcheck disable=SC2086
    "$PYTHON" "$ROOT/scripts/go_micro.py" $go_args -o "$OUT/go_micro.json" ||
      note "go_micro.py failed; claims 5 and 9 go without their Go column"
  fi
  # The Go demonstrations (about 3 s once Go's build cache is warm): each program
  # built and run once; one that cannot be built is recorded as such in demos.json.
  if [ -f "$ROOT/scripts/demos.py" ]; then
    "$PYTHON" "$ROOT/scripts/demos.py" -o "$OUT/demos.json" || note "demos.py failed; claims 12 and 13 go without it"
  fi
  # 3. Figures and 4. the claims table.
  if [ -f "$ROOT/scripts/plot.py" ]; then
    "$PYTHON" "$ROOT/scripts/plot.py" "$OUT/report.json" -o "$OUT/plots" || note "plot.py failed"
  else
    note "skipping plots: scripts/plot.py missing"
  fi
  if [ -f "$ROOT/scripts/claims.py" ]; then
    "$PYTHON" "$ROOT/scripts/claims.py" "$OUT/report.json" > "$OUT/CLAIMS.md.tmp" &&
      "$PYTHON" "$ROOT/scripts/claims.py" "$OUT/report.json" --format json > "$OUT/claims.json" &&
      mv "$OUT/CLAIMS.md.tmp" "$OUT/CLAIMS.md" || { rm -f "$OUT/CLAIMS.md.tmp"; note "claims.py failed"; }
  else
    note "skipping claims: scripts/claims.py missing"
  fi
  # 5. The page that shows all of it: index.html, self-contained.
  if [ -f "$ROOT/scripts/report_html.py" ]; then
    "$PYTHON" "$ROOT/scripts/report_html.py" "$OUT/report.json" >/dev/null || note "report_html.py failed"
  else
    note "skipping index.html: scripts/report_html.py missing"
  fi
fi

# results/latest -> this folder (relative link, replaced atomically).
parent=$(dirname "$OUT")
ln -sfn "$(basename "$OUT")" "$parent/.latest.tmp.$$" && mv -T "$parent/.latest.tmp.$$" "$parent/latest"

wall=$(( $(date +%s) - start ))
echo "bench: report  $OUT/report.json"
[ -f "$OUT/micro.json" ] && echo "bench: micro   $OUT/micro.json"
[ -f "$OUT/go_micro.json" ] && echo "bench: go      $OUT/go_micro.json"
[ -f "$OUT/demos.json" ] && echo "bench: demos   $OUT/demos.json"
[ -f "$OUT/CLAIMS.md" ] && echo "bench: claims  $OUT/CLAIMS.md"
[ -d "$OUT/plots" ] && echo "bench: plots   $OUT/plots/"
[ -f "$OUT/trace.json" ] && echo "bench: trace   $OUT/trace.json (ui.perfetto.dev opens it)"
[ -f "$OUT/index.html" ] && echo "bench: page    $OUT/index.html"
echo "bench: latest  $parent/latest -> $(basename "$OUT")"
echo "bench: wall time ${wall}s"
exit "$status"
