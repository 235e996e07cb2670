#!/usr/bin/env bash
# soak.sh [ORCHLAB_MOCK [ORCHLAB]] — does anything leak over minutes of faults?  (-h, --help: this text)
#
# Part 1, the mock: orchlab-mock with every fault kind on at a few percent
# each (status, hang up to 300 ms, reset, close, slow_body, garbage; latency
# lognormal p50 2 ms, p99 20 ms) on two loopback services, driven by 5,000
# keep-alive connections (two `wrk -t1 -c2500`, one per service; wrk
# reconnects after every fault that ends a connection) for SOAK_S seconds.
# Each connection pauses a random 0-2*SOAK_THINK_MS ms between its requests
# (a wrk Lua delay(); about 10,000 req/s in all): back to back, 5,000
# connections saturate two cores, the ~8 % of requests whose fault ends the
# connection make ~3,000 reconnects/s, and most connections then wait in the
# kernel's accept queue instead of being open in the mock.
# RSS (VmRSS) and open connections are sampled every 10 s. Checks: the
# connections were held; RSS after the warm-up (the first minute, or the
# first 10 % of SOAK_S when SOAK_S < 600) grows by at most 10 % over the
# sample at the warm-up mark; once the clients have left, open fds are back
# to the baseline taken before the load (+2), in_flight is 0, the only open
# connection of a service is our /__stats request, the /__stats identity
# (requests = completed + client_aborts + no_response + bad_requests +
# in_flight) holds on every service, a healthy request
# (?fault=none&delay_ms=0) answers 200, and SIGTERM exits 0.
# Part 2, the harness: one `orchlab run --scenario flaky --patterns all`
# process, SOAK2_REPS repetitions (default 4, at least 3), --duration sized
# so that the run lasts about SOAK2_S seconds; its Threads and VmRSS are
# sampled every 10 s and whenever a cell's progress line appears (shown).
# The run keeps its results in its journal, not in memory, so its heap does
# not grow with the repetitions it has done. Checks: the run exits 0 in time;
# the report is JSON with every repetition in `benchmarks`, not interrupted;
# memory: each C++ repetition's rss_baseline_kb (the harness's RSS after
# malloc_trim, before the repetition's load) in run order, the first round
# (one repetition of every cell: arenas and pools warm up) left out, has a
# least-squares slope whose 95 % interval lies above 16 KiB per repetition
# AND whose growth over the judged repetitions exceeds 1 MiB only when
# something leaks: allocator noise (a few hundred kB either way) stays
# inside the interval or the slack, a leak of 64 KiB per repetition
# (ORCHLAB_TEST_LEAK_KB=64, a test hook of orchlab) does not. Per-cell
# ratios of the sampled RSS and of rss_peak_kb are shown, not judged (they
# read 1.1-1.3x on noise alone); the harness's own
# threads at the end of each repetition (threads_end, after its drain,
# minus the calls still running by design, leaked_tasks_end) are the same
# (+-1) after every repetition of a cell with nothing left running and at
# most the first cell's count + nproc (async-group's pool); in the
# anti-patterns' cells, where leaked calls are still ending at that moment,
# they come back to the first cell's count (+1) in at least one repetition.
#
# Prints a table of every check and exits 1 when one fails, 2 on bad usage.
# Loopback only. Needs wrk, curl and /usr/bin/python3.
# Binaries: arguments, else ORCHLAB_MOCK / ORCHLAB, else build/release/...
# Environment: SOAK_S (part 1 seconds, default 600), SOAK2_S (part 2
#              seconds, default 600), SOAK_CONNS (default 5000),
#              SOAK_THINK_MS (mean pause between a connection's requests,
#              default 500; 0 = back to back), SOAK_PARTS ("1 2", "1" or
#              "2"), MOCK_THREADS (orchlab-mock --threads, default 2),
#              SOAK2_REPS (part 2 repetitions, default 4),
#              ORCHLAB_TEST_LEAK_KB=K (orchlab leaks K KiB per repetition:
#              the memory check must then fail),
#              SOAK_KEEP=1 (keep the work directory with samples and logs).
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

