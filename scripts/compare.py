#!/usr/bin/env python3
"""Compare two orchlab reports (or two patterns of one report) metric by metric.

Exit status: 0 no change beyond noise, 1 regression or broken invariant, 2 unusable
input, 3 inconclusive. The rules are in docs/analysis.md ("compare.py").
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import fmt, stats  # noqa: E402
from orchlab_py.metrics import pattern_matches  # noqa: E402
from orchlab_py import runtimes  # noqa: E402
from orchlab_py.report import ReportError, load_report  # noqa: E402

PROG = "compare.py"
# The metrics whose changes decide the exit code: throughput and tail latency. Holm's
# correction runs over these within each cell; every other metric is reported, never
# decides. The must-be-zero invariants are checked without statistics.
PRIMARY = ("items_per_second", "p99_us")
# Below this many repetitions per side say how little the test can see.
WARN_REPS = 5
EXIT_OK, EXIT_REGRESSION, EXIT_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3

# Row verdicts. The first three are changes the comparison defends; the others are not.
REGRESSED, IMPROVED, CHANGED = "regressed", "improved", "changed"
WITHIN_NOISE, NOT_SIGNIFICANT, NA = "within noise", "not significant", "n/a"
CHANGES = (REGRESSED, IMPROVED, CHANGED)


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Compare orchlab reports cell by cell: per metric the medians over "
        "repetitions, a two-sided Mann-Whitney U p-value (exact for small samples, ties "
        "included) and a Hodges-Lehmann interval of the change. A change is reported only "
        "when it is significant (Holm over the primary metrics of each cell) and its whole "
        "interval lies beyond the noise threshold. Exit 0 no change beyond noise, 1 "
        "regression of a primary metric or broken must-be-zero invariant, 2 unusable input, "
        "3 inconclusive (too few repetitions for any test to reach significance, or cells "
        "vanished or turned infeasible).",
        epilog="Examples: compare.py old.json new.json | "
        "compare.py report.json --pair channel-soup:cancellable-group --all",
    )
    p.add_argument("reports", nargs="+", metavar="REPORT",
                   help="OLD NEW, or one REPORT with --pair")
    p.add_argument("--pair", metavar="A:B",
                   help="compare pattern A (old side) with pattern B (new side) within one report")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level, after Holm's correction for the primary metrics; "
                   "the intervals are at 1 - alpha (default: 0.05)")
    p.add_argument("--noise", type=float, default=5.0,
                   help="smallest relative change, in percent, that counts; a cell whose "
                   "repetitions spread more uses their pooled coefficient of variation "
                   "instead (default: 5)")
    p.add_argument("--primary", metavar="M1,M2", default=",".join(PRIMARY),
                   help=f"the metrics that decide the exit code (default: {','.join(PRIMARY)})")
    p.add_argument("--metrics", metavar="M1,M2",
                   help="list only these metrics besides the primary ones (default: all)")
    p.add_argument("--all", action="store_true",
                   help="the full table of every cell and metric, metrics that are 0 "
                   "everywhere included (default: only what changed beyond noise, then counts)")
    p.add_argument("--format", choices=("text", "md", "json"), default="text",
                   help="output format (default: text)")
    return p


def relative_change(old, new):
    """(new - old) / |old|; 0 when both are 0, ±inf when only old is 0."""
    if old == new:
        return 0.0
    if old == 0:
        return math.inf if new > 0 else -math.inf
    return (new - old) / abs(old)


def _relative(v, ref):
    """An absolute shift v as a fraction of ref; ±inf (or 0) when ref is 0."""
    if v is None:
        return None
    if ref:
        return v / ref
    return 0.0 if v == 0 else (math.inf if v > 0 else -math.inf)


def change_interval(old_vals, new_vals, level):
    """Hodges-Lehmann change of new relative to old with its interval, as fractions.

    Positive data: the ratio new/old (median of the pairwise ratios, on logs), change =
    ratio - 1. Data with zeros: the shift new - old (median of the pairwise differences)
    divided by |median of old|; when that median is 0 the change is ±inf and the shift is
    kept in the metric's unit. Returns a dict for the row."""
    if all(v > 0 for v in old_vals + new_vals):
        hl = stats.hodges_lehmann_ratio(old_vals, new_vals, level)
        sub = (lambda v: None if v is None else v - 1.0)
        return {"scale": "ratio", "change": sub(hl.estimate), "change_low": sub(hl.low),
                "change_high": sub(hl.high), "confidence": hl.confidence,
                "interval_note": hl.note, "shift": None, "shift_low": None, "shift_high": None}
    hl = stats.hodges_lehmann(old_vals, new_vals, level)
    ref = abs(stats.median(old_vals))
    return {"scale": "difference", "change": _relative(hl.estimate, ref),
            "change_low": _relative(hl.low, ref), "change_high": _relative(hl.high, ref),
            "confidence": hl.confidence, "interval_note": hl.note,
            "shift": hl.estimate, "shift_low": hl.low, "shift_high": hl.high}


