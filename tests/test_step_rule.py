"""The extension figure ext_step_rule (issue 18): Fig. 2's escape probe at fixed ratios under each PGA step
rule, and T5's statistic per rule (adversary_dynamics.figures.step_rule, scripts/step_rule.py, stage
ext_step_rule_tables). Tiny problems on the digits CNN: seconds each, CPU."""

from __future__ import annotations

import copy
import importlib.util
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from adversary_dynamics.claims.statements import claim_t5_escape_by_scale
from adversary_dynamics.figures import step_rule as SR
from adversary_dynamics.figures.escape_tables import ESCAPE_COLUMNS
from adversary_dynamics.pipeline import costs, stages
from adversary_dynamics.pipeline.config import ConfigError, load_schema, validate_config
from workflow_copy import ROOT

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TINY = yaml.safe_load((ROOT / "tests" / "workflow" / "config.yaml").read_text())
SCALES, RATIOS, N, PROP, NORM = [0.1, 1000.0], [0.1, 1.0], 3, 0.1, 0.01
RULES = {"bootstrap": 200, "seed": 0, "confidence": 0.95, "min_runs": 3}


def _script():
    spec = importlib.util.spec_from_file_location("step_rule_script", ROOT / "scripts" / "step_rule.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The script on a tiny problem: 2 scales, 2 ratios, seeds 0 and 1, 3 inputs, 20 PGA steps."""
    out = tmp_path_factory.mktemp("step_rule")
    argv = ["--out-dir", str(out), "--scales", ",".join(map(str, SCALES)), "--ratios", ",".join(map(str, RATIOS)),
            "--seeds", "0,1", "--n-inputs", str(N), "--steps", "20", "--step-size", "1.0", "--proportional-step",
            str(PROP), "--normalized-step", str(NORM), "--architecture", "cnn", "--loss", "squared_error",
            "--cnn-channels", "4,8", "--cnn-hidden", "16", "--descent-steps", "8", "--descent-stages", "2",
            "--check-directions", "4", "--rtol", "1e-6", "--n-train", "200", "--n-test", "100", "--device", "cpu",
            "--claims-rules", json.dumps(RULES)]
    assert _script().main(argv) == 0
    return {name: pd.read_csv(out / f"{name}.csv") for name in ("escape", "summary", "t5_by_variant")} | {"out": out}


def test_script_writes_every_table_with_its_columns_and_one_row_per_run(tiny):
    esc, summ, t5 = tiny["escape"], tiny["summary"], tiny["t5_by_variant"]
    assert list(esc.columns) == [*ESCAPE_COLUMNS, *SR.EXTRA_COLUMNS]
    assert len(esc) == len(SR.VARIANTS) * len(SCALES) * 2 * len(RATIOS) * N
    assert not esc.duplicated(["variant", "scale", "seed", "ratio", "input"]).any()
    assert list(summ.columns) == list(SR.SUMMARY_COLUMNS) and len(summ) == len(SR.VARIANTS) * len(SCALES) * len(RATIOS)
    assert (summ["n_runs"] == 2 * N).all() and (summ["steps"] == 20).all()
    assert (summ["n_escaped"] + summ["n_censored"] + summ["n_flat"] + summ["n_nonfinite"] == summ["n_runs"]).all()
    assert list(t5.columns) == list(SR.T5_COLUMNS) and len(t5) == len(SR.VARIANTS) * len(RATIOS)
    assert list(dict.fromkeys(t5["variant"])) == list(SR.VARIANTS)
    prov = json.loads((tiny["out"] / "provenance.json").read_text())
    assert prov["config"]["proportional_step"] == PROP


def test_the_variants_differ_where_they_should(tiny):
    esc = tiny["escape"]
    by = {v: esc[esc["variant"] == v].sort_values(["scale", "seed", "ratio", "input"]).reset_index(drop=True)
          for v in SR.VARIANTS}
    # the step each run used: eta = 1 (absolute), c eps (proportional), c eps per unit gradient (normalized)
    assert np.allclose(by["absolute"]["eta"], 1.0) and np.allclose(by["absolute_scaled_input"]["eta"], 1.0)
    assert np.allclose(by["proportional"]["eta"], PROP * by["proportional"]["eps"], rtol=1e-6)
    assert np.allclose(by["normalized"]["eta"], NORM * by["normalized"]["eps"], rtol=1e-6)
    assert np.allclose(by["proportional"]["eps"], by["proportional"]["ratio"] * by["proportional"]["scale"], rtol=1e-6)
    # the normalized rule's step relative to the ball is c wherever the gradient is not 0
    assert np.allclose(by["normalized"]["relative_step_ball"], NORM)
    assert set(by["absolute_scaled_input"]["input_normalization"]) == {"scale"}
    assert set(esc.loc[esc["variant"] != "absolute_scaled_input", "input_normalization"]) == {"none"}
    # the three variants on the plain CNN share the descent (same starts and certificate): same start of PGA
    for v in ("proportional", "normalized"):
        for col in ("loss_clean", "loss_ball", "loss_start", "descent_mapping"):
            assert np.array_equal(by[v][col].to_numpy(), by["absolute"][col].to_numpy()), (v, col)
        assert not np.array_equal(by[v]["loss_end"].to_numpy(), by["absolute"]["loss_end"].to_numpy()), v
    # the CNN that sees x / s: the same clean loss at every scale (the plain CNN's grows with s)
    sc = by["absolute_scaled_input"].groupby("scale")["loss_clean"].mean()
    pl = by["absolute"].groupby("scale")["loss_clean"].mean()
    assert sc.iloc[0] == pytest.approx(sc.iloc[-1], rel=1e-4) and pl.iloc[-1] > 10 * pl.iloc[0]


def test_t5_by_variant_is_the_claims_t5_on_each_variants_rows(tiny):
    esc, t5 = tiny["escape"], tiny["t5_by_variant"]
    for v in SR.VARIANTS:
        res = claim_t5_escape_by_scale(esc[esc["variant"] == v].reset_index(drop=True), None, cfg=RULES)
        rows = t5[t5["variant"] == v].reset_index(drop=True)
        groups = res["details"]["groups"]
        assert len(rows) == len(groups)
        for g, (_, r) in zip(groups, rows.iterrows()):
            assert r["ratio"] == g["ratio"] and r["verdict"] == g["verdict"]
            for a, b in (("rho", "value"), ("lo", "lo"), ("hi", "hi")):
                assert r[a] == pytest.approx(g[b], nan_ok=True), (v, a)
            assert r["median_escape_by_scale"] == g["median_escape_by_scale"]
        assert set(rows["variant_verdict"]) == {res["verdict"]}
        assert rows["variant_rho"].iloc[0] == pytest.approx(res["value"], nan_ok=True)
    # recomputed from the written table: the same (the table is what the claims read)
    again = SR.t5_by_variant(esc, RULES)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), t5, check_dtype=False)


