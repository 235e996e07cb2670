"""compare.py: verdicts, invariants, formats and exit codes."""

import copy
import json

from conftest import (MICRO, REPORT, feasible, first_feasible_cell, iteration_entries, run_cli,
                      run_script, set_cell, write)

BASE = [1000.0, 1010.0, 990.0, 1005.0, 995.0]


def planted_pair(sample, tmp_path, new_values, metric="items_per_second", old_values=BASE):
    """OLD and NEW reports that differ only in one metric of one cell (5 repetitions each)."""
    cell = first_feasible_cell(sample)
    old = set_cell(copy.deepcopy(sample), cell, {metric: old_values})
    new = set_cell(copy.deepcopy(sample), cell, {metric: new_values})
    return write(tmp_path, "old.json", old), write(tmp_path, "new.json", new), cell


def rows(result, metric):
    return [m for c in result["cells"] for m in c["metrics"] if m["metric"] == metric]


def test_identical_reports_pass(tmp_path):
    r = run_script("compare.py", REPORT, REPORT)
    assert r.code == 0, r.out + r.err
    assert "0 regressed" in r.out


def test_planted_throughput_regression_fails(sample, tmp_path):
    old, new, cell = planted_pair(sample, tmp_path, [v * 0.7 for v in BASE])
    r = run_cli("compare.py", old, new, "--format", "json")
    assert r.code == 1, r.out + r.err
    res = json.loads(r.out)
    (row,) = [m for c in res["cells"] if c["cell"].startswith(f"{cell[0]}/{cell[1]}/")
              and c["cell"].endswith(f"fanout:{cell[2]}/concurrency:{cell[3]}") for m in c["metrics"]
              if m["metric"] == "items_per_second"]
    assert row["verdict"] == "regressed"
    assert row["change"] == -0.3 or abs(row["change"] + 0.3) < 1e-9
    assert row["p"] < 0.05
    assert res["regressed"] == 1


def test_planted_improvement_passes(sample, tmp_path):
    old, new, _ = planted_pair(sample, tmp_path, [v * 1.5 for v in BASE])
    r = run_script("compare.py", old, new, "--format", "json")
    assert r.code == 0, r.out
    assert "improved" in [m["verdict"] for m in rows(json.loads(r.out), "items_per_second")]


def test_lower_is_better_metrics_regress_upwards(sample, tmp_path):
    old, new, _ = planted_pair(sample, tmp_path, [v * 2 for v in BASE], metric="p99_us")
    r = run_script("compare.py", old, new, "--format", "json")
    assert r.code == 1
    assert "regressed" in [m["verdict"] for m in rows(json.loads(r.out), "p99_us")]


def test_change_below_noise_gets_no_verdict(sample, tmp_path):
    # Significant (every value moved) but only 3 %: below the 5 % noise floor.
    old, new, _ = planted_pair(sample, tmp_path, [v * 0.97 for v in BASE])
    r = run_script("compare.py", old, new, "--format", "json")
    assert r.code == 0
    planted = [m for m in rows(json.loads(r.out), "items_per_second") if m["n_old"] == len(BASE)]
    assert planted and all(m["verdict"] == "not significant" for m in planted)
    # A lower noise floor turns the same data into a regression.
    assert run_script("compare.py", old, new, "--noise", "1").code == 1


def test_few_repetitions_warn_and_give_no_verdict(sample, tmp_path):
    old, new, _ = planted_pair(sample, tmp_path, [500.0, 505.0], old_values=[1000.0, 1010.0])
    r = run_script("compare.py", old, new, "--format", "json")
    assert r.code == 0
    assert "warning" in r.err and "repetitions" in r.err
    planted = [m for m in rows(json.loads(r.out), "items_per_second") if m["n_old"] == 2]
    assert planted and all(m["verdict"] == "not significant" for m in planted)  # p >= 1/3 with 2 vs 2


