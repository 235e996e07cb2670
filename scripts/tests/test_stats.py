"""stats.py against R (fixtures from tests/r/make_fixtures.R), hand-computed distributions
and the values scipy's documentation publishes."""

import json
import math
import os

import pytest

from conftest import INPUTS
from orchlab_py import stats

with open(os.path.join(INPUTS, "r_fixtures.json"), encoding="utf-8") as f:
    R = json.load(f)


def ids(cases):
    return [f"{len(c['x'])}v{len(c['y'])}-{i}" for i, c in enumerate(cases)]


# --- Mann-Whitney U against R -------------------------------------------------------------

@pytest.mark.parametrize("case", R["mann_whitney_exact"], ids=ids(R["mann_whitney_exact"]))
def test_exact_without_ties_matches_r(case):
    # R: wilcox.test(x, y, exact = TRUE)
    r = stats.mann_whitney_u(case["x"], case["y"])
    assert r.method == "exact"
    assert r.u == case["w"]
    assert r.p == pytest.approx(case["p"], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("case", R["mann_whitney_exact_ties"], ids=ids(R["mann_whitney_exact_ties"]))
def test_exact_with_ties_matches_r_brute_force(case):
    # R: every split of the pooled midranks enumerated with combn.
    r = stats.mann_whitney_u(case["x"], case["y"])
    assert r.method == "exact"
    assert case["splits"] == math.comb(len(case["x"]) + len(case["y"]), len(case["x"]))
    assert r.u == case["w"]
    assert r.p == pytest.approx(case["p"], rel=1e-12, abs=1e-15)
    assert r.p_min == pytest.approx(case["p_min"], rel=1e-12)


def test_the_issue_example_ties_at_3_vs_3():
    # The normal approximation said 0.047; the exact conditional minimum is 2/20 = 0.1.
    assert stats.mann_whitney_u([1, 1, 1], [2, 2, 2], method="asymptotic").p == pytest.approx(0.0468, abs=1e-4)
    assert stats.mann_whitney_u([1, 1, 1], [2, 2, 2]).p == pytest.approx(0.1)


@pytest.mark.parametrize("case", R["mann_whitney_asymptotic"],
                         ids=[f"{i}-{'cc' if c['correct'] else 'nocc'}"
                              for i, c in enumerate(R["mann_whitney_asymptotic"])])
def test_asymptotic_matches_r(case):
    # R: wilcox.test(x, y, exact = FALSE, correct = TRUE / FALSE)
    r = stats.mann_whitney_u(case["x"], case["y"], use_continuity=case["correct"], method="asymptotic")
    assert r.method == "asymptotic"
    assert r.u == case["w"]
    assert r.p == pytest.approx(case["p"], rel=1e-10, abs=1e-15)


def test_large_samples_go_asymptotic():
    big = [c for c in R["mann_whitney_asymptotic"]
           if math.comb(len(c["x"]) + len(c["y"]), len(c["x"])) > stats.EXACT_MAX_SPLITS and c["correct"]]
    assert big
    for c in big:
        r = stats.mann_whitney_u(c["x"], c["y"])
        assert r.method == "asymptotic" and r.p == pytest.approx(c["p"], rel=1e-10, abs=1e-15)


# --- Mann-Whitney U, by hand ---------------------------------------------------------------

def test_scipy_documented_example():
    # scipy.stats.mannwhitneyu docs: exact -> U=17, p=0.1111; asymptotic -> 0.11134688653314041.
    r = stats.mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert r.method == "exact" and r.u == 17.0
    assert r.p == pytest.approx(0.1111111111111111, abs=1e-12)
    r = stats.mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12], method="asymptotic")
    assert r.p == pytest.approx(0.11134688653314041, abs=1e-12)


