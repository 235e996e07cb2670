"""Pooled figures over a report's cells, shared by claims.py and plot.py."""

from . import stats


def pooled_total(report, scenario, pattern, metric):
    """A counter summed over every feasible cell and repetition; None when any of them did
    not record it (null means "not measured", never 0: a partial sum would read as fewer)."""
    cells = report.select(scenario, pattern)
    vals = [v for c in cells for v in c.values(metric)]
    if not vals or len(vals) != sum(len(c.reps) for c in cells):
        return None
    return sum(vals)


def orchestrations(report, scenario, pattern):
    """Orchestrations run over every feasible cell and repetition."""
    return sum(c.total("iterations") or 0 for c in report.select(scenario, pattern))


def per_orch(report, scenario, pattern, metric):
    """pooled_total / orchestrations; None when either is missing or zero orchestrations."""
    tot = pooled_total(report, scenario, pattern, metric)
    n = orchestrations(report, scenario, pattern)
    if tot is None or not n:
        return None
    return tot / n


def cell_max(report, scenario, pattern, metric, how="median"):
    """The largest per-cell median (or mean) over feasible cells; None when absent."""
    vals = []
    for c in report.select(scenario, pattern):
        v = c.median(metric) if how == "median" else c.mean(metric)
        if v is not None:
            vals.append(v)
    return max(vals) if vals else None


def cell_median(report, scenario, pattern, metric):
    """Median over feasible cells of the per-cell median; None when absent."""
    vals = [c.median(metric) for c in report.select(scenario, pattern)]
    vals = [v for v in vals if v is not None]
    return stats.median(vals) if vals else None


def has_cells(report, scenario, pattern, feasible=True):
    """True when the report holds such cells."""
    return bool(report.select(scenario, pattern, feasible=feasible))
