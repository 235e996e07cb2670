#!/usr/bin/env python3
"""Re-derive the article's comparison table and check its claims against a report."""

import argparse
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import fmt, style  # noqa: E402
from orchlab_py.evidence import cell_max, cell_median, has_cells, orchestrations, per_orch, pooled_total  # noqa: E402
from orchlab_py.report import ReportError, load_micro, load_report, micro_beside, micro_family  # noqa: E402

PROG = "claims.py"
HEALTHY, HANG, FAIL, ZERO, WIDE = "healthy", "one-hangs", "fail-fast", "zero-delay", "fanout-1000"
SOUP, LATCH, MUTEX = "channel-soup", "latch-select", "mutex-aggregation"
GROUP, BOUNDED, ASYNC = "cancellable-group", "bounded-group", "async-group"
GROUPS = (GROUP, BOUNDED, ASYNC)
WAITS_ALL = GROUP + "+collect-all"  # waits for every call that is not cut off by the deadline
ORPHAN_METRICS = ("leaked_tasks_at_return", "leaked_tasks_end", "late_completions", "zombie_task_s")
SLOTS = ("slots-packed", "slots-padded")
SUPPORTED, REFUTED, NUANCED, NODATA = "supported", "refuted", "nuanced", "insufficient-data"
# Thresholds of the rules, named so the printed rule and the code cannot drift apart.
FEW_THREADS = 32
OVERSHOOT_MS = 10.0
MANY_CALLS = 100
SOURCE_LINES_OK, SOURCE_LINES_NUANCED = 30, 60


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
    p.add_argument("--source", metavar="DIR", default=None,
                   help="repository root, for the line count of the group exhibit "
                   "(default: the directory above scripts/)")
    p.add_argument("--format", choices=("md", "json"), default="md", help="output format (default: md)")
    return p


class Claim:
    """One claim: its statement, verdict, evidence lines and the rule that decided it."""

    def __init__(self, cid, statement, rule):
        self.id, self.statement, self.rule = cid, statement, rule
        self.verdict, self.reason, self.evidence = NODATA, "", []

    def decide(self, verdict, reason):
        """Set the verdict and the one-line reason derived from the rule."""
        self.verdict, self.reason = verdict, reason
        return self

    def as_dict(self):
        """JSON form."""
        return {"id": self.id, "claim": self.statement, "verdict": self.verdict,
                "reason": self.reason, "evidence": self.evidence, "rule": self.rule}


def _n(v, digits=3):
    return fmt.num(v, digits)


def _us_to_ms(v):
    return None if v is None else v / 1000.0


def _zero(v):
    return v is None or v == 0


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
    ("Multi-core safe", f"lock wait as a share of call time, Σ lock_wait_ns / Σ (real_time × iterations × "
     f"fanout), in `{ZERO}`, else `{HEALTHY}`: "
     "**yes** below 1 %, **contended** from 1 % to 10 %, **serialises** above 10 %. Every exhibit "
     "is free of data races (the suite runs under TSan); this column measures what the locks cost."),
]


def cancellation_cell(report, p):
    """The Cancellation column for a pattern."""
    if not has_cells(report, HANG, p):
        return f"n/a (no `{HANG}` cells)"
    aborts = pooled_total(report, HANG, p, "server_client_aborts")
    if aborts is None:
        # Services without orchlab's /__stats: unknown, which is not "no aborts".
        return "insufficient data (no client-abort counts from the services)"
    left = pooled_total(report, HANG, p, "leaked_tasks_at_return") or 0
    lag = cell_max(report, HANG, p, "server_abort_lag_p99_ms")
    cut = aborts + left
    if cut == 0:
        over = _us_to_ms(cell_max(report, HANG, p, "deadline_overshoot_p99_us"))
        return (f"**no**: client aborts 0; no call was cut off, it waits for every call "
                f"(deadline overshoot p99 {_n(over)} ms)")
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