@pytest.mark.parametrize("x, y, p", [
    ([1, 2], [3, 4], 2 / 6),              # 1 of C(4,2)=6 arrangements per tail
    ([1, 2, 3], [4, 5, 6], 2 / 20),       # C(6,3)=20
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 2 / 252),
    ([1, 2, 4], [3, 5, 6], 2 * 2 / 20),   # U1 = 1: arrangements with U <= 1 are 2 of 20
    ([1, 3], [2, 4], 4 / 6),              # U counts [1,1,2,1,1]; P(U <= 1) = 2/6
])
def test_exact_hand_computed(x, y, p):
    r = stats.mann_whitney_u(x, y)
    assert r.method == "exact"
    assert r.p == pytest.approx(p, abs=1e-12)


def test_exact_with_ties_by_hand():
    # Pooled [1,2,2,2,3,4]: midranks 1, 3,3,3, 5, 6; x = [1,2,2] has rank sum 7.
    # Of the 20 splits, rank sums <= 7: {1,3,3} x3 = 3 splits; >= 7: 17 => p = 2*3/20.
    r = stats.mann_whitney_u([1, 2, 2], [2, 3, 4])
    assert r.method == "exact" and r.u == 1.0
    assert r.p == pytest.approx(0.3)
    # The normal approximation (tie-corrected variance 4.65, continuity 0.5) differs.
    r = stats.mann_whitney_u([1, 2, 2], [2, 3, 4], method="asymptotic")
    assert r.p == pytest.approx(math.erfc(3 / math.sqrt(4.65) / math.sqrt(2)), abs=1e-12)


def test_all_equal_gives_p_one():
    assert stats.mann_whitney_u([0, 0, 0], [0, 0]).p == 1.0
    assert stats.mann_whitney_u([0, 0, 0], [0, 0]).p_min == 1.0
    assert stats.mann_whitney_u([5] * 12, [5] * 12).p == 1.0  # asymptotic, variance 0


def test_symmetry_and_complement():
    x, y = [3.1, 4.7, 1.2, 9.9], [2.2, 8.8, 7.7, 5.5, 6.6]
    a, b = stats.mann_whitney_u(x, y), stats.mann_whitney_u(y, x)
    assert a.p == pytest.approx(b.p)
    assert a.u + b.u == len(x) * len(y)
    x, y = [0, 0, 1, 3, 0], [2, 0, 4, 5, 1]
    assert stats.mann_whitney_u(x, y).p == pytest.approx(stats.mann_whitney_u(y, x).p)


def test_exact_distribution_counts_every_arrangement():
    assert sum(stats._u_counts(4, 6)) == math.comb(10, 4)
    assert stats._u_counts(2, 2) == (1, 1, 2, 1, 1)
    lo, counts = stats._conditional_counts((1, 3, 1, 1), 3)
    assert sum(counts) == math.comb(6, 3)


def test_large_separated_samples_are_significant():
    r = stats.mann_whitney_u(list(range(20)), list(range(100, 120)))
    assert r.method == "asymptotic" and r.p < 1e-6


def test_min_p_value():
    assert stats.min_p_value(3, 3) == pytest.approx(0.1)
    assert stats.min_p_value(5, 5) == pytest.approx(2 / 252)
    assert stats.min_p_value(2, 2) > 0.05
    assert stats.min_p_value(0, 3) == 1.0


def test_bad_input():
    with pytest.raises(ValueError):
        stats.mann_whitney_u([], [1])
    with pytest.raises(ValueError):
        stats.mann_whitney_u([1, 2], [1, 2], method="fast")
    with pytest.raises(ValueError):
        stats.mann_whitney_u([1, float("nan")], [1, 2])


# --- Hodges-Lehmann against R ---------------------------------------------------------------

