"""Claims per runtime (issue 25): crafted reports where the runtimes agree and disagree, a
runtime without its experiment, and a report from before `runtime` existed."""

import copy
import json

import pytest

from conftest import REPORT, run_script, write
from gocells import add_go_twins

from orchlab_py import claimkit

with open(claimkit.__file__.replace("scripts/orchlab_py/claimkit.py", "scenarios/claims/article.claims.json"),
          encoding="utf-8") as _f:
    # claims whose Go column reads go_micro.json (BM_Aggregate's testing.B twin)
    GO_MICRO_CLAIMS = {c["id"] for c in json.load(_f)["claims"] if (c.get("runtimes") or {}).get("go", {}).get("micro")}

# claims whose experiment the sample report predates (test_claim_ignores_context.py crafts it)
SAMPLE_LACKS = {"ignores-context"}


@pytest.fixture(scope="module")
def before():
    """claims.py on the sample as it is (no runtime field, no Go cell)."""
    r = run_script("claims.py", REPORT, "--no-micro", "--format", "json")
    assert r.code == 0, r.err
    return json.loads(r.out)


@pytest.fixture(scope="module")
def go_doc(sample):
    return add_go_twins(copy.deepcopy(sample))


def _claims(tmp_path, doc, fmt="json"):
    r = run_script("claims.py", write(tmp_path, "r.json", doc), "--no-micro", "--format", fmt)
    assert r.code == 0, r.err
    return json.loads(r.out) if fmt == "json" else r.out


def _by_runtime(claim):
    out = {}
    for rv in claim["runtimes"]:
        out.setdefault(rv["runtime"], []).append(rv)
    return out


def test_an_old_report_keeps_its_cpp_verdicts_and_says_go_was_not_run(before, tmp_path, sample):
    doc = copy.deepcopy(sample)
    for b in doc["benchmarks"]:
        b.pop("runtime", None)
    legacy = {c["id"]: c["verdict"] for c in before["claims"]}
    for c in before["claims"]:
        rts = _by_runtime(c)
        if c["id"] in SAMPLE_LACKS:
            # the sample predates its experiment: every runtime says which cell is missing
            assert all(rv["status"] == "not run" and "no feasible `claim-" in rv["reason"]
                       for rvs in rts.values() for rv in rvs), rts
            continue
        if all(rv["status"] == "not run" for rt in ("cpp-thread", "cpp-asio") for rv in rts.get(rt, [])):
            # a claim about the Go runtime itself (a demonstration): no demos.json beside the sample
            assert [rv["verdict"] for rv in rts["go"]] == ["not testable here"]
            assert "needs demos.json" in rts["go"][0]["reason"]
            continue
        cpp = [rv for rt in ("cpp-thread", "cpp-asio") for rv in rts.get(rt, []) if rv["status"] == "evaluated"]
        assert cpp and cpp[0]["verdict"] == legacy[c["id"]]
        if c["id"] in GO_MICRO_CLAIMS:
            # read from go_micro.json, not from the report: evaluated, and no go_micro.json here
            (go,) = rts["go"]
            assert go["status"] == "evaluated" and go["verdict"] == "not testable here"
            assert "go_micro.json" in go["tests"][0]["reason"]
            continue
        assert all(rv["status"] == "not run" and rv["reason"] for rv in rts["go"]), rts["go"]
    assert before["disagreements"] == []


def test_old_verdicts_are_the_single_runtime_engines(before, tmp_path):
    # The verdict shown first is what evaluate_claim gives for the claim as written.
    from orchlab_py.report import load_report
    claims = json.load(open(claimkit.__file__.replace("scripts/orchlab_py/claimkit.py",
                                                      "scenarios/claims/article.claims.json")))["claims"]
    inputs = claimkit.Inputs(load_report(REPORT), None, None)
    for c, got in zip(claims, before["claims"]):
        if c["id"] in ("group-20-lines",):
            continue
        assert claimkit.evaluate_claim(c, inputs).verdict == got["verdict"], c["id"]


