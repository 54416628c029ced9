"""The claims report: each claim's verdict on synthetic tables where the right answer is known
(supported, contradicted, too few runs), the rank correlation against scipy, determinism, the
CLI, and the real default tables (when present)."""

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

from adversary_dynamics import claims
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
    assert e["id"] == cid and e["verdict"] in VERDICTS
    assert set(e) == {"id", "claim", "statistic", "value", "interval", "n_runs", "verdict", "rule", "details"}
    assert len(e["interval"]) == 2 and isinstance(e["n_runs"], int) and e["rule"]
    json.dumps(claims.to_jsonable(e), allow_nan=False)  # serialisable, NaN-free
    return e


# ---- rank correlation ------------------------------------------------------------------------
def test_spearman_matches_scipy_with_ties_and_resampling():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 200).astype(float)
    y = np.where(rng.random(200) < 0.2, np.inf, rng.integers(0, 30, 200).astype(float))
    assert claims.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    W = rng.multinomial(200, np.full(200, 1 / 200), size=5).astype(float)
    r = claims.weighted_spearman(x, y, W)
    for b in range(5):
        idx = np.repeat(np.arange(200), W[b].astype(int))
        assert r[b] == pytest.approx(stats.spearmanr(x[idx], y[idx])[0], abs=1e-10)
    assert math.isnan(claims.spearman(np.ones(5), np.arange(5.0)))  # constant variable
    with pytest.raises(ValueError):
        claims.weighted_spearman(np.array([1.0, np.nan]), np.array([1.0, 2.0]), np.ones((1, 2)))


# ---- claim 1 ---------------------------------------------------------------------------------
def test_claim1_verdicts():
    e = check_entry(claims.claim_pga_converges(fig1_table(), RULES), 1)
    assert e["verdict"] == SUPPORTED and e["value"] == 1.0 and e["n_runs"] == 15
    e = check_entry(claims.claim_pga_converges(fig1_table(p_conv=0.5), RULES), 1)
    assert e["verdict"] == NOT_SUPPORTED and e["interval"][1] < 0.9
    e = check_entry(claims.claim_pga_converges(fig1_table(seeds=(0, 1)), RULES), 1)
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
    e = check_entry(claims.claim_on_sphere(fig1_table(), fig4_table(lambda d: 50), RULES), 2)
    assert e["verdict"] == SUPPORTED and e["value"] == 1.0
    sources = {g["source"] for g in e["details"]["groups"]}
    assert sources == {"dataset", "theory"}
    e = check_entry(claims.claim_on_sphere(fig1_table(p_sphere=0.5), fig4_table(lambda d: 50), RULES), 2)
    assert e["verdict"] == NOT_SUPPORTED
    e = check_entry(claims.claim_on_sphere(fig1_table(), fig4_table(lambda d: 50, p_sphere=0.3), RULES), 2)
    assert e["verdict"] == NOT_SUPPORTED and e["details"]["groups"][0]["source"] == "dataset"
    e = check_entry(claims.claim_on_sphere(fig1_table(seeds=(0, 1)), fig4_table(lambda d: 50, trials=2), RULES), 2)
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

    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(iterations=up), RULES), 3)
    assert e["verdict"] == SUPPORTED and e["interval"][0] > 0
    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(iterations=down), RULES), 3)
    assert e["verdict"] == NOT_SUPPORTED and e["interval"][1] < 0
    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(iterations=up, seeds=(0, 1)), RULES), 3)
    assert e["verdict"] == INCONCLUSIVE
    # no variation at all: rho is undefined -> inconclusive, not an error
    e = check_entry(claims.claim_pga_iterations_vs_scale(fig1_table(), RULES), 3)
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
    e = check_entry(claims.claim_training_vs_scale(fig2_table(lambda s, k: 10 * s + k), RULES), 4)
    assert e["verdict"] == SUPPORTED and e["n_runs"] == 15
    e = check_entry(claims.claim_training_vs_scale(fig2_table(lambda s, k: 100 / s + k), RULES), 4)
    assert e["verdict"] == NOT_SUPPORTED
    e = check_entry(claims.claim_training_vs_scale(fig2_table(lambda s, k: 10 * s + k, seeds=(0, 1)), RULES), 4)
    assert e["verdict"] == INCONCLUSIVE


