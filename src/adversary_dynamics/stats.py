"""The statistics of the claims report and the figures, each implemented once.

* **Resampling** (percentile bootstrap). A resample of ``n`` independent units with replacement is
  a row of multiplicities ``w`` (``w_k`` = how often unit k was drawn, ``sum(w) = n``);
  :func:`resample_weights` draws ``B`` of them, (B, n). Statistics are computed exactly on the
  weighted data (a row that belongs to unit k counts ``w_k`` times), so no resampled table is ever
  built. Designs:

  - one-way (cluster) bootstrap: units are e.g. training seeds or theory trials (a unit's rows at
    every scale / step size move together): ``W[:, unit_code]`` gives the row weights;
  - two-way bootstrap (:class:`TwoWay`): seeds and inputs resampled independently, the weight of a
    row (seed s, input i) is ``w_seed[s] * w_input[i]``; used for the probes and the escape runs,
    whose rows are (scale, seed, input[, restart]) cells of a seed x input design.

  :func:`interval` is the percentile interval of the replicates at level ``confidence``.
* **Rank correlation**: :func:`spearman` (Spearman's rho, average ranks for ties) and
  :func:`weighted_spearman` (the same on weighted data, for every row of a weight matrix).
* **Power laws**: :func:`power_law_slope`, the one estimator of a log-log slope (with per-unit
  intercepts), used by the T1 verdict and by the ext_theory figure's table.
* **Thresholds**: :func:`estimate_threshold` (τ_ε of Theorem 5.1 on an ε grid).
* **Survival** (censored times): :func:`kaplan_meier`, the share of runs whose event (e.g. an
  escape) has not happened by time t; with one censoring time for every run (type-I censoring,
  the escape probes' step budget) it is the empirical survival function.
* **Verdicts of an interval against a threshold**: :func:`fraction_verdict`,
  :func:`sign_verdict`, :func:`slope_verdict` (each gives ``supported`` / ``not supported`` /
  ``inconclusive``, :data:`VERDICTS`).

Everything is numpy; nothing here knows about tables or claims.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = [
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "VERDICTS",
    "bootstrap_rng",
    "resample_weights",
    "codes",
    "interval",
    "TwoWay",
    "one_way_fraction",
    "spearman",
    "weighted_spearman",
    "bootstrap_spearman",
    "power_law_slope",
    "estimate_threshold",
    "kaplan_meier",
    "fraction_verdict",
    "sign_verdict",
    "slope_verdict",
]

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)

_CHUNK = 256  # bootstrap replicates per vectorised chunk of weighted_spearman (bounds memory)


# ---- resampling -------------------------------------------------------------------------------
def bootstrap_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one bootstrap: ``numpy.random.default_rng([seed, stream])`` (the claims
    report uses the rules' ``seed`` and the claim's number as the stream, so every claim has its
    own reproducible draws)."""
    return np.random.default_rng([int(seed), int(stream)])


def resample_weights(rng: np.random.Generator, n: int, B: int) -> np.ndarray:
    """(B, n) float multiplicities of B resamples of n units with replacement: row b is a draw of
    Multinomial(n; 1/n, ..., 1/n), so every row sums to n. (B, 0) zeros when n = 0."""
    if n == 0:
        return np.zeros((B, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=B).astype(float)


def codes(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values (k,), index (n,) of each value among them): the unit codes of a
    cluster bootstrap."""
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    return uniq, inv.ravel()


def interval(boot, confidence: float) -> list[float]:
    """Percentile interval [q_a, q_{1-a}], a = (1 - confidence) / 2, of the finite replicates in
    ``boot`` (any shape; NaN and ±inf replicates are dropped); [nan, nan] when none is finite.
    Quantiles are numpy's default (linear interpolation)."""
    boot = np.asarray(boot, dtype=float).ravel()
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return [math.nan, math.nan]
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [a, 1.0 - a])
    return [float(lo), float(hi)]


