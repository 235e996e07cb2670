"""Read a trace of `orchlab run --trace FILE` (Chrome trace-event JSON, docs/analysis.md "Traces").

What is read is the format, not which exhibits happen to be drawn: a process per cell (its
name `scenario/pattern/fanout:N/concurrency:C`), tracks named `#k ...` per sampled
orchestration, and complete slices by category — `orchlab.orchestration` (the one with a
`verdict` argument is the orchestration; others, such as the wait for a worker, precede it),
`orchlab.call` (the caller's call; a slice with an `end` argument is the service's side of
the call with the same `key`), `orchlab.task` (the task that made a call). `otherData.cells`
lists every cell, traced or not and why.

split() writes each sampled orchestration as a small trace file of its own, which Perfetto
opens as it opens the whole one.
"""

import json
import os
import re
from dataclasses import dataclass, field

ORCHESTRATION, CALL, TASK = "orchlab.orchestration", "orchlab.call", "orchlab.task"
CELL_NAME = re.compile(r"^(?P<scenario>.+)/(?P<pattern>[^/]+)/fanout:(?P<fanout>\d+)/concurrency:(?P<concurrency>\d+)")
SAMPLE_TRACK = re.compile(r"^#(\d+)\b")
CALL_TRACK = re.compile(r"\bcall (\d+) -> (.+)$")


class TraceError(Exception):
    """The file is not an orchlab trace; the message says why."""


@dataclass
class Span:
    """A complete slice ('ph': 'X'): times in µs on the trace's clock."""

    name: str
    cat: str
    ts: float
    dur: float
    tid: int
    args: dict

    @property
    def end(self):
        return self.ts + self.dur


@dataclass
class Lane:
    """One call of a sampled orchestration: what the caller saw and what the service did."""

    index: int            # the call's position in the orchestration (-1: unknown)
    service: str
    call: Span = None     # fetch called -> returned (None: not recorded)
    task: Span = None     # the task that made the call, to its end
    served: Span = None   # the service's span for the same key (None: none recorded)

    @property
    def end(self):
        """When the last of its slices ended, µs."""
        return max(s.end for s in (self.call, self.task, self.served) if s is not None)


@dataclass
class Sample:
    """One sampled orchestration of a cell."""

    pid: int
    index: int             # k of its tracks' "#k"
    track: str             # its orchestration track's name
    orchestration: Span
    before: list = field(default_factory=list)  # orchestration slices before it (waited for a worker)
    lanes: list = field(default_factory=list)
    tids: set = field(default_factory=set)

    @property
    def args(self):
        return self.orchestration.args

    @property
    def sampled_as(self):
        return str(self.args.get("sampled_as") or "")

    @property
    def verdict(self):
        return str(self.args.get("verdict") or "")

    @property
    def intended_us(self):
        """The intended start (closed loop: the start), µs: where latency and deadline count from."""
        v = self.args.get("intended_start_us")
        return float(v) if isinstance(v, (int, float)) else self.orchestration.ts

    @property
    def deadline_ms(self):
        v = self.args.get("deadline_ms")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def returned_us(self):
        return self.orchestration.end

    def zombie_ms(self):
        """How long its last call or task ran after it returned, ms (0: none did)."""
        ends = [s.end for lane in self.lanes for s in (lane.call, lane.task) if s is not None]
        return max([0.0] + [(e - self.returned_us) / 1e3 for e in ends])


@dataclass
class Cell:
    """A cell of the run: traced (a pid and its samples) or not, and why."""

    name: str
    scenario: str
    pattern: str
    fanout: int
    concurrency: int
    traced: bool
    why: str = ""
    pid: int = None
    info: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)

    def sample(self, sampled_as):
        """The sample the trace marks `sampled_as` (e.g. 'first timed-out'), or None."""
        return next((s for s in self.samples if s.sampled_as == sampled_as), None)


