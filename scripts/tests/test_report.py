"""Report loading: schema checks, metadata precedence, cells and micro files."""

import copy

import pytest

from conftest import MICRO, REPORT, write
from orchlab_py.metrics import DEFAULT_METRICS, metric_table, pattern_matches
from orchlab_py.report import ReportError, load_micro, load_report, micro_family, parse_cell_name


def test_sample_loads_into_cells():
    r = load_report(REPORT)
    assert r.cells
    for key, cell in r.cells.items():
        assert all(rep.get("run_type", "iteration") == "iteration" for rep in cell.reps)
        assert [rep.get("repetition_index", 0) for rep in cell.reps] == sorted(
            rep.get("repetition_index", 0) for rep in cell.reps)
        assert key.name in cell.reps[0]["name"]


def test_lab_metrics_override_defaults():
    table = metric_table({"p99_us": {"unit": "ms", "better": "higher", "must_be_zero_for": ["x"]},
                          "new_metric": {"unit": "things", "better": "none"}})
    assert table["p99_us"].better == "higher" and table["p99_us"].unit == "ms"
    assert table["p99_us"].must_be_zero_for == ("x",)
    assert table["new_metric"].better == "none"
    assert table["rss_peak_kb"] == DEFAULT_METRICS["rss_peak_kb"]


@pytest.mark.parametrize("meta", [{"better": "sideways"}, {"unit": 3}, {"must_be_zero_for": "all"}, []])
def test_bad_metadata_is_rejected(meta):
    with pytest.raises(ValueError):
        metric_table({"p99_us": meta})


def test_bad_metadata_in_a_report_names_the_file(sample, tmp_path):
    doc = copy.deepcopy(sample)
    doc["lab"]["metrics"] = {"p99_us": {"better": "sideways"}}
    path = write(tmp_path, "m.json", doc)
    with pytest.raises(ReportError, match=f"^{path}: lab.metrics.p99_us.better"):
        load_report(str(path))


def test_infeasible_cells_are_recognised(sample, tmp_path):
    doc = copy.deepcopy(sample)
    e = next(b for b in doc["benchmarks"] if b.get("run_type") == "iteration")
    e["infeasible"] = "needs 16000 threads"
    r = load_report(str(write(tmp_path, "i.json", doc)))
    cell = r.cells[parse_cell_name(e["name"])]
    assert cell.infeasible == "needs 16000 threads"
    assert cell not in r.select(cell.key.scenario, cell.key.pattern)


def test_non_integer_fanout_is_rejected(sample, tmp_path):
    doc = copy.deepcopy(sample)
    next(b for b in doc["benchmarks"] if b.get("run_type") == "iteration")["fanout"] = "ten"
    with pytest.raises(ReportError, match="'fanout' and 'concurrency' must be integers"):
        load_report(str(write(tmp_path, "f.json", doc)))


def test_parse_cell_name():
    k = parse_cell_name("one-hangs/async-group+collect-all/fanout:10/concurrency:16/real_time")
    assert k == ("one-hangs", "async-group+collect-all", 10, 16)
    assert parse_cell_name("BM_Aggregate/mutex-vector/real_time/threads:8") is None


def test_pattern_matches_variants():
    assert pattern_matches("cancellable-group+collect-all", ["cancellable-group"])
    assert pattern_matches("async-group", ["async-group"])
    assert not pattern_matches("cancellable-groupie", ["cancellable-group"])
    assert not pattern_matches("channel-soup", ["cancellable-group"])


def test_micro_families_accept_both_spellings(tmp_path):
    runs = load_micro(MICRO)
    agg = micro_family(runs, "BM_Aggregate", dashes=True)
    assert agg and all("_" not in s for s in agg)
    assert all(isinstance(t, int) for d in agg.values() for t in d)
    doc = {"benchmarks": [{"name": "BM_Aggregate/slots_padded/threads:4", "run_type": "iteration",
                           "items_per_second": 5.0, "real_time": 1, "time_unit": "ns"}]}
    underscored = micro_family(load_micro(str(write(tmp_path, "u.json", doc))), "BM_Aggregate", dashes=True)
    assert underscored == {"slots-padded": {4: 5.0}}
    orch = micro_family(runs, "BM_Orchestrate", metric="time")
    assert orch and all(isinstance(f, int) for d in orch.values() for f in d)


def test_micro_with_only_aggregates_uses_means(tmp_path):
    doc = {"benchmarks": [
        {"name": "BM_Spawn/std-thread/real_time_mean", "run_name": "BM_Spawn/std-thread/real_time",
         "run_type": "aggregate", "aggregate_name": "mean", "real_time": 30.0, "time_unit": "us"},
        {"name": "BM_Spawn/std-thread/real_time_stddev", "run_name": "BM_Spawn/std-thread/real_time",
         "run_type": "aggregate", "aggregate_name": "stddev", "real_time": 3.0, "time_unit": "us"}]}
    runs = load_micro(str(write(tmp_path, "a.json", doc)))
    assert micro_family(runs, "BM_Spawn", metric="time") == {"std-thread": {None: 30000.0}}