def test_single_repetition_has_no_p_value(sample, tmp_path):
    old, new, _ = planted_pair(sample, tmp_path, [500.0], old_values=[1000.0])
    res = json.loads(run_script("compare.py", old, new, "--format", "json").out)
    planted = [m for m in rows(res, "items_per_second") if m["n_old"] == 1]
    assert planted and planted[0]["p"] is None and planted[0]["verdict"] == "n/a"


def test_broken_invariant_is_flagged(sample, tmp_path):
    doc = copy.deepcopy(sample)
    cell = first_feasible_cell(doc, pattern="cancellable-group")
    for b in iteration_entries(doc, cell[0], cell[1]):
        if (b["fanout"], b["concurrency"]) == cell[2:] and feasible(b):
            b["leaked_tasks_at_return"] = 3
    bad = write(tmp_path, "bad.json", doc)
    r = run_script("compare.py", REPORT, bad)
    assert r.code == 1
    assert "BROKEN INVARIANT" in r.out and "leaked_tasks_at_return" in r.out
    res = json.loads(run_script("compare.py", REPORT, bad, "--format", "json").out)
    assert any(b["metric"] == "leaked_tasks_at_return" and "cancellable-group" in b["cell"]
               for b in res["broken_invariants"])


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


def test_cells_on_one_side_are_listed(sample, tmp_path):
    doc = copy.deepcopy(sample)
    scenario, pattern, fanout, conc = first_feasible_cell(doc)
    doc["benchmarks"] = [b for b in doc["benchmarks"] if not (
        b.get("scenario") == scenario and b.get("pattern") == pattern and b.get("fanout") == fanout
        and b.get("concurrency") == conc)]
    r = run_script("compare.py", REPORT, write(tmp_path, "less.json", doc), "--format", "json")
    assert r.code == 0
    res = json.loads(r.out)
    assert f"{scenario}/{pattern}/fanout:{fanout}/concurrency:{conc}" in res["only_old"]
    assert res["only_new"] == []


def test_pair_mode_compares_patterns_within_a_report():
    r = run_script("compare.py", REPORT, "--pair", "channel-soup:cancellable-group", "--format", "json")
    res = json.loads(r.out)
    assert r.code == res["exit"] == (1 if res["regressed"] or res["broken_invariants"] else 0)
    assert res["pair"] == ["channel-soup", "cancellable-group"]
    assert res["cells"] and all("/fanout:" in c["cell"] for c in res["cells"])


def test_pair_mode_rejects_unknown_pattern():
    r = run_cli("compare.py", REPORT, "--pair", "channel-soup:no-such-pattern")
    assert r.code == 2 and r.err.startswith("compare.py: ") and "no-such-pattern" in r.err


def test_markdown_and_text_formats():
    md = run_script("compare.py", REPORT, REPORT, "--format", "md")
    assert md.code == 0 and "| metric | unit | old | new | change | p | verdict |" in md.out
    text = run_script("compare.py", REPORT, REPORT, "--metrics", "items_per_second,p99_us")
    assert text.code == 0 and "p99_us" in text.out and "rss_peak_kb" not in text.out


def test_truncated_json_is_rejected(tmp_path):
    data = open(REPORT, encoding="utf-8").read()
    cut = tmp_path / "cut.json"
    cut.write_text(data[: len(data) // 2], encoding="utf-8")
    r = run_cli("compare.py", REPORT, cut)
    assert r.code == 2
    assert r.err.startswith(f"compare.py: {cut}: not valid JSON")
    assert r.out == ""


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


def test_change_from_zero_is_infinite_and_still_judged(sample, tmp_path):
    old, new, _ = planted_pair(sample, tmp_path, [3, 4, 5, 6, 7], metric="lock_contended",
                               old_values=[0, 0, 0, 0, 0])
    r = run_script("compare.py", old, new, "--format", "json")
    assert r.code == 1
    (row,) = [m for m in rows(json.loads(r.out), "lock_contended") if m["n_old"] == 5 and m["old"] == 0]
    assert row["change"] == "inf" and row["verdict"] == "regressed"
