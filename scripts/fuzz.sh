#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz one after another, each for
# SECONDS, then prints executions, coverage and corpus size per target.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]   (-h, --help: this text)
#   BUILD_DIR  a tree configured with -DORCHLAB_FUZZ=ON (make fuzz: build/fuzz)
#   TARGET     mock_request, config, scenario (default: all three)
#
# Before fuzzing, every input under tests/fuzz/regressions/<target>/ is
# replayed: each is a crash once found, so each must now pass. Fuzzing runs
# on a working corpus, BUILD_DIR/corpus/<target>, seeded from the committed
# tests/fuzz/corpus/<target>/ (which stays as committed); it grows across
# runs and is merged to a minimal set after each. Crash inputs land in
# BUILD_DIR/artifacts/<target>/. Exit status 1 when a regression fails or a
# target crashes.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ $# -ge 2 ] || { echo "usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...] (-h for help)" >&2; exit 2; }

build=$1
seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(mock_request config scenario)
src=$(cd "$(dirname "$0")/.." && pwd)/tests/fuzz

# Per-target flags. The mock target skips libFuzzer's per-input leak check:
# the mock's io thread allocates and frees across inputs, so every input
# would be run twice plus a full LSan scan (half the execs/s); LSan still
# checks the whole process at exit.
options() {
  case $1 in
    mock_request) echo "-dict=$src/mock_request.dict -max_len=10000 -detect_leaks=0" ;;
    config | scenario) echo "-dict=$src/json.dict -max_len=4096" ;;
    *) echo "fuzz: unknown target $1" >&2; exit 2 ;;
  esac
}

# cpu_now: sets CPU to the user + system seconds of this shell's finished
# children. `times` must run in this shell (a $(...) subshell has no
# children of its own), hence the file.
times_file=$(mktemp)
trap 'rm -f "$times_file"' EXIT
cpu_now() {
  times > "$times_file"
  CPU=$(tail -n 1 "$times_file" | awk '{
    n = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); sub("s", "", t[2]); n += t[1] * 60 + t[2] }
    printf "%.1f", n }')
}

status=0
summary=()
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: $bin not built" >&2; exit 2; }
  read -r -a opts <<< "$(options "$t")"
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t/
  mkdir -p "$corpus" "$artifacts"
  # A private log while running (make test's smoke may share BUILD_DIR with a
  # long run), renamed to fuzz_<target>.log at the end.
  log=$(mktemp "$build/fuzz_$t.XXXXXX.log")
  cp -n "$src/corpus/$t/"* "$corpus/"

  regressions=("$src/regressions/$t/"*)
  if [ -e "${regressions[0]}" ]; then
    if "$bin" "${opts[@]}" "${regressions[@]}" > "$log" 2>&1; then
      echo "fuzz_$t: ${#regressions[@]} regression input(s) pass"
    else
      mv -f "$log" "$build/regressions_$t.log"
      echo "fuzz_$t: a regression input fails; see $build/regressions_$t.log" >&2
      tail -n 30 "$build/regressions_$t.log" >&2
      status=1
      summary+=("fuzz_$t: REGRESSION FAILED")
      continue
    fi
  fi

  echo "fuzz_$t: fuzzing for ${seconds}s (log: $log)"
  cpu_now; before=$CPU
  result=ok
  "$bin" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$artifacts" "$corpus" > "$log" 2>&1 || result=CRASH
  cpu_now; after=$CPU
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  # -a: the log quotes input bytes, which can make grep call it binary.
  last=$(grep -a -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<< "$last")
  cpu=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.1f", b - a }')
  if [ $result = CRASH ]; then
    status=1
    grep -a -E 'ERROR|SUMMARY|Test unit written' "$log" >&2 || tail -n 30 "$log" >&2
    echo "fuzz_$t: full log in $build/fuzz_$t.log" >&2
  else
    # The working corpus keeps every input ever added, reduced ones too; a
    # merge keeps a minimal set with the same coverage, so the next run (and
    # make test's smoke) does not spend its seconds replaying it.
    rm -rf "$corpus.merged"
    mkdir "$corpus.merged"
    if "$bin" "${opts[@]}" -merge=1 "$corpus.merged" "$corpus" >> "$log" 2>&1; then
      rm -rf "$corpus"
      mv "$corpus.merged" "$corpus"
    fi
  fi
  files=$(find "$corpus" -type f | wc -l)
  mv -f "$log" "$build/fuzz_$t.log"
  summary+=("$(printf 'fuzz_%-13s %-5s runs %-10s cov %-6s ft %-7s corpus %-6s cpu %ss' \
    "$t" "$result" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$files" "$cpu")")
done

echo
printf '%s\n' "${summary[@]}"
exit $status
