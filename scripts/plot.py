#!/usr/bin/env python3
"""Draw the lab's figures (PNG and SVG, single- and double-column) from a report and a micro.json."""

import argparse
import math
import os
import sys
import textwrap
import dataclasses
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import claimkit, fmt, require, stats, style, traces, verdicts  # noqa: E402
from orchlab_py.report import ReportError, load_micro, load_report, micro_beside, micro_family  # noqa: E402

plt = None  # matplotlib is imported after the inputs validate: a bad file fails fast

PROG = "plot.py"
HANG_SCENARIO = "one-hangs"
SPECTRUM_SCENARIOS = ("healthy", "one-hangs")
# Percentile fields and their position on the "nines" axis: -log10(1 - q); max sits past p99.9.
SPECTRUM = [("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("p999_us", 0.999), ("max_us", None)]
MAX_X = 3.7
# Print sizes: a journal's single and double column, in inches, at DPI.
WIDTHS = {"double": 7.0, "single": 3.5}
SUFFIX = {"double": "", "single": "_1col"}
DPI = 300
MAX_PANELS_H = 7.5  # inches of panels, so that title, legend and source still fit a page
FONT = {"title": 8.5, "panel": 7.5, "label": 7, "tick": 6.5, "legend": 6.5, "source": 5.5}


@dataclass
class Ctx:
    """What every figure needs besides its data: its width (in) and the source line."""

    width: float
    source: str

    @property
    def single(self):
        """True for the single-column size."""
        return self.width < 5


def _import_matplotlib():
    """Import pyplot on the Agg backend with the lab's print style."""
    global plt
    require("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot
    plt = matplotlib.pyplot
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": DPI, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5,
        "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.6,
        "font.size": FONT["label"], "axes.titlesize": FONT["panel"], "axes.labelsize": FONT["label"],
        "xtick.labelsize": FONT["tick"], "ytick.labelsize": FONT["tick"], "legend.fontsize": FONT["legend"],
        "lines.linewidth": 1.1, "hatch.linewidth": 0.5, "errorbar.capsize": 2,
        "svg.hashsalt": "orchlab",  # stable SVG ids: re-running gives the same file
        "svg.fonttype": "none",     # text stays text: searchable and editable in an article
    })


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write the lab's figures as PNG (300 dpi) and SVG, double-column (7 in, <name>.png) "
        "and single-column (3.5 in, <name>_1col.png). A figure whose scenario or input is missing is "
        "skipped with a note on stderr.",
        epilog="Example: plot.py results/latest/report.json --micro results/latest/micro.json "
        "-o results/latest/plots",
    )
    p.add_argument("report", metavar="REPORT", help="orchlab report (JSON)")
    p.add_argument("--micro", metavar="MICRO", help="Google Benchmark JSON of orchlab-micro (default: micro.json next to REPORT, if any)")
    p.add_argument("--no-micro", action="store_true", help="ignore a micro.json next to REPORT")
    p.add_argument("--no-claims", action="store_true", help="skip the verdict figure (it runs claims.py)")
    p.add_argument("--trace", metavar="TRACE",
                   help="trace of orchlab run --trace: one timelines_<scenario> figure per traced scenario "
                   "(default: trace.json next to REPORT, if any)")
    p.add_argument("--no-trace", action="store_true", help="ignore a trace.json next to REPORT")
    p.add_argument("--timelines-patterns", metavar="P", default=None,
                   help="comma-separated patterns the timelines figures draw (default: every pattern of "
                   "the scenario), e.g. channel-soup,cancellable-group for an article")
    p.add_argument("--sizes", default="double,single",
                   help="comma-separated sizes to write, double (7 in) and/or single (3.5 in) "
                   "(default: double,single)")
    p.add_argument("-o", "--out", metavar="DIR", default=None,
                   help="output directory (default: plots/ next to REPORT)")
    return p


class Skip(Exception):
    """A figure cannot be drawn from this input; the message says why."""


# ---------------------------------------------------------------------------------------
# Layout: title on top, panels, legend and source line below; sizes in inches
# ---------------------------------------------------------------------------------------

def source_line(report):
    """'orchlab <sha> · <host> · <date>' from the report's context."""
    ctx = report.context
    date = str(ctx.get("date") or "date unknown").replace("T", " ")[:16]
    return f"orchlab {ctx.get('git_sha') or 'sha unknown'} · {ctx.get('host_name') or 'host unknown'} · {date}"


def _panels(ctx, n, panel_h, max_cols=None, **kw):
    """A figure of n panels in a grid for the context's width; returns (fig, axes)."""
    if max_cols is None:
        max_cols = 2 if ctx.single else 3
    cols = min(max_cols, max(1, n))
    rows = math.ceil(n / cols)
    panel_h = min(panel_h, MAX_PANELS_H / rows)
    fig, axes = plt.subplots(rows, cols, figsize=(ctx.width, panel_h * rows), squeeze=False, **kw)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


def _px_width(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer()).width


def _fit_text(text, fig, max_px, fontsize):
    """Wrap a Text artist's string until it is at most max_px wide."""
    raw = " ".join(text.get_text().split())
    chars = max(12, int(max_px / (fontsize * fig.dpi / 72 * 0.55)))
    while True:
        text.set_text(textwrap.fill(raw, chars))
        if _px_width(text, fig) <= max_px or chars <= 12:
            return
        chars = int(chars * 0.9)


def _fit_panel_titles(fig, axes):
    for ax in axes:
        t = ax.title
        if t.get_text():
            _fit_text(t, fig, ax.get_window_extent().width * 1.05, FONT["panel"])


def _legend(fig, handles, labels, y):
    """A legend centred at height y (figure fraction, its bottom), as many columns as fit."""
    ncol = len(handles)
    while True:
        leg = fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, y), ncol=max(1, ncol),
                         frameon=False, handlelength=2.2, columnspacing=1.2, borderaxespad=0.2,
                         handler_map=_handler_map())
        if ncol <= 1 or _px_width(leg, fig) <= fig.bbox.width * 0.98:
            return leg
        leg.remove()
        ncol -= 1


def _handler_map():
    from matplotlib.legend_handler import HandlerTuple
    return {tuple: HandlerTuple(ndivide=None, pad=0)}


