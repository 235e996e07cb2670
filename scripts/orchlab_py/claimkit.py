"""The claims engine: claims are data (scenarios/claims/article.claims.json), this module
turns each into a verdict with its estimate, interval, the confidence that interval
achieves, what it rests on and the rule.

A claim holds one or more tests; a test is a statistic, a threshold and a direction.
The verdict of a test:

- above t: **supported** when the interval lies wholly above t (low > t), **refuted**
  when it lies wholly at or below t (high <= t), **inconclusive** otherwise;
- below t: **supported** when high < t, **refuted** when low >= t, **inconclusive**
  otherwise.

No interval (too few repetitions) is inconclusive, never a verdict from a point. A claim
is not testable here when a precondition fails or its experiment is missing from the
inputs; a test of such a claim is still computed and shown, and decides nothing.
Otherwise, by the claim's `combine`: **all** (the default: the claim asserts every test)
is refuted when any test is, supported when all are, inconclusive otherwise; **any** (the
claim holds when one of its tests does) is supported when any test is, refuted when all
are, inconclusive otherwise.

The intervals, each checked by simulation (scripts/tests/test_coverage.py) to cover at
least the confidence printed beside it at the sample sizes the lab uses:

- over the repetitions of one cell (or over paired repetitions, or independent stress
  runs): the median, with the sign test's order-statistic interval, distribution-free;
  its confidence is printed as achieved (6 repetitions: the range, 96.9 %; 5: 93.8 %);
- two cells' repetitions against each other: the Hodges-Lehmann shift or ratio with its
  exact distribution-free interval (5 vs 5: 96.8 %);
- a share of independent repetitions: Clopper-Pearson (at least 95 %);
- a percentile read from a histogram is widened by the histogram's resolution, said
  beside it as "resolution ±x".

A demonstration (a Go program that does what the claim says, scripts/demos.py) has no
interval: its statistic is 1 when the program did it (panicked; the race detector
reported) and 0 when it ran to its end without, read once from demos.json.
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
    """A statistic's estimate and interval, the confidence the interval achieves, what it
    rests on (the independent units: repetitions, or runs), and lines of detail. `samples`
    (orchestrations or calls behind the units) is context, not what the interval rests on.
    `resolution`: the readings' resolution the interval was widened by (histogram
    percentiles), in the value's units, or ("relative", r) for ratios; None otherwise."""

    def __init__(self, estimate, low, high, method, repetitions, samples=None, note="", detail=None,
                 confidence=None, resolution=None, unit_of_n="repetitions", samples_of="orchestrations"):
        self.estimate, self.low, self.high, self.method = estimate, low, high, method
        self.repetitions, self.samples, self.note = repetitions, samples, note
        self.confidence = confidence if low is not None else None
        self.resolution, self.unit_of_n, self.samples_of = resolution, unit_of_n, samples_of
        self.detail = detail or []
        self.parts = None  # per-cell results of an "every cell" statistic
        self.where = None  # the cell the headline number comes from, when there are several

    def as_dict(self):
        res = self.resolution
        return {"estimate": self.estimate, "interval": [self.low, self.high], "level": LEVEL,
                "confidence": self.confidence, "where": self.where,
                "resolution": (None if res is None else {"relative": res[1]} if isinstance(res, tuple)
                               else {"absolute": res}),
                "method": self.method, "repetitions": self.repetitions, "unit_of_n": self.unit_of_n,
                "samples": self.samples, "samples_of": self.samples_of, "note": self.note}


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------

class Inputs:
    """What the statistics read: the report, the micro runs, the source tree, the host."""

    def __init__(self, report, runs, source_root, stress=None, demos=None, go_runs=None):
        self.report, self.runs, self.source_root = report, runs, source_root
        self.go_runs = go_runs  # go_micro.json of scripts/go_micro.py (BM_Aggregate's Go twin), as runs
        self.stress = stress  # {"doc": unbounded.json, "dir": its folder} (scripts/unbounded.sh)
        self.demos = demos  # demos.json of scripts/demos.py (the Go demonstrations)

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

# A percentile read from one of the lab's histograms (128 linear sub-buckets per power of
# two, patterns/include/orchlab/histogram.hpp) is within 1/256 of its value of the sample
# percentile: that is the reading's resolution, and no interval of such readings is
# narrower than it.
_PERCENTILE_METRIC = re.compile(r"(^|_)p\d+_(us|ms|ns)$")
HISTOGRAM_RESOLUTION = 1.0 / 256.0
# Units of the metrics by their name's suffix, and what a scale turns them into.
_SUFFIX_UNITS = {"_ns": "ns", "_us": "µs", "_ms": "ms", "_s": "s", "_kb": "KiB"}
_SCALED = {("ns", 1e-3): "µs", ("ns", 1e-6): "ms", ("µs", 1e-3): "ms", ("µs", 1e-6): "s", ("ms", 1e-3): "s",
           ("s", 1e3): "ms", ("ms", 1e3): "µs", ("KiB", 1.0 / 1024): "MiB"}


def is_histogram_percentile(metric):
    """True for a metric that is a percentile read from a histogram (p99_us, ...)."""
    return bool(_PERCENTILE_METRIC.search(metric or ""))


