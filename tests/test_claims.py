"""The claims report: each claim's verdict on synthetic tables where the right answer is known
(supported, contradicted, too few runs), each verdict rule flipping at its threshold, the slope
estimator on a planted power law, a report with a planted disagreement, claims.json against its
JSON schema, the rank correlation against scipy, determinism, the CLI, and the real default
tables (when present)."""

from __future__ import annotations

import importlib.util
import json
import math
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from adversary_dynamics import claims, stats
from adversary_dynamics.claims import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, VERDICTS

ROOT = Path(__file__).resolve().parents[1]
RULES = {**claims.DEFAULT_RULES, "bootstrap": 300}
SCALES = [0.25, 0.5, 1.0, 2.0, 4.0]


# ---- synthetic tables ------------------------------------------------------------------------
def fig1_table(*, seeds=(0, 1, 2), checkpoints=(0, 5), n_inputs=12, restarts=4, p_conv=1.0, p_sphere=1.0,
               iterations=lambda s, rng, n: np.full(n, 50), max_steps=200, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in SCALES:
        for k in seeds:
            for c in checkpoints:
                n = n_inputs * restarts
                conv = rng.random(n) < p_conv
                it = np.where(conv, np.minimum(iterations(s, rng, n), max_steps), max_steps)
                rows.append(pd.DataFrame({
                    "scale": s, "seed": k, "checkpoint": c, "input": np.repeat(np.arange(n_inputs), restarts),
                    "restart": np.tile(np.arange(restarts), n_inputs), "converged": conv, "iterations": it,
                    "on_sphere": rng.random(n) < p_sphere, "local_max": conv, "initial_loss": 0.5,
                    "final_loss": 0.6, "norm_ratio": 1.0}))
    return pd.concat(rows, ignore_index=True)


def fig2_table(steps, seeds=(0, 1, 2), diverged=()) -> pd.DataFrame:
    """steps(scale, seed) -> steps to threshold (NaN: never reached); diverged: (scale, seed) pairs."""
    rows = []
    for s in SCALES:
        for k in seeds:
            div = (s, k) in diverged
            rows.append({"scale": s, "seed": k, "status": "diverged" if div else "completed",
                         "diverged_at_step": 7 if div else np.nan, "steps_to_threshold": steps(s, k),
                         "threshold": 0.5, "total_steps": 240})
    return pd.DataFrame(rows)


def fig3_table(trend, seeds=(0, 1, 2), checkpoints=(0, 5), n_inputs=16, nan_fraction=0.0, seed=0) -> pd.DataFrame:
    """trend(scale) -> mean of both irregularity measures."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in SCALES:
        for k in seeds:
            for c in checkpoints:
                for i in range(n_inputs):
                    nl = trend(s) + rng.normal(0, 0.05)
                    rows.append({"scale": s, "seed": k, "checkpoint": c, "input": i,
                                 "distinct_maxima": max(1, int(round(3 * trend(s) + rng.normal(0, 0.3)))),
                                 "loss_spread": 0.01 * s,
                                 "nonlinearity": np.nan if rng.random() < nan_fraction else nl})
    return pd.DataFrame(rows)


def fig4_table(iters, dims=(10, 20, 40, 80), widths=(8, 32), scales=(0.5, 2.0), trials=16, p_sphere=1.0,
               seed=0) -> pd.DataFrame:
    """iters(d) -> typical iterations; each trial multiplies it by lognormal noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in dims:
        for m in widths:
            for s in scales:
                for t in range(trials):
                    rows.append({"d": d, "m": m, "scale": s, "trial": t, "converged": True,
                                 "iterations": int(round(iters(d) * math.exp(rng.normal(0, 0.1)))),
                                 "on_sphere": bool(rng.random() < p_sphere), "local_max": True, "norm_ratio": 1.0,
                                 "initial_loss": 0.5, "final_loss": 0.6})
    return pd.DataFrame(rows)


def check_entry(e, cid):
    """Every claim has the one entry shape (claims.statements._result)."""
    assert e["id"] == cid and e["verdict"] in VERDICTS
    assert set(e) == {"id", "kind", "paper_location", "claim", "paper_evidence", "statistic", "value", "interval",
                      "runs", "n_runs", "verdict", "rule", "numerical_margin", "details"}
    assert len(e["interval"]) == 2 and isinstance(e["n_runs"], int) and e["rule"]
    assert e["runs"]["count"] == e["n_runs"] and e["kind"] == ("paper" if cid.startswith("T") else "extension")
    json.dumps(claims.to_jsonable(e), allow_nan=False)  # serialisable, NaN-free
    return e


# ---- rank correlation ------------------------------------------------------------------------
def test_spearman_matches_scipy_with_ties_and_resampling():
    sp = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 200).astype(float)
    y = np.where(rng.random(200) < 0.2, np.inf, rng.integers(0, 30, 200).astype(float))
    assert stats.spearman(x, y) == pytest.approx(sp.spearmanr(x, y)[0], abs=1e-12)
    W = rng.multinomial(200, np.full(200, 1 / 200), size=5).astype(float)
    r = stats.weighted_spearman(x, y, W)
    for b in range(5):
        idx = np.repeat(np.arange(200), W[b].astype(int))
        assert r[b] == pytest.approx(sp.spearmanr(x[idx], y[idx])[0], abs=1e-10)
    assert math.isnan(stats.spearman(np.ones(5), np.arange(5.0)))  # constant variable
    with pytest.raises(ValueError):
        stats.weighted_spearman(np.array([1.0, np.nan]), np.array([1.0, 2.0]), np.ones((1, 2)))