@pytest.mark.parametrize("case", R["hodges_lehmann_exact"], ids=ids(R["hodges_lehmann_exact"]))
def test_hodges_lehmann_matches_r(case):
    # R: wilcox.test(y, x, conf.int = TRUE, conf.level = level, exact = TRUE)
    for res in case["results"]:
        hl = stats.hodges_lehmann(case["x"], case["y"], level=res["level"])
        assert hl.method == "exact"
        assert hl.estimate == pytest.approx(res["estimate"], abs=1e-12)
        if res["conf_level"] < res["level"] - 1e-9:
            # R warns "requested conf.level not achievable" and returns [min, max] at a lower
            # level; stats.py gives no interval and says which level was reachable.
            assert hl.low is None and hl.high is None and hl.confidence is None
            assert hl.best_confidence == pytest.approx(res["conf_level"], abs=0.005)  # R rounds it
            assert "cannot give" in hl.note
        else:
            assert hl.low == pytest.approx(res["low"], abs=1e-12)
            assert hl.high == pytest.approx(res["high"], abs=1e-12)
            assert hl.confidence >= res["level"] - 1e-12


def test_hodges_lehmann_achieved_confidence():
    # 5 vs 5: R's qwilcox(0.025, 5, 5) = 3; the interval [D(3), D(23)] has 1 - 2*4/252.
    hl = stats.hodges_lehmann([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert hl.confidence == pytest.approx(1 - 8 / 252)
    assert hl.note == "achieved confidence 96.8%"
    hl = stats.hodges_lehmann([1, 2, 3], [4, 5, 6])
    assert hl.low is None and hl.best_confidence == pytest.approx(0.9)
    assert hl.note == "3 vs 3 values cannot give a 95% interval (at most 90.0%); no interval"


@pytest.mark.parametrize("case", R["hodges_lehmann_ratio"], ids=ids(R["hodges_lehmann_ratio"]))
def test_hodges_lehmann_ratio_matches_r(case):
    # R: exp() of wilcox.test(log(y), log(x), conf.int = TRUE)
    hl = stats.hodges_lehmann_ratio(case["x"], case["y"])
    assert hl.estimate == pytest.approx(case["estimate"], rel=1e-12)
    assert hl.low == pytest.approx(case["low"], rel=1e-12)
    assert hl.high == pytest.approx(case["high"], rel=1e-12)


def test_hodges_lehmann_ratio_needs_positive_values():
    with pytest.raises(ValueError):
        stats.hodges_lehmann_ratio([0, 1], [1, 2])


def test_hodges_lehmann_large_samples_approximate_r():
    # 60 vs 55: R uses the normal approximation and solves for the bounds numerically
    # (tolerance 1e-4); stats.py picks the order statistics from the same approximation.
    (case,) = R["hodges_lehmann_asymptotic"]
    hl = stats.hodges_lehmann(case["x"], case["y"])
    assert hl.method == "asymptotic"
    assert hl.estimate == pytest.approx(case["median_of_differences"], abs=1e-12)
    assert hl.estimate == pytest.approx(case["estimate"], abs=1e-3)
    assert hl.low == pytest.approx(case["low"], abs=1e-3)
    assert hl.high == pytest.approx(case["high"], abs=1e-3)
    assert stats.mann_whitney_u(case["y"], case["x"]).p == pytest.approx(case["p"], rel=1e-10)


def test_hodges_lehmann_with_ties_approximates_r():
    # With ties R's estimate is a root in a flat region of its approximation; the
    # Hodges-Lehmann estimate proper is the median of the differences, which R also gives.
    (case,) = R["hodges_lehmann_ties"]
    hl = stats.hodges_lehmann(case["x"], case["y"])
    assert hl.estimate == pytest.approx(case["median_of_differences"], abs=1e-12)
    assert hl.estimate == pytest.approx(case["estimate"], abs=0.1)  # the data's resolution
    assert hl.low == pytest.approx(case["low"], abs=1e-3)
    assert hl.high == pytest.approx(case["high"], abs=1e-3)


# --- Holm, Wilson, quantiles, the normal quantile against R ------------------------------------

@pytest.mark.parametrize("case", R["holm"], ids=[str(i) for i in range(len(R["holm"]))])
def test_holm_matches_r(case):
    assert stats.holm(case["p"]) == pytest.approx(case["adjusted"], abs=1e-15)


def test_holm_skips_missing_p_values():
    assert stats.holm([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])
    assert stats.holm([]) == []


@pytest.mark.parametrize("case", R["wilson"], ids=[f"{c['successes']}of{c['n']}@{c['level']}" for c in R["wilson"]])
def test_wilson_matches_r_prop_test(case):
    # R: prop.test(successes, n, conf.level = level, correct = FALSE)$conf.int, and the formula.
    w = stats.wilson_interval(case["successes"], case["n"], case["level"])
    assert w.estimate == pytest.approx(case["successes"] / case["n"])
    assert w.low == pytest.approx(case["low"], abs=1e-12)
    assert w.high == pytest.approx(case["high"], abs=1e-12)
    assert w.low == pytest.approx(case["formula_low"], abs=1e-12)


def test_wilson_edges():
    assert stats.wilson_interval(0, 0).low is None
    with pytest.raises(ValueError):
        stats.wilson_interval(3, 2)


def test_quantile_type_7_matches_r():
    (case,) = R["quantile_type7"]
    for p, q in zip(case["probs"], case["q"]):
        assert stats.quantile(case["x"], p) == pytest.approx(q, abs=1e-12)
    assert stats.quantile([], 0.5) is None


def test_normal_quantile_matches_r_qnorm():
    (case,) = R["qnorm"]
    for p, q in zip(case["p"], case["q"]):
        assert stats.normal_quantile(p) == pytest.approx(q, rel=1e-14, abs=1e-15)
    assert stats.normal_quantile(0.0) == -math.inf


# --- bootstrap ------------------------------------------------------------------------------

def test_bootstrap_is_seeded_and_deterministic():
    a = [10.0, 11.0, 9.5, 10.5, 10.2]
    b = [20.0, 21.0, 19.0, 20.5, 20.2]
    ratio = lambda x, y: stats.mean(x) / stats.mean(y)  # noqa: E731
    one = stats.bootstrap_ci([a, b], ratio)
    assert one == stats.bootstrap_ci([a, b], ratio)
    assert one.estimate == pytest.approx(stats.mean(a) / stats.mean(b))
    assert one.low <= one.estimate <= one.high
    assert one.low >= min(a) / max(b) and one.high <= max(a) / min(b)
    other = stats.bootstrap_ci([a, b], ratio, seed=1)
    assert (other.low, other.high) != (one.low, one.high)


def test_bootstrap_interval_covers_a_known_mean():
    # 40 values from a known uniform grid around 5: the 95 % interval of the mean holds 5.
    values = [5 + ((i * 37) % 41 - 20) / 10 for i in range(40)]
    ci = stats.bootstrap_ci([values], stats.mean, resamples=3000)
    assert ci.low < 5 < ci.high and ci.high - ci.low < 1.5


def test_bootstrap_without_spread_or_with_undefined_resamples():
    ci = stats.bootstrap_ci([[3.0]], stats.mean)
    assert ci.low is None and "1 value" in ci.note
    undefined = stats.bootstrap_ci([[0.0, 0.0, 1.0]], lambda x: 1 / sum(x) if sum(x) else None)
    assert undefined.low is None and "undefined" in undefined.note


# --- descriptive -----------------------------------------------------------------------------

def test_descriptive():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 2, 3]) == 2.5
    assert stats.median([]) is None
    assert stats.stdev([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(2.138, abs=1e-3)


def test_pooled_cv():
    a, b = [90, 100, 110], [180, 200, 220]  # both CV 0.1
    assert stats.pooled_cv(a, b) == pytest.approx(0.1)
    assert stats.pooled_cv([5], [0, 0]) is None
    assert stats.pooled_cv([1, 1, 1], [2, 2]) == 0.0
