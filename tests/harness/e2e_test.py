#!/usr/bin/python3
"""Whole-program tests of orchlab: bad input, report schema, compare.py, Ctrl-C, a dead service, the one-hangs truth."""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

ORCHLAB = None
MOCK = None

# Every field DESIGN.md lists for a benchmarks[] entry, and its JSON types
# (null allowed where the metric is not measured, e.g. an infeasible cell).
NUMBER = (int, float)
FIELDS = {
    "name": str, "run_name": str, "run_type": str, "repetitions": int, "repetition_index": int,
    "threads": int, "iterations": int, "real_time": NUMBER, "cpu_time": NUMBER, "time_unit": str,
    "label": str, "pattern": str, "scenario": str, "fanout": int, "concurrency": int,
    "items_per_second": NUMBER, "p50_us": NUMBER, "p90_us": NUMBER, "p99_us": NUMBER,
    "p999_us": NUMBER, "max_us": NUMBER, "complete": int, "partial": int, "failed": int,
    "timed_out": int, "deadline_overshoot_p99_us": NUMBER, "leaked_tasks_at_return": int,
    "leaked_tasks_end": int, "zombie_task_s": NUMBER, "late_completions": int, "threads_peak": int, "live_tasks_peak": int,
    "threads_end": int, "drain_ms": NUMBER, "pool_wait_p99_us": NUMBER, "pool_exhausted": int,
    "lock_wait_ns": int, "lock_contended": int, "ctx_switches_voluntary": int,
    "ctx_switches_involuntary": int, "rss_peak_kb": int, "server_client_aborts": int,
    "server_work_past_deadline_ms": NUMBER, "server_abort_lag_p99_ms": NUMBER,
}
NULLABLE = {"pool_wait_p99_us", "pool_exhausted", "server_client_aborts",
            "server_work_past_deadline_ms", "server_abort_lag_p99_ms"}
# A percentile is null when the repetition has fewer samples than this.
MIN_SAMPLES = {"p50_us": 2, "p90_us": 10, "p99_us": 100, "p999_us": 1000,
               "deadline_overshoot_p99_us": 100}
CONTEXT = ["date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled",
           "caches", "load_avg", "library_build_type", "orchlab_version", "git_sha", "build_type",
           "compiler", "command_line", "interrupted"]

# A stand-in for scipy.stats (not installable next to Boost 1.81 on Debian
# 12): enough of mannwhitneyu and gmean for compare.py's code paths.
SCIPY_STUB = textwrap.dedent('''
    import math
    from types import SimpleNamespace
    import numpy

    def gmean(a, axis=0):
        return numpy.exp(numpy.mean(numpy.log(numpy.asarray(a, dtype=float)), axis=axis))

    def mannwhitneyu(x, y, alternative="two-sided"):
        n1, n2 = len(x), len(y)
        ranked = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
        ranks, i = {}, 0
        while i < len(ranked):
            j = i
            while j < len(ranked) and ranked[j][0] == ranked[i][0]:
                j += 1
            for k in range(i, j):
                ranks[k] = (i + j + 1) / 2.0
            i = j
        r1 = sum(ranks[k] for k, (_, g) in enumerate(ranked) if g == 0)
        u = r1 - n1 * (n1 + 1) / 2.0
        mu, sigma = n1 * n2 / 2.0, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
        z = (abs(u - mu) - 0.5) / sigma if sigma else 0.0
        return SimpleNamespace(statistic=u, pvalue=min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))
''')


