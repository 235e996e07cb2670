#!/usr/bin/env python3
"""Draw the lab's figures (PNG and SVG) from a report and, optionally, a micro.json."""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from orchlab_py import stats, style  # noqa: E402
from orchlab_py.report import ReportError, load_micro, load_report, micro_beside, micro_family  # noqa: E402

plt = None  # matplotlib is imported after the inputs validate: a bad file fails fast

PROG = "plot.py"
HANG_SCENARIO = "one-hangs"
SPECTRUM_SCENARIOS = ("healthy", "one-hangs")
# Percentile fields and their position on the "nines" axis: -log10(1 - q); max sits past p99.9.
SPECTRUM = [("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("p999_us", 0.999), ("max_us", None)]
MAX_X = 3.7



def _import_matplotlib():
    """Import pyplot on the Agg backend with the lab's figure style."""
    global plt
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot
    plt = matplotlib.pyplot
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "font.size": 9,
        "svg.hashsalt": "orchlab",  # stable SVG ids: re-running gives the same file
        "svg.fonttype": "none",     # text stays text: searchable and editable in an article
    })


def create_parser():
    """Command-line interface."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Write the lab's figures as PNG and SVG. A figure whose scenario or input "
        "is missing is skipped with a note on stderr.",
        epilog="Example: plot.py results/latest/report.json --micro results/latest/micro.json "
        "-o results/latest/plots",
    )
    p.add_argument("report", metavar="REPORT", help="orchlab report (JSON)")
    p.add_argument("--micro", metavar="MICRO", help="Google Benchmark JSON of orchlab-micro (default: micro.json next to REPORT, if any)")
    p.add_argument("--no-micro", action="store_true", help="ignore a micro.json next to REPORT")
    p.add_argument("-o", "--out", metavar="DIR", default=None,
                   help="output directory (default: plots/ next to REPORT)")
    return p


class Skip(Exception):
    """A figure cannot be drawn from this input; the message says why."""


def _grid(n, w=5.0, h=3.6, max_cols=3):
    cols = min(max_cols, max(1, n))
    rows = math.ceil(n / cols)
    # A single panel still gets the width the six-pattern legend needs.
    fig, axes = plt.subplots(rows, cols, figsize=(max(w * cols, 10.0), h * rows + 0.8), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


def _pattern_legend(fig, patterns):
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=style.pattern_colour(p), linestyle=style.pattern_linestyle(p),
                      marker="o", label=p) for p in patterns]
    cols = max(1, min(len(handles), int(fig.get_figwidth() / 2.1)))
    fig.legend(handles=handles, loc="lower center", ncol=cols, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return math.ceil(len(handles) / cols)


def _finish(fig, title, legend_patterns=None):
    fig.suptitle(title, fontsize=11)
    if legend_patterns:
        rows = _pattern_legend(fig, legend_patterns)
        fig.tight_layout(rect=(0, min(0.3, 0.3 * rows / fig.get_figheight()), 1, 0.96))
    else:
        fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def fig_throughput(report):
    """Throughput vs concurrency per pattern, one panel per scenario and fanout."""
    panels = {}
    for key in report.cells:
        panels.setdefault((key.scenario, key.fanout), set()).add(key.concurrency)
    if not panels:
        raise Skip("no cells in the report")
    fig, axes = _grid(len(panels))
    patterns = style.sort_patterns(report.patterns())
    for ax, ((scenario, fanout), concs) in zip(axes, panels.items()):
        concs = sorted(concs)
        ax.set_title(f"{scenario}, fanout {fanout}")
        ax.set_ylabel("throughput (orchestrations/s)")
        if len(concs) == 1:
            _bars_one_concurrency(ax, report, scenario, fanout, concs[0], patterns)
            continue
        for p in patterns:
            xs, ys, es = [], [], []
            for c in concs:
                cell = report.cells.get(_key(report, scenario, p, fanout, c))
                if cell is None or cell.infeasible:
                    continue
                vals = cell.values("items_per_second")
                if vals:
                    xs.append(c), ys.append(stats.mean(vals)), es.append(stats.stdev(vals))
            if xs:
                ax.errorbar(xs, ys, yerr=es, color=style.pattern_colour(p), linestyle=style.pattern_linestyle(p),
                            marker="o", markersize=4, capsize=3, label=p)
        ax.set_xscale("log", base=2)
        ax.set_xticks(concs, [str(c) for c in concs])
        ax.set_xlabel("concurrency (callers)")
        ax.set_ylim(bottom=0)
    return _finish(fig, "Throughput vs concurrency (mean ± stddev over repetitions)", patterns)


def _key(report, scenario, pattern, fanout, concurrency):
    return type(next(iter(report.cells)))(scenario, pattern, fanout, concurrency)


def _bars_one_concurrency(ax, report, scenario, fanout, conc, patterns):
    for i, p in enumerate(patterns):
        cell = report.cells.get(_key(report, scenario, p, fanout, conc))
        if cell is None:
            continue
        if cell.infeasible:
            ax.text(i, 0.03, "infeasible", rotation=90, ha="center", va="bottom", fontsize=7, color="0.4",
                    transform=ax.get_xaxis_transform())
            continue
        vals = cell.values("items_per_second")
        if vals:
            ax.bar(i, stats.mean(vals), yerr=stats.stdev(vals), color=style.pattern_colour(p), capsize=3,
                   hatch="//" if "+" in p else None)
    ax.set_xticks(range(len(patterns)), [p.replace("-", "-\n", 1) for p in patterns], fontsize=7)
    ax.set_xlabel(f"pattern (concurrency {conc})")


def _spectrum_cells(report, scenario):
    """For each fanout: the largest concurrency present, and the cells there."""
    by_fanout = {}
    for cell in report.select(scenario):
        by_fanout.setdefault(cell.key.fanout, {}).setdefault(cell.key.concurrency, []).append(cell)
    return {f: (max(cs), cs[max(cs)]) for f, cs in sorted(by_fanout.items())}


def fig_latency_spectrum(report, scenario):
    """Latency percentile spectrum on a 'nines' axis for one scenario."""
    groups = _spectrum_cells(report, scenario)
    if not groups:
        raise Skip(f"no feasible '{scenario}' cells in the report")
    fig, axes = _grid(len(groups), w=5.2, h=4.0)
    xs_all = [-math.log10(1 - q) if q else MAX_X for _, q in SPECTRUM]
    labels = ["p50", "p90", "p99", "p99.9", "max"]
    deadline = _deadline_ms(report, scenario)
    patterns = set()
    for ax, (fanout, (conc, cells)) in zip(axes, groups.items()):
        for cell in sorted(cells, key=lambda c: style.sort_patterns([c.key.pattern, "~"]).index(c.key.pattern)):
            xs, ys = [], []
            for (field, _), x in zip(SPECTRUM, xs_all):
                v = cell.median(field)
                if v is not None and v > 0:
                    xs.append(x), ys.append(v / 1000.0)
            if xs:
                p = cell.key.pattern
                patterns.add(p)
                ax.plot(xs, ys, color=style.pattern_colour(p), linestyle=style.pattern_linestyle(p),
                        marker="o", markersize=4, label=p)
        if deadline:
            ax.axhline(deadline, color="0.3", linestyle=":", linewidth=1)
            ax.text(xs_all[0], deadline, f" deadline {deadline:g} ms", va="bottom", fontsize=7, color="0.3")
        ax.set_yscale("log")
        ax.set_xticks(xs_all, labels)
        ax.set_xlabel("percentile (log 'nines' scale)")
        ax.set_ylabel("orchestration latency (ms)")
        ax.set_title(f"{scenario}, fanout {fanout}, concurrency {conc}")
    return _finish(fig, f"Latency percentile spectrum: {scenario} (median over repetitions)",
                   style.sort_patterns(patterns))


def _deadline_ms(report, scenario):
    sc = report.lab.get("scenarios", {})
    if isinstance(sc, dict) and isinstance(sc.get(scenario), dict):
        d = sc[scenario].get("deadline_ms")
        if isinstance(d, (int, float)):
            return d
    return None


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


def _grouped_bars(ax, report, value_of, ylabel, log=False, annotate_zero=True):
    scenarios = report.scenarios()
    patterns = style.sort_patterns(report.patterns())
    width = 0.8 / max(1, len(patterns))
    positives = []
    for si, scenario in enumerate(scenarios):
        for pi, p in enumerate(patterns):
            x = si - 0.4 + width * (pi + 0.5)
            all_cells = report.select(scenario, p, feasible=False)
            if not all_cells:
                continue
            if all(c.infeasible for c in all_cells):
                ax.text(x, 0.01, "×", ha="center", va="bottom", color=style.pattern_colour(p), fontsize=9,
                        transform=ax.get_xaxis_transform())
                continue
            v = value_of(scenario, p)
            if v is None:
                continue
            if v > 0 or not log:
                ax.bar(x, v, width=width * 0.95, color=style.pattern_colour(p), hatch="//" if "+" in p else None)
                positives.append(v)
            if v == 0 and annotate_zero:
                ax.text(x, 0.01, "0", ha="center", va="bottom", fontsize=6, color=style.pattern_colour(p),
                        transform=ax.get_xaxis_transform())
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.set_xlabel("scenario (× = infeasible)")
    ax.set_ylabel(ylabel)
    if log and positives:
        ax.set_yscale("log")
    return patterns


def fig_leaks(report):
    """Leaked tasks and server work past the deadline per scenario and pattern."""
    if not report.cells:
        raise Skip("no cells in the report")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    patterns = _grouped_bars(axes[0], report, lambda s, p: _pooled(report, s, p, "leaked_tasks_at_return"),
                             "leaked tasks at return (tasks/orchestration)")
    axes[0].set_title("Tasks still running when the orchestration returned")
    _grouped_bars(axes[1], report, lambda s, p: _pooled(report, s, p, "server_work_past_deadline_ms"),
                  "server work past deadline (ms/orchestration)")
    axes[1].set_title("Work the services did for nobody")
    _grouped_bars(axes[2], report, lambda s, p: _pooled(report, s, p, "server_client_aborts"),
                  "client aborts seen by the server (calls/orchestration)")
    axes[2].set_title("Cancellations that reached the services")
    return _finish(fig, "Leaks and zombie work (pooled over all cells of a scenario; 0 = measured zero)", patterns)


def fig_lock_wait(report):
    """Lock wait per orchestration by scenario and pattern."""
    if not report.cells:
        raise Skip("no cells in the report")
    fig, ax = plt.subplots(figsize=(11, 4.8))

    def value(s, p):
        v = _pooled(report, s, p, "lock_wait_ns")
        return None if v is None else v / 1000.0
    patterns = _grouped_bars(ax, report, value, "lock wait (µs/orchestration, log)", log=True)
    ax.set_title("Time spent waiting for contended mutexes (ProfiledMutex, channels included)")
    return _finish(fig, "Lock wait per pattern", patterns)


def fig_threads(report):
    """Peak OS threads per scenario and pattern."""
    if not report.cells:
        raise Skip("no cells in the report")
    fig, ax = plt.subplots(figsize=(11, 4.8))

    def value(s, p):
        vals = [v for c in report.select(s, p) for v in c.values("threads_peak")]
        return max(vals) if vals else None
    patterns = _grouped_bars(ax, report, value, "OS threads, peak (threads, log)", log=True)
    ax.axhline(32, color="0.3", linestyle=":", linewidth=1)
    ax.text(len(report.scenarios()) - 0.5, 32, "32 threads ", ha="right", va="bottom", fontsize=7, color="0.3")
    ax.set_title("Peak OS threads (largest cell of each scenario)")
    return _finish(fig, "Thread cost per pattern", patterns)


def fig_cascade(report):
    """Live tasks and OS threads over time in the hang scenario."""
    chosen = {}
    for key, s in report.series.items():
        if key.scenario != HANG_SCENARIO:
            continue
        best = chosen.get(key.pattern)
        if best is None or (key.concurrency, key.fanout) > (best[0].concurrency, best[0].fanout):
            chosen[key.pattern] = (key, s)
    if not chosen:
        raise Skip(f"no '{HANG_SCENARIO}' time series in lab.series")
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    patterns = style.sort_patterns(chosen)
    for p in patterns:
        key, s = chosen[p]
        bucket_s = float(s.get("bucket_ms", 100)) / 1000.0
        for ax, field in zip(axes, ("live_tasks", "os_threads")):
            ys = s.get(field)
            if not isinstance(ys, list) or not ys:
                continue
            xs = [i * bucket_s for i in range(len(ys))]
            ax.step(xs, ys, where="post", color=style.pattern_colour(p), linestyle=style.pattern_linestyle(p),
                    label=f"{p} (fanout {key.fanout}, concurrency {key.concurrency})")
    marked = False
    for p in patterns:  # each pattern's end of the measured window: after it, only the drain
        w = chosen[p][1].get("window_ms")
        if isinstance(w, (int, float)) and not isinstance(w, bool):
            axes[0].plot([w / 1000.0], [1.0], marker="v", color=style.pattern_colour(p), clip_on=False,
                         transform=axes[0].get_xaxis_transform(), markersize=7)
            marked = True
    axes[0].set_ylabel("live tasks (census count)")
    if marked:
        axes[0].set_xlabel("▼ end of the measured window (the drain follows)", fontsize=7, color="0.3")
    axes[0].set_title("Tasks alive: the load stops, the leaked calls keep running")
    axes[1].set_ylabel("OS threads (/proc/self/status)")
    axes[1].set_xlabel("time since the cell started (s)")
    for ax in axes:
        ax.set_ylim(bottom=0)
    return _finish(fig, f"The cascade in '{HANG_SCENARIO}': live tasks and OS threads over time", patterns)


def fig_micro_aggregation(runs):
    """Aggregation throughput vs threads per strategy (BM_Aggregate)."""
    fam = micro_family(runs, "BM_Aggregate", dashes=True)
    if not fam:
        raise Skip("no BM_Aggregate runs in the micro file")
    fig, ax = plt.subplots(figsize=(9, 5))
    threads = sorted({t for d in fam.values() for t in d if isinstance(t, int)})
    for strategy in sorted(fam):
        pts = sorted((t, v) for t, v in fam[strategy].items() if isinstance(t, int))
        if pts:
            ax.plot([t for t, _ in pts], [v / 1e6 for _, v in pts], marker="o", markersize=4,
                    color=style.strategy_colour(strategy), label=strategy)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(threads, [str(t) for t in threads])
    ax.set_xlabel("threads writing results")
    ax.set_ylabel("aggregation throughput (million items/s, log)")
    ax.set_title("BM_Aggregate: writing results from N threads")
    ax.legend(frameon=False)
    return _finish(fig, "Aggregation strategies (microbenchmark)")


def fig_micro_orchestrate(runs):
    """Cost per call of each pattern's machinery (BM_Orchestrate) against spawn floors (BM_Spawn)."""
    fam = micro_family(runs, "BM_Orchestrate", metric="time")
    if not fam:
        raise Skip("no BM_Orchestrate runs in the micro file")
    fig, ax = plt.subplots(figsize=(10, 5))
    patterns = style.sort_patterns(fam)
    fanouts = sorted({f for d in fam.values() for f in d if isinstance(f, int)})
    width = 0.8 / max(1, len(patterns))
    for fi, f in enumerate(fanouts):
        for pi, p in enumerate(patterns):
            v = fam[p].get(f)
            if v:
                ax.bar(fi - 0.4 + width * (pi + 0.5), v / f / 1000.0, width=width * 0.95,
                       color=style.pattern_colour(p), hatch="//" if "+" in p else None)
    spawn = micro_family(runs, "BM_Spawn", metric="time", dashes=True)
    for i, (kind, d) in enumerate(sorted(spawn.items())):
        v = next(iter(d.values()))
        ax.axhline(v / 1000.0, color="0.35", linestyle=[":", "--", "-.", (0, (1, 3))][i % 4], linewidth=1,
                   label=f"BM_Spawn/{kind}: {v / 1000.0:.3g} µs")
    if spawn:
        ax.legend(loc="center right", frameon=False, fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(fanouts)), [f"fanout {f}" for f in fanouts])
    ax.set_xlim(-0.5, len(fanouts) + 0.6)
    ax.set_xlabel("calls per orchestration (in-process fetch that returns at once)")
    ax.set_ylabel("time per call (µs, log)")
    ax.set_title("BM_Orchestrate: machinery cost per call; lines: BM_Spawn floors")
    return _finish(fig, "Orchestration overhead (microbenchmark)", patterns)