def compare_metric(metric, old_vals, new_vals, alpha, noise_floor, primary):
    """One row: medians, HL change and interval, p-value and noise for one metric of one
    cell pair. The verdict is set by decide() once Holm's correction is known."""
    old, new = stats.median(old_vals), stats.median(new_vals)
    cv = stats.pooled_cv(old_vals, new_vals)
    row = {
        "metric": metric.name, "unit": metric.unit, "better": metric.better, "primary": primary,
        "old": old, "new": new, "n_old": len(old_vals), "n_new": len(new_vals),
        "median_change": relative_change(old, new),
        "noise": max(noise_floor, cv or 0.0), "cv": cv,
        "p": None, "p_min": None, "p_holm": None, "method": None,
        "verdict": NA, "worse": False, "reason": "",
    }
    row.update(change_interval(old_vals, new_vals, 1.0 - alpha))
    if len(old_vals) >= 2 and len(new_vals) >= 2:
        mw = stats.mann_whitney_u(old_vals, new_vals)
        row.update(p=mw.p, p_min=mw.p_min, method=mw.method)
    else:
        row["reason"] = f"{len(old_vals)} vs {len(new_vals)} repetitions: a test needs >= 2 on each side"
    return row


def decide(row, alpha):
    """Set the row's verdict: a change only when significant (Holm-adjusted p for a primary
    metric) and the whole interval lies beyond the noise threshold."""
    p = row["p_holm"] if row["primary"] else row["p"]
    if p is None:
        row["verdict"] = NA
        return row
    if p >= alpha:
        row["verdict"] = NOT_SIGNIFICANT
        family = row.get("family", 1) if row["primary"] else 1
        floor = stats.min_p_value(row["n_old"], row["n_new"])
        if floor * family >= alpha:
            row["reason"] = (f"{row['n_old']} vs {row['n_new']} repetitions cannot reach significance "
                             f"(smallest p {fmt.pvalue(floor)})")
        elif row["p_min"] is not None and row["p_min"] * family >= alpha:
            row["reason"] = f"with these ties the smallest reachable p is {fmt.pvalue(row['p_min'])}"
        return row
    low, high, noise = row["change_low"], row["change_high"], row["noise"]
    if low is None or high is None:
        row["verdict"] = WITHIN_NOISE
        row["reason"] = row["interval_note"] or "no interval"
        return row
    up, down = low > noise, high < -noise
    if not (up or down):
        row["verdict"] = WITHIN_NOISE
        row["reason"] = f"interval reaches inside ±{fmt.pct(noise, signed=False)}"
        return row
    if row["better"] == "none":
        row["verdict"] = CHANGED
    else:
        worse = up if row["better"] == "lower" else down
        row["worse"] = worse
        row["verdict"] = REGRESSED if worse else IMPROVED
    return row


