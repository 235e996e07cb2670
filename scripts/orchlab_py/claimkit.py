"""The claims engine: claims are data (scenarios/claims/article.claims.json), this module
turns each into a verdict with its estimate, 95 % interval, repetitions and rule.

A claim holds one or more tests; a test is a statistic, a threshold and a direction.
The verdict of a test:

- above t: **supported** when the interval lies wholly above t (low > t), **refuted**
  when it lies wholly at or below t (high <= t), **inconclusive** otherwise;
- below t: **supported** when high < t, **refuted** when low >= t, **inconclusive**
  otherwise.

No interval (too few repetitions) is inconclusive, never a verdict from a point. A claim
is refuted when any of its tests is, supported when all are, not testable here when a
precondition fails or its experiment is missing from the inputs, inconclusive otherwise.
"""

import glob
import json
import math
import os
import re

from . import stats

SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "refuted", "inconclusive", "not testable here"
VERDICTS = (SUPPORTED, REFUTED, INCONCLUSIVE, NOT_TESTABLE)
LEVEL = 0.95


class NotTestable(Exception):
    """A precondition of the statistic does not hold; the message names it."""


class SpecError(Exception):
    """A claim file that cannot be used; the message names the claim and the field."""


class Result:
    """A statistic's estimate and interval, what it rests on, and lines of detail."""

    def __init__(self, estimate, low, high, method, repetitions, samples=None, note="", detail=None):
        self.estimate, self.low, self.high, self.method = estimate, low, high, method
        self.repetitions, self.samples, self.note = repetitions, samples, note
        self.detail = detail or []
        self.parts = None  # per-cell results of an "every cell" statistic
        self.where = None  # the cell the headline number comes from, when there are several

    def as_dict(self):
        return {"estimate": self.estimate, "interval": [self.low, self.high], "level": LEVEL, "where": self.where,
                "method": self.method, "repetitions": self.repetitions, "samples": self.samples,
                "note": self.note}


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------

class Inputs:
    """What the statistics read: the report, the micro runs, the source tree, the host."""

    def __init__(self, report, runs, source_root, stress=None):
        self.report, self.runs, self.source_root = report, runs, source_root
        self.stress = stress  # {"doc": unbounded.json, "dir": its folder} (scripts/unbounded.sh)

    def cells(self, scenario, pattern):
        cells = self.report.select(scenario, pattern) if self.report else []
        if not cells:
            why = "no report" if self.report is None else \
                f"the report has no feasible `{scenario}` cell of {pattern} (make bench runs every claim experiment)"
            infeasible = self.report.select(scenario, pattern, feasible=False) if self.report else []
            infeasible = [c for c in infeasible if c.infeasible]
            if infeasible:
                why = f"`{scenario}` {pattern} was not run: {infeasible[0].infeasible}"
            raise NotTestable(why)
        return cells

    def usable_cpus(self):
        ctx = self.report.context if self.report else {}
        v = ctx.get("usable_cpus")
        return v if isinstance(v, int) and v > 0 else None


def _rep_values(inputs, cells, spec):
    """[(repetition_index, value)] of spec["metric"] over `cells` (divided by the
    repetition's orchestrations when spec["per"] is "orchestration", times spec["scale"]);
    the orchestrations behind them. A null value is NotTestable, with the harness's reason."""
    per_orch = spec.get("per") == "orchestration"
    out, orch = [], 0
    for cell in cells:
        for rep in cell.reps:
            v, n = rep.get(spec["metric"]), rep.get("iterations")
            if v is None or isinstance(v, bool):
                raise NotTestable(f"`{spec['scenario']}` {spec['pattern']}: {spec['metric']} is null"
                                  + _null_reason(inputs, spec["metric"]))
            if per_orch:
                if not n:
                    continue
                v = v / n
            out.append((rep.get("repetition_index", len(out)), float(v) * spec.get("scale", 1.0)))
            orch += n or 0
    if not out:
        raise NotTestable(f"`{spec['scenario']}` {spec['pattern']}: no repetition ran an orchestration")
    return out, orch


def _reps(inputs, spec):
    """Per-repetition values over every matching cell (each repetition of each cell is one
    observation); the orchestrations behind them."""
    vals, orch = _rep_values(inputs, inputs.cells(spec["scenario"], spec["pattern"]), spec)
    return [v for _i, v in vals], orch