def _finish(fig, ctx, title, handles=None, labels=None, axes=None, note=None):
    """Title, legend, a note (if any) and source line around the panels, which keep their height."""
    fig.canvas.draw()
    panels_h = fig.get_figheight()
    pad = 0.06
    # A plain figure text, not suptitle: tight_layout would make room for a suptitle a second time.
    title_t = fig.text(0.01, 1.0, title, ha="left", va="top", fontsize=FONT["title"], fontweight="bold")
    _fit_text(title_t, fig, fig.bbox.width * 0.98, FONT["title"])
    src = fig.text(0.01, 0.0, ctx.source, fontsize=FONT["source"], color="0.35", ha="left", va="bottom")
    leg = _legend(fig, handles, labels, 0.0) if handles else None
    note_t = fig.text(0.01, 0.0, note, fontsize=FONT["legend"], ha="left", va="bottom") if note else None
    if note_t:
        _fit_text(note_t, fig, fig.bbox.width * 0.98, FONT["legend"])
    axes = [a for a in (axes if axes is not None else fig.axes) if a.get_visible()]
    _fit_panel_titles(fig, axes)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    inch = fig.dpi
    title_h = title_t.get_window_extent(r).height / inch
    src_h = src.get_window_extent(r).height / inch
    leg_h = leg.get_window_extent(r).height / inch if leg else 0.0
    note_h = note_t.get_window_extent(r).height / inch if note_t else 0.0
    top_h = pad + title_h + pad
    bottom_h = pad + src_h + (pad + note_h if note_t else 0.0) + (pad + leg_h if leg else 0.0) + pad
    height = panels_h + top_h + bottom_h
    fig.set_figheight(height)
    title_t.set_position((0.01, 1 - pad / height))
    src.set_position((0.01, pad / 2 / height))
    above = pad / 2 + src_h + pad / 2
    if note_t:
        note_t.set_position((0.01, (above + pad / 2) / height))
        above += pad + note_h
    if leg:
        leg.set_bbox_to_anchor((0.5, above / height), transform=fig.transFigure)
    fig.tight_layout(rect=(0, bottom_h / height, 1, 1 - top_h / height), pad=0.4, h_pad=0.9, w_pad=0.7)
    _fit_panel_titles(fig, axes)
    return fig


def _pattern_handles(patterns, bars=False):
    """(handles, labels) for a legend of patterns: line + marker, or bar + marker."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = []
    for p in patterns:
        mk = Line2D([], [], color=style.pattern_colour(p), linestyle="none" if bars else style.pattern_linestyle(p),
                    **style.marker_kwargs(p))
        if bars:
            handles.append((Patch(facecolor=style.pattern_colour(p), hatch=style.pattern_hatch(p),
                                  edgecolor="white", linewidth=0), mk))
        else:
            handles.append(mk)
    return handles, list(patterns)


def _extra_handle(label, **kw):
    from matplotlib.lines import Line2D
    kw.setdefault("linestyle", "none")
    return Line2D([], [], **kw), label


def _list(names, limit=3):
    names = list(names)
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else (names[0] if names else "none")


def _n_reps(cells):
    ns = sorted({len(c.reps) for c in cells})
    if not ns:
        return "n = 0"
    return f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"


def _plain_log(axis):
    """Tick labels of a log axis as plain numbers (50, 200, 1,000), not powers of ten."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        def _num_to_string(self, x, vmin, vmax):
            return fmt.num(x)
    axis.set_major_formatter(Plain())
    axis.set_minor_formatter(Plain(labelOnlyBase=False))


def _key(report, scenario, pattern, fanout, concurrency):
    return type(next(iter(report.cells)))(scenario, pattern, fanout, concurrency)


# ---------------------------------------------------------------------------------------
# Figures from the report
# ---------------------------------------------------------------------------------------

def fig_throughput(report, ctx, scenarios=None):
    """Throughput vs concurrency per pattern, one panel per scenario and fanout."""
    panels = {}
    for key in report.cells:
        if scenarios is None or key.scenario in scenarios:
            panels.setdefault((key.scenario, key.fanout), set()).add(key.concurrency)
    if not panels:
        raise Skip("no cells in the report")
    fig, axes = _panels(ctx, len(panels), 1.55 if ctx.single else 1.9)
    patterns = style.sort_patterns({k.pattern for k in report.cells if (k.scenario, k.fanout) in panels})
    leaders, infeasible, cells_seen = {}, False, []
    for ax, ((scenario, fanout), concs) in zip(axes, panels.items()):
        concs = sorted(concs)
        ax.set_title(f"{scenario}, fanout {fanout}")
        ax.set_ylabel("throughput (orch/s)" if ctx.single else "throughput (orchestrations/s)")
        best = {}
        for pi, p in enumerate(patterns):
            xs, ys, es = [], [], []
            for ci, c in enumerate(concs):
                cell = report.cells.get(_key(report, scenario, p, fanout, c))
                if cell is None:
                    continue
                cells_seen.append(cell)
                x = pi if len(concs) == 1 else c
                if cell.infeasible:
                    ax.plot([x], [0], marker="x", color="0.3", markersize=4, clip_on=False, zorder=4)
                    infeasible = True
                    continue
                vals = cell.values("items_per_second")
                if vals:
                    xs.append(x), ys.append(stats.mean(vals)), es.append(stats.stdev(vals) or 0.0)
                    if ci == len(concs) - 1:
                        best[p] = ys[-1]
            if not xs:
                continue
            colour = style.pattern_colour(p)
            if len(concs) == 1:
                ax.bar(xs, ys, yerr=es, width=0.75, color=colour, hatch=style.pattern_hatch(p),
                       edgecolor="white", linewidth=0, error_kw={"elinewidth": 0.6, "ecolor": "0.2"})
                ax.plot(xs, ys, linestyle="none", **style.marker_kwargs(p, 3.5), zorder=3)
            else:
                ax.errorbar(xs, ys, yerr=es, color=colour, linestyle=style.pattern_linestyle(p),
                            elinewidth=0.6, **style.marker_kwargs(p, 3.5))
        if best:
            leaders[(scenario, fanout)] = max(best, key=best.get)
        if len(concs) == 1:
            ax.set_xticks([])
            ax.set_xlim(-0.6, len(patterns) - 0.4)
            ax.set_xlabel(f"{concs[0]} callers" if ctx.single else f"one bar per pattern, {concs[0]} callers")
            ax.grid(axis="x", visible=False)
        else:
            ax.set_xscale("log", base=2)
            ax.set_xticks(concs, [str(c) for c in concs])
            ax.minorticks_off()
            ax.set_xlabel("concurrency (callers)")
        ax.set_ylim(bottom=0)
    top = max(set(leaders.values()), key=list(leaders.values()).count) if leaders else None
    wins = sum(1 for v in leaders.values() if v == top)
    spread = f"(mean ± sd over repetitions, {_n_reps(cells_seen)})"
    if len(panels) == 1 and best:
        lo, hi = min(best, key=best.get), max(best, key=best.get)
        title = (f"Throughput in {scenario}: from {fmt.num(best[lo])} ({lo}) to {fmt.num(best[hi])} ({hi}) "
                 f"orchestrations/s {spread}")
    elif top:
        title = f"Throughput: {top} is highest in {wins} of {len(leaders)} panels {spread}"
    else:
        title = "Throughput per pattern"
    handles, labels = _pattern_handles(patterns)
    if infeasible:
        h, lab = _extra_handle("infeasible (not run)", marker="x", color="0.3", markersize=4)
        handles.append(h), labels.append(lab)
    return _finish(fig, ctx, title, handles, labels, axes)


