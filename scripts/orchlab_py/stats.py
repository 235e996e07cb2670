"""Two-sided Mann-Whitney U test and small descriptive statistics (no scipy)."""

import math
from dataclasses import dataclass
from functools import lru_cache

# Exact null distribution is used when both samples are this small and have no ties,
# the same regime in which scipy's method="auto" chooses "exact".
EXACT_MAX_N = 8


@dataclass(frozen=True)
class MannWhitneyResult:
    """U statistic of the first sample, two-sided p-value and the method used."""

    u: float
    p: float
    method: str  # "exact" or "asymptotic"


def _ranks(values):
    """Average ranks (1-based) of values, ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean_rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = mean_rank
        i = j + 1
    return ranks


def _tie_groups(values):
    """Sizes of the groups of equal values."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [c for c in counts.values() if c > 1]


@lru_cache(maxsize=None)
def _u_counts(n1, n2):
    """Number of arrangements giving each U in 0..n1*n2 (recurrence on the largest value)."""
    if n1 == 0 or n2 == 0:
        return (1,)
    # The largest observation belongs to sample 1 (adds n2 to U) or to sample 2 (adds 0).
    a = _u_counts(n1 - 1, n2)
    b = _u_counts(n1, n2 - 1)
    out = [0] * (n1 * n2 + 1)
    for u, c in enumerate(a):
        out[u + n2] += c
    for u, c in enumerate(b):
        out[u] += c
    return tuple(out)


def _exact_p(u1, n1, n2):
    """Two-sided exact p-value: twice the smaller tail, capped at 1."""
    counts = _u_counts(n1, n2)
    total = math.comb(n1 + n2, n1)
    u = int(round(max(u1, n1 * n2 - u1)))
    upper = sum(counts[u:])
    return min(1.0, 2.0 * upper / total)


def _normal_sf(z):
    """Survival function of the standard normal distribution."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney_u(x, y, use_continuity=True, method="auto"):
    """Two-sided Mann-Whitney U test of x and y; method is "auto", "exact" or "asymptotic"."""
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_u: both samples need at least one value")
    combined = x + y
    ranks = _ranks(combined)
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2.0
    ties = _tie_groups(combined)
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"mann_whitney_u: unknown method {method!r}")
    if method == "exact" and ties:
        raise ValueError("mann_whitney_u: the exact distribution assumes no ties")
    if method == "exact" or (method == "auto" and not ties and max(n1, n2) <= EXACT_MAX_N):
        return MannWhitneyResult(u1, _exact_p(u1, n1, n2), "exact")
    n = n1 + n2
    mu = n1 * n2 / 2.0
    tie_term = sum(t ** 3 - t for t in ties)
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0.0:  # every value equal: nothing distinguishes the samples
        return MannWhitneyResult(u1, 1.0, "asymptotic")
    u = max(u1, n1 * n2 - u1)
    z = (u - mu - (0.5 if use_continuity else 0.0)) / math.sqrt(var)
    return MannWhitneyResult(u1, min(1.0, 2.0 * _normal_sf(z)), "asymptotic")


def min_p_value(n1, n2):
    """Smallest two-sided p the exact test can reach with n1 and n2 values."""
    if n1 == 0 or n2 == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def mean(values):
    """Arithmetic mean; None for an empty list."""
    values = list(values)
    return sum(values) / len(values) if values else None


def median(values):
    """Median; None for an empty list."""
    s = sorted(values)
    if not s:
        return None
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def stdev(values):
    """Sample standard deviation (n-1); 0 for fewer than two values."""
    values = list(values)
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