def _null_reason(inputs, metric):
    notes = (inputs.report.lab or {}).get("notes") or [] if inputs.report else []
    for n in notes:  # the harness's note on why (e.g. a service without /__stats)
        if isinstance(n, str) and (metric in n or (metric.startswith("server_") and "server_*" in n)):
            return f" ({n})"
    return ""


# ---------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------

def _mean_ci(vals, orch, label):
    ci = stats.bootstrap_ci([vals], lambda x: stats.mean(x), level=LEVEL)
    note = ci.note if ci.low is None or len(vals) < 5 else ""
    return Result(ci.estimate, ci.low, ci.high, "mean over repetitions, percentile bootstrap",
                  [len(vals)], orch, note, [f"{label}: per repetition " + ", ".join(_g(v) for v in vals)])


def stat_value(inputs, spec):
    """The metric's mean over repetitions, bootstrap interval."""
    vals, orch = _reps(inputs, spec)
    return _mean_ci(vals, orch, f"{spec['pattern']} {spec['metric']}")


def stat_per_orchestration(inputs, spec):
    """A counter per orchestration, mean over repetitions, bootstrap interval."""
    vals, orch = _reps(inputs, {**spec, "per": "orchestration"})
    return _mean_ci(vals, orch, f"{spec['pattern']} {spec['metric']} per orchestration")


def _by_repetition(inputs, spec):
    """{repetition_index: value} of one single-cell side (paired designs)."""
    cells = inputs.cells(spec["scenario"], spec["pattern"])
    if len(cells) != 1:
        raise NotTestable(f"a paired difference needs one `{spec['scenario']}` cell of {spec['pattern']}, "
                          f"found {len(cells)}")
    vals, orch = _rep_values(inputs, cells, spec)
    return dict(vals), orch


def stat_difference(inputs, spec):
    """a - b. Unpaired: Hodges-Lehmann shift with its distribution-free interval. Paired
    ("paired": true, repetition i of a against repetition i of b, which met the same seeded
    fault sequence): the mean of the per-repetition differences, percentile bootstrap."""
    if spec.get("paired"):
        a, na = _by_repetition(inputs, spec["a"])
        b, nb = _by_repetition(inputs, spec["b"])
        common = sorted(set(a) & set(b))
        if not common:
            raise NotTestable("no repetition index common to both sides")
        diffs = [a[i] - b[i] for i in common]
        r = _mean_ci(diffs, na + nb, "a - b")
        r.method = "mean of paired differences (same repetition index), percentile bootstrap"
        r.detail = [f"a = {_label(spec['a'])}: " + ", ".join(_g(a[i]) for i in common),
                    f"b = {_label(spec['b'])}: " + ", ".join(_g(b[i]) for i in common),
                    "a - b by repetition: " + ", ".join(_g(d) for d in diffs)]
        return r
    a, na = _reps(inputs, spec["a"])
    b, nb = _reps(inputs, spec["b"])
    hl = stats.hodges_lehmann(b, a, level=LEVEL)
    return Result(hl.estimate, hl.low, hl.high, "Hodges-Lehmann shift a - b", [len(a), len(b)], na + nb,
                  hl.note, [f"a = {_label(spec['a'])}: " + ", ".join(_g(v) for v in a),
                            f"b = {_label(spec['b'])}: " + ", ".join(_g(v) for v in b)])


def stat_ratio(inputs, spec):
    """a / b: Hodges-Lehmann ratio (on logs) with its interval; values must be > 0."""
    a, na = _reps(inputs, spec["a"])
    b, nb = _reps(inputs, spec["b"])
    floor = spec.get("floor")
    if floor is not None:  # e.g. 1 ms: a ratio of two zeros says nothing
        a, b = [max(v, floor) for v in a], [max(v, floor) for v in b]
    if any(v <= 0 for v in a + b):
        raise NotTestable("a ratio needs values above 0 (set a floor)")
    hl = stats.hodges_lehmann_ratio(b, a, level=LEVEL)
    return Result(hl.estimate, hl.low, hl.high, "Hodges-Lehmann ratio a / b", [len(a), len(b)], na + nb,
                  hl.note, [f"a = {_label(spec['a'])}: " + ", ".join(_g(v) for v in a),
                            f"b = {_label(spec['b'])}: " + ", ".join(_g(v) for v in b)])