usage() {
  echo "usage: scripts/soak.sh [ORCHLAB_MOCK [ORCHLAB]]   (-h for help)" >&2
  exit 2
}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -le 2 ]] || usage
for a in "$@"; do [[ $a == -* ]] && { echo "soak: unknown option $a" >&2; usage; }; done
MOCK=${1:-${ORCHLAB_MOCK:-$ROOT/build/release/mock_services/orchlab-mock}}
ORCHLAB=${2:-${ORCHLAB:-$ROOT/build/release/harness/orchlab}}
is_num() { [[ $1 =~ ^[0-9]+$ ]] && (( $1 > 0 )); }
SOAK_S=${SOAK_S:-600}
SOAK2_S=${SOAK2_S:-600}
CONNS=${SOAK_CONNS:-5000}
PARTS=${SOAK_PARTS:-1 2}
MOCK_THREADS=${MOCK_THREADS:-2}
THINK_MS=${SOAK_THINK_MS:-500}
for v in "$SOAK_S" "$SOAK2_S" "$CONNS" "$MOCK_THREADS"; do
  is_num "$v" || { echo "soak: SOAK_S, SOAK2_S, SOAK_CONNS, MOCK_THREADS must be positive integers" >&2; usage; }
done
if ! [[ ${SOAK2_REPS:-4} =~ ^[0-9]+$ ]] || (( ${SOAK2_REPS:-4} < 3 )); then
  echo "soak: SOAK2_REPS must be an integer >= 3" >&2; usage
fi
[[ $THINK_MS =~ ^[0-9]+$ ]] || { echo "soak: SOAK_THINK_MS must be an integer >= 0" >&2; usage; }
[[ $PARTS =~ ^[12\ ]+$ ]] || { echo "soak: SOAK_PARTS must be \"1 2\", \"1\" or \"2\"" >&2; usage; }
want() { [[ " $PARTS " == *" $1 "* ]]; }
if want 1; then [[ -x $MOCK ]] || { echo "soak: $MOCK is not an executable" >&2; usage; }; fi
if want 2; then [[ -x $ORCHLAB ]] || { echo "soak: $ORCHLAB is not an executable" >&2; usage; }; fi
PY=/usr/bin/python3
for tool in wrk curl "$PY"; do
  command -v "$tool" > /dev/null || { echo "soak: $tool not found (scripts/install-deps.sh)" >&2; exit 2; }
done
NPROC=$(nproc)

# Both ends of every connection are on this machine: the mock needs CONNS
# descriptors, each wrk CONNS/2.
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
if want 1 && (( $(ulimit -n) < CONNS + 200 )); then
  echo "soak: ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $CONNS connections need $((CONNS + 200))" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/orchlab-soak.XXXXXX)
PIDS=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  if [[ ${SOAK_KEEP:-0} == 1 ]]; then echo "soak: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM
forget() { local p keep=(); for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done; PIDS=("${keep[@]}"); }

