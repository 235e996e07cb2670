"""Traces of orchlab run --trace: read by format (orchlab_py/traces.py), drawn as swimlanes
(plot.py's timelines_<scenario>), split into one file per sampled orchestration. The input is a
small real trace (inputs/trace_sample.json: one-hangs and fail-fast, one sample per cell kept)."""

import copy
import json
import shutil

import pytest

from conftest import REPORT, TRACE, run_script
from test_figure_layout import problems, texts

plot = pytest.importorskip("plot")
from orchlab_py import traces  # noqa: E402


@pytest.fixture(scope="module")
def doc():
    with open(TRACE, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def trace(doc):
    return traces.parse(copy.deepcopy(doc), TRACE)


def _with_soup_copies(doc, patterns):
    """The trace with one-hangs' channel-soup cell copied under each of `patterns`."""
    more = copy.deepcopy(doc)
    soup = next(c for c in more["otherData"]["cells"] if c["cell"].startswith("one-hangs/channel-soup/"))
    events = [e for e in more["traceEvents"] if e["pid"] == soup["pid"]]
    for n, pattern in enumerate(patterns):
        pid = 1000 + n
        name = f"one-hangs/{pattern}/fanout:3/concurrency:16"
        more["otherData"]["cells"].append({**soup, "cell": name, "pid": pid})
        for e in events:
            e = copy.deepcopy(e)
            e["pid"] = pid
            if e["name"] == "process_name":
                e["args"]["name"] = name
            more["traceEvents"].append(e)
    return more


def _cell(trace, scenario, pattern):
    return next(c for c in trace.cells if c.scenario == scenario and c.pattern == pattern)


def test_calls_are_joined_to_the_services_spans_by_key(trace):
    assert trace.scenarios() == ["one-hangs", "fail-fast"]
    soup = _cell(trace, "one-hangs", "channel-soup").sample("first timed-out")
    assert soup is not None and soup.verdict == "timed_out"
    assert [lane.index for lane in soup.lanes] == [0, 1, 2]
    for lane in soup.lanes:
        assert lane.call.args["key"] == lane.served.args["key"]
        assert lane.task is not None
    # The hung call runs on after its orchestration returned: the zombie time.
    assert soup.zombie_ms() > 100
    group = _cell(trace, "one-hangs", "cancellable-group").sample("first timed-out")
    assert group.zombie_ms() < 5 and any(lane.call.args["outcome"] == "cancelled" for lane in group.lanes)
    # A cell the run did not trace is listed with its reason.
    healthy = [c for c in trace.cells if c.scenario == "healthy"]
    assert healthy and all(not c.traced and "--trace-scenarios" in c.why for c in healthy)


def test_a_writer_that_adds_processes_and_fields_is_still_read(doc):
    # Another writer (a driver's spans): a process of its own, named like a cell, tracks without
    # '#k', extra arguments; its calls still join its services' spans by key.
    more = copy.deepcopy(doc)
    pid = 99
    ev = more["traceEvents"]
    ev.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
               "args": {"name": "one-hangs/go-errgroup/fanout:3/concurrency:16"}})
    ev.append({"name": "orchestration: timed_out", "cat": "orchlab.orchestration", "ph": "X", "ts": 1000.0,
               "dur": 100000.0, "pid": pid, "tid": 1,
               "args": {"verdict": "timed_out", "sampled_as": "first timed-out", "intended_start_us": 1000.0,
                        "deadline_ms": 100, "goroutines": 3}})
    ev.append({"name": "call: cancelled", "cat": "orchlab.call", "ph": "X", "ts": 1100.0, "dur": 100100.0,
               "pid": pid, "tid": 2, "args": {"key": "7", "service": "inventory", "outcome": "cancelled"}})
    ev.append({"name": "inventory: hang -> client_abort", "cat": "orchlab.call", "ph": "X", "ts": 1200.0,
               "dur": 100300.0, "pid": pid, "tid": 3, "args": {"key": "7", "end": "client_abort"}})
    t = traces.parse(more)
    go = _cell(t, "one-hangs", "go-errgroup")
    s = go.sample("first timed-out")
    assert len(s.lanes) == 1 and s.lanes[0].served.args["end"] == "client_abort"
    assert s.deadline_ms == 100
    plot._import_matplotlib()
    fig = plot.fig_timelines(t, "one-hangs", plot.Ctx(plot.WIDTHS["double"], "orchlab abc123 · host · date"))
    try:
        assert "go-errgroup" in [t.get_text() for _, t in texts(fig)]
        assert problems(fig) == []
    finally:
        plot.plt.close(fig)


@pytest.mark.parametrize("size", list(plot.WIDTHS))
def test_the_figure_says_which_sample_and_what_it_could_not_draw(doc, size):
    more = copy.deepcopy(doc)
    more["otherData"]["cells"].append({"cell": "one-hangs/go-errgroup/fanout:3/concurrency:16", "traced": False,
                                       "why": "its calls are made by the driver's process (docs/drivers.md)"})
    t = traces.parse(more)
    plot._import_matplotlib()
    fig = plot.fig_timelines(t, "one-hangs", plot.Ctx(plot.WIDTHS[size], "orchlab abc123 · host · date"))
    try:
        assert problems(fig) == []
        words = " ".join(" ".join(t.get_text().split()) for _, t in texts(fig))
        assert "first timed-out" in words
        # mutex-aggregation has no deadline: no timed-out orchestration, and the figure says so.
        assert "no timed-out orchestration; its slowest sampled" in words
        assert "Not drawn: go-errgroup (its calls are made by the driver's process" in words
        assert "deadline" in words and "running after the orchestration returned" in words
    finally:
        plot.plt.close(fig)


