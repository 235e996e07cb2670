"""Coverage, by simulation: every kind of interval the claims engine prints covers the
truth at least as often as the confidence printed beside it, and at least 94 % at the
repetition counts a verdict rests on in make bench (scenarios/default.json: 6 repetitions
of a claim cell, 5 vs 5 repetitions of the microbenchmarks, 6 independent stress runs, a
hundred or more repetitions pooled for "no orphans").

Each case draws DRAWS seeded samples from a normal, two lognormals (sigma 0.5 and 1) and
a heavy-tailed distribution (Student's t with 2 degrees of freedom, or a Pareto with
alpha 1.5 where values must be positive), builds the interval with the engine's own
function and counts how often it holds the true parameter. With 3,000 draws the
simulation's standard error at 95 % is 0.4 %. The whole module takes a few seconds.
"""

import math
import sys
import os

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from orchlab_py import claimkit, stats  # noqa: E402

DRAWS = 3000
FLOOR = 0.94  # what the issue asks of every interval at the sizes the lab uses


def _dist(name, rng, size):
    """Draws and the true median of one of the four distributions."""
    if name == "normal":
        return rng.normal(10.0, 2.0, size), 10.0
    if name == "lognormal-0.5":
        return rng.lognormal(0.0, 0.5, size), 1.0
    if name == "lognormal-1":
        return rng.lognormal(0.0, 1.0, size), 1.0
    if name == "t2":
        return rng.standard_t(2, size) + 5.0, 5.0
    if name == "pareto-1.5":
        # numpy's pareto is Lomax; + 1 gives the classical Pareto with x_m = 1: median 2^(1/alpha)
        return rng.pareto(1.5, size) + 1.0, 2.0 ** (1 / 1.5)
    raise AssertionError(name)


DISTS = ["normal", "lognormal-0.5", "lognormal-1", "t2"]
POSITIVE = ["normal", "lognormal-0.5", "lognormal-1", "pareto-1.5"]


def _covers(low, high, truth):
    return low is not None and low <= truth <= high


# --- the median over repetitions (value, per_orchestration, metric_ratio, proportion,
# --- stress_proportion): sign-test interval

@pytest.mark.parametrize("dist", DISTS + ["pareto-1.5"])
@pytest.mark.parametrize("n", [5, 6, 10])
def test_median_interval_covers_what_it_prints(dist, n):
    rng = np.random.default_rng(1000 + n)
    x, truth = _dist(dist, rng, (DRAWS, n))
    hits, conf = 0, None
    for row in x:
        mi = stats.median_interval(row)
        conf = mi.confidence
        hits += _covers(mi.low, mi.high, truth)
    cov = hits / DRAWS
    assert cov >= conf - 0.01, (dist, n, cov, conf)
    if n >= 6:
        assert conf >= 0.95 and cov >= FLOOR, (dist, n, cov, conf)
    else:
        assert conf == pytest.approx(0.9375)  # 5 values: printed as 93.8 %, never as 95 %


def test_three_repetitions_give_no_interval():
    assert stats.median_interval([1.0, 2.0, 3.0]).low is None


@pytest.mark.parametrize("dist", DISTS)
def test_paired_difference_covers_the_median_difference(dist):
    # Repetition i of both sides shares a repetition effect (same faults, same slow spell)
    # that the difference removes; the truth is the median of X - Y.
    rng = np.random.default_rng(7)
    n = 6
    x, _ = _dist(dist, rng, (DRAWS, n))
    y, _ = _dist(dist, rng, (DRAWS, n))
    big_x, _ = _dist(dist, np.random.default_rng(99), 2_000_000)
    big_y, _ = _dist(dist, np.random.default_rng(98), 2_000_000)
    truth = float(np.median(big_x - big_y + 1.0))
    shared = rng.normal(0.0, 50.0, (DRAWS, n))
    a, b = x + 1.0 + shared, y + shared
    hits = 0
    for ra, rb in zip(a, b):
        mi = stats.median_interval(ra - rb)
        # the truth is itself estimated: count a hit within its simulation error
        hits += _covers(mi.low - 0.01, mi.high + 0.01, truth)
    assert hits / DRAWS >= FLOOR