# ---- claim 1 ---------------------------------------------------------------------------------
def test_claim1_verdicts():
    e = check_entry(claims.claim_pga_converges(fig1_table(), RULES), "E1")
    assert e["verdict"] == SUPPORTED and e["value"] == 1.0 and e["n_runs"] == 15
    e = check_entry(claims.claim_pga_converges(fig1_table(p_conv=0.5), RULES), "E1")
    assert e["verdict"] == NOT_SUPPORTED and e["interval"][1] < 0.9
    e = check_entry(claims.claim_pga_converges(fig1_table(seeds=(0, 1)), RULES), "E1")
    assert e["verdict"] == INCONCLUSIVE and all(g["verdict"] == INCONCLUSIVE for g in e["details"]["groups"])


def test_claim1_one_bad_group_is_enough():
    df = fig1_table()
    bad = (df["scale"] == 4.0) & (df["checkpoint"] == 5) & (df["restart"] < 2)
    df.loc[bad, ["converged", "local_max"]] = False  # half of one group
    e = claims.claim_pga_converges(df, RULES)
    assert e["verdict"] == NOT_SUPPORTED and e["value"] == pytest.approx(0.5)
    verdicts = [g["verdict"] for g in e["details"]["groups"]]
    assert verdicts.count(NOT_SUPPORTED) == 1 and verdicts.count(SUPPORTED) == len(verdicts) - 1


# ---- claim 2 ---------------------------------------------------------------------------------
def test_claim2_verdicts():
    e = check_entry(claims.claim_on_sphere(fig1_table(), fig4_table(lambda d: 50), RULES), "E2")
    assert e["verdict"] == SUPPORTED and e["value"] == 1.0
    sources = {g["source"] for g in e["details"]["groups"]}
    assert sources == {"dataset", "theory"}
    e = check_entry(claims.claim_on_sphere(fig1_table(p_sphere=0.5), fig4_table(lambda d: 50), RULES), "E2")
    assert e["verdict"] == NOT_SUPPORTED
    e = check_entry(claims.claim_on_sphere(fig1_table(), fig4_table(lambda d: 50, p_sphere=0.3), RULES), "E2")
    assert e["verdict"] == NOT_SUPPORTED and e["details"]["groups"][0]["source"] == "dataset"
    e = check_entry(claims.claim_on_sphere(fig1_table(seeds=(0, 1)), fig4_table(lambda d: 50, trials=2), RULES), "E2")
    assert e["verdict"] == INCONCLUSIVE
    # one table alone is enough; none is inconclusive
    assert claims.claim_on_sphere(fig1_table(), None, RULES)["verdict"] == SUPPORTED
    assert claims.claim_on_sphere(None, None, RULES)["verdict"] == INCONCLUSIVE


# ---- claim 3 ---------------------------------------------------------------------------------
def up(s, rng, n):
    """PGA iterations growing with the scale."""
    return (30 * s + rng.normal(0, 3, n)).round() + 10


def test_claim3_verdicts():
    def down(s, rng, n):
        return (60 / s + rng.normal(0, 3, n)).round() + 10

    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(iterations=up), RULES), "E3")
    assert e["verdict"] == SUPPORTED and e["interval"][0] > 0
    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(iterations=down), RULES), "E3")
    assert e["verdict"] == NOT_SUPPORTED and e["interval"][1] < 0
    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(iterations=up, seeds=(0, 1)), RULES), "E3")
    assert e["verdict"] == INCONCLUSIVE
    # no variation at all: rho is undefined -> inconclusive, not an error
    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(), RULES), "E3")
    assert e["verdict"] == INCONCLUSIVE and all(math.isnan(g["value"]) for g in e["details"]["groups"])


