"""claims.py: the table and the verdicts follow from the data."""

import copy
import json
import shutil

import pytest

from conftest import MICRO, REPORT, feasible, first_feasible_cell, iteration_entries, run_cli, run_script, write

VERDICTS = {"supported", "refuted", "nuanced", "insufficient-data"}
CLAIM_IDS = ["soup-zombies", "soup-pools", "latch-leaks", "mutex-no-timeout", "mutex-gap",
             "group-no-orphans", "group-cancels", "group-20-lines", "slots-win", "semaphore",
             "async-no-thread"]


def claims_json(*args):
    r = run_script("claims.py", *args, "--format", "json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    return doc, {c["id"]: c for c in doc["claims"]}


@pytest.fixture(scope="module")
def sample_claims():
    return claims_json(REPORT, "--micro", MICRO)


def test_every_claim_gets_a_verdict_with_its_rule(sample_claims):
    doc, claims = sample_claims
    assert list(claims) == CLAIM_IDS
    for c in claims.values():
        assert c["verdict"] in VERDICTS
        assert c["rule"] and c["reason"]


def test_table_has_a_measured_row_per_pattern(sample_claims, sample):
    doc, _ = sample_claims
    patterns = {b["pattern"] for b in sample["benchmarks"] if "pattern" in b}
    assert {r["pattern"] for r in doc["table"]} == patterns
    for row in doc["table"]:
        for col in ("cancellation", "leak_risk", "error_propagation", "multicore_safe"):
            assert any(ch.isdigit() for ch in row[col]) or row[col].startswith("n/a"), row


def test_markdown_prints_rule_next_to_each_verdict():
    r = run_script("claims.py", REPORT, "--micro", MICRO)
    assert r.code == 0, r.err
    assert "| pattern | Cancellation | Leak risk | Error propagation | Multi-core safe |" in r.out
    assert r.out.count("*Rule:*") == len(CLAIM_IDS)
    assert r.out.count("*Verdict:*") == len(CLAIM_IDS)


def test_leaking_group_refutes_no_orphans(sample, tmp_path):
    doc = copy.deepcopy(sample)
    scenario, pattern, fanout, conc = first_feasible_cell(doc, pattern="cancellable-group")
    for b in iteration_entries(doc, scenario, pattern):
        if (b["fanout"], b["concurrency"]) == (fanout, conc) and feasible(b):
            b["leaked_tasks_at_return"] = 7
    _, claims = claims_json(write(tmp_path, "leak.json", doc))
    c = claims["group-no-orphans"]
    assert c["verdict"] == "refuted"
    assert any("leaked_tasks_at_return" in e and scenario in e for e in c["evidence"])
    # And the table's Leak risk column follows the same data.
    table = {r["pattern"]: r for r in claims_json(write(tmp_path, "leak.json", doc))[0]["table"]}
    assert table["cancellable-group"]["leak_risk"].startswith("**yes**")


def test_clean_groups_support_no_orphans(sample, tmp_path):
    doc = copy.deepcopy(sample)
    for b in iteration_entries(doc):
        if b.get("pattern") in ("cancellable-group", "bounded-group", "async-group"):
            for m in ("leaked_tasks_at_return", "leaked_tasks_end", "late_completions", "zombie_task_s"):
                if m in b:
                    b[m] = 0
    _, claims = claims_json(write(tmp_path, "clean.json", doc))
    assert claims["group-no-orphans"]["verdict"] == "supported"


def test_soup_without_zombie_work_is_refuted(sample, tmp_path):
    doc = copy.deepcopy(sample)
    hang = [b for b in iteration_entries(doc, "one-hangs", "channel-soup") if feasible(b)]
    if not hang:
        pytest.skip("no one-hangs cells for channel-soup in the sample")
    for b in hang:
        b.update(zombie_task_s=0, server_work_past_deadline_ms=0, leaked_tasks_at_return=0, timed_out=5)
    _, claims = claims_json(write(tmp_path, "nozombie.json", doc))
    assert claims["soup-zombies"]["verdict"] == "refuted"


def test_group_that_never_cancels_is_refuted(sample, tmp_path):
    doc = copy.deepcopy(sample)
    ff = [b for b in iteration_entries(doc, "fail-fast", "cancellable-group") if feasible(b)]
    if not ff:
        pytest.skip("no fail-fast cells for cancellable-group in the sample")
    for b in ff:
        b["server_client_aborts"] = 0
    _, claims = claims_json(write(tmp_path, "nocancel.json", doc))
    assert claims["group-cancels"]["verdict"] == "refuted"


def test_async_threads_growing_with_calls_is_refuted(sample, tmp_path):
    doc = copy.deepcopy(sample)
    cells = [b for b in iteration_entries(doc, pattern="async-group") if feasible(b)]
    if not cells:
        pytest.skip("no async-group cells in the sample")
    for b in cells:
        b["fanout"] = max(b["fanout"], 100)  # enough calls in flight for the rule to speak
        b["threads_peak"] = b["fanout"] * b["concurrency"] + 4
    _, claims = claims_json(write(tmp_path, "threads.json", doc))
    assert claims["async-no-thread"]["verdict"] == "refuted"


def test_missing_inputs_give_insufficient_data(sample, tmp_path):
    doc = copy.deepcopy(sample)
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b.get("scenario") == "healthy"]
    _, claims = claims_json(write(tmp_path, "healthy.json", doc), "--source", tmp_path)
    for cid in ("soup-zombies", "soup-pools", "latch-leaks", "mutex-no-timeout", "mutex-gap",
                "group-cancels", "group-20-lines", "slots-win", "semaphore"):
        assert claims[cid]["verdict"] == "insufficient-data", cid