# --- two cells against each other: Hodges-Lehmann shift and ratio

@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("n", [5, 6])
def test_hodges_lehmann_shift_covers(dist, n):
    rng = np.random.default_rng(2000 + n)
    x, _ = _dist(dist, rng, (DRAWS, n))
    y, _ = _dist(dist, rng, (DRAWS, n))
    shift = 3.0
    hits, conf = 0, None
    for rx, ry in zip(x, y + shift):
        hl = stats.hodges_lehmann(rx, ry)
        conf = hl.confidence
        hits += _covers(hl.low, hl.high, shift)
    assert conf >= 0.95
    assert hits / DRAWS >= FLOOR, (dist, n, hits / DRAWS)


@pytest.mark.parametrize("dist", POSITIVE)
def test_hodges_lehmann_ratio_covers(dist):
    rng = np.random.default_rng(3000)
    n = 5
    x, _ = _dist(dist, rng, (DRAWS, n))
    y, _ = _dist(dist, rng, (DRAWS, n))
    x = np.abs(x) + 0.01  # the normal case: positive, as throughputs are
    y = np.abs(y) + 0.01
    ratio = 1.7
    hits = sum(_covers(*(lambda h: (h.low, h.high))(stats.hodges_lehmann_ratio(rx, ry)), ratio)
               for rx, ry in zip(x, y * ratio))
    assert hits / DRAWS >= FLOOR, (dist, hits / DRAWS)


@pytest.mark.parametrize("dist", ["lognormal-0.5", "lognormal-1", "pareto-1.5"])
def test_contention_share_covers(dist):
    # Four series of 5 repetitions (BM_Aggregate): strategy and baseline at T threads and at
    # 1. The same noise shape in each, so the truth is 1 - (s_T / b_T) / (s_1 / b_1).
    rng = np.random.default_rng(4000)
    n = 5
    s_t, b_t, s_1, b_1 = 30.0, 100.0, 90.0, 100.0
    truth = 1.0 - (s_t / b_t) / (s_1 / b_1)
    hits = 0
    for _ in range(DRAWS):
        series = [_dist(dist, rng, n)[0] * m for m in (s_t, b_t, s_1, b_1)]
        agg = {("s", 0, 2): list(series[0]), ("b", 0, 2): list(series[1]),
               ("s", 0, 1): list(series[2]), ("b", 0, 1): list(series[3])}
        r = claimkit.contention_share(agg, "s", "b", 0, 2)
        hits += _covers(r.low, r.high, truth)
    assert hits / DRAWS >= FLOOR, (dist, hits / DRAWS)


# --- a share of independent repetitions: Clopper-Pearson

@pytest.mark.parametrize("n", [30, 90, 160])
@pytest.mark.parametrize("p", [0.0, 0.005, 0.02, 0.1, 0.5])
def test_clopper_pearson_covers(n, p):
    rng = np.random.default_rng(5000 + n)
    xs = rng.binomial(n, p, DRAWS)
    cache = {}
    hits = 0
    for x in xs:
        if x not in cache:
            ci = stats.clopper_pearson(int(x), n)
            cache[x] = (ci.low, ci.high)
        hits += _covers(*cache[x], p)
    assert hits / DRAWS >= FLOOR, (n, p, hits / DRAWS)


def test_clopper_pearson_closed_forms():
    # 0 of n: the upper bound is 1 - (alpha/2)^(1/n); n of n: the lower is (alpha/2)^(1/n).
    for n in (1, 6, 159):
        assert stats.clopper_pearson(0, n).high == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
        assert stats.clopper_pearson(n, n).low == pytest.approx(0.025 ** (1 / n), rel=1e-9)
    # R: binom.test(17, 26)$conf.int = 0.4433281 0.8278559
    ci = stats.clopper_pearson(17, 26)
    assert (ci.low, ci.high) == (pytest.approx(0.4433281, abs=1e-6), pytest.approx(0.8278559, abs=1e-6))


