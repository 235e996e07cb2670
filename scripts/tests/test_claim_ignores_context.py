"""Claim 14, the article's FAQ ("If a goroutine ignores context entirely, you're stuck
waiting for it"), on crafted claim-ignores-context cells: supported and refuted in each
runtime, the runtimes disagreeing, a runtime without its experiment, and a null p99."""

import copy
import json

import pytest

from conftest import run_script, write
from gocells import add_go_twins

SCENARIO = "claim-ignores-context"
IGNORES, CONTROL = "cancellable-group+ignores-stop", "cancellable-group"
GO_IGNORES, GO_CONTROL = "go-errgroup+ignores-ctx", "go-errgroup"
REPS = 6  # as make bench runs it: the sign-test interval of a median reaches 96.9 %


def _cells(template, pattern, overshoot_ms):
    """REPS iteration entries of one claim-ignores-context cell, made from a sample entry,
    with the given p99 deadline overshoot (ms) in each repetition."""
    out = []
    for i, ms in enumerate(overshoot_ms):
        e = copy.deepcopy(template)
        e.update({"scenario": SCENARIO, "pattern": pattern, "label": pattern, "repetition_index": i,
                  "repetitions": REPS, "iterations": 120, "latency_samples": 120,
                  "deadline_overshoot_p99_us": None if ms is None else ms * 1000.0,
                  "leaked_tasks_at_return": 0, "runtime": "cpp-thread"})
        e["name"] = e["run_name"] = f"{SCENARIO}/{pattern}/fanout:3/concurrency:256/real_time"
        out.append(e)
    return out


def crafted(sample, ignores_ms, control_ms=(2.1, 1.8, 2.4, 2.0, 1.9, 2.2), go=True, go_ignores_ms=None):
    """The sample with claim-ignores-context's C++ cells (and their Go twins when `go`)."""
    doc = copy.deepcopy(sample)
    template = next(b for b in doc["benchmarks"] if b.get("run_type") == "iteration"
                    and b.get("scenario") == "claim-one-hangs-open" and b.get("pattern") == CONTROL)
    cells = _cells(template, IGNORES, ignores_ms) + _cells(template, CONTROL, control_ms)
    doc["lab"]["scenarios"][SCENARIO] = {"deadline_ms": 100, "fanout": [3], "concurrency": [256],
                                         "patterns": [IGNORES, CONTROL], "repetitions": REPS, "mode": "open",
                                         "rate": 400.0, "duration_s": 0.3}
    if go:
        twins = add_go_twins({"benchmarks": copy.deepcopy(cells), "lab": {}})["benchmarks"][len(cells):]
        for e in twins:
            if e["pattern"] == GO_IGNORES and go_ignores_ms is not None:
                e["deadline_overshoot_p99_us"] = go_ignores_ms[e["repetition_index"]] * 1000.0
        cells += twins
    doc["benchmarks"] += cells
    return doc


def _claim(tmp_path, doc, fmt="json"):
    r = run_script("claims.py", write(tmp_path, "r.json", doc), "--no-micro", "--format", fmt)
    assert r.code == 0, r.err
    if fmt != "json":
        return r.out
    return next(c for c in json.loads(r.out)["claims"] if c["id"] == "ignores-context")


def _runtime(claim, name):
    (rv,) = [rv for rv in claim["runtimes"] if rv["runtime"] == name]
    return rv


STUCK = (398.0, 401.5, 399.2, 402.8, 400.1, 399.9)  # the 500 ms hang less the 100 ms deadline
ON_TIME = (2.2, 1.7, 3.1, 2.5, 2.0, 2.8)  # every call stopped at the deadline