def stat_metric_ratio(inputs, spec):
    """numerator / denominator within each repetition of one cell, mean over repetitions."""
    num, orch = _reps(inputs, {**spec, "metric": spec["numerator"]})
    den, _ = _reps(inputs, {**spec, "metric": spec["denominator"]})
    for extra in spec.get("denominator_plus", []):  # e.g. threads_baseline: all the process's threads
        more, _ = _reps(inputs, {**spec, "metric": extra})
        den = [d + m for d, m in zip(den, more)]
    if any(d <= 0 for d in den):
        raise NotTestable(f"{spec['denominator']} is 0 in a repetition")
    vals = [n / d for n, d in zip(num, den)]
    r = _mean_ci(vals, orch, f"{spec['pattern']} {spec['numerator']} / {spec['denominator']}")
    r.detail.append(f"{spec['numerator']}: " + ", ".join(_g(v) for v in num) + f"; {spec['denominator']}: "
                    + ", ".join(_g(v) for v in den))
    return r


def stat_proportion(inputs, spec):
    """Pooled successes / trials over the cells' repetitions, Wilson score interval."""
    succ = trials = 0
    reps = 0
    for cell in inputs.cells(spec["scenario"], spec["pattern"]):
        for rep in cell.reps:
            s, t = rep.get(spec["success"]), rep.get(spec.get("trials", "iterations"))
            if s is None or t is None:
                raise NotTestable(f"`{spec['scenario']}` {spec['pattern']}: {spec['success']} is null")
            succ, trials, reps = succ + s, trials + t, reps + 1
    if not trials:
        raise NotTestable(f"`{spec['scenario']}` {spec['pattern']}: no trial ran")
    succ = min(succ, trials)
    ci = stats.wilson_interval(int(succ), int(trials), level=LEVEL)
    return Result(ci.estimate, ci.low, ci.high, "pooled proportion, Wilson score", [reps], int(trials), "",
                  [f"{spec['pattern']}: {int(succ)} {spec['success']} of {int(trials)}"])


def stat_event_rate(inputs, spec):
    """Events per call over every feasible cell of the listed patterns (all scenarios unless
    one is named), pooled, Wilson score interval: for invariants such as "no orphans"."""
    report = inputs.report
    if report is None:
        raise NotTestable("no report")
    events = trials = reps = 0
    per = []
    for p in spec["patterns"]:
        cells = report.select(spec.get("scenario"), p)
        e_p = 0
        for cell in cells:
            for rep in cell.reps:
                vals = [rep.get(m) for m in spec["events"]]
                if any(v is None for v in vals):
                    raise NotTestable(f"{cell.key.name}: one of {', '.join(spec['events'])} is null")
                e_p += sum(vals)
                trials += (rep.get("iterations") or 0) * cell.key.fanout
                reps += 1
        events += e_p
        per.append(f"{p}: {_g(e_p)} in {len(cells)} cells")
    if not trials:
        raise NotTestable("no feasible cell of " + ", ".join(spec["patterns"]))
    ci = stats.wilson_interval(int(min(events, trials)), int(trials), level=LEVEL)
    return Result(ci.estimate, ci.low, ci.high, "events per call, Wilson score", [reps], int(trials), "",
                  [" + ".join(spec["events"]) + " — " + "; ".join(per)])


def stress_run(inputs, pattern, concurrency):
    """(run entry, its report's first iteration entry) of scripts/unbounded.sh; NotTestable
    when there is no such run, or it died before writing a report (the reason says how)."""
    if not inputs.stress:
        raise NotTestable("needs the stress run (unbounded.json of scripts/unbounded.sh, which make bench runs)")
    runs = [r for r in inputs.stress["doc"].get("runs", [])
            if r.get("pattern") == pattern and r.get("concurrency") == concurrency]
    if not runs:
        raise NotTestable(f"unbounded.json has no run of {pattern} at {concurrency} callers")
    run = runs[0]
    if not run.get("report"):
        raise NotTestable(f"the {pattern} run at {concurrency} callers died before its report: {run.get('died')}")
    with open(os.path.join(inputs.stress["dir"], run["report"]), encoding="utf-8") as f:
        doc = json.load(f)
    reps = [b for b in doc.get("benchmarks", []) if b.get("run_type", "iteration") == "iteration"]
    if not reps:
        raise NotTestable(f"the {pattern} run at {concurrency} callers has no measured repetition")
    return run, reps[0], doc


