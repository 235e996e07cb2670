# Sourced by scripts/bench_client.sh and scripts/callgrind_client.sh (not run
# on its own): the out-of-process orchlab-mock both measure the client path
# against, and the cleanup that stops it.
# The caller sets BUILD (a built tree) and PROG (its name, for messages);
# sourcing sets ORCHLAB and MOCK, the tree's two programs, and exits 1 if
# either is not built. The caller then calls start_client_mock; afterwards
# $tmp is a temporary folder, $mock_pid the mock and $urls its three
# services, comma separated.

ORCHLAB=$BUILD/harness/orchlab
MOCK=$BUILD/mock_services/orchlab-mock
for p in "$ORCHLAB" "$MOCK"; do
  [ -x "$p" ] || { echo "$PROG: $p not built (run make release)" >&2; exit 1; }
done

tmp=$(mktemp -d)
mock_pid=""
cleanup() {
  [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# Three services on loopback, zero delay, 64-byte bodies, one io thread.
start_client_mock() {
  cat > "$tmp/mock.json" <<'JSON'
{"bind": "127.0.0.1", "services": [
  {"name": "users", "port": 0, "seed": 1, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 0}},
  {"name": "orders", "port": 0, "seed": 2, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 0}},
  {"name": "inventory", "port": 0, "seed": 3, "body_bytes": 64, "latency": {"dist": "fixed", "ms": 0}}]}
JSON
  mkfifo "$tmp/ready"
  "$MOCK" --config "$tmp/mock.json" --threads 1 > "$tmp/ready" &
  mock_pid=$!
  # The mock prints one JSON line per service, then {"ready":true}.
  urls=""
  while IFS= read -r line; do
    case $line in
      *'"ready":true'*) break ;;
      *'"url"'*) url=$(printf '%s\n' "$line" | sed 's/.*"url":"\([^"]*\)".*/\1/'); urls="$urls${urls:+,}$url" ;;
    esac
  done < "$tmp/ready"
  [ -n "$urls" ] || { echo "$PROG: orchlab-mock did not start" >&2; exit 1; }
}