def test_claim3_unconverged_runs_rank_last():
    # larger scales converge less often: their max_steps counts as the worst rank -> supported
    df = fig1_table(iterations=lambda s, rng, n: np.full(n, 50))
    rng = np.random.default_rng(3)
    late = rng.random(len(df)) < (df["scale"] / 5.0)
    df.loc[late, "converged"] = False
    df.loc[late, "iterations"] = 200
    e = claims.claim_pga_iterations_vs_scale(df, RULES)
    assert e["verdict"] == SUPPORTED
    assert sum(g["not_converged"] for g in e["details"]["groups"]) == int(late.sum())


# ---- claim 4 ---------------------------------------------------------------------------------
def test_claim4_verdicts():
    e = check_entry(claims.claim_t7_training_vs_scale(fig2_table(lambda s, k: 10 * s + k), RULES), "T7")
    assert e["verdict"] == SUPPORTED and e["n_runs"] == 15
    e = check_entry(claims.claim_t7_training_vs_scale(fig2_table(lambda s, k: 100 / s + k), RULES), "T7")
    assert e["verdict"] == NOT_SUPPORTED
    e = check_entry(claims.claim_t7_training_vs_scale(fig2_table(lambda s, k: 10 * s + k, seeds=(0, 1)), RULES), "T7")
    assert e["verdict"] == INCONCLUSIVE


def test_claim4_never_reached_and_diverged_count_as_worst():
    # the largest scale never reaches the threshold, the second largest diverges: both rank last
    def steps(s, k):
        return np.nan if s >= 2.0 else 10 * s + k

    df = fig2_table(steps, diverged={(2.0, 0), (2.0, 1), (2.0, 2)})
    e = claims.claim_t7_training_vs_scale(df, RULES)
    assert e["verdict"] == SUPPORTED
    assert e["details"]["never_reached"] == 3 and e["details"]["diverged"] == 3
    # ... and the smallest scale never reaching it contradicts the claim
    e = claims.claim_t7_training_vs_scale(fig2_table(lambda s, k: np.nan if s == 0.25 else 5 + k), RULES)
    assert e["verdict"] == NOT_SUPPORTED
    # a diverged run counts as never reached even when a step count was recorded
    df = fig2_table(lambda s, k: 10 * s + k, diverged={(4.0, 0)})
    assert claims.claim_t7_training_vs_scale(df, RULES)["details"]["diverged"] == 1


# ---- claim 5 ---------------------------------------------------------------------------------
def test_claim5_verdicts_nan_safe():
    e = check_entry(claims.claim_regularity_vs_scale(fig3_table(np.log1p, nan_fraction=0.2), RULES), "E4")
    assert e["verdict"] == SUPPORTED
    groups = e["details"]["groups"]
    assert {g["measure"] for g in groups} == {"distinct_maxima", "nonlinearity"}
    assert sum(g["nan_dropped"] for g in groups) > 0 and all(np.isfinite(g["value"]) for g in groups)
    e = check_entry(claims.claim_regularity_vs_scale(fig3_table(lambda s: 1 / s), RULES), "E4")
    assert e["verdict"] == NOT_SUPPORTED
    e = check_entry(claims.claim_regularity_vs_scale(fig3_table(np.log1p, seeds=(0, 1)), RULES), "E4")
    assert e["verdict"] == INCONCLUSIVE
    # a measure that is NaN throughout one checkpoint leaves that group inconclusive, not an error
    df = fig3_table(np.log1p)
    df.loc[df["checkpoint"] == 5, "nonlinearity"] = np.nan
    e = claims.claim_regularity_vs_scale(df, {**RULES, "min_supported_groups": 1.0})
    assert e["verdict"] == INCONCLUSIVE
    # 3 of 4 groups supported and none contradicting: supported at the default share of 0.5
    assert claims.claim_regularity_vs_scale(df, RULES)["verdict"] == SUPPORTED


# ---- T1-T7: synthetic tables of the new report ------------------------------------------------
SETTINGS = [("softplus", 4, 32, "theorem"), ("softplus", 8, 182, "theorem"), ("softplus", 4, 8, "below"),
            ("relu", 4, 32, "theorem")]
FRACTIONS = (0.8, 0.4, 0.2)