def pair_cells(old_report, new_report, pair):
    """Matched (label, old_cell, new_cell) triples, plus labels found on one side only."""
    if pair:
        a, b = pair

        def index(pattern):
            return {(k.scenario, k.fanout, k.concurrency): c
                    for k, c in new_report.cells.items() if k.pattern == pattern}
        olds, news = index(a), index(b)

        def label(k):
            return f"{k[0]}/fanout:{k[1]}/concurrency:{k[2]}"
    else:
        olds, news = old_report.cells, new_report.cells

        def label(k):
            return k.name
    matched = [(label(k), olds[k], news[k]) for k in olds if k in news]
    only_old = [label(k) for k in olds if k not in news]
    only_new = [label(k) for k in news if k not in olds]
    return matched, only_old, only_new


def check_invariants(report):
    """Every must-be-zero metric that is not zero in some feasible cell of the report.
    A null (not measured) value is neither zero nor a violation: it is skipped."""
    broken = []
    for key, cell in report.cells.items():
        if cell.infeasible:
            continue
        for metric in report.metrics.values():
            if not metric.must_be_zero_for or not pattern_matches(key.pattern, metric.must_be_zero_for):
                continue
            vals = cell.values(metric.name)
            if any(v != 0 for v in vals):
                broken.append({"cell": key.name, "metric": metric.name, "unit": metric.unit,
                               "values": vals, "max": max(vals)})
    return broken


def compare_cell(label, old_cell, new_cell, metrics, primary, shown, args):
    """All rows of one matched cell, Holm over its primary rows, and what it lacks."""
    noise = args.noise / 100.0
    rows, missing = [], []
    for name, metric in metrics.items():
        is_primary = name in primary
        if not is_primary and shown and name not in shown:
            continue
        old_vals, new_vals = old_cell.values(name), new_cell.values(name)
        if not old_vals or not new_vals:
            if is_primary or old_vals or new_vals:
                side = "both sides" if not old_vals and not new_vals else ("old" if not old_vals else "new")
                missing.append({"metric": name, "missing_in": side})
            continue
        if not args.all and not shown and not is_primary and all(v == 0 for v in old_vals + new_vals):
            continue
        rows.append(compare_metric(metric, old_vals, new_vals, args.alpha, noise, is_primary))
    prim = [r for r in rows if r["primary"]]
    for r, adj in zip(prim, stats.holm([r["p"] for r in prim])):
        r["p_holm"] = adj
        r["family"] = sum(1 for x in prim if x["p"] is not None)
    for r in rows:
        decide(r, args.alpha)
    # Whether the design (the repetitions) lets any primary test of the cell reach
    # significance after Holm, whatever the data: the smallest p at these n, times the
    # family size, below alpha.
    tested = [r for r in prim if r["p"] is not None]
    family = len(tested)
    floor = min((stats.min_p_value(r["n_old"], r["n_new"]) for r in tested), default=None)
    reachable = bool(tested) and floor * family < args.alpha
    verdicts = [r["verdict"] for r in prim]
    if REGRESSED in verdicts:
        status = REGRESSED
    elif IMPROVED in verdicts:
        status = IMPROVED
    elif not reachable:
        status = "undecidable"
    else:
        status = "no change"
    return {"cell": label, "reps_old": len(old_cell.reps), "reps_new": len(new_cell.reps),
            "status": status, "reachable": reachable, "p_floor": floor, "family": family,
            "missing": missing, "metrics": rows}


