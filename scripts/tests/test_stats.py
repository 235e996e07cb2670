"""The Mann-Whitney U test against hand-computed and published values."""

import math

import pytest

from orchlab_py import stats


def test_scipy_documented_example_exact():
    # scipy.stats.mannwhitneyu docs: males vs females, method="exact" -> U=17, p=0.1111...
    r = stats.mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert r.method == "exact"
    assert r.u == 17.0
    assert r.p == pytest.approx(0.1111111111111111, abs=1e-12)


def test_scipy_documented_example_asymptotic():
    # Same data, method="asymptotic" with continuity correction -> p=0.11134688653314041.
    r = stats.mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12], method="asymptotic")
    assert r.p == pytest.approx(0.11134688653314041, abs=1e-12)


@pytest.mark.parametrize("x, y, p", [
    ([1, 2], [3, 4], 2 / 6),              # 1 of C(4,2)=6 arrangements per tail
    ([1, 2, 3], [4, 5, 6], 2 / 20),       # C(6,3)=20
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 2 / 252),
    ([1, 2, 4], [3, 5, 6], 2 * 2 / 20),   # U1 = 1: arrangements with U <= 1 are 2 of 20
])
def test_exact_hand_computed(x, y, p):
    r = stats.mann_whitney_u(x, y)
    assert r.method == "exact"
    assert r.p == pytest.approx(p, abs=1e-12)


def test_exact_middle_value():
    # x=[1,3], y=[2,4]: U1 = 1; U counts for n1=n2=2 are [1,1,2,1,1]; max(U1, 4-U1) = 3;
    # P(U >= 3) = 2/6, two-sided p = 4/6.
    assert stats.mann_whitney_u([1, 3], [2, 4]).p == pytest.approx(4 / 6)


def test_ties_use_normal_approximation_with_tie_correction():
    # Combined [1,2,2,2,3,4]: ranks 1, 3,3,3, 5, 6; R1 = 1+3+3 = 7, U1 = 7 - 6 = 1.
    # mu = 4.5; var = 9/12 * (7 - (3^3-3)/(6*5)) = 4.65; z = (8 - 4.5 - 0.5)/sqrt(4.65).
    r = stats.mann_whitney_u([1, 2, 2], [2, 3, 4])
    assert r.method == "asymptotic"
    assert r.u == 1.0
    z = 3 / math.sqrt(4.65)
    assert r.p == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-12)
    assert r.p == pytest.approx(0.16415972847851523, abs=1e-12)


def test_all_equal_gives_p_one():
    assert stats.mann_whitney_u([0, 0, 0], [0, 0]).p == 1.0


def test_symmetry_and_complement():
    x, y = [3.1, 4.7, 1.2, 9.9], [2.2, 8.8, 7.7, 5.5, 6.6]
    a, b = stats.mann_whitney_u(x, y), stats.mann_whitney_u(y, x)
    assert a.p == pytest.approx(b.p)
    assert a.u + b.u == len(x) * len(y)


def test_exact_distribution_counts_every_arrangement():
    assert sum(stats._u_counts(4, 6)) == math.comb(10, 4)


def test_large_separated_samples_are_significant():
    r = stats.mann_whitney_u(list(range(20)), list(range(100, 120)))
    assert r.method == "asymptotic" and r.p < 1e-6


def test_min_p_value():
    assert stats.min_p_value(3, 3) == pytest.approx(0.1)
    assert stats.min_p_value(5, 5) == pytest.approx(2 / 252)
    assert stats.min_p_value(2, 2) > 0.05


def test_bad_input():
    with pytest.raises(ValueError):
        stats.mann_whitney_u([], [1])
    with pytest.raises(ValueError):
        stats.mann_whitney_u([1, 1], [1, 2], method="exact")


def test_descriptive():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 2, 3]) == 2.5
    assert stats.median([]) is None
    assert stats.stdev([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(2.138, abs=1e-3)