def error_cell(report, p):
    """The Error propagation column for a pattern."""
    if not has_cells(report, FAIL, p):
        return f"n/a (no `{FAIL}` cells)"
    aborts = per_orch(report, FAIL, p, "server_client_aborts")
    p50 = _us_to_ms(cell_median(report, FAIL, p, "p50_us"))
    waits = _us_to_ms(cell_median(report, FAIL, WAITS_ALL, "p50_us"))
    n = orchestrations(report, FAIL, p)
    failed = ((pooled_total(report, FAIL, p, "failed") or 0) + (pooled_total(report, FAIL, p, "partial") or 0))
    share = f"{100.0 * failed / n:.0f}% failed or partial" if n else ""
    lat = f"p50 {_n(p50)} ms" + (f" vs {_n(waits)} ms for `{WAITS_ALL}`" if waits and p != WAITS_ALL else "")
    detail = f"{lat}; client aborts {_n(aborts)}/orchestration; {share}"
    if aborts is None:
        return f"insufficient data (no client-abort counts from the services): {lat}"
    if aborts > 0:
        return f"**cancels siblings**: {detail}"
    if p50 is not None and waits and p50 < 0.5 * waits:
        return f"**returns early**: {detail}"
    if p50 is None or not waits:
        return f"insufficient data (no `{FAIL}` p50 for `{WAITS_ALL}` to compare with): {detail}"
    return f"**waits for all**: {detail}"


def multicore_cell(report, p):
    """The Multi-core safe column for a pattern."""
    for s in (ZERO, HEALTHY):
        cells = report.select(s, p)
        if not cells:
            continue
        wait_ns = sum(c.total("lock_wait_ns") or 0 for c in cells)
        # Waits add up over every thread of an orchestration, so the base is the time of
        # its calls (latency × fanout), not the latency alone.
        busy_ns = sum((c.mean("real_time") or 0) * 1000.0 * (c.total("iterations") or 0) * c.key.fanout
                      for c in cells)
        if busy_ns <= 0:
            continue
        share = wait_ns / busy_ns
        per = wait_ns / 1000.0 / max(1, sum(c.total("iterations") or 0 for c in cells))
        detail = f"lock wait {fmt.pct(share, signed=False)} of call time, {_n(per)} µs/orchestration (`{s}`)"
        if share < 0.01:
            return f"**yes**: {detail}"
        if share < 0.10:
            return f"**contended**: {detail}"
        return f"**serialises**: {detail}"
    return f"n/a (no `{ZERO}` or `{HEALTHY}` cells)"


def comparison_table(report):
    """Rows of the article's table, one per pattern."""
    rows = []
    for p in style.sort_patterns(report.patterns()):
        rows.append([f"`{p}`", cancellation_cell(report, p), leak_cell(report, p),
                     error_cell(report, p), multicore_cell(report, p)])
    return rows


# ---------------------------------------------------------------------------------------
# The claims
# ---------------------------------------------------------------------------------------

def claim_soup_zombies(report, _runs, _src):
    """Channel soup leaves zombie work that outlives the timeout."""
    c = Claim("soup-zombies", "Channel soup leaves zombie work that outlives the timeout.",
              f"In `{HANG}`, {SOUP}: **supported** when zombie task time, server work past the deadline "
              "or tasks left running at return is above 0; **refuted** when all are 0 although "
              "orchestrations hit the deadline (timed out or partial); otherwise insufficient data.")
    if not has_cells(report, HANG, SOUP):
        return c.decide(NODATA, f"no `{HANG}` cells for {SOUP}")
    z = pooled_total(report, HANG, SOUP, "zombie_task_s") or 0
    w = pooled_total(report, HANG, SOUP, "server_work_past_deadline_ms")  # None: not reported
    k = pooled_total(report, HANG, SOUP, "leaked_tasks_at_return") or 0
    hit = (pooled_total(report, HANG, SOUP, "timed_out") or 0) + (pooled_total(report, HANG, SOUP, "partial") or 0)
    n = orchestrations(report, HANG, SOUP)
    c.evidence = [f"{SOUP} in `{HANG}`: {_n(n)} orchestrations, {_n(hit)} hit the deadline",
                  f"zombie task time {_n(z)} s, server work past deadline {_n(w)} ms, "
                  f"tasks left running at return {_n(k)}"]
    if z > 0 or (w or 0) > 0 or k > 0:
        return c.decide(SUPPORTED, "work continued after the orchestration gave up")
    if hit > 0 and w is None:
        return c.decide(NODATA, "the services did not report their work past the deadline")
    if hit > 0:
        return c.decide(REFUTED, "the deadline fired but no work outlived it")
    return c.decide(NODATA, "no orchestration hit the deadline")