@dataclass
class Trace:
    path: str
    doc: dict
    cells: list

    def scenarios(self):
        """Scenarios with at least one traced cell, in the order the trace lists them."""
        out = []
        for c in self.cells:
            if c.traced and c.scenario not in out:
                out.append(c.scenario)
        return out

    def cells_of(self, scenario):
        return [c for c in self.cells if c.scenario == scenario]


def beside(report_path):
    """The trace.json in the report's folder, as `make bench` writes it, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(report_path)), "trace.json")
    return path if os.path.isfile(path) else None


def parse_cell_name(name):
    """(scenario, pattern, fanout, concurrency) of 'scenario/pattern/fanout:N/concurrency:C', or None."""
    m = CELL_NAME.match(str(name))
    if not m:
        return None
    return m["scenario"], m["pattern"], int(m["fanout"]), int(m["concurrency"])


def load(path):
    """The trace at `path`. Raises TraceError when it cannot be read or is not an orchlab trace."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from e
    except ValueError as e:
        raise TraceError(f"{path}: not valid JSON: {e}") from e
    return parse(doc, path)


def parse(doc, path="trace"):
    """The cells and samples of a trace document (see the module's docstring)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        raise TraceError(f"{path}: not a trace-event document (no traceEvents list)")
    other = doc.get("otherData") if isinstance(doc.get("otherData"), dict) else {}
    process, thread = {}, {}
    spans = {}
    for e in doc["traceEvents"]:
        if not isinstance(e, dict):
            continue
        pid, tid, ph = e.get("pid"), e.get("tid"), e.get("ph")
        if ph == "M" and isinstance(e.get("args"), dict):
            if e.get("name") == "process_name":
                process[pid] = str(e["args"].get("name", ""))
            elif e.get("name") == "thread_name":
                thread[(pid, tid)] = str(e["args"].get("name", ""))
        elif ph == "X" and isinstance(e.get("ts"), (int, float)):
            spans.setdefault(pid, []).append(Span(str(e.get("name", "")), str(e.get("cat", "")), float(e["ts"]),
                                                  float(e.get("dur") or 0), tid,
                                                  e["args"] if isinstance(e.get("args"), dict) else {}))
    cells, by_pid = [], {}
    for info in other.get("cells") or []:
        if not isinstance(info, dict):
            continue
        parsed = parse_cell_name(info.get("cell", ""))
        if not parsed:
            continue
        traced = bool(info.get("traced")) and isinstance(info.get("pid"), int)
        cell = Cell(str(info["cell"]), *parsed, traced=traced, why=str(info.get("why") or ""),
                    pid=info.get("pid") if traced else None, info=info)
        cells.append(cell)
        if traced:
            by_pid[cell.pid] = cell
    # A process no otherData entry names (a writer that adds processes of its own): by its name.
    for pid, name in process.items():
        parsed = parse_cell_name(name)
        if pid not in by_pid and parsed and pid in spans:
            cell = Cell(name, *parsed, traced=True, pid=pid, info={"cell": name, "pid": pid})
            cells.append(cell)
            by_pid[pid] = cell
    for pid, cell in by_pid.items():
        cell.samples = _samples(pid, spans.get(pid, []), thread)
    return Trace(path, doc, cells)


def _samples(pid, spans, thread):
    """The sampled orchestrations of one process, their calls joined to the services' spans by key."""
    samples = []
    for s in spans:
        if s.cat == ORCHESTRATION and "verdict" in s.args:
            track = thread.get((pid, s.tid), "")
            m = SAMPLE_TRACK.match(track)
            samples.append(Sample(pid, int(m.group(1)) if m else len(samples) + 1, track, s, tids={s.tid}))
    if not samples:
        return []
    by_index = {s.index: s for s in samples}

    def owner(span):
        """The sample of a span: its track's '#k', else the latest orchestration started before it."""
        m = SAMPLE_TRACK.match(thread.get((pid, span.tid), ""))
        if m and int(m.group(1)) in by_index:
            return by_index[int(m.group(1))]
        before = [s for s in samples if s.orchestration.ts <= span.ts + 1e-3] or samples
        return max(before, key=lambda s: s.orchestration.ts)

    callers, served = {}, {}
    for span in spans:
        if span.cat == ORCHESTRATION and "verdict" in span.args:
            continue
        sample = owner(span)
        sample.tids.add(span.tid)
        if span.cat == ORCHESTRATION:
            sample.before.append(span)
        elif span.cat == CALL and "end" in span.args:
            served.setdefault(id(sample), []).append(span)
        elif span.cat in (CALL, TASK):
            lane = callers.setdefault((id(sample), span.tid), _lane(thread.get((pid, span.tid), ""), span))
            if span.cat == TASK:
                lane.task = span
            else:
                lane.call = span
                lane.service = str(span.args.get("service") or lane.service)
    for sample in samples:
        lanes = [lane for (sid, _), lane in callers.items() if sid == id(sample)]
        by_key = {str(lane.call.args.get("key")): lane for lane in lanes
                  if lane.call is not None and lane.call.args.get("key") is not None}
        for span in served.get(id(sample), []):
            lane = by_key.get(str(span.args.get("key")))
            if lane is None:  # a service span with no call of this sample: a lane of its own
                lane = Lane(-1, span.name.split(":")[0])
                lanes.append(lane)
            lane.served = span
        lanes.sort(key=lambda lane: (lane.index < 0, lane.index, min(
            s.ts for s in (lane.call, lane.task, lane.served) if s is not None)))
        sample.lanes = lanes
    return sorted(samples, key=lambda s: s.index)


