"""Metric metadata: unit, better direction and invariants, from lab.metrics or built-in."""

from dataclasses import dataclass, field

# The groups that join every task before returning: leaks must be zero (variants match too,
# so go-errgroup covers go-errgroup+collect-all).
GROUP_PATTERNS = ("cancellable-group", "bounded-group", "async-group", "go-errgroup", "go-errgroup-limit")


@dataclass(frozen=True)
class Metric:
    """How to read one flat field of a report entry."""

    name: str
    unit: str
    better: str  # "lower", "higher" or "none" (no direction: changes get no verdict)
    must_be_zero_for: tuple = field(default=())
    label: str = ""

    def title(self):
        """Human label with unit, for axes and tables."""
        base = self.label or self.name.replace("_", " ")
        return f"{base} ({self.unit})" if self.unit else base


def _m(name, unit, better, label="", zero=()):
    return Metric(name, unit, better, tuple(zero), label)


# Used for any metric a report's lab.metrics does not describe. Counters are totals over
# one repetition of a cell (they grow with its duration); per-orchestration figures divide
# by `iterations`.
DEFAULT_METRICS = {
    m.name: m
    for m in (
        _m("items_per_second", "orch/s", "higher", "throughput"),
        _m("real_time", "us", "lower", "mean latency"),
        _m("cpu_time", "us", "lower", "CPU per orchestration"),
        _m("p50_us", "us", "lower", "latency p50"),
        _m("p90_us", "us", "lower", "latency p90"),
        _m("p99_us", "us", "lower", "latency p99"),
        _m("p999_us", "us", "lower", "latency p99.9"),
        _m("max_us", "us", "lower", "latency max"),
        _m("complete", "orch", "higher", "complete orchestrations"),
        _m("partial", "orch", "none", "partial orchestrations"),
        _m("failed", "orch", "lower", "failed orchestrations"),
        _m("timed_out", "orch", "lower", "timed-out orchestrations"),
        _m("deadline_overshoot_p99_us", "us", "lower", "deadline overshoot p99"),
        _m("leaked_tasks_at_return", "tasks", "lower", "leaked tasks at return", GROUP_PATTERNS),
        _m("leaked_tasks_end", "tasks", "lower", "leaked tasks at end", GROUP_PATTERNS),
        _m("zombie_task_s", "s", "lower", "zombie task time", GROUP_PATTERNS),
        _m("late_completions", "calls", "lower", "late completions", GROUP_PATTERNS),
        _m("threads_peak", "threads", "lower", "OS threads peak"),
        _m("live_tasks_peak", "tasks", "none", "calls in flight, peak (census)"),
        _m("orchestrations_threw", "orchestrations", "lower", "orchestrations that threw"),
        _m("threads_end", "threads", "lower", "OS threads at end"),
        _m("drain_ms", "ms", "lower", "drain time"),
        _m("pool_wait_p99_us", "us", "lower", "pool wait p99"),
        _m("pool_exhausted", "events", "lower", "pool exhausted"),
        _m("lock_wait_ns", "ns", "lower", "lock wait"),
        _m("lock_contended", "acquisitions", "lower", "contended locks"),
        _m("ctx_switches_voluntary", "switches", "lower", "voluntary context switches"),
        _m("ctx_switches_involuntary", "switches", "lower", "involuntary context switches"),
        _m("rss_peak_kb", "KiB", "lower", "peak RSS"),
        _m("server_client_aborts", "calls", "higher", "server-side client aborts"),
        _m("server_work_past_deadline_ms", "ms", "lower", "server work past deadline"),
        _m("server_abort_lag_p99_ms", "ms", "lower", "abort lag p99"),
    )
}


def metric_table(lab_metrics):
    """Merge a report's lab.metrics over the defaults; raises ValueError on a bad entry."""
    table = dict(DEFAULT_METRICS)
    if lab_metrics is None:
        return table
    if not isinstance(lab_metrics, dict):
        raise ValueError("lab.metrics is not an object")
    for name, meta in lab_metrics.items():
        if not isinstance(meta, dict):
            raise ValueError(f"lab.metrics.{name} is not an object")
        base = table.get(name, Metric(name, "", "lower"))
        better = meta.get("better", base.better)
        if better not in ("lower", "higher", "none"):
            raise ValueError(f"lab.metrics.{name}.better must be 'lower', 'higher' or 'none', not {better!r}")
        unit = meta.get("unit", base.unit)
        if not isinstance(unit, str):
            raise ValueError(f"lab.metrics.{name}.unit is not a string")
        zero = meta.get("must_be_zero_for", list(base.must_be_zero_for))
        if not isinstance(zero, list) or not all(isinstance(p, str) for p in zero):
            raise ValueError(f"lab.metrics.{name}.must_be_zero_for is not a list of pattern names")
        if zero and not any(p.startswith("go-") for p in zero):
            # A list written before the Go exhibits existed: the Go errgroups join every
            # goroutine as the C++ groups join every task, so they are held to it too.
            zero = list(zero) + [p for p in base.must_be_zero_for if p.startswith("go-")]
        table[name] = Metric(name, unit, better, tuple(zero), base.label)
    return table


def pattern_matches(pattern, listed):
    """True when pattern is listed or is a variant of a listed one ("x+collect-all" of "x")."""
    return any(pattern == p or pattern.startswith(p + "+") for p in listed)