def stat_stress_proportion(inputs, spec):
    """In the stress run of a pattern at some callers: successes / trials of its report
    (e.g. orchestrations_threw / iterations), Wilson score; the limits and how the first
    failure came beside it."""
    run, rep, doc = stress_run(inputs, spec["pattern"], spec["concurrency"])
    s, t = rep.get(spec["success"]), rep.get(spec.get("trials", "iterations"))
    if s is None or not t:
        raise NotTestable(f"the {spec['pattern']} stress run at {spec['concurrency']} callers ran no orchestration "
                          "inside its window")
    ci = stats.wilson_interval(int(min(s, t)), int(t), level=LEVEL)
    lim = inputs.stress["doc"].get("limits", {})
    detail = [f"{spec['pattern']}, {spec['concurrency']} callers x 1000 calls under an address space of "
              f"{lim.get('address_space_mb')} MiB (RLIMIT_AS), {lim.get('nproc')} processes (RLIMIT_NPROC"
              + (", not binding for root" if lim.get("as_root") else "") + f"), a {lim.get('watchdog_s')} s watchdog: "
              f"{int(s)} {spec['success']} of {int(t)}; exit {run.get('exit')}, {run.get('wall_s', 0):.1f} s"]
    first = rep.get("first_throw_ms")
    if first is not None:
        why = [n for n in (doc.get("lab") or {}).get("notes", []) if isinstance(n, str) and "threw" in n]
        detail.append(f"first failure {first:.0f} ms into the window"
                      + (f": {why[0].rsplit('window: ', 1)[-1]}" if why else ""))
    detail.append(f"threads peak {rep.get('threads_peak')}, RSS peak {rep.get('rss_peak_kb')} KiB, "
                  f"complete {rep.get('complete')}, timed out {rep.get('timed_out')}")
    return Result(ci.estimate, ci.low, ci.high, "proportion, Wilson score", [1], int(t), "", detail)


# --- microbenchmarks ----------------------------------------------------------------------

_AGG = re.compile(r"^BM_Aggregate/(?P<s>[^/]+)/work_ns:(?P<w>\d+)/threads:(?P<t>\d+)")


def aggregate_runs(runs):
    """{(strategy, work_ns, threads): [items/s per repetition]} of BM_Aggregate."""
    out = {}
    for name, entries in (runs or {}).items():
        m = _AGG.match(name)
        if not m:
            continue
        vals = [float(e["items_per_second"]) for e in entries if isinstance(e.get("items_per_second"), (int, float))]
        if vals:
            out[(m["s"], int(m["w"]), int(m["t"]))] = vals
    return out


def _micro(inputs):
    agg = aggregate_runs(inputs.runs)
    if not agg:
        raise NotTestable("needs the microbenchmarks (micro.json with BM_Aggregate/<strategy>/work_ns:W/threads:T)")
    return agg


def contention_share(agg, strategy, baseline, work_ns, threads, seed=20240601):
    """1 - R(T)/R(1), R = strategy's throughput / baseline's, bootstrap over repetitions
    of the four series; None when a series is missing."""
    keys = [(strategy, work_ns, threads), (baseline, work_ns, threads), (strategy, work_ns, 1), (baseline, work_ns, 1)]
    if any(k not in agg for k in keys):
        return None
    samples = [agg[k] for k in keys]

    def share(st, bt, s1, b1):
        r1 = stats.mean(s1) / stats.mean(b1)
        return 1.0 - (stats.mean(st) / stats.mean(bt)) / r1

    ci = stats.bootstrap_ci(samples, share, level=LEVEL, seed=seed)
    return Result(ci.estimate, ci.low, ci.high, "1 - R(T)/R(1), percentile bootstrap over repetitions",
                  [len(s) for s in samples], None, ci.note if ci.low is None else "")


