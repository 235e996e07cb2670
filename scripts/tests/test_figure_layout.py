"""plot.py's figures fit to print: no text overlaps other text or a plot area, nothing falls off
the figure, both print widths, one palette, a title, labelled axes and a source line."""

import itertools

import pytest

from conftest import MICRO, REPORT, TRACE

plot = pytest.importorskip("plot")
from orchlab_py import style, verdicts  # noqa: E402
from orchlab_py import traces  # noqa: E402
from orchlab_py.report import load_micro, load_report  # noqa: E402

TOLERANCE_PX = 1.0  # anti-aliasing: boxes that touch are not overlapping


@pytest.fixture(scope="module")
def inputs():
    plot._import_matplotlib()
    report, runs = load_report(REPORT), load_micro(MICRO)
    try:
        claims, error = verdicts.run_claims(REPORT, MICRO), None
    except verdicts.ClaimsError as e:
        claims, error = None, str(e)
    return report, runs, claims, error, traces.load(TRACE)


def _builders(inputs):
    report, runs, claims, error, trace = inputs
    return plot.figures(report, runs, claims, error, trace)


STEMS = ["throughput", "latency_healthy", "latency_one-hangs", "leaks", "cascade_one-hangs", "lock_wait",
         "threads", "micro_aggregation", "micro_orchestrate", "verdicts", "timelines_one-hangs",
         "timelines_fail-fast"]
SIZES = list(plot.WIDTHS)


def texts(fig):
    """(owner, Text) for every visible, non-empty text of the figure, owner an Axes or None."""
    from matplotlib.text import Text
    out = []
    seen = set()
    for artist in fig.findobj(Text):
        if id(artist) in seen or not artist.get_visible() or not artist.get_text().strip():
            continue
        # A tick label of an axis that hides it (shared axes) is not drawn.
        if getattr(artist, "axes", None) is not None and not artist.axes.get_visible():
            continue
        seen.add(id(artist))
        out.append((artist.axes, artist))
    return out


def _shrink(bbox, px):
    from matplotlib.transforms import Bbox
    return Bbox.from_extents(bbox.x0 + px, bbox.y0 + px, bbox.x1 - px, bbox.y1 - px)