def metric_name(spec, metric=None):
    """A metric as shown: its name without the unit suffix, with the unit of the value shown
    (after spec["scale"]) in parentheses, and "per orchestration" when divided."""
    m = metric or spec["metric"]
    unit = None
    for suf, u in _SUFFIX_UNITS.items():
        if m.endswith(suf):
            m, unit = m[: -len(suf)], u
            break
    scale = spec.get("scale", 1.0)
    if unit and scale != 1.0:
        unit = next((v for (u, sc), v in _SCALED.items() if u == unit and math.isclose(sc, scale)),
                    f"{unit} x {scale:g}")
    elif scale != 1.0:
        unit = f"x {scale:g}"
    per = " per orchestration" if spec.get("per") == "orchestration" else ""
    return f"{m}{per}" + (f" ({unit})" if unit else "")


def _resolution(spec, values):
    """The resolution of the values shown (their own units) when spec's metric is a
    histogram percentile, else None."""
    if not is_histogram_percentile(spec.get("metric")):
        return None
    return max((abs(v) * HISTOGRAM_RESOLUTION for v in values), default=0.0)


def _median_ci(vals, orch, label, resolution=None):
    """Median over independent repetitions, sign-test interval (stats.median_interval);
    widened by the readings' resolution when they are histogram percentiles."""
    mi = stats.median_interval(vals, level=LEVEL)
    low, high = mi.low, mi.high
    if resolution and low is not None:
        low, high = low - resolution, high + resolution
    return Result(mi.estimate, low, high, "median over repetitions, sign-test interval (distribution-free)",
                  [len(vals)], orch, mi.note, [f"{label}: per repetition " + ", ".join(_g(v) for v in vals)],
                  confidence=mi.confidence, resolution=resolution)


def share_interval(successes, trials):
    """The share in a typical repetition (or run): the median of the per-unit shares
    successes[i] / trials[i], with the wider of two intervals: the sign-test interval of
    those shares (it holds when the units differ: clustering) and the pooled
    Clopper-Pearson interval (it holds when a unit has few trials, e.g. 4 orchestrations,
    so that every unit reads 100 % while the truth is 98 %). test_coverage.py simulates it
    on clustered binomial data (4 to 300 trials per unit, intra-unit correlation 0 to 0.3)."""
    shares = [s / t for s, t in zip(successes, trials) if t]
    mi = stats.median_interval(shares, level=LEVEL)
    cp = stats.clopper_pearson(int(sum(successes)), int(sum(trials)), level=LEVEL)
    if mi.low is None:
        return mi.estimate, None, None, None, mi.note
    return mi.estimate, min(mi.low, cp.low), max(mi.high, cp.high), mi.confidence, mi.note


def stat_value(inputs, spec):
    """The metric's median over repetitions, sign-test interval."""
    vals, orch = _reps(inputs, spec)
    return _median_ci(vals, orch, f"{spec['pattern']} {metric_name(spec)}", _resolution(spec, vals))


def stat_per_orchestration(inputs, spec):
    """A counter per orchestration, median over repetitions, sign-test interval."""
    spec = {**spec, "per": "orchestration"}
    vals, orch = _reps(inputs, spec)
    return _median_ci(vals, orch, f"{spec['pattern']} {metric_name(spec)}")


def _by_repetition(inputs, spec):
    """{repetition_index: value} of one single-cell side (paired designs)."""
    cells = inputs.cells(spec["scenario"], spec["pattern"])
    if len(cells) != 1:
        raise NotTestable(f"a paired difference needs one `{spec['scenario']}` cell of {spec['pattern']}, "
                          f"found {len(cells)}")
    vals, orch = _rep_values(inputs, cells, spec)
    return dict(vals), orch


def _both_resolution(spec, a, b):
    ra, rb = _resolution(spec["a"], a), _resolution(spec["b"], b)
    if ra is None and rb is None:
        return None
    return (ra or 0.0) + (rb or 0.0)


def stat_difference(inputs, spec):
    """a - b. Unpaired: Hodges-Lehmann shift with its distribution-free interval. Paired
    ("paired": true, repetition i of a against repetition i of b, which met the same seeded
    fault sequence): the median of the per-repetition differences, sign-test interval."""
    if spec.get("paired"):
        a, na = _by_repetition(inputs, spec["a"])
        b, nb = _by_repetition(inputs, spec["b"])
        common = sorted(set(a) & set(b))
        if not common:
            raise NotTestable("no repetition index common to both sides")
        diffs = [a[i] - b[i] for i in common]
        res = _both_resolution(spec, [a[i] for i in common], [b[i] for i in common])
        r = _median_ci(diffs, na + nb, "a - b", res)
        r.method = "median of paired differences (same repetition index), sign-test interval"
        r.detail = [f"a = {_label(spec['a'])}: " + ", ".join(_g(a[i]) for i in common),
                    f"b = {_label(spec['b'])}: " + ", ".join(_g(b[i]) for i in common),
                    "a - b by repetition: " + ", ".join(_g(d) for d in diffs)]
        return r
    a, na = _reps(inputs, spec["a"])
    b, nb = _reps(inputs, spec["b"])
    hl = stats.hodges_lehmann(b, a, level=LEVEL)
    res = _both_resolution(spec, a, b)
    low, high = hl.low, hl.high
    if res and low is not None:
        low, high = low - res, high + res
    return Result(hl.estimate, low, high, "Hodges-Lehmann shift a - b", [len(a), len(b)], na + nb,
                  hl.note, [f"a = {_label(spec['a'])}: " + ", ".join(_g(v) for v in a),
                            f"b = {_label(spec['b'])}: " + ", ".join(_g(v) for v in b)],
                  confidence=hl.confidence, resolution=res)


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
    low, high = hl.low, hl.high
    res = None
    if is_histogram_percentile(spec["a"]["metric"]) or is_histogram_percentile(spec["b"]["metric"]):
        res = 2 * HISTOGRAM_RESOLUTION  # relative: each side's reading within 1/256
        if low is not None:
            low, high = low * (1 - res), high * (1 + res)
    return Result(hl.estimate, low, high, "Hodges-Lehmann ratio a / b", [len(a), len(b)], na + nb,
                  hl.note, [f"a = {_label(spec['a'])}: " + ", ".join(_g(v) for v in a),
                            f"b = {_label(spec['b'])}: " + ", ".join(_g(v) for v in b)],
                  confidence=hl.confidence, resolution=None if res is None else ("relative", res))


