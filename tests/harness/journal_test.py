#!/usr/bin/python3
"""Whole-program tests of orchlab's journal: SIGKILLs and --resume, foreign journals, a full disk, a resumed shard."""
import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ORCHLAB = None
MOCK = None

# Two exhibits that leave their calls running past the deadline (400 ms
# services, 50 ms deadline), so that every repetition drains for about
# 350 ms: a kill can land in the warm-up, the window or the drain.
SCENARIO = {
    "name": "journal-kills",
    "description": "tiny cells whose calls outlive the deadline: a drain in every repetition",
    "services": [{"name": "slow", "port": 0, "seed": 1, "body_bytes": 64,
                  "latency": {"dist": "fixed", "ms": 400}}],
    "deadline_ms": 50,
    "fanout": [2],
    "concurrency": [2],
    "patterns": ["channel-soup", "latch-select"],
    "duration_s": 0.15,
    "warmup_s": 0.2,
    "repetitions": 4,
    "mode": "closed",
}
WARMUP_S, WINDOW_S, DRAIN_S = 0.2, 0.15, 0.35


def journal_lines(path):
    """The whole lines of a journal, parsed (a cut-off last line is left out)."""
    with open(path) as f:
        text = f.read()
    return [json.loads(l) for l in text.split("\n")[:-1]]


def records(path):
    """{(cell, repetition): record} of a journal's repetition records."""
    return {(l["cell"], l["repetition"]): l for l in journal_lines(path)[1:]
            if l.get("kind") == "repetition"}


def iterations(doc):
    """The report's repetition entries, in order, keyed like the journal's records."""
    return [((b["name"][:-len("/real_time")], b["repetition_index"]), b)
            for b in doc["benchmarks"] if b["run_type"] == "iteration"]


class JournalTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="orchlab-journal-")
        self.dir = self.tmp.name
        self.scenario = os.path.join(self.dir, "journal-kills.json")
        with open(self.scenario, "w") as f:
            json.dump(SCENARIO, f)
        self.env = dict(os.environ, ORCHLAB_MOCK=MOCK)

    def tearDown(self):
        self.tmp.cleanup()

    def args(self, out, *more):
        return [ORCHLAB, "run", "--scenario", self.scenario, "--seed", "27", "--out", out] + list(more)

    def run_orchlab(self, args, env=None, **kw):
        return subprocess.run(args, cwd=self.dir, capture_output=True, text=True, timeout=120,
                              env=env or self.env, **kw)

    def test_sigkill_at_seeded_points_then_resume(self):
        """Kills at seeded points (before the first repetition, mid-window, mid-drain, mid-journal-write),
        each followed by --resume: the report equals an uninterrupted run's cell for cell."""
        t0 = time.time()
        ref = os.path.join(self.dir, "ref", "report.json")
        done = self.run_orchlab(self.args(ref, "--quiet"))
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(ref) as f:
            want = [k for k, _ in iterations(json.load(f))]
        self.assertEqual(len(want), 8)

        rng = random.Random(27)
        plan = ["before-first", "mid-window", "mid-drain", "journal-write", "mid-window", "mid-drain"]
        out = os.path.join(self.dir, "killed", "report.json")
        journal = out + ".journal"
        kept = {}  # every record a kill left in the journal
        tried = []
        for n, point in enumerate(plan):
            args = self.args(out) + (["--resume", out] if n else [])
            env = dict(self.env)
            have = len(records(journal)) if os.path.exists(journal) else 0
            if point == "journal-write":
                env["ORCHLAB_TEST_KILL_AT"] = "journal-write:%d" % rng.randint(1, min(2, 8 - have))
            proc = subprocess.Popen(args, cwd=self.dir, env=env, stderr=subprocess.PIPE, text=True)
            if point == "before-first":
                time.sleep(rng.uniform(0.1, 0.9))  # the host sample before the first cell takes 1 s
            elif point in ("mid-window", "mid-drain"):
                # Each finished repetition prints its line; the next one begins at once.
                self.assertGreaterEqual(8 - have, 2, "the plan ran out of repetitions to kill")
                k = rng.randint(1, min(2, 8 - have - 1))
                for _ in range(k):
                    line = proc.stderr.readline()
                    while line and not line.startswith("["):
                        line = proc.stderr.readline()
                    self.assertTrue(line, "orchlab ended before repetition %d" % k)
                into = WARMUP_S + (rng.uniform(0.03, WINDOW_S - 0.03) if point == "mid-window"
                                   else WINDOW_S + rng.uniform(0.05, DRAIN_S - 0.1))
                time.sleep(into)
            if point != "journal-write":
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            proc.stderr.close()
            self.assertEqual(proc.returncode, -signal.SIGKILL, "%s: orchlab was not killed" % point)
            after = records(journal) if os.path.exists(journal) else {}
            tried.append("%s (%d -> %d records)" % (point, have, len(after)))
            for key, rec in after.items():
                if key in kept:
                    self.assertEqual(kept[key], rec, "a journaled repetition changed: %s" % (key,))
                kept[key] = rec
            if point == "journal-write":
                with open(journal) as f:
                    self.assertFalse(f.read().endswith("\n"), "the hook leaves half a line")

        final = self.run_orchlab(self.args(out, "--resume", out))
        self.assertEqual(final.returncode, 0, final.stderr)
        with open(out) as f:
            doc = json.load(f)
        got = iterations(doc)
        keys = [k for k, _ in got]
        self.assertEqual(sorted(keys), sorted(want), "the same cells and repetitions as an uninterrupted run")
        self.assertEqual(len(set(keys)), len(keys), "each repetition exactly once")
        self.assertEqual([k[0] for k in keys], [k[0] for k in want], "cells in the same order")
        self.assertFalse(doc["context"]["interrupted"])
        self.assertEqual(doc["context"]["shuffle_seed"], 27)
        resumed = doc["context"]["resumed"]
        self.assertIsInstance(resumed, list)
        self.assertGreaterEqual(len(resumed), 4)
        for key, entry in got:
            if key in kept:
                self.assertEqual(entry, kept[key]["entry"], "resumed %s differs from its journal record" % (key,))
        everything = records(journal)
        for key, entry in got:
            self.assertEqual(entry, everything[key]["entry"], "report and journal disagree on %s" % (key,))
        self.assertTrue(any("was cut short" in n for n in doc["lab"]["notes"]), doc["lab"]["notes"])
        self.assertGreater(len(kept), 0)
        print("\n  kills: %s; %d of 8 repetitions came from journals; %.1fs"
              % ("; ".join(tried), len(kept), time.time() - t0), file=sys.stderr)

    def test_journal_of_another_run_is_refused(self):
        """--resume with another command, seed or build, or a file that is no journal: exit 2, both named."""
        out = os.path.join(self.dir, "a", "report.json")
        one = ["--patterns", "channel-soup", "--repetitions", "1"]
        done = self.run_orchlab(self.args(out, "--quiet", *one))
        self.assertEqual(done.returncode, 0, done.stderr)
        journal = out + ".journal"
        with open(journal) as f:
            original = f.read()
        other = self.run_orchlab(self.args(out, "--quiet", "--resume", out, "--patterns", "latch-select",
                                           "--repetitions", "1"))
        self.assertEqual(other.returncode, 2, other.stderr)
        self.assertIn("another run", other.stderr)
        self.assertIn("channel-soup", other.stderr)
        self.assertIn("latch-select", other.stderr)
        seed = self.run_orchlab(self.args(out, "--quiet", "--resume", out, "--seed", "28", *one))
        self.assertEqual(seed.returncode, 2, seed.stderr)
        self.assertIn("shuffle_seed: the journal has 27, this run has 28", seed.stderr)
        lines = original.split("\n")
        identity = json.loads(lines[0])
        sha = identity["build"]["git_sha"]
        identity["build"]["git_sha"] = "0123456789ab"
        with open(journal, "w") as f:
            f.write("\n".join([json.dumps(identity)] + lines[1:]))
        build = self.run_orchlab(self.args(out, "--quiet", "--resume", out, *one))
        self.assertEqual(build.returncode, 2, build.stderr)
        self.assertIn("0123456789ab", build.stderr)
        self.assertIn(sha, build.stderr)
        with open(journal, "w") as f:
            f.write('{"not": "a journal"}\n')
        bad = self.run_orchlab(self.args(out, "--quiet", "--resume", out, *one))
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn("not an orchlab journal", bad.stderr)

    def test_full_disk_keeps_the_journal_so_far(self):
        """A file-size limit reached while appending: a clear error, whole records only, exit 1;
        with --out - the report of what finished still reaches stdout."""
        ref = os.path.join(self.dir, "ref", "report.json")
        done = self.run_orchlab(self.args(ref, "--quiet", "--patterns", "channel-soup"))
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(ref + ".journal") as f:
            sizes = [len(l) + 1 for l in f.read().split("\n")[:-1]]
        limit = sizes[0] + sizes[1] + sizes[2] // 2  # room for the identity and one record

        def limited():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        out = os.path.join(self.dir, "full", "report.json")
        full = self.run_orchlab(self.args(out, "--quiet", "--patterns", "channel-soup"), preexec_fn=limited)
        self.assertEqual(full.returncode, 1, full.stderr)
        self.assertIn("cannot append to the journal", full.stderr)
        self.assertIn("File too large", full.stderr)
        with open(out + ".journal") as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"), "no half record")
        lines = journal_lines(out + ".journal")
        self.assertGreaterEqual(len(lines), 2)
        self.assertTrue(all(l.get("kind") == "repetition" for l in lines[1:]))

        piped = self.run_orchlab(self.args("-", "--quiet", "--patterns", "channel-soup"), preexec_fn=limited,
                                 env=dict(self.env, TMPDIR=self.dir))
        self.assertEqual(piped.returncode, 1, piped.stderr)
        doc = json.loads(piped.stdout)
        self.assertTrue(doc["context"]["interrupted"])
        self.assertTrue(any(n.startswith("error: the run failed: cannot append to the journal")
                            for n in doc["lab"]["notes"]), doc["lab"]["notes"])
        self.assertGreaterEqual(len(iterations(doc)), 1)

    def test_resumed_shard_merges_with_its_sibling(self):
        """Shard 1 of 2 killed after its first repetition and resumed at once: it runs the rest in
        their slots, and merge takes both shards."""
        start = "%.3f" % (time.time() + 2.0)
        outs = [os.path.join(self.dir, "shard-%d.json" % i) for i in range(2)]
        base = lambda i: self.args(outs[i], "--quiet", "--patterns", "channel-soup", "--shard", "%d/2" % i,
                                   "--start-at", start)
        sibling = subprocess.Popen(base(0), cwd=self.dir, env=self.env, stderr=subprocess.PIPE, text=True)
        killed = self.run_orchlab(base(1), env=dict(self.env, ORCHLAB_TEST_KILL_AT="after-journal:1"))
        self.assertEqual(killed.returncode, -signal.SIGKILL, killed.stderr)
        self.assertEqual(len(records(outs[1] + ".journal")), 1)
        resumed = self.run_orchlab(base(1) + ["--resume", outs[1]])
        self.assertEqual(resumed.returncode, 0, resumed.stderr)
        _, err = sibling.communicate(timeout=60)
        self.assertEqual(sibling.returncode, 0, err)
        merged = os.path.join(self.dir, "merged.json")
        m = self.run_orchlab([ORCHLAB, "merge", "-o", merged] + outs)
        self.assertEqual(m.returncode, 0, m.stderr)
        with open(merged) as f:
            self.assertEqual(len(iterations(json.load(f))), 4)


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
    names = ["JournalTest." + t for t in args.tests] if args.tests else ["JournalTest"]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