def claim_soup_pools(report, _runs, _src):
    """Channel soup exhausts connection pools."""
    c = Claim("soup-pools", "Channel soup exhausts connection pools.",
              f"In `{HANG}`: **supported** when {SOUP} exhausted the pool (pool_exhausted > 0) at least "
              f"twice as often per orchestration as {GROUP}; **nuanced** when it exhausted it but "
              f"{GROUP} did about as often; **refuted** when {SOUP} never exhausted it.")
    if not has_cells(report, HANG, SOUP) or not has_cells(report, HANG, GROUP):
        return c.decide(NODATA, f"`{HANG}` needs cells of both {SOUP} and {GROUP}")
    soup = per_orch(report, HANG, SOUP, "pool_exhausted")
    grp = per_orch(report, HANG, GROUP, "pool_exhausted")
    if soup is None or grp is None:
        return c.decide(NODATA, "the report has no pool_exhausted counts")
    ws = cell_max(report, HANG, SOUP, "pool_wait_p99_us")
    wg = cell_max(report, HANG, GROUP, "pool_wait_p99_us")
    c.evidence = [f"pool exhausted per orchestration: {SOUP} {_n(soup)}, {GROUP} {_n(grp)}",
                  f"pool wait p99 (worst cell): {SOUP} {_n(_us_to_ms(ws))} ms, {GROUP} {_n(_us_to_ms(wg))} ms"]
    # async-group's own pool, for reference (not part of the rule).
    pa = per_orch(report, HANG, ASYNC, "pool_exhausted") if has_cells(report, HANG, ASYNC) else None
    if pa is not None:
        c.evidence.append(f"{ASYNC} (its own pool, same max_conns_per_host): pool exhausted per "
                          f"orchestration {_n(pa)}, pool wait p99 "
                          f"{_n(_us_to_ms(cell_max(report, HANG, ASYNC, 'pool_wait_p99_us')))} ms")
    if soup == 0:
        return c.decide(REFUTED, f"{SOUP} never found its pool exhausted")
    if soup >= 2 * grp:
        return c.decide(SUPPORTED, f"{SOUP} exhausted the pool, {GROUP} far less or never")
    return c.decide(NUANCED, "both exhausted the pool at similar rates")


def claim_latch(report, _runs, _src):
    """The WaitGroup/latch variant leaks its waiter and cannot cancel."""
    c = Claim("latch-leaks", "The WaitGroup/latch variant leaks its waiter and cannot cancel.",
              f"Leak: {LATCH} left tasks running at return in `{HANG}` (more per orchestration than "
              f"{SOUP} when it is present: the extra is the waiter). No cancel: the services saw no "
              f"client abort from {LATCH} in `{HANG}` and `{FAIL}`. **supported** when both hold, "
              "**nuanced** when one holds, **refuted** when neither.")
    if not has_cells(report, HANG, LATCH):
        return c.decide(NODATA, f"no `{HANG}` cells for {LATCH}")
    k = per_orch(report, HANG, LATCH, "leaked_tasks_at_return") or 0
    ks = per_orch(report, HANG, SOUP, "leaked_tasks_at_return")
    # None when a scenario that has cells of it lacks the services' counts.
    counts = [pooled_total(report, s, LATCH, "server_client_aborts") for s in (HANG, FAIL)
              if has_cells(report, s, LATCH)]
    aborts = None if None in counts else sum(counts)
    leaks = k > 0 and (ks is None or k > ks)
    no_cancel = aborts == 0
    c.evidence = [f"leaked tasks at return per orchestration in `{HANG}`: {LATCH} {_n(k)}"
                  + (f", {SOUP} {_n(ks)} (difference {_n(k - ks)})" if ks is not None else ""),
                  f"client aborts from {LATCH} in `{HANG}` + `{FAIL}`: {_n(aborts)}"]
    if aborts is None:
        return c.decide(NODATA, "no client-abort counts from the services")
    if leaks and no_cancel:
        return c.decide(SUPPORTED, "it leaks beyond its calls and never cancels")
    if leaks or no_cancel:
        return c.decide(NUANCED, "it leaks" if leaks else "it cannot cancel, but no extra leaked waiter shows")
    return c.decide(REFUTED, "no extra leak and the services saw cancellations")


