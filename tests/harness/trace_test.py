#!/usr/bin/python3
"""Tests of orchlab run --trace: valid trace-event JSON whose spans agree with the report
(thread-per-call exhibits through the traced Fetch, async-group through its client's
observer, the Go cells from orchlab-go's own recording), the services' spans joined only
where a mock traces, a bad path refused before anything runs."""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import services_test  # noqa: E402  (Recorder: a service that is not orchlab-mock)

ORCHLAB = None
MOCK = None
GO_DRIVER = None
# Trace timestamps are µs with three decimals (ns): one tick of slack.
RESOLUTION_US = 0.002

# one-hangs in small: a hang on a fifth of inventory's calls, for 300 ms.
SCENARIO = {
    "name": "mini-hangs", "description": "one-hangs, short",
    "services": [
        {"name": "users", "port": 0, "seed": 1, "body_bytes": 64,
         "latency": {"dist": "uniform", "min_ms": 2, "max_ms": 8}},
        {"name": "orders", "port": 0, "seed": 2, "body_bytes": 64,
         "latency": {"dist": "uniform", "min_ms": 2, "max_ms": 8}},
        {"name": "inventory", "port": 0, "seed": 3, "body_bytes": 64,
         "latency": {"dist": "uniform", "min_ms": 2, "max_ms": 8},
         "faults": [{"kind": "hang", "probability": 0.2, "max_ms": 300},
                    {"kind": "status", "code": 503, "probability": 0.05}]}],
    "deadline_ms": 50, "fanout": [3], "concurrency": [4], "patterns": ["all"],
    "duration_s": 0.3, "repetitions": 1, "mode": "closed", "max_conns_per_host": 64,
}


