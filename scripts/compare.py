#!/usr/bin/env python3
"""Compare two orchlab reports (or two patterns of one report) metric by metric."""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import fmt, stats  # noqa: E402
from orchlab_py.metrics import pattern_matches  # noqa: E402
from orchlab_py.report import ReportError, load_report  # noqa: E402

PROG = "compare.py"
# Below this many repetitions per side the test has little power; say so.
WARN_REPS = 5


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Compare orchlab reports: per cell and metric old/new/change, a two-sided "
        "Mann-Whitney U p-value over repetitions, a verdict only when significant and larger "
        "than the noise, and the must-be-zero invariants. Exit 0 ok, 1 regression or broken "
        "invariant, 2 unreadable or wrong-schema input.",
        epilog="Examples: compare.py old.json new.json | "
        "compare.py report.json --pair channel-soup:cancellable-group",
    )
    p.add_argument("reports", nargs="+", metavar="REPORT",
                   help="OLD NEW, or one REPORT with --pair")
    p.add_argument("--pair", metavar="A:B",
                   help="compare pattern A (old side) with pattern B (new side) within one report")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level for a verdict (default: 0.05)")
    p.add_argument("--noise", type=float, default=5.0,
                   help="smallest relative change, in percent, that earns a verdict (default: 5)")
    p.add_argument("--metrics", metavar="M1,M2",
                   help="only these metrics (default: every metric of the metric table)")
    p.add_argument("--all", action="store_true",
                   help="also list metrics that are zero on both sides (default: hidden)")
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


def compare_metric(metric, old_vals, new_vals, alpha, noise):
    """One row: medians, change, p-value and verdict for one metric of one cell pair."""
    old, new = stats.median(old_vals), stats.median(new_vals)
    change = relative_change(old, new)
    if metric.better == "none":
        worse = False
    else:
        worse = change > 0 if metric.better == "lower" else change < 0
    p = None
    if len(old_vals) >= 2 and len(new_vals) >= 2:
        p = stats.mann_whitney_u(old_vals, new_vals).p
    if p is None:
        verdict = "n/a"  # too few repetitions for any statement
    elif p < alpha and abs(change) > noise:
        if metric.better == "none":
            verdict = "changed"  # significant, but the metric has no better direction
        else:
            verdict = "regressed" if worse else "improved"
    else:
        verdict = "not significant"
    return {
        "metric": metric.name, "unit": metric.unit, "better": metric.better,
        "old": old, "new": new, "change": change, "worse": bool(worse and change != 0),
        "p": p, "verdict": verdict, "n_old": len(old_vals), "n_new": len(new_vals),
    }


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
    """Every must-be-zero metric that is not zero in some feasible cell of the report."""
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


def build(old_report, new_report, args, pair, selected):
    """The whole comparison as a JSON-ready dict."""
    noise = args.noise / 100.0
    matched, only_old, only_new = pair_cells(old_report, new_report, pair)
    cells, warnings, infeasible = [], [], []
    min_reps = None
    for label, old_cell, new_cell in matched:
        if old_cell.infeasible or new_cell.infeasible:
            infeasible.append({"cell": label, "old": old_cell.infeasible, "new": new_cell.infeasible})
            continue
        rows = []
        for name, metric in new_report.metrics.items():
            if selected and name not in selected:
                continue
            old_vals, new_vals = old_cell.values(name), new_cell.values(name)
            if not old_vals or not new_vals:
                continue
            if not args.all and not selected and all(v == 0 for v in old_vals + new_vals):
                continue
            rows.append(compare_metric(metric, old_vals, new_vals, args.alpha, noise))
        n = min(len(old_cell.reps), len(new_cell.reps))
        min_reps = n if min_reps is None else min(min_reps, n)
        cells.append({"cell": label, "reps_old": len(old_cell.reps),
                      "reps_new": len(new_cell.reps), "metrics": rows})
    if min_reps is not None and min_reps < 2:
        warnings.append("some cells have fewer than 2 repetitions on a side: no p-value, no verdict there")
    elif min_reps is not None and min_reps < WARN_REPS:
        floor = stats.min_p_value(min_reps, min_reps)
        note = " (no verdict possible at this alpha)" if floor >= args.alpha else ""
        warnings.append(f"only {min_reps} repetitions per side in some cells; the smallest reachable "
                        f"p-value there is {fmt.pvalue(floor)}{note}; use >= {WARN_REPS} repetitions")
    for r in {old_report.path: old_report, new_report.path: new_report}.values():
        if r.context.get("interrupted"):
            warnings.append(f"{r.path}: run was interrupted; cells may be missing")
    broken = check_invariants(new_report)
    regressed = sum(1 for c in cells for m in c["metrics"] if m["verdict"] == "regressed")
    improved = sum(1 for c in cells for m in c["metrics"] if m["verdict"] == "improved")
    return {
        "old": old_report.path, "new": new_report.path,
        "pair": list(pair) if pair else None,
        "alpha": args.alpha, "noise": noise, "test": "Mann-Whitney U, two-sided",
        "value": "median over repetitions",
        "warnings": warnings, "cells": cells, "infeasible": infeasible,
        "only_old": only_old, "only_new": only_new, "broken_invariants": broken,
        "regressed": regressed, "improved": improved,
        "exit": 1 if regressed or broken else 0,
    }


