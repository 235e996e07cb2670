"""Crafted Go cells: copies of a report's C++ cells as the harness writes Go exhibits'
entries (DESIGN.md "Runtimes and drivers", docs/drivers.md), for tests of every reader."""

import copy

from orchlab_py import runtimes

GO_OF = {cpp: go for go, cpp in runtimes.COUNTERPART.items()}
# What a driver cannot measure: null in a Go entry.
GO_NULL = ("lock_wait_ns", "lock_contended", "pool_wait_p99_us", "pool_wait_samples", "pool_exhausted",
           "threads_end")


def go_entry(entry, go_pattern, transport="lab", **overrides):
    """A Go exhibit's entry made from a C++ entry of the same cell."""
    e = copy.deepcopy(entry)
    old = e["pattern"]
    e["pattern"] = e["label"] = go_pattern
    for k in ("name", "run_name"):
        if isinstance(e.get(k), str):
            e[k] = e[k].replace(f"/{old}/", f"/{go_pattern}/")
    e["runtime"] = runtimes.GO
    for k in GO_NULL:
        e[k] = None
    e.update({"driver": "orchlab-go", "exhibit_form": "article" if e.get("fanout") == 3 else "fanout-n",
              "go_version": "go1.19.8", "gomaxprocs": 2,
              "go_transport": {"mode": transport, "max_conns_per_host": 32 if transport == "lab" else 0,
                               "max_idle_conns_per_host": 32 if transport == "lab" else 2,
                               "max_idle_conns": 0 if transport == "lab" else 100, "idle_conn_timeout_ms": 90000},
              "goroutines_baseline": 3, "goroutines_peak": 40, "goroutines_end": 0,
              "tasks_started": 300, "tasks_finished": 300})
    e.update(overrides)
    return e


def tag_runtimes(doc):
    """Give every entry of a report its `runtime` as the harness now writes it."""
    for b in doc["benchmarks"]:
        if "pattern" in b:
            b["runtime"] = runtimes.runtime_of_pattern(b["pattern"])
    return doc


def add_go_twins(doc, scenarios=None, transport="lab"):
    """Append a Go twin of every C++ cell (entries and aggregates) whose pattern has one,
    in the listed scenarios (all when None), with its series; returns doc."""
    tag_runtimes(doc)
    out = []
    for b in doc["benchmarks"]:
        go = GO_OF.get(b.get("pattern"))
        if go and (scenarios is None or b.get("scenario") in scenarios):
            out.append(go_entry(b, go, transport))
    doc["benchmarks"] += out
    series = (doc.get("lab") or {}).get("series") or {}
    for name in list(series):
        parts = name.split("/")
        if len(parts) > 2 and parts[1] in GO_OF and (scenarios is None or parts[0] in scenarios):
            parts[1] = GO_OF[parts[1]]
            s = copy.deepcopy(series[name])
            first = s[0] if isinstance(s, list) and s else s
            if isinstance(first, dict):
                first["goroutines"] = list(first.get("live_tasks") or [])
            series["/".join(parts)] = s
    doc.setdefault("context", {})["runtimes"] = {
        "go": {"driver": "build/go/orchlab-go", "status": "built", "go_version": "go1.19.8", "gomaxprocs": 2}}
    return doc