def build(old_report, new_report, args, pair, primary, shown):
    """The whole comparison as a JSON-ready dict."""
    matched, only_old, only_new = pair_cells(old_report, new_report, pair)
    cells, warnings, infeasible, turned_infeasible, runtime_changed = [], [], [], [], []
    for label, old_cell, new_cell in matched:
        if not pair and old_cell.runtime != new_cell.runtime:
            # The same name on another runtime is another exhibit: never read as a change.
            runtime_changed.append({"cell": label, "old": old_cell.runtime, "new": new_cell.runtime})
            continue
        if old_cell.infeasible or new_cell.infeasible:
            entry = {"cell": label, "old": old_cell.infeasible, "new": new_cell.infeasible}
            infeasible.append(entry)
            if new_cell.infeasible and not old_cell.infeasible:
                turned_infeasible.append(entry)
            continue
        cell = compare_cell(label, old_cell, new_cell, new_report.metrics, primary, shown, args)
        cell["runtime_old"], cell["runtime_new"] = old_cell.runtime, new_cell.runtime
        cells.append(cell)
    crossing = sorted({(c["runtime_old"], c["runtime_new"]) for c in cells if c["runtime_old"] != c["runtime_new"]})
    for a, b in crossing:
        warnings.append(f"the pair crosses runtimes ({runtimes.label(a)} vs {runtimes.label(b)}): each difference "
                        "is the runtime's and the pattern's together, not a change of one exhibit")

    undecidable = [c for c in cells if not c["reachable"]]
    reps = ", ".join(f"{a} vs {b}" for a, b in sorted({(c["reps_old"], c["reps_new"]) for c in undecidable}))
    floors = [c["p_floor"] for c in undecidable if c["p_floor"] is not None]
    family = max((c["family"] for c in undecidable), default=0)
    if floors:
        floor_txt = (f"the smallest reachable p is {fmt.pvalue(min(floors))}, Holm over {family} primary "
                     f"metric{'s' * (family != 1)} needs < {args.alpha / family:.3g}")
    else:
        floor_txt = "no primary metric has 2 repetitions on both sides"
    if undecidable:
        warnings.append(
            f"{len(undecidable)} of {len(cells)} cells cannot reach significance with n = {reps} "
            f"repetitions ({floor_txt}); use >= {WARN_REPS} repetitions per side")
    for r in {old_report.path: old_report, new_report.path: new_report}.values():
        if r.context.get("interrupted"):
            warnings.append(f"{r.path}: run was interrupted; cells may be missing")
    broken = check_invariants(new_report)
    prim_rows = [m for c in cells for m in c["metrics"] if m["primary"]]
    sec_rows = [m for c in cells for m in c["metrics"] if not m["primary"]]
    regressed = sum(1 for m in prim_rows if m["verdict"] == REGRESSED)
    improved = sum(1 for m in prim_rows if m["verdict"] == IMPROVED)
    vanished = [] if pair else only_old

    inconclusive = []
    if cells and len(undecidable) == len(cells):
        inconclusive.append(f"no test could reach significance with n = {reps} repetitions ({floor_txt})")
    elif undecidable:
        inconclusive.append(f"{len(undecidable)} of {len(cells)} cells could not reach significance "
                            f"with n = {reps} repetitions ({floor_txt})")
    elif not cells:
        inconclusive.append("no cell measured on both sides")
    if vanished:
        inconclusive.append(f"{len(vanished)} cell{'s' if len(vanished) != 1 else ''} vanished")
    if runtime_changed:
        inconclusive.append(f"{len(runtime_changed)} cell{'s' if len(runtime_changed) != 1 else ''} "
                            "changed runtime (not compared)")
    if turned_infeasible:
        inconclusive.append(f"{len(turned_infeasible)} cell{'s' if len(turned_infeasible) != 1 else ''} "
                            "turned infeasible")
    if regressed or broken:
        code = EXIT_REGRESSION
    elif inconclusive:
        code = EXIT_INCONCLUSIVE
    else:
        code = EXIT_OK
    counts = {
        "cells": len(cells),
        "regressed": sum(1 for c in cells if c["status"] == REGRESSED),
        "improved": sum(1 for c in cells if c["status"] == IMPROVED),
        "no_change": sum(1 for c in cells if c["status"] == "no change"),
        "undecidable": len(undecidable),
        "secondary_changes": sum(1 for m in sec_rows if m["verdict"] in CHANGES),
        "vanished": len(vanished), "turned_infeasible": len(turned_infeasible),
        "broken_invariants": len(broken), "runtime_changed": len(runtime_changed),
    }
    res = {
        "old": old_report.path, "new": new_report.path,
        "pair": list(pair) if pair else None, "primary": list(primary),
        "alpha": args.alpha, "noise": args.noise / 100.0,
        "test": "Mann-Whitney U, two-sided; exact conditional distribution (ties included) "
                f"up to {stats.EXACT_MAX_SPLITS:,} splits, else normal approximation",
        "correction": "Holm over the primary metrics of each cell",
        "interval": f"Hodges-Lehmann, {1 - args.alpha:.0%}",
        "value": "median over repetitions",
        "warnings": warnings, "cells": cells, "infeasible": infeasible,
        "turned_infeasible": turned_infeasible, "runtime_changed": runtime_changed,
        "only_old": only_old, "only_new": only_new,
        "broken_invariants": broken, "regressed": regressed, "improved": improved,
        "counts": counts, "inconclusive": inconclusive, "exit": code,
    }
    res["summary"] = summary_sentence(res)
    return res