class TwoWay:
    """Two-way (seed x input) bootstrap: seeds and inputs resampled independently with
    replacement, one draw shared by every group of a table.

    ``TwoWay(rng, seeds, inputs, B)`` takes the table's seed and input columns (any length; their
    distinct values are the units) and draws ``ws`` (B, n_seeds) then ``wi`` (B, n_inputs) from
    ``rng`` (:func:`resample_weights`, in that order). A row (s, i) has weight ws[:, s] * wi[:, i].
    """

    def __init__(self, rng: np.random.Generator, seeds, inputs, B: int):
        self.seeds, _ = codes(seeds)
        self.inputs, _ = codes(inputs)
        self.ws = resample_weights(rng, len(self.seeds), B)
        self.wi = resample_weights(rng, len(self.inputs), B)

    def index(self, seeds, inputs) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the given seed and input values among the design's units."""
        return (np.searchsorted(self.seeds, np.asarray(seeds)), np.searchsorted(self.inputs, np.asarray(inputs)))

    def row_weights(self, seeds, inputs) -> np.ndarray:
        """(B, n_rows) weights of rows with these seed and input values: ws[:, s] * wi[:, i]."""
        si, ii = self.index(seeds, inputs)
        return self.ws[:, si] * self.wi[:, ii]

    def fraction(self, seeds, inputs, success: np.ndarray) -> tuple[float, np.ndarray]:
        """(mean(success), its B replicates) for rows with these seeds, inputs and boolean
        ``success``: replicate b = sum_si ws[b,s] S[s,i] wi[b,i] / sum_si ws[b,s] N[s,i] wi[b,i]
        with S, N the successes and rows per (seed, input) cell (NaN where a resample holds no
        row). The point estimate is NaN without rows."""
        si, ii = self.index(seeds, inputs)
        S = np.zeros((len(self.seeds), len(self.inputs)))
        N = np.zeros_like(S)
        np.add.at(S, (si, ii), success.astype(float))
        np.add.at(N, (si, ii), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            point = S.sum() / N.sum() if N.sum() > 0 else math.nan
            boot = np.einsum("bs,si,bi->b", self.ws, S, self.wi) / np.einsum("bs,si,bi->b", self.ws, N, self.wi)
        return float(point), boot


def one_way_fraction(W: np.ndarray, units: np.ndarray, success: np.ndarray, n_units: int) -> tuple[float, np.ndarray]:
    """(mean(success), its replicates) under a one-way cluster bootstrap: ``units`` (n,) the unit
    code of each row (0 .. n_units-1), ``success`` (n,) booleans, ``W`` (B, n_units) unit weights.
    Replicate b = (W[b] @ S) / (W[b] @ N) with S, N the successes and rows per unit (NaN where the
    resample holds no row); the point estimate is NaN without rows."""
    S = np.bincount(units, weights=success.astype(float), minlength=n_units)
    N = np.bincount(units, minlength=n_units).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = S.sum() / N.sum() if N.sum() > 0 else math.nan
        boot = (W @ S) / (W @ N)
    return float(point), boot


# ---- rank correlation -------------------------------------------------------------------------
def _rank_prep(v: np.ndarray):
    order = np.argsort(v, kind="stable")
    sv = v[order]
    new = np.r_[True, sv[1:] != sv[:-1]] if len(sv) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    inv = np.empty(len(v), dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return order, starts, inv


def _weighted_ranks(W: np.ndarray, prep) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of every row in the data set where row i appears W[b, i] times; also the
    number of distinct values present in each resample."""
    order, starts, inv = prep
    Wu = np.add.reduceat(W[:, order], starts, axis=1)
    ru = np.cumsum(Wu, axis=1) - (Wu - 1.0) / 2.0
    return ru[:, inv], (Wu > 0).sum(1)


def weighted_spearman(x, y, W) -> np.ndarray:
    """Spearman's rho of the data in which row i appears W[b, i] times, for every row b of W.

    x, y: (n,) values, free of NaN (+inf is allowed and ranks last; ties share their average
    rank). W: (B, n) or (n,) non-negative integer multiplicities (e.g. bootstrap resamples).
    With distinct values v_1 < ... < v_k of x and c_j = sum of W[b] over rows with value v_j, the
    rank of v_j is c_1 + ... + c_{j-1} + (c_j + 1)/2 (the average rank of its c_j copies); rho is
    the weighted Pearson correlation of the ranks of x and y with weights W[b]. Returns (B,) in
    [-1, 1], NaN where x or y takes a single value in the resample. Raises ValueError on NaN."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    W = np.atleast_2d(np.asarray(W, dtype=float))
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("weighted_spearman: drop NaN rows first")
    px, py = _rank_prep(x), _rank_prep(y)
    out = np.empty(W.shape[0])
    for a in range(0, W.shape[0], _CHUNK):
        w = W[a:a + _CHUNK]
        rx, kx = _weighted_ranks(w, px)
        ry, ky = _weighted_ranks(w, py)
        sw = w.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            dx = rx - (w * rx).sum(1, keepdims=True) / sw
            dy = ry - (w * ry).sum(1, keepdims=True) / sw
            r = (w * dx * dy).sum(1) / np.sqrt((w * dx * dx).sum(1) * (w * dy * dy).sum(1))
        r[(kx < 2) | (ky < 2)] = np.nan
        out[a:a + _CHUNK] = np.clip(r, -1.0, 1.0)
    return out


def spearman(x, y) -> float:
    """Spearman's rho of (x, y) (n,) with average ranks for ties: the Pearson correlation of the
    ranks. NaN if either variable is constant; raises ValueError on NaN (see
    :func:`weighted_spearman`, of which this is the unit-weight case)."""
    x = np.asarray(x, dtype=float)
    return float(weighted_spearman(x, y, np.ones((1, len(x))))[0])


def bootstrap_spearman(x, y, W, confidence: float) -> tuple[float, list[float]]:
    """(rho, [lo, hi]): Spearman's rho of (x, y) and the percentile interval at ``confidence`` of
    its replicates under the row weights W (B, n) (:func:`weighted_spearman`, :func:`interval`)."""
    point = spearman(x, y)
    return point, interval(weighted_spearman(x, y, W), confidence)


# ---- survival -----------------------------------------------------------------------------------
def kaplan_meier(times, censored) -> dict[str, np.ndarray]:
    """Kaplan–Meier estimate of S(t) = P(event time > t) from n observations.

    ``times`` (n,): the event time of an observed run, or the censoring time of a censored one
    (+inf is allowed for a censored run: censored after every event); ``censored`` (n,) bool.
    S jumps at the distinct observed event times u_1 < … < u_k: S(u_j) = Π_{i ≤ j} (1 − d_i/n_i),
    with d_i events at u_i and n_i runs still at risk (time ≥ u_i, events and censorings at u_i
    both at risk: a censoring at u_i is taken to come after the events at u_i). With a common
    censoring time above every event time (type-I censoring) this is the empirical share
    #{time > t}/n. Returns {"time": u (k,), "survival": S(u) (k,), "at_risk": n_i (k,), "events":
    d_i (k,)}; S = 1 before u_1. Raises ValueError for NaN times, an observed time that is not
    finite, or lengths that differ.
    """
    t = np.asarray(times, dtype=float).reshape(-1)
    c = np.asarray(censored, dtype=bool).reshape(-1)
    if t.shape != c.shape:
        raise ValueError(f"times and censored must have the same length, got {t.shape} and {c.shape}")
    if np.isnan(t).any():
        raise ValueError("times must not be NaN (a run without an event time is censored: give its censoring time)")
    if not np.isfinite(t[~c]).all():
        raise ValueError("an observed (uncensored) event time must be finite")
    u = np.unique(t[~c])
    at_risk = np.array([(t >= v).sum() for v in u], dtype=np.int64)
    events = np.array([((t == v) & ~c).sum() for v in u], dtype=np.int64)
    surv = np.cumprod(1.0 - events / np.maximum(at_risk, 1)) if len(u) else np.zeros(0)
    return {"time": u, "survival": surv, "at_risk": at_risk, "events": events}


# ---- power laws -------------------------------------------------------------------------------
def power_law_slope(x, y, unit=None, W: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The log-log slope of y on x with one intercept per unit, and its bootstrap replicates.

    x, y: (n,) positive values (e.g. step size η and iterations); ``unit`` (n,) the unit of each
    point (e.g. a trial run at several step sizes; None: one unit, a single intercept). Points
    with a non-finite or non-positive x or y are dropped. The model log y = a_unit + b log x is
    fitted by least squares (pooled within-unit slope):

        b = sum_k Sxy_k / sum_k Sxx_k,   Sxy_k = sum_{i in k} (lx_i - mean_k lx)(ly_i - mean_k ly)

    (Sxx_k alike). ``W`` (B, n_units) unit multiplicities (units in sorted order of their values,
    :func:`codes`) give the replicates (W @ Sxy) / (W @ Sxx): the slope of the data in which unit k
    appears W[b, k] times. Returns (b, replicates (B,) or an empty array without W); b is NaN when
    fewer than two distinct x remain or x does not vary within any unit. Raises ValueError when x,
    y (and unit) differ in shape."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same shape, got {x.shape} and {y.shape}")
    unit = np.zeros(len(x), dtype=int) if unit is None else np.asarray(unit)
    if unit.shape != x.shape:
        raise ValueError(f"unit must have the shape of x, got {unit.shape} and {x.shape}")
    units, u = codes(unit)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly, u = np.log(x[ok]), np.log(y[ok]), u[ok]
    n = np.bincount(u, minlength=len(units)).astype(float)
    nz = np.where(n > 0, n, 1)
    dx = lx - (np.bincount(u, lx, minlength=len(units)) / nz)[u]
    dy = ly - (np.bincount(u, ly, minlength=len(units)) / nz)[u]
    sxy = np.bincount(u, dx * dy, minlength=len(units))
    sxx = np.bincount(u, dx * dx, minlength=len(units))
    with np.errstate(invalid="ignore", divide="ignore"):
        point = float(sxy.sum() / sxx.sum()) if sxx.sum() > 0 and len(np.unique(lx)) >= 2 else math.nan
        boot = (W @ sxy) / (W @ sxx) if W is not None else np.zeros(0)
    return point, boot


# ---- thresholds -------------------------------------------------------------------------------
def estimate_threshold(eps, single_fraction, *, level: float = 0.5) -> float:
    """Estimated τ_ε of Theorem 5.1 on a grid.

    eps: (k,) grid values of ε (any order); single_fraction: (k,) the share of networks with a
    single maximum at each ε. With the grid sorted, let j be the first ε whose share is below
    ``level``: τ = sqrt(ε_{j-1} ε_j) (the geometric midpoint of the last passing and the first
    failing grid point); the largest ε (a lower bound) when every share passes; NaN when the
    smallest ε already fails. Raises IndexError on an empty grid."""
    e, f = np.asarray(eps, dtype=float), np.asarray(single_fraction, dtype=float)
    o = np.argsort(e)
    e, f = e[o], f[o]
    ok = f >= level
    if not ok[0]:
        return math.nan
    k = int(np.argmin(ok)) if not ok.all() else len(e)
    if k == len(e):
        return float(e[-1])
    return float(math.sqrt(e[k - 1] * e[k]))


# ---- an interval against a threshold: the verdicts --------------------------------------------
def fraction_verdict(lo: float, hi: float, min_fraction: float, enough: bool) -> str:
    """A fraction that should be at least ``min_fraction``: supported if lo >= min_fraction, not
    supported if hi < min_fraction, inconclusive otherwise, without ``enough`` data or with a
    non-finite end."""
    if not enough or not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo >= min_fraction:
        return SUPPORTED
    if hi < min_fraction:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def sign_verdict(lo: float, hi: float, enough: bool, sign: int = 1) -> str:
    """A statistic claimed to have the sign of ``sign``: supported if the whole interval [lo, hi]
    is on that side of 0 (strictly), not supported if it is wholly on the other side, inconclusive
    otherwise, without ``enough`` data or with a non-finite end."""
    if not enough or not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
    if lo > 0:
        return SUPPORTED
    if hi < 0:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def slope_verdict(lo: float, hi: float, bound: float, tolerance: float, enough: bool) -> str:
    """A lower bound on a slope ('slope >= bound', e.g. O(eta^-2) iterations -> slope >= -2):
    supported if lo >= bound - tolerance, not supported if hi < bound - tolerance, inconclusive
    otherwise, without ``enough`` data or with a non-finite end."""
    if not enough or not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo >= bound - tolerance:
        return SUPPORTED
    if hi < bound - tolerance:
        return NOT_SUPPORTED
    return INCONCLUSIVE