def theory_runs(*, iter_slope=-1.1, dist_slope=0.5, contrast_dist_slope=None, trials=8, rate=lambda rng: 0.5,
                p_sphere=1.0, seed=0) -> pd.DataFrame:
    """Planted power laws: iterations = C_t eta^iter_slope, distance = D_t eta^dist_slope (small noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for act, d, m, regime in SETTINGS:
        eps = 1 / math.log(m) ** 2
        ds = dist_slope if (act, regime) == ("softplus", "theorem") or contrast_dist_slope is None else contrast_dist_slope
        for t in range(trials):
            c, dd = math.exp(rng.normal(0, 0.5)), math.exp(rng.normal(0, 0.5))
            for f in FRACTIONS:
                eta = f * eps**2
                rows.append({"activation": act, "d": d, "m": m, "width_power": 2.5, "regime": regime, "scale": 1.0,
                             "eps": eps, "eta": eta, "eta_over_eps2": f, "trial": t, "reached": True,
                             "iterations": max(1, int(round(c * eta**iter_slope * math.exp(rng.normal(0, 0.01))))),
                             "distance": dd * eta**ds * math.exp(rng.normal(0, 0.01)), "interior_steps": 3,
                             "min_rate": rate(rng), "on_sphere": bool(rng.random() < p_sphere)})
    return pd.DataFrame(rows)


def theory_hessian(*, saddle_every=0, trials=8) -> pd.DataFrame:
    rows = []
    for act, d, m, regime in SETTINGS + [("softplus", 2, 6, "theorem")]:
        for t in range(trials):
            kind = "saddle" if saddle_every and t % saddle_every == 0 else "maximum"
            rows.append({"activation": act, "d": d, "m": m, "regime": regime, "scale": 1.0, "trial": t, "kind": kind,
                         "eig_min": -2.0, "eig_max": 1.0 if kind == "saddle" else -1.0, "multiplier": 2.0,
                         "hessian_norm": 0.5, "tangent_grad": 1e-6})
    return pd.DataFrame(rows)


def theory_maxima(*, small_eps_distinct=1, trials=8) -> pd.DataFrame:
    rows = []
    for act, d, m, regime in SETTINGS:
        eps_th = 1 / math.log(m) ** 2
        for t in range(trials):
            for r in (0.01, 0.1, 1.0, 3.0):
                n = small_eps_distinct if r <= eps_th else (1 if r < 1 else 2 + t % 2)
                rows.append({"activation": act, "d": d, "m": m, "regime": regime, "scale": 1.0, "eps": r, "ratio": r,
                             "eps_theorem": eps_th, "trial": t, "restarts": 12, "converged": 12, "on_sphere": 12,
                             "distinct_maxima": n})
    return pd.DataFrame(rows)


def escape_table(time_fn, *, scales=(0.1, 10.0, 1000.0), ratios=(0.01, 1.0), checkpoints=(0,), seeds=(0, 1),
                 n_inputs=4, seed=0) -> pd.DataFrame:
    """time_fn(scale, ratio, checkpoint) -> typical escape time (NaN: never escapes)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in scales:
        for r in ratios:
            for c in checkpoints:
                for k in seeds:
                    for i in range(n_inputs):
                        t = time_fn(s, r, c)
                        rows.append({"scale": s, "ratio": r, "eps": r * s, "eta": 1.0, "seed": k, "input": i,
                                     "checkpoint": c, "loss_start": 1.0, "loss_end": 1.5, "loss_rise": 0.5,
                                     "escape_time": t * math.exp(rng.normal(0, 0.05)) if np.isfinite(t) else np.nan,
                                     "relative_step": 1.0 / s, "descent_converged": True})
    return pd.DataFrame(rows)


def all_tables(**over) -> dict:
    t = {"theory_runs": theory_runs(), "theory_hessian": theory_hessian(), "theory_maxima": theory_maxima(),
         "fig1_maxima": None,
         "escape_scale": escape_table(lambda s, r, c: 10 * (1 + math.log10(s) + 3)),
         "escape_training": escape_table(lambda s, r, c: 10 + c, scales=(0.1,), checkpoints=(0, 10, 100)),
         "training_runs": fig2_table(lambda s, k: 10 * s + k), "pga_final": fig1_table(iterations=up),
         "landscape_regularity": fig3_table(np.log1p)}
    t.update(over)
    return t


def by_id(res):
    return {e["id"]: e for e in res}