def summary_sentence(res):
    """One sentence, criterion.rs style, ending with the exit status."""
    c = res["counts"]
    code = res["exit"]
    if code == EXIT_REGRESSION:
        parts = []
        if c["regressed"]:
            parts.append(f"Performance has regressed in {c['regressed']} cell{'s' * (c['regressed'] != 1)}")
        if c["broken_invariants"]:
            parts.append(f"{c['broken_invariants']} must-be-zero invariant{'s' * (c['broken_invariants'] != 1)} "
                         "broken")
        return "; ".join(parts) + f": exit {code}."
    if code == EXIT_INCONCLUSIVE:
        return "Inconclusive: " + "; ".join(res["inconclusive"]) + f": exit {code}."
    if c["improved"]:
        return (f"Performance has improved in {c['improved']} cell{'s' * (c['improved'] != 1)}, "
                f"no regression beyond noise: exit {code}.")
    return f"No change in performance beyond noise detected: exit {code}."


def _runtime_text(c):
    """"Go" or "C++ threads vs Go": the runtime(s) of a compared cell."""
    a, b = c.get("runtime_old"), c.get("runtime_new")
    if a is None:
        return ""
    return runtimes.label(a) if a == b else f"{runtimes.label(a)} vs {runtimes.label(b)}"


def _title(res):
    if res["pair"]:
        a, b = res["pair"]
        ra = {c.get("runtime_old") for c in res["cells"]} - {None}
        rb = {c.get("runtime_new") for c in res["cells"]} - {None}
        if ra and rb and ra != rb:
            return (f"{a} ({', '.join(map(runtimes.label, sorted(ra)))}, old) vs {b} "
                    f"({', '.join(map(runtimes.label, sorted(rb)))}, new) in {res['new']}, across runtimes")
        return f"{a} (old) vs {b} (new) in {res['new']}"
    return f"{res['old']} (old) vs {res['new']} (new)"


def _method_line(res):
    return (f"primary metrics: {', '.join(res['primary'])}; Mann-Whitney U (exact for small "
            f"samples), Holm within each cell, alpha {res['alpha']:g}; change: Hodges-Lehmann "
            f"[{1 - res['alpha']:.0%} interval]; noise: the larger of {fmt.pct(res['noise'], signed=False)} "
            "and the cell's pooled CV")


def _change(m):
    """The change as the comparison may print it: the interval, or '~' when not defended."""
    if m["verdict"] in CHANGES + (WITHIN_NOISE,):
        if m["scale"] == "difference" and m["old"] == 0 and m["shift"] is not None:
            unit = f" {m['unit']}" if m["unit"] else ""
            lo, hi = fmt.num(m["shift_low"]), fmt.num(m["shift_high"])
            return f"[{lo} {fmt.num(m['shift'])} {hi}]{unit} (old 0)"
        return fmt.pct_interval(m["change_low"], m["change"], m["change_high"])
    return "~"


def _p(m):
    if m["p"] is None:
        return "-"
    s = fmt.pvalue(m["p"])
    if m["primary"] and m["p_holm"] is not None:
        s += f" (Holm {fmt.pvalue(m['p_holm'])})"
    return s


def _line(m):
    """One short line for a metric that changed beyond noise."""
    return (f"{m['metric']}  {fmt.num(m['old'])} -> {fmt.num(m['new'])} {m['unit']}  {_change(m)}  "
            f"p {_p(m)}  n {m['n_old']}+{m['n_new']}  noise {fmt.pct(m['noise'], signed=False)}  "
            f"{m['verdict']}")


