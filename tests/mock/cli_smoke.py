"""Smoke test of the orchlab-mock binary: ready lines, a request, clean signals, bad configs."""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

GOOD = {"services": [{"name": "users", "port": 0, "body_bytes": 5},
                     {"name": "orders", "latency": {"dist": "fixed", "ms": 1}}]}


def create_parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("binary", help="path of orchlab-mock")
    return parser


def write_config(directory, name, content):
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def read_ready(proc, timeout_s=20.0):
    """Reads the service lines up to {"ready":true}; returns {name: url}."""
    urls = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        check(line, "orchlab-mock exited before the ready line")
        doc = json.loads(line)
        if doc == {"ready": True}:
            return urls
        urls[doc["service"]] = doc["url"]
    raise AssertionError("no ready line within %.0f s" % timeout_s)


def get(url, path):
    host, port = url[len("http://"):].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def run_and_signal(binary, config, sig):
    proc = subprocess.Popen([binary, "--config", config, "--threads", "2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        urls = read_ready(proc)
        check(set(urls) == {"users", "orders"}, "services: %r" % urls)
        check(all(u.startswith("http://127.0.0.1:") for u in urls.values()), "urls: %r" % urls)
        status, body = get(urls["users"], "/x")
        check(status == 200 and body == b"xxxxx", "GET users: %r %r" % (status, body))
        status, body = get(urls["orders"], "/__stats")
        check(status == 200 and json.loads(body)["service"] == "orders", "stats: %r" % body)
        proc.send_signal(sig)
        code = proc.wait(timeout=20)
        check(code == 0, "exit code after %s: %d" % (sig.name, code))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def expect_exit_2(binary, args, *needles):
    proc = subprocess.run([binary] + args, capture_output=True, text=True, timeout=30)
    check(proc.returncode == 2, "%r exited %d, stderr %r" % (args, proc.returncode, proc.stderr))
    check(proc.stdout == "", "%r printed %r (must bind nothing)" % (args, proc.stdout))
    for needle in needles:
        check(needle in proc.stderr, "%r: %r not in stderr %r" % (args, needle, proc.stderr))


def main():
    args = create_parser().parse_args()
    binary = args.binary
    with tempfile.TemporaryDirectory() as tmp:
        good = write_config(tmp, "good.json", GOOD)
        run_and_signal(binary, good, signal.SIGTERM)
        run_and_signal(binary, good, signal.SIGINT)

        helped = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
        check(helped.returncode == 0 and "Example:" in helped.stdout, "--help: %r" % helped.stdout)

        bad = write_config(tmp, "bad.json", {"services": [
            {"name": "ok", "port": 0},
            {"name": "broken", "latency": {"dist": "lognormal", "p50_ms": 10, "p99_ms": 5}}]})
        expect_exit_2(binary, ["--config", bad], bad, "services[1].latency.p99_ms", "must be >= p50_ms")
        remote = write_config(tmp, "remote.json", {"bind": "0.0.0.0", "services": [{"name": "a"}]})
        expect_exit_2(binary, ["--config", remote], remote, "bind", "--allow-remote")
        broken = write_config(tmp, "broken.json", "{\"services\": [")
        expect_exit_2(binary, ["--config", broken], broken, "not valid JSON")
        expect_exit_2(binary, ["--config", os.path.join(tmp, "missing.json")], "missing.json", "cannot open")
        expect_exit_2(binary, ["--config", good, "--threads", "zero"], "--threads")
        expect_exit_2(binary, ["--bogus"], "unknown argument")
    print("orchlab-mock smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
