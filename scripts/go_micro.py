#!/usr/bin/env python3
"""Run the Go twin of BM_Aggregate (patterns/go/aggregate) and write its results as go_micro.json.

The benchmark is Go's own (testing.B); this script builds its test binary once, runs it
once per repetition (every benchmark in each pass, so a slow spell of the machine spreads
over all of them, as orchlab-micro's interleaved repetitions do) at GOMAXPROCS 1 to the
usable cores, and converts Go's benchmark lines into Google Benchmark's JSON shape with
the names BM_Aggregate uses (BM_Aggregate/<strategy>/work_ns:W/threads:T, T = GOMAXPROCS),
so the claims engine reads it with the same code and the same interval method as
micro.json. Go runs offline (GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off).
"""

import argparse
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time

PROG = "go_micro.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from orchlab_py.gotool import go_env  # noqa: E402
GO_MODULE = os.path.join(ROOT, "patterns", "go")
PACKAGE = "./aggregate"
# BenchmarkAggregate/<strategy>/work_ns:<W>[-<GOMAXPROCS>]  <N>  <ns> ns/op  [<v> <unit>]...
_LINE = re.compile(r"^(?P<name>Benchmark\S+)\s+(?P<n>\d+)\s+(?P<ns>[\d.e+]+) ns/op(?P<rest>.*)$")
_NAME = re.compile(r"^BenchmarkAggregate/(?P<s>[^/]+)/work_ns:(?P<w>\d+)(?:-(?P<p>\d+))?$")
_METRIC = re.compile(r"([\d.e+-]+) (\S+)")