def stat_metric_ratio(inputs, spec):
    """numerator / denominator within each repetition of one cell, median over repetitions."""
    num, orch = _reps(inputs, {**spec, "metric": spec["numerator"]})
    den, _ = _reps(inputs, {**spec, "metric": spec["denominator"]})
    for extra in spec.get("denominator_plus", []):  # e.g. threads_baseline: all the process's threads
        more, _ = _reps(inputs, {**spec, "metric": extra})
        den = [d + m for d, m in zip(den, more)]
    if any(d <= 0 for d in den):
        raise NotTestable(f"{spec['denominator']} is 0 in a repetition")
    vals = [n / d for n, d in zip(num, den)]
    r = _median_ci(vals, orch, f"{spec['pattern']} {spec['numerator']} / {spec['denominator']}")
    r.detail.append(f"{spec['numerator']}: " + ", ".join(_g(v) for v in num) + f"; {spec['denominator']}: "
                    + ", ".join(_g(v) for v in den))
    return r


def stat_proportion(inputs, spec):
    """successes / trials in a typical repetition (orchestrations of one repetition are not
    independent: they share the pool, the services and the schedule): share_interval over
    the repetitions; the pooled count beside it."""
    succ, trials = [], []
    for cell in inputs.cells(spec["scenario"], spec["pattern"]):
        for rep in cell.reps:
            s, t = rep.get(spec["success"]), rep.get(spec.get("trials", "iterations"))
            if s is None or t is None:
                raise NotTestable(f"`{spec['scenario']}` {spec['pattern']}: {spec['success']} is null")
            if not t:
                continue
            succ.append(min(s, t))
            trials.append(t)
    if not trials:
        raise NotTestable(f"`{spec['scenario']}` {spec['pattern']}: no trial ran")
    est, low, high, conf, note = share_interval(succ, trials)
    return Result(est, low, high, "median over repetitions of each repetition's share; the wider of its sign-test "
                  "interval and the pooled Clopper-Pearson", [len(trials)], int(sum(trials)), note,
                  [f"{spec['pattern']} {spec['success']} share per repetition: "
                   + ", ".join(_pct(a / b) for a, b in zip(succ, trials)),
                   f"pooled: {int(sum(succ))} {spec['success']} of {int(sum(trials))}"], confidence=conf)


def stat_event_rate(inputs, spec):
    """The share of repetitions with at least one event, over every feasible cell of the
    listed patterns (all scenarios unless one is named): repetitions are the independent
    units (the calls of one repetition are not), Clopper-Pearson interval. For invariants
    such as "no orphans"; the pooled events per call beside it."""
    report = inputs.report
    if report is None:
        raise NotTestable("no report")
    events = calls = reps = hit = 0
    per = []
    for p in spec["patterns"]:
        cells = report.select(spec.get("scenario"), p)
        e_p = 0
        for cell in cells:
            for rep in cell.reps:
                vals = [rep.get(m) for m in spec["events"]]
                if any(v is None for v in vals):
                    raise NotTestable(f"{cell.key.name}: one of {', '.join(spec['events'])} is null")
                if not rep.get("iterations"):
                    continue
                e_p += sum(vals)
                hit += 1 if sum(vals) > 0 else 0
                calls += rep["iterations"] * cell.key.fanout
                reps += 1
        events += e_p
        per.append(f"{p}: {_g(e_p)} in {len(cells)} cells")
    if not reps:
        raise NotTestable("no feasible cell of " + ", ".join(spec["patterns"]))
    ci = stats.clopper_pearson(hit, reps, level=LEVEL)
    return Result(ci.estimate, ci.low, ci.high, "share of repetitions with an event, Clopper-Pearson", [reps],
                  int(calls), "", [f"{hit} of {reps} repetitions had one; " + " + ".join(spec["events"]) + " — "
                                   + "; ".join(per) + f"; pooled {_g(float(events))} in {int(calls):,} calls"],
                  confidence=LEVEL, samples_of="calls")


