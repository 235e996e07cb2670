#!/usr/bin/env bash
# bench_mock.sh ORCHLAB_MOCK — how fast and how exact is the mock?  (-h, --help: this text)
#
# Part 1, throughput: orchlab-mock (--threads 1, zero delay, 64-byte body)
# and nginx (1 worker, `return 200` of the same 64 bytes), both on loopback,
# each under `wrk -t1 -c64 -d5s`, alternating for ROUNDS rounds; prints each
# server's median req/s and CPU per request (from /proc) and the medians of
# the per-round ratios mock/nginx.
# Part 2, timer accuracy at scale: 10,000 concurrent keep-alive connections,
# each asking delay_ms=100 about once a second; prints the mock's own
# delay_error_ms p99, the client-side p99 (wrk) and the mock's peak RSS.
#
# Needs wrk, nginx (nginx-light) and /usr/bin/python3. Loopback only.
# Environment: DURATION (default 5s), ROUNDS (part 1, default 3),
#              CONNS (default 10000), DELAY_MS (default 100), SCALE_DURATION (default 10s),
#              MOCK_THREADS_SCALE (threads for part 2, default 1),
#              THINK_MS (mean pause between a connection's requests, default 900),
#              WARMUP_S (seconds of part 2 left out of the mock's stats, default 2).
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

usage() {
  echo "usage: $0 PATH/TO/orchlab-mock" >&2
  exit 2
}
[[ $# -eq 1 && -x "$1" ]] || usage
MOCK=$1
DURATION=${DURATION:-5s}
CONNS=${CONNS:-10000}
DELAY_MS=${DELAY_MS:-100}
SCALE_DURATION=${SCALE_DURATION:-10s}
MOCK_THREADS_SCALE=${MOCK_THREADS_SCALE:-1}
THINK_MS=${THINK_MS:-900}
WARMUP_S=${WARMUP_S:-2}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in wrk "$NGINX" "$PY"; do
  command -v "$tool" > /dev/null || { echo "bench_mock: $tool not found" >&2; exit 2; }
done

# Each side of 10,000 connections needs as many descriptors.
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
if (( $(ulimit -n) < CONNS + 100 )); then
  echo "bench_mock: ulimit -n is $(ulimit -n); part 2 needs $((CONNS + 100))" >&2
  exit 2
fi

WORK=$(mktemp -d /tmp/orchlab-bench-mock.XXXXXX)
MOCK_PID=
NGINX_PID=
cleanup() {
  [[ -n $MOCK_PID ]] && kill "$MOCK_PID" 2> /dev/null || true
  [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2> /dev/null || true
  wait 2> /dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

BODY=$(printf 'x%.0s' $(seq 63))   # 63 x's and a newline: the mock's 64-byte body
# A free loopback port for nginx (the kernel picks it; nginx binds it right after).
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts orchlab-mock with the given threads; sets MOCK_PID and MOCK_URL.
start_mock() {
  local threads=$1
  cat > "$WORK/mock.json" << EOF
{"services": [{"name": "bench", "port": 0, "body_bytes": 64,
               "latency": {"dist": "fixed", "ms": 0}}]}
EOF
  coproc MOCK_PROC { exec "$MOCK" --config "$WORK/mock.json" --threads "$threads"; }
  MOCK_PID=$MOCK_PROC_PID
  local line
  MOCK_URL=
  while read -r -t 20 line <&"${MOCK_PROC[0]}"; do
    [[ $line == '{"ready":true}' ]] && break
    MOCK_URL=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$line")
  done
  [[ -n $MOCK_URL ]] || { echo "bench_mock: orchlab-mock did not start" >&2; exit 1; }
}

stop_mock() {
  kill "$MOCK_PID"
  wait "$MOCK_PID" 2> /dev/null || true
  MOCK_PID=
}

start_nginx() {
  NGINX_PORT=$(free_port)
  mkdir -p "$WORK/nginx/logs"
  cat > "$WORK/nginx/nginx.conf" << EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type text/plain; return 200 "$BODY\n"; }
  }
}
EOF
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" 2> "$WORK/nginx/stderr" &
  NGINX_PID=$!
  for _ in $(seq 100); do
    "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.1)' \
      "$NGINX_PORT" 2> /dev/null && return 0
    sleep 0.05
  done
  echo "bench_mock: nginx did not start:" >&2
  cat "$WORK/nginx/stderr" >&2
  exit 1
}

# wrk's "Requests/sec:" figure, and its request count.
req_per_s() { awk '/^Requests\/sec:/ { print $2 }'; }
requests() { awk '/ requests in / { print $1 }'; }
# CPU ticks (user + system) of a process and its children (nginx's worker).
cpu_ticks() {
  local t=0 p
  for p in "$1" $(cat "/proc/$1/task/$1/children" 2> /dev/null); do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$t"
}
TICK=$(getconf CLK_TCK)
# One wrk run against a server: prints "req/s CPU-us-per-request".
measure() {
  local pid=$1 url=$2 before after out
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c64 -d"$DURATION" "$url")
  after=$(cpu_ticks "$pid")
  "$PY" -c 'import sys; rps, n, ticks, tick = sys.argv[1:]; print(rps, "%.2f" % (int(ticks) * 1e6 / int(tick) / int(n)))' \
    "$(req_per_s <<< "$out")" "$(requests <<< "$out")" "$((after - before))" "$TICK"
}