def test_power_law_slope_recovers_a_planted_power_law_and_its_interval_covers_it():
    rng = np.random.default_rng(3)
    eta = np.tile([0.08, 0.04, 0.02, 0.01], 12)
    unit = np.repeat(np.arange(12), 4)
    y = np.exp(rng.normal(0, 1, 12))[unit] * eta**-1.7 * np.exp(rng.normal(0, 0.05, 48))
    W = rng.multinomial(12, np.full(12, 1 / 12), size=2000).astype(float)
    point, boot = stats.power_law_slope(eta, y, unit, W)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    assert point == pytest.approx(-1.7, abs=0.05) and lo < -1.7 < hi and hi - lo < 0.2
    # per-unit intercepts: units seen at different steps with different offsets do not bias the slope
    eta2 = np.r_[np.tile([0.08, 0.04], 6), np.tile([0.02, 0.01], 6)]
    unit2 = np.repeat(np.arange(12), 2)
    y2 = np.where(unit2 < 6, 100.0, 1.0) * eta2**-1.7
    assert stats.power_law_slope(eta2, y2, unit2)[0] == pytest.approx(-1.7, abs=1e-9)
    assert stats.power_law_slope(eta2, y2, np.zeros(24))[0] > 0  # one intercept: fooled by the offsets


@pytest.mark.parametrize("bound,tol", [(-2.0, 0.1), (0.5, 0.1), (0.5, 0.0)])
def test_slope_verdict_flips_at_its_threshold(bound, tol):
    edge = bound - tol
    assert stats.slope_verdict(edge + 1e-9, edge + 0.2, bound, tol, True) == SUPPORTED
    assert stats.slope_verdict(edge - 1e-9, edge + 0.2, bound, tol, True) == INCONCLUSIVE
    assert stats.slope_verdict(edge - 0.2, edge - 1e-9, bound, tol, True) == NOT_SUPPORTED
    assert stats.slope_verdict(edge + 0.1, edge + 0.2, bound, tol, False) == INCONCLUSIVE


def test_fraction_and_sign_rules_flip_at_their_thresholds():
    assert stats.fraction_verdict(0.9, 1.0, 0.9, True) == SUPPORTED
    assert stats.fraction_verdict(0.9 - 1e-9, 1.0, 0.9, True) == INCONCLUSIVE
    assert stats.fraction_verdict(0.5, 0.9 - 1e-9, 0.9, True) == NOT_SUPPORTED
    assert stats.sign_verdict(1e-9, 0.5, True) == SUPPORTED
    assert stats.sign_verdict(-1e-9, 0.5, True) == INCONCLUSIVE
    assert stats.sign_verdict(-0.5, -1e-9, True) == NOT_SUPPORTED


def test_combine_rule_flips_at_min_supported_groups():
    r = {**RULES, "min_supported_groups": 0.5}
    assert claims.combine([SUPPORTED, INCONCLUSIVE], r) == SUPPORTED
    assert claims.combine([SUPPORTED, INCONCLUSIVE, INCONCLUSIVE], r) == INCONCLUSIVE
    assert claims.combine([SUPPORTED, SUPPORTED, NOT_SUPPORTED], r) == NOT_SUPPORTED
    assert claims.combine([SUPPORTED, INCONCLUSIVE], {**r, "min_supported_groups": 1.0}) == INCONCLUSIVE
    assert claims.combine([], r) == INCONCLUSIVE


def test_t1_verdicts_follow_the_planted_slopes():
    e = claims.claim_t1_theorem31(theory_runs(), RULES)
    assert e["verdict"] == SUPPORTED and e["id"] == "T1" and e["paper_location"] == "Theorem 3.1"
    counted = [g for g in e["details"]["groups"] if g["counted"]]
    assert {(g["activation"], g["regime"]) for g in counted} == {("softplus", "theorem")} and len(counted) == 4
    its = [g for g in counted if g["quantity"] == "iterations"]
    assert all(g["lo"] < -1.1 < g["hi"] for g in its)
    # planted disagreement: distance shrinking like eta^0.2 only (slower than the theorem's eta^0.5)
    e = claims.claim_t1_theorem31(theory_runs(dist_slope=0.2), RULES)
    assert e["verdict"] == NOT_SUPPORTED and e["value"] == pytest.approx(0.2, abs=0.05)
    # iterations growing like eta^-2.5 break the O(eta^-2) bound
    assert claims.claim_t1_theorem31(theory_runs(iter_slope=-2.5), RULES)["verdict"] == NOT_SUPPORTED
    # a disagreement in a contrast setting only does not count
    assert claims.claim_t1_theorem31(theory_runs(contrast_dist_slope=0.1), RULES)["verdict"] == SUPPORTED
    # too few trials
    assert claims.claim_t1_theorem31(theory_runs(trials=2), RULES)["verdict"] == INCONCLUSIVE


