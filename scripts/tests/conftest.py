"""Shared fixtures: sample inputs, CLI runners and functions that plant data into a report."""

import contextlib
import copy
import importlib
import io
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
INPUTS = os.path.join(HERE, "inputs")
# Overridable, to run the suite against another report (e.g. a fresh real run) unchanged.
REPORT = os.environ.get("ORCHLAB_SAMPLE_REPORT", os.path.join(INPUTS, "report.json"))
MICRO = os.environ.get("ORCHLAB_SAMPLE_MICRO", os.path.join(INPUTS, "micro.json"))
# A real trace of orchlab run --trace (one-hangs and fail-fast, one sample per cell kept).
TRACE = os.environ.get("ORCHLAB_SAMPLE_TRACE", os.path.join(INPUTS, "trace_sample.json"))

sys.path.insert(0, SCRIPTS)


class Run:
    """Result of running one script."""

    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


def run_cli(name, *args):
    """Run scripts/<name> in a child interpreter, as a user would; never raises on a non-zero exit."""
    proc = subprocess.run([sys.executable, os.path.join(SCRIPTS, name), *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_script(name, *args):
    """Call scripts/<name>'s main() in this process (fast); exit status as returned or raised."""
    module = importlib.import_module(name[:-3])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = module.main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def sample():
    """The sample report as parsed JSON (copy before editing)."""
    with open(REPORT, encoding="utf-8") as f:
        return json.load(f)


def write(tmp_path, name, doc):
    """Write a JSON document under tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def iteration_entries(doc, scenario=None, pattern=None):
    """Iteration entries of the report, optionally filtered."""
    return [b for b in doc["benchmarks"] if b.get("run_type", "iteration") == "iteration"
            and (scenario is None or b.get("scenario") == scenario)
            and (pattern is None or b.get("pattern") == pattern)]


def feasible(entry):
    """True when the entry is a measured (not infeasible) repetition."""
    return not entry.get("infeasible") and not entry.get("error_occurred")


def first_feasible_cell(doc, pattern=None):
    """(scenario, pattern, fanout, concurrency) of the first measured cell."""
    for b in iteration_entries(doc, pattern=pattern):
        if feasible(b) and b.get("iterations"):
            return b["scenario"], b["pattern"], b["fanout"], b["concurrency"]
    pytest.skip(f"the sample report has no measured cell{' of ' + pattern if pattern else ''}")


def set_cell(doc, cell, metric_values):
    """Replace a cell's repetitions with len(values) copies of its first one carrying the planted values.

    metric_values: {metric: [value per repetition]}; all lists have the same length.
    """
    scenario, pattern, fanout, concurrency = cell
    reps = [b for b in doc["benchmarks"] if b.get("scenario") == scenario and b.get("pattern") == pattern
            and b.get("fanout") == fanout and b.get("concurrency") == concurrency]
    template = next(b for b in reps if b.get("run_type", "iteration") == "iteration")
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b not in reps]
    n = len(next(iter(metric_values.values())))
    for i in range(n):
        e = copy.deepcopy(template)
        e["repetition_index"], e["repetitions"] = i, n
        for metric, values in metric_values.items():
            e[metric] = values[i]
        doc["benchmarks"].append(e)
    return doc