def claim_mutex_timeout(report, _runs, _src):
    """Mutex aggregation has no timeout."""
    c = Claim("mutex-no-timeout", "Mutex aggregation has no timeout.",
              f"In `{HANG}-open` (else `{HANG}`), p99 deadline overshoot (worst cell): **supported** when "
              f"{MUTEX}'s is at least {OVERSHOOT_MS:g} ms and at least 10× {GROUP}'s (floored at 1 ms); "
              "**refuted** when it is at most 2× that; **nuanced** in between. A p99 needs 100 samples: "
              f"in the closed `{HANG}` a pattern that waits out 5 s hangs completes few orchestrations, "
              "so the open loop, which starts them on schedule, is asked first.")
    om = og = None
    scenario = None
    for sc in (HANG + "-open", HANG):
        if not has_cells(report, sc, MUTEX) or not has_cells(report, sc, GROUP):
            continue
        om = _us_to_ms(cell_max(report, sc, MUTEX, "deadline_overshoot_p99_us"))
        og = _us_to_ms(cell_max(report, sc, GROUP, "deadline_overshoot_p99_us"))
        if om is not None and og is not None:
            scenario = sc
            break
    if scenario is None:
        return c.decide(NODATA, f"no `{HANG}` cell of {MUTEX} and {GROUP} has a p99 deadline overshoot "
                                "(too few samples, or no such cells)")
    p99 = _us_to_ms(cell_max(report, scenario, MUTEX, "p99_us"))
    to = pooled_total(report, scenario, MUTEX, "timed_out") or 0
    c.evidence = [f"`{scenario}`, p99 deadline overshoot: {MUTEX} {_n(om)} ms, {GROUP} {_n(og)} ms",
                  f"{MUTEX} p99 latency {_n(p99)} ms; timed-out orchestrations {_n(to)}"]
    floor = max(og, 1.0)
    if om >= OVERSHOOT_MS and om >= 10 * floor:
        return c.decide(SUPPORTED, "it waits for the hung call far past the deadline")
    if om <= 2 * floor:
        return c.decide(REFUTED, "it returns about when the group does")
    return c.decide(NUANCED, "it overshoots the deadline, but not by an order of magnitude")


def claim_mutex_gap(_report, runs, _src):
    """Mutex aggregation serialises: a 30–60% throughput gap at higher thread counts."""
    c = Claim("mutex-gap", "Mutex aggregation serialises under contention: a 30–60% throughput gap at "
              "higher goroutine counts.",
              "BM_Aggregate at the largest thread count: gap = 1 − mutex-vector / best index-slot "
              "strategy. **supported** for 30–60 %, **nuanced** for 10–30 % or above 60 % (the size is "
              "wrong, the direction right), **refuted** below 10 %.")
    fam = micro_family(runs, "BM_Aggregate", dashes=True) if runs else {}
    mutex = fam.get("mutex-vector", {})
    slots = [fam[s] for s in SLOTS if s in fam]
    threads = sorted(t for t in mutex if isinstance(t, int) and all(t in s for s in slots))
    if not mutex or not slots or not threads:
        return c.decide(NODATA, "needs --micro with BM_Aggregate mutex-vector and slots-* runs")
    t = threads[-1]
    best = max(s[t] for s in slots)
    gap = 1 - mutex[t] / best
    gaps = ", ".join(f"{k}: {fmt.pct(1 - mutex[k] / max(s[k] for s in slots), signed=False)}" for k in threads)
    c.evidence = [f"{t} threads: mutex-vector {_n(mutex[t] / 1e6)} M items/s, best slots {_n(best / 1e6)} M items/s",
                  f"gap by thread count: {gaps}"]
    if 0.30 <= gap <= 0.60:
        return c.decide(SUPPORTED, f"gap {fmt.pct(gap, signed=False)}")
    if gap < 0.10:
        return c.decide(REFUTED, f"gap only {fmt.pct(gap, signed=False)}")
    if gap > 0.60:
        # Near 100 % a percentage hides the size: say how many times faster.
        return c.decide(NUANCED, f"gap {fmt.pct(gap, signed=False)} (slots {_n(best / mutex[t])}× the "
                        "mutex), larger than claimed")
    return c.decide(NUANCED, f"gap {fmt.pct(gap, signed=False)}, smaller than claimed")