def stress_runs(inputs, pattern, concurrency):
    """[(run entry, its report's first iteration entry, its report)] of every run of
    scripts/unbounded.sh of a pattern at some callers that wrote a report, and the runs
    that died before one; NotTestable when there is no such run or none wrote a report."""
    if not inputs.stress:
        raise NotTestable("needs the stress run (unbounded.json of scripts/unbounded.sh, which make bench runs)")
    runs = [r for r in inputs.stress["doc"].get("runs", [])
            if r.get("pattern") == pattern and r.get("concurrency") == concurrency]
    if not runs:
        raise NotTestable(f"unbounded.json has no run of {pattern} at {concurrency} callers")
    done, died = [], []
    for run in runs:
        if not run.get("report"):
            died.append(run)
            continue
        with open(os.path.join(inputs.stress["dir"], run["report"]), encoding="utf-8") as f:
            doc = json.load(f)
        reps = [b for b in doc.get("benchmarks", []) if b.get("run_type", "iteration") == "iteration"]
        if reps:
            done.append((run, reps[0], doc))
        else:
            died.append({**run, "died": "no measured repetition"})
    if not done:
        run = died[0]
        raise NotTestable(f"the {pattern} run at {concurrency} callers died before its report: {run.get('died')}")
    return done, died


def stat_stress_proportion(inputs, spec):
    """In the stress runs of a pattern at some callers: successes / trials of each run's
    report (e.g. orchestrations_threw / iterations); the orchestrations of one run share
    one process and fail together, so the runs are the independent units: median of the
    per-run shares, sign-test interval. The limits and how the first failure came beside it."""
    done, died = stress_runs(inputs, spec["pattern"], spec["concurrency"])
    shares, ss, ts = [], [], []
    for _run, rep, _doc in done:
        s, t = rep.get(spec["success"]), rep.get(spec.get("trials", "iterations"))
        if s is None or not t:
            continue
        s = min(s, t)
        shares.append(s / t)
        ss.append(s)
        ts.append(t)
    if not shares:
        raise NotTestable(f"the {spec['pattern']} stress runs at {spec['concurrency']} callers ran no orchestration "
                          "inside their window")
    succ, trials = sum(ss), sum(ts)
    est, low, high, conf, note = share_interval(ss, ts)
    lim = inputs.stress["doc"].get("limits", {})
    run, rep, doc = done[0]
    detail = [f"{spec['pattern']}, {spec['concurrency']} callers x 1000 calls under an address space of "
              f"{lim.get('address_space_mb')} MiB (RLIMIT_AS), {lim.get('nproc')} processes (RLIMIT_NPROC"
              + (", not binding for root" if lim.get("as_root") else "") + f"), a {lim.get('watchdog_s')} s watchdog, "
              f"{len(done) + len(died)} independent run(s): {spec['success']} share per run "
              + ", ".join(_pct(v) for v in shares) + f"; pooled {int(succ)} of {int(trials)}"]
    if died:
        detail.append(f"{len(died)} run(s) died before a report: " + "; ".join(str(d.get("died")) for d in died))
    first = rep.get("first_throw_ms")
    if first is not None:
        why = [n for n in (doc.get("lab") or {}).get("notes", []) if isinstance(n, str) and "threw" in n]
        detail.append(f"first failure {first:.0f} ms into the first run's window"
                      + (f": {why[0].rsplit('window: ', 1)[-1]}" if why else ""))
    completes = [r.get("complete") for _x, r, _d in done]
    timed = [r.get("timed_out") for _x, r, _d in done]
    iters = [r.get("iterations") for _x, r, _d in done]
    detail.append("per run: complete " + ", ".join(_g(v) for v in completes) + "; timed out "
                  + ", ".join(_g(v) for v in timed) + " of " + ", ".join(_g(v) for v in iters)
                  + f" orchestrations; threads peak {rep.get('threads_peak')}, RSS peak {rep.get('rss_peak_kb')} KiB "
                  "(first run)")
    return Result(est, low, high, "median over independent runs of each run's share; the wider of its sign-test "
                  "interval and the pooled Clopper-Pearson", [len(shares)], int(trials), note, detail,
                  confidence=conf, unit_of_n="runs")


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


# Where a micro statistic reads its runs: micro.json (orchlab-micro, C++ threads) or, with
# "source": "go_micro" (a runtime entry's "micro"), go_micro.json (the testing.B twin, whose
# threads are GOMAXPROCS).
MICRO_SOURCES = ("micro", "go_micro")


def _micro(inputs, spec=None):
    if (spec or {}).get("source") == "go_micro":
        agg = aggregate_runs(inputs.go_runs)
        if not agg:
            raise NotTestable("needs the Go twin of BM_Aggregate (go_micro.json of scripts/go_micro.py, which make "
                              "bench writes beside the report)")
        return agg
    agg = aggregate_runs(inputs.runs)
    if not agg:
        raise NotTestable("needs the microbenchmarks (micro.json with BM_Aggregate/<strategy>/work_ns:W/threads:T)")
    return agg


def _micro_what(spec):
    return "go_micro.json, testing.B at GOMAXPROCS T" if spec.get("source") == "go_micro" else "micro.json"