def test_micro_rules_read_the_numbers(tmp_path):
    micro = json.load(open(MICRO, encoding="utf-8"))
    for b in micro["benchmarks"]:
        if b["name"].startswith("BM_Aggregate/mutex-vector/"):
            slots = max(x["items_per_second"] for x in micro["benchmarks"]
                        if x["name"].startswith("BM_Aggregate/slots-")
                        and x["name"].endswith("/" + b["name"].rsplit("/", 1)[1]))
            b["items_per_second"] = slots * 0.55  # a 45 % gap at every thread count
        if b["name"].startswith("BM_Aggregate/atomic-index/"):
            b["items_per_second"] = 1e12  # atomic index wins everywhere
    _, claims = claims_json(REPORT, "--micro", write(tmp_path, "micro.json", micro))
    assert claims["mutex-gap"]["verdict"] == "supported"
    assert claims["slots-win"]["verdict"] == "refuted"


def test_bad_input_exits_2(tmp_path):
    r = run_cli("claims.py", MICRO)
    assert r.code == 2 and r.err.startswith(f"claims.py: {MICRO}: not an orchlab report")
    r = run_cli("claims.py", REPORT, "--micro", tmp_path / "none.json")
    assert r.code == 2 and "cannot read" in r.err


def test_micro_next_to_the_report_is_used_unless_disabled(tmp_path):
    shutil.copy(REPORT, tmp_path / "report.json")
    shutil.copy(MICRO, tmp_path / "micro.json")
    _, found = claims_json(tmp_path / "report.json")
    assert found["mutex-gap"]["verdict"] != "insufficient-data"
    _, without = claims_json(tmp_path / "report.json", "--no-micro")
    assert without["mutex-gap"]["verdict"] == "insufficient-data"


def _slots_micro(packed_over_padded):
    """A micro where slots win everywhere; packed/padded per thread count as given."""
    micro = json.load(open(MICRO, encoding="utf-8"))
    for b in micro["benchmarks"]:
        name = b["name"]
        if not name.startswith("BM_Aggregate/") or "items_per_second" not in b:
            continue
        threads = int(name.rsplit("threads:", 1)[1].split("/")[0])
        if name.startswith("BM_Aggregate/slots-padded/"):
            b["items_per_second"] = 1e12
        elif name.startswith("BM_Aggregate/slots-packed/"):
            b["items_per_second"] = 1e12 * packed_over_padded.get(threads, 1.0)
        else:
            b["items_per_second"] = 1e6
    return micro