def _lane(track, span):
    m = CALL_TRACK.search(track)
    if m:
        return Lane(int(m.group(1)), m.group(2))
    return Lane(-1, str(span.args.get("service") or ""))


# ---------------------------------------------------------------------------------------
# One file per sampled orchestration
# ---------------------------------------------------------------------------------------

def slug(text):
    """A file-name-safe form of a cell name."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(text)).strip("_")


def sample_file_name(cell, sample):
    return f"{slug(cell.name)}__{sample.index}.json"


def split(trace, out_dir):
    """Write each sampled orchestration of `trace` to out_dir as a trace file of its own (its
    process's and tracks' names, its slices, instants and flows), and remove the files of this
    kind an earlier split left there. Returns {(pid, k): path}."""
    os.makedirs(out_dir, exist_ok=True)
    events = trace.doc["traceEvents"]
    other = trace.doc.get("otherData") if isinstance(trace.doc.get("otherData"), dict) else {}
    written = {}
    for cell in trace.cells:
        if not cell.traced:
            continue
        for sample in cell.samples:
            keep = []
            for e in events:
                if not isinstance(e, dict) or e.get("pid") != cell.pid:
                    continue
                if e.get("ph") == "M" and e.get("name", "").startswith("process_"):
                    keep.append(e)
                elif e.get("tid") in sample.tids:
                    keep.append(e)
            # A flow is kept only whole: both of its ends on this sample's tracks.
            ends = {}
            for e in keep:
                if e.get("ph") in ("s", "f"):
                    ends.setdefault(e.get("id"), set()).add(e["ph"])
            keep = [e for e in keep if e.get("ph") not in ("s", "f") or ends.get(e.get("id")) == {"s", "f"}]
            doc = {"traceEvents": keep, "displayTimeUnit": trace.doc.get("displayTimeUnit", "ms"),
                   "otherData": {"tool": other.get("tool", "orchlab"), "clock": other.get("clock", ""),
                                 "from": os.path.basename(trace.path), "cell": cell.info,
                                 "sample": sample.index, "sampled_as": sample.sampled_as}}
            path = os.path.join(out_dir, sample_file_name(cell, sample))
            tmp = f"{path}.tmp.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.write("\n")
            os.replace(tmp, path)
            written[(cell.pid, sample.index)] = path
    # Files an earlier split left (another trace's orchestrations) would be linked by nothing.
    keep = {os.path.basename(p) for p in written.values()}
    for name in os.listdir(out_dir):
        if re.fullmatch(r".+__\d+\.json", name) and name not in keep:
            os.unlink(os.path.join(out_dir, name))
    return written
