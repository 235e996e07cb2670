#!/usr/bin/python3
"""Whole-program tests of orchlab's services: URLs as written, null server fields, the orchlab-mock child."""
import argparse
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_test  # noqa: E402  (the report schema check is shared)

ORCHLAB = None
MOCK = None
SERVER_FIELDS = ["server_client_aborts", "server_work_past_deadline_ms", "server_abort_lag_p99_ms",
                 "server_requests", "server_completed_after_deadline", "server_max_in_flight"]


class Recorder(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTP server that is not orchlab-mock: it answers every GET 200 and
    has no /__stats (404), and it records each request line and the
    X-Orchlab-* headers it came with."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host):
        self.requests = []
        self.lock = threading.Lock()
        super().__init__((host, 0), RecordingHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()

    def lines(self):
        with self.lock:
            return list(self.requests)


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the lab's clients expect

    def answer(self):
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-orchlab")}
        with self.server.lock:
            self.server.requests.append((self.requestline, headers))
        admin = self.path.startswith("/__")
        body = b"not found" if admin else b"{}"
        self.send_response(404 if admin else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


def outward_ipv4():
    """An address of this host that is not loopback (no packet is sent), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def children_of(pid):
    """{child pid: command line} of the processes whose parent is `pid`."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != pid:
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                out[int(entry)] = f.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return out


def wait_for_mock_child(pid, timeout=20):
    """The orchlab-mock child of orchlab `pid`, once it runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for child, cmdline in children_of(pid).items():
            # The program, not an argument: between fork and exec the child
            # still shows orchlab's own command line (--mock-binary included).
            if cmdline.split(" ", 1)[0].endswith("orchlab-mock"):
                return child
        time.sleep(0.02)
    raise AssertionError("orchlab %d started no orchlab-mock child" % pid)


def alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Services(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="orchlab-svc-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_orchlab(self, args, timeout=60):
        return subprocess.run([ORCHLAB] + args, cwd=self.dir, capture_output=True, text=True, timeout=timeout)

    def report(self, name="r.json"):
        with open(os.path.join(self.dir, name)) as f:
            doc = json.load(f)
        e2e_test.E2E.assert_valid_report(self, doc)
        return doc

    def iterations(self, doc):
        return [b for b in doc["benchmarks"] if b["run_type"] == "iteration"]

    def test_path_and_query_honoured(self):
        server = Recorder("127.0.0.1")
        try:
            url = "http://127.0.0.1:%d/api/users?tier=gold" % server.port
            r = self.run_orchlab(["run", "-s", "healthy", "-p", "cancellable-group,async-group", "-d", "0.3s",
                                  "-r", "1", "-c", "2", "-o", "r.json", "--services", url])
        finally:
            server.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = server.lines()
        calls = [(line, h) for line, h in lines if not line.split()[1].startswith("/__")]
        admin = sorted({line for line, _ in lines if line.split()[1].startswith("/__")})
        self.assertGreater(len(calls), 0)
        for line, headers in calls:
            self.assertEqual(line, "GET /api/users?tier=gold HTTP/1.1")
            # A loopback service shares our CLOCK_MONOTONIC: the absolute deadline.
            self.assertIn("x-orchlab-deadline-ns", headers)
            self.assertNotIn("x-orchlab-timeout-ms", headers)
        self.assertFalse([line for line, _ in lines if "orchestrate" in line])
        # Admin routes go to the URL's origin, not under its path.
        self.assertEqual(admin, ["GET /__stats HTTP/1.1", "POST /__reset HTTP/1.1"])

        # No /__stats there: every server field is unknown, and lab.notes says why.
        doc = self.report()
        for b in self.iterations(doc):
            self.assertGreater(b["calls"], 0)
            for field in SERVER_FIELDS:
                self.assertIsNone(b[field], "%s: %s" % (b["pattern"], field))
            self.assertEqual(b["server_unreachable"], 1)
        notes = [n for n in doc["lab"]["notes"] if url in n and "did not report /__stats" in n]
        self.assertTrue(notes, doc["lab"]["notes"])
        self.assertIn("HTTP 404", notes[0])

    def test_remote_host_gets_relative_deadline(self):
        addr = outward_ipv4()
        if addr is None:
            self.skipTest("this host has no address but loopback")
        server = Recorder("0.0.0.0")
        try:
            url = "http://%s:%d/v1/orders?x=1" % (addr, server.port)
            r = self.run_orchlab(["run", "-s", "healthy", "-p", "cancellable-group,async-group", "-d", "0.3s",
                                  "-r", "1", "-c", "2", "-o", "r.json", "-q", "--services", url])
        finally:
            server.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        calls = [(line, h) for line, h in server.lines() if line.startswith("GET /v1/orders?x=1 ")]
        self.assertGreater(len(calls), 0)
        for _, headers in calls:
            # Another host's monotonic clock has another origin: only the time left.
            self.assertNotIn("x-orchlab-deadline-ns", headers)
            ms = float(headers["x-orchlab-timeout-ms"])  # to the microsecond
            self.assertGreaterEqual(ms, 0)
            self.assertLessEqual(ms, 100)  # healthy's deadline_ms
        doc = self.report()
        patterns = {b["pattern"] for b in self.iterations(doc)}
        self.assertEqual(patterns, {"cancellable-group", "async-group"}, "both HTTP clients were used")

    def test_child_mock_can_die(self):
        proc = subprocess.Popen([ORCHLAB, "run", "-s", "healthy", "-p", "cancellable-group,channel-soup,async-group",
                                 "--seed", "1", "-d", "0.6s", "-r", "1", "-c", "2", "-o", "r.json"],
                                cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            child = wait_for_mock_child(proc.pid)
            e2e_test.wait_for_cell(proc, "[1/3]")
            os.kill(child, signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("orchlab-mock (pid %d" % child, err)
        self.assertIn("killed by signal 9", err)
        doc = self.report()
        self.assertFalse(doc["context"]["interrupted"])
        cells = self.iterations(doc)
        self.assertEqual(len(cells), 3, "the run went on after the death")
        after = [b for b in cells if b["call_transport_errors"]]
        self.assertTrue(after, "calls after the death are transport errors")
        for b in after:
            self.assertIsNone(b["server_client_aborts"], "a dead mock has no stats")
        notes = [n for n in doc["lab"]["notes"] if n.startswith("error: orchlab-mock (pid %d" % child)]
        self.assertEqual(len(notes), 1, doc["lab"]["notes"])
        self.assertIn("healthy/", notes[0])

    def test_bad_services_url(self):
        for url, why in [("http://127.0.0.1:notaport/api", "is not a number"), ("https://h:1/x", "not http"),
                         ("http:///x", "no host"), ("127.0.0.1:8080", "no scheme")]:
            with self.subTest(url=url):
                r = self.run_orchlab(["run", "-s", "healthy", "--services", "http://127.0.0.1:1/ok," + url])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn('"%s"' % url, r.stderr)
                self.assertIn(why, r.stderr)
        r = self.run_orchlab(["run", "-s", "healthy", "--mock-binary", os.path.join(self.dir, "no-such-mock")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no-such-mock", r.stderr)
        self.assertEqual(os.listdir(self.dir), [], "nothing may be written")

    def test_mock_runs_in_a_child(self):
        args = ["run", "-s", "zero-delay", "-p", "cancellable-group", "-f", "3", "-d", "0.5s", "-r", "1",
                "-c", "2", "-q"]
        proc = subprocess.Popen([ORCHLAB] + args + ["-o", "child.json", "--mock-binary", MOCK], cwd=self.dir,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            child = wait_for_mock_child(proc.pid)
            with open("/proc/%d/cmdline" % child, "rb") as f:
                cmdline = f.read().split(b"\0")
            self.assertEqual(cmdline[0].decode(), MOCK)
            self.assertIn(b"--threads", cmdline)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertFalse(alive(child), "the child ends with the run")
        r = self.run_orchlab(args + ["-o", "inprocess.json", "--services", "inprocess"])
        self.assertEqual(r.returncode, 0, r.stderr)
        embedded = self.iterations(self.report("child.json"))[0]
        inprocess = self.iterations(self.report("inprocess.json"))[0]
        self.assertGreater(embedded["server_requests"], 0)
        # The in-process fleet's io_context thread is in the measured process;
        # the child's is not.
        self.assertLess(embedded["threads_baseline"], inprocess["threads_baseline"])

    def test_child_ends_with_orchlab(self):
        for how in (signal.SIGINT, signal.SIGKILL):
            with self.subTest(signal=how):
                proc = subprocess.Popen([ORCHLAB, "run", "-s", "healthy", "-p", "cancellable-group", "-d", "5s",
                                         "-r", "1", "-c", "1", "-o", "r.json", "-q"],
                                        cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    child = wait_for_mock_child(proc.pid)
                    time.sleep(0.3)
                    proc.send_signal(how)
                    proc.communicate(timeout=30)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                # Ctrl-C: orchlab ends the child itself; SIGKILL: the child's
                # parent-death signal does.
                deadline = time.time() + 5
                while alive(child) and time.time() < deadline:
                    time.sleep(0.02)
                self.assertFalse(alive(child), "orchlab-mock %d outlived orchlab (%s)" % (child, how))
                if how == signal.SIGINT:
                    self.assertEqual(proc.returncode, 130)


def create_parser():
    """Command line: the binaries under test, then unittest's own arguments."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orchlab", required=True, help="orchlab binary")
    parser.add_argument("--mock", required=True, help="orchlab-mock binary")
    parser.add_argument("tests", nargs="*", help="test names (default: all)")
    return parser


def main():
    """Runs the selected tests."""
    global ORCHLAB, MOCK
    args = create_parser().parse_args()
    ORCHLAB, MOCK = os.path.abspath(args.orchlab), os.path.abspath(args.mock)
    e2e_test.ORCHLAB, e2e_test.MOCK = ORCHLAB, MOCK
    names = ["Services." + t for t in args.tests] if args.tests else ["Services"]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
