"""Statistics for compare.py and claims.py, in plain Python and numpy (no scipy).

- mann_whitney_u: two-sided Mann-Whitney U (Wilcoxon rank-sum) test. Small samples get
  the exact conditional distribution of the rank sum given the observed ties (every
  C(n1+n2, n1) split of the pooled ranks counted), larger ones the normal approximation
  with tie correction and a 0.5 continuity correction (R's wilcox.test(correct=TRUE)).
- hodges_lehmann / hodges_lehmann_ratio: the shift (or ratio) of y relative to x with
  its distribution-free interval from the order statistics of the pairwise differences
  (R's wilcox.test(y, x, conf.int=TRUE)).
- median_interval: the median of independent observations (repetitions) with the
  distribution-free order-statistic interval of the sign test (R's
  binom.test-based quantile interval); its confidence is exact for any continuous
  distribution and printed as achieved (5 values reach at most 93.75 %).
- clopper_pearson: the exact (conservative) binomial interval of a proportion of
  independent units (R's binom.test(x, n)$conf.int).
- bootstrap_ci: seeded percentile bootstrap of any statistic over repetitions (kept for
  descriptive use; at 5 repetitions it covers about 80 %, so the claims do not use it).
- wilson_interval: Wilson score interval of a proportion (R's prop.test(correct=FALSE)).

scripts/tests/test_coverage.py checks by simulation that every interval the claims engine
prints covers at least 94 % at the sample sizes the lab uses.
- holm: Holm-Bonferroni adjusted p-values (R's p.adjust(method="holm")).

scripts/tests/test_stats.py checks them against R (fixtures made by
scripts/tests/r/make_fixtures.R; the bootstrap, whose random numbers R cannot share, by
its properties).
"""

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np

# The exact conditional distribution is used when the number of splits C(n1+n2, n1) is at
# most this (10 vs 10 repetitions: 184,756); above it the normal approximation is close.
EXACT_MAX_SPLITS = 200_000
# Hodges-Lehmann intervals use the exact (untied) U distribution while both samples are
# below this size, as R's wilcox.test does by default; the normal approximation above.
HL_EXACT_MAX_N = 50
# Relative fuzz when comparing tail probabilities with a level (R's qwilcox uses 10 eps).
_FUZZ = 1e-12


@dataclass(frozen=True)
class MannWhitneyResult:
    """U statistic of the first sample, two-sided p-value, the method used, and the
    smallest two-sided p any split of these pooled values could have given (the
    floor: with 2 vs 2 values it is 1/3, so no outcome is significant at 0.05)."""

    u: float
    p: float
    method: str  # "exact" (conditional on the ties) or "asymptotic"
    p_min: float = 0.0


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
    """Sizes of the groups of equal values (groups of one left out)."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [c for c in counts.values() if c > 1]


def _group_sizes(values):
    """Sizes of the groups of equal values in increasing value order, singletons included."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return tuple(counts[v] for v in sorted(counts))


@lru_cache(maxsize=None)
def _u_counts(n1, n2):
    """Number of the C(n1+n2, n1) arrangements without ties giving each U in 0..n1*n2.

    The generating function of U is the Gaussian binomial coefficient
    prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i); multiply and divide term by term.
    """
    size = n1 * n2 + 1
    c = [0] * size
    c[0] = 1
    for i in range(1, n1 + 1):
        shift = n2 + i
        for k in range(size - 1, shift - 1, -1):  # times (1 - q^shift)
            c[k] -= c[k - shift]
        for k in range(i, size):  # divided by (1 - q^i): a running sum with stride i
            c[k] += c[k - i]
    return tuple(c)


