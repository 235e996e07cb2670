"""claims.py and its engine: every claim of the claim file reaches every verdict on crafted
inputs, the rules follow their intervals, and the table and the summary follow the data."""

import copy
import json
import os

import pytest

from conftest import MICRO, REPORT, SCRIPTS, run_cli, run_script, write

from orchlab_py import claimkit  # noqa: E402

CLAIMS_FILE = os.path.join(os.path.dirname(SCRIPTS), "scenarios", "claims", "article.claims.json")
with open(CLAIMS_FILE, encoding="utf-8") as _f:
    CLAIMS = json.load(_f)["claims"]
VERDICTS = set(claimkit.VERDICTS)
REPS = 6  # the fewest whose sign-test interval reaches 95 % (default.json's claim cells)


# ---------------------------------------------------------------------------------------
# The rule itself
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("low,high,direction,expected", [
    (1.1, 2.0, "above", "supported"),
    (0.2, 1.0, "above", "refuted"),     # at or below the threshold
    (0.9, 1.1, "above", "inconclusive"),
    (None, None, "above", "inconclusive"),
    (0.1, 0.9, "below", "supported"),
    (1.0, 3.0, "below", "refuted"),
    (0.5, 1.5, "below", "inconclusive"),
])
def test_decide_needs_the_whole_interval_on_one_side(low, high, direction, expected):
    assert claimkit.decide(low, high, 1.0, direction) == expected


def test_combine_all_and_any():
    S, R, I, N = claimkit.SUPPORTED, claimkit.REFUTED, claimkit.INCONCLUSIVE, claimkit.NOT_TESTABLE
    assert claimkit.combine([S, S]) == S
    assert claimkit.combine([S, R]) == R
    assert claimkit.combine([S, I]) == I
    assert claimkit.combine([S, N]) == N
    assert claimkit.combine([R, N]) == R
    assert claimkit.combine([I, S], "any") == S
    assert claimkit.combine([R, R], "any") == R
    assert claimkit.combine([R, I], "any") == I


# ---------------------------------------------------------------------------------------
# Crafted inputs: plant values that put each test's statistic where a verdict must follow
# ---------------------------------------------------------------------------------------

class Synth:
    """A report and a micro file built from planted per-repetition values."""

    def __init__(self, usable_cpus=8):
        self.cells = {}  # (scenario, pattern) -> [dict per repetition]
        self.micro = {}  # (strategy, work, threads) -> [items/s per repetition]
        self.stress = []  # (pattern, concurrency, {metric: value}) of scripts/unbounded.sh
        self.demos = []  # demos.json entries of scripts/demos.py
        self.usable_cpus = usable_cpus

    def rep(self, scenario, pattern, i, **metrics):
        reps = self.cells.setdefault((scenario, pattern), [dict() for _ in range(REPS)])
        reps[i].update(metrics)

    def report(self):
        benchmarks = []
        for (scenario, pattern), reps in self.cells.items():
            for i, m in enumerate(reps):
                e = {"name": f"{scenario}/{pattern}/fanout:3/concurrency:4/real_time", "run_type": "iteration",
                     "scenario": scenario, "pattern": pattern, "fanout": 3, "concurrency": 4,
                     "repetition_index": i, "repetitions": REPS, "iterations": 1000}
                e.update(m)
                benchmarks.append(e)
        return {"context": {"usable_cpus": self.usable_cpus}, "benchmarks": benchmarks, "lab": {}}

    def micro_doc(self):
        out = []
        for (s, w, t), vals in self.micro.items():
            for i, v in enumerate(vals):
                out.append({"name": f"BM_Aggregate/{s}/work_ns:{w}/threads:{t}/real_time",
                            "run_name": f"BM_Aggregate/{s}/work_ns:{w}/threads:{t}/real_time",
                            "run_type": "iteration", "repetition_index": i, "items_per_second": v,
                            "real_time": 1.0, "time_unit": "ns"})
        return {"context": {}, "benchmarks": out}


def _targets(t, direction, mode):
    """REPS per-repetition values of the statistic: well past the threshold on the claim's
    side (supported), on the other side (refuted), or straddling it (inconclusive)."""
    span = max(abs(t), 1.0)
    sign = 1 if direction == "above" else -1
    if mode == "supported":
        centre = t + sign * span
    elif mode == "refuted":
        centre = t - sign * span
    else:
        return [t + (span if i % 2 else -span) for i in range(REPS)]
    return [centre * (1 + 0.002 * (i - 2)) if centre else 0.001 * (i - 2) for i in range(REPS)]