def _spectrum_cells(report, scenario):
    """For each fanout: the largest concurrency present, and the cells there."""
    by_fanout = {}
    for cell in report.select(scenario):
        by_fanout.setdefault(cell.key.fanout, {}).setdefault(cell.key.concurrency, []).append(cell)
    return {f: (max(cs), cs[max(cs)]) for f, cs in sorted(by_fanout.items())}


def _deadline_ms(report, scenario):
    sc = report.lab.get("scenarios", {})
    if isinstance(sc, dict) and isinstance(sc.get(scenario), dict):
        d = sc[scenario].get("deadline_ms")
        if isinstance(d, (int, float)) and not isinstance(d, bool):
            return d
    return None


def fig_latency_spectrum(report, scenario, ctx):
    """Latency percentile spectrum on a 'nines' axis for one scenario."""
    groups = _spectrum_cells(report, scenario)
    if not groups:
        raise Skip(f"no feasible '{scenario}' cells in the report")
    fig, axes = _panels(ctx, len(groups), 2.0 if ctx.single else 2.3, max_cols=1 if ctx.single else 2)
    xs_all = [-math.log10(1 - q) if q else MAX_X for _, q in SPECTRUM]
    deadline = _deadline_ms(report, scenario)
    patterns, p99s, cells_seen = set(), {}, []
    for ax, (fanout, (conc, cells)) in zip(axes, groups.items()):
        for cell in sorted(cells, key=lambda c: style.sort_patterns([c.key.pattern, "~"]).index(c.key.pattern)):
            cells_seen.append(cell)
            xs, ys = [], []
            for (field, _), x in zip(SPECTRUM, xs_all):
                v = cell.median(field)
                if v is not None and v > 0:
                    xs.append(x), ys.append(v / 1000.0)
            if xs:
                p = cell.key.pattern
                patterns.add(p)
                ax.plot(xs, ys, color=style.pattern_colour(p), linestyle=style.pattern_linestyle(p),
                        **style.marker_kwargs(p, 3.5))
            p99 = cell.median("p99_us")
            if p99 is not None:
                p99s[cell.key.pattern] = max(p99s.get(cell.key.pattern, 0), p99 / 1000.0)
        if deadline:
            ax.axhline(deadline, color="0.3", linestyle=":", linewidth=0.9)
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
        ax.set_xticks(xs_all, ["p50", "p90", "p99", "p99.9", "max"])
        ax.set_xlabel("percentile (log 'nines' scale)")
        ax.set_ylabel("orchestration latency (ms)")
        ax.set_title(f"fanout {fanout}, {conc} callers")
    if p99s:
        lo, hi = min(p99s, key=p99s.get), max(p99s, key=p99s.get)
        title = (f"Latency in {scenario}: p99 from {fmt.num(p99s[lo])} ms ({lo}) to {fmt.num(p99s[hi])} ms ({hi}) "
                 f"(median over repetitions, {_n_reps(cells_seen)})")
    else:
        title = f"Latency percentiles in {scenario}"
    handles, labels = _pattern_handles(style.sort_patterns(patterns))
    if deadline:
        h, lab = _extra_handle(f"deadline {deadline:g} ms", linestyle=":", color="0.3")
        handles.append(h), labels.append(lab)
    return _finish(fig, ctx, title, handles, labels, axes)


def _pooled(report, scenario, pattern, metric):
    """A counter summed over every feasible cell and repetition, per orchestration."""
    tot, orch = 0.0, 0.0
    found = False
    for cell in report.select(scenario, pattern):
        t = cell.total(metric)
        if t is not None:
            found = True
            tot += t
            orch += cell.total("iterations") or 0
    if not found or orch == 0:
        return None
    return tot / orch