def test_one_thread_cannot_false_share(tmp_path):
    # Slots win everywhere and packed equals padded from two threads up; a
    # slower packed run at one thread is not false sharing.
    micro = _slots_micro({1: 0.5})
    _, claims = claims_json(REPORT, "--micro", write(tmp_path, "micro.json", micro))
    assert claims["slots-win"]["verdict"] == "supported", claims["slots-win"]


def test_async_groups_own_pool_is_shown_when_measured(sample, tmp_path):
    doc = copy.deepcopy(sample)
    cells = [b for b in iteration_entries(doc, "one-hangs", "async-group") if feasible(b)]
    if not cells:
        pytest.skip("no one-hangs cells for async-group in the sample")
    for b in cells:
        b.update(pool_exhausted=None, pool_wait_p99_us=None)
    _, claims = claims_json(write(tmp_path, "nopool.json", doc))
    assert not any("its own pool" in e for e in claims["soup-pools"]["evidence"])
    for b in cells:
        b.update(pool_exhausted=b["iterations"], pool_wait_p99_us=2500.0)
    _, claims = claims_json(write(tmp_path, "pool.json", doc))
    line = next(e for e in claims["soup-pools"]["evidence"] if "its own pool" in e)
    assert "pool exhausted per orchestration 1" in line and "2.5 ms" in line


def test_false_sharing_needs_more_than_one_noisy_thread_count(tmp_path):
    one_dip = _slots_micro({16: 0.85})
    _, claims = claims_json(REPORT, "--micro", write(tmp_path, "dip.json", one_dip))
    assert claims["slots-win"]["verdict"] == "supported", claims["slots-win"]
    assert any("worst 0.85 at 16 threads" in e for e in claims["slots-win"]["evidence"])
    shared = _slots_micro({2: 0.6, 4: 0.7, 8: 0.8, 16: 0.8, 32: 0.85, 64: 0.95})
    _, claims = claims_json(REPORT, "--micro", write(tmp_path, "shared.json", shared))
    assert claims["slots-win"]["verdict"] == "nuanced", claims["slots-win"]


def _error_propagation(doc_or_path):
    doc, _ = claims_json(doc_or_path)
    return {row["pattern"]: row["error_propagation"] for row in doc["table"]}


def test_error_propagation_is_judged_against_a_pattern_that_waits_for_all(sample, tmp_path):
    # The sample: channel-soup returns on the first error (p50 ~10 ms) while the
    # collect-all group waits for the ~50 ms siblings; latch-select waits too.
    cells = _error_propagation(REPORT)
    assert cells["channel-soup"].startswith("**returns early**"), cells["channel-soup"]
    assert cells["latch-select"].startswith("**waits for all**"), cells["latch-select"]
    assert cells["cancellable-group"].startswith("**cancels siblings**")
    # Slow channel-soup down to the siblings' time: now it waits for all.
    doc = copy.deepcopy(sample)
    for b in iteration_entries(doc, "fail-fast", "channel-soup"):
        b["p50_us"] = 50000.0
    assert _error_propagation(write(tmp_path, "slow.json", doc))["channel-soup"].startswith(
        "**waits for all**")
    # Without the reference pattern there is nothing to judge "early" against.
    doc = copy.deepcopy(sample)
    doc["benchmarks"] = [b for b in doc["benchmarks"] if not (
        b.get("scenario") == "fail-fast" and b.get("pattern") == "cancellable-group+collect-all")]
    assert _error_propagation(write(tmp_path, "noref.json", doc))["channel-soup"].startswith(
        "insufficient data")
    # Client aborts not measured (null) is no data, not "0 aborts".
    doc = copy.deepcopy(sample)
    for b in iteration_entries(doc, "fail-fast", "cancellable-group"):
        b["server_client_aborts"] = None
    assert _error_propagation(write(tmp_path, "null.json", doc))["cancellable-group"].startswith(
        "insufficient data")