def usable_cpus():
    """Cores in this process's affinity mask."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_cpus(cores):
    """1, 2, 4, ... up to the usable cores, and the cores themselves (BM_Aggregate's threads)."""
    out, t = [], 1
    while t < cores:
        out.append(t)
        t *= 2
    out.append(cores)
    return out


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Build and run the Go twin of BM_Aggregate (mutex-guarded slice, channel fan-in, index slots "
        "and the rest, the same tasks) at GOMAXPROCS 1 to the usable cores, and write go_micro.json in Google "
        "Benchmark's JSON shape (BM_Aggregate/<strategy>/work_ns:W/threads:T, items_per_second per repetition).",
        epilog="Example: go_micro.py -o results/latest/go_micro.json --repetitions 5 --benchtime 0.05s",
    )
    p.add_argument("-o", "--out", metavar="FILE", help="where to write go_micro.json (default: stdout)")
    p.add_argument("--repetitions", type=int, default=5,
                   help="passes over every benchmark; each is one repetition (default: 5, the fewest for a 95 %% "
                   "Hodges-Lehmann interval of 5 vs 5)")
    p.add_argument("--benchtime", default="0.05s",
                   help="go test's -benchtime per benchmark and pass (default: 0.05s; 1x runs each once)")
    p.add_argument("--cpu", metavar="LIST", help="GOMAXPROCS values (default: 1, 2, 4, ... and the usable cores)")
    p.add_argument("--bench", metavar="REGEXP", default=".",
                   help="go test's -bench, e.g. 'Aggregate/(mutex-vector|slots)/work_ns:0$' (default: all)")
    p.add_argument("--go", metavar="GO", default=os.environ.get("GO", "go"), help="the go command (default: $GO or go)")
    p.add_argument("--binary", metavar="FILE", default=os.path.join(ROOT, "build", "go", "aggregate.test"),
                   help="where the test binary is built (default: build/go/aggregate.test)")
    return p


def parse(text, repetition):
    """(header {goos, goarch, pkg, cpu}, [entries]) of one pass of `go test -bench` output."""
    header, out = {}, []
    for line in text.splitlines():
        for key in ("goos", "goarch", "pkg", "cpu"):
            if line.startswith(key + ": "):
                header[key] = line[len(key) + 2:].strip()
        m = _LINE.match(line.strip())
        if not m:
            continue
        n = _NAME.match(m["name"])
        if not n:
            continue
        procs = int(n["p"] or 1)
        metrics = {unit: float(v) for v, unit in _METRIC.findall(m["rest"])}
        ns = float(m["ns"])
        tasks = metrics.get("tasks/op")
        name = f"BM_Aggregate/{n['s']}/work_ns:{n['w']}/threads:{procs}"
        out.append({"name": name, "run_name": name, "run_type": "iteration", "repetition_index": repetition,
                    "threads": 1, "iterations": int(m["n"]), "real_time": ns, "time_unit": "ns",
                    "items_per_second": (tasks / (ns * 1e-9)) if tasks and ns > 0 else None,
                    "tasks_per_fan_out": tasks, "work_ns": int(n["w"]), "gomaxprocs": procs,
                    "runtime": "go", "go_benchmark": m["name"]})
    return header, out


def fail(message):
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Entry point; returns the exit status (0 written, 1 the build or a run failed, 2 bad arguments)."""
    args = create_parser().parse_args(argv)
    if args.repetitions < 1:
        return fail("--repetitions must be at least 1")
    cores = usable_cpus()
    try:
        cpus = [int(c) for c in args.cpu.split(",")] if args.cpu else default_cpus(cores)
    except ValueError:
        return fail(f"--cpu: not a list of integers: {args.cpu!r}")
    if any(c < 1 for c in cpus):
        return fail("--cpu: GOMAXPROCS must be at least 1")
    env = go_env()
    os.makedirs(os.path.dirname(os.path.abspath(args.binary)), exist_ok=True)
    t0 = time.monotonic()
    try:
        b = subprocess.run([args.go, "test", "-c", "-o", os.path.abspath(args.binary), PACKAGE], cwd=GO_MODULE,
                           capture_output=True, text=True, env=env, timeout=600)
        version = subprocess.run([args.go, "version"], capture_output=True, text=True, env=env, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"{PROG}: go test -c did not run: {e}", file=sys.stderr)
        return 1
    if b.returncode != 0:
        print(f"{PROG}: go test -c failed: {(b.stderr or b.stdout).strip().splitlines()[:1]}", file=sys.stderr)
        return 1
    cmd = [os.path.abspath(args.binary), "-test.run", "^$", "-test.bench", args.bench,
           "-test.benchtime", args.benchtime, "-test.cpu", ",".join(map(str, cpus)), "-test.count", "1"]
    header, entries = {}, []
    for rep in range(args.repetitions):
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.join(GO_MODULE, "aggregate"))
        if r.returncode != 0:
            print(f"{PROG}: pass {rep} failed (exit {r.returncode}): {r.stderr.strip()[-300:]}", file=sys.stderr)
            return 1
        h, e = parse(r.stdout, rep)
        header.update(h)
        entries += e
    if not entries:
        return fail(f"--bench {args.bench!r} matched no BenchmarkAggregate")
    m = re.search(r"\bgo version (\S+)", version)
    ctx = {"tool": PROG, "runtime": "go", "go_version": m.group(1) if m else None,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "host_name": socket.gethostname(), "usable_cpus": cores, "num_cpus": os.cpu_count(),
           "gomaxprocs": cpus, "repetitions": args.repetitions, "benchtime": args.benchtime,
           "command_line": " ".join(["cd patterns/go/aggregate &&", os.path.relpath(args.binary, GO_MODULE + "/aggregate")]
                                    + cmd[1:]), "wall_s": round(time.monotonic() - t0, 1), **header}
    text = json.dumps({"context": ctx, "benchmarks": entries}, indent=1) + "\n"
    if args.out:
        tmp = f"{args.out}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
    else:
        sys.stdout.write(text)
    print(f"{PROG}: {len(entries)} runs ({args.repetitions} passes, GOMAXPROCS {','.join(map(str, cpus))}) in "
          f"{ctx['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
