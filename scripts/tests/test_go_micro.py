"""BM_Aggregate's Go twin (issue 25): go_micro.py's conversion of `go test -bench` output, and
claims 5 and 9 answered for Go from go_micro.json with claimkit's statistic and interval."""

import copy
import json
import os

import pytest

from conftest import INPUTS, REPORT, run_script, write
from gocells import add_go_twins

import go_micro  # noqa: E402  (scripts/go_micro.py)
from orchlab_py import claimkit

SAMPLE = os.path.join(INPUTS, "go_micro_sample.json")  # a real 5-pass run on the lab's 2-core host

GO_OUTPUT = """goos: linux
goarch: amd64
pkg: orchlab/patterns/go/aggregate
cpu: Oxide Virtual Turin-like Processor
BenchmarkAggregate/mutex-vector/work_ns:0         \t    1036\t     94094 ns/op\t      4096 tasks/op
BenchmarkAggregate/mutex-vector/work_ns:0-2       \t     796\t     88937 ns/op\t      4096 tasks/op
BenchmarkAggregate/channel-fan-in/work_ns:100000-4\t       8\t   6601669 ns/op\t        64.00 tasks/op
BenchmarkOther-2 \t 10\t 5 ns/op
PASS
"""


def test_go_benchmark_lines_become_bm_aggregate_runs():
    header, entries = go_micro.parse(GO_OUTPUT, 3)
    assert header == {"goos": "linux", "goarch": "amd64", "pkg": "orchlab/patterns/go/aggregate",
                      "cpu": "Oxide Virtual Turin-like Processor"}
    assert [e["name"] for e in entries] == ["BM_Aggregate/mutex-vector/work_ns:0/threads:1",
                                            "BM_Aggregate/mutex-vector/work_ns:0/threads:2",
                                            "BM_Aggregate/channel-fan-in/work_ns:100000/threads:4"]
    e = entries[1]
    assert e["gomaxprocs"] == 2 and e["repetition_index"] == 3 and e["iterations"] == 796
    assert e["items_per_second"] == pytest.approx(4096 / 88937e-9)
    assert e["go_benchmark"] == "BenchmarkAggregate/mutex-vector/work_ns:0-2" and e["runtime"] == "go"


def test_default_gomaxprocs_are_bm_aggregates_threads():
    assert go_micro.default_cpus(1) == [1]
    assert go_micro.default_cpus(2) == [1, 2]
    assert go_micro.default_cpus(6) == [1, 2, 4, 6]


def test_the_sample_reads_as_micro_runs():
    from orchlab_py.report import load_micro
    agg = claimkit.aggregate_runs(load_micro(SAMPLE))
    strategies = {s for s, _w, _t in agg}
    assert strategies == {"mutex-vector", "slots", "slots-padded", "channel-fan-in", "atomic-index"}
    assert all(len(v) == 5 for v in agg.values())
    assert {t for _s, _w, t in agg} == {1, 2}


def _claims(tmp_path, report_doc, go_doc, *extra):
    args = [write(tmp_path, "r.json", report_doc), "--no-micro", "--format", "json",
            "--go-micro", write(tmp_path, "go.json", go_doc), *extra]
    r = run_script("claims.py", *args)
    assert r.code == 0, r.err
    return json.loads(r.out)


def _go(doc, cid):
    c = next(c for c in doc["claims"] if c["id"] == cid)
    (rv,) = [rv for rv in c["runtimes"] if rv["runtime"] == "go"]
    return rv


def _sample_report():
    with open(REPORT, encoding="utf-8") as f:
        return json.load(f)


def _crafted(share, threads=4, reps=5):
    """go_micro.json whose mutex-vector loses `share` of its throughput against slots
    from 1 to `threads` GOMAXPROCS, no work per task."""
    out = []
    for i in range(reps):
        jitter = 1 + 0.002 * i
        for s, t, v in (("slots", 1, 100.0), ("mutex-vector", 1, 80.0), ("slots", threads, 300.0),
                        ("mutex-vector", threads, 240.0 * (1 - share))):
            name = f"BM_Aggregate/{s}/work_ns:0/threads:{t}"
            out.append({"name": name, "run_name": name, "run_type": "iteration", "repetition_index": i,
                        "items_per_second": v * jitter * (1 + 0.001 * (t == 1))})
    return {"context": {"runtime": "go"}, "benchmarks": out}


@pytest.mark.parametrize("share, verdict", [(0.6, "supported"), (0.05, "refuted")])
def test_claim_5_in_go_reaches_its_verdict_on_enough_cores(tmp_path, share, verdict):
    doc = _sample_report()
    doc["context"]["usable_cpus"] = 4
    rv = _go(_claims(tmp_path, doc, _crafted(share)), "mutex-gap")
    assert rv["status"] == "evaluated" and rv["verdict"] == verdict, rv["reason"]
    (t,) = rv["tests"]
    assert t["estimate"] == pytest.approx(share, abs=0.01)
    assert t["method"].startswith("1 - R(T)/R(1), Hodges-Lehmann")  # claimkit's, as for C++
    assert any("go_micro.json" in d for d in t["detail"])
    assert {s["label"] for s in rv["skipped"]} == {
        "macro twin, zero-delay: throughput of mutex-aggregation over slots-aggregation"}


def test_claim_5_in_go_on_two_cores_prints_the_estimate_and_is_not_testable(tmp_path):
    with open(SAMPLE, encoding="utf-8") as f:
        sample = json.load(f)
    doc = _sample_report()
    doc["context"]["usable_cpus"] = 2
    out = _claims(tmp_path, doc, sample)
    rv = _go(out, "mutex-gap")
    assert rv["verdict"] == "not testable here" and "needs >= 4 usable cores; this host has 2" in rv["reason"]
    assert rv["tests"][0]["estimate"] is not None and rv["tests"][0]["interval"][0] is not None
    assert _go(out, "slots-win")["status"] == "evaluated"


def test_without_go_micro_json_the_go_column_names_the_missing_file(tmp_path):
    r = run_script("claims.py", REPORT, "--no-micro", "--format", "json")
    doc = json.loads(r.out)
    t = _go(doc, "mutex-gap")["tests"][0]
    assert t["verdict"] == "not testable here" and "go_micro.json" in t["reason"]


def test_the_table_reads_a_go_exhibits_multicore_cell_from_go_micro(tmp_path, sample):
    doc = add_go_twins(copy.deepcopy(sample))
    rows = {r["pattern"]: r for r in _claims(tmp_path, doc, _crafted(0.6, threads=2))["table"]}
    cell = rows["go-mutex-aggregation"]["multicore_safe"]
    assert "contention share of mutex-vector against slots" in cell and "Go twin, GOMAXPROCS" in cell
    assert cell.startswith("**serialises**")


def test_a_runtime_entry_names_a_known_micro_source():
    claim = {"id": "x", "claim": "x", "tests": [{"label": "t", "threshold": 0, "direction": "above",
                                                 "statistic": {"kind": "micro_contention", "strategy": "a",
                                                               "baseline": "b"}}],
             "runtimes": {"go": {"micro": "bench.json"}}}
    with pytest.raises(claimkit.SpecError, match="micro: must be one of micro, go_micro"):
        claimkit.validate({"claims": [claim]}, "f.json")