def test_go_twins_agree_with_their_counterparts(tmp_path, go_doc):
    doc = _claims(tmp_path, go_doc)
    for c in doc["claims"]:
        rts = _by_runtime(c)
        go = [rv for rv in rts.get("go", []) if rv["status"] == "evaluated"]
        cpp = next((rv for rt in ("cpp-thread", "cpp-asio") for rv in rts.get(rt, [])
                    if rv["status"] == "evaluated"), None)
        if c["id"] in ("soup-zombies", "latch-leaks", "mutex-no-timeout"):
            assert go and go[0]["verdict"] == cpp["verdict"], (c["id"], go, cpp)
            # the same rule, on the Go exhibits
            assert [(t["threshold"], t["direction"], t["method"]) for t in go[0]["tests"]] == \
                [(t["threshold"], t["direction"], t["method"]) for t in cpp["tests"]]
            assert any("go-" in t["label"] for t in go[0]["tests"])
    assert doc["runtimes"] == ["cpp-thread", "cpp-asio", "go"]
    rows = {r["pattern"]: r for r in doc["table"]}
    assert rows["go-errgroup"]["runtime"] == "Go" and rows["channel-soup"]["runtime"] == "C++ threads"
    assert "go-errgroup+collect-all" in rows["go-channel-soup"]["error_propagation"] or \
        rows["go-channel-soup"]["error_propagation"].startswith("n/a")


def test_disagreement_is_listed_with_the_measured_figures(tmp_path, go_doc):
    doc = copy.deepcopy(go_doc)
    for b in doc["benchmarks"]:
        if b.get("pattern") == "go-channel-soup" and b.get("scenario") == "claim-one-hangs-open":
            b["zombie_task_s"] = 0.0
            b["threads_peak"] = 9
    out = _claims(tmp_path, doc, "md")
    summary = out[out.index("## Summary"):out.index("## The comparison table")]
    row = next(line for line in summary.splitlines() if line.startswith("| 1 |"))
    assert "**supported**" in row and "**refuted**" in row
    dis = summary[summary.index("### Where the runtimes disagree"):]
    line = next(x for x in dis.splitlines() if x.startswith("- **1."))
    assert "C++ threads: supported; Go: refuted" in line
    assert "OS threads peak" in line and "vs 9" in line and "thread cost" in line
    assert "`channel-soup` vs `go-channel-soup`" in line
    assert not any(x.startswith("- **3.") for x in dis.splitlines())  # they agree there
    assert "inconclusive on the interval's width" not in line  # a refutation is no width


def test_an_inconclusive_runtime_is_said_to_be_the_intervals_width(tmp_path, go_doc):
    # Go's soup: zombie time on half its repetitions only, so its interval straddles 1 ms.
    doc = copy.deepcopy(go_doc)
    soup = [b for b in doc["benchmarks"] if b.get("pattern") == "go-channel-soup"
            and b.get("scenario") == "claim-one-hangs-open" and b.get("run_type") == "iteration"]
    assert len(soup) >= 5
    for k, b in enumerate(soup):
        if k % 2 == 0:
            b["zombie_task_s"] = 0.0
    out = _claims(tmp_path, doc, "md")
    dis = out[out.index("### Where the runtimes disagree"):out.index("## The comparison table")]
    line = next(x for x in dis.splitlines() if x.startswith("- **1."))
    assert "C++ threads: supported; Go: inconclusive" in line
    assert "Go is inconclusive on the interval's width: " in line, line
    assert "repetitions" in line and "reaches across the threshold 0.001 s" in line, line


