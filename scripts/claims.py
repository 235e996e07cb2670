#!/usr/bin/env python3
"""Re-derive the article's comparison table and check its claims against a report.

The claims are data (scenarios/claims/article.claims.json, or --claims FILE); the engine
that turns each into a verdict with its estimate and interval (with the confidence it achieves) is
orchlab_py/claimkit.py.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import claimkit, fmt, runtimes, style  # noqa: E402
from orchlab_py.evidence import cell_max, cell_median, has_cells, orchestrations, per_orch, pooled_total  # noqa: E402
from orchlab_py.report import ReportError, load_micro, load_report, micro_beside  # noqa: E402
from orchlab_py.report import host_busy_line, micro_build_line, micro_context  # noqa: E402

PROG = "claims.py"
HANG, FAIL = "one-hangs", "fail-fast"
GROUP = "cancellable-group"
WAITS_ALL = GROUP + "+collect-all"  # waits for every call that is not cut off by the deadline
GO_WAITS_ALL = "go-errgroup+collect-all"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CLAIMS = os.path.join(ROOT, "scenarios", "claims", "article.claims.json")
# The aggregation each exhibit's results go through, as BM_Aggregate names it: the
# Multi-core column reads that strategy's contention share.
AGGREGATION = {"channel-soup": "channel-fan-in", "mutex-aggregation": "mutex-vector"}
SERIALISES, CONTENDED = 0.30, 0.10


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write Markdown with the article's comparison table filled with measured "
        "numbers, and each claim with its evidence, the rule applied and the verdict.",
        epilog="Example: claims.py results/latest/report.json --micro results/latest/micro.json > CLAIMS.md",
    )
    p.add_argument("report", metavar="REPORT", help="orchlab report (JSON)")
    p.add_argument("--micro", metavar="MICRO", help="Google Benchmark JSON of orchlab-micro (default: micro.json next to REPORT, if any)")
    p.add_argument("--no-micro", action="store_true", help="ignore a micro.json next to REPORT")
    p.add_argument("--unbounded", metavar="FILE",
                   help="unbounded.json of scripts/unbounded.sh, claim 10's stress run "
                   "(default: unbounded.json next to REPORT, if any)")
    p.add_argument("--go-micro", metavar="FILE",
                   help="go_micro.json of scripts/go_micro.py, BM_Aggregate's Go twin (default: go_micro.json next "
                   "to REPORT, if any)")
    p.add_argument("--demos", metavar="FILE",
                   help="demos.json of scripts/demos.py, the Go demonstrations (default: demos.json next to "
                   "REPORT, if any)")
    p.add_argument("--source", metavar="DIR", default=None,
                   help="repository root, for the line count of the group exhibit "
                   "(default: the directory above scripts/)")
    p.add_argument("--claims", metavar="FILE", default=DEFAULT_CLAIMS,
                   help="the claims as data (default: scenarios/claims/article.claims.json)")
    p.add_argument("--format", choices=("md", "json"), default="md", help="output format (default: md)")
    return p


def _n(v, digits=3):
    return fmt.num(v, digits)


def _us_to_ms(v):
    return None if v is None else v / 1000.0


# ---------------------------------------------------------------------------------------
# The article's table
# ---------------------------------------------------------------------------------------

TABLE_RULES = [
    ("Cancellation", f"from `{HANG}`: **yes** when the services saw client aborts and no task "
     "was left running at return; **no** when they saw no client abort; **partial** otherwise."),
    ("Leak risk", "over every scenario: **none** when leaked tasks at return and at the end, late "
     "completions and zombie task time are all 0; otherwise **yes**, with the worst scenario."),
    ("Error propagation", f"from `{FAIL}`: **cancels siblings** when the services saw client aborts; "
     f"**returns early** when there were none but the p50 latency is below half of `{WAITS_ALL}`'s "
     f"in `{FAIL}` (a pattern that waits for every call by design: the slow siblings' time); "
     "**waits for all** otherwise."),
    ("Multi-core safe", "the evidence of claim 5: the contention share 1 − R(T)/R(1) of the aggregation the "
     "exhibit uses (mutex-vector for mutex-aggregation and channel-fan-in for channel-soup, each against slots; "
     "slots for the others, against slots-padded, which measures false sharing; R = its throughput ÷ the "
     "baseline's) in BM_Aggregate at the most threads run, no work per task, with its Hodges-Lehmann "
     f"interval (the confidence printed beside it): **yes** when the interval lies below {CONTENDED:.0%}, **serialises** when it lies "
     f"above {SERIALISES:.0%}, **contended** when above {CONTENDED:.0%}, inconclusive otherwise. Every exhibit "
     "is free of data races (the suite runs under TSan); this column measures what its aggregation costs."),
]


def cancellation_cell(report, p):
    """The Cancellation column for a pattern."""
    if not has_cells(report, HANG, p):
        return f"n/a (no `{HANG}` cells)"
    aborts = pooled_total(report, HANG, p, "server_client_aborts")
    if aborts is None:
        # Services without orchlab's /__stats: unknown, which is not "no aborts".
        return "not testable here (no client-abort counts from the services)"
    left = pooled_total(report, HANG, p, "leaked_tasks_at_return") or 0
    lag = cell_max(report, HANG, p, "server_abort_lag_p99_ms")
    cut = aborts + left
    if cut == 0:
        over = _us_to_ms(cell_max(report, HANG, p, "deadline_overshoot_p99_us"))
        if over is not None:
            said = f"deadline overshoot p99 {_n(over)} ms"
        else:
            n = orchestrations(report, HANG, p)
            said = (f"deadline overshoot p99 unknown: null in every repetition, since a p99 needs 100 "
                    f"orchestrations in one repetition and `{HANG}` ran {_n(n)} in all")
        return f"**no**: client aborts 0; no call was cut off, it waits for every call ({said})"
    detail = f"client aborts {_n(aborts)} of {_n(cut)} calls cut off by the deadline"
    if aborts > 0 and left == 0:
        lag_s = f"; abort lag p99 {_n(lag)} ms" if lag else ""
        return f"**yes**: {detail}{lag_s}"
    if aborts == 0:
        return f"**no**: {detail}"
    return f"**partial**: {detail}"


def leak_cell(report, p):
    """The Leak risk column for a pattern."""
    worst, worst_s = None, None
    orch_total = 0
    for s in report.scenarios():
        if not has_cells(report, s, p):
            continue
        orch_total += orchestrations(report, s, p)
        v = per_orch(report, s, p, "leaked_tasks_at_return") or 0
        z = per_orch(report, s, p, "zombie_task_s") or 0
        other = sum((pooled_total(report, s, p, m) or 0) for m in ("leaked_tasks_end", "late_completions"))
        score = (v, z, other)
        if any(score) and (worst is None or score > worst):
            worst, worst_s = score, s
    if orch_total == 0:
        return "n/a (no feasible cells)"
    if worst is None:
        return f"**none**: 0 leaked tasks in {_n(orch_total)} orchestrations"
    v, z, other = worst
    extra = f", {_n(other)} late completions or tasks left at the end" if other else ""
    return (f"**yes**: {_n(v)} leaked tasks per orchestration, {_n(z)} s zombie task time "
            f"per orchestration{extra} (`{worst_s}`)")


def _waits_all(report, p):
    """The exhibit that waits for every call in the same runtime as p (a Go exhibit is read
    against go-errgroup+collect-all, never against a C++ one)."""
    return GO_WAITS_ALL if report.runtime_of(p) == runtimes.GO else WAITS_ALL


def error_cell(report, p):
    """The Error propagation column for a pattern."""
    if not has_cells(report, FAIL, p):
        return f"n/a (no `{FAIL}` cells)"
    WAITS_ALL = _waits_all(report, p)  # noqa: N806 (the reference, per runtime)
    aborts = per_orch(report, FAIL, p, "server_client_aborts")
    p50 = _us_to_ms(cell_median(report, FAIL, p, "p50_us"))
    waits = _us_to_ms(cell_median(report, FAIL, WAITS_ALL, "p50_us"))
    n = orchestrations(report, FAIL, p)
    failed = ((pooled_total(report, FAIL, p, "failed") or 0) + (pooled_total(report, FAIL, p, "partial") or 0))
    share = f"{100.0 * failed / n:.0f}% failed or partial" if n else ""
    lat = f"p50 {_n(p50)} ms" + (f" vs {_n(waits)} ms for `{WAITS_ALL}`" if waits and p != WAITS_ALL else "")
    detail = f"{lat}; client aborts {_n(aborts)}/orchestration; {share}"
    if aborts is None:
        return f"not testable here (no client-abort counts from the services): {lat}"
    if aborts > 0:
        return f"**cancels siblings**: {detail}"
    if p50 is not None and waits and p50 < 0.5 * waits:
        return f"**returns early**: {detail}"
    if p50 is None or not waits:
        return f"not testable here (no `{FAIL}` p50 for `{WAITS_ALL}` to compare with): {detail}"
    return f"**waits for all**: {detail}"


def multicore_cell(agg, cpus, p, go_agg=None):
    """The Multi-core safe column for a pattern: the contention share of its aggregation in
    BM_Aggregate at the most threads run (no work per task), the evidence of claim 5; a
    Go exhibit's from BM_Aggregate's testing.B twin (go_micro.json, threads = GOMAXPROCS)."""
    strategy = AGGREGATION.get(style.base_pattern(runtimes.COUNTERPART.get(p, p)), "slots")
    # The lock-based strategies against slots (claim 5's R); slots against slots on
    # their own cache lines, which measures what packed slots lose to false sharing.
    baseline = "slots-padded" if strategy == "slots" else "slots"
    source = "BM_Aggregate"
    if style.is_go(p):
        agg, source = go_agg, "BM_Aggregate's Go twin, GOMAXPROCS"
        if not agg:
            return "not testable here (no runs of BM_Aggregate's Go twin: go_micro.json missing)"
    if not agg:
        return "not testable here (no BM_Aggregate runs: micro.json missing)"
    threads = max((t for (s_, w, t) in agg if s_ == strategy and w == 0), default=0)
    if threads < 2:
        return f"not testable here ({cpus or 1} usable core: nothing to contend with)"
    r = claimkit.contention_share(agg, strategy, baseline, 0, threads)
    if r is None:
        return f"not testable here (no {strategy} and {baseline} runs at 1 and {threads} threads)"
    share = (f"contention share of {strategy} against {baseline} {claimkit.interval_text(r, '%')} "
             f"at {threads} threads, {r.repetitions[0]} repetitions ({source}, no work per task)")
    if r.low is None:
        return f"inconclusive: {share}"
    if r.high < CONTENDED:
        return f"**yes**: {share}"
    if r.low > SERIALISES:
        return f"**serialises**: {share}"
    if r.low > CONTENDED:
        return f"**contended**: {share}"
    return f"inconclusive: {share}"


def comparison_table(report, runs, go_runs=None):
    """Rows of the article's table, one per pattern."""
    agg, go_agg = claimkit.aggregate_runs(runs), claimkit.aggregate_runs(go_runs)
    cpus = report.context.get("usable_cpus")
    rows = []
    for p in style.sort_patterns(report.patterns()):
        rows.append([f"`{p}`", runtimes.label(report.runtime_of(p)), cancellation_cell(report, p), leak_cell(report, p),
                     error_cell(report, p), multicore_cell(agg, cpus, p, go_agg)])
    return rows