def run_orchlab(args, cwd, timeout=120):
    """Runs orchlab; returns the CompletedProcess."""
    return subprocess.run([ORCHLAB] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def load(path):
    """Reads a report."""
    with open(path) as f:
        return json.load(f)


def wait_for_cell(proc, prefix, timeout=60):
    """Reads orchlab's per-cell progress lines (stderr) until one starts with `prefix`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError("orchlab ended before cell %s" % prefix)
        if line.startswith(prefix):
            return line
    raise AssertionError("no progress line %s" % prefix)


def start_mock(config, cwd):
    """Starts orchlab-mock on `config`; returns (process, {service: url})."""
    path = os.path.join(cwd, "mock.json")
    with open(path, "w") as f:
        json.dump(config, f)
    proc = subprocess.Popen([MOCK, "--config", path], stdout=subprocess.PIPE, text=True)
    urls = {}
    deadline = time.time() + 20
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        doc = json.loads(line)
        if doc.get("ready"):
            return proc, urls
        urls[doc["service"]] = doc["url"]
    proc.kill()
    raise RuntimeError("orchlab-mock did not become ready")


class E2E(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="orchlab-e2e-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def assert_valid_report(self, doc):
        for key in CONTEXT:
            self.assertIn(key, doc["context"])
        self.assertIsInstance(doc["context"]["interrupted"], bool)
        self.assertIn("metrics", doc["lab"])
        self.assertIn("series", doc["lab"])
        for b in doc["benchmarks"]:
            for field, kind in FIELDS.items():
                if field == "repetition_index" and b["run_type"] == "aggregate":
                    continue  # Google Benchmark's aggregates have none either
                self.assertIn(field, b, b["name"])
                if b.get("infeasible") or (field in NULLABLE and b[field] is None):
                    continue
                if field in MIN_SAMPLES and b[field] is None:
                    # Too few samples for the percentile: null, never the max in disguise.
                    self.assertLess(b["latency_samples"], MIN_SAMPLES[field], b["name"])
                    continue
                if b["run_type"] == "aggregate" and kind is int:
                    kind = NUMBER  # means of counts are fractional
                self.assertIsInstance(b[field], kind, "%s: %s" % (b["name"], field))
            self.assertIn("infeasible", b)

    def test_bad_input(self):
        with open(os.path.join(self.dir, "broken.json"), "w") as f:
            f.write('{"name": "broken", ')
        cases = [
            (["run", "-s", "no-such-scenario"], "no-such-scenario"),
            (["run", "-s", "broken.json"], "malformed JSON"),
            (["run", "-s", "healthy", "-p", "no-such-pattern"], "no-such-pattern"),
            (["run", "-s", "healthy", "--fanout", "0"], "--fanout"),
            (["run", "-s", "healthy", "--duration", "-1s"], "--duration"),
            (["run", "--frobnicate"], "--frobnicate"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = run_orchlab(args, self.dir)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(needle, r.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)), ["broken.json"], "nothing may be written")

    def test_schema_and_default_output(self):
        r = run_orchlab(["run", "-s", "healthy", "-p", "channel-soup,cancellable-group,async-group",
                         "-d", "0.3s", "-r", "2", "-c", "4"], self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        latest = os.path.join(self.dir, "results", "latest")
        self.assertTrue(os.path.islink(latest))
        doc = load(os.path.join(latest, "report.json"))
        self.assert_valid_report(doc)
        self.assertFalse(doc["context"]["interrupted"])
        iters = [b for b in doc["benchmarks"] if b["run_type"] == "iteration"]
        aggs = [b for b in doc["benchmarks"] if b["run_type"] == "aggregate"]
        self.assertEqual(len(iters), 6)
        self.assertEqual(sorted({b["aggregate_name"] for b in aggs}), ["cv", "mean", "median", "stddev"])
        for b in iters:
            self.assertGreater(b["iterations"], 0)
            self.assertIsNone(b["infeasible"])
            self.assertEqual(b["name"], "healthy/%s/fanout:3/concurrency:4/real_time" % b["pattern"])
            # Every pattern's calls went through a pool it reports: the shared
            # client's, or async-group's own.
            # (Its p99 is null only with fewer than 100 acquires: a slow build.)
            self.assertIsNotNone(b["pool_wait_samples"], b["pattern"])
            self.assertTrue(b["pool_wait_p99_us"] is not None or b["pool_wait_samples"] < 100, b["pattern"])
            self.assertIsNotNone(b["pool_exhausted"], b["pattern"])
        series = doc["lab"]["series"]["healthy/cancellable-group/fanout:3/concurrency:4"]
        for key in ("started", "finished", "in_flight", "live_tasks", "os_threads"):
            self.assertGreater(len(series[key]), 0, key)
        self.assertEqual(len(series["started"]), len(series["os_threads"]))

    def test_google_benchmark_compare(self):
        for name in ("a.json", "b.json"):
            r = run_orchlab(["run", "-s", "zero-delay", "-p", "cancellable-group,async-group", "-d", "0.2s",
                             "-r", "2", "-c", "2", "-o", name, "-q"], self.dir)
            self.assertEqual(r.returncode, 0, r.stderr)
        compare = "/usr/share/benchmark/compare.py"
        if not os.path.exists(compare):
            self.skipTest("libbenchmark-tools is not installed")
        env = dict(os.environ)
        try:
            import scipy  # noqa: F401
        except ImportError:
            stub = os.path.join(self.dir, "stub", "scipy")
            os.makedirs(stub)
            open(os.path.join(stub, "__init__.py"), "w").close()
            with open(os.path.join(stub, "stats.py"), "w") as f:
                f.write(SCIPY_STUB)
            env["PYTHONPATH"] = os.path.dirname(stub)
        r = subprocess.run(["/usr/bin/python3", compare, "--no-color", "benchmarks", "a.json", "b.json"],
                           cwd=self.dir, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("zero-delay/async-group/fanout:10/concurrency:2/real_time_mean", r.stdout)
        self.assertIn("OVERALL_GEOMEAN", r.stdout)

    def test_interrupt_writes_what_is_done(self):
        proc = subprocess.Popen([ORCHLAB, "run", "-s", "healthy", "-p", "cancellable-group,async-group,channel-soup",
                                 "-d", "1s", "-r", "2", "-c", "4", "-o", "r.json"],
                                cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Repetitions are interleaved: 3 cells x 2 repetitions = 6 steps, the
        # first of which names the cell that finished its repetition 1.
        first = wait_for_cell(proc, "[1/6]")
        time.sleep(0.3)  # into the second step
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 130, err)
        doc = load(os.path.join(self.dir, "r.json"))
        self.assert_valid_report(doc)
        self.assertTrue(doc["context"]["interrupted"])
        done = [b for b in doc["benchmarks"] if b["run_type"] == "iteration"]
        self.assertEqual(len(done), 1, "only the finished step is reported")
        self.assertIn("/%s/" % done[0]["pattern"], first)
        self.assertEqual([f for f in os.listdir(self.dir) if f.startswith(".")], [], "no temp file left")

    def test_dead_service_mid_run(self):
        config = {"bind": "127.0.0.1", "services": [
            {"name": "a", "port": 0, "latency": {"dist": "fixed", "ms": 5}},
            {"name": "b", "port": 0, "latency": {"dist": "fixed", "ms": 5}}]}
        mock, urls = start_mock(config, self.dir)
        try:
            proc = subprocess.Popen([ORCHLAB, "run", "-s", "healthy", "--services", ",".join(urls.values()),
                                     "-p", "cancellable-group,channel-soup,async-group", "-d", "1s", "-r", "1",
                                     "-c", "4", "-o", "r.json"],
                                    cwd=self.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first = wait_for_cell(proc, "[1/3]")
            mock.kill()
            mock.wait()
            out, err = proc.communicate(timeout=60)
        finally:
            if mock.poll() is None:
                mock.kill()
        # A --services mock is not orchlab's child: its death is the run's
        # data (transport errors), not a failed run.
        self.assertEqual(proc.returncode, 0, err)
        doc = load(os.path.join(self.dir, "r.json"))
        self.assert_valid_report(doc)
        cells = [b for b in doc["benchmarks"] if b["run_type"] == "iteration"]
        self.assertEqual(len(cells), 3)

        def ran(line):
            """The cell a progress line names (cells run in a shuffled order)."""
            return next(b for b in cells if "/%s/" % b["pattern"] in line)
        self.assertGreater(ran(first)["server_requests"] or 0, 0, "the first cell ran while the mock lived")
        last = ran(next(line for line in err.splitlines() if line.startswith("[3/3]")))
        self.assertGreater(last["call_transport_errors"], 0)
        self.assertIsNone(last["server_client_aborts"], "a dead service has no stats")
        self.assertEqual(last["complete"], 0)

    def test_one_hangs_truth(self):
        r = run_orchlab(["run", "-s", "one-hangs", "-p",
                         "channel-soup,latch-select,cancellable-group,mutex-aggregation",
                         "-d", "1s", "-r", "1", "-c", "8", "-o", "r.json", "-q"], self.dir, timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = load(os.path.join(self.dir, "r.json"))
        self.assert_valid_report(doc)
        cell = {b["pattern"]: b for b in doc["benchmarks"] if b["run_type"] == "iteration"}
        for leaky in ("channel-soup", "latch-select"):
            b = cell[leaky]
            self.assertGreater(b["leaked_tasks_at_return"], 0, leaky)
            self.assertGreater(b["late_completions"], 0, leaky)
            self.assertLessEqual(b["server_client_aborts"], 2, leaky + ": nothing cancels its calls")
        g = cell["cancellable-group"]
        self.assertEqual(g["leaked_tasks_at_return"], 0)
        self.assertEqual(g["late_completions"], 0)
        self.assertGreater(g["server_client_aborts"], 0, "cancellation must reach the service")
        m = cell["mutex-aggregation"]
        # Few of its orchestrations fit in a 1 s window (p99 may be null): the
        # slowest one shows the hang waited out.
        self.assertGreater(m["max_us"], m["deadline_ms"] * 1000, "no timeout: the hang is waited out")


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
    names = ["E2E." + t for t in args.tests] if args.tests else ["E2E"]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
