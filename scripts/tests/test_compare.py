"""compare.py: verdicts, noise, Holm, intervals, invariants, formats and exit codes.

The crafted reports start from the sample (scripts/tests/inputs/report.json, 1-2
repetitions per cell): with_reps() turns every cell into n repetitions (the first one,
copied, with its throughput and latency spread by about 1 %), and the tests then plant a
change, drop a cell or null a field.
"""

import copy
import json
import random

import pytest

from conftest import (MICRO, REPORT, feasible, first_feasible_cell, iteration_entries, run_cli,
                      run_script, set_cell, write)

BASE = [1000.0, 1010.0, 990.0, 1005.0, 995.0]
JITTER = [1.0, 1.01, 0.99, 1.005, 0.995, 1.002, 0.998, 1.008]
SPREAD = ("items_per_second", "real_time", "p50_us", "p99_us")


def cell_key(b):
    return (b.get("scenario"), b.get("pattern"), b.get("fanout"), b.get("concurrency"))


def with_reps(sample, n=5):
    """The sample with every cell measured n times (grouped per cell, aggregates dropped)."""
    doc = copy.deepcopy(sample)
    first = {}
    for b in iteration_entries(doc):
        first.setdefault(cell_key(b), b)
    out = []
    for template in first.values():
        for i in range(n):
            e = copy.deepcopy(template)
            e["repetition_index"], e["repetitions"] = i, n
            if feasible(e):
                for m in SPREAD:
                    if isinstance(e.get(m), (int, float)) and e[m]:
                        e[m] = e[m] * JITTER[i % len(JITTER)]
            out.append(e)
    doc["benchmarks"] = out
    return doc


@pytest.fixture(scope="module")
def five(sample):
    """The sample with 5 repetitions per cell (copy before editing)."""
    return with_reps(sample, 5)


def scale_cell(doc, cell, metric, factor):
    """Multiply one metric in every repetition of one cell."""
    for b in iteration_entries(doc, cell[0], cell[1]):
        if cell_key(b) == cell and isinstance(b.get(metric), (int, float)):
            b[metric] = b[metric] * factor
    return doc


def cell_name(cell):
    return f"{cell[0]}/{cell[1]}/fanout:{cell[2]}/concurrency:{cell[3]}"


def planted_pair(sample, tmp_path, new_values, metric="items_per_second", old_values=BASE):
    """OLD and NEW reports that differ only in one metric of one cell (len(values) repetitions
    there; the other cells keep the repetitions of `sample`)."""
    cell = first_feasible_cell(sample)
    old = set_cell(copy.deepcopy(sample), cell, {metric: old_values})
    new = set_cell(copy.deepcopy(sample), cell, {metric: new_values})
    return write(tmp_path, "old.json", old), write(tmp_path, "new.json", new), cell


def rows(result, metric, cell=None):
    return [m for c in result["cells"] for m in c["metrics"]
            if m["metric"] == metric and (cell is None or c["cell"] == cell_name(cell))]


def compare_json(*args):
    r = run_script("compare.py", *args, "--format", "json")
    return r, json.loads(r.out)


# --- the exit codes -----------------------------------------------------------------------

def test_identical_reports_with_5_repetitions_exit_0(five, tmp_path):
    path = write(tmp_path, "five.json", five)
    r = run_script("compare.py", path, path)
    assert r.code == 0, r.out + r.err
    assert "No change in performance beyond noise detected: exit 0." in r.out
    assert r.err == ""
    res = json.loads(run_script("compare.py", path, path, "--format", "json").out)
    assert res["counts"]["undecidable"] == 0 and res["counts"]["regressed"] == 0
    assert all(m["p"] == 1.0 for m in rows(res, "items_per_second"))