HEADER = ["metric", "unit", "old", "new", "change", "p", "noise", "verdict"]


def _row(m, bold=False):
    verdict = m["verdict"] if m["verdict"] not in (NOT_SIGNIFICANT, WITHIN_NOISE) else f"~ {m['verdict']}"
    if bold and m["verdict"] in CHANGES:
        verdict = f"**{verdict}**"
    name = m["metric"] + (" *" if m["primary"] else "")
    return [name, m["unit"], f"{fmt.num(m['old'])} (n {m['n_old']})", f"{fmt.num(m['new'])} (n {m['n_new']})",
            _change(m), _p(m), fmt.pct(m["noise"], signed=False), verdict]


def _changed(res, primary):
    return [(c, m) for c in res["cells"] for m in c["metrics"]
            if m["primary"] == primary and m["verdict"] in CHANGES]


def _tail(res, code, full):
    out = []
    both = [i for i in res["infeasible"] if i["old"] and i["new"]]
    for i in res["infeasible"]:
        if i in both:
            if full:
                same = i["old"] == i["new"]
                out.append(f"infeasible on both sides: {code(i['cell'])}: "
                           + (i["new"] if same else f"old {i['old']}; new {i['new']}"))
        elif i["new"]:
            out.append(f"TURNED INFEASIBLE: {code(i['cell'])}: {i['new']}")
        else:
            out.append(f"now feasible: {code(i['cell'])} (old: {i['old']})")
    if both and not full:
        out.append(f"infeasible on both sides: {len(both)} cell{'s' * (len(both) != 1)} (--all lists them)")
    for r in res.get("runtime_changed", []):
        out.append(f"RUNTIME CHANGED, not compared: {code(r['cell'])}: {runtimes.label(r['old'])} in old, "
                   f"{runtimes.label(r['new'])} in new")
    if res["only_old"]:
        what = f"only for {res['pair'][0]}" if res["pair"] else "VANISHED (only in old)"
        out.append(f"{what}: " + ", ".join(code(x) for x in res["only_old"]))
    if res["only_new"]:
        what = f"only for {res['pair'][1]}" if res["pair"] else "new cells (only in new)"
        out.append(f"{what}: " + ", ".join(code(x) for x in res["only_new"]))
    if res["broken_invariants"]:
        for b in res["broken_invariants"]:
            out.append(f"BROKEN INVARIANT: {code(b['cell'])}: {b['metric']} must be 0, "
                       f"got {', '.join(fmt.num(v) for v in b['values'])} {b['unit']}")
    else:
        out.append("invariants: ok (every measured must-be-zero metric is zero)")
    c = res["counts"]
    out.append(f"cells: {c['cells']} compared: {c['regressed']} regressed, {c['improved']} improved, "
               f"{c['no_change']} no change beyond noise (~), {c['undecidable']} undecidable (too few "
               f"repetitions); {c['vanished']} vanished, {c['turned_infeasible']} turned infeasible; "
               f"secondary metric changes: {c['secondary_changes']} (uncorrected, not in the exit status)")
    out.append(res["summary"])
    return out


def render_text(res, full):
    """Plain-text report: short by default, every cell and metric with full=True."""
    out = [f"compare: {_title(res)}", _method_line(res)]
    out += [f"warning: {w}" for w in res["warnings"]]
    if full:
        for c in res["cells"]:
            out += ["", f"{c['cell']}  ({_runtime_text(c)}; repetitions {c['reps_old']} vs {c['reps_new']}; "
                    "* primary)"]
            if c["metrics"]:
                out += ["  " + line for line in fmt.text_table(HEADER, [_row(m) for m in c["metrics"]]).splitlines()]
            else:
                out.append("  (no metric on both sides)")
            for m in c["missing"]:
                out.append(f"  {m['metric']}: no value in {m['missing_in']} (null: not measured)")
    else:
        changed = _changed(res, True)
        out += ["", "changed beyond noise (primary metrics: these decide the exit status):"]
        out += [f"  {c['cell']} ({_runtime_text(c)}): {_line(m)}" for c, m in changed] or ["  none"]
        secondary = _changed(res, False)
        if secondary:
            out += ["", f"secondary metrics changed beyond noise: {len(secondary)} (not corrected "
                    "for multiple tests; --all lists them)"]
    out.append("")
    out += _tail(res, lambda s: s, full)
    return "\n".join(out) + "\n"