def _hbars(ax, report, value_of, xlabel, log=False, labels=True):
    """Horizontal bars: one group per scenario (top to bottom), one bar per pattern, a marker
    at its end. A measured 0 shows the marker at 0 (or at the left edge on a log axis), a
    missing value nothing, an infeasible cell an ×. Returns {(scenario, pattern): value}."""
    scenarios = report.scenarios()
    patterns = style.sort_patterns(report.patterns())
    h = 0.8 / max(1, len(patterns))
    values = {}
    for si, s in enumerate(scenarios):
        for pi, p in enumerate(patterns):
            if report.select(s, p, feasible=False):
                values[(s, p)] = "infeasible" if not report.select(s, p) else value_of(s, p)
    positives = [v for v in values.values() if isinstance(v, float) and v > 0]
    left = 0.0
    if log:
        left = 10 ** math.floor(math.log10(min(positives))) if positives else 1.0
    for (s, p), v in values.items():
        y = scenarios.index(s) - 0.4 + h * (patterns.index(p) + 0.5)
        if v == "infeasible":
            ax.plot([left], [y], marker="x", color="0.3", markersize=3, clip_on=False, zorder=4)
            continue
        if v is None:
            continue
        if v > 0:
            ax.barh(y, v - left, left=left, height=h * 0.9, color=style.pattern_colour(p),
                    hatch=style.pattern_hatch(p), edgecolor="white", linewidth=0)
        ax.plot([max(v, left)], [y], linestyle="none", clip_on=False, zorder=3, **style.marker_kwargs(p, 2.6))
    if labels:  # a panel sharing the first one's y axis shows no labels of its own
        ax.set_yticks(range(len(scenarios)), scenarios)
    ax.set_ylim(len(scenarios) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    if log and positives:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
        ax.set_xlim(left=left)
    else:
        # Headroom past the longest bar, so that no tick sits on the panel's right edge,
        # where its label would stick out of the figure.
        top = max([v for v in values.values() if isinstance(v, float)] or [0.0])
        ax.set_xlim(left=0, right=top * 1.12 if top > 0 else None)
    if labels:
        ax.set_ylabel("scenario")
    return {k: v for k, v in values.items() if not isinstance(v, str)}, patterns


def _bar_legend(patterns, values, log=False):
    handles, labels = _pattern_handles(patterns, bars=True)
    if any(v == "infeasible" for v in values):
        h, lab = _extra_handle("infeasible (not run)", marker="x", color="0.3", markersize=3)
        handles.append(h), labels.append(lab)
    if log:
        h, lab = _extra_handle("marker at the left edge: 0", marker="|", color="0.3", markersize=4)
        handles.append(h), labels.append(lab)
    return handles, labels


def _rows_h(report, per_bar=0.045):
    return min(MAX_PANELS_H, max(1.2, 0.25 + per_bar * len(report.scenarios()) * len(report.patterns())))


def fig_leaks(report, ctx):
    """Leaked tasks, server work past the deadline and client aborts per scenario and pattern."""
    if not report.cells:
        raise Skip("no cells in the report")
    rows_h = _rows_h(report)
    if ctx.single:
        fig, axes = plt.subplots(3, 1, figsize=(ctx.width, min(3 * rows_h, MAX_PANELS_H)))
    else:
        fig, axes = plt.subplots(1, 3, figsize=(ctx.width, rows_h), sharey=True)
    spec = [("leaked_tasks_at_return", "tasks per orchestration", "Tasks still running at return"),
            ("server_work_past_deadline_ms", "ms per orchestration", "Server work past the deadline"),
            ("server_client_aborts", "calls per orchestration", "Client aborts seen by the services")]
    leaked = {}
    for i, (ax, (metric, xlabel, title)) in enumerate(zip(axes, spec)):
        vals, patterns = _hbars(ax, report, lambda s, p, m=metric: _pooled(report, s, p, m), xlabel,
                                labels=ctx.single or i == 0)
        ax.set_title(title)
        if i == 0:
            leaked = vals
    leakers = style.sort_patterns({p for (s, p), v in leaked.items() if v})
    title = (f"Only {_list(leakers)} leave tasks running after they return" if leakers
             else "No pattern leaves tasks running after it returns")
    infeasible = ["infeasible" for c in report.cells.values() if c.infeasible]
    handles, labels = _bar_legend(style.sort_patterns(report.patterns()), infeasible)
    return _finish(fig, ctx, title + " (pooled over every cell of a scenario; marker at 0: measured 0)",
                   handles, labels)


def fig_lock_wait(report, ctx):
    """Lock wait per orchestration by scenario and pattern."""
    if not report.cells:
        raise Skip("no cells in the report")
    fig, ax = plt.subplots(figsize=(ctx.width, _rows_h(report)))

    def value(s, p):
        v = _pooled(report, s, p, "lock_wait_ns")
        return None if v is None else v / 1000.0
    vals, patterns = _hbars(ax, report, value, "lock wait (µs/orchestration, log)", log=True)
    if any(vals.values()):
        (s, p) = max(vals, key=lambda k: vals[k] or 0)
        title = (f"Lock wait (contended mutexes, channels included): highest for {p} in {s}, "
                 f"{fmt.num(vals[(s, p)])} µs per orchestration")
    else:
        title = "Lock wait: no pattern waited for a lock"
    infeasible = ["infeasible" for c in report.cells.values() if c.infeasible]
    return _finish(fig, ctx, title, *_bar_legend(patterns, infeasible, log=True))


def fig_threads(report, ctx):
    """Peak OS threads per scenario and pattern."""
    if not report.cells:
        raise Skip("no cells in the report")
    fig, ax = plt.subplots(figsize=(ctx.width, _rows_h(report)))

    def value(s, p):
        vals = [v for c in report.select(s, p) for v in c.values("threads_peak")]
        return max(vals) if vals else None
    vals, patterns = _hbars(ax, report, value, "OS threads, peak (threads, log)", log=True)
    ax.axvline(32, color="0.3", linestyle=":", linewidth=0.9)
    known = {k: v for k, v in vals.items() if v}
    if known:
        hi = max(known, key=known.get)
        lo = min(known, key=known.get)
        title = (f"Peak OS threads (largest cell of a scenario): from {fmt.num(known[lo])} ({lo[1]}, {lo[0]}) "
                 f"to {fmt.num(known[hi])} ({hi[1]}, {hi[0]})")
    else:
        title = "Peak OS threads per pattern"
    infeasible = ["infeasible" for c in report.cells.values() if c.infeasible]
    handles, labels = _bar_legend(patterns, infeasible, log=True)
    h, lab = _extra_handle("32 threads", linestyle=":", color="0.3")
    return _finish(fig, ctx, title, handles + [h], labels + [lab])


def fig_cascade(report, ctx, scenario=HANG_SCENARIO):
    """Live tasks and OS threads over time in one scenario (the hang scenario by default)."""
    chosen = {}
    for key, s in report.series.items():
        if key.scenario != scenario:
            continue
        best = chosen.get(key.pattern)
        if best is None or (key.concurrency, key.fanout) > (best[0].concurrency, best[0].fanout):
            chosen[key.pattern] = (key, s)
    if not chosen:
        raise Skip(f"no '{scenario}' time series in lab.series")
    fig, axes = plt.subplots(2, 1, figsize=(ctx.width, 3.2 if ctx.single else 3.6), sharex=True)
    patterns = style.sort_patterns(chosen)
    outlive = []
    for p in patterns:
        key, s = chosen[p]
        bucket_s = float(s.get("bucket_ms", 100)) / 1000.0
        for ax, field in zip(axes, ("live_tasks", "os_threads")):
            ys = s.get(field)
            if not isinstance(ys, list) or not ys:
                continue
            ys = [y if isinstance(y, (int, float)) else float("nan") for y in ys]
            xs = [i * bucket_s for i in range(len(ys))]
            ax.step(xs, ys, where="post", color=style.pattern_colour(p), linestyle=style.pattern_linestyle(p))
            w = s.get("window_ms")
            if field == "live_tasks" and isinstance(w, (int, float)) and not isinstance(w, bool):
                after = [y for x, y in zip(xs, ys) if x >= w / 1000.0 + bucket_s and y == y]
                if after and max(after) > 0:
                    outlive.append(p)
    marked = False
    for p in patterns:  # each pattern's end of the measured window: after it, only the drain
        w = chosen[p][1].get("window_ms")
        if isinstance(w, (int, float)) and not isinstance(w, bool):
            axes[0].plot([w / 1000.0], [1.0], marker="v", color=style.pattern_colour(p), clip_on=False,
                         transform=axes[0].get_xaxis_transform(), markersize=4, linestyle="none")
            marked = True
    axes[0].set_ylabel("live tasks (census)")
    axes[0].set_title("Tasks alive")
    axes[1].set_title("OS threads (/proc/self/status)")
    axes[1].set_ylabel("OS threads")
    axes[1].set_xlabel("time since the cell started (s)")
    for ax in axes:
        ax.set_ylim(bottom=0)
    cells = {f"fanout {k.fanout}, {k.concurrency} callers" for k, _ in chosen.values()}
    where = f" ({cells.pop()})" if len(cells) == 1 else ""
    title = (f"{scenario}{where}: after the load stops, {_list(outlive)} keep tasks alive" if outlive
             else f"{scenario}{where}: no tasks outlive the measured window")
    handles, labels = _pattern_handles(patterns)
    handles = [type(h)([], [], color=h.get_color(), linestyle=h.get_linestyle()) for h in handles]
    if marked:
        h, lab = _extra_handle("end of the measured window", marker="v", color="0.3", markersize=4)
        handles.append(h), labels.append(lab)
    return _finish(fig, ctx, title, handles, labels)


# ---------------------------------------------------------------------------------------
# Timelines from a trace (orchlab run --trace)
# ---------------------------------------------------------------------------------------

# The sample each scenario's figure draws per pattern, in order of preference (the kinds the
# trace marks in `sampled_as`); a pattern with none of them is drawn with its slowest sample,
# and the panel says so.
TIMELINE_PREFER = {"fail-fast": ("first failed", "first timed-out")}
TIMELINE_DEFAULT = ("first timed-out",)
# Inches of panels (their titles included), double and single column: with the title, the
# legend and a note the figure stays within 10 in.
TIMELINES_MAX_H = {False: 7.6, True: 6.2}
ZOMBIE_STYLE = {"facecolor": "#FBE3D6", "edgecolor": "#D55E00", "hatch": "//////", "linewidth": 0}
SERVICE_ENDS = {  # the mock's `end` of a request: (legend label, face, edge)
    "answered": ("service answered", "0.62", "0.62"),
    "client_abort": ("service noticed the abort", "white", "0.35"),
    "for_nobody": ("service finished for nobody", "0.15", "0.15"),
    "no_response": ("service never answered (hang, close)", "0.15", "0.15"),
    "write_timeout": ("service's write timed out", "0.15", "0.15"),
}


def timeline_prefer(scenario):
    """The kinds of sample a scenario's timelines figure draws, most wanted first."""
    for name, prefer in TIMELINE_PREFER.items():
        if name in scenario:
            return prefer
    return TIMELINE_DEFAULT


def timeline_choice(cell, prefer):
    """(sample, note) of a traced cell: the first sample of a preferred kind, else its slowest
    (note saying there was none of the preferred kind), else (None, why)."""
    if not cell.traced:
        return None, cell.why or "not traced"
    for kind in prefer:
        s = cell.sample(kind)
        if s is not None:
            return s, ""
    if not cell.samples:
        return None, "traced, but no orchestration was sampled"
    s = max(cell.samples, key=lambda x: x.returned_us - x.intended_us)
    return s, f"no {' or '.join(k.replace('first ', '') for k in prefer)} orchestration; its slowest sampled"


def timeline_cells(trace, scenario):
    """{pattern: cell} of a scenario, one cell per pattern: the traced one with the most callers
    (then calls), else an untraced one (its reason is shown)."""
    chosen = {}
    for c in trace.cells_of(scenario):
        best = chosen.get(c.pattern)
        rank = (c.traced, c.concurrency, c.fanout)
        if best is None or rank > (best.traced, best.concurrency, best.fanout):
            chosen[c.pattern] = c
    return chosen


def _time_ticks(limit, deadline, steps=(2, 5, 10)):
    """Tick positions in ms for an axis to `limit`: linear up to the deadline, then the deadline
    times `steps` times powers of ten."""
    ticks = [0.0, deadline / 2, deadline]
    for decade in range(0, 8):
        for m in steps:
            t = deadline * m * 10 ** decade
            if t <= limit * 1.001:
                ticks.append(t)
    return sorted(set(ticks))


def _two_lines(name, width):
    """A pattern's name on two lines when longer than `width`: before a variant's '+', else
    after its first '-' (the label left of its lanes)."""
    if len(name) <= width:
        return name
    if "+" in name:
        return name.replace("+", "\n+", 1)
    return name.replace("-", "-\n", 1)


def fig_timelines(trace, scenario, ctx, patterns=None):
    """Swimlanes of one orchestration per pattern (the trace's 'first timed-out' by default):
    its span, its calls' and tasks' spans and the services' spans beneath, on one time axis
    from the intended start; the deadline as a line; the time a call or task ran on after the
    orchestration returned shaded."""
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.lines import Line2D
    cells = timeline_cells(trace, scenario)
    if patterns:
        cells = {p: c for p, c in cells.items() if p in patterns}
    if not cells or not any(c.traced for c in cells.values()):
        raise Skip(f"no traced '{scenario}' cell in the trace" + (f" of {_list(patterns)}" if patterns else ""))
    prefer = timeline_prefer(scenario)
    drawn, missing = [], []
    for p in style.sort_patterns(cells):
        sample, note = timeline_choice(cells[p], prefer)
        (drawn if sample is not None else missing).append((p, cells[p], sample, note))
    if not drawn:
        raise Skip(f"'{scenario}': no sampled orchestration to draw")
    max_calls = 6
    title_in = 0.4 if ctx.single else 0.3
    min_row = 0.12 if ctx.single else 0.13
    # A page holds about ten panels: the patterns past it are named under the figure. When
    # not all fit, the first base pattern of each runtime (who recorded its calls: the
    # harness's fetch, async-group's client, a driver) stays, the variants (a name with '+')
    # give way first; the panels keep the patterns' order.
    def fitting(candidates):
        fits, used = 0, 0.0
        for _, _, s, _ in candidates:
            used += title_in + (1 + min(max_calls, len(s.lanes))) * min_row
            if used > TIMELINES_MAX_H[ctx.single] and fits:
                break
            fits += 1
        return fits
    if fitting(drawn) < len(drawn):
        firsts, seen_by = set(), set()
        for p, c, _, _ in drawn:
            by = c.info.get("recorded_by")
            if "+" not in p and by not in seen_by:
                seen_by.add(by)
                firsts.add(p)
        # stable: the order otherwise kept
        by_priority = sorted(drawn, key=lambda d: (d[0] not in firsts, "+" in d[0]))
        kept = {d[0] for d in by_priority[:fitting(by_priority)]}
        missing = [(p, c, None, "the figure is full: plot.py --timelines-patterns picks") for p, c, _, _ in
                   drawn if p not in kept] + missing
        drawn = [d for d in drawn if d[0] in kept]
    rows = [1 + min(max_calls, len(s.lanes)) for _, _, s, _ in drawn]
    row_in = max(min_row, min(0.16, (MAX_PANELS_H - 0.45 - title_in * len(drawn)) / max(1, sum(rows))))
    fig = plt.figure(figsize=(ctx.width, sum(rows) * row_in + title_in * len(drawn) + 0.45))
    gs = fig.add_gridspec(len(rows), 1, height_ratios=rows)
    axes, first = [], None
    deadlines = [s.deadline_ms for _, _, s, _ in drawn if s.deadline_ms]
    deadline = max(deadlines) if deadlines else None
    limit = max(max([s.returned_us] + [lane.end for lane in s.lanes]) - s.intended_us for _, _, s, _ in drawn) / 1e3
    limit = max(limit, deadline or 0) * 1.04
    symlog = deadline is not None and limit > 4 * deadline
    seen = set()
    for i, (p, cell, sample, note) in enumerate(drawn):
        ax = fig.add_subplot(gs[i], sharex=first)
        first = first or ax
        axes.append(ax)
        t0 = sample.intended_us

        def ms(us):
            return (us - t0) / 1e3
        lanes = sorted(sample.lanes, key=lambda lane: (lane.end > sample.returned_us, lane.end),
                       reverse=True)[:max_calls]
        lanes.sort(key=lambda lane: (lane.index < 0, lane.index))
        n = 1 + len(lanes)
        colour = style.pattern_colour(p)
        # Row 0 (top): the orchestration; row k: call k-1, the caller's side above the service's.
        y0 = n - 1
        for b in sample.before:
            ax.add_patch(Rectangle((ms(b.ts), y0 - 0.3), b.dur / 1e3, 0.6, facecolor="white", edgecolor=colour,
                                   linewidth=0.6, hatch="////", zorder=2))
            seen.add("waited")
        o = sample.orchestration
        ax.add_patch(Rectangle((ms(o.ts), y0 - 0.3), o.dur / 1e3, 0.6, facecolor=colour, edgecolor="none",
                               zorder=3))
        labels = ["orchestration" if not ctx.single else "orch."]
        for k, lane in enumerate(lanes):
            y = n - 2 - k
            name = f"{lane.index} " if lane.index >= 0 else ""
            labels.append(f"{'call ' if not ctx.single else ''}{name}→ {lane.service}"[:24])
            end = max(s.end for s in (lane.call, lane.task) if s is not None) if (lane.call or lane.task) else None
            if end is not None and end > sample.returned_us:
                ax.add_patch(Rectangle((ms(sample.returned_us), y - 0.47), (end - sample.returned_us) / 1e3, 0.94,
                                       **ZOMBIE_STYLE, zorder=1))
                seen.add("zombie")
            if lane.task is not None:
                ax.plot([ms(lane.task.ts), ms(lane.task.end)], [y + 0.4, y + 0.4], color="0.1", linewidth=0.7,
                        solid_capstyle="butt", zorder=4)
                seen.add("task")
            if lane.call is not None:
                cancelled = lane.call.args.get("outcome") == "cancelled"
                ax.add_patch(Rectangle((ms(lane.call.ts), y + 0.03), lane.call.dur / 1e3, 0.3,
                                       facecolor="white" if cancelled else colour, edgecolor=colour,
                                       linewidth=0.7, zorder=3))
                seen.add("call cancelled" if cancelled else "call")
            if lane.served is not None:
                end_kind = str(lane.served.args.get("end"))
                _, face, edge = SERVICE_ENDS.get(end_kind, (end_kind, "0.62", "0.62"))
                ax.add_patch(Rectangle((ms(lane.served.ts), y - 0.38), lane.served.dur / 1e3, 0.3, facecolor=face,
                                       edgecolor=edge, linewidth=0.6, zorder=3))
                seen.add(("service", end_kind))
        if sample.deadline_ms is not None:
            ax.axvline(sample.deadline_ms, color="0.1", linestyle="--", linewidth=0.8, zorder=5)
            seen.add("deadline")
        ax.set_ylim(-0.55, n - 0.45)
        ax.set_yticks(range(n), list(reversed(labels)))
        ax.tick_params(axis="y", length=0, pad=2)
        ax.grid(axis="y", visible=False)
        ax.set_ylabel(_two_lines(p, 12 if ctx.single else 18), rotation=0, ha="right", va="center", color="0.1",
                      fontweight="bold", linespacing=1.0)
        latency = (sample.returned_us - sample.intended_us) / 1e3
        facts = [f"#{sample.index} {sample.sampled_as}: {sample.verdict} at {fmt.num(latency)} ms"]
        live = sample.args.get("tasks_live_at_return")
        if isinstance(live, int) and live and not ctx.single:
            facts.append(f"{live} task{'s' if live != 1 else ''} alive at its return")
        z = sample.zombie_ms()
        if z > 0.05:
            facts.append(f"ran on {fmt.num(z)} ms after it")
        hidden = len(sample.lanes) - len(lanes)
        if hidden > 0:
            facts.append(f"{len(lanes)} of {len(sample.lanes)} calls shown (the last to end)")
        if not sample.lanes:
            facts.append("its calls are not in the trace")
        ax.set_title(f"{note}: " * bool(note) + "; ".join(facts), loc="left", fontsize=FONT["label"])
        if i < len(drawn) - 1:
            ax.tick_params(axis="x", labelbottom=False)
    last = axes[-1]
    if symlog:
        last.set_xscale("symlog", linthresh=deadline, linscale=1.2)
        ticks = _time_ticks(limit, deadline, (10, 50) if ctx.single else (2, 5, 10))
        last.set_xticks(ticks, [fmt.num(t) for t in ticks])
        last.xaxis.set_minor_locator(plt.NullLocator())
        last.set_xlabel("ms from the intended start\n(logarithmic after the deadline)" if ctx.single else
                        "ms from the intended start (linear to the deadline, logarithmic after it)")
    else:
        last.set_xlabel("ms from the intended start")
    last.set_xlim(0, limit)
    by_reason = {}
    for p, _, _, why in missing:
        by_reason.setdefault(why, []).append(p)
    note = ("Not drawn: " + "; ".join(f"{_list(ps, 4)} ({why})" for why, ps in by_reason.items()) + ".") if missing \
        else None
    fc = next(iter(cells.values()))
    where = {(c.fanout, c.concurrency) for c in cells.values()}
    where = f", fanout {fc.fanout}, {fc.concurrency} callers" if len(where) == 1 else ""
    title = (f"{scenario}: the {prefer[0]} orchestration of each pattern (traced repetition 0{where}), "
             "its calls and what the services did")
    handles, labs = [], []

    def add(h, label):
        handles.append(h), labs.append(label)
    add(Patch(facecolor="0.35", edgecolor="none"), "orchestration, run() to return")
    if "waited" in seen:
        add(Patch(facecolor="white", edgecolor="0.35", hatch="////", linewidth=0.6), "waited for a worker")
    if "call" in seen:
        add(Patch(facecolor="0.35", edgecolor="0.35"), "call (in the pattern's colour)")
    if "call cancelled" in seen:
        add(Patch(facecolor="white", edgecolor="0.35", linewidth=0.7), "call cancelled")
    if "task" in seen:
        add(Line2D([], [], color="0.1", linewidth=0.7), "task (thread) alive")
    for kind, (label, face, edge) in SERVICE_ENDS.items():
        if ("service", kind) in seen:
            add(Patch(facecolor=face, edgecolor=edge, linewidth=0.6), label)
    for kind in sorted(k for _, k in (x for x in seen if isinstance(x, tuple)) if k not in SERVICE_ENDS):
        add(Patch(facecolor="0.62", edgecolor="0.62"), f"service: {kind}")
    if "deadline" in seen:
        add(Line2D([], [], color="0.1", linestyle="--", linewidth=0.8), "deadline")
    if "zombie" in seen:
        add(Patch(**{**ZOMBIE_STYLE, "linewidth": 0}), "running after the orchestration returned")
    # Panel titles wrapped to their panel before the layout makes room for them.
    fig.tight_layout(pad=0.4)
    fig.canvas.draw()
    for ax in axes:
        _fit_text(ax._left_title, fig, ax.get_window_extent().width * 0.97, FONT["label"])
    return _finish(fig, ctx, title, handles, labs, axes, note=note)


# ---------------------------------------------------------------------------------------
# Figures from micro.json
# ---------------------------------------------------------------------------------------

def fig_micro_aggregation(runs, ctx):
    """BM_Aggregate at the most threads run: each strategy's throughput relative to slots,
    by work per task, with the Hodges-Lehmann interval over repetitions (its confidence in the
    title: 96.8 % at 5 vs 5)."""
    agg = claimkit.aggregate_runs(runs)
    if not agg:
        raise Skip("no BM_Aggregate/<strategy>/work_ns:W/threads:T runs in the micro file")
    t = max(tt for (_s, _w, tt) in agg)
    works = sorted({w for (_s, w, tt) in agg if tt == t})
    strategies = sorted({s for (s, _w, tt) in agg if tt == t and s != "slots"})
    fig, ax = plt.subplots(figsize=(ctx.width, 2.2 if ctx.single else 2.6))
    handles, labels = [], []
    confs = set()
    width = 0.8 / max(1, len(strategies))
    for si, s in enumerate(strategies):
        xs, ys, lo, hi = [], [], [], []
        for wi, w in enumerate(works):
            mine, base = agg.get((s, w, t)), agg.get(("slots", w, t))
            if not mine or not base:
                continue
            r = stats.hodges_lehmann_ratio(base, mine)
            if r.confidence is not None:
                confs.add(round(100 * r.confidence, 1))
            xs.append(wi - 0.4 + width * (si + 0.5))
            ys.append(r.estimate)
            lo.append(r.estimate - (r.low if r.low is not None else r.estimate))
            hi.append((r.high if r.high is not None else r.estimate) - r.estimate)
        if xs:
            colour = style.strategy_colour(s)
            line = ax.errorbar(xs, ys, yerr=[lo, hi], color=colour, marker=style.strategy_marker(s),
                               markersize=3.5, linestyle="none", capsize=2, elinewidth=0.9)
            handles.append(line), labels.append(s)
    ax.axhline(1.0, color="0.2", linestyle=":", linewidth=0.9)
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xticks(range(len(works)), [("none" if w == 0 else f"{w / 1000:g} µs") for w in works])
    ax.minorticks_off()
    ax.set_xlabel("work per task")
    ax.set_ylabel("÷ slots (log)" if ctx.single else "throughput ÷ slots' (log; 1 = as fast)")
    conf = (f"{min(confs):g} % interval" if len(confs) == 1 else
            f"{min(confs):g}–{max(confs):g} % intervals" if confs else "no interval (too few repetitions)")
    title = f"BM_Aggregate at {t} threads: tasks/s relative to slots, {conf}"
    return _finish(fig, ctx, title, handles, labels)


def fig_micro_orchestrate(runs, ctx):
    """Cost per call of each pattern's machinery (BM_Orchestrate) against spawn floors (BM_Spawn)."""
    fam = micro_family(runs, "BM_Orchestrate", metric="time")
    if not fam:
        raise Skip("no BM_Orchestrate runs in the micro file")
    fig, ax = plt.subplots(figsize=(ctx.width, 2.2 if ctx.single else 2.6))
    patterns = style.sort_patterns(fam)
    fanouts = sorted({f for d in fam.values() for f in d if isinstance(f, int)})
    width = 0.8 / max(1, len(patterns))
    per_call = {}
    for fi, f in enumerate(fanouts):
        for pi, p in enumerate(patterns):
            v = fam[p].get(f)
            if v:
                x, y = fi - 0.4 + width * (pi + 0.5), v / f / 1000.0
                per_call[(p, f)] = y
                ax.bar(x, y, width=width * 0.9, color=style.pattern_colour(p), hatch=style.pattern_hatch(p),
                       edgecolor="white", linewidth=0)
                ax.plot([x], [y], linestyle="none", **style.marker_kwargs(p, 2.6))
    handles, labels = _pattern_handles(patterns, bars=True)
    spawn = micro_family(runs, "BM_Spawn", metric="time", dashes=True)
    for i, (kind, d) in enumerate(sorted(spawn.items())):
        v = next(iter(d.values()))
        ls = [":", "--", "-.", (0, (1, 3)), (0, (5, 1))][i % 5]
        ax.axhline(v / 1000.0, color="0.35", linestyle=ls, linewidth=0.8)
        h, lab = _extra_handle(f"BM_Spawn/{kind} {fmt.num(v / 1000.0)} µs", linestyle=ls, color="0.35")
        handles.append(h), labels.append(lab)
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xticks(range(len(fanouts)), [f"fanout {f}" for f in fanouts])
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("calls per orchestration" if ctx.single
                  else "calls per orchestration (in-process fetch that returns at once)")
    ax.set_ylabel("time per call (µs, log)")
    f = fanouts[-1] if fanouts else None
    at_f = {p: v for (p, ff), v in per_call.items() if ff == f}
    if at_f:
        lo, hi = min(at_f, key=at_f.get), max(at_f, key=at_f.get)
        title = f"Machinery cost per call at fanout {f}: {fmt.num(at_f[lo])} µs ({lo}) to {fmt.num(at_f[hi])} µs ({hi})"
    else:
        title = "Orchestration overhead per call (microbenchmark)"
    return _finish(fig, ctx, title, handles, labels)


# ---------------------------------------------------------------------------------------
# The verdict figure
# ---------------------------------------------------------------------------------------

def _fmt(v):
    return "–" if v is None else f"{fmt.num(v)}"


def fig_verdicts(claims_doc, ctx):
    """Forest plot: each claim's estimate and interval (its confidence printed) against its threshold,
    shaded by verdict.

    Each row has its own scale (the claims' statistics have different units): the
    threshold is the dotted line (a band for a range), the numbers are on the right."""
    if not (claims_doc.get("claims") or []):
        raise Skip("claims.py gave no claims")
    table = verdicts.rows(claims_doc)  # one row per claim and runtime that answered it
    claims = [row for _n, _id, _tag, row in table]
    n = len(claims)
    fig, axes = plt.subplots(n, 1, figsize=(ctx.width, 0.27 * n + 0.1))
    axes = list(axes) if n > 1 else [axes]
    with_numbers = 0
    for i, (ax, c) in enumerate(zip(axes, claims)):
        num = verdicts.numbers(c)
        verdict = str(c.get("verdict", "?"))
        ax.set_facecolor(style.verdict_colour(verdict) + "33")
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.grid(False)
        ax.set_xticks([])
        num_, cid, tag = table[i][:3]
        tag = f" {tag}" if tag else ""
        ax.set_yticks([0], [f"{num_}{tag}" if ctx.single else f"{num_} {cid}{tag}"])
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-1, 1)
        est, lo, hi, thr = num["estimate"], num["low"], num["high"], num["threshold"]
        pts = [v for v in (est, lo, hi) + (thr or ()) if v is not None]
        if pts:
            a, b = min(pts), max(pts)
            span = (b - a) or (abs(a) or 1.0)
            ax.set_xlim(a - 0.15 * span, b + 0.15 * span)
        else:
            ax.set_xlim(0, 1)
        if thr:
            if thr[0] is not None and thr[1] is not None and thr[0] != thr[1]:
                ax.axvspan(thr[0], thr[1], color="0.5", alpha=0.25, linewidth=0)
            for t in {v for v in thr if v is not None}:
                ax.axvline(t, color="0.2", linestyle=":", linewidth=0.9)
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [0, 0], color="0.1", linewidth=1.2, solid_capstyle="butt")
        if est is not None:
            ax.plot([est], [0], marker="o", color="0.1", markersize=3.5)
            with_numbers += 1
        unit = f" {num['unit']}" if num["unit"] else ""
        if est is None:
            right = f"{verdict}: no estimate"
        elif lo is None or hi is None:
            right = f"{_fmt(est)}{unit}, no interval; {verdict}"
        else:
            conf = f" {100 * num['confidence']:.1f} %" if num.get("confidence") is not None else ""
            right = f"{_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}]{unit}{conf}; {verdict}"
        if thr and not ctx.single:
            right += f" (threshold {_fmt(thr[0])}" + (f"–{_fmt(thr[1])})" if thr[1] != thr[0] else ")")
        twin = ax.twinx()
        twin.set_ylim(ax.get_ylim())
        twin.set_yticks([0], [right])
        twin.tick_params(axis="y", length=0)
        for side in ("top", "right", "left", "bottom"):
            twin.spines[side].set_visible(False)
        twin.grid(False)
    axes[-1].set_xlabel("each row on its own scale" if ctx.single
                        else "each row on its own scale: the claim's statistic, in its unit")
    counts = {}
    for c in claims:
        counts[str(c.get("verdict"))] = counts.get(str(c.get("verdict")), 0) + 1
    title = "Claims: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    if not with_numbers:
        title += " (claims.py gave no estimates to plot)"
    from matplotlib.patches import Patch
    handles, labels = [], []
    for v in dict.fromkeys(str(c.get("verdict")) for c in claims):
        handles.append(Patch(facecolor=style.verdict_colour(v) + "55", edgecolor="none")), labels.append(v)
    for lab, kw in (("estimate", {"marker": "o", "color": "0.1", "markersize": 3.5}),
                    ("interval (its confidence)", {"linestyle": "-", "color": "0.1"}),
                    ("threshold", {"linestyle": ":", "color": "0.2"})):
        h, lab = _extra_handle(lab, **kw)
        handles.append(h), labels.append(lab)
    return _finish(fig, ctx, title, handles, labels, axes)


