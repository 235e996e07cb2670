"""Reports with Go exhibits (runtime field, null fields a driver cannot measure) and reports
from before `runtime`: every reader accepts both."""

import copy

import pytest

from conftest import iteration_entries, run_script, write
from gocells import add_go_twins, go_entry

from orchlab_py import metrics, report as rep, runtimes, style


def test_runtime_is_derived_from_the_name_in_an_old_report(tmp_path, sample):
    doc = copy.deepcopy(sample)
    for b in doc["benchmarks"]:
        b.pop("runtime", None)
    r = rep.load_report(str(write(tmp_path, "old.json", doc)))
    by = {k.pattern: c.runtime for k, c in r.cells.items()}
    assert by["channel-soup"] == "cpp-thread" and by["cancellable-group"] == "cpp-thread"
    assert by["async-group"] == "cpp-asio" and by.get("async-group+collect-all", "cpp-asio") == "cpp-asio"
    assert r.runtimes() == ["cpp-thread", "cpp-asio"]


def test_go_cells_are_read_with_their_null_fields(tmp_path, sample):
    doc = add_go_twins(copy.deepcopy(sample))
    r = rep.load_report(str(write(tmp_path, "go.json", doc)))
    assert r.runtimes() == ["cpp-thread", "cpp-asio", "go"]
    go = [c for k, c in r.cells.items() if k.pattern == "go-errgroup"]
    assert go and all(c.runtime == "go" for c in go)
    assert go[0].values("pool_exhausted") == [] and go[0].values("items_per_second")


def test_a_bad_runtime_is_refused(tmp_path, sample):
    doc = copy.deepcopy(sample)
    iteration_entries(doc)[0]["runtime"] = 3
    with pytest.raises(rep.ReportError, match="'runtime' must be a non-empty string"):
        rep.load_report(str(write(tmp_path, "bad.json", doc)))


def test_a_cell_that_mixes_runtimes_is_refused(tmp_path, sample):
    doc = copy.deepcopy(sample)
    e = iteration_entries(doc, pattern="channel-soup")
    cell = [b for b in e if (b["scenario"], b["fanout"], b["concurrency"]) ==
            (e[0]["scenario"], e[0]["fanout"], e[0]["concurrency"])]
    if len(cell) < 2:
        pytest.skip("a cell with one repetition")
    cell[0]["runtime"], cell[1]["runtime"] = "cpp-thread", "go"
    with pytest.raises(rep.ReportError, match="mixes runtimes"):
        rep.load_report(str(write(tmp_path, "bad.json", doc)))


@pytest.mark.parametrize("pattern,expected", [
    ("go-errgroup", True), ("go-errgroup-limit", True), ("go-errgroup+collect-all", True),
    ("go-channel-soup", False), ("go-waitgroup-select", False), ("go-mutex-aggregation", False)])
def test_go_errgroups_must_not_leak(pattern, expected):
    zero = metrics.DEFAULT_METRICS["leaked_tasks_at_return"].must_be_zero_for
    assert metrics.pattern_matches(pattern, zero) is expected


def test_first_error_invariant_covers_the_go_errgroups():
    e = {"pattern": "go-errgroup", "fanout": 3, "complete": 0, "failed": 10, "partial": 0, "timed_out": 0,
         "server_client_aborts": 25, "calls": 30}
    assert [f for f, _ in rep.server_invariant_breaks(e)] == ["server_client_aborts"]
    assert rep.server_invariant_breaks({**e, "pattern": "go-errgroup+collect-all"}) == []


def test_go_style_follows_the_counterpart():
    assert style.pattern_colour("go-channel-soup") == style.pattern_colour("channel-soup")
    assert style.pattern_colour("go-errgroup-limit") == style.pattern_colour("bounded-group")
    assert style.pattern_marker("go-channel-soup") != style.pattern_marker("channel-soup")
    assert style.pattern_hatch("go-errgroup") and style.pattern_hatch("go-errgroup") != style.pattern_hatch(
        "cancellable-group+collect-all")
    order = style.sort_patterns(["go-channel-soup", "async-group", "go-errgroup", "channel-soup", "x"])
    assert order == ["channel-soup", "async-group", "x", "go-channel-soup", "go-errgroup"]
    assert runtimes.counterpart("go-errgroup+collect-all") == "cancellable-group+collect-all"


def test_compare_checks_the_go_invariants(tmp_path, sample):
    doc = add_go_twins(copy.deepcopy(sample))
    leak = next(b for b in iteration_entries(doc, pattern="go-errgroup") if b.get("iterations"))
    leak["leaked_tasks_at_return"] = 4
    path = write(tmp_path, "go.json", doc)
    r = run_script("compare.py", path, path)
    assert r.code == 1
    assert "BROKEN INVARIANT" in r.out and "go-errgroup" in r.out


def test_go_entry_helper_nulls_what_a_driver_cannot_measure(sample):
    e = go_entry(iteration_entries(sample, pattern="channel-soup")[0], "go-channel-soup")
    assert e["runtime"] == "go" and e["pool_exhausted"] is None and e["threads_end"] is None
    assert "/go-channel-soup/" in e["name"]


def _five_with_go(sample):
    doc = add_go_twins(copy.deepcopy(sample))
    return doc


def test_compare_never_reads_a_runtime_change_as_a_change(tmp_path, sample):
    old = copy.deepcopy(sample)
    new = copy.deepcopy(sample)
    for b in new["benchmarks"]:
        if b.get("pattern") == "channel-soup":
            b["runtime"] = "go"  # the same name on another runtime: another exhibit
    r = run_script("compare.py", write(tmp_path, "old.json", old), write(tmp_path, "new.json", new),
                   "--format", "json")
    import json
    res = json.loads(r.out)
    assert res["runtime_changed"] and all(c["old"] == "cpp-thread" and c["new"] == "go"
                                          for c in res["runtime_changed"])
    assert not any("/channel-soup/" in c["cell"] for c in res["cells"])
    assert r.code == 3 and "changed runtime" in res["summary"]
    text = run_script("compare.py", write(tmp_path, "old.json", old), write(tmp_path, "new.json", new))
    assert "RUNTIME CHANGED, not compared" in text.out


def test_compare_pair_across_runtimes_says_so(tmp_path, sample):
    path = write(tmp_path, "go.json", _five_with_go(sample))
    r = run_script("compare.py", path, "--pair", "channel-soup:go-channel-soup", "--format", "json")
    import json
    res = json.loads(r.out)
    assert res["cells"] and all(c["runtime_old"] == "cpp-thread" and c["runtime_new"] == "go"
                                for c in res["cells"])
    assert any("crosses runtimes (C++ threads vs Go)" in w for w in res["warnings"])
    text = run_script("compare.py", path, "--pair", "channel-soup:go-channel-soup", "--all")
    assert "across runtimes" in text.out and "C++ threads vs Go" in text.out


def test_compare_html_shows_the_runtime(tmp_path, sample):
    path = write(tmp_path, "go.json", _five_with_go(sample))
    out = tmp_path / "c.html"
    r = run_script("compare_html.py", path, "--pair", "cancellable-group:go-errgroup", "-o", out)
    assert r.code == 0, r.err
    html = out.read_text(encoding="utf-8")
    assert "<th" in html and ">runtime<" in html and "C++ threads vs Go" in html
