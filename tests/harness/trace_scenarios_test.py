#!/usr/bin/python3
"""Tests of orchlab run --trace-scenarios: only the named scenarios' cells are traced and the
others are listed with why; a name that is not a scenario of the run exits 2 before anything
runs; after --resume, a cell whose repetition 0 came from the journal says so in the trace."""
import argparse
import copy
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trace_test  # noqa: E402  (the mini one-hangs scenario, the trace-event checks)

ORCHLAB = None
MOCK = None


def run_orchlab(args, cwd, timeout=120):
    trace_test.ORCHLAB = ORCHLAB
    return trace_test.run_orchlab(args, cwd, timeout)


class TraceScenariosTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        hangs = copy.deepcopy(trace_test.SCENARIO)
        quiet = copy.deepcopy(trace_test.SCENARIO)
        quiet["name"] = "mini-quiet"
        quiet["services"][2]["faults"] = []
        for s in (hangs, quiet):
            s["duration_s"] = 0.2
            with open(os.path.join(self.dir, s["name"] + ".json"), "w") as f:
                json.dump(s, f)
        self.args = ["run", "-s", "mini-hangs.json", "-s", "mini-quiet.json", "-p", "cancellable-group",
                     "--mock-binary", MOCK, "--seed", "1", "-q"]

    def tearDown(self):
        self.tmp.cleanup()

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return json.load(f)

    def test_only_the_named_scenarios_are_traced(self):
        r = run_orchlab(self.args + ["-o", "r.json", "--trace", "t.json", "--trace-scenarios", "mini-hangs"],
                        self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = self.read("t.json")
        trace_test.check_trace_events(self, doc)
        cells = {c["cell"].split("/")[0]: c for c in doc["otherData"]["cells"]}
        self.assertTrue(cells["mini-hangs"]["traced"])
        self.assertFalse(cells["mini-quiet"]["traced"])
        self.assertIn("--trace-scenarios", cells["mini-quiet"]["why"])
        names = {e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "process_name"}
        self.assertEqual(names, {"mini-hangs/cancellable-group/fanout:3/concurrency:4"})
        # The traced repetition is the report's repetition 0: the same orchestrations.
        report = self.read("r.json")
        rep0 = {b["name"].rsplit("/", 1)[0]: b for b in report["benchmarks"]
                if b["run_type"] == "iteration" and b["repetition_index"] == 0}
        traced = cells["mini-hangs"]
        self.assertEqual(traced["repetition"], 0)
        self.assertEqual(traced["orchestrations"], rep0[traced["cell"]]["iterations"])

        # Resumed: every repetition comes from the journal; nothing is traced, and the trace says why.
        r = run_orchlab(self.args + ["--resume", "r.json", "--trace", "t.json", "--trace-scenarios",
                                     "mini-hangs"], self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        cells = {c["cell"].split("/")[0]: c for c in self.read("t.json")["otherData"]["cells"]}
        self.assertFalse(cells["mini-hangs"]["traced"])
        self.assertEqual(cells["mini-hangs"]["why"], "not traced: repetition 0 came from the journal")
        self.assertIn("--trace-scenarios", cells["mini-quiet"]["why"])

    def test_a_name_that_is_no_scenario_of_the_run_is_refused_before_anything_runs(self):
        started = time.monotonic()
        r = run_orchlab(self.args + ["-o", "r.json", "--trace", "t.json", "--trace-scenarios",
                                     "mini-hangs,one-hangs"], self.dir)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('--trace-scenarios: "one-hangs" is not a scenario of this run', r.stderr)
        self.assertIn("mini-hangs, mini-quiet", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "r.json")), "nothing ran")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "t.json")))
        self.assertLess(time.monotonic() - started, 5, "refused before the host sample")
        r = run_orchlab(self.args + ["-o", "r.json", "--trace-scenarios", "mini-hangs"], self.dir)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--trace-scenarios: needs --trace FILE", r.stderr)


if __name__ == "__main__":
    # The command line of trace_test.py: --orchlab, --mock, then test names.
    ARGS = trace_test.create_parser().parse_args()
    ORCHLAB, MOCK = os.path.abspath(ARGS.orchlab), os.path.abspath(ARGS.mock)
    unittest.main(argv=[sys.argv[0], "-v"] + ["TraceScenariosTest." + t for t in ARGS.tests])