def claim_no_orphans(report, _runs, _src):
    """The group + context solution leaves no orphans."""
    c = Claim("group-no-orphans", "The group + context solution leaves no orphans.",
              f"Over every feasible cell of every scenario, for each group pattern present ({', '.join(GROUPS)} "
              f"and their variants): {', '.join(ORPHAN_METRICS)} must all be 0. **supported** when they are, "
              "**refuted** when any is not (the evidence names where); insufficient data without group cells.")
    groups = [p for p in report.patterns() if style.base_pattern(p) in GROUPS]
    if not any(report.select(None, p) for p in groups):
        return c.decide(NODATA, "no feasible group cells")
    bad = []
    for p in style.sort_patterns(groups):
        orch = sum(orchestrations(report, s, p) for s in report.scenarios())
        sums = {m: sum(pooled_total(report, s, p, m) or 0 for s in report.scenarios()) for m in ORPHAN_METRICS}
        c.evidence.append(f"{p}: {_n(orch)} orchestrations; " + ", ".join(f"{m} {_n(v)}" for m, v in sums.items()))
        for cell in report.select(None, p):
            for m in ORPHAN_METRICS:
                if any(v != 0 for v in cell.values(m)):
                    bad.append(f"`{cell.key.name}` {m}")
    if bad:
        c.evidence.append("non-zero in: " + ", ".join(bad[:8]) + (f" (+{len(bad) - 8} more)" if len(bad) > 8 else ""))
        return c.decide(REFUTED, "a group left work behind")
    return c.decide(SUPPORTED, "every group joined all its tasks in every cell")


def claim_cancels_siblings(report, _runs, _src):
    """The group cancels siblings on the first error."""
    c = Claim("group-cancels", "The group cancels its siblings on the first error.",
              f"In `{FAIL}`, per group pattern: it cancels when the services saw client aborts and no call "
              f"completed late. **supported** when {GROUP} and every other group present cancel, "
              f"**nuanced** when {GROUP} does and another group does not (or completes calls late), "
              f"**refuted** when {GROUP} does not.")
    if not has_cells(report, FAIL, GROUP):
        return c.decide(NODATA, f"no `{FAIL}` cells for {GROUP}")
    ok = {}
    for p in style.sort_patterns([p for p in report.patterns() if style.base_pattern(p) in GROUPS]):
        if "+" in p or not has_cells(report, FAIL, p):
            continue  # collect-all variants do not cancel by design
        a = per_orch(report, FAIL, p, "server_client_aborts")  # None: not reported
        late = pooled_total(report, FAIL, p, "late_completions") or 0
        p50 = _us_to_ms(cell_median(report, FAIL, p, "p50_us"))
        lag = cell_max(report, FAIL, p, "server_abort_lag_p99_ms")
        ok[p] = None if a is None else a > 0 and late == 0
        c.evidence.append(f"{p}: client aborts {_n(a)}/orchestration, late completions {_n(late)}, "
                          f"p50 {_n(p50)} ms, abort lag p99 {_n(lag)} ms")
    unknown = [p for p, v in ok.items() if v is None]
    if unknown:
        return c.decide(NODATA, "no client-abort counts from the services for " + ", ".join(unknown))
    if not ok.get(GROUP):
        return c.decide(REFUTED, f"{GROUP} did not cancel its siblings at the services")
    if all(ok.values()):
        return c.decide(SUPPORTED, "every group's first error reached the sibling calls")
    return c.decide(NUANCED, "not every group cancels: " + ", ".join(p for p, v in ok.items() if not v))


