"""plot.py: every figure written as a real image; skips are explained; bad input exits 2."""

import copy
import os
import pathlib
import subprocess
import sys
import struct

import pytest

from conftest import MICRO, REPORT, run_cli, write
from orchlab_py import style

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent

FIGURES = ["throughput", "latency_healthy", "latency_one-hangs", "leaks", "cascade_one-hangs",
           "lock_wait", "threads", "micro_aggregation", "micro_orchestrate", "verdicts"]
# Double column (7 in) and single column (3.5 in) at 300 dpi.
SIZES = {"": 2100, "_1col": 1050}


def png_size(path):
    """(width, height) from a PNG's IHDR chunk; fails when the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def plotted(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots")
    r = run_cli("plot.py", REPORT, "--micro", MICRO, "-o", out)
    return r, out


def test_every_figure_is_written(plotted):
    r, out = plotted
    assert r.code == 0, r.err
    for stem in FIGURES:
        for suffix, width in SIZES.items():
            png, svg = out / f"{stem}{suffix}.png", out / f"{stem}{suffix}.svg"
            assert png.exists() and svg.exists(), f"{stem}{suffix} missing; stderr: {r.err}"
            w, h = png_size(png)
            assert w == width and 300 <= h <= 3000, f"{stem}{suffix}: {w}x{h}"
            assert png.stat().st_size > 10_000, f"{stem}{suffix}.png looks empty"
            assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "skipping" not in r.err


@pytest.mark.parametrize("stem, label", [
    ("throughput", "throughput (orchestrations/s)"),
    ("throughput_1col", "throughput (orch/s)"),
    ("latency_healthy", "orchestration latency (ms)"),
    ("cascade_one-hangs", "time since the cell started (s)"),
    ("lock_wait", "lock wait (µs/orchestration, log)"),
    ("micro_aggregation", "throughput ÷ slots' (log; 1 = as fast)"),
    ("leaks", "tasks per orchestration"),
])
def test_axes_are_labelled_with_units(plotted, stem, label):
    _, out = plotted
    assert label in (out / f"{stem}.svg").read_text(encoding="utf-8")  # SVG text is kept as text


def test_every_pattern_is_drawn_in_its_colour(plotted, sample):
    _, out = plotted
    svg = (out / "throughput.svg").read_text(encoding="utf-8").lower()
    patterns = {b["pattern"] for b in sample["benchmarks"] if "pattern" in b}
    for p in patterns:
        assert style.pattern_colour(p).lower() in svg, p


def test_missing_scenarios_and_micro_are_skipped_with_a_note(sample, tmp_path):
    doc = copy.deepcopy(sample)
    first = next(b for b in doc["benchmarks"] if b.get("scenario") == "healthy")
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b.get("run_name") == first["run_name"]]
    doc["lab"]["series"] = {}
    out = tmp_path / "plots"
    r = run_cli("plot.py", write(tmp_path, "healthy.json", doc), "-o", out)
    assert r.code == 0, r.err
    assert "skipping latency_one-hangs" in r.err
    assert "skipping cascade_one-hangs" in r.err
    assert "skipping micro_aggregation: no --micro" in r.err
    assert (out / "throughput.png").exists() and (out / "latency_healthy.png").exists()
    assert not (out / "cascade_one-hangs.png").exists()


def test_bad_input_exits_2(tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_text("{\"benchmarks\": [", encoding="utf-8")
    r = run_cli("plot.py", cut, "-o", tmp_path)
    assert r.code == 2 and r.err.startswith(f"plot.py: {cut}: not valid JSON")
    r = run_cli("plot.py", MICRO, "-o", tmp_path)
    assert r.code == 2 and "not an orchlab report" in r.err
    r = run_cli("plot.py", REPORT, "--micro", cut, "-o", tmp_path)
    assert r.code == 2 and r.err.startswith(f"plot.py: {cut}:")


def test_one_colour_per_pattern():
    colours = [style.pattern_colour(p) for p in style.PATTERN_ORDER]
    assert len(set(colours)) == len(colours)
    assert style.pattern_colour("cancellable-group+collect-all") == style.pattern_colour("cancellable-group")
    # An unknown pattern gets a fallback colour from its name, not from the
    # order patterns were first asked for: a fresh interpreter that asks for
    # others first agrees.
    colour = style.pattern_colour("some-new-pattern")
    assert colour in style._FALLBACK
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from orchlab_py import style; "
             "[style.pattern_colour(p) for p in ('zz-first', 'aa-second', 'mm-third')]; "
             "print(style.pattern_colour('some-new-pattern'))")
    out = subprocess.run([sys.executable, "-c", probe, str(SCRIPTS)], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout.strip() == colour