@lru_cache(maxsize=4096)
def _conditional_counts(groups, n1):
    """Distribution of twice the rank sum of sample 1 over every split of the pooled values.

    groups: sizes of the tie groups in increasing value order (singletons included). A
    group of t values starting after p smaller ones has midrank p + (t + 1) / 2, twice
    that is an integer. Choosing j of its t values for sample 1 happens in C(t, j) ways
    and adds j times that doubled midrank; the dynamic program over the groups counts
    exactly what enumerating all C(n1 + n2, n1) splits would.
    Returns (smallest doubled sum, counts per doubled sum from there), counts as floats
    (exact: they never exceed EXACT_MAX_SPLITS).
    """
    n = sum(groups)
    top = 2 * sum(range(n - n1 + 1, n + 1))  # the n1 largest ranks, doubled
    dp = np.zeros((n1 + 1, top + 1))
    dp[0, 0] = 1.0
    pos = 0
    for t in groups:
        r2 = 2 * pos + t + 1
        new = dp.copy()  # j = 0
        for j in range(1, min(t, n1) + 1):
            shift = j * r2
            if shift > top:
                break
            new[j:, shift:] += math.comb(t, j) * dp[: n1 + 1 - j, : top + 1 - shift]
        dp = new
        pos += t
    counts = dp[n1]
    nz = np.nonzero(counts)[0]
    return int(nz[0]), tuple(counts[nz[0]: nz[-1] + 1].tolist())


def _two_sided(counts, index):
    """2 x the smaller tail at index of a discrete distribution given as counts, capped at 1."""
    total = float(sum(counts))
    lower = sum(counts[: index + 1]) / total
    upper = sum(counts[index:]) / total
    return min(1.0, 2.0 * min(lower, upper))


def _floor_p(counts):
    """Smallest two-sided p any outcome of this distribution gives."""
    total = float(sum(counts))
    return min(1.0, 2.0 * min(counts[0], counts[-1]) / total)