# ---------------------------------------------------------------------------------------
# The claims: data evaluated by claimkit
# ---------------------------------------------------------------------------------------

def _read_json(path):
    """A JSON file's document; ReportError naming the file when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"{path}: not valid JSON: {e}") from None


def load_claims(path):
    """The claims of a claim file; ReportError when it cannot be used."""
    try:
        return claimkit.validate(_read_json(path), path)
    except claimkit.SpecError as e:
        raise ReportError(str(e)) from None


def load_stress(path):
    """{"doc", "dir"} of an unbounded.json; ReportError when it cannot be used."""
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ReportError(f"{path}: not an unbounded.json (no \"runs\" list)")
    return {"doc": doc, "dir": os.path.dirname(os.path.abspath(path))}


def load_demos(path):
    """demos.json's document; ReportError when it cannot be used."""
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("demos"), list):
        raise ReportError(f"{path}: not a demos.json (no \"demos\" list)")
    return doc


def evaluate(claims, report, runs, src, stress=None, demos=None, go_runs=None):
    """Every claim, evaluated: [Verdict], one per claim (the first runtime that answers it,
    which is what a single-verdict reader shows)."""
    return [v for v, _a in evaluate_all(claims, report, runs, src, stress, demos, go_runs)]


def evaluate_all(claims, report, runs, src, stress=None, demos=None, go_runs=None):
    """[(Verdict shown first, [RuntimeVerdict])] per claim: every runtime that applies."""
    inputs = claimkit.Inputs(report, runs, src, stress, demos, go_runs)
    out = []
    for c in claims:
        answers = claimkit.evaluate_runtimes(c, inputs)
        first = claimkit.primary(answers)
        out.append((first.verdict if first else claimkit.evaluate_claim(c, inputs), answers))
    return out