def stat_micro_contention(inputs, spec):
    """The contention share of a strategy against a baseline at T = the most threads run
    (the usable cores), at one work size."""
    agg = _micro(inputs)
    w = spec.get("work_ns", 0)
    threads = sorted({t for (s, ww, t) in agg if s == spec["strategy"] and ww == w})
    if not threads:
        raise NotTestable(f"no BM_Aggregate/{spec['strategy']}/work_ns:{w} runs")
    t = threads[-1]
    if t < 2:
        raise NotTestable("the microbenchmark ran on 1 thread only (1 usable core): no contention to measure")
    r = contention_share(agg, spec["strategy"], spec["baseline"], w, t)
    if r is None:
        raise NotTestable(f"needs {spec['baseline']} beside {spec['strategy']} at 1 and {t} threads")
    r.detail = [f"{spec['strategy']} vs {spec['baseline']}, work {w} ns, {t} threads against 1"]
    for ww in sorted({ww for (s, ww, tt) in agg if s == spec["strategy"]}):
        o = contention_share(agg, spec["strategy"], spec["baseline"], ww, t)
        if o is not None:
            r.detail.append(f"work {ww} ns: {_pct(o.estimate)} [{_pct(o.low)}, {_pct(o.high)}]")
    return r


def stat_micro_advantage(inputs, spec):
    """In every (work, threads) cell: the best of `strategies` over the best of `others`
    (items/s), Hodges-Lehmann ratio over repetitions. The test applies to every cell."""
    agg = _micro(inputs)
    cells = sorted({(w, t) for (s, w, t) in agg})
    parts = []
    for w, t in cells:
        mine = [agg[(s, w, t)] for s in spec["strategies"] if (s, w, t) in agg]
        theirs = [(s, agg[(s, w, t)]) for s in spec["others"] if (s, w, t) in agg]
        if not mine or not theirs:
            continue
        best_mine = max(mine, key=stats.median)
        rival, best_theirs = max(theirs, key=lambda x: stats.median(x[1]))
        hl = stats.hodges_lehmann_ratio(best_theirs, best_mine, level=LEVEL)
        r = Result(hl.estimate, hl.low, hl.high, "Hodges-Lehmann ratio", [len(best_mine), len(best_theirs)],
                   None, hl.note)
        r.cell = f"work {w} ns, {t} thread{'s' if t > 1 else ''} (vs {rival})"
        parts.append(r)
    if not parts:
        raise NotTestable("needs BM_Aggregate runs of " + ", ".join(spec["strategies"]) + " and of the others")
    worst = min(parts, key=lambda r: r.estimate)
    res = Result(worst.estimate, worst.low, worst.high, "Hodges-Lehmann ratio per cell; the worst cell shown",
                 worst.repetitions, None, worst.note)
    res.parts = parts
    res.detail = [f"{p.cell}: {_g(p.estimate)} [{_g(p.low)}, {_g(p.high)}]" for p in parts]
    return res


# --- source ----------------------------------------------------------------------------

def code_lines(path):
    """Lines that are code: not blank, not comments, not #include, not a lone brace."""
    text = open(path, encoding="utf-8", errors="replace").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = [ln.strip() for ln in text.splitlines()]
    return sum(1 for ln in lines if ln and not ln.startswith("//") and not ln.startswith("#include")
               and ln not in ("{", "}", "};"))


def use_site_lines(path, begin, end):
    """Code lines between the line matching `begin` and the next line matching `end`."""
    text = open(path, encoding="utf-8", errors="replace").read().splitlines()
    out, inside = [], False
    for ln in text:
        if not inside and re.search(begin, ln):
            inside = True
        if inside:
            out.append(ln)
            if re.search(end, ln) and len(out) > 1:
                break
    if not inside:
        return None
    body = "\n".join(out)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return sum(1 for ln in (x.strip() for x in body.splitlines())
               if ln and not ln.startswith("//") and ln not in ("{", "}", "};"))