def contention_share(agg, strategy, baseline, work_ns, threads):
    """1 - R(T)/R(1), R = strategy's throughput / baseline's. Each repetition i gives
    r_T,i = strategy_T,i / baseline_T,i and r_1,i likewise at 1 thread (repetitions of
    different benchmarks are independent, so pairing them by index is one arbitrary
    pairing); R(T)/R(1) is the Hodges-Lehmann ratio of the r_T against the r_1, with its
    distribution-free interval. None when a series is missing."""
    keys = [(strategy, work_ns, threads), (baseline, work_ns, threads), (strategy, work_ns, 1), (baseline, work_ns, 1)]
    if any(k not in agg for k in keys):
        return None
    st, bt, s1, b1 = [agg[k] for k in keys]
    rt = [a / b for a, b in zip(st, bt) if b > 0]
    r1 = [a / b for a, b in zip(s1, b1) if b > 0]
    if not rt or not r1 or any(v <= 0 for v in rt + r1):
        return None
    hl = stats.hodges_lehmann_ratio(r1, rt, level=LEVEL)
    low, high = (None, None) if hl.low is None else (1.0 - hl.high, 1.0 - hl.low)
    return Result(1.0 - hl.estimate, low, high, "1 - R(T)/R(1), Hodges-Lehmann ratio of per-repetition ratios",
                  [len(rt), len(r1)], None, hl.note if hl.low is None else "", confidence=hl.confidence)


def stat_micro_contention(inputs, spec):
    """The contention share of a strategy against a baseline at T = the most threads run
    (the usable cores), at one work size."""
    agg = _micro(inputs, spec)
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
    r.detail = [f"{spec['strategy']} vs {spec['baseline']}, work {w} ns, {t} threads against 1 ({_micro_what(spec)})"]
    for ww in sorted({ww for (s, ww, tt) in agg if s == spec["strategy"]}):
        o = contention_share(agg, spec["strategy"], spec["baseline"], ww, t)
        if o is not None:
            r.detail.append(f"work {ww} ns: {_pct(o.estimate)} [{_pct(o.low)}, {_pct(o.high)}]")
    return r


def stat_micro_advantage(inputs, spec):
    """In every (work, threads) cell: the best of `strategies` over the best of `others`
    (items/s), Hodges-Lehmann ratio over repetitions. The test applies to every cell."""
    agg = _micro(inputs, spec)
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
                   None, hl.note, confidence=hl.confidence)
        r.cell = f"work {w} ns, {t} thread{'s' if t > 1 else ''} (vs {rival})"
        parts.append(r)
    if not parts:
        raise NotTestable("needs BM_Aggregate runs of " + ", ".join(spec["strategies"]) + " and of the others")
    worst = min(parts, key=lambda r: r.estimate)
    res = Result(worst.estimate, worst.low, worst.high, "Hodges-Lehmann ratio per cell; the worst cell shown",
                 worst.repetitions, None, worst.note, confidence=worst.confidence)
    res.parts = parts
    res.detail = [f"{p.cell}: {_g(p.estimate)} [{_g(p.low)}, {_g(p.high)}]" for p in parts] + \
        [f"from {_micro_what(spec)}"]
    return res


# --- demonstrations -----------------------------------------------------------------------

# What a demonstration's observation is called when it happened and when it did not.
_OBSERVED = {"panicked": ("panicked", "ran to its end without a panic"),
             "race_reported": ("the race detector reported a race", "the race detector reported nothing")}


def stat_demonstration(inputs, spec):
    """What one Go demonstration did (demos.json of scripts/demos.py): 1 when it did what
    the claim says (spec["observe"]: "panicked", "race_reported"), 0 when it ran to its
    end without; one run, no interval (the value is the observation). NotTestable when
    demos.json is missing, has no such demonstration, or it was not built or not run."""
    if spec.get("observe") not in _OBSERVED:
        raise NotTestable(f"a demonstration observes one of {', '.join(_OBSERVED)}, not {spec.get('observe')!r}")
    if not inputs.demos:
        raise NotTestable("needs demos.json (scripts/demos.py builds and runs the Go demonstrations; make bench "
                          "writes it beside the report)")
    entry = next((d for d in inputs.demos.get("demos") or [] if isinstance(d, dict) and d.get("id") == spec["demo"]),
                 None)
    if entry is None:
        raise NotTestable(f"demos.json has no demonstration `{spec['demo']}`")
    if not entry.get("built"):
        raise NotTestable(f"`{spec['demo']}` could not be built: {entry.get('build_error') or 'no reason given'}")
    if entry.get("timed_out"):
        raise NotTestable(f"`{spec['demo']}` did not end within its timeout")
    if entry.get("exit_status") is None and entry.get("signal") is None:
        raise NotTestable(f"`{spec['demo']}` was not run")
    happened = entry.get(spec["observe"])
    if happened is None:
        raise NotTestable(f"`{spec['demo']}` ran without the race detector: its observation is not known"
                          if spec["observe"] == "race_reported" else f"`{spec['demo']}`: {spec['observe']} is null")
    status = f"exit {entry['exit_status']}" if entry.get("exit_status") is not None else f"signal {entry['signal']}"
    yes, no = _OBSERVED[spec["observe"]]
    if happened and spec["observe"] == "panicked":
        said = f"{yes}: {entry.get('panic')}"
    elif happened:
        acc = [a[:1].lower() + a[1:] if i else a for i, a in enumerate(entry.get("race_accesses") or [])]
        said = f"{yes} ({'; '.join(acc) or entry.get('race_report')})"
    else:
        said = no
    said += f" ({status})"
    v = 1.0 if happened else 0.0
    detail = [f"{entry.get('program')}: `{entry.get('build_command')}`, then `{entry.get('command')}`, "
              f"{entry.get('go_version') or 'Go version unknown'}: {said}"]
    if entry.get("fatal_error"):
        detail.append(f"fatal error: {entry['fatal_error']}")
    r = Result(v, v, v, "demonstration", [1], None, said, detail, confidence=1.0, unit_of_n="runs")
    r.command = entry.get("command")
    r.go_version = entry.get("go_version")
    return r


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
    return Result(float(n), float(n), float(n), "exact count", [1], None, "", detail, confidence=1.0)


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
    "demonstration": stat_demonstration,
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
    if test["statistic"]["kind"] == "demonstration":
        yes, no = _OBSERVED.get(test["statistic"].get("observe"), ("it did", "it did not"))
        return (f"one run of the program: supported when {yes} (1), refuted when {no} (0); not testable when "
                "it could not be built or run")
    ts = fmt_number(t, u)
    every = "in every cell, " if test["statistic"]["kind"] == "micro_advantage" else ""
    if d == "above":
        return (f"{every}supported when the interval lies above {ts}, refuted when it lies at or below "
                f"{ts}" + (" in some cell" if every else "") + ", inconclusive otherwise")
    return (f"{every}supported when the interval lies below {ts}, refuted when it lies at or above {ts}"
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
                                "interval": [None, None] if r is None else [r.low, r.high],
                                "confidence": None if r is None else r.confidence,
                                "rests_on": rests_on(r)}
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
            r.confidence = head.confidence
            r.method = f"Hodges-Lehmann ratio per cell; shown: {head.cell}"
            r.where = head.cell
            bad = [p.cell for p, x in zip(r.parts, verdicts) if x == (REFUTED if tv == REFUTED else INCONCLUSIVE)]
            why = f"{len(verdicts)} cells: " + ", ".join(f"{verdicts.count(x)} {x}" for x in VERDICTS[:3]
                                                         if verdicts.count(x))
            if bad and tv != SUPPORTED:
                why += f"; {tv} in " + "; ".join(bad[:3]) + (" …" if len(bad) > 3 else "")
        else:
            tv = decide(r.low, r.high, test["threshold"], test["direction"])
            why = interval_text(r, test.get("unit"))
        return test, r, tv, why