def test_t2_flips_with_the_rate_threshold_and_the_sphere():
    assert claims.claim_t2_interior_ascent(theory_runs(), RULES)["verdict"] == SUPPORTED
    low = claims.claim_t2_interior_ascent(theory_runs(rate=lambda rng: 5e-4), RULES)
    assert low["verdict"] == NOT_SUPPORTED
    assert claims.claim_t2_interior_ascent(theory_runs(rate=lambda rng: 5e-4), {**RULES, "min_rate": 1e-4})[
        "verdict"] == SUPPORTED
    assert claims.claim_t2_interior_ascent(theory_runs(p_sphere=0.3), RULES)["verdict"] == NOT_SUPPORTED


def test_t3_saddles_are_not_supported_and_d2_is_not_counted():
    e = claims.claim_t3_no_saddles(theory_hessian(), RULES)
    assert e["verdict"] == SUPPORTED
    assert all(not g["counted"] for g in e["details"]["groups"] if g["d"] == 2)
    e = claims.claim_t3_no_saddles(theory_hessian(saddle_every=2), RULES)
    assert e["verdict"] == NOT_SUPPORTED and e["value"] == pytest.approx(0.5)


def test_t4_single_maximum_and_thresholds():
    e = claims.claim_t4_single_maximum(theory_maxima(), None, RULES)
    assert e["verdict"] == SUPPORTED
    th = {(t["activation"], t["m"]): t["threshold"] for t in e["details"]["thresholds"]}
    assert th[("softplus", 32)] == pytest.approx(math.sqrt(0.1 * 1.0))  # single up to 0.1, none at 1
    e = claims.claim_t4_single_maximum(theory_maxima(small_eps_distinct=2), None, RULES)
    assert e["verdict"] == NOT_SUPPORTED
    f1 = pd.DataFrame([{"scale": s, "ratio": r, "eps": r * s, "restarts": 64, "seed": k,
                        "distinct_maxima": 1 if r < 1 else 3} for s in (0.01, 100) for r in (0.1, 10) for k in range(3)])
    e = claims.claim_t4_single_maximum(None, f1, RULES)
    assert e["verdict"] == SUPPORTED and {g["source"] for g in e["details"]["groups"]} == {"fig1"}


def test_t5_t6_t7_follow_the_planted_trends():
    up_s = escape_table(lambda s, r, c: 10 * (4 + math.log10(s)))
    down_s = escape_table(lambda s, r, c: 10 * (4 - math.log10(s)))
    assert claims.claim_t5_escape_by_scale(up_s, cfg=RULES)["verdict"] == SUPPORTED
    e = claims.claim_t5_escape_by_scale(down_s, cfg=RULES)
    assert e["verdict"] == NOT_SUPPORTED and e["value"] < -0.9
    # never escaping at the largest scale ranks last: still supported
    never = escape_table(lambda s, r, c: np.nan if s == 1000 else 10 * (4 + math.log10(s)))
    assert claims.claim_t5_escape_by_scale(never, cfg=RULES)["verdict"] == SUPPORTED
    harder = escape_table(lambda s, r, c: 10 + c, scales=(0.1, 10.0), checkpoints=(0, 10, 100))
    e = claims.claim_t6_escape_during_training(harder, cfg=RULES)
    assert e["verdict"] == SUPPORTED and len(e["details"]["more_so_at_large_scale"]) == 2
    easier = escape_table(lambda s, r, c: 200 - c, scales=(0.1,), checkpoints=(0, 10, 100))
    assert claims.claim_t6_escape_during_training(easier, cfg=RULES)["verdict"] == NOT_SUPPORTED
    e = claims.claim_t7_training_vs_scale(fig2_table(lambda s, k: 10 * s + k), RULES)
    assert e["verdict"] == SUPPORTED and "caveat" in e["details"] and e["id"] == "T7"
    assert claims.claim_t7_training_vs_scale(fig2_table(lambda s, k: 100 / s + k), RULES)["verdict"] == NOT_SUPPORTED


def test_report_with_a_planted_disagreement_says_not_supported():
    res = claims.evaluate_claims(all_tables(escape_scale=escape_table(lambda s, r, c: 10 * (4 - math.log10(s)))), RULES)
    v = {e["id"]: e["verdict"] for e in res}
    assert v["T5"] == NOT_SUPPORTED
    assert all(v[k] == SUPPORTED for k in ("T1", "T2", "T3", "T4", "T6", "T7"))
    md = claims.render_markdown(res, "planted", RULES)
    row = next(line for line in md.splitlines() if line.startswith("| T5 |"))
    assert row.endswith("| **not supported** |") and "Fig. 2" in row


