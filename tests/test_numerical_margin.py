"""Issue 18, item 1: verdicts that rounding cannot flip.

The Figs. 2-3 probe (descent, then PGA) can start from the uniform start moved by a few units in
the last place (``paper_escape.start_ulp``, the rebuild check's perturbed start) and also runs
replica probes from such moved starts (``paper_escape.replica_ulps``); the claims T5/T6 measure how
far their statistic moves between the runs and the replicas (the numerical margin), judge each
group's interval widened by ``claims.margin_factor`` x that margin, and are inconclusive when a
replica gives another verdict.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from adversary_dynamics.claims import statements
from adversary_dynamics.claims.rules import _rules
from adversary_dynamics.figures import escape
from adversary_dynamics.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

ROOT = Path(__file__).resolve().parents[1]


def test_nudge_ulps_moves_every_coordinate_by_whole_units_in_the_last_place():
    d = torch.tensor([0.0, 1.0, -2.5, 3e-8], dtype=torch.float32)
    assert escape.nudge_ulps(d, 0) is d
    one = escape.nudge_ulps(d, 1)
    assert torch.equal(one, torch.nextafter(d, torch.full_like(d, float("inf"))))
    assert (one > d).all() and one.dtype == d.dtype and not torch.equal(one, d)
    two = escape.nudge_ulps(d, 2)
    assert torch.equal(two, torch.nextafter(one, torch.full_like(d, float("inf"))))
    assert torch.equal(d, torch.tensor([0.0, 1.0, -2.5, 3e-8]))  # the input is not changed


def _tiny_probe(**kw):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 5, generator=g), torch.tensor([0, 1, 2, 0])
    starts = escape.unit_ball_starts(4, 5, generator=torch.Generator().manual_seed(1))
    return escape.probe_escape(net, x, y, ratios=[0.5, 2.0], scale=1.0, loss="squared_error", step_size=0.5,
                               steps=30, starts=starts, descent={"steps": 20, "stages": 2, "directions": 4},
                               generator=torch.Generator().manual_seed(2), **kw)


def test_replicas_rerun_the_probe_from_a_start_a_few_ulps_away():
    base = _tiny_probe()
    assert base.replicas == []
    pr = _tiny_probe(replica_ulps=[1, 3])
    assert torch.equal(pr.losses, base.losses)  # the runs themselves do not change
    assert torch.equal(pr.descent.delta, base.descent.delta)
    assert len(pr.replicas) == 2
    for k, rep in zip((1, 3), pr.replicas):
        assert rep.descent is not pr.descent and rep.losses.shape == pr.losses.shape
        # rounding-level starts: the uniform start's loss agrees to float32 resolution
        np.testing.assert_allclose(rep.descent.loss_ball.numpy(), pr.descent.loss_ball.numpy(), rtol=1e-5)
    moved = _tiny_probe(start_ulp=1)
    assert torch.equal(moved.losses, pr.replicas[0].losses)  # start_ulp 1 == the 1-ulp replica
    # the certificate's directions come from the same generator state in every run
    assert torch.equal(moved.descent.n_improving, pr.replicas[0].descent.n_improving)


@pytest.mark.parametrize("kw", [{"start_ulp": -1}, {"replica_ulps": [-2]}, {"start_ulp": 1.5}])
def test_negative_or_fractional_ulps_are_refused_naming_the_argument(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        _tiny_probe(**kw)


def _table(times_by_scale: dict[float, list[float]], ratio: float = 1.0, **extra) -> pd.DataFrame:
    rows = []
    for s, ts in times_by_scale.items():
        for i, t in enumerate(ts):
            rows.append({"scale": s, "ratio": ratio, "seed": 0, "input": i, "checkpoint": 0, "escape_time": t,
                         "finite": True, **extra})
    return pd.DataFrame(rows)


RULES = {"bootstrap": 400, "min_runs": 3, "margin_factor": 2.0}


def test_a_verdict_clear_of_its_margin_stands_and_the_margin_is_recorded():
    # escape time rises with the scale for every input, supported; the replica adds 1 step to every run
    times = {1.0: [10, 11, 12, 13, 14, 15], 2.0: [20, 21, 22, 23, 24, 25], 4.0: [40, 41, 42, 43, 44, 45]}
    runs = _table(times)
    rep = _table({s: [t + 1 for t in ts] for s, ts in times.items()}, replica_ulps=1)
    c = statements.claim_t5_escape_by_scale(runs, rep, cfg=RULES)
    assert c["verdict"] == SUPPORTED
    m = c["numerical_margin"]
    assert m["replica_ulps"] == [1] and m["factor"] == 2.0 and m["value"] == 0.0 and m["interval"] == 0.0
    assert m["verdict_without_margin"] == SUPPORTED and m["replica_verdicts"] == [SUPPORTED]
    g = c["details"]["groups"][0]
    assert g["margin"] == 0.0 and g["verdict_without_margin"] == SUPPORTED and g["replica_values"] == {"1": g["value"]}


def test_without_replicas_the_claim_has_no_margin():
    times = {1.0: [10, 11, 12, 13], 2.0: [20, 21, 22, 23]}
    for rep in (None, pd.DataFrame(columns=[*escape.ESCAPE_COLUMNS, "replica_ulps"])):
        c = statements.claim_t5_escape_by_scale(_table(times), rep, cfg=RULES)
        assert c["numerical_margin"] is None and c["verdict"] == SUPPORTED


def test_a_replica_that_reorders_the_escape_times_makes_the_claim_inconclusive():
    # runs: slower at larger scale (supported); replica (1 ulp away): faster (not supported)
    times = {1.0: [10, 11, 12, 13, 14, 15], 2.0: [20, 21, 22, 23, 24, 25]}
    flipped = {1.0: times[2.0], 2.0: times[1.0]}
    c = statements.claim_t5_escape_by_scale(_table(times), _table(flipped, replica_ulps=1), cfg=RULES)
    assert c["numerical_margin"]["verdict_without_margin"] == SUPPORTED
    assert c["numerical_margin"]["replica_verdicts"] == [NOT_SUPPORTED]
    assert c["verdict"] == INCONCLUSIVE
    assert c["details"]["groups"][0]["verdict"] == INCONCLUSIVE and c["numerical_margin"]["value"] == pytest.approx(2 * c["value"])


def test_an_interval_that_clears_zero_by_less_than_the_margin_is_inconclusive():
    # mostly ordered by scale, so the interval is positive, but a replica moves the statistic
    rng = np.random.default_rng(0)
    base = {1.0: list(rng.normal(10, 4, 12)), 2.0: list(rng.normal(16, 4, 12))}
    c0 = statements.claim_t5_escape_by_scale(_table(base), None, cfg=RULES)
    g0 = c0["details"]["groups"][0]
    assert c0["verdict"] == SUPPORTED and g0["lo"] > 0
    # a replica whose own verdict is also supported but whose interval's low end moved by more than lo/2
    shifted = {1.0: [t + 1.5 for t in base[1.0]], 2.0: base[2.0]}
    c = statements.claim_t5_escape_by_scale(_table(base), _table(shifted, replica_ulps=1), cfg=RULES)
    g = c["details"]["groups"][0]
    assert g["margin"] > 0
    if g0["lo"] - 2 * g["margin"] <= 0:
        assert g["verdict"] == INCONCLUSIVE and g["verdict_without_margin"] == SUPPORTED
    # factor 0: the margin is reported, not used
    c_no = statements.claim_t5_escape_by_scale(_table(base), _table(shifted, replica_ulps=1),
                                               cfg={**RULES, "margin_factor": 0.0})
    assert c_no["details"]["groups"][0]["verdict"] == g0["verdict"]


def test_t6_takes_its_replica_table_too():
    rows, rep = [], []
    for ck, base in ((0, 10), (10, 20), (100, 30)):
        for i in range(5):
            r = {"scale": 1.0, "ratio": 1.0, "seed": 0, "input": i, "checkpoint": ck, "escape_time": base + i,
                 "finite": True}
            rows.append(r)
            rep.append({**r, "escape_time": base + i + 0.5, "replica_ulps": 1})
    c = statements.claim_t6_escape_during_training(pd.DataFrame(rows), pd.DataFrame(rep), cfg=RULES)
    assert c["verdict"] == SUPPORTED and c["numerical_margin"]["replica_ulps"] == [1]


def test_margin_factor_is_a_rule_checked_before_any_table_is_read():
    assert _rules({})["margin_factor"] == 2.0
    with pytest.raises(ValueError, match="margin_factor"):
        _rules({"margin_factor": -1})


def test_the_escape_script_writes_the_replica_rows(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "scripts" / "escape.py"), "run", "--figure", "fig2", "--out-dir", str(out),
           "--n-test", "20", "--architecture", "cnn", "--cnn-channels", "4,8", "--cnn-hidden", "16",
           "--loss", "squared_error", "--scales", "1", "--ratios", "1", "--seeds", "0", "--n-inputs", "2",
           "--steps", "10", "--step-size", "1", "--descent-steps", "6", "--descent-stages", "2",
           "--check-directions", "4", "--replica-ulps", "1,2"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    esc, rep = pd.read_csv(out / "escape.csv"), pd.read_csv(out / "escape_replica.csv")
    assert len(rep) == 2 * len(esc) and sorted(rep["replica_ulps"].unique()) == [1, 2]
    keys = ["scale", "ratio", "seed", "input", "checkpoint"]
    pd.testing.assert_frame_equal(rep[rep["replica_ulps"] == 1][keys].reset_index(drop=True), esc[keys])
    # rounding-level: the uniform start's loss agrees to float32 resolution
    np.testing.assert_allclose(rep[rep["replica_ulps"] == 2]["loss_ball"].to_numpy(), esc["loss_ball"].to_numpy(),
                               rtol=1e-5)


def test_step_rules_set_the_step_the_issue_names():
    eps = torch.tensor([[0.5, 2.0]])
    assert escape.step_of("absolute", 0.3, eps) == 0.3
    assert torch.equal(escape.step_of("proportional", 0.1, eps), 0.1 * eps)
    g = torch.tensor([[4.0, 0.0]])
    assert torch.equal(escape.relative_step("normalized", 0.1, eps, g), torch.tensor([[0.1, 0.0]]))
    assert torch.allclose(escape.relative_step("absolute", 0.3, eps, g), 0.3 * g / eps)
    with pytest.raises(ValueError, match="step_rule"):
        escape.step_of("relative", 0.1, eps)
    # a normalised step moves the perturbation by exactly c * eps inside the ball
    pr = _tiny_probe(step_rule="normalized")
    assert torch.isfinite(pr.losses).all() and (pr.relative_step <= 0.5 + 1e-6).all()
    with pytest.raises(ValueError, match="step_rule"):
        _tiny_probe(step_rule="relative")


def test_the_rebuild_matrix_reports_a_verdict_that_differs_between_rebuilds(monkeypatch, tmp_path, capsys):
    """bench/verdict_matrix.py on three synthetic rebuilds: identical verdicts exit 0, one flip exits 1."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("verdict_matrix", ROOT / "bench" / "verdict_matrix.py")
    vm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vm)

    def report(v6, verdict6):
        return {"claims": [{"id": "T5", "verdict": SUPPORTED, "value": 0.5, "interval": [0.4, 0.6],
                            "numerical_margin": {"value": 0.01, "interval": 0.02}},
                           {"id": "T6", "verdict": verdict6, "value": v6, "interval": [v6 - 0.1, v6 + 0.1],
                            "numerical_margin": None}]}

    runs = iter([report(-0.4, NOT_SUPPORTED), report(-0.3, NOT_SUPPORTED), report(-0.45, NOT_SUPPORTED)])
    monkeypatch.setattr(vm, "rebuild", lambda *a, **k: next(runs))
    monkeypatch.setattr(vm, "config_name", lambda f: "default")
    assert vm.main(["--out", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    t6 = next(r for r in m["claims"] if r["id"] == "T6")
    assert m["identical"] and t6["spread_value"] == pytest.approx(0.15)
    runs = iter([report(-0.4, NOT_SUPPORTED), report(-0.3, INCONCLUSIVE), report(-0.45, NOT_SUPPORTED)])
    assert vm.main([]) == 1
    assert "every verdict identical: False" in capsys.readouterr().out


def test_rules_passed_where_the_replica_table_goes_are_refused():
    """claim_t5(df, RULES) would silently take the rules for a replica table and use the defaults."""
    times = {1.0: [10, 11, 12, 13], 2.0: [20, 21, 22, 23]}
    for fn in (statements.claim_t5_escape_by_scale, statements.claim_t6_escape_during_training):
        with pytest.raises(TypeError, match="cfg="):
            fn(_table(times), RULES)


def test_each_replica_reruns_the_probe_in_the_cost_model():
    import yaml

    from adversary_dynamics.pipeline import costs

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    one = costs.work("paper_fig2_escape_run", {**cfg, "paper_escape": {**cfg["paper_escape"], "replica_ulps": []}})
    two = costs.work("paper_fig2_escape_run", cfg)
    k = len(cfg["paper_escape"]["replica_ulps"])
    assert k >= 1 and two.passes == (1 + k) * one.passes