def test_stuck_waiting_is_supported_in_both_runtimes(tmp_path, sample):
    c = _claim(tmp_path, crafted(sample, STUCK))
    for rt, ignores, control in (("cpp-thread", IGNORES, CONTROL), ("go", GO_IGNORES, GO_CONTROL)):
        rv = _runtime(c, rt)
        assert rv["status"] == "evaluated" and rv["verdict"] == "supported", rv
        (t,) = rv["tests"]
        assert ignores in t["label"] and t["threshold"] == 10 and t["direction"] == "above"
        assert 399 < t["estimate"] < 401 and t["interval"][0] > 10
        assert t["confidence"] >= 0.95 and t["repetitions"] == [REPS]
        # the control beside it: the well-behaved group returns within the tolerance
        ctl = next(x for x in rv["context"] if control + " deadline overshoot" in x["label"])
        assert ctl["interval"][1] < 10
        left = next(x for x in rv["context"] if "tasks left running" in x["label"])
        assert left["estimate"] == 0  # it waits instead of leaking
    assert c["verdict"] == "supported"


def test_a_deadline_that_holds_refutes_it(tmp_path, sample):
    # Had the ignored call ended by itself at the deadline, nobody would be stuck.
    c = _claim(tmp_path, crafted(sample, ON_TIME))
    assert _runtime(c, "cpp-thread")["verdict"] == "refuted"
    assert _runtime(c, "go")["verdict"] == "refuted"
    (t,) = _runtime(c, "cpp-thread")["tests"]
    assert t["interval"][1] <= 10


def test_the_runtimes_can_disagree(tmp_path, sample):
    doc = crafted(sample, STUCK, go_ignores_ms=ON_TIME)
    c = _claim(tmp_path, doc)
    assert _runtime(c, "cpp-thread")["verdict"] == "supported"
    assert _runtime(c, "go")["verdict"] == "refuted"
    md = _claim(tmp_path, doc, "md")
    dis = md[md.index("### Where the runtimes disagree"):]
    line = next(x for x in dis.splitlines() if x.startswith("- **14."))
    assert "C++ threads: supported; Go: refuted" in line


def test_a_runtime_without_its_experiment_is_not_run(tmp_path, sample):
    doc = crafted(sample, STUCK, go=False)
    doc["context"].setdefault("runtimes", {}).setdefault("go", {})["status"] = "not built: go not found"
    c = _claim(tmp_path, doc)
    assert _runtime(c, "cpp-thread")["verdict"] == "supported"
    go = _runtime(c, "go")
    assert go["status"] == "not run"
    assert SCENARIO in go["reason"] and GO_IGNORES in go["reason"] and "not built: go not found" in go["reason"]
    # C++ Asio has no exhibit that ignores its cancellation: the claim does not apply there
    assert not [rv for rv in c["runtimes"] if rv["runtime"] == "cpp-asio"]
    md = _claim(tmp_path, doc, "md")
    row = next(x for x in md.splitlines() if x.startswith("| 14 |"))
    assert "**supported**" in row and "not run" in row


def test_a_null_p99_is_not_a_number(tmp_path, sample):
    # A repetition with fewer than 100 orchestrations has no p99: unknown, with the reason.
    doc = crafted(sample, STUCK[:5] + (None,), go=False)
    doc["lab"]["notes"].append("deadline_overshoot_p99_us is null where a repetition has fewer than 100 "
                               "orchestrations (one overshoot each: latency_samples gives the count)")
    rv = _runtime(_claim(tmp_path, doc), "cpp-thread")
    assert rv["verdict"] == "not testable here"
    (t,) = rv["tests"]
    assert "estimate" not in t or t["estimate"] is None
    assert "deadline_overshoot_p99_us is null" in t["reason"] and "fewer than 100 orchestrations" in t["reason"]


@pytest.mark.parametrize("runtime", ["cpp-thread", "go"])
def test_the_statistic_is_the_same_rule_in_each_runtime(tmp_path, sample, runtime):
    c = _claim(tmp_path, crafted(sample, STUCK))
    (t,) = _runtime(c, runtime)["tests"]
    assert t["method"].startswith("median over repetitions, sign-test interval")
    assert t["resolution"]  # a histogram percentile: never a zero-width interval