# --- a percentile read from a histogram: the reading's resolution

def _bucket_reading(v):
    """v as the lab's LogHistogram reads it back: 128 sub-buckets per power of two, the
    bucket's middle (values in us as integers below 128 are exact)."""
    v = np.asarray(v, dtype=float)
    octave = np.floor(np.log2(np.maximum(v, 1.0)))
    width = np.maximum(1.0, 2.0 ** (octave - 7))
    return np.floor(v / width) * width + width / 2


def test_histogram_readings_widened_by_their_resolution_cover():
    # Every repetition's p99 is one bucket's reading: without the widening, five identical
    # readings give a zero-width interval that misses the truth whenever it is not the
    # bucket's middle (claim 7's -92.2 ms [-92.2 ms, -92.2 ms]).
    rng = np.random.default_rng(6000)
    truth = 92_213.0  # us
    hits = raw_hits = 0
    for _ in range(DRAWS):
        vals = _bucket_reading(truth + rng.normal(0, 40.0, 6))
        mi = stats.median_interval(list(vals))
        res = max(abs(v) for v in vals) * claimkit.HISTOGRAM_RESOLUTION
        hits += _covers(mi.low - res, mi.high + res, truth)
        raw_hits += _covers(mi.low, mi.high, truth)
    assert hits / DRAWS >= FLOOR
    assert raw_hits / DRAWS < 0.9  # the unwidened interval is narrower than the data can tell


def test_the_engine_widens_histogram_percentiles_and_says_so():
    assert claimkit.is_histogram_percentile("server_abort_lag_p99_ms")
    assert claimkit.is_histogram_percentile("p50_us")
    assert not claimkit.is_histogram_percentile("server_client_aborts")
    r = claimkit._median_ci([-92.2] * 6, 100, "lag", resolution=92.2 / 256)
    assert r.low < -92.2 < r.high
    assert "resolution ±" in claimkit.interval_text(r, "ms")


def test_the_bootstrap_the_claims_no_longer_use_undercovers():
    # Why the engine left it: the percentile bootstrap of a mean over 5 repetitions of a
    # lognormal (sigma 0.5) covers the true mean far less than 95 % of the time.
    rng = np.random.default_rng(8000)
    truth = math.exp(0.5 ** 2 / 2)
    draws = 400
    hits = 0
    for row in rng.lognormal(0.0, 0.5, (draws, 5)):
        ci = stats.bootstrap_ci([list(row)], stats.mean, resamples=400, seed=int(rng.integers(1 << 30)))
        hits += _covers(ci.low, ci.high, truth)
    assert hits / draws < 0.88


# --- a share in a typical repetition (proportion, stress_proportion): the wider of the
# --- sign-test interval of per-repetition shares and the pooled Clopper-Pearson

@pytest.mark.parametrize("trials", [4, 26, 300])
@pytest.mark.parametrize("p,rho", [(0.5, 0.0), (0.9, 0.05), (0.9, 0.3), (0.99, 0.05), (0.5, 0.3)])
def test_share_interval_covers_the_typical_repetition(trials, p, rho):
    # Clustered binomial data: each of 6 repetitions has its own true share (a beta with
    # mean p and intra-repetition correlation rho); the truth is the median repetition's.
    rng = np.random.default_rng(9000 + trials)
    draws = 800
    if rho:
        a, b = p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho
        truth = float(np.median(np.random.default_rng(1).beta(a, b, 400_000)))
    else:
        truth = p
    hits = 0
    for _ in range(draws):
        pi = rng.beta(a, b, 6) if rho else np.full(6, p)
        s = rng.binomial(trials, pi)
        _est, low, high, conf, _note = claimkit.share_interval([int(v) for v in s], [trials] * 6)
        hits += _covers(low - 1e-3, high + 1e-3, truth)  # the truth is estimated to ~1e-3
    assert hits / draws >= FLOOR, (trials, p, rho, hits / draws)