def render_md(res, full):
    """GitHub Markdown report."""
    out = [f"## Comparison: {_title(res)}", "", _method_line(res) + ".", ""]
    out += [f"> warning: {w}" for w in res["warnings"]]
    if full:
        for c in res["cells"]:
            out += ["", f"### `{c['cell']}` ({_runtime_text(c)}; repetitions {c['reps_old']} vs {c['reps_new']}; "
                    "* primary)", ""]
            rows = [_row(m, bold=True) for m in c["metrics"]]
            out.append(fmt.md_table(HEADER, rows) if rows else "(no metric on both sides)")
            for m in c["missing"]:
                out.append(f"- `{m['metric']}`: no value in {m['missing_in']} (null: not measured)")
    else:
        changed = _changed(res, True)
        out += ["", "### Changed beyond noise (primary metrics)", ""]
        if changed:
            out.append(fmt.md_table(["cell", "runtime"] + HEADER,
                                    [[f"`{c['cell']}`", _runtime_text(c)] + _row(m, bold=True)
                                     for c, m in changed]))
        else:
            out.append("None.")
        secondary = _changed(res, False)
        if secondary:
            out += ["", f"Secondary metrics changed beyond noise: {len(secondary)} (not corrected for "
                    "multiple tests; `--all` lists them)."]
    out.append("")
    out += [f"- {line}" for line in _tail(res, lambda s: f"`{s}`", full)[:-1]]
    out += ["", f"**{res['summary']}**"]
    return "\n".join(out) + "\n"


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def fail(message):
    """Print a one-line error and exit 2."""
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(EXIT_INPUT)


def _metric_list(text, option, known):
    names = [m for m in text.split(",") if m]
    unknown = [m for m in names if m not in known]
    if unknown:
        fail(f"{option}: unknown metric(s) {', '.join(unknown)}")
    return names


def main(argv=None):
    """Entry point; returns the exit code."""
    args = create_parser().parse_args(argv)
    pair = None
    if args.pair:
        a, sep, b = args.pair.partition(":")
        if not sep or not a or not b:
            fail(f"--pair: expected A:B (two pattern names), got '{args.pair}'")
        pair = (a, b)
        if len(args.reports) != 1:
            fail("--pair takes exactly one REPORT")
    elif len(args.reports) != 2:
        fail("expected OLD NEW (two reports), or one REPORT with --pair A:B")
    if not 0 < args.alpha < 1:
        fail(f"--alpha must be between 0 and 1, got {args.alpha}")
    if not args.noise >= 0:
        fail(f"--noise must be >= 0, got {args.noise}")
    try:
        reports = [load_report(path) for path in args.reports]
    except ReportError as e:
        fail(str(e))
    old_report, new_report = (reports[0], reports[0]) if pair else reports
    if pair:
        present = set(new_report.patterns())
        for name in pair:
            if name not in present:
                fail(f"{new_report.path}: no pattern '{name}' (patterns: {', '.join(sorted(present))})")
    primary = _metric_list(args.primary, "--primary", new_report.metrics)
    if not primary:
        fail("--primary: at least one metric")
    shown = _metric_list(args.metrics, "--metrics", new_report.metrics) if args.metrics else None
    res = build(old_report, new_report, args, pair, primary, shown)
    for w in res["warnings"]:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(_json_safe(res), indent=2))
    elif args.format == "md":
        sys.stdout.write(render_md(res, args.all))
    else:
        sys.stdout.write(render_text(res, args.all))
    return res["exit"]


if __name__ == "__main__":
    sys.exit(main())