def figures(report, runs):
    """(file stem, builder) for every figure, in order."""
    out = [("throughput", lambda: fig_throughput(report))]
    for scenario in SPECTRUM_SCENARIOS:
        out.append((f"latency_{scenario}", lambda s=scenario: fig_latency_spectrum(report, s)))
    out += [("leaks", lambda: fig_leaks(report)),
            (f"cascade_{HANG_SCENARIO}", lambda: fig_cascade(report)),
            ("lock_wait", lambda: fig_lock_wait(report)),
            ("threads", lambda: fig_threads(report))]
    for stem, builder in (("micro_aggregation", fig_micro_aggregation),
                          ("micro_orchestrate", fig_micro_orchestrate)):
        if runs is None:
            out.append((stem, _skip("no --micro file given and no micro.json next to the report")))
        else:
            out.append((stem, lambda b=builder: b(runs)))
    return out


def _skip(reason):
    def raise_skip():
        raise Skip(reason)
    return raise_skip


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
    _import_matplotlib()
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(args.report)), "plots")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        fail(f"{out_dir}: cannot create the output directory: {e.strerror or e}")
    written = 0
    for stem, build in figures(report, runs):
        try:
            fig = build()
        except Skip as e:
            print(f"{PROG}: skipping {stem}: {e}", file=sys.stderr)
            continue
        for ext in ("png", "svg"):
            path = os.path.join(out_dir, f"{stem}.{ext}")
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
