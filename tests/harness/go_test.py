#!/usr/bin/python3
"""Whole-program tests of orchlab driving the Go exhibits (orchlab-go, docs/drivers.md)
against orchlab-mock: runtimes mixed in one run, the article's soup leaking where
errgroup does not, a driver that fails without stopping the run, the driver switched off."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

ORCHLAB = None
GO_DRIVER = None

# Three services, one hanging on 20 % of its calls for 0.8 s: short enough for a
# test, long enough to outlive a 100 ms deadline many times over.
HANGS = {
    "name": "go-test-hangs", "deadline_ms": 100, "fanout": 3, "concurrency": 8,
    "duration_s": 0.5, "warmup_s": 0.2, "repetitions": 1, "max_conns_per_host": 64,
    "services": [
        {"name": "a", "latency": {"dist": "fixed", "ms": 5}},
        {"name": "b", "latency": {"dist": "fixed", "ms": 5}},
        {"name": "c", "latency": {"dist": "fixed", "ms": 5},
         "faults": [{"kind": "hang", "probability": 0.2, "max_ms": 800}]},
    ],
}


def run(args, cwd, timeout=120):
    """orchlab run ARGS in CWD; returns (exit status, report or None, stderr)."""
    out = os.path.join(cwd, "report.json")
    p = subprocess.run([ORCHLAB, "run", "--quiet", "-o", out] + args, cwd=cwd,
                       capture_output=True, text=True, timeout=timeout)
    report = None
    if os.path.exists(out):
        with open(out) as f:
            report = json.load(f)
        os.remove(out)
    return p.returncode, report, p.stderr


def entries(report, pattern):
    return [e for e in report["benchmarks"] if e["run_type"] == "iteration" and e["pattern"] == pattern]


class GoDriverTest(unittest.TestCase):
    def setUp(self):
        if not GO_DRIVER or not os.access(GO_DRIVER, os.X_OK):
            self.fail(f"orchlab-go not built at {GO_DRIVER}: run `make go` first")
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def scenario(self, doc):
        path = os.path.join(self.dir, doc["name"] + ".json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def test_runtimes_mix_in_one_run(self):
        # Healthy services and a deadline no sanitizer tree's mock misses.
        healthy = dict(HANGS, name="healthy", deadline_ms=2000, duration_s=0.3, repetitions=2,
                       concurrency=16, services=[dict(s, faults=[]) for s in HANGS["services"]])
        rc, report, err = run(["--scenario", self.scenario(healthy), "--patterns", "go-errgroup,cancellable-group",
                               "--go-driver", GO_DRIVER], self.dir)
        self.assertEqual(rc, 0, err)
        go = report["context"]["runtimes"]["go"]
        self.assertEqual(go["status"], "built")
        self.assertTrue(go["go_version"].startswith("go1."), go)
        self.assertEqual(report["lab"]["scenarios"]["healthy"]["go_transport"], "lab")
        for e in report["benchmarks"]:
            self.assertEqual(e["runtime"], "go" if e["pattern"].startswith("go-") else "cpp-thread", e["name"])
        for e in entries(report, "go-errgroup"):
            self.assertIsNone(e["infeasible"])
            self.assertGreater(e["iterations"], 20)
            self.assertEqual(e["complete"], e["iterations"])
            self.assertEqual(e["leaked_tasks_at_return"], 0)
            # The services counted the window's calls: one request per call, no retries.
            self.assertEqual(e["server_requests"], e["calls"], e["name"])
            self.assertEqual(e["go_transport"]["max_conns_per_host"], 64)
            # The driver's process, measured from /proc by the harness.
            self.assertGreater(e["threads_baseline"], 0)
            self.assertGreater(e["cpu_s"], 0)
            self.assertIsNone(e["lock_wait_ns"])
            self.assertIsNone(e["threads_end"])
            self.assertGreater(e["goroutines_peak"], 0)
        # Repetition i of both exhibits sent the same call keys: the mock saw the
        # same faults (none here), and the aggregates exist for both.
        names = {e["name"] for e in report["benchmarks"] if e["run_type"] == "aggregate"}
        self.assertIn("healthy/go-errgroup/fanout:3/concurrency:16/real_time_median", names)
        self.assertIn("go-errgroup", report["lab"]["metrics"]["leaked_tasks_at_return"]["must_be_zero_for"])
        listing = subprocess.run([ORCHLAB, "list"], capture_output=True, text=True, check=True).stdout
        self.assertRegex(listing, r"go-errgroup-limit\s+go \(orchlab-go")

    def test_the_articles_soup_leaks_where_errgroup_does_not(self):
        path = self.scenario(HANGS)
        rc, report, err = run(["--scenario", path, "--patterns", "go-channel-soup,go-errgroup,channel-soup",
                               "--go-driver", GO_DRIVER], self.dir)
        self.assertEqual(rc, 0, err)
        soup, = entries(report, "go-channel-soup")
        group, = entries(report, "go-errgroup")
        self.assertGreater(soup["timed_out"], 0)
        self.assertGreater(soup["leaked_tasks_at_return"], 0)
        self.assertGreater(soup["zombie_task_s"], 0)
        self.assertEqual(group["leaked_tasks_at_return"], 0)
        self.assertEqual(group["zombie_task_s"], 0)
        # errgroup's context reaches the services: they saw it leave.
        self.assertGreater(group["server_client_aborts"], 0)
        self.assertEqual(soup["server_client_aborts"], 0)

    def test_the_transport_cap_or_gos_default(self):
        # Claim 2 under the lab's cap and under Go's default transport: the soup's
        # hung calls hold connections; capped at 4 per host, or piling up.
        capped = dict(HANGS, name="capped", max_conns_per_host=4, concurrency=16)
        default = dict(capped, name="uncapped", go_transport="default")
        rc, report, err = run(["--scenario", self.scenario(capped), "--scenario", self.scenario(default),
                               "--patterns", "go-channel-soup", "--go-driver", GO_DRIVER], self.dir)
        self.assertEqual(rc, 0, err)
        lab, = [e for e in entries(report, "go-channel-soup") if e["scenario"] == "capped"]
        free, = [e for e in entries(report, "go-channel-soup") if e["scenario"] == "uncapped"]
        self.assertEqual(lab["go_transport"]["mode"], "lab")
        self.assertEqual(free["go_transport"]["mode"], "default")
        self.assertEqual(report["lab"]["scenarios"]["uncapped"]["go_transport"], "default")
        # The harness's own /__stats connection is one more.
        self.assertLessEqual(lab["server_max_open_connections"], 4 + 1)
        self.assertGreater(free["server_max_open_connections"], 4 + 1)

    def test_a_failing_driver_loses_only_its_cell(self):
        fake = os.path.join(self.dir, "crashing-driver")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\necho 'fatal error: all goroutines are asleep' >&2\nkill -ABRT $$\n")
        os.chmod(fake, 0o755)
        rc, report, err = run(["--scenario", "healthy", "--patterns", "go-errgroup,cancellable-group",
                               "--duration", "200ms", "--repetitions", "2", "--go-driver", fake], self.dir)
        self.assertEqual(rc, 0, err)
        bad = entries(report, "go-errgroup")
        self.assertEqual(len(bad), 1)  # the cell, once: its second repetition was not tried
        self.assertIn("SIGABRT", bad[0]["infeasible"])
        self.assertTrue(any("all goroutines are asleep" in n for n in report["lab"]["notes"]), report["lab"]["notes"])
        good = entries(report, "cancellable-group")
        self.assertEqual(len(good), 2)
        self.assertTrue(all(e["infeasible"] is None and e["iterations"] > 0 for e in good))

    def test_the_driver_switched_off_or_missing(self):
        rc, report, err = run(["--scenario", "healthy", "--patterns", "all", "--duration", "100ms",
                               "--warmup", "0s", "--repetitions", "1", "--go-driver", "none"], self.dir)
        self.assertEqual(rc, 0, err)
        self.assertFalse([e for e in report["benchmarks"] if e["pattern"].startswith("go-")])
        self.assertIn("switched off", report["context"]["runtimes"]["go"]["status"])
        rc, report, err = run(["--scenario", "healthy", "--patterns", "go-errgroup", "--duration", "200ms",
                               "--go-driver", "none"], self.dir)
        self.assertEqual(rc, 0, err)
        e, = entries(report, "go-errgroup")
        self.assertIn("switched off", e["infeasible"])
        rc, report, err = run(["--scenario", "healthy", "--patterns", "go-errgroup",
                               "--go-driver", os.path.join(self.dir, "nowhere")], self.dir)
        self.assertEqual(rc, 2)
        self.assertIsNone(report)
        self.assertIn("not an executable file", err)


def main():
    global ORCHLAB, GO_DRIVER
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orchlab", required=True)
    parser.add_argument("--go-driver", required=True)
    args, rest = parser.parse_known_args()
    ORCHLAB, GO_DRIVER = args.orchlab, args.go_driver
    unittest.main(argv=[sys.argv[0]] + rest)


if __name__ == "__main__":
    main()