def test_evaluate_claims_ids_order_determinism_and_missing_tables():
    a = claims.evaluate_claims(all_tables(), {"claims": RULES})
    b = claims.evaluate_claims(all_tables(), RULES)
    assert [e["id"] for e in a] == ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "E1", "E2", "E3", "E4"]
    assert json.dumps(claims.to_jsonable(a)) == json.dumps(claims.to_jsonable(b))
    assert all(e["verdict"] == SUPPORTED for e in a)
    assert [e["kind"] for e in a] == ["paper"] * 7 + ["extension"] * 4
    c = claims.evaluate_claims(all_tables(), {**RULES, "seed": 1})
    assert c[0]["interval"] != a[0]["interval"]  # the seed is what changes the bootstrap
    res = by_id(claims.evaluate_claims(all_tables(escape_scale=None, escape_training=None), RULES))
    assert res["T5"]["verdict"] == INCONCLUSIVE and res["T5"]["runs"]["count"] == 0
    assert "missing" in res["T6"]["details"]["note"] and res["T1"]["verdict"] == SUPPORTED
    with pytest.raises(ValueError, match="unknown"):
        claims.evaluate_claims({"fig4_theory": None}, RULES)


def test_schema_defaults_match_library_defaults():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["claims"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == claims.DEFAULT_RULES
    assert schema["properties"]["claims"]["additionalProperties"] is False
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert set(cfg["claims"]) == set(claims.DEFAULT_RULES)


def test_cli_writes_both_files_and_claims_json_validates(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    spec = importlib.util.spec_from_file_location("claims_script", ROOT / "scripts" / "claims.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    argv = []
    for k, df in all_tables().items():
        if df is None:
            argv.append(f"--{k.replace('_', '-')}=none")
            continue
        path = tmp_path / f"{k}.csv"
        df.to_csv(path, index=False)
        argv.append(f"--{k.replace('_', '-')}={path}")
    argv += shlex.split(claims.cli_flags({**RULES, "bootstrap": 100}, "syn"))
    argv += ["--out-md", str(tmp_path / "out" / "claims.md"), "--out-json", str(tmp_path / "out" / "claims.json")]
    assert script.main(argv) == 0
    out = json.loads((tmp_path / "out" / "claims.json").read_text())
    jsonschema.validate(out, claims.CLAIMS_JSON_SCHEMA)
    assert out["config_name"] == "syn" and out["rules"]["bootstrap"] == 100
    assert [e["id"] for e in out["claims"]][:7] == [f"T{i}" for i in range(1, 8)]
    # the schema has teeth: a claim without a verdict, or with an unknown one, fails
    bad = json.loads(json.dumps(out))
    del bad["claims"][0]["verdict"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, claims.CLAIMS_JSON_SCHEMA)
    bad = json.loads(json.dumps(out))
    bad["claims"][2]["verdict"] = "probably"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, claims.CLAIMS_JSON_SCHEMA)
    md = (tmp_path / "out" / "claims.md").read_text()
    assert "configuration `syn`" in md and md.count("\n## ") == 11
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]
    with pytest.raises(SystemExit):
        script.get_args(argv + ["--confidence", "1.5"])


# ---- the real default tables -----------------------------------------------------------------
# the default run's record: stage -> its folder (results/stages/<stage>/<key>), written by the workflow
DEFAULT_STAGES = ROOT / "results" / "default" / "stages.json"
REAL = {"theory_runs": "ext_theory/pga.csv", "theory_hessian": "ext_theory/hessian.csv",
        "theory_maxima": "ext_theory/maxima.csv", "training_runs": "ext_training_convergence/runs.csv",
        "pga_final": "ext_pga_convergence/final.csv",
        "landscape_regularity": "ext_landscape_statistics/regularity.csv"}


def _default_tables() -> dict[str, Path] | None:
    """claims table -> its file in the default run's tables stage folders (None without that run)."""
    from adversary_dynamics.pipeline.stages import FIGURES

    if not DEFAULT_STAGES.exists():
        return None
    stages = json.loads(DEFAULT_STAGES.read_text(encoding="utf-8"))
    return {k: ROOT / stages[FIGURES[p.split("/")[0]]]["folder"] / p.split("/")[1] for k, p in REAL.items()}


@pytest.mark.skipif(not (_default_tables() and all(p.exists() for p in _default_tables().values())),
                    reason="the default run's tables (results/default/stages.json and its stages) are absent")
def test_default_tables_give_valid_entries():
    jsonschema = pytest.importorskip("jsonschema")
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    tables = {k: pd.read_csv(p) for k, p in _default_tables().items()}
    res = claims.evaluate_claims(tables, cfg)
    jsonschema.validate(claims.to_jsonable({"config_name": "default", "rules": {}, "claims": res}),
                        claims.CLAIMS_JSON_SCHEMA)
    for e in res:
        if e["id"] in REAL or e["id"] in ("T1", "T2", "T3", "T4", "T7"):
            assert e["runs"]["count"] > 0 and np.isfinite(e["value"]) and e["interval"][0] <= e["interval"][1]


# ---- the ext_theory notebook (smoke run on the tables of a tiny sweep) -------------------------
def test_ext_theory_notebook_runs_on_a_tiny_sweep(tmp_path):
    """Every code cell of notebooks/ext_theory.ipynb, with the parameters replaced as papermill
    would, on the tables of a tiny theory_run; writes a PDF and a PNG."""
    import matplotlib

    from adversary_dynamics.figures import theory

    matplotlib.use("Agg")
    out = theory.theory_run(dims=[2, 4], width_powers=[2.5, 1.5], scales=[1.0], eps_factor=1.0,
                            eta_fractions=[0.8, 0.4], trials=3, max_steps=400, refine_factor=2.0, refine_tol=0.05,
                            maxima_dims=[2], maxima_ratios=[0.01, 3.0], maxima_trials=3, maxima_restarts=4,
                            maxima_steps=40, maxima_step=0.1, maxima_tol=1e-3, maxima_merge=0.05)
    params = {"config_name": "smoke", "out_pdf": str(tmp_path / "out" / "t.pdf"), "out_png": str(tmp_path / "out" / "t.png")}
    for k, rows in out.items():
        pd.DataFrame(rows).to_csv(tmp_path / f"{k}.csv", index=False)
        params[k] = str(tmp_path / f"{k}.csv")
    nb = json.loads((ROOT / "notebooks" / "ext_theory.ipynb").read_text(encoding="utf-8"))
    assert "".join(nb["cells"][0]["source"]).startswith("# Extension — ")
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), "<ext_theory>", "exec"), ns)
        if cell is tagged[0]:
            assert set(params) <= set(ns), "the parameters cell must define every parameter papermill passes"
            ns.update(params)
    for ext in ("pdf", "png"):
        assert (tmp_path / "out" / f"t.{ext}").stat().st_size > 1000