def run_orchlab(args, cwd, timeout=120):
    """Runs orchlab; returns the CompletedProcess."""
    return subprocess.run([ORCHLAB] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def end(e):
    """Where a complete event ends, µs."""
    return e["ts"] + e["dur"]


def check_trace_events(test, doc):
    """Asserts the trace-event format: required fields, B/E pairs, unique flow ids, flows bound to spans."""
    test.assertIsInstance(doc["traceEvents"], list)
    spans = collections.defaultdict(list)  # (pid, tid) -> X events
    stacks = collections.defaultdict(list)
    flows = collections.defaultdict(list)
    for e in doc["traceEvents"]:
        for field in ("name", "ph", "pid", "tid"):
            test.assertIn(field, e, e)
        test.assertIsInstance(e["pid"], int)
        test.assertIsInstance(e["tid"], int)
        if e["ph"] == "M":
            test.assertIn(e["name"], ("process_name", "process_sort_index", "thread_name",
                                      "thread_sort_index"))
            continue
        test.assertIsInstance(e["ts"], (int, float), e)
        if e["ph"] == "X":
            test.assertGreaterEqual(e["dur"], 0, e)
            spans[(e["pid"], e["tid"])].append(e)
        elif e["ph"] == "B":
            stacks[(e["pid"], e["tid"])].append(e)
        elif e["ph"] == "E":
            test.assertTrue(stacks[(e["pid"], e["tid"])], "an E without its B: %s" % e)
            stacks[(e["pid"], e["tid"])].pop()
        elif e["ph"] in ("s", "f"):
            test.assertIn("id", e)
            flows[e["id"]].append(e)
        else:
            test.assertEqual(e["ph"], "i", e)
    for key, open_ in stacks.items():
        test.assertFalse(open_, "B without E on %s" % (key,))
    # Slices on one track nest (Perfetto drops the ones that overlap partially).
    for key, xs in spans.items():
        xs = sorted(xs, key=lambda e: (e["ts"], -e["dur"]))
        for a, b in zip(xs, xs[1:]):
            test.assertTrue(b["ts"] >= end(a) - RESOLUTION_US or end(b) <= end(a) + RESOLUTION_US,
                            "overlapping slices on %s: %s / %s" % (key, a, b))
    for fid, pair in flows.items():
        test.assertEqual(sorted(e["ph"] for e in pair), ["f", "s"], "flow %s: %s" % (fid, pair))
        for e in pair:
            bound = [x for x in spans[(e["pid"], e["tid"])]
                     if x["ts"] - RESOLUTION_US <= e["ts"] <= end(x) + RESOLUTION_US
                     and x.get("cat") == e.get("cat")]
            test.assertTrue(bound, "flow %s points at no span: %s" % (fid, e))
    return spans, flows


class Samples:
    """A trace's cells: per pid the orchestrations, their calls and the services' spans."""

    def __init__(self, doc):
        names, threads = {}, {}
        for e in doc["traceEvents"]:
            if e["ph"] == "M" and e["name"] == "process_name":
                names[e["pid"]] = e["args"]["name"]
            if e["ph"] == "M" and e["name"] == "thread_name":
                threads[(e["pid"], e["tid"])] = e["args"]["name"]
        self.pattern = {pid: name.split("/")[1] for pid, name in names.items()}
        self.by_pid = collections.defaultdict(list)
        for e in doc["traceEvents"]:
            if e["ph"] == "X":
                self.by_pid[e["pid"]].append(e)
        self.flows = [e for e in doc["traceEvents"] if e["ph"] in ("s", "f")]

    def pid_of(self, pattern):
        return next(pid for pid, p in self.pattern.items() if p == pattern)

    def orchestrations(self, pid):
        """(orchestration span, its call spans, its task spans) per sample, by the track labels' #k."""
        events = self.by_pid[pid]
        out = []
        for o in (e for e in events if e["cat"] == "orchlab.orchestration" and e["name"].startswith("orchestration")):
            out.append([o, [], []])
        # A sample's call tracks follow its orchestration's track.
        order = sorted(events, key=lambda e: e["tid"])
        current = -1
        orchestration_tids = [o[0]["tid"] for o in out]
        for e in order:
            if e["tid"] in orchestration_tids:
                current = orchestration_tids.index(e["tid"])
            elif current >= 0 and e["cat"] == "orchlab.task":
                out[current][2].append(e)
            elif current >= 0 and e["cat"] == "orchlab.call" and e["name"].startswith("call"):
                out[current][1].append(e)
        return out

    def services(self, pid):
        return [e for e in self.by_pid[pid] if e["cat"] == "orchlab.call" and not e["name"].startswith("call")]


class TraceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        with open(os.path.join(self.dir, "mini.json"), "w") as f:
            json.dump(SCENARIO, f)

    def tearDown(self):
        self.tmp.cleanup()

    def check_against_report(self, doc, report, joined=(), leaking=()):
        """The samples agree with the report: spans as latencies, every call drawn with its
        service span (or said to have none), the calls of `joined` patterns ending within
        the abort lag of their return; returns how many calls of `leaking` patterns ended
        after their orchestration's return."""
        check_trace_events(self, doc)
        cells = {b["pattern"]: b for b in report["benchmarks"] if b["run_type"] == "iteration"}
        samples = Samples(doc)
        late = collections.Counter()
        for pattern, cell in cells.items():
            unreached = 0
            pid = samples.pid_of(pattern)
            orchestrations = samples.orchestrations(pid)
            self.assertGreater(len(orchestrations), 0, pattern)
            verdicts = [o[0]["args"]["verdict"] for o in orchestrations]
            if cell["timed_out"] > 0:
                self.assertIn("timed_out", verdicts, pattern + ": the first timed-out is sampled")
            lag_ms = cell["server_abort_lag_p99_ms"] or 0.0
            for o, calls, tasks in orchestrations:
                a = o["args"]
                # Its span is its latency: from the intended start (closed
                # loop: the start) to the return the report measured.
                latency_us = a["latency_ms"] * 1e3
                self.assertAlmostEqual(end(o) - a["intended_start_us"], latency_us, delta=RESOLUTION_US)
                self.assertLessEqual(latency_us, cell["max_us"] * 1.04 + 1, pattern)
                if a["verdict"] == "timed_out":
                    # It returned at or after its deadline (steady clock).
                    self.assertGreaterEqual(end(o) + RESOLUTION_US,
                                            a["intended_start_us"] + a["deadline_ms"] * 1e3, o)
                self.assertEqual(len(calls), cell["fanout"], "%s: every call has its span" % pattern)
                self.assertEqual(len(tasks), cell["fanout"], "%s: every call's task has its span" % pattern)
                for c in calls + tasks:
                    self.assertGreaterEqual(c["ts"] + RESOLUTION_US, o["ts"], "a call starts inside its orchestration")
                    if pattern in leaking and end(c) > end(o) + RESOLUTION_US:
                        late[pattern] += 1
                    if pattern in joined:
                        self.assertLessEqual(end(c), end(o) + lag_ms * 1e3 + RESOLUTION_US,
                                             "%s joins its calls: %s" % (pattern, c))
            # Every call to an orchlab-mock has the service's span, by key.
            keys = {s["args"]["key"] for s in samples.services(pid)}
            # A call cancelled before its request reached the mock has none,
            # and says so; every other call has one.
            for o, calls, _ in orchestrations:
                for c in calls:
                    if c["args"]["key"] in keys:
                        self.assertNotIn("service_record", c["args"], c)
                        continue
                    self.assertIn(c["args"].get("outcome"), ("cancelled", "transport"),
                                  "%s: no service span for %s" % (pattern, c))
                    self.assertIn("never reached", c["args"].get("service_record", ""), c)
                    unreached += 1
                    self.assertLess(unreached, 4 * cell["fanout"], "most calls reach the service")
        return late

    def test_trace_agrees_with_the_report(self):
        started = time.monotonic()
        r = run_orchlab(["run", "-s", "mini.json", "-p", "channel-soup,cancellable-group,async-group",
                         "--mock-binary", MOCK, "-o", "r.json", "--trace", "t.json", "-q"], self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "t.json")) as f:
            doc = json.load(f)
        with open(os.path.join(self.dir, "r.json")) as f:
            report = json.load(f)
        late = self.check_against_report(doc, report, joined=("cancellable-group", "async-group"),
                                         leaking=("channel-soup",))
        self.assertGreater(late["channel-soup"], 0, "channel-soup's calls outlive its timed-out orchestrations")
        # async-group calls through its own client, which reports its calls.
        by = {c["cell"].split("/")[1]: c.get("recorded_by") for c in doc["otherData"]["cells"]}
        self.assertEqual(by, {"channel-soup": "fetch", "cancellable-group": "fetch", "async-group": "client"})
        self.assertLess(time.monotonic() - started, 60)

    def test_go_cells_are_drawn_like_cpp_ones(self):
        if not GO_DRIVER or not os.access(GO_DRIVER, os.X_OK):
            self.fail(f"orchlab-go not built at {GO_DRIVER}: run `make go` first")
        started = time.monotonic()
        r = run_orchlab(["run", "-s", "mini.json", "-p", "go-channel-soup,go-errgroup",
                         "--go-driver", GO_DRIVER, "--mock-binary", MOCK, "-o", "r.json",
                         "--trace", "t.json", "-q"], self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.dir, "t.json")) as f:
            doc = json.load(f)
        with open(os.path.join(self.dir, "r.json")) as f:
            report = json.load(f)
        for b in report["benchmarks"]:
            self.assertIsNone(b["infeasible"], b["name"])
        late = self.check_against_report(doc, report, joined=("go-errgroup",), leaking=("go-channel-soup",))
        self.assertGreater(late["go-channel-soup"], 0, "go-channel-soup's calls outlive its timed-out orchestrations")
        for c in doc["otherData"]["cells"]:
            self.assertTrue(c["traced"], c)
            self.assertEqual(c["recorded_by"], "driver", c)
            self.assertGreater(c["calls_recorded"], 0, c)
        self.assertLess(time.monotonic() - started, 60)

    def test_no_span_is_invented_for_a_foreign_service(self):
        config = os.path.join(self.dir, "mock.json")
        with open(config, "w") as f:
            json.dump({"bind": "127.0.0.1", "services": SCENARIO["services"][:1]}, f)
        mock = subprocess.Popen([MOCK, "--config", config], stdout=subprocess.PIPE, text=True)
        foreign = services_test.Recorder("127.0.0.1")
        try:
            url = None
            for line in mock.stdout:
                msg = json.loads(line)
                if "url" in msg:
                    url = msg["url"]
                if msg.get("ready"):
                    break
            self.assertIsNotNone(url)
            r = run_orchlab(["run", "-s", "mini.json", "-p", "cancellable-group", "-f", "2",
                             "--services", "%s/orchestrate,http://127.0.0.1:%d/x" % (url, foreign.port),
                             "-o", "r.json", "--trace", "t.json", "-q"], self.dir)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            mock.terminate()
            mock.wait(timeout=10)
            foreign.stop()
        with open(os.path.join(self.dir, "t.json")) as f:
            doc = json.load(f)
        check_trace_events(self, doc)
        samples = Samples(doc)
        pid = samples.pid_of("cancellable-group")
        calls = [c for _, cs, _ in samples.orchestrations(pid) for c in cs]
        service_keys = {s["args"]["key"] for s in samples.services(pid)}
        to_mock = [c for c in calls if c["args"]["service"].startswith(url)]
        to_foreign = [c for c in calls if "/x" in c["args"]["service"]]
        self.assertTrue(to_mock and to_foreign, calls)
        for c in to_mock:
            self.assertIn(c["args"]["key"], service_keys, c)
        for c in to_foreign:
            self.assertNotIn(c["args"]["key"], service_keys, "invented: %s" % c)
        self.assertEqual(len(samples.flows), 2 * len(to_mock))
        self.assertEqual(doc["otherData"]["cells"][0]["service_traced"], [True, False])

    def test_bad_trace_path_is_refused_before_anything_runs(self):
        os.mkdir(os.path.join(self.dir, "folder"))
        for path, why in (("folder", "is a directory"), ("missing/t.json", "does not exist"),
                          ("/proc/t.json", "cannot create a file")):
            started = time.monotonic()
            r = run_orchlab(["run", "-s", "mini.json", "-p", "channel-soup", "--mock-binary", MOCK,
                             "-o", "r.json", "--trace", path, "-q"], self.dir)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--trace", r.stderr)
            self.assertIn(why, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "r.json")), "nothing ran")
            self.assertLess(time.monotonic() - started, 5, "refused before the host sample")


def create_parser():
    """Command line: the binaries under test, then unittest's own arguments."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orchlab", required=True, help="orchlab binary")
    parser.add_argument("--mock", required=True, help="orchlab-mock binary")
    parser.add_argument("--go-driver", help="orchlab-go binary (the Go cells' test)")
    parser.add_argument("tests", nargs="*", help="test names (default: all)")
    return parser


def main():
    """Runs the selected tests."""
    global ORCHLAB, MOCK, GO_DRIVER
    args = create_parser().parse_args()
    ORCHLAB, MOCK = os.path.abspath(args.orchlab), os.path.abspath(args.mock)
    GO_DRIVER = os.path.abspath(args.go_driver) if args.go_driver else None
    names = ["TraceTest." + t for t in args.tests] if args.tests else ["TraceTest"]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