def _source_lines(root):
    """(path, code lines) of the cancellable-group exhibit, or None."""
    found = sorted(glob.glob(os.path.join(root, "patterns", "**", "cancellable_group*.cpp"), recursive=True))
    if not found:
        return None
    path = found[0]
    text = open(path, encoding="utf-8", errors="replace").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    lines = [ln.strip() for ln in text.splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("//") and not ln.startswith("#include")
            and ln not in ("{", "}", "};")]
    return os.path.relpath(path, root), len(code)


def claim_twenty_lines(_report, _runs, src):
    """The group solution fits in about 20 lines."""
    c = Claim("group-20-lines", "The group + context solution fits in about 20 lines.",
              "Code lines of patterns/**/cancellable_group*.cpp (not blank, not comments, not #include, "
              f"not a lone brace): **supported** up to {SOURCE_LINES_OK}, **nuanced** up to "
              f"{SOURCE_LINES_NUANCED}, **refuted** above; insufficient data when the source is not found.")
    found = _source_lines(src)
    if found is None:
        return c.decide(NODATA, f"no patterns/**/cancellable_group*.cpp under {src}")
    path, n = found
    c.evidence = [f"{path}: {n} code lines (the file also holds the shared opening block and the wrapper)"]
    if n <= SOURCE_LINES_OK:
        return c.decide(SUPPORTED, f"{n} lines")
    if n <= SOURCE_LINES_NUANCED:
        return c.decide(NUANCED, f"{n} lines: short, but not 20")
    return c.decide(REFUTED, f"{n} lines")


def claim_slots(_report, runs, _src):
    """Index-based slots beat every other aggregation."""
    c = Claim("slots-win", "Index-based slots beat every other aggregation.",
              "BM_Aggregate, winner (highest items/s) at each thread count: **supported** when an index-slot "
              "strategy wins at every count and packed slots stay within 10 % of padded ones (the median "
              "packed/padded ratio over 2 or more threads: one thread cannot false-share, and one noisy "
              "count does not decide); **nuanced** when "
              "slots win everywhere but packed slots lose > 10 % to padded ones (false sharing), or slots win at "
              "only some counts; **refuted** when they win at none.")
    fam = micro_family(runs, "BM_Aggregate", dashes=True) if runs else {}
    threads = sorted({t for d in fam.values() for t in d if isinstance(t, int)})
    if not fam or not any(s in fam for s in SLOTS) or len(fam) < 2 or not threads:
        return c.decide(NODATA, "needs --micro with BM_Aggregate runs of slots-* and other strategies")
    winners = {}
    for t in threads:
        vals = {s: d[t] for s, d in fam.items() if t in d}
        winners[t] = max(vals, key=vals.get)
    wins = [t for t in threads if winners[t] in SLOTS]
    ratios = []
    if all(s in fam for s in SLOTS):
        # One thread cannot false-share: compare from two threads up.
        ratios = [(fam["slots-packed"][t] / fam["slots-padded"][t], t) for t in threads
                  if t >= 2 and t in fam["slots-packed"] and t in fam["slots-padded"]]
    packed = statistics.median(r for r, _ in ratios) if ratios else None
    c.evidence = ["winner by threads: " + ", ".join(f"{t}: {winners[t]}" for t in threads)]
    if ratios:
        worst = min(ratios)
        c.evidence.append(f"packed / padded slots at 2+ threads: median {packed:.2f}, "
                          f"worst {worst[0]:.2f} at {worst[1]} threads")
    if not wins:
        return c.decide(REFUTED, "index slots never won")
    if len(wins) < len(threads):
        return c.decide(NUANCED, f"slots win at {len(wins)} of {len(threads)} thread counts")
    if packed is not None and packed < 0.9:
        return c.decide(NUANCED, "slots win, but only when padded to a cache line: packed slots false-share")
    return c.decide(SUPPORTED, "index slots win at every thread count")


def _complete_fraction(report, scenario, pattern):
    n = orchestrations(report, scenario, pattern)
    done = pooled_total(report, scenario, pattern, "complete")
    return None if not n or done is None else done / n


