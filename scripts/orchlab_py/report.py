"""Load and validate orchlab reports (DESIGN.md "Report") and Google Benchmark micro files."""

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from . import runtimes, stats
from .metrics import metric_table


class ReportError(Exception):
    """An input file that cannot be used; the message names the file and the reason."""


class CellKey(NamedTuple):
    """Identity of a cell: scenario × pattern × fanout × concurrency."""

    scenario: str
    pattern: str
    fanout: int
    concurrency: int

    @property
    def name(self):
        """The cell name used in reports, without the /real_time suffix."""
        return f"{self.scenario}/{self.pattern}/fanout:{self.fanout}/concurrency:{self.concurrency}"


@dataclass
class Cell:
    """All iteration entries (repetitions) of one cell."""

    key: CellKey
    reps: list = field(default_factory=list)

    @property
    def infeasible(self):
        """The reason the harness gave for not running the cell, or None."""
        for rep in self.reps:
            reason = rep.get("infeasible")
            if reason:
                return reason if isinstance(reason, str) else rep.get("error_message", "infeasible")
            if rep.get("error_occurred"):
                return rep.get("error_message", "error")
        return None

    @property
    def runtime(self):
        """The runtime the cell ran on (its entries' `runtime`, or derived from the pattern
        name in a report written before entries carried it)."""
        return runtimes.runtime_of_entry(self.reps[0]) if self.reps else \
            runtimes.runtime_of_pattern(self.key.pattern)

    def values(self, metric):
        """The metric's value in each repetition that has it."""
        return [float(r[metric]) for r in self.reps if _is_number(r.get(metric))]

    def median(self, metric):
        """Median over repetitions, or None when no repetition has the metric."""
        return stats.median(self.values(metric))

    def mean(self, metric):
        """Mean over repetitions, or None."""
        return stats.mean(self.values(metric))

    def total(self, metric):
        """Sum over repetitions (counters), or None."""
        vals = self.values(metric)
        return sum(vals) if vals else None

    def per_orchestration(self, metric):
        """A counter summed over repetitions divided by the orchestrations run, or None."""
        tot = self.total(metric)
        orch = self.total("iterations")
        if tot is None or not orch:
            return None
        return tot / orch


@dataclass
class Report:
    """A validated orchlab report."""

    path: str
    context: dict
    metrics: dict
    cells: dict
    series: dict
    lab: dict

    def scenarios(self):
        """Scenario names in report order."""
        return list(dict.fromkeys(k.scenario for k in self.cells))

    def patterns(self):
        """Pattern names in report order."""
        return list(dict.fromkeys(k.pattern for k in self.cells))

    def runtimes(self):
        """The runtimes of the report's cells, in runtimes.RUNTIMES order."""
        return sorted({c.runtime for c in self.cells.values()}, key=runtimes.rank)

    def runtime_of(self, pattern):
        """The runtime of a pattern's cells (derived from the name when it has none)."""
        for key, cell in self.cells.items():
            if key.pattern == pattern:
                return cell.runtime
        return runtimes.runtime_of_pattern(pattern)

    def select(self, scenario=None, pattern=None, feasible=True):
        """Cells matching the filters, in report order."""
        out = []
        for key, cell in self.cells.items():
            if scenario is not None and key.scenario != scenario:
                continue
            if pattern is not None and key.pattern != pattern:
                continue
            if feasible and cell.infeasible:
                continue
            out.append(cell)
        return out

    def series_for(self, key):
        """The time series recorded for a cell, or None."""
        return self.series.get(key)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read_json(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a text file (not UTF-8)") from None
    if not text.strip():
        raise ReportError(f"{path}: empty file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        hint = " (truncated file?)" if e.pos >= len(text.rstrip()) - 1 else ""
        raise ReportError(
            f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}{hint}"
        ) from None
    if not isinstance(doc, dict):
        raise ReportError(f"{path}: top level is not a JSON object")
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise ReportError(f"{path}: no 'benchmarks' list")
    for i, b in enumerate(benchmarks):
        if not isinstance(b, dict) or not isinstance(b.get("name"), str):
            raise ReportError(f"{path}: benchmarks[{i}] is not an object with a 'name'")
    return doc


_CELL_RE = re.compile(r"^([^/]+)/([^/]+)/fanout:(\d+)/concurrency:(\d+)(?:/|$)")


def parse_cell_name(name):
    """CellKey from 'scenario/pattern/fanout:N/concurrency:C[/...]', or None."""
    m = _CELL_RE.match(name)
    if not m:
        return None
    return CellKey(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))