def test_summary_counts_censored_runs_as_beyond_the_budget():
    rows = []
    for i, (t, cens) in enumerate([(3.0, False), (5.0, False), (math.inf, True), (math.inf, True)]):
        rows.append({"variant": "absolute", "step_rule": "absolute", "step_size": 1.0, "input_normalization": "none",
                     "ratio": 1.0, "scale": 10.0, "seed": 0, "input": i, "escape_time": t, "escaped": not cens,
                     "censored": cens, "flat": False, "finite": True, "eta": 1.0, "relative_step_ball": 0.5})
    rows.append({**rows[0], "input": 9, "escape_time": math.nan, "escaped": False, "flat": True})
    s = SR.summary_table(pd.DataFrame(rows), steps=100).iloc[0]
    assert (s["n_runs"], s["n_escaped"], s["n_censored"], s["n_flat"]) == (5, 2, 2, 1)
    assert s["censored_share"] == 0.5 and s["q25_escape_time"] == 3.0
    assert math.isinf(s["median_escape_time"]) and math.isinf(s["q75_escape_time"])


def test_variant_specs_refuse_a_step_that_is_not_positive():
    assert [v["variant"] for v in SR.variant_specs(1.0, 0.1, 0.01)] == list(SR.VARIANTS)
    with pytest.raises(ValueError, match="proportional_step"):
        SR.variant_specs(1.0, 0.0, 0.01)


@pytest.mark.parametrize("key, value, shown", [
    ("ext_step_rule.proportional_step", 0, "0"),
    ("ext_step_rule.normalized_step", -0.01, "-0.01"),
    ("ext_step_rule.ratios", [0.1, -1], "-1"),
    ("ext_step_rule.seeds", [], "[]"),
])
def test_bad_config_is_refused_naming_the_key(key, value, shown):
    cfg = copy.deepcopy(DEFAULT)
    section, sub = key.split(".")
    cfg[section][sub] = value
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg, SCHEMA)
    line = next((ln for ln in str(exc.value).splitlines() if key in ln), "")
    assert line and shown in line, str(exc.value)