def test_claim_2_is_answered_per_transport_configuration(tmp_path, go_doc):
    doc = copy.deepcopy(go_doc)
    extra = []
    for b in doc["benchmarks"]:
        if b.get("runtime") == "go" and b.get("scenario") == "claim-one-hangs-open":
            e = copy.deepcopy(b)
            e["scenario"] = "claim-one-hangs-open-go-default"
            e["name"] = e["name"].replace("claim-one-hangs-open/", "claim-one-hangs-open-go-default/")
            e["go_transport"] = {**e["go_transport"], "mode": "default", "max_conns_per_host": 0}
            if e["pattern"] == "go-channel-soup":
                e["timed_out"] = 0  # no per-host bound: nothing waits for a connection
            extra.append(e)
    doc["benchmarks"] += extra
    scen = doc["lab"].setdefault("scenarios", {})
    scen["claim-one-hangs-open-go-default"] = {**scen.get("claim-one-hangs-open", {}), "go_transport": "default"}
    res = _claims(tmp_path, doc)
    c = next(c for c in res["claims"] if c["id"] == "soup-pools")
    go = _by_runtime(c)["go"]
    assert [rv["configuration"] for rv in go] == ["lab cap", "Go's default transport"]
    assert go[0]["verdict"] == "supported" and go[1]["verdict"] == "refuted"
    assert any("pool wait p99" in s["label"] and "net/http" in s["reason"] for s in go[0]["skipped"])
    md = _claims(tmp_path, doc, "md")
    row = next(x for x in md.splitlines() if x.startswith("| 2 |"))
    assert "lab cap (32 connections per host): **supported**" in row
    assert "Go's default transport (no per-host bound): **refuted**" in row
    line = next(x for x in md.splitlines() if x.startswith("- **2."))
    assert "Go (Go's default transport): refuted" in line and "no per-host bound" in line


def test_a_runtime_missing_its_experiment_is_not_run_with_the_reason(tmp_path, go_doc):
    doc = copy.deepcopy(go_doc)
    doc["benchmarks"] = [b for b in doc["benchmarks"]
                         if not (b.get("runtime") == "go" and b.get("scenario") == "claim-fail-fast")]
    doc["context"]["runtimes"]["go"]["status"] = "not built: go not found"
    res = _claims(tmp_path, doc)
    c = next(c for c in res["claims"] if c["id"] == "group-cancels")
    go = _by_runtime(c)["go"][0]
    assert go["status"] == "not run"
    assert "not built: go not found" in go["reason"] and "claim-fail-fast" in go["reason"]
    lines = next(c for c in res["claims"] if c["id"] == "group-20-lines")
    assert _by_runtime(lines)["go"][0]["status"] == "not run"
    assert _by_runtime(lines)["go"][0]["reason"].startswith("the line count reads the C++ use site")


def test_runtimes_entries_are_validated(tmp_path):
    base = {"id": "x", "claim": "c", "tests": [{"label": "l", "threshold": 0, "direction": "above",
                                               "statistic": {"kind": "value", "scenario": "s",
                                                             "pattern": "channel-soup", "metric": "m"}}]}
    for rts, msg in [({"rust": {}}, "unknown runtime"), ({"go": {"colour": 1}}, "unknown field 'colour'"),
                     ({"go": {"skip": {"nope": "x"}}}, "no test labelled 'nope'"),
                     ({"cpp-asio": {"pooled_with": "go"}}, "pooled_with")]:
        with pytest.raises(claimkit.SpecError, match=msg):
            claimkit.validate({"claims": [{**base, "runtimes": rts}]}, "f")


def test_labels_are_renamed_whole_names_only():
    m = {"cancellable-group": "go-errgroup", "channel-soup": "go-channel-soup"}
    assert claimkit.rename_label("channel-soup minus cancellable-group", m) == "go-channel-soup minus go-errgroup"
    assert claimkit.rename_label("cancellable-group+collect-all p50", m) == "cancellable-group+collect-all p50"


def test_forest_plot_and_html_show_every_runtime(tmp_path, go_doc):
    doc = _claims(tmp_path, go_doc)
    from orchlab_py import verdicts
    rows = verdicts.rows(doc)
    tags = {(n, tag) for n, _id, tag, _r in rows}
    assert (1, "C++") in tags and (1, "Go") in tags and (11, "Asio") in tags
    import report_html
    html = report_html.claims_section(doc, None, None)
    assert "per runtime" in html and "<strong>Go</strong>" in html and "not run" in html
