"""Services without orchlab's /__stats: every server_* field is null. The scripts read that
as unknown (no verdict from it), never as 0, and do not fail on it."""

import copy
import json

import pytest

from conftest import iteration_entries, run_cli, run_script, write
SERVER_FIELDS = ["server_client_aborts", "server_work_past_deadline_ms", "server_abort_lag_p99_ms",
                 "server_requests", "server_completed_after_deadline", "server_max_in_flight"]


@pytest.fixture()
def nulled(sample, tmp_path):
    """The sample report as if its services had no /__stats."""
    doc = copy.deepcopy(sample)
    for b in doc["benchmarks"]:
        for field in SERVER_FIELDS:
            if field in b:
                b[field] = None
    doc.setdefault("lab", {}).setdefault("notes", []).append(
        "server_* fields are null where service http://127.0.0.1:1/x did not report /__stats (HTTP 404)")
    return doc, write(tmp_path, "nulled.json", doc)


def test_claims_give_no_verdict_from_unknown_aborts(nulled):
    doc, path = nulled
    r = run_script("claims.py", path, "--format", "json")
    assert r.code == 0, r.err
    verdicts = {c["id"]: c for c in json.loads(r.out)["claims"]}
    checked = 0
    for cid, scenario, pattern in (("group-cancels", "claim-fail-fast", "cancellable-group"),
                                   ("latch-leaks", "claim-fail-fast", "latch-select")):
        if iteration_entries(doc, scenario=scenario, pattern=pattern):
            assert verdicts[cid]["verdict"] == "not testable here", verdicts[cid]
            assert "server_client_aborts is null" in verdicts[cid]["reason"], verdicts[cid]
            assert "did not report /__stats" in verdicts[cid]["reason"], verdicts[cid]
            checked += 1
    if not checked:
        pytest.skip("the sample report has no claim-fail-fast cells")
    md = run_script("claims.py", path)
    assert md.code == 0, md.err
    assert "client aborts 0" not in md.out, "unknown aborts read as none"


def test_plot_and_compare_run(nulled, tmp_path):
    _, path = nulled
    r = run_cli("plot.py", path, "-o", tmp_path / "plots")
    assert r.code == 0, r.err
    r = run_cli("compare.py", path, path)
    assert r.code in (0, 3), r.err  # 3: too few repetitions to decide