# ---------------------------------------------------------------------------------------
# Per runtime: the summary's columns and where the runtimes disagree
# ---------------------------------------------------------------------------------------

def _config_name(report, rv):
    """The configuration a verdict is for, with the pool it ran under from the report
    ("lab cap, 32 connections per host"; "Go's default transport, no per-host bound")."""
    if not rv.configuration:
        return None
    scen = (report.lab or {}).get("scenarios") or {}
    named = [s for s in rv.scenarios.values()] or []
    for t, _r, _tv, _w in (rv.verdict.tests if rv.verdict else []):
        for s in _scenarios_of({"tests": [t]}):
            named.append(s)
    for name in named:
        sc = scen.get(name) or {}
        if sc.get("go_transport") == "default" and rv.runtime == runtimes.GO:
            return f"{rv.configuration} (no per-host bound)"
        if sc.get("max_conns_per_host") is not None:
            return f"{rv.configuration} ({sc['max_conns_per_host']} connections per host)"
    return rv.configuration


def answer_text(report, rv, md=True):
    """One runtime's answer as the summary prints it."""
    b = (lambda x: f"**{x}**") if md else (lambda x: x)
    if rv.status == claimkit.NOT_RUN:
        text = f"not run: {rv.reason}"
    elif rv.status == claimkit.POOLED:
        text = f"answered in the {runtimes.label(rv.pooled_with)} column ({rv.reason})"
    else:
        v = rv.verdict
        t, r, _tv, why = v.headline
        pre = v.verdict == claimkit.NOT_TESTABLE and v.claim.get("precondition") and v.reason
        word = b(v.verdict) + (f" ({v.reason})" if pre else "")
        if r is None:
            text = f"{word}: {why}"
        else:
            text = f"{word}: {claimkit.interval_text(r, t.get('unit'))}, {claimkit.rests_on(r)}"
            if r.where:
                text += f"; the cell shown: {r.where}"
    cfg = _config_name(report, rv)
    return f"{cfg}: {text}" if cfg else text