def _title(res):
    if res["pair"]:
        a, b = res["pair"]
        return f"{a} (old) vs {b} (new) in {res['new']}"
    return f"{res['old']} (old) vs {res['new']} (new)"


def _row(m):
    change = fmt.pct(m["change"])
    if m["change"] != 0 and m["better"] != "none":
        change += " worse" if m["worse"] else " better"
    return [m["metric"], m["unit"], fmt.num(m["old"]), fmt.num(m["new"]), change,
            fmt.pvalue(m["p"]), m["verdict"]]


HEADER = ["metric", "unit", "old", "new", "change", "p", "verdict"]


def render_text(res):
    """Plain-text report."""
    out = [f"compare: {_title(res)}",
           f"values: {res['value']}; test: {res['test']}; verdict when p < {res['alpha']} "
           f"and |change| > {fmt.pct(res['noise'], signed=False)}"]
    out += [f"warning: {w}" for w in res["warnings"]]
    for c in res["cells"]:
        out += ["", f"{c['cell']}  (repetitions {c['reps_old']} vs {c['reps_new']})"]
        if c["metrics"]:
            out += ["  " + line for line in fmt.text_table(HEADER, [_row(m) for m in c["metrics"]]).splitlines()]
        else:
            out.append("  (no metric on both sides)")
    out += _tail(res, lambda s: s)
    return "\n".join(out) + "\n"


def _tail(res, code):
    out = []
    for i in res["infeasible"]:
        out.append(f"infeasible: {code(i['cell'])}: old {i['old'] or 'ran'}; new {i['new'] or 'ran'}")
    if res["only_old"]:
        out += ["", "only in old: " + ", ".join(code(x) for x in res["only_old"])]
    if res["only_new"]:
        out += ["", "only in new: " + ", ".join(code(x) for x in res["only_new"])]
    out.append("")
    if res["broken_invariants"]:
        for b in res["broken_invariants"]:
            out.append(f"BROKEN INVARIANT: {code(b['cell'])}: {b['metric']} must be 0, "
                       f"got {', '.join(fmt.num(v) for v in b['values'])} {b['unit']}")
    else:
        out.append("invariants: ok (every must-be-zero metric is zero)")
    out.append(f"summary: {len(res['cells'])} cells compared, {res['regressed']} regressed, "
               f"{res['improved']} improved, {len(res['broken_invariants'])} broken invariants "
               f"-> exit {res['exit']}")
    return out


def render_md(res):
    """GitHub Markdown report."""
    out = [f"## Comparison: {_title(res)}", "",
           f"Values are the {res['value']}; p from the {res['test']} test; a verdict needs "
           f"p < {res['alpha']} and |change| > {fmt.pct(res['noise'], signed=False)}.", ""]
    out += [f"> warning: {w}" for w in res["warnings"]]
    for c in res["cells"]:
        out += ["", f"### `{c['cell']}` (repetitions {c['reps_old']} vs {c['reps_new']})", ""]
        rows = [_row(m) for m in c["metrics"]]
        for r in rows:
            if r[-1] in ("regressed", "improved"):
                r[-1] = f"**{r[-1]}**"
        out.append(fmt.md_table(HEADER, rows) if rows else "(no metric on both sides)")
    out.append("")
    out += _tail(res, lambda s: f"`{s}`")
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
    sys.exit(2)


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
    if args.noise < 0:
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
    selected = None
    if args.metrics:
        selected = [m for m in args.metrics.split(",") if m]
        unknown = [m for m in selected if m not in new_report.metrics]
        if unknown:
            fail(f"--metrics: unknown metric(s) {', '.join(unknown)}")
    res = build(old_report, new_report, args, pair, selected)
    for w in res["warnings"]:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(_json_safe(res), indent=2))
    elif args.format == "md":
        sys.stdout.write(render_md(res))
    else:
        sys.stdout.write(render_text(res))
    return res["exit"]


if __name__ == "__main__":
    sys.exit(main())