def _normal_sf(z):
    """Survival function of the standard normal distribution."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_cdf(z):
    """Cumulative distribution function of the standard normal distribution."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normal_quantile(p):
    """Quantile of the standard normal distribution (Wichura's AS 241, ~1e-16 relative)."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"normal_quantile: p must be in [0, 1], got {p}")
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
                   + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                 + 133.14166789178437745) * r + 3.387132872796366608)
        den = (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r
                   + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
                 + 42.313330701600911252) * r + 1.0)
        return q * num / den
    r = p if q < 0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        num = (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
                   + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                 + 4.6303378461565452959) * r + 1.42343711074968357734)
        den = (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
                   + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                 + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        num = (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
                   + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                 + 5.4637849111641143699) * r + 6.6579046435011037772)
        den = (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
                   + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
                 + 0.59983220655588793769) * r + 1.0)
    x = num / den
    return -x if q < 0 else x


def _asymptotic_p(u1, n1, n2, tie_term, use_continuity):
    """Normal approximation: tie-corrected variance, optional 0.5 continuity correction
    towards the mean (R's wilcox.test(exact=FALSE, correct=TRUE))."""
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0.0:  # every value equal: nothing distinguishes the samples
        return 1.0
    d = u1 - n1 * n2 / 2.0
    corr = (0.5 if use_continuity else 0.0) * (1 if d > 0 else -1 if d < 0 else 0)
    z = (d - corr) / math.sqrt(var)
    return min(1.0, 2.0 * _normal_sf(abs(z)))


def mann_whitney_u(x, y, use_continuity=True, method="auto"):
    """Two-sided Mann-Whitney U test of x and y.

    method "auto": exact when C(n1+n2, n1) <= EXACT_MAX_SPLITS, asymptotic above;
    "exact" forces the exact conditional distribution (slow for large samples);
    "asymptotic" forces the normal approximation (tie-corrected variance, continuity
    correction unless use_continuity=False).

    The exact p-value is conditional on the observed ties: it counts, over every way of
    splitting the pooled values into groups of n1 and n2, how often the rank sum of the
    first group is at least as extreme as observed; p = 2 x the smaller tail, capped at 1
    (R's convention). Without ties this is the classical exact test (R's exact=TRUE).
    """
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_u: both samples need at least one value")
    if any(math.isnan(v) for v in x + y):
        raise ValueError("mann_whitney_u: NaN in a sample")
    if method not in ("auto", "exact", "asymptotic"):
        raise ValueError(f"mann_whitney_u: unknown method {method!r}")
    combined = x + y
    ranks = _ranks(combined)
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2.0
    ties = _tie_groups(combined)
    if method == "exact" or (method == "auto" and math.comb(n1 + n2, n1) <= EXACT_MAX_SPLITS):
        if not ties:
            counts = _u_counts(n1, n2)
            return MannWhitneyResult(u1, _two_sided(counts, int(round(u1))), "exact", _floor_p(counts))
        lo, counts = _conditional_counts(_group_sizes(combined), n1)
        return MannWhitneyResult(u1, _two_sided(counts, int(round(2 * r1)) - lo), "exact", _floor_p(counts))
    tie_term = sum(t ** 3 - t for t in ties)
    p = _asymptotic_p(u1, n1, n2, tie_term, use_continuity)
    # The floor: sample 1 holding the n1 smallest, or the n1 largest, pooled values.
    sorted_ranks = sorted(ranks)
    base = n1 * (n1 + 1) / 2.0
    floor = min(_asymptotic_p(sum(sorted_ranks[:n1]) - base, n1, n2, tie_term, use_continuity),
                _asymptotic_p(sum(sorted_ranks[-n1:]) - base, n1, n2, tie_term, use_continuity))
    return MannWhitneyResult(u1, p, "asymptotic", floor)


def min_p_value(n1, n2):
    """Smallest two-sided p the exact test can reach with n1 and n2 values (no ties;
    ties only raise it): 2 / C(n1 + n2, n1)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


@dataclass(frozen=True)
class ShiftEstimate:
    """A Hodges-Lehmann estimate of y relative to x and its confidence interval.

    low/high are None when the samples are too small for the requested level (the note
    says which level they could reach); confidence is the level achieved, which the
    discreteness of the exact distribution makes at least the one requested."""

    estimate: float
    low: Optional[float]
    high: Optional[float]
    level: float  # requested
    confidence: Optional[float]  # achieved (>= level), None without an interval
    method: str  # "exact" or "asymptotic" (how the order statistics were chosen)
    best_confidence: float = 1.0  # the widest interval's, [min, max] of the differences
    note: str = ""


def _hl_ranks(n1, n2, level):
    """(k, achieved confidence, method, best reachable confidence) for the interval
    [D_(k), D_(n1*n2 + 1 - k)] of the sorted pairwise differences; k = 0 when the level
    cannot be reached."""
    m = n1 * n2
    alpha = 1.0 - level
    if max(n1, n2) < HL_EXACT_MAX_N:
        counts = _u_counts(n1, n2)
        total = float(math.comb(n1 + n2, n1))
        best = 1.0 - 2.0 / total
        # R's qwilcox(alpha/2): the smallest u with P(U <= u) >= alpha/2; k = u.
        cum, k = 0.0, 0
        while True:
            cum += counts[k] / total
            if cum >= alpha / 2.0 - _FUZZ:
                break
            k += 1
        k = max(k, 1)  # the widest interval, [min, max] of the differences
        achieved = 1.0 - 2.0 * sum(counts[:k]) / total
        if achieved < level - _FUZZ:
            return 0, None, "exact", best
        return k, achieved, "exact", best
    z = normal_quantile(1.0 - alpha / 2.0)
    sigma = math.sqrt(m * (n1 + n2 + 1) / 12.0)
    k = int(math.floor(m / 2.0 + 0.5 - z * sigma))
    best = 1.0 - 2.0 * normal_cdf((0.5 - m / 2.0) / sigma)
    if k < 1:
        return 0, None, "asymptotic", best
    achieved = 1.0 - 2.0 * normal_cdf((k - 0.5 - m / 2.0) / sigma)
    return k, achieved, "asymptotic", best


def _hl(diffs, n1, n2, level, transform):
    diffs.sort()
    est = transform(median(diffs))
    k, conf, method, best = _hl_ranks(n1, n2, level)
    if k == 0:
        note = (f"{n1} vs {n2} values cannot give a {level:.0%} interval "
                f"(at most {best:.1%}); no interval")
        return ShiftEstimate(est, None, None, level, None, method, best, note)
    lo, hi = transform(diffs[k - 1]), transform(diffs[len(diffs) - k])
    note = f"achieved confidence {conf:.1%}" if conf - level > 1e-9 else ""
    return ShiftEstimate(est, lo, hi, level, conf, method, best, note)


def hodges_lehmann(x, y, level=0.95):
    """Shift of y relative to x: the median of the pairwise differences y_j - x_i, with its
    distribution-free interval at `level` from their order statistics (the exact U
    distribution while both samples have fewer than HL_EXACT_MAX_N values).

    Same numbers as R's wilcox.test(y, x, conf.int=TRUE, exact=TRUE) without ties; with
    ties R switches to a normal approximation solved numerically, this keeps the order
    statistics (the interval's coverage then holds only approximately).
    """
    x, y = [float(v) for v in x], [float(v) for v in y]
    if not x or not y:
        raise ValueError("hodges_lehmann: both samples need at least one value")
    return _hl([b - a for a in x for b in y], len(x), len(y), level, lambda d: d)


def hodges_lehmann_ratio(x, y, level=0.95):
    """Ratio of y to x: exp of the Hodges-Lehmann shift of log y against log x, with its
    interval (exp of the log-scale bounds). All values must be > 0."""
    x, y = [float(v) for v in x], [float(v) for v in y]
    if not x or not y:
        raise ValueError("hodges_lehmann_ratio: both samples need at least one value")
    if any(v <= 0 for v in x + y):
        raise ValueError("hodges_lehmann_ratio: values must be > 0")
    lx, ly = [math.log(v) for v in x], [math.log(v) for v in y]
    return _hl([b - a for a in lx for b in ly], len(x), len(y), level, math.exp)


def holm(pvalues):
    """Holm-Bonferroni adjusted p-values, in the input order (R's p.adjust(p, "holm")).

    None entries stay None and do not count in the family size."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def quantile(values, q):
    """The q-quantile with linear interpolation between order statistics (R's type 7,
    numpy's default); None for an empty list."""
    s = sorted(values)
    if not s:
        return None
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile: q must be in [0, 1], got {q}")
    h = (len(s) - 1) * q
    lo = int(math.floor(h))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval; low/high None when there is none (the
    note says why)."""

    estimate: Optional[float]
    low: Optional[float]
    high: Optional[float]
    level: float
    method: str
    n: int = 0  # the observations (or repetitions) it rests on
    note: str = ""


def bootstrap_ci(samples, statistic, level=0.95, resamples=2000, seed=20240601):
    """Percentile bootstrap interval of statistic(*samples).

    samples: a list of samples (lists of values, e.g. repetitions of two cells); each is
    resampled with replacement independently, `resamples` times, from a random.Random
    seeded with `seed`, so the same input always gives the same interval. statistic
    takes one list per sample and returns a number (None or a non-finite value drops
    that resample). The interval is the (1-level)/2 and (1+level)/2 type-7 quantiles of
    the resampled statistics. No interval (low/high None) when a sample has fewer than
    2 values or more than 10 % of the resamples were dropped.
    """
    samples = [[float(v) for v in s] for s in samples]
    if not samples:
        raise ValueError("bootstrap_ci: no sample")
    est = statistic(*samples)
    n = sum(len(s) for s in samples)
    smallest = min(len(s) for s in samples)
    if smallest < 2:
        return Interval(est, None, None, level, "percentile bootstrap", n,
                        f"a sample has {smallest} value(s): no spread to resample")
    rng = random.Random(seed)
    stats_ = []
    for _ in range(resamples):
        draw = [[s[rng.randrange(len(s))] for _ in s] for s in samples]
        v = statistic(*draw)
        if v is not None and math.isfinite(v):
            stats_.append(float(v))
    if len(stats_) < 0.9 * resamples:
        return Interval(est, None, None, level, "percentile bootstrap", n,
                        f"the statistic was undefined in {resamples - len(stats_)} of {resamples} resamples")
    tail = (1.0 - level) / 2.0
    note = f"{resamples} resamples, seed {seed}"
    if smallest < 5:
        note += f"; only {smallest} values in a sample: the interval is optimistic"
    return Interval(est, quantile(stats_, tail), quantile(stats_, 1.0 - tail), level,
                    "percentile bootstrap", n, note)


def wilson_interval(successes, n, level=0.95):
    """Wilson score interval of a proportion successes / n (R's prop.test(correct=FALSE));
    low/high None when n is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(None, None, None, level, "Wilson score", 0, "no trials")
    p = successes / n
    z = normal_quantile(1.0 - (1.0 - level) / 2.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave 1e-22.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high, level, "Wilson score", n)


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


def pooled_cv(*samples):
    """Pooled coefficient of variation of several samples: the square root of the
    degrees-of-freedom-weighted mean of each sample's (stdev / |mean|)^2. Samples with
    fewer than 2 values or a zero mean do not count; None when none counts."""
    num, df = 0.0, 0
    for s in samples:
        s = list(s)
        m = mean(s)
        if len(s) < 2 or not m:
            continue
        num += (len(s) - 1) * (stdev(s) / abs(m)) ** 2
        df += len(s) - 1
    return math.sqrt(num / df) if df else None


# ---------------------------------------------------------------------------------------
# Distribution-free intervals for the claims engine (their coverage is simulated in
# scripts/tests/test_coverage.py)
# ---------------------------------------------------------------------------------------

# An interval whose achievable confidence is below this is not given at all: a verdict
# from 5 repetitions rests on a 93.8 % interval (printed as such), one from 3 on none.
MIN_CONFIDENCE = 0.90


@lru_cache(maxsize=256)
def _log_choose(n):
    """log C(n, i) for i = 0..n, as a numpy array (a running sum of log((n - i + 1) / i))."""
    i = np.arange(1, n + 1, dtype=float)
    return np.concatenate(([0.0], np.cumsum(np.log((n - i + 1) / i))))


def binom_cdf(k, n, p):
    """P(X <= k) for X ~ Binomial(n, p), summed in log space."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    i = np.arange(k + 1, dtype=float)
    t = _log_choose(n)[: k + 1] + i * math.log(p) + (n - i) * math.log1p(-p)
    top = t.max()
    return min(1.0, math.exp(top) * float(np.exp(t - top).sum()))


def sign_test_rank(n, level=0.95):
    """(k, achieved confidence) of the order-statistic interval [x_(k), x_(n+1-k)] for the
    median of n independent values: the largest k whose confidence
    1 - 2 P(Binomial(n, 1/2) <= k - 1) is at least `level`; k = 1 (the range) with its
    confidence when no k reaches it; k = 0 for n < 2."""
    if n < 2:
        return 0, 0.0
    best_k, best_conf = 1, 1.0 - 2.0 * 0.5 ** n
    k = 2
    while k <= (n + 1) // 2:
        conf = 1.0 - 2.0 * binom_cdf(k - 1, n, 0.5)
        if conf < level - _FUZZ:
            break
        best_k, best_conf = k, conf
        k += 1
    return best_k, best_conf


@dataclass(frozen=True)
class MedianInterval:
    """The median of n values and its order-statistic interval with the confidence it
    achieves (exact for continuous data; ties only raise it). low/high are None when the
    achievable confidence is below MIN_CONFIDENCE (the note says why)."""

    estimate: Optional[float]
    low: Optional[float]
    high: Optional[float]
    confidence: Optional[float]
    n: int
    note: str = ""


def median_interval(values, level=0.95):
    """Median with the sign test's distribution-free interval (see sign_test_rank)."""
    s = sorted(float(v) for v in values)
    n = len(s)
    if n == 0:
        return MedianInterval(None, None, None, None, 0, "no values")
    est = median(s)
    k, conf = sign_test_rank(n, level)
    if k == 0 or conf < MIN_CONFIDENCE:
        if n < 2:
            return MedianInterval(est, None, None, None, n, "one value: no spread, no interval")
        most = 1.0 - 2.0 * 0.5 ** n
        return MedianInterval(est, None, None, None, n,
                              f"{n} values give at most a {most:.1%} interval for a median: no interval")
    note = "" if conf >= level - _FUZZ else \
        f"{n} values cannot give a {level:.0%} interval for a median; the range is a {conf:.1%} interval"
    return MedianInterval(est, s[k - 1], s[n - k], conf, n, note)


@lru_cache(maxsize=4096)
def clopper_pearson(successes, n, level=0.95):
    """Exact binomial interval (Clopper-Pearson) of successes / n independent trials:
    bounds solved by bisection on the binomial distribution (R's binom.test conf.int).
    Its coverage is at least `level` for every true proportion."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"clopper_pearson: need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(None, None, None, level, "Clopper-Pearson", 0, "no trials")
    alpha = (1.0 - level) / 2.0
    def solve(f):  # f increasing in p on (0, 1): the root, by bisection
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2.0
            if f(mid) < 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2.0

    x = successes
    # low: P(X >= x | p) = alpha; high: P(X <= x | p) = alpha
    low = 0.0 if x == 0 else solve(lambda p: (1.0 - binom_cdf(x - 1, n, p)) - alpha)
    high = 1.0 if x == n else solve(lambda p: alpha - binom_cdf(x, n, p))
    return Interval(x / n, low, high, level, "Clopper-Pearson", n)