def runtime_columns(answers_per_claim):
    """The runtimes the summary has a column for: those any claim applies to, in order."""
    seen = {rv.runtime for answers in answers_per_claim for rv in answers}
    return sorted(seen, key=runtimes.rank)


def summary_rows(report, evaluated, columns):
    """One row per claim: the claim, the statistic, one answer per runtime, the precondition."""
    rows = []
    for i, (v, answers) in enumerate(evaluated):
        t = v.headline[0] if v.headline else {"label": "—"}
        row = [i + 1, v.statement, t["label"]]
        for rt in columns:
            mine = [rv for rv in answers if rv.runtime == rt]
            row.append("<br>".join(answer_text(report, rv) for rv in mine) if mine else "—")
        pre = claimkit.precondition_text(v.claim)
        row.append(pre)
        rows.append(row)
    return rows


# The figures a disagreement is explained by: (label, how to read it from the report, what
# it measures). Each is read for every runtime's exhibit in the claim's own cells.
def _median_of(report, scenario, pattern, fn):
    vals = []
    for c in report.select(scenario, pattern):
        for rep in c.reps:
            v = fn(rep)
            if v is not None:
                vals.append(v)
    return sorted(vals)[len(vals) // 2] if vals else None


def _div(a, b):
    return None if a is None or b in (None, 0) else a / b


def _num_or_none(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


CAUSES = [
    ("server requests per call", "transport retries",
     lambda e: _div(_num_or_none(e.get("server_requests")), _num_or_none(e.get("calls")))),
    ("OS threads peak", "thread cost", lambda e: _num_or_none(e.get("threads_peak"))),
    ("tasks in flight peak (census)", "tasks in flight", lambda e: _num_or_none(e.get("live_tasks_peak"))),
    ("goroutines peak", "goroutines", lambda e: _num_or_none(e.get("goroutines_peak"))),
    ("open connections peak at the busiest service", "connections held: a pool cap's bound, or none",
     lambda e: _num_or_none(e.get("server_max_open_connections"))),
    ("pool exhausted per orchestration", "pool cap",
     lambda e: _div(_num_or_none(e.get("pool_exhausted")), _num_or_none(e.get("iterations")))),
    ("pool wait p99 (ms)", "pool cap",
     lambda e: None if _num_or_none(e.get("pool_wait_p99_us")) is None else e["pool_wait_p99_us"] / 1000),
    ("client aborts per orchestration", "cancellation reaching the service",
     lambda e: _div(_num_or_none(e.get("server_client_aborts")), _num_or_none(e.get("iterations")))),
    ("tasks left at return per orchestration", "leaks",
     lambda e: _div(_num_or_none(e.get("leaked_tasks_at_return")), _num_or_none(e.get("iterations")))),
    ("throughput (orch/s)", "throughput", lambda e: _num_or_none(e.get("items_per_second"))),
]


def _exhibit_of(rv):
    """(scenario, pattern) of the exhibit a runtime's headline test is about (its a side)."""
    if rv.verdict is None or not rv.verdict.headline:
        return None
    st = rv.verdict.headline[0]["statistic"]
    side = st.get("a", st)
    if isinstance(side.get("scenario"), str) and isinstance(side.get("pattern"), str):
        return side["scenario"], side["pattern"]
    if st.get("kind") == "event_rate" and st.get("patterns"):
        return st.get("scenario"), st["patterns"][0]
    return None


def _transport(report, scenario, pattern):
    """The pool an exhibit ran with: the lab's cap per host, or Go's transport mode."""
    for c in report.select(scenario, pattern):
        for rep in c.reps:
            tr = rep.get("go_transport")
            if isinstance(tr, dict):
                return (f"Go transport {tr.get('mode')}, " + (f"{tr['max_conns_per_host']} connections per host"
                        if tr.get("max_conns_per_host") else "no per-host bound"))
    sc = ((report.lab or {}).get("scenarios") or {}).get(scenario) or {}
    if sc.get("go_transport") == "default" and report.runtime_of(pattern) == runtimes.GO:
        return "Go transport default, no per-host bound"
    cap = sc.get("max_conns_per_host")
    return f"{cap} connections per host" if cap is not None else None


def disagreements(report, evaluated):
    """One line per claim whose runtimes' verdicts differ, with the measured figures that
    differ between their exhibits (medians over repetitions, from the report)."""
    lines = []
    decided = (claimkit.SUPPORTED, claimkit.REFUTED, claimkit.INCONCLUSIVE)
    for i, (v, answers) in enumerate(evaluated):
        mine = [rv for rv in answers if rv.status == claimkit.EVALUATED and rv.verdict.verdict in decided]
        if len({rv.verdict.verdict for rv in mine}) < 2:
            continue
        sides = []
        for rv in mine:
            ex = _exhibit_of(rv)
            name = runtimes.label(rv.runtime) + (f" ({rv.configuration})" if rv.configuration else "")
            figs = {}
            if ex is not None and report is not None:
                for label, _what, fn in CAUSES:
                    figs[label] = _median_of(report, ex[0], ex[1], fn)
            sides.append((name, rv, ex, figs))
        verdicts_txt = "; ".join(f"{n}: {rv.verdict.verdict}" for n, rv, _e, _f in sides)
        # The figures that differ most between the runtimes' exhibits (a ratio of 1.25 or
        # more, or measured on one side and not the other), largest first.
        diffs = []
        for label, what, _fn in CAUSES:
            vals = [f.get(label) for _n, _rv, _e, f in sides]
            known = [x for x in vals if x is not None]
            if not known:
                continue
            lo, hi = min(known), max(known)
            if len(known) < len(vals):
                continue  # measured in one runtime only (pool figures, goroutines): no comparison
            if lo <= 0:
                score = 10.0 if hi > 0 else 0.0
            else:
                score = hi / lo
            if score >= 1.25:
                diffs.append((score, label, what, vals))
        diffs.sort(key=lambda d: -d[0])
        parts = []
        gor = [f.get("goroutines peak") for _n, _rv, _e, f in sides]
        if any(g is not None for g in gor) and any(f.get("OS threads peak") is not None for _n, _r, _e, f in sides):
            diffs.append((1.0, "goroutines peak", "a goroutine is not an OS thread", gor))
        for _score, label, what, vals in diffs[:5]:
            each = " vs ".join(f"{fmt.num(x) if x is not None else 'not measured'}" for x in vals)
            parts.append(f"{label} {each} ({what})")
        # An inconclusive side is an interval too wide to decide: say so before any figure.
        for n, rv, _e, _f in sides:
            if rv.verdict.verdict != claimkit.INCONCLUSIVE:
                continue
            t, r = next(((t, r) for t, r, tv, _w in rv.verdict.tests
                         if tv == claimkit.INCONCLUSIVE and r is not None), (None, None))
            if t is not None:
                parts.insert(0, f"{n} is inconclusive on the interval's width: "
                             f"{claimkit.interval_text(r, t.get('unit'))}, {claimkit.rests_on(r)}, "
                             f"reaches across the threshold {claimkit.fmt_number(t['threshold'], t.get('unit'))}")
        pools = [(_transport(report, e[0], e[1]) if e else None) for _n, _rv, e, _f in sides]
        if any(pools) and len(set(pools)) > 1:
            parts.append("pool: " + " vs ".join(p or "unknown" for p in pools))
        scens = {e[0] for _n, _rv, e, _f in sides if e and e[0]}
        who = " vs ".join((f"`{e[1]}`" + (f" in `{e[0]}`" if len(scens) > 1 and e[0] else "")) if e else n
                          for n, _rv, e, _f in sides)
        where = f" in `{next(iter(scens))}`" if len(scens) == 1 else ""
        cause = ("; ".join(parts) + " (medians over repetitions)") if parts else \
            "no figure of the report differs by 25 % or more between the exhibits"
        if all(e is None for _n, _rv, e, _f in sides):
            # Not a report experiment (microbenchmarks: micro.json against go_micro.json):
            # each runtime's own number is the measured difference.
            cause = "; ".join(f"{n} {claimkit.interval_text(rv.verdict.headline[1], rv.verdict.headline[0].get('unit'))}"
                              + (f" ({rv.verdict.headline[1].where})" if rv.verdict.headline[1] is not None
                                 and rv.verdict.headline[1].where else "")
                              for n, rv, _e, _f in sides if rv.verdict.headline)
            who, where = "each runtime's own benchmark", ""
        lines.append(f"- **{i + 1}. {v.statement}** {verdicts_txt}. Measured, {who}{where}: {cause}.")
    return lines


def _scenarios_of(claim):
    """The report scenarios a claim's tests read, in order of first use."""
    out = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("scenario"), str) and x["scenario"] not in out:
                out.append(x["scenario"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk([t["statistic"] for t in claim["tests"] + claim.get("context", [])])
    return out


def cells_text(report, claim):
    """The experiment's cells as the report ran them (so the numbers in the text come from
    the data): per scenario, fan-out, callers, the loop, deadline, pool, repetitions."""
    scen = (report.lab or {}).get("scenarios") or {}
    parts = []
    for name in _scenarios_of(claim):
        s = scen.get(name)
        if not isinstance(s, dict):
            continue
        loop = (f"open loop {fmt.num(s.get('rate'))}/s" if s.get("mode") == "open" else "closed loop")
        fan = ", ".join(str(v) for v in s.get("fanout") or [])
        conc = ", ".join(str(v) for v in s.get("concurrency") or [])
        bits = [f"fan-out {fan}", f"{conc} {'workers' if s.get('mode') == 'open' else 'callers'}", loop,
                f"deadline {fmt.num(s.get('deadline_ms'))} ms"]
        if s.get("max_conns_per_host") is not None:
            bits.append(f"{s['max_conns_per_host']} connections per host")
        if s.get("limit") is not None and any("bounded" in p for p in s.get("patterns") or []):
            bits.append(f"bounded-group limit {s['limit']}")
        bits.append(f"{s.get('repetitions')} repetitions of {fmt.num(s.get('duration_s'))} s")
        parts.append(f"`{name}`: " + ", ".join(bits))
    return "; ".join(parts)


def _verdict_line(v):
    """The verdict and what decided it; a combine-any claim says so here."""
    if v.claim.get("combine") == "any" and v.verdict != claimkit.NOT_TESTABLE:
        return (f"{v.verdict}, decided by any one of its tests (combine: any — supported when one test is, "
                f"refuted only when all are) — {v.reason}")
    return f"{v.verdict} — {v.reason}"


def render_md(report, micro_path, table, evaluated, claims_path, sources=()):
    """The Markdown document: the summary first, then the table, then rules and evidence."""
    verdicts = [v for v, _a in evaluated]
    columns = runtime_columns([a for _v, a in evaluated])
    ctx = report.context
    facts = [f"report `{report.path}`"]
    for k in ("date", "host_name", "usable_cpus", "git_sha", "build_type", "compiler"):
        if ctx.get(k) not in (None, ""):
            facts.append(f"{k} {ctx[k]}")
    if micro_path:
        rel = os.path.relpath(micro_path)
        facts.append(f"micro `{micro_path if rel.startswith('..') else rel}`")
    for label, path in sources:  # the other inputs read: demos.json, go_micro.json
        if path:
            rel = os.path.relpath(path)
            facts.append(f"{label} `{path if rel.startswith('..') else rel}`")
    facts.append(f"claims `{os.path.relpath(claims_path)}`")
    out = ["# The article's claims, measured", "", "Source: " + "; ".join(facts) + ".", ""]
    if ctx.get("interrupted"):
        out += ["> The run was interrupted: some cells are missing.", ""]
    if host_busy_line(ctx):
        out += [f"> {host_busy_line(ctx)}", ""]
    out += ["## Summary", "",
            "Each verdict is one of supported, refuted, inconclusive, not testable here. Supported or "
            "refuted only when the interval lies wholly on one side of the claim's threshold; the number "
            "is the estimate [interval] with the confidence the interval achieves at these repetitions "
            "(95 % asked; a sign-test interval over 6 repetitions is their range, 96.9 %); it rests on the "
            "independent units named (repetitions or runs), the orchestrations behind them are context. "
            "Each claim is answered per runtime with the same statistic, rule and interval method, on that "
            "runtime's exhibits (the Go exhibits for Go); \"not run\" says why a runtime has no answer, "
            "\"—\" that the claim does not apply to it.", "",
            fmt.md_table(["#", "claim", "statistic"] + [f"{runtimes.label(rt)}: verdict, the number [interval] "
                                                         "(confidence), rests on" for rt in columns]
                         + ["precondition"], summary_rows(report, evaluated, columns)), ""]
    out += ["### Where the runtimes disagree", ""]
    dis = disagreements(report, evaluated)
    out += (dis or ["No claim has different verdicts in two runtimes (a runtime that was not run is not a "
                    "disagreement)."]) + [""]
    out += ["## The comparison table", "",
            fmt.md_table(["pattern", "runtime", "Cancellation", "Leak risk", "Error propagation", "Multi-core safe"],
                         table),
            ""]
    micro_line = micro_build_line(micro_context(micro_path)) if micro_path else None
    if micro_line:
        out += [f"> {micro_line}", ""]
    out += ["How each column is decided:", ""]
    out += [f"- **{name}**: {rule}" for name, rule in TABLE_RULES]
    out += ["", "## Claims: rules and evidence", "", claimkit.__doc__.strip().split("\n\n", 1)[1].strip(), ""]
    for i, v in enumerate(verdicts):
        out += [f"### {i + 1}. {v.statement} — **{v.verdict}**", ""]
        if v.claim.get("experiment"):
            out += [f"*Experiment:* {v.claim['experiment']}.", ""]
        cells = cells_text(report, v.claim)
        if cells:
            out += [f"*Cells, as run:* {cells}.", ""]
        decides = v.verdict != claimkit.NOT_TESTABLE or not v.claim.get("precondition")
        head = "*Tests (they decide):*" if decides else \
            "*Tests (computed and shown; they do not decide, the claim is not testable here):*"
        out += [f"*Verdict:* {_verdict_line(v)}.", "", head, ""]
        for t, r, tv, why in v.tests:
            if decides:
                outcome = f"→ **{tv}**" + ("" if r is not None else f" ({why})")
            else:
                outcome = (f"→ would be {tv} on this evidence; does not decide ({v.reason})" if r is not None
                           else f"→ {tv} ({why})")
            out.append(f"- {t['label']}: {claimkit.interval_text(r, t.get('unit'))}, rests on {claimkit.rests_on(r)}; "
                       f"rule: {claimkit.rule_text(t)} {outcome}")
            if r is not None:
                out += [f"  - {d}" for d in r.detail]
                if r.note and r.low is not None and r.method != "demonstration":
                    out.append(f"  - {r.note}")
        others = [rv for rv in evaluated[i][1] if rv.verdict is not v]
        if others:
            out += ["", "*In each runtime:*", ""]
            for rv in others:
                name = runtimes.label(rv.runtime) + (f", {_config_name(report, rv)}" if rv.configuration else "")
                if rv.status != claimkit.EVALUATED:
                    out.append(f"- {name}: {answer_text(report, rv)}")
                    continue
                out.append(f"- {name}: **{rv.verdict.verdict}** — {rv.verdict.reason}")
                for t, r, tv, why in rv.verdict.tests:
                    out.append(f"  - {t['label']}: {claimkit.interval_text(r, t.get('unit'))}, rests on "
                               f"{claimkit.rests_on(r)} → {tv}" + ("" if r is not None else f" ({why})"))
                for lab, why in rv.skipped:
                    out.append(f"  - {lab}: not read in this runtime ({why})")
        if v.context:
            out += ["", "*Beside it (shown, not deciding):*", ""]
            for t, r, _tv, why in v.context:
                out.append(f"- {t['label']}: {claimkit.interval_text(r, t.get('unit')) if r is not None else why}"
                           + (f", rests on {claimkit.rests_on(r)}" if r is not None else ""))
        out.append("")
    return "\n".join(out)


def fail(message):
    """Print a one-line error and exit 2."""
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    """Entry point; returns the exit code."""
    args = create_parser().parse_args(argv)
    if args.micro is None and not args.no_micro:
        args.micro = micro_beside(args.report)
        if args.micro:
            print(f"{PROG}: using {args.micro} (found next to the report)", file=sys.stderr)
    for attr, name in (("unbounded", "unbounded.json"), ("demos", "demos.json"), ("go_micro", "go_micro.json")):
        if getattr(args, attr) is None:
            beside = os.path.join(os.path.dirname(os.path.abspath(args.report)), name)
            setattr(args, attr, beside if os.path.isfile(beside) else None)
    try:
        report = load_report(args.report)
        runs = load_micro(args.micro) if args.micro else None
        stress = load_stress(args.unbounded) if args.unbounded else None
        demos = load_demos(args.demos) if args.demos else None
        go_runs = load_micro(args.go_micro) if args.go_micro else None
    except ReportError as e:
        fail(str(e))
    try:
        claims = load_claims(args.claims)
    except ReportError as e:
        fail(str(e))
    src = args.source or ROOT
    table = comparison_table(report, runs, go_runs)
    evaluated = evaluate_all(claims, report, runs, src, stress, demos, go_runs)
    if args.format == "json":
        doc = {"report": report.path, "micro": args.micro, "go_micro": args.go_micro, "unbounded": args.unbounded,
               "demos": args.demos,
               "claims_file": args.claims,
               "table": [dict(zip(["pattern", "runtime", "cancellation", "leak_risk", "error_propagation",
                                   "multicore_safe"],
                                  [r[0].strip("`")] + r[1:])) for r in table],
               "runtimes": runtime_columns([a for _v, a in evaluated]),
               "claims": [{**v.as_dict(), "runtimes": [rv.as_dict() for rv in answers]}
                          for v, answers in evaluated],
               "disagreements": disagreements(report, evaluated)}
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(render_md(report, args.micro, table, evaluated, args.claims,
                                   sources=[("go micro", args.go_micro), ("demos", args.demos)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