# ---------------------------------------------------------------------------------------
# Claim files
# ---------------------------------------------------------------------------------------

_TEST_KEYS = {"label", "statistic", "threshold", "direction", "unit"}
_CLAIM_KEYS = {"id", "claim", "experiment", "precondition", "tests", "combine", "context", "comment", "runtimes"}


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
        _validate_runtimes(c, at)
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
    return f"{spec['pattern']} {metric_name(spec)} in `{spec['scenario']}`"


def fmt_resolution(r, unit):
    """"resolution ±x" of a Result widened by its readings' resolution, or ""."""
    res = r.resolution
    if res is None:
        return ""
    if isinstance(res, tuple):
        return f"resolution ±{100 * res[1]:.2g} %"
    return f"resolution ±{_pct(res) if unit == '%' else fmt_number(res, unit)}"


def interval_text(r, unit):
    """The estimate, its interval and the confidence that interval achieves, e.g.
    "1.06 s [0.917 s, 1.19 s] (96.9 % interval; resolution ±0.36 ms)"."""
    if r is None:
        return "null"
    est = fmt_number(r.estimate, unit)
    if r.method == "exact count":
        return f"{est} (exact count)"
    if r.method == "demonstration":
        return r.note
    if r.low is None:
        return f"{est} (no interval: {r.note or 'too few repetitions'})"
    extra = [f"{100 * r.confidence:.1f} % interval" if r.confidence is not None else "interval"]
    res = fmt_resolution(r, unit)
    if res:
        extra.append(res)
    return f"{est} [{fmt_number(r.low, unit)}, {fmt_number(r.high, unit)}] ({'; '.join(extra)})"


def rests_on(r):
    """What an interval rests on: its independent units; the orchestrations (or calls)
    behind them as context."""
    if r is None:
        return "—"
    if r.method == "exact count":
        return "an exact count"
    if r.method == "demonstration":
        return f"one run of `{getattr(r, 'command', None) or 'the program'}`" + \
            (f" ({r.go_version})" if getattr(r, "go_version", None) else "")
    n = " vs ".join(str(n) for n in r.repetitions)
    single = all(x == 1 for x in r.repetitions)
    unit = r.unit_of_n if not single else r.unit_of_n.rstrip("s")
    out = f"{n} {unit}"
    if r.samples:
        out += f" ({int(r.samples):,} {r.samples_of} behind them)"
    return out


def fmt_number(v, unit):
    """A number with its unit, for the summary."""
    if v is None:
        return "null"
    if unit == "%":
        return _pct(v)
    return f"{_g(float(v))}{(' ' + unit) if unit else ''}"


