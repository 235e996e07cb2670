#!/usr/bin/env python3
"""Write index.html beside a report: one self-contained page with the run, the claims and the figures."""

import argparse
import html
import io
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import claimkit, fmt, require, runtimes, style, traces, verdicts  # noqa: E402
from orchlab_py.report import ReportError, load_micro, load_report, micro_beside  # noqa: E402
from orchlab_py.report import host_busy_line, micro_build_line, micro_context  # noqa: E402

PROG = "report_html.py"

# Per-scenario table: (header, metric, how to summarise the repetitions, scale, unit shown).
CELL_COLUMNS = [
    ("throughput (orch/s)", "items_per_second", "median", 1, ""),
    ("p50 (ms)", "p50_us", "median", 1e-3, ""),
    ("p99 (ms)", "p99_us", "median", 1e-3, ""),
    ("p99.9 (ms)", "p999_us", "median", 1e-3, ""),
    ("timed out (%)", "timed_out", "share", 100, ""),
    ("failed or partial (%)", ("failed", "partial"), "share", 100, ""),
    ("tasks left at return (/orch)", "leaked_tasks_at_return", "per_orch", 1, ""),
    ("late completions (/orch)", "late_completions", "per_orch", 1, ""),
    ("client aborts (/orch)", "server_client_aborts", "per_orch", 1, ""),
    ("pool exhausted (/orch)", "pool_exhausted", "per_orch", 1, ""),
    ("lock wait (µs/orch)", "lock_wait_ns", "per_orch", 1e-3, ""),
    ("OS threads peak", "threads_peak", "max", 1, ""),
]

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1a1a;margin:0 auto;max-width:1100px;padding:0 1.2em 3em}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.6em}nav a{margin-right:1em}code{font-size:.92em;background:#f4f4f4;padding:0 .2em;border-radius:3px}
dl.ctx{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1.2em;margin:.8em 0}dl.ctx dt{color:#555}dl.ctx dd{margin:0}
.warn{background:#fff4e0;border-left:4px solid #E69F00;padding:.5em .8em;margin:.8em 0}
.scroll{overflow-x:auto;margin:.6em 0 1em}table{border-collapse:collapse;font-size:.9em;width:100%}
th,td{border-bottom:1px solid #e4e4e4;padding:.3em .5em;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}
table.sortable th::after{content:" \\2195";color:#aaa}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";color:#333}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";color:#333}
.badge{display:inline-block;padding:0 .45em;border-radius:3px;color:#fff;font-weight:600;white-space:nowrap}
.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.35em;vertical-align:-.05em}
figure{margin:1em 0}figure svg{width:100%;max-width:900px;height:auto;display:block}
figcaption{color:#555;font-size:.85em}details{margin:.2em 0}summary{cursor:pointer;color:#0072B2}
.muted{color:#666}.nw{white-space:nowrap}
"""

# Click (or Enter on) a column header to sort by it; again to reverse. Empty cells sort last.
JS = """
function sortTable(table, th, col) {
  const asc = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("thead th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  const body = table.tBodies[0];
  const key = r => { const c = r.cells[col]; return c ? (c.dataset.v ?? c.textContent.trim()) : ""; };
  const rows = Array.from(body.rows);
  const numeric = rows.every(r => key(r) === "" || !isNaN(Number(key(r))));
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    const d = numeric ? Number(x) - Number(y) : x.localeCompare(y);
    return asc ? d : -d;
  });
  rows.forEach(r => body.appendChild(r));
}
document.querySelectorAll("table.sortable").forEach(table => {
  table.querySelectorAll("thead th").forEach((th, col) => {
    th.tabIndex = 0;
    th.title = "sort by this column";
    th.addEventListener("click", () => sortTable(table, th, col));
    th.addEventListener("keydown", e => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th, col); }
    });
  });
});
"""


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write one self-contained HTML page (inline SVG figures, CSS and JS; no network) "
        "with the run's context, the claims and their verdicts, the comparison table and a section "
        "per scenario with its figures and a sortable table of its cells.",
        epilog="Example: report_html.py results/latest/report.json   # writes results/latest/index.html",
    )
    p.add_argument("report", metavar="REPORT", help="orchlab report (JSON)")
    p.add_argument("-o", "--out", metavar="OUT", default=None,
                   help="output file (default: index.html next to REPORT)")
    p.add_argument("--micro", metavar="MICRO", help="Google Benchmark JSON of orchlab-micro (default: micro.json next to REPORT, if any)")
    p.add_argument("--no-micro", action="store_true", help="ignore a micro.json next to REPORT")
    p.add_argument("--trace", metavar="TRACE",
                   help="trace of orchlab run --trace (default: trace.json next to REPORT, if any): each traced "
                   "scenario gets its timelines figure and links to each traced orchestration, written as a "
                   "small trace file of its own under traces/ beside the page")
    p.add_argument("--no-trace", action="store_true", help="ignore a trace.json next to REPORT")
    return p


def esc(v):
    """HTML-escaped text of any value."""
    return html.escape(str(v), quote=True)


def md_inline(text):
    """The little Markdown claims.py writes in table cells: **bold** and `code`, escaped."""
    out = esc(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def badge(verdict):
    """A coloured verdict label."""
    return f'<span class="badge" style="background:{style.verdict_colour(verdict)}">{esc(verdict)}</span>'


def swatch(pattern):
    """A pattern's colour square followed by its name."""
    return (f'<span class="nw"><span class="sw" style="background:{style.pattern_colour(pattern)}"></span>'
            f"{esc(pattern)}</span>")


def num_cell(v, digits=3):
    """A right-aligned number cell sortable by its raw value; '–' for unknown."""
    if v is None:
        return '<td class="n" data-v="">–</td>'
    return f'<td class="n" data-v="{v:.12g}">{esc(fmt.num(v, digits))}</td>'


def table(headers, rows, sortable=False, raw=False):
    """An HTML table; rows are lists of ready <td> strings when raw, else of text."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(c if raw else f"<td>{md_inline(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------

def context_section(report):
    """The run: host, cores, sha, date, duration, interrupted, sanitizer, seed."""
    c = report.context
    usable, total = c.get("usable_cpus"), c.get("num_cpus")
    if usable is not None:
        cores = f"{usable} usable of {total} (affinity mask)"
    else:
        cores = f"{total} (usable cores not recorded)" if total is not None else "not recorded"
    duration = c.get("duration_s", c.get("wall_s"))
    windows = sum(float(r["wall_s"]) for cell in report.cells.values() for r in cell.reps
                  if isinstance(r.get("wall_s"), (int, float)))
    if isinstance(duration, (int, float)):
        dur = f"{fmt.num(duration)} s"
    elif windows:
        dur = f"not recorded; measured windows add up to {fmt.num(windows)} s"
    else:
        dur = "not recorded"
    rows = [("host", c.get("host_name")), ("usable cores", cores), ("git sha", c.get("git_sha")),
            ("date", c.get("date")), ("duration", dur),
            ("interrupted", "yes: some cells are missing" if c.get("interrupted") else "no")]
    if c.get("sanitizer"):
        rows.append(("sanitizer", c["sanitizer"]))
    rows += [("shuffle seed", c.get("shuffle_seed")), ("build", f"{c.get('build_type', '?')}, {c.get('compiler', '?')}"),
             ("cells", f"{len(report.cells)} in {len(report.scenarios())} scenarios, "
                       f"{len(report.patterns())} patterns"),
             ("command", c.get("command_line"))]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v if v not in (None, '') else 'not recorded')}</dd>" for k, v in rows)
    warn = ""
    if c.get("interrupted"):
        warn += '<p class="warn">The run was interrupted: the cells finished so far are shown.</p>'
    if host_busy_line(c):
        warn += f'<p class="warn">{esc(host_busy_line(c))}</p>'
    if c.get("sanitizer"):
        warn += (f'<p class="warn">Built with the {esc(c["sanitizer"])} sanitizer: memory, CPU and time '
                 "figures measure the instrumented program.</p>")
    return f'<section id="context"><h2>The run</h2>{warn}<dl class="ctx">{dl}</dl></section>'


def _interval_text(claim):
    n = verdicts.numbers(claim)
    est, lo, hi = n["estimate"], n["low"], n["high"]
    unit = f" {n['unit']}" if n["unit"] else ""
    if est is None:
        return "–"
    text = f"{fmt.num(est)}{unit}"
    text += f" [{fmt.num(lo)}, {fmt.num(hi)}]" if lo is not None and hi is not None else " (no interval)"
    if n.get("confidence") is not None:
        text += f" ({100 * n['confidence']:.1f} %)"
    if n["threshold"]:
        a, b = n["threshold"]
        text += f"; threshold {fmt.num(a)}" + (f"–{fmt.num(b)}" if b != a else "")
    if n["statistic"]:
        text = f"{n['statistic']}: {text}"
    return text


def _n_text(claim):
    """What the claim's number rests on: its independent units, the orchestrations behind them."""
    stat = claim.get("statistic")
    if isinstance(stat, dict) and isinstance(stat.get("rests_on"), str):
        return stat["rests_on"]
    tests = claim.get("tests") or [claim]
    t = tests[0] if isinstance(tests[0], dict) else {}
    parts = []
    reps = t.get("repetitions")
    if isinstance(reps, list) and reps:
        parts.append(" vs ".join(str(r) for r in reps) + " repetitions")
    if isinstance(t.get("samples"), (int, float)):
        parts.append(f"{fmt.num(t['samples'])} samples")
    return ", ".join(parts) or "–"


def _runtimes_html(claim):
    """Each runtime's answer to a claim (claims.py's "runtimes"): verdict and number, or
    not run and why."""
    items = []
    for rv in claim.get("runtimes") or []:
        name = rv.get("runtime_label") or rv.get("runtime", "?")
        if rv.get("configuration"):
            name += f" ({rv['configuration']})"
        if rv.get("status") == "evaluated":
            body = f"{badge(rv.get('verdict', '?'))} {esc(_interval_text(rv))}"
        else:
            body = f'<span class="muted">{esc(rv.get("status", ""))}: {md_inline(rv.get("reason", ""))}</span>'
        items.append(f"<li><strong>{esc(name)}</strong>: {body}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else "–"


def claims_section(claims_doc, claims_error, verdict_svg):
    """The claims summary: verdict, number with its interval, reason; rule and evidence folded."""
    if claims_doc is None:
        return (f'<section id="claims"><h2>Claims</h2><p class="warn">No claims: {esc(claims_error)}</p>'
                "</section>")
    rows = []
    for i, c in enumerate(claims_doc["claims"]):
        details = ""
        if c.get("rule") or c.get("evidence"):
            ev = "".join(f"<li>{md_inline(e)}</li>" for e in c.get("evidence") or [])
            details = (f"<details><summary>rule and evidence</summary><p>{md_inline(c.get('rule', ''))}</p>"
                       f"<ul>{ev}</ul></details>")
        why = md_inline(c.get("reason", ""))
        if c.get("precondition"):
            why += f'<br><span class="muted">precondition: {md_inline(claimkit.precondition_text(c))}</span>'
        rows.append([f'<td class="n" data-v="{i + 1}">{i + 1}</td>',
                     f"<td>{md_inline(c.get('claim', c.get('id', '')))}{details}</td>",
                     f'<td data-v="{esc(c.get("verdict", ""))}">{badge(c.get("verdict", "?"))}</td>',
                     f"<td>{esc(_interval_text(c))}</td>", f"<td>{esc(_n_text(c))}</td>", f"<td>{why}</td>",
                     f"<td>{_runtimes_html(c)}</td>"])
    tab = table(["#", "claim", "verdict", "estimate [interval] (its confidence)", "rests on", "why",
                 "per runtime"], rows, sortable=True, raw=True)
    dis = "".join(f"<li>{md_inline(x[2:])}</li>" for x in claims_doc.get("disagreements") or [])
    dis = (f"<h3>Where the runtimes disagree</h3><ul>{dis}</ul>" if dis else "")
    fig = figure_html(verdict_svg, "Each claim's statistic with its interval against the claimed threshold, "
                      "one row per claim and runtime, shaded by verdict.") if verdict_svg else ""
    return f'<section id="claims"><h2>Claims</h2>{tab}{dis}{fig}</section>'


def comparison_section(claims_doc):
    """The article's comparison table, one row per pattern, as claims.py derives it."""
    rows = (claims_doc or {}).get("table") or []
    if not rows:
        return ""
    headers = list(rows[0])
    body = []
    for r in rows:
        cells = [f"<td>{swatch(r[h]) if h == 'pattern' else md_inline(r.get(h, ''))}</td>" for h in headers]
        body.append(cells)
    names = [h.replace("_", " ") for h in headers]
    return (f'<section id="comparison"><h2>The comparison table</h2>{table(names, body, sortable=True, raw=True)}'
            '<p class="muted">How each column is decided: CLAIMS.md, "How each column is decided".</p></section>')


def _cell_value(cell, metric, how):
    if how == "median":
        return cell.median(metric)
    if how == "max":
        vals = cell.values(metric)
        return max(vals) if vals else None
    metrics = metric if isinstance(metric, tuple) else (metric,)
    totals = [cell.total(m) for m in metrics]
    orch = cell.total("iterations")
    if any(t is None for t in totals) or not orch:
        return None
    return sum(totals) / orch


def cells_table(report, scenario):
    """The scenario's cells, one row each, sortable."""
    headers = ["pattern", "runtime", "fanout", "callers", "n"] + [h for h, *_ in CELL_COLUMNS] + ["note"]
    rows = []
    cells = sorted(report.select(scenario, feasible=False),
                   key=lambda c: (c.key.fanout, c.key.concurrency, style.sort_patterns(report.patterns()).index(c.key.pattern)))
    for cell in cells:
        k = cell.key
        row = [f'<td data-v="{esc(k.pattern)}">{swatch(k.pattern)}</td>',
               f'<td data-v="{esc(cell.runtime)}">{esc(runtimes.label(cell.runtime))}</td>',
               num_cell(k.fanout), num_cell(k.concurrency), num_cell(len(cell.reps))]
        if cell.infeasible:
            row += ['<td class="n" data-v="">–</td>'] * len(CELL_COLUMNS)
            row.append(f"<td>infeasible: {esc(cell.infeasible)}</td>")
        else:
            for _, metric, how, scale, _ in CELL_COLUMNS:
                v = _cell_value(cell, metric, how)
                row.append(num_cell(None if v is None else v * scale))
            notes = []
            tr = next((r.get("go_transport") for r in cell.reps if isinstance(r.get("go_transport"), dict)), None)
            if tr:
                notes.append(f"Go transport {tr.get('mode')}" + (
                    f", {tr.get('max_conns_per_host')} connections per host" if tr.get("max_conns_per_host")
                    else ", no per-host bound"))
            if any(r.get("saturated") for r in cell.reps):
                notes.append("open loop saturated")
            row.append(f"<td>{esc('; '.join(notes))}</td>")
        rows.append(row)
    return table(headers, rows, sortable=True, raw=True)


def figure_html(svg, caption):
    """An inline SVG figure with its caption."""
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


# ---------------------------------------------------------------------------------------
# Figures as inline SVG
# ---------------------------------------------------------------------------------------

class Figures:
    """Renders plot.py's figures to SVG strings with ids unique in the page."""

    def __init__(self, report):
        import plot
        plot._import_matplotlib()
        self.plot, self.report, self.count = plot, report, 0
        self.ctx = plot.Ctx(plot.WIDTHS["double"], plot.source_line(report))
        self.skipped = []

    def svg(self, name, build):
        """SVG text of build(ctx), or None (noted) when the figure cannot be drawn."""
        try:
            fig = build(self.ctx)
        except self.plot.Skip as e:
            self.skipped.append(f"{name}: {e}")
            return None
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        self.plot.plt.close(fig)
        self.count += 1
        text = buf.getvalue()
        text = text[text.index("<svg"):]
        ids = set(re.findall(r'\bid="([^"]+)"', text))
        prefix = f"f{self.count}-"
        # Two figures may share clip-path ids: prefix each figure's ids and references.
        return re.sub(r'(\bid="|url\(#|href="#)([^")]+)',
                      lambda m: m.group(1) + (prefix + m.group(2) if m.group(2) in ids else m.group(2)), text)


PERFETTO = ('Each file opens in <a href="https://ui.perfetto.dev">ui.perfetto.dev</a> (<em>Open trace file</em>; '
            "Perfetto reads it in the browser, nothing is uploaded) or in <code>chrome://tracing</code> "
            "(<em>Load</em>): a process per cell, a track per orchestration, call and service; click a call's "
            "slice and follow its arrow to the service's. docs/analysis.md, &ldquo;Traces&rdquo;, says what "
            "each span means.")


def traces_html(figs, tr, scenario, files, out_dir):
    """A traced scenario's timelines figure and links to each traced orchestration's JSON."""
    p = figs.plot
    parts = ['<div class="traces">']
    svg = figs.svg(f"{scenario} timelines", lambda c: p.fig_timelines(tr, scenario, c))
    if svg:
        prefer = p.timeline_prefer(scenario)
        parts.append(figure_html(
            svg, f"Timelines of the traced repetition (repetition 0): per pattern, the orchestration the trace "
            f"marks \"{prefer[0]}\" (a pattern without one shows its slowest sampled orchestration and says so), "
            "its calls and tasks, and the services' spans for the same calls; the dashed line is the deadline, "
            "the shaded stretch what ran after the orchestration returned."))
    items = []
    whole = os.path.relpath(os.path.abspath(tr.path), out_dir)
    cells = tr.cells_of(scenario)
    order = style.sort_patterns([c.pattern for c in cells])
    for cell in sorted(cells, key=lambda c: (order.index(c.pattern), c.fanout, c.concurrency)):
        name = f"{swatch(cell.pattern)} <span class=\"muted\">fanout {cell.fanout}, {cell.concurrency} callers</span>"
        if not cell.traced:
            items.append(f"<li>{name}: not traced ({esc(cell.why or 'no reason given')})</li>")
            continue
        links = []
        for sample in cell.samples:
            path = files.get((cell.pid, sample.index))
            if path:
                rel = os.path.relpath(path, out_dir)
                links.append(f'<a href="{esc(rel)}">#{sample.index} {esc(sample.sampled_as)}: '
                             f"{esc(sample.verdict)}</a>")
        items.append(f"<li>{name}: {', '.join(links) or 'no orchestration sampled'} "
                     f'<span class="muted">(all of them: <a href="{esc(whole)}">{esc(os.path.basename(whole))}</a>, '
                     f"process {cell.pid})</span></li>")
    parts.append(f"<p><strong>Traced orchestrations</strong> (JSON, trace-event format). {PERFETTO}</p>"
                 f"<ul>{''.join(items)}</ul></div>")
    return "".join(parts)


def scenario_section(report, figs, scenario, trace_html=""):
    """One scenario: its description, figures, timelines (when traced) and cell table."""
    p = figs.plot
    parts = [f'<section id="s-{esc(scenario)}"><h3>{esc(scenario)}</h3>']
    sc = report.lab.get("scenarios", {}).get(scenario) if isinstance(report.lab.get("scenarios"), dict) else None
    if isinstance(sc, dict):
        facts = [sc.get("description")] if sc.get("description") else []
        if sc.get("deadline_ms") is not None and "deadline" not in str(sc.get("description", "")):
            facts.append(f"deadline {sc['deadline_ms']} ms")
        facts += [f"{sc['mode']} loop"] if sc.get("mode") else []
        if facts:
            parts.append(f'<p class="muted">{esc("; ".join(map(str, facts)))}</p>')
    for name, build, caption in (
            ("throughput", lambda c: p.fig_throughput(report, c, scenarios={scenario}),
             "Throughput per pattern (mean ± sd over repetitions)."),
            ("latency", lambda c: p.fig_latency_spectrum(report, scenario, c),
             "Latency percentiles on a 'nines' axis (median over repetitions)."),
            ("cascade", lambda c: p.fig_cascade(report, c, scenario=scenario),
             "Live tasks and OS threads over time, largest cell per pattern.")):
        svg = figs.svg(f"{scenario} {name}", build)
        if svg:
            parts.append(figure_html(svg, caption))
    parts.append(trace_html)
    parts.append(cells_table(report, scenario))
    parts.append("</section>")
    return "".join(parts)


def links_section(out_dir, report_path, micro_path):
    """Links to the files beside the page that exist."""
    items = []
    for label, path in (("report.json", report_path), ("micro.json", micro_path),
                        ("CLAIMS.md", os.path.join(os.path.dirname(os.path.abspath(report_path)), "CLAIMS.md")),
                        ("plots/", os.path.join(os.path.dirname(os.path.abspath(report_path)), "plots")),
                        ("trace.json", os.path.join(os.path.dirname(os.path.abspath(report_path)), "trace.json")),
                        ("traces/", os.path.join(out_dir, "traces"))):
        if path and os.path.exists(path):
            rel = os.path.relpath(os.path.abspath(path), out_dir)
            items.append(f'<li><a href="{esc(rel)}">{esc(label)}</a> <span class="muted">{esc(rel)}</span></li>')
    return f'<section id="files"><h2>Files</h2><ul>{"".join(items)}</ul></section>'


def render(report, runs, micro_path, claims_doc, claims_error, out_path, trace=None):
    """The whole page as a string; a trace's orchestrations are written under traces/ beside it."""
    figs = Figures(report)
    p = figs.plot
    out_dir = os.path.dirname(os.path.abspath(out_path))
    verdict_svg = figs.svg("verdicts", lambda c: p.fig_verdicts(claims_doc, c)) if claims_doc else None
    try:
        micro_line = micro_build_line(micro_context(micro_path)) if micro_path else None
    except ReportError:
        micro_line = None
    overview = []
    for name, build, caption in (
            ("leaks", lambda c: p.fig_leaks(p.descriptive(report), c), "Leaks, work past the deadline and cancellations."),
            ("threads", lambda c: p.fig_threads(p.descriptive(report), c), "Peak OS threads."),
            ("lock wait", lambda c: p.fig_lock_wait(p.descriptive(report), c), "Lock wait per orchestration."),
            ("micro aggregation", lambda c: p.fig_micro_aggregation(runs, c) if runs else _no_micro(p),
             "BM_Aggregate (orchlab-micro)."),
            ("micro orchestrate", lambda c: p.fig_micro_orchestrate(runs, c) if runs else _no_micro(p),
             "BM_Orchestrate and BM_Spawn (orchlab-micro).")):
        svg = figs.svg(name, build)
        if svg:
            overview.append(figure_html(svg, caption))
            if name.startswith("micro") and micro_line:
                # Once, below the first micro figure: what micro.json's debug build means.
                overview.append(f'<p class="muted">{esc(micro_line.replace("`", ""))}</p>')
                micro_line = None
    scenarios = report.scenarios()
    trace_parts = {}
    if trace is not None:
        files = traces.split(trace, os.path.join(out_dir, "traces"))
        for s in trace.scenarios():
            if s in scenarios:
                trace_parts[s] = traces_html(figs, trace, s, files, out_dir)
    scen_html = "".join(scenario_section(report, figs, s, trace_parts.get(s, "")) for s in scenarios)
    nav = "".join(f'<a href="#{h}">{esc(t)}</a>' for h, t in (
        ("context", "run"), ("claims", "claims"), ("comparison", "comparison"), ("overview", "across scenarios"),
        ("scenarios", "scenarios"), ("files", "files")))
    skipped = ""
    if figs.skipped:
        skipped = ('<details><summary>figures not drawn</summary><ul>'
                   + "".join(f"<li>{esc(s)}</li>" for s in figs.skipped) + "</ul></details>")
    c = report.context
    title = f"orchlab report · {c.get('host_name', '?')} · {str(c.get('date', ''))[:10]}"
    body = (f"<header><h1>{esc(title)}</h1><nav>{nav}</nav></header>"
            + context_section(report)
            + claims_section(claims_doc, claims_error, verdict_svg)
            + comparison_section(claims_doc)
            + f'<section id="overview"><h2>Across scenarios</h2>{"".join(overview)}</section>'
            + f'<section id="scenarios"><h2>Scenarios</h2><p>{" ".join(f"<a href=#s-{esc(s)}>{esc(s)}</a>" for s in scenarios)}</p>'
            + scen_html + skipped + "</section>"
            + links_section(out_dir, report.path, micro_path))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>{body}\n"
            f"<script>{JS}</script></body></html>\n")


def _no_micro(plot):
    raise plot.Skip("no micro.json")


def fail(message):
    """Print a one-line error and exit 2."""
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    """Entry point; returns the exit code."""
    args = create_parser().parse_args(argv)
    started = time.monotonic()
    if args.micro is None and not args.no_micro:
        args.micro = micro_beside(args.report)
    if args.trace is None and not args.no_trace:
        args.trace = traces.beside(args.report)
    try:
        report = load_report(args.report)
        runs = load_micro(args.micro) if args.micro else None
        trace = traces.load(args.trace) if args.trace else None
    except (ReportError, traces.TraceError) as e:
        fail(str(e))
    require("matplotlib")
    claims_doc, claims_error = None, None
    try:
        claims_doc = verdicts.run_claims(args.report, args.micro or "")
    except verdicts.ClaimsError as e:
        claims_error = str(e)
        print(f"{PROG}: no claims section: {e}", file=sys.stderr)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.report)), "index.html")
    try:
        page = render(report, runs, args.micro, claims_doc, claims_error, out, trace)
    except OSError as e:
        fail(f"{os.path.join(os.path.dirname(os.path.abspath(out)), 'traces')}: cannot write: {e.strerror or e}")
    tmp = f"{out}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, out)  # a reader never sees half a page
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fail(f"{out}: cannot write: {e.strerror or e}")
    print(out)
    print(f"{PROG}: {len(page) // 1024} KiB in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