# ---------------------------------------------------------------------------------------
# Which figures, and writing them
# ---------------------------------------------------------------------------------------

def descriptive(report):
    """The report without the claim experiments (scenarios named claim-*), which have their
    own evidence in CLAIMS.md: what the overview figures show."""
    cells = {k: v for k, v in report.cells.items() if not k.scenario.startswith("claim-")}
    return dataclasses.replace(report, cells=cells)


def figures(report, runs, claims_doc=None, claims_error=None, trace=None, timeline_patterns=None):
    """(file stem, builder(ctx)) for every figure, in order; a trace adds the timelines of each
    scenario it traced (timelines_<scenario>)."""
    report = descriptive(report)
    out = [("throughput", lambda c: fig_throughput(report, c))]
    for scenario in SPECTRUM_SCENARIOS:
        out.append((f"latency_{scenario}", lambda c, s=scenario: fig_latency_spectrum(report, s, c)))
    out += [("leaks", lambda c: fig_leaks(report, c)),
            (f"cascade_{HANG_SCENARIO}", lambda c: fig_cascade(report, c)),
            ("lock_wait", lambda c: fig_lock_wait(report, c)),
            ("threads", lambda c: fig_threads(report, c))]
    for stem, builder in (("micro_aggregation", fig_micro_aggregation),
                          ("micro_orchestrate", fig_micro_orchestrate)):
        if runs is None:
            out.append((stem, _skip("no --micro file given and no micro.json next to the report")))
        else:
            out.append((stem, lambda c, b=builder: b(runs, c)))
    if claims_doc is not None:
        out.append(("verdicts", lambda c: fig_verdicts(claims_doc, c)))
    else:
        out.append(("verdicts", _skip(claims_error or "no claims")))
    for scenario in trace.scenarios() if trace is not None else ():
        out.append((timelines_stem(scenario), lambda c, s=scenario: fig_timelines(trace, s, c, timeline_patterns)))
    return out