def plant(synth, test, mode):
    """Plant inputs so that this test's statistic gives `mode`."""
    st, t, d = test["statistic"], test["threshold"], test["direction"]
    kind = st["kind"]
    vals = _targets(t, d, mode)
    if kind in ("value", "per_orchestration"):
        scale = st.get("scale", 1.0) * (1.0 / 1000 if kind == "per_orchestration" else 1.0)
        for i, v in enumerate(vals):
            synth.rep(st["scenario"], st["pattern"], i, **{st["metric"]: v / scale})
    elif kind == "difference":
        a, b = st["a"], st["b"]
        for i, v in enumerate(vals):
            per = lambda side: (1.0 / 1000 if side.get("per") == "orchestration" else 1.0) * side.get("scale", 1.0)
            base = 10.0 * max(abs(t), 1.0)
            synth.rep(b["scenario"], b["pattern"], i, **{b["metric"]: base / per(b)})
            synth.rep(a["scenario"], a["pattern"], i, **{a["metric"]: (base + v) / per(a)})
    elif kind == "ratio":
        a, b = st["a"], st["b"]
        for i, v in enumerate(vals):
            synth.rep(b["scenario"], b["pattern"], i, **{b["metric"]: 100.0})
            synth.rep(a["scenario"], a["pattern"], i, **{a["metric"]: 100.0 * max(v, 0.01)})
    elif kind == "metric_ratio":
        for i, v in enumerate(vals):
            synth.rep(st["scenario"], st["pattern"], i, **{st["numerator"]: 100.0 * max(v, 0.01),
                                                          st["denominator"]: 60.0,
                                                          **{m: 40.0 for m in st.get("denominator_plus", [])}})
    elif kind == "proportion":
        trials = 200
        for i, v in enumerate(vals):
            share = min(1.0, max(0.0, v))
            synth.rep(st["scenario"], st["pattern"], i, **{st["success"]: round(share * trials),
                                                          st.get("trials", "iterations"): trials})
    elif kind == "event_rate":
        # the share of repetitions with an event: none (supported), most (refuted), or a
        # few among too few repetitions to tell (inconclusive)
        patterns = st["patterns"] if mode != "inconclusive" else st["patterns"][:1]
        scenarios = [st["scenario"]] if st.get("scenario") else [f"s{k}" for k in range(3)]
        for p in patterns:
            for sc in scenarios:
                for i in range(REPS):
                    events = {m: 0 for m in st["events"]}
                    if mode == "refuted" or (mode == "inconclusive" and i == 0):
                        events[st["events"][0]] = 1
                    synth.rep(sc, p, i, iterations=1000, **events)
    elif kind == "micro_contention":
        w = st.get("work_ns", 0)
        # a share is below 1: half-way to 1 past the threshold, half-way to 0 below it
        hi, lo = (t + 1) / 2, t / 2
        if d == "below":
            hi, lo = lo, hi
        vals = {"supported": [hi * (1 + 0.002 * i) for i in range(REPS)],
                "refuted": [lo * (1 + 0.002 * i) for i in range(REPS)],
                "inconclusive": [hi if i % 2 else lo for i in range(REPS)]}[mode]
        for i, v in enumerate(vals):
            for s in (st["strategy"], st["baseline"]):
                synth.micro.setdefault((s, w, 1), [100.0 * (1 + 0.001 * i) for _ in range(REPS)])
            synth.micro.setdefault((st["baseline"], w, 2), [100.0] * REPS)
            synth.micro.setdefault((st["strategy"], w, 2), [0.0] * REPS)[i] = 100.0 * (1 - v)
    elif kind == "micro_advantage":
        for w in (0, 1000):
            for tt in (1, 2):
                for s in st["others"]:
                    synth.micro[(s, w, tt)] = [100.0 * (1 + 0.001 * i) for i in range(REPS)]
                synth.micro[(st["strategies"][0], w, tt)] = [100.0 * max(v, 0.01) for v in vals]
    elif kind == "stress_proportion":
        trials = 200
        for v in vals:  # one independent run each
            share = min(1.0, max(0.0, v))
            synth.stress.append((st["pattern"], st["concurrency"],
                                 {st["success"]: round(share * trials), st.get("trials", "iterations"): trials}))
    elif kind == "demonstration":
        # one run of the program: it did what the claim says (supported) or ran to its end
        # without (refuted); a demonstration has no inconclusive outcome
        race = st["observe"] == "race_reported"
        happened = mode == "supported"
        synth.demos.append({"id": st["demo"], "built": True, "race_detector": race, "exit_status":
                            (66 if race else 2) if happened else 0, "signal": None, "timed_out": False,
                            "command": f"build/go/demo/{st['demo']}", "go_version": "go1.19.8",
                            "panicked": happened and not race, "panic": "sync: negative WaitGroup counter"
                            if happened and not race else None, "race_reported": happened if race else None,
                            "race_accesses": ["Write by main goroutine at demo/x/main.go:34"] if happened and race
                            else []})
    elif kind == "source_lines":
        pass  # planted as files by the caller
    else:
        raise AssertionError(f"no planting for {kind}")