def test_planted_3x_regression_with_5_repetitions_exit_1(five, tmp_path):
    cell = first_feasible_cell(five)
    new = scale_cell(copy.deepcopy(five), cell, "items_per_second", 1 / 3)
    old_path, new_path = write(tmp_path, "old.json", five), write(tmp_path, "new.json", new)
    r, res = compare_json(old_path, new_path)
    assert r.code == 1, r.out + r.err
    (row,) = rows(res, "items_per_second", cell)
    assert row["verdict"] == "regressed" and row["worse"] and row["primary"]
    assert row["method"] == "exact"
    assert row["p"] == pytest.approx(2 / 252)  # complete separation, 5 vs 5
    assert row["p_holm"] == pytest.approx(2 * 2 / 252)  # p99 untouched (p = 1): Holm doubles the smaller
    assert row["change"] == pytest.approx(-2 / 3)
    assert row["change_low"] < row["change"] < row["change_high"] < -row["noise"]
    assert row["confidence"] == pytest.approx(1 - 2 * 4 / 252)  # R: 96.8 % at 5 vs 5
    assert res["counts"]["regressed"] == 1 and res["regressed"] == 1
    assert res["summary"] == "Performance has regressed in 1 cell: exit 1."
    # The short text output names it with its interval, criterion style.
    text = run_script("compare.py", old_path, new_path).out
    line = next(x for x in text.splitlines() if "items_per_second" in x and cell_name(cell) in x)
    assert "[-6" in line and "-66.7%" in line and "regressed" in line


def test_p99_regression_counts_upwards(five, tmp_path):
    cell = first_feasible_cell(five)
    new = scale_cell(copy.deepcopy(five), cell, "p99_us", 3)
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert r.code == 1
    (row,) = rows(res, "p99_us", cell)
    assert row["verdict"] == "regressed" and row["change"] == pytest.approx(2.0)


def test_improvement_exits_0(five, tmp_path):
    cell = first_feasible_cell(five)
    new = scale_cell(copy.deepcopy(five), cell, "items_per_second", 1.5)
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert r.code == 0
    assert rows(res, "items_per_second", cell)[0]["verdict"] == "improved"
    assert res["summary"].startswith("Performance has improved in 1 cell")