@pytest.mark.parametrize("claim_fn,kw", [
    (claims.claim_t5_escape_by_scale, {}),
    (claims.claim_t6_escape_during_training, {"scales": (0.1, 10.0), "checkpoints": (0, 10, 100)}),
])
def test_t5_t6_censored_runs_equal_their_times_replaced_by_inf(claim_fn, kw):
    """Type-I censoring at one budget T: a censored run (column censored = True) ranks as +inf whatever its
    recorded half-rise step, i.e. exactly as the same table with those runs' times replaced by +inf; the details
    count the censored runs per group and the rule says how they are treated."""
    base = escape_table(lambda s, r, c: 10 * (4 + math.log10(s)) + c, **kw)
    rng = np.random.default_rng(7)
    cens = rng.random(len(base)) < 0.3
    raw = base.assign(escape_time=np.where(cens, 3.0, base["escape_time"]), censored=cens,
                      censored_rise=cens, censored_late=False, flat=False)  # a censored run's raw (early) crossing
    inf = base.assign(escape_time=np.where(cens, np.inf, base["escape_time"]))  # no censored column
    written = raw.assign(escape_time=np.where(cens, np.inf, base["escape_time"]))  # as escape.csv writes it
    a, b, c = claim_fn(raw, cfg=RULES), claim_fn(inf, cfg=RULES), claim_fn(written, cfg=RULES)
    for e in (a, c):
        assert (e["value"], e["interval"], e["verdict"]) == (b["value"], b["interval"], b["verdict"])
        assert [g["value"] for g in e["details"]["groups"]] == [g["value"] for g in b["details"]["groups"]]
    groups = a["details"]["groups"]
    assert sum(g["censored"] for g in groups) == int(cens.sum()) == a["details"]["censoring"]["censored"]
    assert all(g["censored_share"] == pytest.approx(g["censored"] / g["n_obs"]) for g in groups)
    assert sum(g["censored_no_departure"] for g in groups) == int(cens.sum())
    assert "censor" in a["rule"] and "type-I" in a["rule"]
    # treating the raw crossings as escape times gives another answer (the old code's)
    d = claim_fn(raw.drop(columns=["censored"]), cfg=RULES)
    assert [g["value"] for g in d["details"]["groups"]] != [g["value"] for g in b["details"]["groups"]]