def claim_semaphore(report, _runs, _src):
    """An unbounded fan-out needs a semaphore."""
    c = Claim("semaphore", "An unbounded fan-out needs a semaphore.",
              f"In `{WIDE}`: the unbounded thread group needs one when {GROUP} is infeasible, or peaks at "
              f">= 4× {BOUNDED}'s OS threads, or completes 5 points fewer orchestrations. The async group does "
              f"without when {ASYNC} ran with < {FEW_THREADS} OS threads and completed >= 99 %. **supported**: "
              "needed and the async group does not do without; **nuanced**: needed for threads, not for "
              "async I/O; **refuted**: not needed.")
    if not has_cells(report, WIDE, BOUNDED) or not has_cells(report, WIDE, GROUP, feasible=False):
        return c.decide(NODATA, f"`{WIDE}` needs cells of {GROUP} and a feasible {BOUNDED}")
    g_cells = report.select(WIDE, GROUP)
    tb = cell_max(report, WIDE, BOUNDED, "threads_peak")
    cb = _complete_fraction(report, WIDE, BOUNDED)
    if not g_cells:
        reason = report.select(WIDE, GROUP, feasible=False)[0].infeasible
        c.evidence.append(f"{GROUP}: infeasible ({reason})")
        needed = True
    else:
        tg = cell_max(report, WIDE, GROUP, "threads_peak")
        cg = _complete_fraction(report, WIDE, GROUP)
        c.evidence.append(f"{GROUP}: threads peak {_n(tg)}, complete {fmt.pct(cg, signed=False)}")
        needed = (tg is not None and tb and tg >= 4 * tb) or (cg is not None and cb is not None and cg < cb - 0.05)
    c.evidence.append(f"{BOUNDED}: threads peak {_n(tb)}, complete {fmt.pct(cb, signed=False)}")
    async_ok = False
    if has_cells(report, WIDE, ASYNC):
        ta = cell_max(report, WIDE, ASYNC, "threads_peak")
        ca = _complete_fraction(report, WIDE, ASYNC)
        c.evidence.append(f"{ASYNC} (no limit): threads peak {_n(ta)}, complete {fmt.pct(ca, signed=False)}")
        async_ok = ta is not None and ta < FEW_THREADS and ca is not None and ca >= 0.99
    if not needed:
        return c.decide(REFUTED, f"{GROUP} coped without a limit")
    if async_ok:
        return c.decide(NUANCED, "a thread per call needs the limit; async I/O does not")
    return c.decide(SUPPORTED, "without a limit the fan-out does not fit")