def test_unreadable_input_exits_2(tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_text(open(REPORT, encoding="utf-8").read()[:1000], encoding="utf-8")
    r = run_cli("compare.py", REPORT, cut)
    assert r.code == 2 and r.out == ""
    assert r.err.startswith(f"compare.py: {cut}: not valid JSON")


def test_two_repetitions_are_inconclusive_exit_3(sample, tmp_path):
    # A 3x drop over 2 repetitions: no test can go below p = 1/3.
    two = with_reps(sample, 2)
    cell = first_feasible_cell(two)
    new = scale_cell(copy.deepcopy(two), cell, "items_per_second", 1 / 3)
    r = run_script("compare.py", write(tmp_path, "o.json", two), write(tmp_path, "n.json", new))
    assert r.code == 3, r.out + r.err
    last = r.out.strip().splitlines()[-1]
    assert last.startswith("Inconclusive: no test could reach significance with n = 2 vs 2")
    assert "0.3333" in last and last.endswith("exit 3.")
    assert "warning" in r.err and "0.3333" in r.err


def test_too_few_repetitions_in_some_cells_are_inconclusive(five, tmp_path):
    # Identical, but a cell measured twice cannot show a change: no "no change" for it.
    cell = first_feasible_cell(five)
    doc = copy.deepcopy(five)
    doc["benchmarks"] = [b for b in doc["benchmarks"] if cell_key(b) != cell or b["repetition_index"] < 2]
    path = write(tmp_path, "mixed.json", doc)
    r, res = compare_json(path, path)
    assert r.code == 3 and res["counts"]["undecidable"] == 1
    assert res["summary"].startswith(f"Inconclusive: 1 of {len(res['cells'])} cells could not reach significance")


def test_vanished_cell_is_inconclusive_exit_3(five, tmp_path):
    cell = first_feasible_cell(five)
    less = copy.deepcopy(five)
    less["benchmarks"] = [b for b in less["benchmarks"] if cell_key(b) != cell]
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", less))
    assert r.code == 3
    assert res["only_old"] == [cell_name(cell)] and res["only_new"] == []
    assert "1 cell vanished" in res["summary"]
    # A new cell on the other hand is listed, not inconclusive.
    r, res = compare_json(write(tmp_path, "o2.json", less), write(tmp_path, "n2.json", five))
    assert r.code == 0 and res["only_new"] == [cell_name(cell)]


def test_cell_turned_infeasible_is_inconclusive_exit_3(five, tmp_path):
    cell = first_feasible_cell(five)
    new = copy.deepcopy(five)
    for b in new["benchmarks"]:
        if cell_key(b) == cell:
            b["infeasible"] = "needs more threads than the host allows"
            b["items_per_second"] = b["p99_us"] = None
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert r.code == 3
    assert [i["cell"] for i in res["turned_infeasible"]] == [cell_name(cell)]
    assert "1 cell turned infeasible" in res["summary"]


def test_regression_outranks_inconclusive(five, tmp_path):
    cells = [cell_key(b) for b in iteration_entries(five) if feasible(b)]
    regress, drop = cells[0], next(c for c in cells if c != cells[0])
    new = scale_cell(copy.deepcopy(five), regress, "items_per_second", 1 / 3)
    new["benchmarks"] = [b for b in new["benchmarks"] if cell_key(b) != drop]
    r = run_script("compare.py", write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert r.code == 1


# --- noise, Holm, intervals ------------------------------------------------------------

def test_change_below_noise_is_not_a_regression(five, tmp_path):
    # Significant (every value moved) but only 3 %: inside the 5 % noise floor.
    old, new, cell = planted_pair(five, tmp_path, [v * 0.97 for v in BASE])
    r, res = compare_json(old, new)
    (row,) = rows(res, "items_per_second", cell)
    assert row["p_holm"] < 0.05 and row["verdict"] == "within noise"
    assert r.code == 0 and res["regressed"] == 0
    # A lower floor turns the same data into a regression: the interval lies beyond 1 %.
    r, res = compare_json(old, new, "--noise", "1")
    assert r.code == 1
    assert rows(res, "items_per_second", cell)[0]["verdict"] == "regressed"


def test_noise_threshold_follows_the_measured_spread(five, tmp_path):
    # p99 spread by ~16 % over repetitions; the new values are all higher (p = 0.0079) and
    # the interval lies beyond 5 %, but not beyond the pooled CV: no verdict.
    old, new, cell = planted_pair(five, tmp_path, [125, 126, 127, 128, 129], metric="p99_us",
                                  old_values=[80, 90, 100, 110, 120])
    r, res = compare_json(old, new)
    (row,) = rows(res, "p99_us", cell)
    assert row["p"] == pytest.approx(2 / 252)
    assert 0.05 < row["change_low"] < row["noise"]
    assert row["noise"] == pytest.approx(row["cv"]) and row["cv"] > 0.1
    assert row["verdict"] == "within noise" and r.code == 0
    text = run_script("compare.py", old, new).out
    assert "p99_us" not in text.split("changed beyond noise")[1].split("\n\n")[0]


def test_holm_adjusts_over_the_primary_metrics_of_a_cell(five, tmp_path):
    cell = first_feasible_cell(five)
    new = scale_cell(copy.deepcopy(five), cell, "items_per_second", 0.5)
    new = scale_cell(new, cell, "p99_us", 2.0)
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert r.code == 1
    (ips,), (p99,) = rows(res, "items_per_second", cell), rows(res, "p99_us", cell)
    assert ips["p"] == p99["p"] == pytest.approx(2 / 252)
    assert ips["p_holm"] == p99["p_holm"] == pytest.approx(4 / 252)
    assert res["counts"]["regressed"] == 1  # one cell, two metrics
    # A stricter alpha that Holm's 4/252 does not meet: 2/252 would pass alone, not in a
    # family of two, and no cell can decide at 5 repetitions any more.
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new), "--alpha", "0.012")
    assert rows(res, "items_per_second", cell)[0]["verdict"] == "not significant"
    assert r.code == 3 and "needs < 0.006" in res["summary"]


def test_secondary_metrics_never_decide(five, tmp_path):
    cell = first_feasible_cell(five)
    new = scale_cell(copy.deepcopy(five), cell, "rss_peak_kb", 3)
    # rss is a copy in each repetition: ties everywhere, the exact conditional test handles it.
    old_path, new_path = write(tmp_path, "o.json", five), write(tmp_path, "n.json", new)
    r, res = compare_json(old_path, new_path)
    (row,) = rows(res, "rss_peak_kb", cell)
    assert not row["primary"] and row["p_holm"] is None
    assert row["p"] == pytest.approx(2 / 252) and row["verdict"] == "regressed"
    assert r.code == 0 and res["counts"]["secondary_changes"] == 1
    text = run_script("compare.py", old_path, new_path).out
    assert "secondary metrics changed beyond noise: 1" in text
    # Made primary, it decides.
    assert run_script("compare.py", old_path, new_path, "--primary", "rss_peak_kb").code == 1


