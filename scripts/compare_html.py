#!/usr/bin/env python3
"""Write compare.html: compare.py's verdicts as one self-contained page, changes beyond noise highlighted."""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import fmt, runtimes  # noqa: E402
from report_html import CSS, JS, badge, esc, num_cell, table  # noqa: E402

PROG = "compare_html.py"
SCRIPTS = os.path.dirname(os.path.abspath(__file__))
# Row colours: what a reader must see first.
HIGHLIGHT = {"regressed": "#fbe3d6", "improved": "#d9f0e6", "changed": "#fff4e0"}


def create_parser():
    """Command-line interface; options it does not know go to compare.py unchanged."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run compare.py --format json and write its result as one self-contained HTML "
        "page: the verdict sentence, broken invariants, vanished and infeasible cells, then every "
        "primary metric and every change beyond noise, highlighted. Other options (--pair, --alpha, "
        "--noise, --primary, ...) are passed to compare.py. Exit 0 when the page is written (the "
        "verdict is on it, and in compare.py's own exit status), 2 on unusable input.",
        epilog="Example: compare_html.py results/reference/report.json results/latest/report.json "
        "-o results/latest/compare.html",
    )
    p.add_argument("reports", nargs="+", metavar="REPORT", help="OLD NEW, or REPORT with --pair A:B")
    p.add_argument("-o", "--out", metavar="OUT", default=None,
                   help="output file (default: compare.html next to the last REPORT)")
    return p


def run_compare(reports, extra):
    """compare.py's JSON, or exit 2 with its message."""
    cmd = [sys.executable, os.path.join(SCRIPTS, "compare.py"), *reports, *extra, "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 2 or not proc.stdout.strip():
        msg = (proc.stderr.strip().splitlines() or [f"compare.py exited {proc.returncode}"])[-1]
        print(msg if msg.startswith("compare.py") else f"{PROG}: {msg}", file=sys.stderr)
        sys.exit(2)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        print(f"{PROG}: compare.py printed no JSON: {e.msg}", file=sys.stderr)
        sys.exit(2)


def _change(m):
    lo, est, hi = m.get("change_low"), m.get("change"), m.get("change_high")
    if m.get("scale") == "difference" and m.get("shift") is not None and not m.get("old"):
        return f"{fmt.num(m['shift'])} {m.get('unit', '')} (old 0)"
    return fmt.pct_interval(lo, est, hi)


def metric_rows(doc, everything=False):
    """One row per (cell, metric): primary metrics and changes beyond noise, or every metric."""
    rows = []
    for cell in doc.get("cells", []):
        for m in cell.get("metrics", []):
            verdict = m.get("verdict", "")
            if not everything and not m.get("primary") and verdict not in HIGHLIGHT:
                continue
            colour = HIGHLIGHT.get(verdict)
            style = f' style="background:{colour}"' if colour else ""
            name = m.get("metric", "") + (" *" if m.get("primary") else "")
            p = m.get("p_holm") if m.get("primary") and m.get("p_holm") is not None else m.get("p")
            cells = [f"<td>{esc(cell.get('cell', ''))}</td>", f"<td>{esc(_runtime(cell))}</td>",
                     f"<td>{esc(name)}</td>",
                     num_cell(_num(m.get("old"))), num_cell(_num(m.get("new"))),
                     f'<td class="n" data-v="{_num(m.get("change")) if _num(m.get("change")) is not None else ""}">'
                     f"{esc(_change(m))}</td>",
                     num_cell(_num(p), 2), f"<td class=\"n\">{m.get('n_old', '?')} vs {m.get('n_new', '?')}</td>",
                     f"<td class=\"n\">{esc(fmt.pct(_num(m.get('noise')), signed=False))}</td>",
                     f'<td data-v="{esc(verdict)}">{badge(verdict) if colour else esc(verdict)}</td>']
            rows.append([c.replace("<td", f"<td{style}", 1) if colour else c for c in cells])
    return rows


def _runtime(cell):
    """The cell's runtime, or both when a pair crosses runtimes ("C++ threads vs Go")."""
    a, b = cell.get("runtime_old"), cell.get("runtime_new")
    if a is None:
        return ""
    return runtimes.label(a) if a == b else f"{runtimes.label(a)} vs {runtimes.label(b)}"


def _num(v):
    if v in ("inf", "-inf"):
        return float(v)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def render(doc):
    """The page as a string."""
    sides = (f"{esc(doc.get('old'))} (pattern A) vs pattern B" if doc.get("pair")
             else f"old <code>{esc(doc.get('old'))}</code>, new <code>{esc(doc.get('new'))}</code>")
    status = doc.get("exit")
    tone = {0: "#009E73", 1: "#D55E00", 3: "#E69F00"}.get(status, "#7F7F7F")
    parts = [f"<h1>orchlab compare</h1><p>{sides}"
             + (f"; pair <code>{esc(doc['pair'])}</code>" if doc.get("pair") else "") + "</p>",
             f'<p class="warn" style="border-color:{tone}"><strong>{esc(doc.get("summary", ""))}</strong></p>',
             f"<p class=\"muted\">alpha {esc(doc.get('alpha'))}, noise threshold ≥ "
             f"{esc(fmt.pct(_num(doc.get('noise')), signed=False))}, primary metrics "
             f"{esc(', '.join(doc.get('primary') or []))} (marked *; Holm-adjusted p), "
             f"counts {esc(json.dumps(doc.get('counts', {})))}</p>"]
    for title, key in (("Broken invariants", "broken_invariants"), ("Turned infeasible", "turned_infeasible"),
                       ("Changed runtime (not compared)", "runtime_changed"),
                       ("Vanished (only in old)", "only_old"), ("Only in new", "only_new"),
                       ("Infeasible", "infeasible"), ("Warnings", "warnings")):
        items = doc.get(key) or []
        if items:
            li = "".join(f"<li>{esc(i if isinstance(i, str) else json.dumps(i))}</li>" for i in items)
            parts.append(f"<h2>{esc(title)}</h2><ul>{li}</ul>")
    headers = ["cell", "runtime", "metric", "old", "new", "change [95 % interval]", "p", "n", "noise", "verdict"]
    parts.append("<h2>Primary metrics and changes beyond noise</h2>"
                 + table(headers, metric_rows(doc), sortable=True, raw=True))
    parts.append("<details><summary>every metric of every cell</summary>"
                 + table(headers, metric_rows(doc, everything=True), sortable=True, raw=True) + "</details>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>orchlab compare</title>'
            f"<style>{CSS}</style></head>\n<body>{''.join(parts)}\n<script>{JS}</script></body></html>\n")


def main(argv=None):
    """Entry point; returns the exit code."""
    args, extra = create_parser().parse_known_args(argv)
    doc = run_compare(args.reports, extra)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.reports[-1])), "compare.html")
    tmp = f"{out}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(render(doc))
        os.replace(tmp, out)
    except OSError as e:
        print(f"{PROG}: {out}: cannot write: {e.strerror or e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