def _as_int(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _cell_key(path, i, b):
    scenario, pattern = b.get("scenario"), b.get("pattern")
    fanout, concurrency = _as_int(b.get("fanout")), _as_int(b.get("concurrency"))
    if not isinstance(scenario, str) or not isinstance(pattern, str):
        return None
    if fanout is None or concurrency is None:
        raise ReportError(
            f"{path}: benchmarks[{i}] ('{b['name']}'): 'fanout' and 'concurrency' must be integers"
        )
    return CellKey(scenario, pattern, fanout, concurrency)


def load_report(path):
    """Read and validate an orchlab report; raises ReportError with a one-line reason."""
    doc = _read_json(path)
    benchmarks = doc["benchmarks"]
    lab = doc.get("lab", {})
    if not isinstance(lab, dict):
        raise ReportError(f"{path}: 'lab' is not an object")
    try:
        metrics = metric_table(lab.get("metrics"))
    except ValueError as e:
        raise ReportError(f"{path}: {e}") from None
    context = doc.get("context", {})
    if not isinstance(context, dict):
        raise ReportError(f"{path}: 'context' is not an object")

    notes = lab.setdefault("notes", [])
    if not isinstance(notes, list):
        raise ReportError(f"{path}: lab.notes is not a list")
    cells = {}
    iterations = [(i, b) for i, b in enumerate(benchmarks) if b.get("run_type", "iteration") == "iteration"]
    if not iterations and "lab" not in doc:
        raise ReportError(f"{path}: not an orchlab report: no iteration entries and no 'lab' section")
    for i, b in iterations:
        key = _cell_key(path, i, b)
        if key is None:
            raise ReportError(
                f"{path}: not an orchlab report: benchmarks[{i}] ('{b['name']}') has no "
                "'scenario'/'pattern' fields (a plain Google Benchmark file? pass it with --micro)"
            )
        for name in metrics:
            if name in b and b[name] is not None and not _is_number(b[name]):
                raise ReportError(f"{path}: benchmarks[{i}] ('{b['name']}'): '{name}' is not a number")
        rt = b.get("runtime")
        if rt is not None and (not isinstance(rt, str) or not rt):
            raise ReportError(f"{path}: benchmarks[{i}] ('{b['name']}'): 'runtime' must be a non-empty string")
        refuse_impossible(context, f"{key.name} repetition {(_as_int(b.get('repetition_index')) or 0) + 1}",
                          b, notes)
        cells.setdefault(key, Cell(key)).reps.append(b)
    for cell in cells.values():
        cell.reps.sort(key=lambda r: _as_int(r.get("repetition_index")) or 0)
        found = {runtimes.runtime_of_entry(r) for r in cell.reps}
        if len(found) > 1:
            raise ReportError(f"{path}: cell {cell.key.name} mixes runtimes ({', '.join(sorted(found))}): "
                              "one cell is one exhibit on one runtime")

    series = {}
    raw_series = lab.get("series", {})
    if not isinstance(raw_series, dict):
        raise ReportError(f"{path}: lab.series is not an object")
    for name, s in raw_series.items():
        if isinstance(s, list):  # one series per repetition: plot the first
            s = s[0] if s else None
        if not isinstance(s, dict):
            raise ReportError(f"{path}: lab.series['{name}'] is not an object")
        key = parse_cell_name(name)
        if key is not None:
            series.setdefault(key, s)
    return Report(path, context, metrics, cells, series, lab)


def micro_beside(report_path):
    """The micro.json in the report's folder, as `make bench` writes it, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(report_path)), "micro.json")
    if os.path.isfile(path) and os.path.abspath(report_path) != path:
        return path
    return None


def load_micro(path):
    """Read a Google Benchmark JSON file; returns {run_name: [entries]} of iteration runs.

    When the file holds only aggregates (--benchmark_report_aggregates_only) the means
    stand in for the repetitions.
    """
    doc = _read_json(path)
    runs, means = {}, {}
    for b in doc["benchmarks"]:
        if b.get("error_occurred"):
            continue
        run_name = b.get("run_name", b["name"])
        if b.get("run_type", "iteration") == "iteration":
            runs.setdefault(run_name, []).append(b)
        elif b.get("aggregate_name") == "mean":
            means.setdefault(run_name, []).append(b)
    for name, entries in means.items():
        runs.setdefault(name, entries)
    if not runs:
        raise ReportError(f"{path}: no benchmark runs in the file")
    return runs


def micro_family(runs, family, metric="items_per_second", dashes=False):
    """{arg: {param: mean value}} for runs named family/<arg>/<param>, e.g. BM_Aggregate.

    The last path component is parsed as 'key:N' (threads:8, fanout:100) into an int
    when possible; the rest between family and it is the arg (strategy or pattern).
    metric "time" reads real_time in ns. dashes=True spells args with '-' for '_'
    (slots_padded and slots-padded are the same strategy).
    """
    out = {}
    for name, entries in runs.items():
        parts = name.split("/")
        if parts[0] != family or len(parts) < 2:
            continue
        if metric == "time":
            vals = [_time_ns(e) for e in entries]
        else:
            vals = [float(e[metric]) for e in entries if _is_number(e.get(metric))]
        vals = [v for v in vals if v is not None]
        if not vals:
            continue
        tail = [p for p in parts[1:] if p not in ("real_time", "manual_time", "process_time")]
        param = None
        if tail and ":" in tail[-1]:
            k, _, v = tail[-1].partition(":")
            param = _as_int(int(v)) if v.isdigit() else v
            tail = tail[:-1]
        arg = "/".join(tail) if tail else ""
        if dashes:
            arg = arg.replace("_", "-")
        out.setdefault(arg, {})[param] = stats.mean(vals)
    return out


_TIME_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def _time_ns(entry):
    """real_time of a Google Benchmark entry in nanoseconds."""
    t = entry.get("real_time")
    if not _is_number(t):
        return None
    return float(t) * _TIME_NS.get(entry.get("time_unit", "ns"), 1.0)


# ---------------------------------------------------------------------------------------
# The host the numbers came from, and what the micro file's library build means
# ---------------------------------------------------------------------------------------

def host_busy_line(context):
    """One line when the harness found the host busy before the run's first cell
    (context.host_before_run.busy, docs/harness.md), else None."""
    h = context.get("host_before_run") if isinstance(context, dict) else None
    if not isinstance(h, dict) or h.get("busy") is not True:
        return None
    why = h.get("why") or "see context.host_before_run"
    return (f"The host was busy before the run began ({why}): CPU-bound figures (throughput, "
            "latency, CPU time) may carry that load.")


def micro_context(path):
    """The context object of a Google Benchmark JSON file ({} when it has none)."""
    doc = _read_json(path)
    ctx = doc.get("context")
    return ctx if isinstance(ctx, dict) else {}


def micro_build_line(micro_ctx):
    """One line explaining micro.json's library_build_type when it says debug, else None.

    Google Benchmark reports whether *its own library* was compiled with NDEBUG. Debian's
    libbenchmark is not, so it says debug. The timed loop (State::StateIterator,
    KeepRunningInternal) is inline in benchmark.h and is compiled into orchlab-micro with
    the lab's own (Release) flags; the library's code runs between batches of iterations.
    """
    if not isinstance(micro_ctx, dict) or micro_ctx.get("library_build_type") != "debug":
        return None
    return ("micro.json says `library_build_type: debug`: Debian's libbenchmark is built without "
            "NDEBUG. That is the library's own code (the runner and timers between batches), not "
            "the measured code: the benchmarks and their timed loop (inline in benchmark.h) are "
            "the lab's Release build.")


# ---------------------------------------------------------------------------------------
# Report invariants: impossible server counts are refused, never read as figures
# ---------------------------------------------------------------------------------------

# Patterns that cancel the siblings on the first error (not their +collect-all variants):
# the C++ groups and the article's errgroup listings (errgroup.WithContext cancels ctx on
# the first non-nil error).
FIRST_ERROR_PATTERNS = ("cancellable-group", "bounded-group", "async-group", "go-errgroup", "go-errgroup-limit")


def server_invariant_breaks(entry):
    """[(field, reason)] for the server counts of one iteration entry that cannot be true
    (docs/harness.md "Invariants"); the harness refuses them itself, this catches reports
    written before it did."""
    out = []
    aborts, requests = entry.get("server_client_aborts"), entry.get("server_requests")
    calls, fanout = entry.get("calls"), entry.get("fanout")
    if _is_number(aborts) and _is_number(calls) and aborts > calls:
        out.append(("server_client_aborts", f"{aborts:g} client aborts for {calls:g} calls"))
    answered = [entry.get(k) for k in ("call_ok", "call_http_errors")]
    if _is_number(requests) and all(_is_number(a) for a in answered) and requests < sum(answered):
        out.append(("server_requests",
                    f"{requests:g} requests seen for {sum(answered):g} calls answered over HTTP"))
    if (entry.get("pattern") in FIRST_ERROR_PATTERNS and _is_number(aborts) and _is_number(fanout)
            and all(_is_number(entry.get(k)) for k in ("complete", "failed", "partial", "timed_out"))):
        # A first error cancels at most fanout - 1 siblings; only an orchestration the
        # deadline ended (timed out, partial) or one that threw can see all its calls aborted.
        threw = entry.get("orchestrations_threw") if _is_number(entry.get("orchestrations_threw")) else 0
        whole = entry["partial"] + entry["timed_out"] + threw
        bound = (fanout - 1) * (entry["complete"] + entry["failed"] - threw) + fanout * whole
        if aborts > bound:
            out.append(("server_client_aborts",
                        f"{aborts:g} client aborts in a first-error cell of fan-out {fanout:g}, over "
                        f"the {bound:g} possible (fan-out - 1 per orchestration an error ended)"))
    return out


def refuse_impossible(doc_context, name, entry, notes):
    """Nulls the server fields of `entry` that break an invariant; one lab.notes line each."""
    shard = doc_context.get("shard") if isinstance(doc_context, dict) else None
    if isinstance(shard, dict) and shard.get("services") == "shared" and "merged" not in shard:
        return  # one shard's report: the shared services' counts hold every shard's calls
    for fld, why in server_invariant_breaks(entry):
        if entry.get(fld) is None:
            continue
        entry[fld] = None
        note = f"{fld} of {name} refused (null): {why}, which cannot happen"
        if note not in notes:
            notes.append(note)
