"""Impossible server counts are refused when a report is read; the host's load before the
run and micro.json's debug library build are said in one line next to the figures."""

import copy
import json

from conftest import iteration_entries, run_script, write
from orchlab_py.report import host_busy_line, load_report, micro_build_line, server_invariant_breaks


def fail_fast_entry(pattern="cancellable-group", aborts=2000, **over):
    e = {"name": f"claim-fail-fast/{pattern}/fanout:3/concurrency:16/real_time", "run_type": "iteration",
         "scenario": "claim-fail-fast", "pattern": pattern, "fanout": 3, "concurrency": 16,
         "repetition_index": 0, "iterations": 1000, "calls": 3000, "call_ok": 0, "call_http_errors": 1000,
         "complete": 0, "failed": 1000, "partial": 0, "timed_out": 0, "orchestrations_threw": 0,
         "server_client_aborts": aborts, "server_requests": 3000}
    e.update(over)
    return e


def test_more_aborts_than_siblings_in_a_first_error_cell_is_impossible():
    for p in ("cancellable-group", "bounded-group", "async-group"):
        breaks = server_invariant_breaks(fail_fast_entry(p, 2370))
        assert [f for f, _ in breaks] == ["server_client_aborts"], (p, breaks)
        assert "first-error cell of fan-out 3" in breaks[0][1]
    assert server_invariant_breaks(fail_fast_entry("async-group", 2000)) == []
    # The deadline can cut off every call of the orchestrations it ended.
    assert server_invariant_breaks(fail_fast_entry(aborts=2100, failed=900, timed_out=100)) == []
    # A pattern that waits for every call is not a first-error cell.
    assert server_invariant_breaks(fail_fast_entry("cancellable-group+collect-all", 2370)) == []


def test_more_aborts_than_calls_and_fewer_requests_than_answers_are_impossible():
    breaks = server_invariant_breaks(fail_fast_entry("channel-soup", 3001))
    assert breaks == [("server_client_aborts", "3001 client aborts for 3000 calls")]
    breaks = server_invariant_breaks(fail_fast_entry("channel-soup", 0, server_requests=999))
    assert [f for f, _ in breaks] == ["server_requests"]
    # Unknown stays unknown.
    assert server_invariant_breaks(fail_fast_entry(aborts=None, server_requests=None)) == []


def test_the_reader_refuses_them_with_a_note(tmp_path):
    doc = {"context": {}, "benchmarks": [fail_fast_entry(aborts=2370), fail_fast_entry(aborts=1990)],
           "lab": {"notes": []}}
    doc["benchmarks"][1]["repetition_index"] = 1
    r = load_report(str(write(tmp_path, "r.json", doc)))
    reps = r.select("claim-fail-fast", "cancellable-group")[0].reps
    assert reps[0]["server_client_aborts"] is None
    assert reps[1]["server_client_aborts"] == 1990
    notes = [n for n in r.lab["notes"] if "refused" in n]
    assert len(notes) == 1 and "claim-fail-fast/cancellable-group/fanout:3/concurrency:16 repetition 1" in notes[0]
    # A shard's own report of services the shards share holds every shard's calls: not checked.
    doc["context"]["shard"] = {"index": 0, "count": 2, "services": "shared"}
    r = load_report(str(write(tmp_path, "s.json", doc)))
    assert r.select("claim-fail-fast", "cancellable-group")[0].reps[0]["server_client_aborts"] == 2370


def busy_context():
    return {"host_before_run": {"load_avg_1m": 5.0, "cpu_busy_share": 1.0, "steal_share": 0.0,
                                "busy_processes": [{"pid": 7, "comm": "cc1plus", "cpu_share": 0.9}],
                                "cpus": 2, "measured_for_s": 1.0, "busy": True,
                                "why": "100 % of the CPU time busy; load average 5.00 on 2 CPUs"}}


def test_host_busy_line():
    assert host_busy_line({}) is None
    assert host_busy_line({"host_before_run": None}) is None
    quiet = busy_context()
    quiet["host_before_run"].update(busy=False, why=None)
    assert host_busy_line(quiet) is None
    line = host_busy_line(busy_context())
    assert "busy before the run" in line and "load average 5.00 on 2 CPUs" in line


def test_micro_build_line():
    assert micro_build_line({"library_build_type": "release"}) is None
    assert "Release build" in micro_build_line({"library_build_type": "debug"})


def test_claims_and_html_say_it_once(sample, tmp_path):
    doc = copy.deepcopy(sample)
    # One scenario's cells are enough (and quick to draw).
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b.get("scenario") == "claim-fail-fast"]
    doc["lab"]["series"] = {}
    doc["context"].update(busy_context())
    path = write(tmp_path, "report.json", doc)
    r = run_script("claims.py", path, "--no-micro")
    assert r.code == 0, r.err
    assert r.out.count("busy before the run") == 1
    assert "library_build_type" not in r.out  # no micro.json: nothing to explain
    out = tmp_path / "index.html"
    r = run_script("report_html.py", path, "--no-micro", "-o", out)
    assert r.code == 0, r.err
    assert out.read_text(encoding="utf-8").count("busy before the run") == 1
    # Without host_before_run (an older report) or a quiet host: no line.
    del doc["context"]["host_before_run"]
    r = run_script("claims.py", write(tmp_path, "old.json", doc), "--no-micro")
    assert "busy before the run" not in r.out


def test_claims_explain_the_debug_micro_library(sample, tmp_path):
    from conftest import MICRO  # noqa: F401  (the sample micro.json says debug)
    with open(MICRO, encoding="utf-8") as f:
        assert json.load(f)["context"]["library_build_type"] == "debug"
    r = run_script("claims.py", write(tmp_path, "report.json", sample), "--micro", MICRO)
    assert r.code == 0, r.err
    assert r.out.count("library_build_type: debug") == 1


def test_sample_fail_fast_counts_are_refused(sample, tmp_path):
    # The sample predates window-only counts: 2.3+ aborts per orchestration in claim-fail-fast.
    if not iteration_entries(sample, scenario="claim-fail-fast", pattern="cancellable-group"):
        return
    r = load_report(str(write(tmp_path, "r.json", sample)))
    assert all(rep["server_client_aborts"] is None
               for rep in r.select("claim-fail-fast", "cancellable-group")[0].reps)