def test_change_from_zero_is_infinite_with_an_absolute_interval(five, tmp_path):
    old, new, cell = planted_pair(five, tmp_path, [3, 4, 5, 6, 7], metric="lock_contended",
                                  old_values=[0, 0, 0, 0, 0])
    r, res = compare_json(old, new, "--primary", "lock_contended", "--all")
    (row,) = rows(res, "lock_contended", cell)
    assert row["change"] == "inf" and row["scale"] == "difference"
    assert row["shift"] == 5 and row["shift_low"] > 0
    assert row["verdict"] == "regressed" and r.code == 1
    text = run_script("compare.py", old, new, "--primary", "lock_contended").out
    assert "(old 0)" in text


def test_single_repetition_has_no_p_value(sample, tmp_path):
    old, new, cell = planted_pair(sample, tmp_path, [500.0], old_values=[1000.0])
    _, res = compare_json(old, new)
    (row,) = rows(res, "items_per_second", cell)
    assert row["p"] is None and row["verdict"] == "n/a"


# --- null is missing, never 0 --------------------------------------------------------------

def test_null_percentiles_and_server_fields_are_missing_not_zero(five, tmp_path):
    cell = first_feasible_cell(five)
    new = copy.deepcopy(five)
    for b in new["benchmarks"]:
        if cell_key(b) == cell:
            b["p99_us"] = None  # too few samples for a p99
            b["latency_samples"] = 40
            b["server_client_aborts"] = None
    # A null must not read as 0: as 0 it would be a huge p99 "improvement".
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert r.code == 0, r.out
    assert rows(res, "p99_us", cell) == []
    (c,) = [c for c in res["cells"] if c["cell"] == cell_name(cell)]
    assert {"metric": "p99_us", "missing_in": "new"} in c["missing"]
    assert rows(res, "items_per_second", cell)[0]["p"] == 1.0
    text = run_script("compare.py", write(tmp_path, "o.json", five), write(tmp_path, "n.json", new), "--all").out
    assert "p99_us: no value in new (null: not measured)" in text


def test_some_null_repetitions_shrink_n(five, tmp_path):
    cell = first_feasible_cell(five)
    new = copy.deepcopy(five)
    reps = [b for b in new["benchmarks"] if cell_key(b) == cell]
    reps[0]["p99_us"] = reps[1]["p99_us"] = None
    _, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    (row,) = rows(res, "p99_us", cell)
    assert (row["n_old"], row["n_new"]) == (5, 3)


def test_null_invariant_is_not_broken(five, tmp_path):
    new = copy.deepcopy(five)
    for b in iteration_entries(new, pattern="cancellable-group"):
        b["leaked_tasks_at_return"] = None
    r, res = compare_json(write(tmp_path, "o.json", five), write(tmp_path, "n.json", new))
    assert res["broken_invariants"] == [] and r.code == 0


def test_interleaved_repetitions_read_the_same(five, tmp_path):
    cell = first_feasible_cell(five)
    new = scale_cell(copy.deepcopy(five), cell, "items_per_second", 1 / 3)
    shuffled = copy.deepcopy(new)
    random.Random(3).shuffle(shuffled["benchmarks"])
    old_path = write(tmp_path, "o.json", five)
    a = compare_json(old_path, write(tmp_path, "n.json", new))[1]
    b = compare_json(old_path, write(tmp_path, "s.json", shuffled))[1]
    assert a["exit"] == b["exit"] == 1
    assert rows(a, "items_per_second", cell) == rows(b, "items_per_second", cell)


# --- invariants, pairs, formats, bad input -------------------------------------------------

def test_broken_invariant_is_flagged(sample, tmp_path):
    doc = copy.deepcopy(sample)
    cell = first_feasible_cell(doc, pattern="cancellable-group")
    for b in iteration_entries(doc, cell[0], cell[1]):
        if (b["fanout"], b["concurrency"]) == cell[2:] and feasible(b):
            b["leaked_tasks_at_return"] = 3
    bad = write(tmp_path, "bad.json", doc)
    r = run_script("compare.py", REPORT, bad)
    assert r.code == 1  # even though nothing else could be decided
    assert "BROKEN INVARIANT" in r.out and "leaked_tasks_at_return" in r.out
    res = json.loads(run_script("compare.py", REPORT, bad, "--format", "json").out)
    assert any(b["metric"] == "leaked_tasks_at_return" and "cancellable-group" in b["cell"]
               for b in res["broken_invariants"])
    assert "must-be-zero invariant broken" in res["summary"]