def stat_source_lines(inputs, spec):
    """A line count: exact, so the interval is the count itself."""
    root = inputs.source_root
    found = sorted(glob.glob(os.path.join(root, spec["path"])))
    if not found:
        raise NotTestable(f"no {spec['path']} under {root}")
    path = found[0]
    n = use_site_lines(path, spec["begin"], spec["end"]) if "begin" in spec else code_lines(path)
    if n is None:
        raise NotTestable(f"{spec['path']}: no line matches {spec['begin']!r}")
    detail = [f"{os.path.relpath(path, root)}: {n} code lines"
              + (f" from /{spec['begin']}/ to /{spec['end']}/" if "begin" in spec else "")]
    for m in spec.get("machinery", []):
        files = sorted(glob.glob(os.path.join(root, m)))
        if files:
            total = sum(code_lines(f) for f in files)
            detail.append(f"machinery it rests on, {m}: {total} code lines in {len(files)} file(s)")
    return Result(float(n), float(n), float(n), "exact count", [1], None, "", detail)


STATISTICS = {
    "value": stat_value,
    "per_orchestration": stat_per_orchestration,
    "difference": stat_difference,
    "ratio": stat_ratio,
    "metric_ratio": stat_metric_ratio,
    "proportion": stat_proportion,
    "event_rate": stat_event_rate,
    "micro_contention": stat_micro_contention,
    "micro_advantage": stat_micro_advantage,
    "source_lines": stat_source_lines,
    "stress_proportion": stat_stress_proportion,
}


# ---------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------

def decide(low, high, threshold, direction):
    """The verdict of one interval against one threshold (module docstring)."""
    if low is None or high is None:
        return INCONCLUSIVE
    if direction == "above":
        if low > threshold:
            return SUPPORTED
        if high <= threshold:
            return REFUTED
        return INCONCLUSIVE
    if high < threshold:
        return SUPPORTED
    if low >= threshold:
        return REFUTED
    return INCONCLUSIVE


def combine(verdicts, how="all"):
    """Claim verdict from its tests' verdicts. "all" (the claim asserts every test): any
    refuted, else all supported, else any not testable, else inconclusive. "any" (the claim
    holds when one test does): any supported, else all refuted, else as "all"."""
    if how == "any":
        if SUPPORTED in verdicts:
            return SUPPORTED
        if verdicts and all(v == REFUTED for v in verdicts):
            return REFUTED
        return NOT_TESTABLE if NOT_TESTABLE in verdicts else INCONCLUSIVE
    if REFUTED in verdicts:
        return REFUTED
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if NOT_TESTABLE in verdicts:
        return NOT_TESTABLE
    return INCONCLUSIVE


def rule_text(test):
    """The rule of a test, in words."""
    t, d, u = test["threshold"], test["direction"], test.get("unit", "")
    ts = fmt_number(t, u)
    every = "in every cell, " if test["statistic"]["kind"] == "micro_advantage" else ""
    if d == "above":
        return (f"{every}supported when the 95 % interval lies above {ts}, refuted when it lies at or below "
                f"{ts}" + (" in some cell" if every else "") + ", inconclusive otherwise")
    return (f"{every}supported when the 95 % interval lies below {ts}, refuted when it lies at or above {ts}"
            + (" in some cell" if every else "") + ", inconclusive otherwise")


class Verdict:
    """One claim evaluated."""

    def __init__(self, claim):
        self.claim = claim
        self.id, self.statement = claim["id"], claim["claim"]
        self.verdict, self.reason = NOT_TESTABLE, ""
        self.tests = []  # (test spec, Result or None, verdict, reason): decide the verdict
        self.context = []  # the same, shown beside the verdict, not part of it

    @property
    def headline(self):
        """The first test: the claim's one number."""
        return self.tests[0] if self.tests else None

    def as_dict(self):
        head = self.headline
        out = {"id": self.id, "claim": self.statement, "verdict": self.verdict, "reason": self.reason,
               "experiment": self.claim.get("experiment"), "precondition": self.claim.get("precondition"),
               "rule": "; ".join(f"{t['label']}: {rule_text(t)}" for t, _r, _v, _w in self.tests)
               + ". " + (COMBINE_ANY if self.claim.get("combine") == "any" else COMBINE_RULE),
               }
        for key, group in (("tests", self.tests), ("context", self.context)):
            out[key] = [self._test_dict(x) for x in group]
        if head is not None:
            t, r, _v, _w = head
            out["statistic"] = {"name": t["label"], "unit": t.get("unit"), "threshold": t["threshold"],
                                "direction": t["direction"],
                                "estimate": None if r is None else r.estimate,
                                "interval": [None, None] if r is None else [r.low, r.high]}
        out["evidence"] = [line for _t, r, _v, _w in self.tests + self.context if r is not None
                           for line in r.detail]
        return out

    @staticmethod
    def _test_dict(x):
        t, r, v, why = x
        d = {"label": t["label"], "unit": t.get("unit"), "threshold": t["threshold"],
             "direction": t["direction"], "verdict": v, "reason": why}
        if r is not None:
            d.update(r.as_dict())
            d["detail"] = r.detail
            if r.parts is not None:
                d["cells"] = [{"cell": p.cell, **p.as_dict()} for p in r.parts]
        return d