# ---------------------------------------------------------------------------------------
# Runtimes: every claim answered per runtime that has its experiment
# ---------------------------------------------------------------------------------------
#
# A claim's optional "runtimes" object names, per runtime (cpp-thread, cpp-asio, go), the
# exhibits its tests are about in that runtime. The tests, their rule and their statistic
# are the claim's own: a runtime only renames what they read, so every runtime is answered
# with the same rule and the same interval method.
#
#   "runtimes": {
#     "cpp-thread": {},                                   the tests as written
#     "cpp-asio":   {"patterns": {"cancellable-group": "async-group"}},
#     "go":         {"patterns": {"channel-soup": "go-channel-soup", "cancellable-group": "go-errgroup"},
#                    "skip": {"<test label>": "why that test cannot be read in this runtime"},
#                    "configurations": [{"name": "lab cap"},
#                                       {"name": "Go's default transport",
#                                        "scenarios": {"claim-one-hangs-open": "claim-one-hangs-open-go-default"}}]},
#   }
#
# - "patterns": a pattern the tests name -> this runtime's exhibit (null: left out of a
#   "patterns" list, e.g. event_rate); "scenarios" likewise for scenarios;
# - "skip": tests (and context lines) that do not apply, by label, with the reason shown;
# - "configurations": several evaluations of the runtime (each a name and its own
#   "scenarios"); "configuration": the name of the one evaluation otherwise;
# - "not_run": the runtime has no experiment for this claim, and why;
# - "pooled_with": another runtime's evaluation covers this one's exhibits too (one
#   experiment over both), e.g. the C++ groups of claim 6;
# - "micro": where the micro statistics read their runs in this runtime: "go_micro" for
#   go_micro.json, BM_Aggregate's testing.B twin (claims 5 and 9 in Go).
# A runtime absent from the object does not apply to the claim. A claim without "runtimes"
# is answered once, for the runtime of the first exhibit its tests name.

from . import runtimes as _rt  # noqa: E402

EVALUATED, NOT_RUN, POOLED = "evaluated", "not run", "pooled"
_RUNTIME_ENTRY_KEYS = {"patterns", "scenarios", "skip", "configurations", "configuration", "not_run", "pooled_with",
                       "comment", "micro"}


def _patterns_named(x, out):
    if isinstance(x, dict):
        if isinstance(x.get("pattern"), str):
            out.append(x["pattern"])
        if isinstance(x.get("patterns"), list):
            out.extend(p for p in x["patterns"] if isinstance(p, str))
        for v in x.values():
            _patterns_named(v, out)
    elif isinstance(x, list):
        for v in x:
            _patterns_named(v, out)
    return out


def runtime_entries(claim):
    """[(runtime, entry)] of a claim in runtimes.RUNTIMES order."""
    rts = claim.get("runtimes")
    if not rts:
        named = _patterns_named([t["statistic"] for t in claim["tests"]], [])
        return [(_rt.runtime_of_pattern(named[0]) if named else _rt.CPP_THREAD, {})]
    return sorted(rts.items(), key=lambda kv: _rt.rank(kv[0]))


def _rename(spec, patterns, scenarios, micro=None):
    """A statistic spec with its patterns and scenarios renamed (recursively: a, b sides),
    and a micro statistic pointed at `micro`'s runs when given."""
    if isinstance(spec, list):
        return [_rename(v, patterns, scenarios, micro) for v in spec]
    if not isinstance(spec, dict):
        return spec
    out = {}
    if micro and str(spec.get("kind", "")).startswith("micro_"):
        out["source"] = micro
    for k, v in spec.items():
        if k == "pattern" and isinstance(v, str):
            out[k] = patterns.get(v, v) if patterns.get(v, v) is not None else v
        elif k == "patterns" and isinstance(v, list):
            out[k] = [patterns.get(p, p) for p in v if patterns.get(p, p) is not None]
        elif k == "scenario" and isinstance(v, str):
            out[k] = scenarios.get(v, v)
        else:
            out[k] = _rename(v, patterns, scenarios, micro)
    return out


def rename_label(text, patterns):
    """A label with the exhibits it names renamed (longest name first, whole names only)."""
    for old in sorted(patterns, key=len, reverse=True):
        new = patterns[old]
        if new is None or new == old:
            continue
        text = re.sub(r"(?<![\w+-])" + re.escape(old) + r"(?![\w-]|\+\w)", new, text)
    return text


def derive(claim, entry, scenarios=None):
    """The claim as one runtime answers it: tests renamed, the skipped ones left out;
    and [(label, reason)] of those skipped."""
    patterns = entry.get("patterns") or {}
    scenarios = {**(entry.get("scenarios") or {}), **(scenarios or {})}
    skip = entry.get("skip") or {}
    skipped = []

    def tests(group):
        out = []
        for t in group:
            if t["label"] in skip:
                skipped.append((rename_label(t["label"], patterns), skip[t["label"]]))
                continue
            out.append({**t, "label": rename_label(t["label"], patterns),
                        "statistic": _rename(t["statistic"], patterns, scenarios, entry.get("micro"))})
        return out

    d = {**claim, "tests": tests(claim["tests"]), "context": tests(claim.get("context", []))}
    d.pop("runtimes", None)
    return d, skipped