def claim_async_threads(report, runs, _src):
    """Async I/O removes the per-call thread."""
    c = Claim("async-no-thread", "Async I/O removes the per-call thread.",
              f"Over the feasible {ASYNC} cells: calls outstanding F = fanout × concurrency (largest cell), "
              f"threads = that cell's highest OS-thread peak (callers included). **supported** when F >= {MANY_CALLS} and threads < "
              f"{FEW_THREADS}; **refuted** when threads >= F/2 (they grow with the calls); **nuanced** otherwise; "
              f"insufficient data without a cell of >= {MANY_CALLS} calls outstanding.")
    cells = report.select(None, ASYNC)
    if not cells:
        return c.decide(NODATA, f"no feasible {ASYNC} cells")
    big = max(cells, key=lambda x: x.key.fanout * x.key.concurrency)
    f = big.key.fanout * big.key.concurrency
    # The peak of that same cell: another cell's peak (e.g. 256 caller threads
    # in concurrency-scaling) says nothing about threads per call.
    threads = max(big.values("threads_peak"), default=None)
    wire = max(big.values("server_max_in_flight"), default=None)
    c.evidence.append(f"{ASYNC}: {_n(f)} calls outstanding at once (`{big.key.name}`: fanout × callers; "
                      f"the pool puts at most `max_conns_per_host` per service on the wire, the busiest "
                      f"service saw {_n(wire)} at once), OS threads peak {_n(threads)}")
    same = report.cells.get(big.key._replace(pattern=GROUP))
    if same is not None:
        c.evidence.append(f"{GROUP} in the same cell: " + (f"infeasible ({same.infeasible})" if same.infeasible
                          else f"OS threads peak {_n(max(same.values('threads_peak'), default=None))}"))
    fam = micro_family(runs, "BM_Orchestrate", metric="time") if runs else {}
    spawn = micro_family(runs, "BM_Spawn", metric="time", dashes=True) if runs else {}
    if ASYNC in fam and fam[ASYNC]:
        fo = max(k for k in fam[ASYNC] if isinstance(k, int))
        line = f"BM_Orchestrate/{ASYNC}/fanout:{fo}: {_n(fam[ASYNC][fo] / fo / 1000.0)} µs per call"
        floor = spawn.get("std-thread")
        if floor:
            line += f"; std::thread spawn+join floor {_n(next(iter(floor.values())) / 1000.0)} µs"
        c.evidence.append(line)
    if threads is None:
        return c.decide(NODATA, "no threads_peak recorded")
    if f < MANY_CALLS:  # a small pool of threads outnumbers a few calls without meaning anything
        return c.decide(NODATA, f"largest cell has only {f} calls outstanding")
    if threads >= f / 2:
        return c.decide(REFUTED, "its threads grow with the calls outstanding")
    if threads < FEW_THREADS:
        return c.decide(SUPPORTED, f"{_n(f)} calls outstanding on {_n(threads)} OS threads")
    return c.decide(NUANCED, "fewer threads than calls, but more than a small pool")


CLAIMS = [claim_soup_zombies, claim_soup_pools, claim_latch, claim_mutex_timeout, claim_mutex_gap,
          claim_no_orphans, claim_cancels_siblings, claim_twenty_lines, claim_slots, claim_semaphore,
          claim_async_threads]


def evaluate(report, runs, src):
    """Every claim, evaluated."""
    return [f(report, runs, src) for f in CLAIMS]


def render_md(report, micro_path, table, claims):
    """The Markdown document."""
    ctx = report.context
    facts = [f"report `{report.path}`"]
    for k in ("date", "host_name", "num_cpus", "git_sha", "build_type", "compiler"):
        if ctx.get(k) not in (None, ""):
            facts.append(f"{k} {ctx[k]}")
    if micro_path:
        rel = os.path.relpath(micro_path)
        facts.append(f"micro `{micro_path if rel.startswith('..') else rel}`")
    out = ["# The article's claims, measured", "", "Source: " + "; ".join(facts) + ".", ""]
    if ctx.get("interrupted"):
        out += ["> The run was interrupted: some cells are missing.", ""]
    out += ["## The comparison table", "",
            fmt.md_table(["pattern", "Cancellation", "Leak risk", "Error propagation", "Multi-core safe"], table),
            "", "How each column is decided:", ""]
    out += [f"- **{name}**: {rule}" for name, rule in TABLE_RULES]
    out += ["", "## Claims", "",
            fmt.md_table(["#", "claim", "verdict", "why"],
                         [[i + 1, c.statement, f"**{c.verdict}**", c.reason] for i, c in enumerate(claims)]), ""]
    for i, c in enumerate(claims):
        out += [f"### {i + 1}. {c.statement} — **{c.verdict}**", "", f"*Rule:* {c.rule}", "",
                f"*Verdict:* {c.verdict} — {c.reason}.", ""]
        if c.evidence:
            out += ["*Evidence:*", ""] + [f"- {e}" for e in c.evidence] + [""]
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
    try:
        report = load_report(args.report)
        runs = load_micro(args.micro) if args.micro else None
    except ReportError as e:
        fail(str(e))
    src = args.source or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    table = comparison_table(report)
    claims = evaluate(report, runs, src)
    if args.format == "json":
        doc = {"report": report.path, "micro": args.micro,
               "table": [dict(zip(["pattern", "cancellation", "leak_risk", "error_propagation", "multicore_safe"],
                                  [r[0].strip("`")] + r[1:])) for r in table],
               "claims": [c.as_dict() for c in claims]}
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(render_md(report, args.micro, table, claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