COMBINE_ANY = ("The claim is supported when any test is, refuted when every test is, not testable here when "
               "a precondition or an experiment is missing, inconclusive otherwise")
COMBINE_RULE = ("The claim is refuted when any test is, supported when every test is, not testable here "
                "when a precondition or an experiment is missing, inconclusive otherwise")


def precondition_text(claim):
    """The claim's preconditions in words, or "—"."""
    pre = claim.get("precondition") or {}
    out = []
    if pre.get("usable_cpus"):
        out.append(f"≥ {pre['usable_cpus']} usable cores")
    return ", ".join(out) or "—"


def check_precondition(claim, inputs):
    """None, or the reason the claim cannot be tested on this host or with these inputs."""
    pre = claim.get("precondition") or {}
    need = pre.get("usable_cpus")
    if need:
        have = inputs.usable_cpus()
        if have is None:
            return f"needs >= {need} usable cores; the report does not record usable_cpus"
        if have < need:
            return f"needs >= {need} usable cores; this host has {have} (CPU affinity mask)"
    return None


def evaluate_claim(claim, inputs):
    """A Verdict for one claim."""
    v = Verdict(claim)
    why_not = check_precondition(claim, inputs)
    v.tests = [_run_test(t, inputs) for t in claim["tests"]]
    v.context = [_run_test(t, inputs) for t in claim.get("context", [])]
    if why_not:
        v.verdict, v.reason = NOT_TESTABLE, why_not
        return v
    v.verdict = combine([tv for _t, _r, tv, _w in v.tests], claim.get("combine", "all"))
    decisive = [(t, w) for t, _r, tv, w in v.tests if tv == v.verdict] or [(t, w) for t, _r, _tv, w in v.tests]
    v.reason = "; ".join(f"{t['label']}: {w}" for t, w in decisive)
    return v


def _run_test(test, inputs):
    """(test, Result or None, verdict, why) of one test."""
    if True:
        fn = STATISTICS[test["statistic"]["kind"]]
        try:
            r = fn(inputs, test["statistic"])
        except NotTestable as e:
            return test, None, NOT_TESTABLE, str(e)
        if r.parts is not None:
            verdicts = [decide(p.low, p.high, test["threshold"], test["direction"]) for p in r.parts]
            tv = REFUTED if REFUTED in verdicts else SUPPORTED if all(x == SUPPORTED for x in verdicts) \
                else INCONCLUSIVE
            # The headline number is the cell that decided: the clearest refutation, else the
            # least clear of the rest.
            sign = 1 if test["direction"] == "above" else -1
            pool = [p for p, x in zip(r.parts, verdicts) if x == tv] or r.parts
            if tv == REFUTED:
                head = min(pool, key=lambda p: sign * (p.high if p.high is not None else p.estimate))
            else:
                head = min(pool, key=lambda p: sign * (p.low if p.low is not None else p.estimate))
            r.estimate, r.low, r.high, r.repetitions, r.note = head.estimate, head.low, head.high, \
                head.repetitions, head.note
            r.method = f"Hodges-Lehmann ratio per cell; shown: {head.cell}"
            r.where = head.cell
            bad = [p.cell for p, x in zip(r.parts, verdicts) if x == (REFUTED if tv == REFUTED else INCONCLUSIVE)]
            why = f"{len(verdicts)} cells: " + ", ".join(f"{verdicts.count(x)} {x}" for x in VERDICTS[:3]
                                                         if verdicts.count(x))
            if bad and tv != SUPPORTED:
                why += f"; {tv} in " + "; ".join(bad[:3]) + (" …" if len(bad) > 3 else "")
        else:
            tv = decide(r.low, r.high, test["threshold"], test["direction"])
            unit = test.get("unit")
            why = (f"{fmt_number(r.estimate, unit)} [{fmt_number(r.low, unit)}, {fmt_number(r.high, unit)}]"
                   if r.low is not None else
                   f"{fmt_number(r.estimate, unit)}, no interval: {r.note or 'too few repetitions'}")
        return test, r, tv, why