def evaluate(claim, synth, tmp_path, source_root=None):
    inputs = claimkit.Inputs(_load(synth, tmp_path), _runs(synth), source_root or os.path.dirname(SCRIPTS),
                             _stress(synth, tmp_path), {"demos": synth.demos} if synth.demos else None)
    return claimkit.evaluate_claim(claim, inputs)


def _stress(synth, tmp_path):
    """unbounded.json and its run reports, as scripts/unbounded.sh writes them."""
    if not synth.stress:
        return None
    runs = []
    (tmp_path / "unbounded").mkdir(exist_ok=True)
    for k, (pattern, c, metrics) in enumerate(synth.stress):
        rel = f"unbounded/{pattern}-c{c}-r{k}.json"
        entry = {"name": f"claim-fanout-1000/{pattern}/fanout:1000/concurrency:{c}", "run_type": "iteration",
                 "scenario": "claim-fanout-1000", "pattern": pattern, "fanout": 1000, "concurrency": c,
                 "first_throw_ms": 400.0 if metrics.get("orchestrations_threw") else None, **metrics}
        write(tmp_path, rel, {"benchmarks": [entry], "lab": {"notes": []}})
        runs.append({"pattern": pattern, "concurrency": c, "run": k, "exit": 0, "wall_s": 2.5, "report": rel,
                     "died": None})
    doc = {"limits": {"address_space_mb": 4096, "nproc": 4096, "watchdog_s": 60, "as_root": True}, "runs": runs}
    return {"doc": doc, "dir": str(tmp_path)}


def _load(synth, tmp_path):
    from orchlab_py.report import load_report
    return load_report(str(write(tmp_path, "report.json", synth.report())))


def _runs(synth):
    runs = {}
    for b in synth.micro_doc()["benchmarks"]:
        runs.setdefault(b["run_name"], []).append(b)
    return runs