def problems(fig):
    """Overlaps of text with text, text with any plot area, and text outside the figure."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    items = [(owner, t, _shrink(t.get_window_extent(r), TOLERANCE_PX)) for owner, t in texts(fig)]
    hidden = set()
    for ax in fig.axes:
        hidden |= _hidden_tick_labels(ax)
    drawn = [(owner, t, box) for owner, t, box in items if t not in hidden]
    found = []
    for (_, a, ba), (_, b, bb) in itertools.combinations(drawn, 2):
        if ba.overlaps(bb):
            found.append(f"text {a.get_text()!r} overlaps text {b.get_text()!r}")
    areas = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    for _, t, box in drawn:
        for ax in areas:
            if box.overlaps(_shrink(ax.get_window_extent(r), 0)):
                found.append(f"text {t.get_text()!r} overlaps the plot area of {ax.get_title()!r}")
        if not fig.bbox.contains(box.x0, box.y0) or not fig.bbox.contains(box.x1, box.y1):
            found.append(f"text {t.get_text()!r} is cut off by the figure's edge")
    return found


def _hidden_tick_labels(ax):
    """Tick labels the axis will not draw: matplotlib keeps spare Tick objects (and the ones
    outside the view limits) with stale labels, and skips them when drawing."""
    hidden = set()
    for axis in (ax.xaxis, ax.yaxis):
        drawn = set()
        for tick in axis._update_ticks():  # what Axis.draw draws
            drawn.update((tick.label1, tick.label2))
        for tick in axis.majorTicks + axis.minorTicks:
            hidden.update(lab for lab in (tick.label1, tick.label2) if lab not in drawn)
    return hidden


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stem", STEMS)
def test_no_text_overlaps(inputs, stem, size):
    build = dict(_builders(inputs))[stem]
    try:
        fig = build(plot.Ctx(plot.WIDTHS[size], "orchlab abc123 · host · 2026-01-01 00:00"))
    except plot.Skip as e:
        pytest.skip(f"{stem}: {e}")
    try:
        assert fig.get_figwidth() == pytest.approx(plot.WIDTHS[size])
        assert fig.get_figheight() <= 10.0, "taller than a page"
        found = problems(fig)
        assert not found, f"{stem} ({size}):\n" + "\n".join(found)
        words = [t.get_text() for _, t in texts(fig)]
        assert any("orchlab abc123" in w for w in words), "no source line"
        if stem != "verdicts":  # its rows are labelled claims, each on its own scale
            for ax in (a for a in fig.axes if a.get_visible()):
                for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
                    shown = [t for t in axis._update_ticks() if t.label1.get_visible() and t.label1.get_text()]
                    assert label or not shown, f"{stem}: an axis with tick labels has no label"
    finally:
        plot.plt.close(fig)


def test_a_pattern_looks_the_same_everywhere():
    # Okabe–Ito colours, one marker each; a variant keeps the colour and marker, hollow and dashed.
    okabe_ito = {c.lower() for c in style.OKABE_ITO.values()}
    for p in style.PATTERN_ORDER:
        assert style.pattern_colour(p).lower() in okabe_ito
    assert len({style.pattern_marker(p) for p in style.PATTERN_ORDER}) == len(style.PATTERN_ORDER)
    v = "async-group+collect-all"
    assert style.pattern_colour(v) == style.pattern_colour("async-group")
    assert style.pattern_marker(v) == style.pattern_marker("async-group")
    assert style.marker_kwargs(v)["markerfacecolor"] == "white"
    assert style.pattern_linestyle(v) == "--" and style.pattern_hatch(v)


# What the verdict issue's claims.py may give; every spelling verdicts.numbers reads.
PLANTED_CLAIMS = {"claims": [
    {"id": "soup-zombies", "verdict": "supported", "estimate": 0.42, "interval": [0.31, 0.55], "threshold": 0,
     "unit": "s/orch"},
    {"id": "mutex-gap", "verdict": "refuted", "statistic": {"name": "contention share", "estimate": 0.05,
     "low": 0.01, "high": 0.08, "threshold": [0.3, 0.6]}},
    {"id": "slots-win", "verdict": "inconclusive", "estimate": 1.1, "ci": {"low": 0.8, "high": 1.4},
     "threshold": 1.0},
    {"id": "group-20-lines", "verdict": "supported", "estimate": 23, "threshold": 30, "unit": "lines"},
    {"id": "semaphore", "verdict": "not testable here", "reason": "needs 4 cores; this host has 2"},
]}


@pytest.mark.parametrize("size", SIZES)
def test_forest_plot_shows_intervals_or_says_there_is_none(inputs, size):
    fig = plot.fig_verdicts(PLANTED_CLAIMS, plot.Ctx(plot.WIDTHS[size], "orchlab abc123 · host · date"))
    try:
        assert problems(fig) == []
        words = " ".join(t.get_text() for _, t in texts(fig))
        assert "0.42 [0.31, 0.55] s/orch" in words
        assert "0.05 [0.01, 0.08]" in words
        assert "23 lines, no interval" in words
        assert "not testable here: no estimate" in words
    finally:
        plot.plt.close(fig)


def test_claim_numbers_read_every_spelling():
    n = [verdicts.numbers(c) for c in PLANTED_CLAIMS["claims"]]
    assert (n[0]["estimate"], n[0]["low"], n[0]["high"], n[0]["threshold"]) == (0.42, 0.31, 0.55, (0.0, 0.0))
    assert n[1]["statistic"] == "contention share" and n[1]["threshold"] == (0.3, 0.6)
    assert (n[2]["low"], n[2]["high"]) == (0.8, 1.4)
    assert n[3]["low"] is None and n[3]["estimate"] == 23
    assert n[4]["estimate"] is None and n[4]["threshold"] is None