def timelines_stem(scenario):
    """The file stem of a scenario's timelines figure."""
    return f"timelines_{traces.slug(scenario)}"


def _skip(reason):
    def raise_skip(_ctx):
        raise Skip(reason)
    return raise_skip


def fail(message):
    """Print a one-line error and exit 2."""
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    """Entry point; returns the exit code."""
    args = create_parser().parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(s not in WIDTHS for s in sizes):
        fail(f"--sizes: expected double and/or single, got '{args.sizes}'")
    if args.micro is None and not args.no_micro:
        args.micro = micro_beside(args.report)
        if args.micro:
            print(f"{PROG}: using {args.micro} (found next to the report)", file=sys.stderr)
    if args.trace is None and not args.no_trace:
        args.trace = traces.beside(args.report)
        if args.trace:
            print(f"{PROG}: using {args.trace} (found next to the report)", file=sys.stderr)
    try:
        report = load_report(args.report)
        runs = load_micro(args.micro) if args.micro else None
        trace = traces.load(args.trace) if args.trace else None
    except (ReportError, traces.TraceError) as e:
        fail(str(e))
    claims_doc, claims_error = None, "--no-claims given"
    if not args.no_claims:
        try:
            claims_doc = verdicts.run_claims(args.report, args.micro or "")
        except verdicts.ClaimsError as e:
            claims_error = str(e)
    _import_matplotlib()
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(args.report)), "plots")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        fail(f"{out_dir}: cannot create the output directory: {e.strerror or e}")
    written = 0
    source = source_line(report)
    only = [p.strip() for p in args.timelines_patterns.split(",") if p.strip()] if args.timelines_patterns else None
    for stem, build in figures(report, runs, claims_doc, claims_error, trace, only):
        for size in sizes:
            try:
                fig = build(Ctx(WIDTHS[size], source))
            except Skip as e:
                if size == sizes[0]:
                    print(f"{PROG}: skipping {stem}: {e}", file=sys.stderr)
                break
            for ext in ("png", "svg"):
                path = os.path.join(out_dir, f"{stem}{SUFFIX[size]}.{ext}")
                try:
                    fig.savefig(path, metadata={"Date": None} if ext == "svg" else None)
                except OSError as e:
                    fail(f"{path}: cannot write: {e.strerror or e}")
                print(path)
            plt.close(fig)
            written += 1
    if written == 0:
        print(f"{PROG}: no figure could be drawn from {args.report}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