def test_an_article_picks_its_patterns(trace):
    plot._import_matplotlib()
    fig = plot.fig_timelines(trace, "one-hangs", plot.Ctx(plot.WIDTHS["single"], "src"),
                             ["channel-soup", "cancellable-group"])
    try:
        labels = [ax.get_ylabel().replace("\n", "") for ax in fig.axes if ax.get_ylabel()]
        assert labels == ["channel-soup", "cancellable-group"]
        assert problems(fig) == []
    finally:
        plot.plt.close(fig)
    with pytest.raises(plot.Skip, match="of nosuch"):
        plot.fig_timelines(trace, "one-hangs", plot.Ctx(plot.WIDTHS["single"], "src"), ["nosuch"])


@pytest.mark.parametrize("size", list(plot.WIDTHS))
def test_a_scenario_of_many_patterns_still_fits_a_page(doc, size):
    # fail-fast runs every exhibit in make bench: twenty panels would not fit; the rest are named.
    t = traces.parse(_with_soup_copies(doc, [f"exhibit-{n:02d}" for n in range(20)]))
    plot._import_matplotlib()
    fig = plot.fig_timelines(t, "one-hangs", plot.Ctx(plot.WIDTHS[size], "orchlab abc123 · host · date"))
    try:
        assert fig.get_figheight() <= 10.0
        words = " ".join(" ".join(t.get_text().split()) for _, t in texts(fig))
        assert "more (the figure is full: plot.py --timelines-patterns picks)" in words
        assert problems(fig) == []
    finally:
        plot.plt.close(fig)


def test_no_traced_cell_of_the_scenario_is_a_skip(trace):
    plot._import_matplotlib()
    with pytest.raises(plot.Skip):
        plot.fig_timelines(trace, "healthy", plot.Ctx(plot.WIDTHS["double"], "src"))


def test_split_writes_one_small_trace_per_orchestration(trace, tmp_path):
    (tmp_path / "old-run_x__9.json").write_text("{}")  # an earlier split's, linked by nothing now
    (tmp_path / "notes.json").write_text("{}")
    written = traces.split(trace, tmp_path)
    assert not (tmp_path / "old-run_x__9.json").exists() and (tmp_path / "notes.json").exists()
    n = sum(len(c.samples) for c in trace.cells if c.traced)
    assert len(written) == n and n >= 8
    for (pid, k), path in written.items():
        with open(path, encoding="utf-8") as f:
            part = json.load(f)
        ev = part["traceEvents"]
        assert {e["pid"] for e in ev} == {pid}
        assert any(e["ph"] == "M" and e["name"] == "process_name" for e in ev)
        assert part["otherData"]["sample"] == k and part["otherData"]["cell"]["pid"] == pid
        # Every slice's track is named; flows are whole.
        named = {e["tid"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
        assert {e["tid"] for e in ev if e["ph"] == "X"} <= named
        ids = {}
        for e in ev:
            if e["ph"] in ("s", "f"):
                ids.setdefault(e["id"], set()).add(e["ph"])
        assert all(v == {"s", "f"} for v in ids.values())
        again = traces.parse(part)
        cell = next(c for c in again.cells if c.traced)
        assert [s.index for s in cell.samples] == [k]


def test_plot_py_draws_the_timelines_of_a_trace_beside_the_report(tmp_path):
    shutil.copy(REPORT, tmp_path / "report.json")
    shutil.copy(TRACE, tmp_path / "trace.json")
    r = run_script("plot.py", tmp_path / "report.json", "--no-micro", "--no-claims", "--sizes", "double",
                   "-o", tmp_path / "plots")
    assert r.code == 0, r.err
    for scenario in ("one-hangs", "fail-fast"):
        for ext in ("png", "svg"):
            assert (tmp_path / "plots" / f"timelines_{scenario}.{ext}").stat().st_size > 10_000
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    r = run_script("plot.py", tmp_path / "report.json", "--trace", bad, "-o", tmp_path / "p2")
    assert r.code == 2 and "not a trace-event document" in r.err


def test_a_full_figure_drops_variants_before_a_base_pattern(doc):
    # one-hangs in make bench: nine C++ exhibits and go-errgroup, sorted last. When not all
    # fit, each runtime's first base pattern stays and the '+' variants give way first.
    names = [f"channel-soup+v{n:02d}" for n in range(12)] + [f"base-{n:02d}" for n in range(8)] + ["go-errgroup"]
    more = _with_soup_copies(doc, names)
    for c in more["otherData"]["cells"]:
        c["recorded_by"] = "driver" if "/go-errgroup/" in c["cell"] else "fetch"
    t = traces.parse(more)
    plot._import_matplotlib()
    for size in plot.WIDTHS:
        fig = plot.fig_timelines(t, "one-hangs", plot.Ctx(plot.WIDTHS[size], "orchlab abc123 · host · date"))
        try:
            labels = [ax.get_ylabel().replace("\n", "") for ax in fig.axes if ax.get_ylabel()]
            # each runtime's first base pattern, however full the page
            assert "go-errgroup" in labels and "channel-soup" in labels, (size, labels)
            assert not any(p.startswith("channel-soup+v") for p in labels)  # bases before variants
            assert not all(p in labels for p in names)
            assert problems(fig) == []
        finally:
            plot.plt.close(fig)
