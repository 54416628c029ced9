"""adversary_dynamics.stats on known cases: the bootstrap interval and designs, Spearman's rho with
ties against a hand computation (no scipy), the power-law slope on a planted exponent, the threshold
estimate and the interval verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adversary_dynamics import stats
from adversary_dynamics.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED


# ---- resampling -------------------------------------------------------------------------------
def test_interval_is_the_percentile_interval_of_the_finite_replicates():
    boot = np.r_[np.arange(101.0), np.nan, np.inf, -np.inf]  # 0..100: the 2.5% and 97.5% quantiles are 2.5 and 97.5
    assert stats.interval(boot, 0.95) == pytest.approx([2.5, 97.5])
    assert stats.interval(boot, 0.5) == pytest.approx([25.0, 75.0])
    assert all(math.isnan(v) for v in stats.interval([np.nan, np.inf], 0.95))


def test_bootstrap_interval_of_a_mean_covers_it_at_about_the_nominal_rate():
    """A known case: the one-way bootstrap of a Bernoulli(0.3) mean over 60 units; the interval's
    width is about 2 * 1.96 * sqrt(p(1-p)/n), and it covers p in ~95% of repeated experiments."""
    rng = np.random.default_rng(0)
    n, B, p, hits, widths = 60, 400, 0.3, 0, []
    for rep in range(200):
        success = rng.random(n) < p
        W = stats.resample_weights(rng, n, B)
        assert W.shape == (B, n) and (W.sum(1) == n).all()
        point, boot = stats.one_way_fraction(W, np.arange(n), success, n)
        assert point == pytest.approx(success.mean())
        lo, hi = stats.interval(boot, 0.95)
        hits += lo <= p <= hi
        widths.append(hi - lo)
    assert 0.88 <= hits / 200 <= 0.99
    assert np.mean(widths) == pytest.approx(2 * 1.96 * math.sqrt(p * (1 - p) / n), rel=0.15)


def test_two_way_design_weights_are_products_and_its_fraction_matches_the_weighted_mean():
    rng = np.random.default_rng(1)
    seeds, inputs = np.repeat([0, 1, 2], 4), np.tile([10, 11, 12, 13], 3)
    d = stats.TwoWay(rng, seeds, inputs, 50)
    W = d.row_weights(seeds, inputs)
    assert W.shape == (50, 12)
    assert np.array_equal(W, d.ws[:, seeds] * d.wi[:, inputs - 10])
    success = rng.random(12) < 0.5
    point, boot = d.fraction(seeds, inputs, success)
    with np.errstate(invalid="ignore"):
        expect = (W * success).sum(1) / W.sum(1)
    assert point == pytest.approx(success.mean())
    np.testing.assert_allclose(boot, expect)


def test_bootstrap_rng_is_reproducible_per_stream():
    a = stats.resample_weights(stats.bootstrap_rng(0, 3), 5, 4)
    b = stats.resample_weights(stats.bootstrap_rng(0, 3), 5, 4)
    c = stats.resample_weights(stats.bootstrap_rng(0, 4), 5, 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# ---- rank correlation -------------------------------------------------------------------------
def _pearson(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def test_spearman_with_ties_matches_a_hand_computation():
    x = [1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0]
    y = [2.0, 1.0, 4.0, 4.0, 3.0, 6.0, np.inf]  # +inf ranks last
    rx = [1, 2.5, 2.5, 4, 6, 6, 6]  # average ranks of the tied values, by hand
    ry = [2, 1, 4.5, 4.5, 3, 6, 7]
    assert stats.spearman(x, y) == pytest.approx(_pearson(rx, ry), abs=1e-12)
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(stats.spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        stats.spearman([1.0, np.nan], [1.0, 2.0])


def test_weighted_spearman_equals_spearman_on_the_repeated_rows():
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 4, 9).astype(float), rng.integers(0, 3, 9).astype(float)  # many ties
    W = stats.resample_weights(rng, 9, 20)
    r = stats.weighted_spearman(x, y, W)
    for b in range(20):
        idx = np.repeat(np.arange(9), W[b].astype(int))
        want = stats.spearman(x[idx], y[idx])
        assert (math.isnan(want) and math.isnan(r[b])) or r[b] == pytest.approx(want, abs=1e-12)
    point, (lo, hi) = stats.bootstrap_spearman(x, y, W, 0.9)
    assert point == pytest.approx(stats.spearman(x, y)) and lo <= hi


# ---- power laws -------------------------------------------------------------------------------
def test_power_law_slope_recovers_a_known_exponent_with_unit_intercepts():
    eta = np.tile([0.1, 0.05, 0.025], 5)
    unit = np.repeat(np.arange(5), 3)
    y = (1.0 + unit) * eta ** 0.5  # exact: every unit its own prefactor
    point, boot = stats.power_law_slope(eta, y, unit)
    assert point == pytest.approx(0.5, abs=1e-12) and boot.size == 0
    W = stats.resample_weights(np.random.default_rng(0), 5, 30)
    _, boot = stats.power_law_slope(eta, y, unit, W)
    np.testing.assert_allclose(boot, 0.5, atol=1e-12)  # every resample sees the same exact law
    # non-positive and non-finite points are dropped; one distinct x left: NaN; shapes checked
    assert stats.power_law_slope(np.r_[eta, -1.0], np.r_[y, 3.0], np.r_[unit, 0])[0] == pytest.approx(0.5)
    assert math.isnan(stats.power_law_slope([0.1, 0.1], [1.0, 2.0])[0])
    with pytest.raises(ValueError):
        stats.power_law_slope([0.1, 0.2], [1.0])


# ---- thresholds and verdicts -------------------------------------------------------------------
def test_estimate_threshold_on_a_grid():
    eps = [1.0, 0.01, 10.0, 0.1]  # any order
    single = [0.3, 1.0, 0.0, 0.9]
    assert stats.estimate_threshold(eps, single) == pytest.approx(math.sqrt(0.1 * 1.0))
    assert stats.estimate_threshold(eps, single, level=0.95) == pytest.approx(math.sqrt(0.01 * 0.1))
    assert stats.estimate_threshold(eps, [1.0] * 4) == 10.0  # every grid point passes: a lower bound
    assert math.isnan(stats.estimate_threshold(eps, [0.9, 0.2, 0.9, 0.9]))  # the smallest eps fails


def test_interval_verdicts_flip_at_their_thresholds():
    assert stats.fraction_verdict(0.9, 1.0, 0.9, True) == SUPPORTED
    assert stats.fraction_verdict(0.85, 1.0, 0.9, True) == INCONCLUSIVE
    assert stats.fraction_verdict(0.5, 0.89, 0.9, True) == NOT_SUPPORTED
    assert stats.fraction_verdict(0.95, 1.0, 0.9, False) == INCONCLUSIVE
    assert stats.sign_verdict(0.1, 0.5, True) == SUPPORTED and stats.sign_verdict(-0.5, -0.1, True) == NOT_SUPPORTED
    assert stats.sign_verdict(-0.5, -0.1, True, sign=-1) == SUPPORTED
    assert stats.sign_verdict(-0.1, 0.1, True) == INCONCLUSIVE and stats.sign_verdict(np.nan, 1, True) == INCONCLUSIVE
    assert stats.slope_verdict(-2.05, -1.0, -2.0, 0.1, True) == SUPPORTED
    assert stats.slope_verdict(-2.5, -2.2, -2.0, 0.1, True) == NOT_SUPPORTED
    assert stats.slope_verdict(-2.5, -1.0, -2.0, 0.1, True) == INCONCLUSIVE


def test_kaplan_meier_by_hand_and_type_one_censoring_is_the_empirical_share():
    from adversary_dynamics.stats import kaplan_meier

    # a censoring at time 3 is still at risk at the event at 3 (censorings come after events at a tie)
    km = kaplan_meier([2, 3, 3, 5, 8], [False, True, False, False, True])
    assert km["time"].tolist() == [2, 3, 5] and km["at_risk"].tolist() == [5, 4, 2]
    assert km["events"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(km["survival"], [0.8, 0.6, 0.3])
    # one common censoring time above every event (the escape probes' step budget): #{t > u}/n
    t = np.array([4.0, 1.0, 7.0, 7.0, np.inf, np.inf, 2.0])
    km = kaplan_meier(t, np.isinf(t))
    np.testing.assert_allclose(km["survival"], [(t > u).mean() for u in km["time"]])
    assert kaplan_meier([np.inf], [True])["time"].size == 0
    for bad in (([np.nan], [False]), ([np.inf], [False]), ([1.0, 2.0], [False])):
        with pytest.raises(ValueError):
            kaplan_meier(*bad)