def test_claim4_never_reached_and_diverged_count_as_worst():
    # the largest scale never reaches the threshold, the second largest diverges: both rank last
    def steps(s, k):
        return np.nan if s >= 2.0 else 10 * s + k

    df = fig2_table(steps, diverged={(2.0, 0), (2.0, 1), (2.0, 2)})
    e = claims.claim_training_vs_scale(df, RULES)
    assert e["verdict"] == SUPPORTED
    assert e["details"]["never_reached"] == 3 and e["details"]["diverged"] == 3
    # ... and the smallest scale never reaching it contradicts the claim
    e = claims.claim_training_vs_scale(fig2_table(lambda s, k: np.nan if s == 0.25 else 5 + k), RULES)
    assert e["verdict"] == NOT_SUPPORTED
    # a diverged run counts as never reached even when a step count was recorded
    df = fig2_table(lambda s, k: 10 * s + k, diverged={(4.0, 0)})
    assert claims.claim_training_vs_scale(df, RULES)["details"]["diverged"] == 1


# ---- claim 5 ---------------------------------------------------------------------------------
def test_claim5_verdicts_nan_safe():
    e = check_entry(claims.claim_regularity_vs_scale(fig3_table(np.log1p, nan_fraction=0.2), RULES), 5)
    assert e["verdict"] == SUPPORTED
    groups = e["details"]["groups"]
    assert {g["measure"] for g in groups} == {"distinct_maxima", "nonlinearity"}
    assert sum(g["nan_dropped"] for g in groups) > 0 and all(np.isfinite(g["value"]) for g in groups)
    e = check_entry(claims.claim_regularity_vs_scale(fig3_table(lambda s: 1 / s), RULES), 5)
    assert e["verdict"] == NOT_SUPPORTED
    e = check_entry(claims.claim_regularity_vs_scale(fig3_table(np.log1p, seeds=(0, 1)), RULES), 5)
    assert e["verdict"] == INCONCLUSIVE
    # a measure that is NaN throughout one checkpoint leaves that group inconclusive, not an error
    df = fig3_table(np.log1p)
    df.loc[df["checkpoint"] == 5, "nonlinearity"] = np.nan
    e = claims.claim_regularity_vs_scale(df, RULES)
    assert e["verdict"] == INCONCLUSIVE


# ---- claim 6 ---------------------------------------------------------------------------------
def test_claim6_verdicts():
    e = check_entry(claims.claim_theory_polynomial(fig4_table(lambda d: 2 * d ** 1.5), RULES), 6)
    assert e["verdict"] == SUPPORTED and 1.3 < e["value"] < 1.7
    assert e["details"]["fraction_power_better"] == 1.0 and e["n_runs"] == 4 * 2 * 16
    e = check_entry(claims.claim_theory_polynomial(fig4_table(lambda d: 10 * math.exp(d / 20)), RULES), 6)
    assert e["verdict"] == NOT_SUPPORTED and e["details"]["fraction_power_better"] < 0.75
    e = check_entry(claims.claim_theory_polynomial(fig4_table(lambda d: 2 * d ** 1.5, trials=2), RULES), 6)
    assert e["verdict"] == INCONCLUSIVE
    e = check_entry(claims.claim_theory_polynomial(fig4_table(lambda d: 2 * d ** 1.5, dims=(10, 20)), RULES), 6)
    assert e["verdict"] == INCONCLUSIVE


def test_claim6_slope_bound():
    # a steep power law beats the exponential but exceeds max_slope -> not supported
    e = claims.claim_theory_polynomial(fig4_table(lambda d: 0.001 * d ** 4), RULES)
    assert e["details"]["fraction_power_better"] == 1.0 and e["interval"][0] > 3.0
    assert e["verdict"] == NOT_SUPPORTED
    e = claims.claim_theory_polynomial(fig4_table(lambda d: 0.001 * d ** 4), {**RULES, "max_slope": 6.0})
    assert e["verdict"] == SUPPORTED


