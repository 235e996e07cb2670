#!/usr/bin/python3
"""Sharded runs as a user runs them: bad input, and a multi-host proof with
network namespaces as hosts (orchlab-mock in one, two shards in two others,
their merged report against one unsharded run of the same total concurrency).

BadInputTest runs anywhere. NamespaceProofTest needs root (ip netns, veth, a
bridge); without it it is skipped with the reason (exit 77 from main() when
every test ran was skipped, which ctest reports as skipped). It creates
namespaces named ol-*-<pid>, sends traffic only to addresses inside them
(10.231.<pid % 200>.0/24), and removes them even when it fails."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unittest

ORCHLAB = MOCK = None
HERE = os.path.dirname(os.path.abspath(__file__))
CLAIMS = os.path.join(HERE, "..", "..", "scripts", "claims.py")


def run(args, cwd, timeout=120, prefix=()):
    return subprocess.run(list(prefix) + [ORCHLAB] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def iterations(report):
    return [b for b in report["benchmarks"] if b["run_type"] == "iteration"]


def load(path):
    with open(path) as f:
        return json.load(f)


SERVICES = [{"name": n, "port": 0, "seed": i + 1, "body_bytes": 64,
             "latency": {"dist": "fixed", "ms": 2}} for i, n in enumerate(("a", "b"))]


def scenario(folder, name="sharded", **fields):
    doc = {"name": name, "services": SERVICES, "patterns": ["cancellable-group"], "fanout": [2],
           "concurrency": [2], "repetitions": 1, "duration_s": 0.5, "deadline_ms": 100}
    doc.update(fields)
    path = os.path.join(folder, name + ".json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def run_shards(test, tmp, args, hosts=(None, None), lead_s=2.0):
    """Runs `orchlab run ARGS -q` as len(hosts) shards that start together, the
    i-th in network namespace hosts[i] when one is given; asserts that each
    exits 0 and returns their reports' paths."""
    start = str(time.time() + lead_s)
    procs, shards = [], []
    for i, host in enumerate(hosts):
        out = os.path.join(tmp, f"shard-{i}.json")
        shards.append(out)
        prefix = ["ip", "netns", "exec", host] if host else []
        procs.append(subprocess.Popen(
            prefix + [ORCHLAB, "run"] + args +
            ["--shard", f"{i}/{len(hosts)}", "--start-at", start, "-o", out, "-q"],
            cwd=tmp, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        test.assertEqual(p.returncode, 0, err)
    return shards


def merge(test, tmp, shards):
    """`orchlab merge` of `shards` into tmp/merged.json (asserted to succeed)."""
    out = os.path.join(tmp, "merged.json")
    p = run(["merge", "-o", out] + shards, tmp)
    test.assertEqual(p.returncode, 0, p.stderr)
    return out


class BadInputTest(unittest.TestCase):
    def test_run_refuses_shards_it_cannot_drive(self):
        with tempfile.TemporaryDirectory() as tmp:
            sc = scenario(tmp)
            soon = str(int(time.time()) + 30)
            cases = [
                (["--shard", "2/2", "--start-at", soon], "below 2"),
                (["--shard", "0/0", "--start-at", soon], "at least 1"),
                (["--shard", "0/3", "--start-at", soon], "fewer than the 3 shards"),  # 2 callers
                (["--shard", "0/2"], "needs --start-at"),
                (["--shard", "0/2", "--start-at", str(int(time.time()) - 600)], "pick an instant"),
                (["--start-at", "yesterday"], "not an instant"),
            ]
            for extra, needle in cases:
                out = os.path.join(tmp, "r.json")
                p = run(["run", "-s", sc, "-o", out, "-q"] + extra, tmp)
                self.assertEqual(p.returncode, 2, (extra, p.stderr))
                self.assertIn(needle, p.stderr, extra)
                self.assertFalse(os.path.exists(out), extra)

    def test_merge_refuses_and_writes_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            sc = scenario(tmp)
            shards = run_shards(self, tmp, ["-s", sc])
            merged = merge(self, tmp, shards)
            doc = load(merged)
            self.assertEqual(doc["context"]["shard"]["count"], 2)
            for e in iterations(doc):
                self.assertEqual(e["callers"], 2)
                self.assertEqual(len(e["shards"]), 2)
            # Refusals: exit 2, both sides named, nothing written.
            other = os.path.join(tmp, "other.json")
            d = load(shards[1])
            d["context"]["git_sha"] = "deadbee"
            with open(other, "w") as f:
                json.dump(d, f)
            for files, needle in [([shards[0]], "shard 1/2 is missing"),
                                  ([shards[0], shards[0], shards[1]], "are both shard 0/2"),
                                  ([shards[0], other], "different builds"),
                                  ([shards[0], merged], "a merged report already")]:
                out = os.path.join(tmp, "refused.json")
                p = run(["merge", "-o", out] + files, tmp)
                self.assertEqual(p.returncode, 2, (files, p.stderr))
                self.assertIn(needle, p.stderr)
                self.assertFalse(os.path.exists(out))


class OpenLoopTest(unittest.TestCase):
    def test_shards_split_the_schedule(self):
        # Shard I of N takes positions I, I+N, ... of the one schedule: the
        # shards' target rates and starts add up to the unsharded cell's.
        with tempfile.TemporaryDirectory() as tmp:
            sc = scenario(tmp, mode="open", rate=120, concurrency=[4], duration_s=1.5,
                          deadline_ms=250, warmup_s=0.2)
            shards = run_shards(self, tmp, ["-s", sc])
            merged = merge(self, tmp, shards)
            parts = [iterations(load(s))[0] for s in shards]
            e = iterations(load(merged))[0]
            single = os.path.join(tmp, "single.json")
            p = run(["run", "-s", sc, "-o", single, "-q"], tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            one = iterations(load(single))[0]
        self.assertEqual([x["target_rate"] for x in parts], [60, 60])
        self.assertEqual([x["callers"] for x in parts], [2, 2])
        self.assertEqual(e["target_rate"], 120)
        # 1.5 s at 120/s: ~180 starts in the window (the boundaries are
        # floating point), half each, and exactly the unsharded run's.
        self.assertEqual(e["latency_samples"], one["latency_samples"])
        self.assertLessEqual(abs(e["latency_samples"] - 180), 1)
        self.assertLessEqual(abs(parts[0]["latency_samples"] - parts[1]["latency_samples"]), 1)
        # achieved_rate leaves out the starts that expired before a caller was
        # free (a loaded sanitised machine has a few): the shards' add up, and
        # with the expired ones they are the window's starts.
        self.assertAlmostEqual(e["achieved_rate"], sum(x["achieved_rate"] for x in parts), places=6)
        self.assertLessEqual(
            abs(e["achieved_rate"] * e["window_s"] + e["starts_expired"] - e["latency_samples"]), 1, e)
        self.assertLessEqual(abs(e["achieved_rate"] - 120) / 120, 0.1, e)


class MergedReportTest(unittest.TestCase):
    def test_the_analysis_reads_a_merged_report(self):
        # compare.py, claims.py, plot.py and report_html.py take a merged
        # report like any other (Release tree only: the scripts do not
        # depend on the build).
        scripts = os.path.join(HERE, "..", "..", "scripts")
        py = "/usr/bin/python3"
        with tempfile.TemporaryDirectory() as tmp:
            sc = scenario(tmp, patterns=["cancellable-group", "channel-soup"], repetitions=2)
            merged = merge(self, tmp, run_shards(self, tmp, ["-s", sc]))
            steps = [
                ([py, os.path.join(scripts, "claims.py"), merged], {0}),
                # 2 vs 2 repetitions: no test can reach significance (exit 3).
                ([py, os.path.join(scripts, "compare.py"), merged, merged], {0, 3}),
                ([py, os.path.join(scripts, "plot.py"), merged, "--no-claims", "--sizes", "single",
                  "-o", os.path.join(tmp, "plots")], {0}),
                ([py, os.path.join(scripts, "report_html.py"), merged, "-o",
                  os.path.join(tmp, "index.html")], {0}),
            ]
            for argv, ok in steps:
                p = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=180)
                self.assertIn(p.returncode, ok, (argv[1], p.stderr[-2000:]))
            self.assertTrue(os.listdir(os.path.join(tmp, "plots")))
            with open(os.path.join(tmp, "index.html")) as f:
                self.assertIn("cancellable-group", f.read())


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


class Namespaces:
    """A mock host and client hosts on one bridge, removed on exit."""

    def __init__(self, clients):
        tag = os.getpid()
        self.net = f"10.231.{tag % 200}"
        self.mock = f"ol-mock-{tag}"
        self.clients = [f"ol-c{i}-{tag}" for i in range(clients)]
        self.made = []

    def __enter__(self):
        try:
            sh("ip", "netns", "add", self.mock)
            self.made.append(self.mock)
            ns = self.mock
            sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", ns, "addr", "add", f"{self.net}.1/24", "dev", "br0")
            sh("ip", "-n", ns, "link", "set", "br0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for i, c in enumerate(self.clients):
                sh("ip", "netns", "add", c)
                self.made.append(c)
                sh("ip", "link", "add", f"olv{i}-{os.getpid() % 10000}", "netns", c, "type", "veth",
                   "peer", "name", f"p{i}", "netns", ns)
                sh("ip", "-n", ns, "link", "set", f"p{i}", "master", "br0", "up")
                inner = f"olv{i}-{os.getpid() % 10000}"
                sh("ip", "-n", c, "addr", "add", f"{self.net}.{i + 2}/24", "dev", inner)
                sh("ip", "-n", c, "link", "set", inner, "up")
                sh("ip", "-n", c, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        # Deleting a namespace deletes the veths and the bridge in it.
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []


def namespaces_permitted():
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if not shutil.which("ip"):
        return "needs iproute2's ip"
    name = f"ol-probe-{os.getpid()}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        return "ip netns add is not permitted here: " + p.stderr.strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def table(report_path):
    """{pattern: [column verdicts]} of claims.py's comparison table: the bold word of each cell."""
    p = subprocess.run(["/usr/bin/python3", CLAIMS, report_path], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    text = p.stdout.split("## The comparison table", 1)[1]
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)` \|(.*)\|\s*$", line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        if cells and cells[0] in ("C++ threads", "C++ Asio", "Go"):
            cells = cells[1:]  # the runtime column
        rows[m.group(1)] = [re.match(r"(\*\*[^*]+\*\*|n/a|not testable here|inconclusive)", c).group(1)
                            for c in cells]
    return rows


class NamespaceProofTest(unittest.TestCase):
    def test_two_shards_merge_into_one_run(self):
        why = namespaces_permitted()
        if why:
            self.skipTest(why)
        with tempfile.TemporaryDirectory() as tmp, Namespaces(clients=2) as net:
            ports = [18181, 18182, 18183]
            # One-hangs in small: a hang that ends by itself (300 ms), so the
            # leaks and aborts are there and every slot drains.
            services = [{"name": n, "port": port, "seed": i + 1, "body_bytes": 256,
                         "latency": {"dist": "lognormal", "p50_ms": 10, "p99_ms": 40, "max_ms": 200}}
                        for i, (n, port) in enumerate(zip(("users", "orders", "inventory"), ports))]
            services[2]["faults"] = [{"kind": "hang", "probability": 0.10, "max_ms": 300}]
            cfg = os.path.join(tmp, "mock.json")
            with open(cfg, "w") as f:
                json.dump({"bind": f"{net.net}.1", "services": services}, f)
            mock = subprocess.Popen(["ip", "netns", "exec", net.mock, MOCK, "--config", cfg,
                                     "--allow-remote", "--threads", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                for line in mock.stdout:
                    if '"ready"' in line:
                        break
                else:
                    self.fail("orchlab-mock did not start")
                urls = ",".join(f"http://{net.net}.1:{p}" for p in ports)
                sc = scenario(tmp, "one-hangs", services=services,
                              patterns=["channel-soup", "cancellable-group"], fanout=[3],
                              concurrency=[8], deadline_ms=100, duration_s=1.5, warmup_s=0.2,
                              repetitions=3, max_conns_per_host=64)
                common = ["-s", sc, "--services", urls, "--seed", "7"]
                single = os.path.join(tmp, "single.json")
                p = run(["run"] + common + ["-o", single, "-q"], tmp,
                        prefix=("ip", "netns", "exec", net.clients[0]))
                self.assertEqual(p.returncode, 0, p.stderr)
                shards = run_shards(self, tmp, common, hosts=net.clients, lead_s=3)
            finally:
                mock.terminate()
                mock.wait(timeout=10)
                mock.stdout.close()
            merged = merge(self, tmp, shards)
            docs = [load(s) for s in shards]
            m, one = load(merged), load(single)
            self.assertTrue(all(d["context"]["shard"]["host"] for d in docs))
            self.assertEqual(m["context"]["shard"]["services"], "shared")
            by_key = lambda d: {(e["name"], e["repetition_index"]): e for e in iterations(d)}
            parts = [by_key(d) for d in docs]
            merged_cells, single_cells = by_key(m), by_key(one)
            self.assertEqual(set(merged_cells), set(single_cells))
            summary = {}
            for key, e in merged_cells.items():
                for field in ("latency_samples", "iterations", "calls", "completed_in_window"):
                    self.assertEqual(e[field], sum(p[key][field] for p in parts), (key, field))
                self.assertEqual(e["histograms"]["latency_ns"]["count"], e["latency_samples"])
                print(f"{key[0]} rep {key[1]}: samples {' + '.join(str(p[key]['latency_samples']) for p in parts)}"
                      f" = {e['latency_samples']} (unsharded {single_cells[key]['latency_samples']}); "
                      f"p99 {e['p99_us']} us (unsharded {single_cells[key]['p99_us']}); windows "
                      f"{abs(parts[0][key]['window_start_unix_ns'] - parts[1][key]['window_start_unix_ns']) / 1e6:.2f} ms apart",
                      file=sys.stderr)
                self.assertEqual(e["callers"], 8)
                starts = [p[key]["window_start_unix_ns"] for p in parts]
                self.assertLess(abs(starts[0] - starts[1]), 100e6, key)
                summary.setdefault(key[0], ([], []))[0].append(e["items_per_second"])
                summary[key[0]][1].append(single_cells[key]["items_per_second"])
            self.assertEqual(table(merged), table(single))
            if one["context"]["sanitizer"]:
                # A sanitizer build is CPU-bound where Release is latency-bound:
                # one process and two then differ by the instrumentation.
                print("throughput not compared: a %s-sanitizer build" % one["context"]["sanitizer"],
                      file=sys.stderr)
                return
            for name, (sharded, unsharded) in summary.items():
                # Within noise: the medians of 3 vs 3 repetitions differ by less
                # than 15 % or twice the unsharded repetitions' CV, whichever
                # is larger (the cells are latency-bound, not CPU-bound).
                ratio = statistics.median(sharded) / statistics.median(unsharded)
                cv = statistics.stdev(unsharded) / statistics.mean(unsharded)
                print(f"{name}: merged {statistics.median(sharded):.1f}/s vs single "
                      f"{statistics.median(unsharded):.1f}/s, ratio {ratio:.3f}, single CV {cv:.3f}",
                      file=sys.stderr)
                self.assertLess(abs(ratio - 1), max(0.15, 2 * cv), (name, sharded, unsharded))


def main():
    global ORCHLAB, MOCK
    parser = argparse.ArgumentParser()
    parser.add_argument("--orchlab", required=True)
    parser.add_argument("--mock", required=True)
    args, rest = parser.parse_known_args()
    ORCHLAB, MOCK = os.path.abspath(args.orchlab), os.path.abspath(args.mock)
    prog = unittest.main(argv=[sys.argv[0]] + rest, exit=False)
    r = prog.result
    if r.testsRun and len(r.skipped) == r.testsRun and r.wasSuccessful():
        sys.exit(77)
    sys.exit(0 if r.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