def test_invariant_metadata_comes_from_the_report(sample, tmp_path):
    # A report that declares no invariant for a metric is not held to the default one.
    doc = copy.deepcopy(sample)
    cell = first_feasible_cell(doc, pattern="cancellable-group")
    for b in iteration_entries(doc, cell[0], cell[1]):
        b["late_completions"] = 1
    doc.setdefault("lab", {}).setdefault("metrics", {})["late_completions"] = {
        "unit": "calls", "better": "lower", "must_be_zero_for": []}
    r = run_script("compare.py", REPORT, write(tmp_path, "r.json", doc), "--format", "json")
    assert not any(b["metric"] == "late_completions" for b in json.loads(r.out)["broken_invariants"])


def test_pair_mode_compares_patterns_within_a_report(five, tmp_path):
    path = write(tmp_path, "five.json", five)
    r, res = compare_json(path, "--pair", "channel-soup:cancellable-group")
    assert r.code == res["exit"]
    assert res["pair"] == ["channel-soup", "cancellable-group"]
    assert res["cells"] and all("/fanout:" in c["cell"] for c in res["cells"])
    assert res["counts"]["vanished"] == 0  # a cell one pattern lacks is not a vanished cell


def test_pair_mode_rejects_unknown_pattern():
    r = run_cli("compare.py", REPORT, "--pair", "channel-soup:no-such-pattern")
    assert r.code == 2 and r.err.startswith("compare.py: ") and "no-such-pattern" in r.err


def test_short_output_by_default_full_table_with_all(five, tmp_path):
    path = write(tmp_path, "five.json", five)
    short = run_script("compare.py", path, path)
    assert len(short.out.splitlines()) < 15
    assert "rss_peak_kb" not in short.out and "changed beyond noise" in short.out
    full = run_script("compare.py", path, path, "--all")
    assert full.code == 0
    assert "metric" in full.out and "rss_peak_kb" in full.out
    # Never a change it cannot defend: nothing changed, so every change cell is "~".
    table = [line.split() for line in full.out.splitlines() if "(n 5)" in line]
    assert table and all("~" in cols for cols in table)


def test_markdown_and_text_formats(five, tmp_path):
    path = write(tmp_path, "five.json", five)
    md = run_script("compare.py", path, path, "--format", "md", "--all")
    assert md.code == 0 and "| metric | unit | old | new | change | p | noise | verdict |" in md.out
    assert "**No change in performance beyond noise detected: exit 0.**" in md.out
    text = run_script("compare.py", path, path, "--metrics", "items_per_second,p99_us", "--all")
    assert text.code == 0 and "p99_us" in text.out and "rss_peak_kb" not in text.out


def test_json_rows_carry_the_evidence(five, tmp_path):
    path = write(tmp_path, "five.json", five)
    _, res = compare_json(path, path)
    row = rows(res, "items_per_second")[0]
    for key in ("metric", "unit", "better", "primary", "old", "new", "n_old", "n_new", "change",
                "change_low", "change_high", "confidence", "p", "p_min", "p_holm", "noise", "cv",
                "verdict", "worse"):
        assert key in row
    assert res["primary"] == ["items_per_second", "p99_us"]
    assert res["exit"] == 0 and res["inconclusive"] == []


def test_plain_google_benchmark_file_is_rejected():
    r = run_cli("compare.py", MICRO, REPORT)
    assert r.code == 2
    assert r.err.startswith(f"compare.py: {MICRO}: not an orchlab report")


def test_wrong_types_and_missing_files_are_rejected(sample, tmp_path):
    doc = copy.deepcopy(sample)
    next(b for b in iteration_entries(doc) if feasible(b))["p99_us"] = "fast"
    r = run_script("compare.py", REPORT, write(tmp_path, "t.json", doc))
    assert r.code == 2 and "'p99_us' is not a number" in r.err
    r = run_script("compare.py", REPORT, tmp_path / "missing.json")
    assert r.code == 2 and "cannot read" in r.err
    r = run_script("compare.py", REPORT, write(tmp_path, "list.json", [1, 2]))
    assert r.code == 2 and "top level is not a JSON object" in r.err
    r = run_script("compare.py", REPORT)
    assert r.code == 2
    r = run_script("compare.py", REPORT, REPORT, "--primary", "no_such_metric")
    assert r.code == 2 and "--primary" in r.err