# ---------------------------------------------------------------------------------------
# Claim files
# ---------------------------------------------------------------------------------------

_TEST_KEYS = {"label", "statistic", "threshold", "direction", "unit"}
_CLAIM_KEYS = {"id", "claim", "experiment", "precondition", "tests", "combine", "context", "comment"}


def validate(doc, where):
    """The claims of a parsed claim file; SpecError naming the claim and field otherwise."""
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise SpecError(f"{where}: needs an object with a \"claims\" list")
    seen = set()
    for i, c in enumerate(doc["claims"]):
        at = f"{where}: claims[{i}]"
        if not isinstance(c, dict):
            raise SpecError(f"{at}: must be an object")
        extra = set(c) - _CLAIM_KEYS
        if extra:
            raise SpecError(f"{at}: unknown field {sorted(extra)[0]!r}")
        for k in ("id", "claim", "tests"):
            if k not in c:
                raise SpecError(f"{at}: {k} is required")
        if c["id"] in seen:
            raise SpecError(f"{at}: id {c['id']!r} repeats")
        seen.add(c["id"])
        if not isinstance(c["tests"], list) or not c["tests"]:
            raise SpecError(f"{at} ({c['id']}): tests must be a non-empty list")
        if c.get("combine", "all") not in ("all", "any"):
            raise SpecError(f"{at} ({c['id']}).combine: must be \"all\" or \"any\", got {c['combine']!r}")
        if not isinstance(c.get("context", []), list):
            raise SpecError(f"{at} ({c['id']}): context must be a list")
        for j, t in [(j, t) for j, t in enumerate(c["tests"])] + \
                [(f"context {j}", t) for j, t in enumerate(c.get("context", []))]:
            tat = f"{at} ({c['id']}).tests[{j}]"
            if not isinstance(t, dict):
                raise SpecError(f"{tat}: must be an object")
            extra = set(t) - _TEST_KEYS
            if extra:
                raise SpecError(f"{tat}: unknown field {sorted(extra)[0]!r}")
            for k in ("label", "statistic", "threshold", "direction"):
                if k not in t:
                    raise SpecError(f"{tat}: {k} is required")
            if t["direction"] not in ("above", "below"):
                raise SpecError(f"{tat}.direction: must be \"above\" or \"below\", got {t['direction']!r}")
            if isinstance(t["threshold"], bool) or not isinstance(t["threshold"], (int, float)) \
                    or not math.isfinite(t["threshold"]):
                raise SpecError(f"{tat}.threshold: must be a number")
            kind = t["statistic"].get("kind") if isinstance(t["statistic"], dict) else None
            if kind not in STATISTICS:
                raise SpecError(f"{tat}.statistic.kind: must be one of {', '.join(sorted(STATISTICS))}, got {kind!r}")
    return doc["claims"]


# ---------------------------------------------------------------------------------------

def _g(v):
    if v is None:
        return "null"
    if isinstance(v, float) and (v == 0 or 0.001 <= abs(v) < 1e6):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _pct(v):
    return "null" if v is None else f"{100.0 * v:.1f} %"


def _label(spec):
    per = " per orchestration" if spec.get("per") == "orchestration" else ""
    return f"{spec['pattern']} {spec['metric']}{per} in `{spec['scenario']}`"


def fmt_number(v, unit):
    """A number with its unit, for the summary."""
    if v is None:
        return "null"
    if unit == "%":
        return _pct(v)
    return f"{_g(float(v))}{(' ' + unit) if unit else ''}"