# ---- all claims, output, CLI -----------------------------------------------------------------
def _tables():
    return {"fig1_final": fig1_table(iterations=up), "fig2_runs": fig2_table(lambda s, k: 10 * s + k),
            "fig3_regularity": fig3_table(np.log1p), "fig4_theory": fig4_table(lambda d: 2 * d ** 1.5)}


def test_evaluate_claims_deterministic_and_rendered():
    a = claims.evaluate_claims(_tables(), {"claims": RULES})
    b = claims.evaluate_claims(_tables(), RULES)
    assert [e["id"] for e in a] == [1, 2, 3, 4, 5, 6]
    assert json.dumps(claims.to_jsonable(a)) == json.dumps(claims.to_jsonable(b))
    assert all(e["verdict"] == SUPPORTED for e in a)
    c = claims.evaluate_claims(_tables(), {**RULES, "seed": 1})
    assert c[2]["interval"] != a[2]["interval"]  # the seed is what changes the bootstrap
    md = claims.render_markdown(a, "synthetic", RULES)
    assert "`synthetic`" in md and md.count("**supported**") >= 6
    for e in a:
        assert f"## {e['id']}. " in md


def test_missing_table_is_inconclusive():
    t = _tables()
    del t["fig2_runs"]
    res = claims.evaluate_claims(t, RULES)
    assert res[3]["verdict"] == INCONCLUSIVE and res[3]["n_runs"] == 0
    assert [e["verdict"] for e in res if e["id"] != 4] == [SUPPORTED] * 5


def test_schema_defaults_match_library_defaults():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["claims"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == claims.DEFAULT_RULES
    assert schema["properties"]["claims"]["additionalProperties"] is False
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert set(cfg["claims"]) == set(claims.DEFAULT_RULES)


def test_cli_writes_both_files(tmp_path):
    spec = importlib.util.spec_from_file_location("claims_script", ROOT / "scripts" / "claims.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    paths = {}
    for k, df in _tables().items():
        paths[k] = tmp_path / f"{k}.csv"
        df.to_csv(paths[k], index=False)
    flags = claims.cli_flags({**RULES, "bootstrap": 100}, "syn")
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in paths.items()] + shlex.split(flags)
    argv += ["--out-md", str(tmp_path / "out" / "claims.md"), "--out-json", str(tmp_path / "out" / "claims.json")]
    assert script.main(argv) == 0
    out = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert out["config_name"] == "syn" and out["rules"]["bootstrap"] == 100
    assert [e["id"] for e in out["claims"]] == [1, 2, 3, 4, 5, 6]
    assert "# Claims checked against the runs of configuration `syn`" in (tmp_path / "out" / "claims.md").read_text()
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]
    with pytest.raises(SystemExit):
        script.get_args(argv + ["--confidence", "1.5"])


# ---- the real default tables -----------------------------------------------------------------
DEFAULT_TABLES = ROOT / "results" / "default" / "tables"


@pytest.mark.skipif(not all((DEFAULT_TABLES / f"{t}.csv").exists() for t in claims.TABLES),
                    reason="results/default/tables is absent")
def test_default_tables_give_six_valid_entries():
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    tables = {t: pd.read_csv(DEFAULT_TABLES / f"{t}.csv") for t in claims.TABLES}
    res = claims.evaluate_claims(tables, cfg)
    assert [e["id"] for e in res] == [1, 2, 3, 4, 5, 6]
    for e in res:
        check_entry(e, e["id"])
        lo, hi = e["interval"]
        assert e["n_runs"] > 0 and np.isfinite(e["value"]) and lo <= hi
    md = claims.render_markdown(res, "default", cfg["claims"])
    assert md.count("\n## ") == 6