def _source(tmp_path, claim, mode):
    """A source tree whose use site has a line count on the side `mode` asks for."""
    test = claim["tests"][0]
    st = test["statistic"]
    n = {"supported": int(test["threshold"]) - 10, "refuted": int(test["threshold"]) + 10}[mode]
    path = tmp_path / "src" / st["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"  int x{i} = {i};" for i in range(n - 2))
    path.write_text(f"// header\nOutcome run(const Plan& plan) {{\n{body}\n  return x0;\n}}\n", encoding="utf-8")
    return str(tmp_path / "src")


CLAIM_IDS = [c["id"] for c in CLAIMS]


@pytest.mark.parametrize("mode", ["supported", "refuted", "inconclusive"])
@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_every_claim_reaches_every_verdict(cid, mode, tmp_path):
    claim = next(c for c in CLAIMS if c["id"] == cid)
    kinds = {t["statistic"]["kind"] for t in claim["tests"]}
    if kinds == {"source_lines"} and mode == "inconclusive":
        pytest.skip("an exact line count has no interval to straddle its threshold")
    if kinds == {"demonstration"} and mode == "inconclusive":
        pytest.skip("a demonstration did it or did not: it has no interval to straddle its threshold")
    synth = Synth()
    for test in claim["tests"]:
        plant(synth, test, mode)
    root = _source(tmp_path, claim, mode) if "source_lines" in kinds else None
    v = evaluate(claim, synth, tmp_path, root)
    assert v.verdict == mode, (v.verdict, v.reason, [(t["label"], tv, w) for t, _r, tv, w in v.tests])
    if mode != "inconclusive":
        for _t, r, _tv, _w in v.tests:
            assert r is not None and r.low is not None and r.high is not None


@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_every_claim_is_not_testable_without_its_experiment(cid, tmp_path):
    claim = next(c for c in CLAIMS if c["id"] == cid)
    synth = Synth()
    synth.rep("unrelated", "channel-soup", 0, timed_out=0)
    v = evaluate(claim, synth, tmp_path, source_root=str(tmp_path / "empty"))
    assert v.verdict == "not testable here"
    assert v.reason


def test_a_stress_run_that_died_is_not_counted_as_a_measurement(tmp_path):
    claim = next(c for c in CLAIMS if c["id"] == "semaphore")
    test = next(t for t in claim["tests"] if t["statistic"]["kind"] == "stress_proportion")
    stress = {"doc": {"limits": {}, "runs": [{"pattern": test["statistic"]["pattern"],
                                              "concurrency": test["statistic"]["concurrency"], "exit": 134,
                                              "report": None, "died": "signal SIGABRT"}]},
              "dir": str(tmp_path)}
    inputs = claimkit.Inputs(None, None, None, stress)
    with pytest.raises(claimkit.NotTestable, match="died before its report: signal SIGABRT"):
        claimkit.stat_stress_proportion(inputs, test["statistic"])


def test_precondition_names_the_cores_it_needs(tmp_path):
    claim = next(c for c in CLAIMS if c.get("precondition", {}).get("usable_cpus"))
    synth = Synth(usable_cpus=2)
    for test in claim["tests"]:
        plant(synth, test, "supported")
    v = evaluate(claim, synth, tmp_path)
    assert v.verdict == "not testable here"
    need = claim["precondition"]["usable_cpus"]
    assert f"needs >= {need} usable cores; this host has 2" in v.reason
    # The estimate is still computed and shown.
    assert v.tests[0][1] is not None and v.tests[0][1].estimate is not None


def test_few_repetitions_give_no_interval_and_inconclusive(tmp_path):
    claim = next(c for c in CLAIMS if c["id"] == "mutex-no-timeout")
    test = claim["tests"][0]
    synth = Synth()
    plant(synth, test, "supported")
    for key in list(synth.cells):
        synth.cells[key] = synth.cells[key][:1]
    v = evaluate(claim, synth, tmp_path)
    assert v.verdict == "inconclusive", v.reason
    assert "no interval" in v.reason


def test_paired_difference_pairs_by_repetition(tmp_path):
    # Huge spread across repetitions, constant difference within each: paired gives a tight
    # interval above 0; the same numbers unpaired would straddle it.
    claim = next(c for c in CLAIMS if c["id"] == "latch-leaks")
    spec = claim["tests"][0]["statistic"]
    assert spec.get("paired")
    synth = Synth()
    for i, base in enumerate([100, 400, 200, 500, 300, 600]):
        synth.rep(spec["b"]["scenario"], spec["b"]["pattern"], i, leaked_tasks_at_return=base)
        synth.rep(spec["a"]["scenario"], spec["a"]["pattern"], i, leaked_tasks_at_return=base + 50)
    inputs = claimkit.Inputs(_load(synth, tmp_path), None, None)
    paired = claimkit.stat_difference(inputs, spec)
    assert paired.low == pytest.approx(0.05) and paired.high == pytest.approx(0.05)
    unpaired = claimkit.stat_difference(inputs, {**spec, "paired": False})
    assert unpaired.low < 0 < unpaired.high


def test_contention_share_is_one_minus_the_ratio_of_ratios():
    agg = {("mutex-vector", 0, 1): [50.0] * 5, ("slots", 0, 1): [100.0] * 5,
           ("mutex-vector", 0, 2): [30.0] * 5, ("slots", 0, 2): [150.0] * 5}
    r = claimkit.contention_share(agg, "mutex-vector", "slots", 0, 2)
    # R(1) = 0.5, R(2) = 0.2: share 1 - 0.2 / 0.5 = 0.6
    assert r.estimate == pytest.approx(0.6)
    assert r.low == pytest.approx(0.6) and r.high == pytest.approx(0.6)


# ---------------------------------------------------------------------------------------
# Claim files
# ---------------------------------------------------------------------------------------

def test_a_users_claim_file_is_evaluated_without_touching_the_engine(tmp_path):
    own = {"claims": [{
        "id": "my-claim", "claim": "Channel soup times out more than the group.",
        "tests": [{"label": "timed-out share, soup minus group", "threshold": 0, "direction": "above",
                   "statistic": {"kind": "difference", "paired": True,
                                 "a": {"scenario": "s", "pattern": "channel-soup", "metric": "timed_out",
                                       "per": "orchestration"},
                                 "b": {"scenario": "s", "pattern": "cancellable-group", "metric": "timed_out",
                                       "per": "orchestration"}}}]}]}
    synth = Synth()
    for i in range(REPS):
        synth.rep("s", "channel-soup", i, timed_out=300 + i)
        synth.rep("s", "cancellable-group", i, timed_out=10 + i)
    report = write(tmp_path, "r.json", synth.report())
    path = write(tmp_path, "mine.json", own)
    r = run_script("claims.py", report, "--no-micro", "--claims", path, "--format", "json")
    assert r.code == 0, r.err
    c = json.loads(r.out)["claims"][0]
    assert c["id"] == "my-claim" and c["verdict"] == "supported"
    assert c["statistic"]["estimate"] == pytest.approx(0.29)


@pytest.mark.parametrize("broken,message", [
    ({"claims": [{"id": "x", "claim": "c"}]}, "tests is required"),
    ({"claims": [{"id": "x", "claim": "c", "tests": [{"label": "l", "threshold": 1, "direction": "up",
                                                       "statistic": {"kind": "value"}}]}]}, "direction"),
    ({"claims": [{"id": "x", "claim": "c", "tests": [{"label": "l", "threshold": 1, "direction": "above",
                                                       "statistic": {"kind": "magic"}}]}]}, "kind"),
    ({"claims": [{"id": "x", "claim": "c", "colour": 1, "tests": []}]}, "unknown field 'colour'"),
    ({"nothing": []}, "\"claims\" list"),
])
def test_a_broken_claim_file_exits_2_naming_the_field(broken, message, tmp_path):
    path = write(tmp_path, "bad.json", broken)
    r = run_cli("claims.py", REPORT, "--no-micro", "--claims", path)
    assert r.code == 2
    assert message in r.err, r.err


# ---------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_doc():
    r = run_script("claims.py", REPORT, "--micro", MICRO, "--format", "json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_sample_gets_a_verdict_per_claim_with_its_numbers(sample_doc):
    assert [c["id"] for c in sample_doc["claims"]] == CLAIM_IDS
    for c in sample_doc["claims"]:
        assert c["verdict"] in VERDICTS
        assert c["rule"] and c["reason"]
        if c["verdict"] in ("supported", "refuted"):
            lo, hi = c["statistic"]["interval"]
            assert lo is not None and hi is not None and lo <= c["statistic"]["estimate"] <= hi
            assert all(t["repetitions"] for t in c["tests"])


def test_markdown_opens_with_the_pasteable_summary():
    r = run_script("claims.py", REPORT, "--micro", MICRO)
    assert r.code == 0, r.err
    out = r.out
    assert out.index("## Summary") < out.index("## The comparison table") < out.index("## Claims: rules and evidence")
    summary = out[out.index("## Summary"):out.index("## The comparison table")]
    assert summary.count("\n| ") == len(CLAIMS) + 1  # header + one row per claim
    assert "the number [interval] (confidence)" in summary
    assert "% interval)" in summary
    assert out.count("*Verdict:*") == len(CLAIMS)


def test_multicore_column_reads_the_contention_share(tmp_path, sample_doc):
    rows = {r["pattern"]: r for r in sample_doc["table"]}
    if "mutex-aggregation" in rows:
        cell = rows["mutex-aggregation"]["multicore_safe"]
        assert "contention share of mutex-vector" in cell or cell.startswith("not testable")
    # Without the micro the column says so instead of guessing.
    r = run_script("claims.py", REPORT, "--no-micro", "--format", "json")
    for row in json.loads(r.out)["table"]:
        assert row["multicore_safe"].startswith("not testable here")


def test_one_usable_core_is_named_in_the_table(tmp_path):
    synth = Synth(usable_cpus=1)
    synth.rep("healthy", "mutex-aggregation", 0, timed_out=0)
    synth.micro[("mutex-vector", 0, 1)] = [1.0] * REPS
    synth.micro[("slots", 0, 1)] = [2.0] * REPS
    report = write(tmp_path, "r.json", synth.report())
    micro = write(tmp_path, "m.json", synth.micro_doc())
    r = run_script("claims.py", report, "--micro", micro, "--format", "json")
    row = json.loads(r.out)["table"][0]
    assert row["multicore_safe"].startswith("not testable here (1 usable core")


def test_bad_input_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    r = run_cli("claims.py", bad)
    assert r.code == 2 and "not valid JSON" in r.err


def test_micro_next_to_the_report_is_used_unless_disabled(tmp_path, sample):
    report = write(tmp_path, "report.json", copy.deepcopy(sample))
    with open(MICRO, encoding="utf-8") as f:
        (tmp_path / "micro.json").write_text(f.read(), encoding="utf-8")
    r = run_script("claims.py", report, "--format", "json")
    assert "found next to the report" in r.err
    r2 = run_script("claims.py", report, "--no-micro", "--format", "json")
    assert "found next to the report" not in r2.err