echo "== part 1: throughput, wrk -t1 -c64 -d$DURATION, 64-byte body, loopback, $ROUNDS alternated rounds"
start_mock 1
start_nginx
# Both bodies must be the same 64 bytes for the comparison to mean anything.
for url in "$MOCK_URL/" "http://127.0.0.1:$NGINX_PORT/"; do
  size=$("$PY" -c 'import sys,urllib.request; print(len(urllib.request.urlopen(sys.argv[1]).read()))' "$url")
  [[ $size == 64 ]] || { echo "bench_mock: $url answers $size bytes, not 64" >&2; exit 1; }
done
# Rounds alternate between the two servers so that a burst of load from
# elsewhere on the machine hits both alike; what counts are the medians and
# the median of the per-round ratios. Each server's CPU per request is read
# from /proc (nginx: master and worker): on a 2-core machine wrk itself can be
# the bottleneck, and then req/s tells the two servers apart less than CPU does.
ROUNDS_FILE=$WORK/rounds.txt
: > "$ROUNDS_FILE"
for round in $(seq "$ROUNDS"); do
  read -r m m_cpu <<< "$(measure "$MOCK_PID" "$MOCK_URL/")"
  read -r n n_cpu <<< "$(measure "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT/")"
  printf 'round %d: orchlab-mock %s req/s, %s us CPU/request; nginx %s req/s, %s us CPU/request\n' \
    "$round" "$m" "$m_cpu" "$n" "$n_cpu"
  echo "$m $m_cpu $n $n_cpu" >> "$ROUNDS_FILE"
done
stop_mock
kill "$NGINX_PID"
wait "$NGINX_PID" 2> /dev/null || true
NGINX_PID=

"$PY" - "$ROUNDS_FILE" << 'PY'
import statistics, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1]) if line.strip()]
med = lambda xs: statistics.median(xs)
print("orchlab-mock  %12.0f req/s  %6.2f us CPU/request  (medians of %d rounds)"
      % (med([r[0] for r in rows]), med([r[1] for r in rows]), len(rows)))
print("nginx         %12.0f req/s  %6.2f us CPU/request"
      % (med([r[2] for r in rows]), med([r[3] for r in rows])))
rps = [r[0] / r[2] for r in rows]
cpu = [r[1] / r[3] for r in rows]
print("ratio mock/nginx req/s       %.3f  (median of the rounds' ratios %s; target >= 1.0)"
      % (med(rps), ", ".join("%.2f" % x for x in rps)))
print("ratio mock/nginx CPU/request %.3f  (median of the rounds' ratios %s; lower is cheaper)"
      % (med(cpu), ", ".join("%.2f" % x for x in cpu)))
PY

echo
echo "== part 2: $CONNS keep-alive connections, delay_ms=$DELAY_MS each, mean think ${THINK_MS} ms, $SCALE_DURATION (mock --threads $MOCK_THREADS_SCALE)"
start_mock "$MOCK_THREADS_SCALE"
# Every connection stays open and asks delay_ms=DELAY_MS, then thinks for a
# random THINK_MS on average before asking again. Back to back (no think
# time), 10,000 connections would need 100,000 req/s — more than this whole
# machine serves (part 1) — and the test would measure saturation, not the
# mock's timers.
cat > "$WORK/think.lua" << EOF
math.randomseed(os.time())
function delay() return math.random(0, 2 * $THINK_MS) end
EOF
# One wrk thread: on a 2-core machine the other core is left to the mock.
wrk -t1 -c"$CONNS" -d"$SCALE_DURATION" --timeout 10s --latency -s "$WORK/think.lua" \
  "$MOCK_URL/?delay_ms=$DELAY_MS" > "$WORK/wrk-scale.txt" 2>&1 &
WRK_PID=$!
# The mock's statistics start after the warm-up (10,000 connects and the
# first requests); wrk's cover the whole run.
sleep "$WARMUP_S"
"$PY" -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/__reset", method="POST")).read()' "$MOCK_URL"
wait "$WRK_PID" || true
STATS=$("$PY" -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1] + "/__stats").read().decode())' "$MOCK_URL")
RSS_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$MOCK_PID/status")
stop_mock
"$PY" - "$WORK/wrk-scale.txt" "$STATS" "$RSS_KB" "$DELAY_MS" << 'EOF'
import json, re, sys
wrk_text, stats, rss_kb, delay_ms = open(sys.argv[1]).read(), json.loads(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

def wrk_ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), wrk_text, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

rps = re.search(r"^Requests/sec:\s+([\d.]+)", wrk_text, re.M)
errors = re.search(r"^\s*Socket errors:.*$", wrk_text, re.M)
err = stats["delay_error_ms"]
print("requests served          %d (%s req/s)" % (stats["completed"], rps.group(1) if rps else "?"))
print("max open connections     %d" % stats["max_open_connections"])
print("mock delay_error_ms      p50 %.3f  p99 %.3f  max %.3f  (target p99 <= 2 ms)"
      % (err["p50"], err["p99"], err["max"]))
print("client latency (wrk)     p50 %.1f ms  p99 %.1f ms  (target p99 <= %.0f ms)"
      % (wrk_ms("50%"), wrk_ms("99%"), delay_ms + 10))
print("mock peak RSS            %.1f MiB  (target <= 200 MiB)" % (rss_kb / 1024.0))
if errors:
    print("wrk:", errors.group(0).strip())
EOF