def test_the_stage_reads_what_it_declares_and_prices_its_work():
    cfg = validate_config(copy.deepcopy(DEFAULT), SCHEMA)
    k = stages.resolve(cfg, schema=load_schema(SCHEMA), root=ROOT, only={"ext_step_rule_tables"},
                       missing_data_ok=True)["ext_step_rule_tables"]
    a = k.args
    assert a["scales"] == cfg["paper_fig2"]["scales"] and a["ratios"] == cfg["ext_step_rule"]["ratios"]
    assert a["seeds"] == cfg["ext_step_rule"]["seeds"] and a["step_size"] == cfg["paper_escape"]["step_size"]
    assert json.loads(a["claims_rules"]) == {r: cfg["claims"][r] for r in stages.STEP_RULE_CLAIMS}
    assert "scripts/step_rule.py" in k.code and "src/adversary_dynamics/claims/statements.py" in k.code
    _script().get_args(["--params", json.dumps(a), "--out-dir", "x"])  # every argument is the script's
    assert stages.FIGURES["ext_step_rule"] == "ext_step_rule_tables"
    assert costs.STEP_RULE_VARIANTS == len(SR.VARIANTS)
    w = costs.work("ext_step_rule_tables", cfg)
    assert w.models == len(cfg["paper_fig2"]["scales"]) * len(cfg["ext_step_rule"]["seeds"]) * len(SR.VARIANTS)
    assert costs.runtime_minutes("ext_step_rule_tables", cfg, kind="cpu-core") >= costs.MIN_MINUTES


def test_the_tiny_workflow_config_keeps_the_stage_small():
    cfg = validate_config(copy.deepcopy(TINY), SCHEMA)
    e, x = cfg["paper_escape"], cfg["ext_step_rule"]
    runs = len(SR.VARIANTS) * len(cfg["paper_fig2"]["scales"]) * len(x["seeds"]) * len(x["ratios"]) * e["n_inputs"]
    assert runs <= 64 and e["steps"] <= 50


def test_claims_report_t5_under_each_step_rule_without_changing_its_verdict(tiny):
    """claims.json: T5's details["step_rule_sensitivity"] (variant -> verdict, value, interval) when the table is
    there, nothing when it is not; T5's own verdict and value are the same either way; claims.md has the table."""
    from adversary_dynamics import claims

    esc, t5 = tiny["escape"], tiny["t5_by_variant"]
    fig2 = esc[esc["variant"] == "absolute"].drop(columns=list(SR.EXTRA_COLUMNS))  # a stand-in for Fig. 2's table
    without = claims.claim_t5_escape_by_scale(fig2, None, cfg=RULES)
    with_ = claims.claim_t5_escape_by_scale(fig2, None, t5, cfg=RULES)
    assert "step_rule_sensitivity" not in without["details"]
    assert (with_["verdict"], with_["value"], with_["interval"]) == (without["verdict"], without["value"],
                                                                     without["interval"])
    sens = with_["details"]["step_rule_sensitivity"]
    assert list(sens) == list(SR.VARIANTS)
    for v, row in sens.items():
        d = t5[t5["variant"] == v].iloc[0]
        assert row["verdict"] == d["variant_verdict"] and row["value"] == pytest.approx(d["variant_rho"], nan_ok=True)
        assert row["interval"] == pytest.approx([d["variant_lo"], d["variant_hi"]], nan_ok=True)
    # through evaluate_claims (the claims stage): the table is optional
    res = {e["id"]: e for e in claims.evaluate_claims({"escape_scale": fig2, "escape_step_rule": t5}, RULES)}
    assert res["T5"]["details"]["step_rule_sensitivity"] == sens
    assert "step_rule_sensitivity" not in {e["id"]: e for e in claims.evaluate_claims(
        {"escape_scale": fig2}, RULES)}["T5"]["details"]
    md = claims.render_markdown(list(res.values()), "tiny", RULES)
    assert "T5 under each step rule" in md and "| variant |" in md
    # missing T5 table: the sensitivity is still reported, T5 inconclusive
    alone = claims.claim_t5_escape_by_scale(None, None, t5, cfg=RULES)
    assert alone["verdict"] == "inconclusive" and list(alone["details"]["step_rule_sensitivity"]) == list(SR.VARIANTS)
    with pytest.raises(TypeError, match="cfg="):
        claims.claim_t5_escape_by_scale(fig2, None, RULES)