# --- the table -------------------------------------------------------------
C_NAME=() C_VAL=() C_LIM=() C_RES=()
FAILED=0
# check NAME VALUE LIMIT OK  (OK: 1 pass, 0 fail, - information only)
check() {
  local res=PASS
  case $4 in 1) res=PASS ;; 0) res=FAIL; FAILED=1 ;; *) res=info ;; esac
  C_NAME+=("$1") C_VAL+=("$2") C_LIM+=("$3") C_RES+=("$res")
  printf 'soak: %-4s %s = %s (%s)\n' "$res" "$1" "$2" "$3" >&2
}
print_table() {
  local i w1=5 w2=8 w3=5
  for i in "${!C_NAME[@]}"; do
    (( ${#C_NAME[i]} > w1 )) && w1=${#C_NAME[i]}
    (( ${#C_VAL[i]} > w2 )) && w2=${#C_VAL[i]}
    (( ${#C_LIM[i]} > w3 )) && w3=${#C_LIM[i]}
  done
  printf '%-*s | %-*s | %-*s | %s\n' "$w1" check "$w2" measured "$w3" limit result
  printf '%s-|-%s-|-%s-|-------\n' "$(printf '%*s' "$w1" '' | tr ' ' -)" \
    "$(printf '%*s' "$w2" '' | tr ' ' -)" "$(printf '%*s' "$w3" '' | tr ' ' -)"
  for i in "${!C_NAME[@]}"; do
    printf '%-*s | %-*s | %-*s | %s\n' "$w1" "${C_NAME[i]}" "$w2" "${C_VAL[i]}" "$w3" "${C_LIM[i]}" "${C_RES[i]}"
  done
}

now_ms() { local e=${EPOCHREALTIME/./}; echo $(( ${e#0} / 1000 )); }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2> /dev/null || true; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2> /dev/null | wc -l; }
# The warm-up: the first minute, or the first 10 % of a shorter soak.
warmup_of() { if (( $1 >= 600 )); then echo 60; else echo $(( ($1 + 9) / 10 )); fi; }
# rss_rule FILE WARM: "value limit ok" from "t rss ..." samples: max after WARM over the sample at WARM.
rss_rule() {
  "$PY" - "$1" "$2" << 'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
warm = float(sys.argv[2])
rows = [(float(r[0]), int(r[1])) for r in rows if r[1] != "-"]
ref = [r for r in rows if r[0] >= warm][:1]   # the sample at the warm-up mark (or the first after it)
later = [kb for t, kb in rows if ref and t > ref[0][0]]
if not ref or not later:
    print("no-samples <=1.10x 0")
else:
    grow = max(later) / ref[0][1]
    print("%dkB@%ds->max%dkB(x%.3f) <=%dkB(1.10x) %d"
          % (ref[0][1], ref[0][0], max(later), grow, int(ref[0][1] * 1.10), grow <= 1.10))
EOF
}

# --- part 1: the mock under 5,000 connections and every fault ----------------
part1() {
  local warm hang_ms=300 half=$((CONNS / 2))
  warm=$(warmup_of "$SOAK_S")
  echo "== part 1: orchlab-mock, every fault kind, $CONNS keep-alive connections, think ${THINK_MS} ms, ${SOAK_S}s (warm-up ${warm}s)" >&2
  # Two services so that "every service" means something; faults first match wins,
  # each a few percent: ~12 % of requests are faulted, ~8 % end the connection.
  local faults='[{"kind": "status", "code": 503, "probability": 0.03},
                 {"kind": "hang", "probability": 0.02, "max_ms": '$hang_ms'},
                 {"kind": "reset", "probability": 0.02},
                 {"kind": "close", "probability": 0.02},
                 {"kind": "slow_body", "probability": 0.02, "bytes_per_s": 4096},
                 {"kind": "garbage", "probability": 0.02}]'
  local lat='{"dist": "lognormal", "p50_ms": 2, "p99_ms": 20, "max_ms": 200}'
  cat > "$WORK/mock.json" << EOF
{"bind": "127.0.0.1",
 "services": [
  {"name": "soak-a", "port": 0, "seed": 11, "body_bytes": 256, "latency": $lat, "faults": $faults},
  {"name": "soak-b", "port": 0, "seed": 12, "body_bytes": 256, "latency": $lat, "faults": $faults}]}
EOF
  "$MOCK" --config "$WORK/mock.json" --threads "$MOCK_THREADS" > "$WORK/mock.out" 2> "$WORK/mock.err" &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  local i
  for i in $(seq 200); do
    grep -q '^{"ready":true}' "$WORK/mock.out" && break
    kill -0 "$MOCK_PID" 2> /dev/null || break
    sleep 0.1
  done
  grep -q '^{"ready":true}' "$WORK/mock.out" || {
    echo "soak: orchlab-mock did not start:" >&2; cat "$WORK/mock.err" >&2; exit 1; }
  mapfile -t URLS < <("$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "url" in d: print(d["url"])' "$WORK/mock.out")
  S_requests=0 S_in_flight=0 S_open_connections=0 S_max_open_connections=0 S_refused_connections=0 S_max_in_flight=0
  S_ok=0 S_identity=- S_faults=- S_fault_min=0
  # Stats over all services, as shell assignments: sums, per-service identity, fault kinds.
  stats() {
    "$PY" - "${URLS[@]}" << 'EOF'
import json, sys, urllib.request
keys = ["requests", "completed", "client_aborts", "no_response", "bad_requests", "in_flight",
        "open_connections", "max_open_connections", "refused_connections", "header_timeouts", "max_in_flight",
        "write_timeouts"]
tot = dict.fromkeys(keys, 0)
faults, bad_identity, ok = {}, [], 1
for url in sys.argv[1:]:
    try:
        s = json.loads(urllib.request.urlopen(url + "/__stats", timeout=5).read())
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        ok = 0
        continue
    for k in keys:
        tot[k] += s.get(k, 0)
    for k, v in s.get("faults", {}).items():
        faults[k] = faults.get(k, 0) + v
    rhs = s["completed"] + s["client_aborts"] + s["no_response"] + s["bad_requests"] + s["in_flight"]
    if s["requests"] != rhs:
        bad_identity.append("%s:%d!=%d" % (s["service"], s["requests"], rhs))
for k in keys:
    print("S_%s=%d" % (k, tot[k]))
print("S_ok=%d" % ok)
print("S_identity=%s" % (",".join(bad_identity) or "ok"))
print("S_faults='%s'" % " ".join("%s:%d" % kv for kv in sorted(faults.items())))
kinds = ["status", "hang", "reset", "close", "slow_body", "garbage"]
print("S_fault_min=%d" % min(faults.get(k, 0) for k in kinds))
EOF
  }
  sleep 0.5
  local fd_base
  fd_base=$(nfds "$MOCK_PID")
  echo "soak: mock pid $MOCK_PID, ${URLS[*]}, $fd_base fds before the load" >&2

  local wrk_pids=() u n=0 script=()
  if (( THINK_MS > 0 )); then
    printf 'math.randomseed(os.time())\nfunction delay() return math.random(0, %d) end\n' \
      $((2 * THINK_MS)) > "$WORK/think.lua"
    script=(-s "$WORK/think.lua")
  fi
  for u in "${URLS[@]}"; do
    wrk -t1 -c"$half" -d"${SOAK_S}s" --timeout 5s "${script[@]}" "$u/" > "$WORK/wrk-$n.txt" 2>&1 &
    wrk_pids+=($!)
    PIDS+=($!)
    n=$((n + 1))
  done
  local start=$SECONDS t last=-1 rss min_open=-1 samples="$WORK/p1-samples.txt"
  : > "$samples"
  local alive=1
  while (( alive )); do
    t=$((SECONDS - start))
    if (( t != last )) && (( t % 10 == 0 || t == warm )); then
      last=$t
      rss=$(status_kb "$MOCK_PID" VmRSS)
      eval "$(stats)"
      echo "$t ${rss:--} $S_open_connections $S_requests $(nfds "$MOCK_PID") $(cut -d' ' -f1 /proc/loadavg)" >> "$samples"
      echo "soak: p1 t=${t}s rss=${rss}kB open=$S_open_connections requests=$S_requests" >&2
      if (( t >= warm )) && (( t < SOAK_S - 1 )) && { (( min_open < 0 )) || (( S_open_connections < min_open )); }; then
        min_open=$S_open_connections
      fi
    fi
    alive=0
    for u in "${wrk_pids[@]}"; do kill -0 "$u" 2> /dev/null && alive=1; done
    if (( t > SOAK_S + 60 )); then
      echo "soak: wrk did not stop in time, killing it" >&2
      for u in "${wrk_pids[@]}"; do kill -KILL "$u" 2> /dev/null || true; done
    fi
    (( alive )) && sleep 0.5
  done
  for u in "${wrk_pids[@]}"; do wait "$u" 2> /dev/null || true; forget "$u"; done
  kill -0 "$MOCK_PID" 2> /dev/null || { check "p1 mock alive after the load" "dead" "alive" 0; return; }

  # The clients have left: wait (bounded, well past the hang's max_ms) for the mock to settle.
  local settle_end=$((SECONDS + 10 + hang_ms / 1000)) fds
  while :; do
    eval "$(stats)"
    fds=$(nfds "$MOCK_PID")
    (( S_in_flight == 0 && S_open_connections <= ${#URLS[@]} && fds <= fd_base + 2 )) && break
    (( SECONDS >= settle_end )) && break
    sleep 0.5
  done
  sleep 1   # one more second, then measure for good
  eval "$(stats)"
  fds=$(nfds "$MOCK_PID")

  local reqs=0 errs="" f
  for f in "$WORK"/wrk-*.txt; do
    reqs=$((reqs + $(awk '/requests in/ { print $1 }' "$f")))
    errs+="$(grep -h 'Socket errors' "$f" | sed 's/^ *Socket errors: *//'); "
  done
  check "p1 wrk requests (both wrk)" "$reqs; socket errors: ${errs%; }" ">0" "$(( reqs > 0 ))"
  check "p1 peak open connections (max_open_connections, all services)" "$S_max_open_connections" \
    ">=$((CONNS * 98 / 100)) (98% of $CONNS)" "$(( S_max_open_connections >= CONNS * 98 / 100 ))"
  check "p1 min open connections sampled after warm-up" "$min_open" ">=$((CONNS * 90 / 100)) (90%)" \
    "$(( min_open >= CONNS * 90 / 100 ))"
  check "p1 refused connections" "$S_refused_connections" "0" "$(( S_refused_connections == 0 ))"
  check "p1 every fault kind fired (min count; $S_faults)" "$S_fault_min" ">0" "$(( S_fault_min > 0 ))"
  local r
  read -r -a r <<< "$(rss_rule "$samples" "$warm")"
  check "p1 mock RSS growth after ${warm}s warm-up (VmRSS, 10 s samples)" "${r[0]}" "${r[1]}" "${r[2]}"
  check "p1 open fds after the load (baseline before the load: $fd_base)" "$fds" "<=$((fd_base + 2)) (baseline+2)" \
    "$(( fds <= fd_base + 2 ))"
  check "p1 in_flight after the load (all services)" "$S_in_flight" "0" "$(( S_in_flight == 0 ))"
  check "p1 open connections after the load (all services)" "$S_open_connections" \
    "<=${#URLS[@]} (our /__stats, one per service)" "$(( S_open_connections <= ${#URLS[@]} ))"
  check "p1 /__stats identity on every service" "$S_identity (requests=$S_requests)" \
    "requests=completed+client_aborts+no_response+bad_requests+in_flight" "$([[ $S_identity == ok && $S_ok == 1 ]] && echo 1 || echo 0)"
  local codes="" ok=1 code
  for u in "${URLS[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$u/?fault=none&delay_ms=0" || true)
    codes+="$code "
    [[ $code == 200 ]] || ok=0
  done
  check "p1 healthy request on every service (?fault=none&delay_ms=0)" "${codes% }" "200" "$ok"
  check "p1 mock VmHWM (peak RSS)" "$(status_kb "$MOCK_PID" VmHWM)kB" "-" "-"
  # For a failed RSS check: a leak grows with the requests; the allocator's
  # high-water mark grows only with the peak concurrency (max_in_flight, which
  # jumps when the machine is busy and requests pile up) and then stays flat.
  check "p1 mock max_in_flight (all services)" "$S_max_in_flight" "-" "-"
  check "p1 mock VmRSS, second half of the soak (first..max..last)" \
    "$(awk -v h=$((SOAK_S / 2)) '$1 >= h && $2 != "-" { if (f == "") f = $2; if ($2 > m) m = $2; l = $2 } END { print f ".." m ".." l " kB" }' "$samples")" "-" "-"
  check "p1 load average (1 min) over the samples (min..max)" \
    "$(awk '{ if (mn == "" || $6 < mn) mn = $6; if ($6 > mx) mx = $6 } END { print mn ".." mx }' "$samples")" "- (nproc $NPROC)" "-"
  kill -TERM "$MOCK_PID"
  local st=0
  wait "$MOCK_PID" || st=$?
  forget "$MOCK_PID"
  check "p1 mock exit status on SIGTERM" "$st" "0" "$(( st == 0 ))"
}

# --- part 2: one orchlab run over minutes ------------------------------------
part2() {
  local npat d reps="${SOAK2_REPS:-4}" est
  # "Patterns (runtime):"; the go-* exhibits count only when their driver is built.
  npat=$("$ORCHLAB" list | awk '/^Patterns/ { p = 1; next } /^[A-Z]/ { p = 0 } p && NF && !/not built/ { n++ } END { print n + 0 }')
  (( npat > 0 )) || npat=8
  # One repetition of every cell takes about npat * duration plus ~6.5 s: the
  # three patterns that wait for hung calls drain for up to ~2 s each. A few
  # long repetitions rather than many short ones: the run keeps every
  # repetition's histograms (~100 kB) for the report, which would otherwise
  # pass for a leak.
  d=$(( (SOAK2_S * 10 / reps - 65 + npat * 5) / (npat * 10) )); (( d < 1 )) && d=1
  est=$(( reps * (npat * d * 10 + 65) / 10 ))
  echo "== part 2: orchlab run --scenario flaky --patterns all --duration ${d}s --repetitions $reps ($npat cells, ~${est}s)" >&2
  # Builds whose orchlab serves the scenario from an orchlab-mock child process
  # take the binary from $ORCHLAB_MOCK: the same one as part 1 (older ones ignore it).
  [[ -x $MOCK ]] && export ORCHLAB_MOCK=$MOCK
  ( cd "$ROOT" && exec "$ORCHLAB" run --scenario flaky --patterns all --duration "${d}s" \
      --repetitions "$reps" --out "$WORK/report.json" ) > "$WORK/orchlab.out" 2> "$WORK/orchlab.err" &
  local pid=$! start_ms t_ms tick=-1 thr rss cells=0 c samples="$WORK/p2-samples.txt" limit=$((2 * SOAK2_S + 120))
  start_ms=$(now_ms)
  PIDS+=("$pid")
  : > "$samples"
  : > "$WORK/p2-cells.txt"
  # Samples every 10 s, and whenever a cell's line appears on stderr (its last repetition has
  # drained; the next cell's callers start milliseconds later).
  while kill -0 "$pid" 2> /dev/null; do
    t_ms=$(( $(now_ms) - start_ms ))
    c=$(grep -c '^\[[0-9]*/[0-9]*\]' "$WORK/orchlab.err" || true)
    if (( t_ms / 10000 != tick || c != cells )); then
      if (( c != cells )); then
        echo "soak: p2 $(grep '^\[' "$WORK/orchlab.err" | tail -n1)" >&2
        echo "$c $((t_ms / 1000)).$((t_ms % 1000 / 100))" >> "$WORK/p2-cells.txt"
      fi
      tick=$((t_ms / 10000)) cells=$c
      thr=$(status_kb "$pid" Threads)
      rss=$(status_kb "$pid" VmRSS)
      [[ -n $rss ]] && echo "$((t_ms / 1000)).$((t_ms % 1000 / 100)) $rss ${thr:--} $c $(cut -d' ' -f1 /proc/loadavg)" >> "$samples"
    fi
    if (( t_ms > limit * 1000 )); then
      echo "soak: orchlab run past ${limit}s, interrupting it" >&2
      kill -INT "$pid" 2> /dev/null || true
      sleep 30
      kill -KILL "$pid" 2> /dev/null || true
    fi
    sleep 0.2
  done
  local st=0
  wait "$pid" || st=$?
  forget "$pid"
  t_ms=$(( $(now_ms) - start_ms ))
  check "p2 orchlab run exit status" "$st" "0" "$(( st == 0 ))"
  check "p2 wall time (planned ~${est}s)" "$((t_ms / 1000))s" "<=${limit}s" "$(( t_ms <= limit * 1000 ))"
  # The report: valid JSON, every repetition present, and the per-repetition rules.
  "$PY" - "$WORK/report.json" "$reps" "$npat" "$NPROC" "$samples" "$WORK/p2-cells.txt" "$SOAK2_S" \
    > "$WORK/report-checks.txt" << 'EOF' || true
import json, sys
path, reps, npat, nproc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def out(name, value, limit, ok):
    print("\t".join([name, str(value), limit, "-" if ok is None else "1" if ok else "0"]))

# The /proc samples ("t rss threads cells_done"), cut into cells at the times their lines appeared.
samples = [l.split() for l in open(sys.argv[5]) if l.strip()]
samples = [(float(t), int(kb), int(th) if th != "-" else None, int(c), float(la)) for t, kb, th, c, la in samples]
ends = {int(k): float(t) for k, t in (l.split() for l in open(sys.argv[6]) if l.strip())}
if samples:
    out("p2 orchlab VmRSS sampled (first..max..last)", "%d..%d..%d kB" % (samples[0][1], max(s[1] for s in samples),
        samples[-1][1]), "- (judged by the slope below)", None)
    ths = [s[2] for s in samples if s[2] is not None]
    out("p2 orchlab OS threads sampled (min..max)", "%d..%d" % (min(ths), max(ths)) if ths else "-", "-", None)
    out("p2 load average (1 min) over the samples (min..max)", "%.2f..%.2f" % (min(s[4] for s in samples),
        max(s[4] for s in samples)), "- (nproc %d)" % nproc, None)
# Within a cell the repetitions do the same work. The first repetition of a
# cell is its warm-up (its client pool fills; in the first cell the process's
# malloc arenas warm up too, one per thread for ~100 threads, and channel-soup's
# peak grows over its first repetitions, then flattens). The RSS sampled during
# the repetitions after the second stays within 10 % of the peak sampled during
# the second (repetition boundaries: the cell's time span cut into `reps` equal
# parts).
worst, where, judged = 0.0, "-", 0
for k in range(1, npat + 1):
    if k not in ends:
        continue
    t0, t1 = ends.get(k - 1, 0.0), ends[k]
    ref_start, ref_end = t0 + (t1 - t0) / reps, t0 + 2 * (t1 - t0) / reps
    inside = [s for s in samples if t0 < s[0] < t1 and s[3] == k - 1]
    ref = [s[1] for s in inside if ref_start < s[0] <= ref_end]
    later = [s[1] for s in inside if s[0] > ref_end]
    if not ref or not later:
        continue
    judged += 1
    if max(later) / max(ref) > worst:
        worst, where = max(later) / max(ref), "cell %d: %d/%d kB" % (k, max(later), max(ref))
out("p2 VmRSS sampled in repetitions 3.. / peak in repetition 2, per cell (worst; %d of %d cells sampled in both)"
    % (judged, npat), "x%.3f (%s)" % (worst, where) if judged else "no samples", "- (noise: see the slope)", None)
try:
    with open(path) as f:
        doc = json.load(f)
    bench = doc["benchmarks"]
    assert isinstance(bench, list) and bench
except Exception as e:  # noqa: BLE001
    out("p2 report is JSON with a non-empty benchmarks array", type(e).__name__, "valid", False)
    sys.exit(0)
it = [b for b in bench if b.get("run_type") == "iteration"]
out("p2 report is JSON with a non-empty benchmarks array", "%d entries, %d repetitions" % (len(bench), len(it)),
    "%d repetitions (%d cells x %d)" % (npat * reps, npat, reps), len(it) == npat * reps)
out("p2 report not interrupted, no infeasible cell",
    "interrupted=%s infeasible=%d" % (doc.get("context", {}).get("interrupted"), sum(1 for b in it if b.get("infeasible"))),
    "false, 0", doc.get("context", {}).get("interrupted") is False and not any(b.get("infeasible") for b in it))
cells = {}
for b in it:
    cells.setdefault(b["name"], []).append(b)
# RSS: every repetition's own peak (the harness's VmHWM, reset as it starts)
# within 10 % of the cell's second repetition's; the first is the warm-up (shown).
def worst_vs(ref_index):
    worst, where = 0.0, "-"
    for rs in cells.values():
        rs.sort(key=lambda b: b["repetition_index"])
        ref = rs[ref_index].get("rss_peak_kb") if len(rs) > ref_index else None
        for b in rs[ref_index + 1:]:
            if ref and b.get("rss_peak_kb") is not None and b["rss_peak_kb"] / ref > worst:
                worst, where = b["rss_peak_kb"] / ref, "%s rep %d: %d/%d kB" % (
                    b["pattern"], b["repetition_index"] + 1, b["rss_peak_kb"], ref)
    return worst, where
worst, where = worst_vs(0)
out("p2 rss_peak_kb of repetitions 2.. / repetition 1 (the warm-up; worst)", "x%.3f (%s)" % (worst, where), "-", None)
worst, where = worst_vs(1)
out("p2 rss_peak_kb of repetitions 3.. / repetition 2, per cell (worst)", "x%.3f (%s)" % (worst, where),
    "- (noise: see the slope)", None)
# Growth, not noise: the harness's RSS before each C++ repetition (a Go
# repetition's baseline is its driver's), in run order, after the first round.
SLOPE_SLACK_KB, GROWTH_SLACK_KB = 16.0, 1024.0
runs = sorted((b for b in it if b.get("runtime") != "go" and b.get("rss_baseline_kb") is not None
               and b.get("window_start_unix_ns") is not None), key=lambda b: b["window_start_unix_ns"])
ncells = len({b["name"] for b in runs})
ys = [float(b["rss_baseline_kb"]) for b in runs[ncells:]]
n = len(ys)
if n >= 6:
    xs = list(range(n))
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    resid = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys))
    se = (resid / (n - 2) / sxx) ** 0.5
    z, df = 1.959964, n - 2  # t quantile 0.975 (Cornish-Fisher from the normal's)
    t = z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
    lo, hi = slope - t * se, slope + t * se
    grew = slope * (n - 1)
    leaking = lo > SLOPE_SLACK_KB and grew > GROWTH_SLACK_KB
    out("p2 harness RSS before each repetition: slope over %d repetitions after the first round (%d..%d kB)"
        % (n, min(ys), max(ys)), "%+.1f kB/rep [%+.1f, %+.1f] 95%%, %+.0f kB over the run" % (slope, lo, hi, grew),
        "not (lower > %d kB/rep and growth > %d kB)" % (SLOPE_SLACK_KB, GROWTH_SLACK_KB), not leaking)
else:
    out("p2 harness RSS before each repetition: slope", "%d repetitions after the first round" % n, ">= 6", False)
# Threads: at the end of a repetition (after its drain), OS threads minus the
# calls still running by design (the anti-patterns' leaked calls, counted by the
# census) are the harness's own threads. In a cell where nothing is left running
# they are the same after every repetition, and at most the first cell's count +
# nproc (async-group's pool). Where leaked calls are still ending at that moment
# (their 2 s hangs expire as the ~1.9 s drain gives up), a call that has left the
# census may not have exited its OS thread yet: there they must come back to the
# baseline in at least one repetition, and a leak that persisted would show in the
# quiet cells that follow.
resident = {name: [b["threads_end"] - b["leaked_tasks_end"] for b in rs] for name, rs in cells.items()
            if all(b.get("threads_end") is not None and b.get("leaked_tasks_end") is not None for b in rs)}
if not resident:
    out("p2 threads_end - leaked_tasks_end", "missing", "present", False)
    sys.exit(0)
first = next(iter(resident))
base = min(resident[first])
quiet = {n: v for n, v in resident.items() if not any(b["leaked_tasks_end"] for b in cells[n])}
busy = {n: v for n, v in resident.items() if n not in quiet}
short = lambda n: cells[n][0]["pattern"]
if quiet:
    spread = max(max(v) - min(v) for v in quiet.values())
    top = max(max(v) for v in quiet.values())
    out("p2 own threads at rep ends, cells with nothing left running (%d): spread in a cell, max" % len(quiet),
        "spread %d, max %d" % (spread, top), "spread<=1, max<=%d (baseline %d + nproc %d)" % (base + nproc, base, nproc),
        spread <= 1 and top <= base + nproc)
if busy:
    mins = {short(n): min(v) for n, v in busy.items()}
    maxs = {short(n): max(v) for n, v in busy.items()}
    out("p2 own threads at rep ends, cells with leaked calls still ending (%d): min per cell (max)" % len(busy),
        " ".join("%s:%d(%d)" % (p, mins[p], maxs[p]) for p in mins), "min<=%d (baseline+1)" % (base + 1),
        max(mins.values()) <= base + 1)
leaked = {rs[0]["pattern"]: max(b["leaked_tasks_end"] or 0 for b in rs) for rs in cells.values()}
out("p2 leaked_tasks_end by pattern (max; by design)", " ".join("%s:%d" % kv for kv in leaked.items()), "-", None)
EOF
  if [[ -s $WORK/report-checks.txt ]]; then
    local name value lim ok
    while IFS=$'\t' read -r name value lim ok; do
      check "$name" "$value" "$lim" "$ok"
    done < "$WORK/report-checks.txt"
  else
    check "p2 report is JSON with a non-empty benchmarks array" "no report" "valid" 0
  fi
}

want 1 && part1
want 2 && part2
echo
print_table
exit "$FAILED"