def _report_cells(claim):
    """The (scenario, pattern) pairs of the report that a claim's tests read."""
    out = []

    def walk(x):
        if isinstance(x, dict):
            if x.get("kind") == "event_rate":
                out.extend((x.get("scenario"), p) for p in x.get("patterns", []))
                return
            if isinstance(x.get("scenario"), str) and isinstance(x.get("pattern"), str):
                out.append((x["scenario"], x["pattern"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk([t["statistic"] for t in claim["tests"]])
    return out


class RuntimeVerdict:
    """A claim answered for one runtime in one configuration: `status` evaluated (and
    `verdict`, a Verdict), not run (and `reason`), or pooled (with `pooled_with`)."""

    def __init__(self, runtime, configuration=None, status=EVALUATED, reason="", verdict=None, skipped=None,
                 scenarios=None, pooled_with=None):
        self.runtime, self.configuration, self.status, self.reason = runtime, configuration, status, reason
        self.verdict, self.skipped, self.scenarios, self.pooled_with = verdict, skipped or [], scenarios or {}, \
            pooled_with

    @property
    def word(self):
        """The verdict word, "not run", or "pooled"."""
        return self.verdict.verdict if self.status == EVALUATED else self.status

    def as_dict(self):
        d = {"runtime": self.runtime, "runtime_label": _rt.label(self.runtime),
             "configuration": self.configuration, "status": self.status, "verdict": self.word,
             "reason": self.reason, "skipped": [{"label": a, "reason": b} for a, b in self.skipped]}
        if self.pooled_with:
            d["pooled_with"] = self.pooled_with
        if self.verdict is not None:
            v = self.verdict.as_dict()
            d.update({k: v[k] for k in ("reason", "rule", "tests", "context", "statistic", "evidence") if k in v})
        return d


def _runtime_status(inputs, runtime):
    """The report's context.runtimes[runtime].status when it says the runtime was not built."""
    ctx = inputs.report.context if inputs.report else {}
    st = ((ctx.get("runtimes") or {}).get(runtime) or {}).get("status") if isinstance(ctx, dict) else None
    return st if isinstance(st, str) and st != "built" else None


def evaluate_runtimes(claim, inputs):
    """[RuntimeVerdict] of a claim: one per runtime that applies and per configuration."""
    out = []
    for runtime, entry in runtime_entries(claim):
        if entry.get("not_run"):
            out.append(RuntimeVerdict(runtime, entry.get("configuration"), NOT_RUN, entry["not_run"]))
            continue
        if entry.get("pooled_with"):
            out.append(RuntimeVerdict(runtime, entry.get("configuration"), POOLED,
                                      f"one experiment with {_rt.label(entry['pooled_with'])}",
                                      pooled_with=entry["pooled_with"]))
            continue
        configs = entry.get("configurations") or [{"name": entry.get("configuration")}]
        for cfg in configs:
            d, skipped = derive(claim, entry, cfg.get("scenarios"))
            scenarios = {**(entry.get("scenarios") or {}), **(cfg.get("scenarios") or {})}
            cells = _report_cells(d)
            if cells and inputs.report is not None and not any(inputs.report.select(s, p) for s, p in cells):
                # None of the runtime's exhibits ran in the experiment: not run, and why.
                why = None
                for s, p in cells:
                    try:
                        inputs.cells(s, p) if s is not None else None
                    except NotTestable as e:
                        why = why or str(e)
                why = why or f"the report has no feasible cell of {', '.join(dict.fromkeys(p for _s, p in cells))}"
                built = _runtime_status(inputs, runtime)
                if built:
                    why = f"{_rt.label(runtime)} {built}; {why}"
                out.append(RuntimeVerdict(runtime, cfg.get("name"), NOT_RUN, why, skipped=skipped,
                                          scenarios=scenarios))
                continue
            if not d["tests"]:
                out.append(RuntimeVerdict(runtime, cfg.get("name"), NOT_RUN,
                                          "every test is skipped in this runtime", skipped=skipped))
                continue
            out.append(RuntimeVerdict(runtime, cfg.get("name"), EVALUATED, verdict=evaluate_claim(d, inputs),
                                      skipped=skipped, scenarios=scenarios))
    return out


def primary(rvs):
    """The evaluation that stands for the claim where one is shown (the first evaluated,
    in runtime order), or None."""
    return next((rv for rv in rvs if rv.status == EVALUATED), None)


def _validate_runtimes(c, at):
    rts = c.get("runtimes")
    if rts is None:
        return
    if not isinstance(rts, dict) or not rts:
        raise SpecError(f"{at} ({c['id']}).runtimes: must be a non-empty object")
    for rt, e in rts.items():
        rat = f"{at} ({c['id']}).runtimes.{rt}"
        if rt not in _rt.RUNTIMES:
            raise SpecError(f"{rat}: unknown runtime (one of {', '.join(_rt.RUNTIMES)})")
        if not isinstance(e, dict):
            raise SpecError(f"{rat}: must be an object")
        extra = set(e) - _RUNTIME_ENTRY_KEYS
        if extra:
            raise SpecError(f"{rat}: unknown field {sorted(extra)[0]!r}")
        labels = {t["label"] for t in c["tests"] + c.get("context", []) if isinstance(t, dict)}
        for lab in e.get("skip") or {}:
            if lab not in labels:
                raise SpecError(f"{rat}.skip: no test labelled {lab!r}")
        if e.get("pooled_with") is not None and e["pooled_with"] not in rts:
            raise SpecError(f"{rat}.pooled_with: {e['pooled_with']!r} is not one of the claim's runtimes")
        for k in ("patterns", "scenarios"):
            if not isinstance(e.get(k, {}), dict):
                raise SpecError(f"{rat}.{k}: must be an object")
        if e.get("micro") is not None and e["micro"] not in MICRO_SOURCES:
            raise SpecError(f"{rat}.micro: must be one of {', '.join(MICRO_SOURCES)}")
        if not isinstance(e.get("configurations", []), list):
            raise SpecError(f"{rat}.configurations: must be a list")
