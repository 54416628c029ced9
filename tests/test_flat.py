"""Flat (locally constant) adversarial landscapes: the certificate's ``flat`` flag, distinct maxima
over non-flat restarts, claim E2 leaving flat maxima out, and ext_theory's NaN distinct-maxima
count where no restart converged. Each test checks against an independent computation or a
planted answer; all run in a few seconds on one CPU thread."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from adversary_dynamics import claims
from adversary_dynamics.figures import landscape, theory
from adversary_dynamics.attack import local_max_certificate, random_init

F64 = torch.float64
RULES = {**claims.DEFAULT_RULES, "bootstrap": 300}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _relu_net(d=5, h=7, k=3, *, bias=0.0, seed=0):
    """Linear(d, h) → ReLU → Linear(h, k) in float64, hidden biases all ``bias``."""
    g = _gen(seed)
    net = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, k)).to(F64)
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(h, d, generator=g, dtype=F64))
        net[0].bias.fill_(bias)
        net[2].weight.copy_(torch.randn(k, h, generator=g, dtype=F64))
        net[2].bias.copy_(torch.randn(k, generator=g, dtype=F64))
    return net


class Bowl(nn.Module):
    """F(z) = top − ‖z − c‖² (one output): a strict interior maximum at z = c."""

    def __init__(self, c, top):
        super().__init__()
        self.c, self.top = c, top

    def forward(self, z):
        return (self.top - ((z - self.c) ** 2).sum(-1)).unsqueeze(-1)


def _output_loss(out, y):
    """ℓ = y·F (one output)."""
    return out[..., 0] * y.to(out.dtype)


# ---- the certificate's flat flag ---------------------------------------------------------
def test_constant_output_model_is_flat_and_a_trivial_local_max():
    """Every hidden ReLU inactive on the ball (biases −1000 ≪ −‖W‖(‖x‖ + ε)): F ≡ the output bias,
    so ℓ is constant; the certificate calls every point a local maximum and flat."""
    dead = _relu_net(bias=-1e3)
    g = _gen(1)
    x = torch.randn(6, 5, generator=g, dtype=F64)
    y = torch.randint(0, 3, (6,), generator=g)
    eps = 1.0
    delta = random_init((6, 5), eps=eps, norm="l2", init="uniform_ball", generator=g, dtype=F64)
    # independent: the output is the same constant at x + δ and at many other points of the ball
    others = random_init((50, 6, 5), eps=eps, norm="l2", init="uniform_ball", generator=g, dtype=F64)
    with torch.no_grad():
        assert torch.equal(dead(x + others), dead[2].bias.expand(50, 6, 3))
    cert = local_max_certificate(dead, x, y, delta, loss="quadratic", eps=eps, generator=_gen(2))
    assert cert.flat.dtype == torch.bool and cert.flat.shape == (6,)
    assert cert.flat.all() and cert.is_local_max.all()
    assert cert.constant.dtype == torch.bool and cert.constant.all()  # exactly constant, not just flat
    assert float(cert.max_increase.abs().max()) == 0.0 and float(cert.tangent_grad_norm.max()) == 0.0


def test_nondegenerate_maxima_are_not_flat():
    """A maximum on the sphere (ℓ = y·wᵀ(x + δ): δ* = ε·w/‖w‖, the gradient points outward) and a
    live ReLU network at a generic point are not flat."""
    g = _gen(3)
    w = torch.randn(4, generator=g, dtype=F64)
    lin = nn.Linear(4, 1, bias=False).to(F64)
    with torch.no_grad():
        lin.weight.copy_(w.unsqueeze(0))
    x = torch.randn(3, 4, generator=g, dtype=F64)
    y = torch.ones(3, dtype=F64)
    eps = 0.7
    star = (eps * w / torch.linalg.vector_norm(w)).expand(3, 4)
    cert = local_max_certificate(lin, x, y, star, loss=_output_loss, eps=eps, generator=_gen(4))
    assert cert.is_local_max.all() and cert.on_sphere.all()
    assert not cert.flat.any()
    live = _relu_net(bias=1.0)
    xr = torch.randn(5, 5, generator=g, dtype=F64)
    yr = torch.randint(0, 3, (5,), generator=g)
    c2 = local_max_certificate(live, xr, yr, torch.zeros_like(xr), loss="quadratic", eps=0.5, generator=_gen(5))
    assert not c2.flat.any()


@pytest.mark.parametrize("directions", [0, 32])
def test_a_sphere_maximum_with_a_strong_outward_gradient_is_not_flat(directions):
    """ℓ = 100 + wᵀ(x + δ) with ‖w‖ = 50 at δ* = ε·w/‖w‖, c = ftol·ℓ ≈ 0.1. With no random
    directions the only probes are along the tangent gradient (0 here) and the gradient, which is
    projected back onto δ*: Δℓ = 0 for every probe, so the probe test alone would call δ* flat;
    the first-order change ‖∇ℓ‖·r·ε = 0.35 > c says it is not. (Random directions pointing inward
    also see it: Δℓ up to −0.35.)"""
    g = _gen(13)
    w = torch.randn(4, generator=g, dtype=F64)
    w = 50 * w / torch.linalg.vector_norm(w)
    lin = nn.Linear(4, 1, bias=False).to(F64)
    with torch.no_grad():
        lin.weight.copy_(w.unsqueeze(0))
    x = 0.01 * torch.randn(2, 4, generator=g, dtype=F64)
    y = torch.ones(2, dtype=F64)
    eps = 0.7
    star = (eps * w / 50).expand(2, 4)
    cert = local_max_certificate(lin, x, y, star, loss=lambda out, y: 100 + _output_loss(out, y), eps=eps,
                                 radius=0.01, ftol=1e-3, directions=directions, generator=_gen(14))
    assert cert.is_local_max.all() and cert.on_sphere.all()
    if directions == 0:
        assert float(cert.max_increase.abs().max()) < 1e-9  # the probes see nothing
    assert not cert.flat.any()


@pytest.mark.parametrize("eps,expect_flat", [(1.0, True), (10.0, False)])
def test_flat_threshold_at_a_strict_interior_maximum(eps, expect_flat):
    """ℓ = 5 − ‖x + δ − c‖² at δ = c − x: ∇ℓ = 0 and every probe (length r·ε, well inside the ball)
    lowers ℓ by exactly (r·ε)². The point is flat iff (r·ε)² ≤ ftol·5: with r = 0.01, ftol = 1e-3
    that is 1e-4 ≤ 5e-3 at ε = 1 (flat to the probe's resolution) and 1e-2 > 5e-3 at ε = 10."""
    c = torch.zeros(3, dtype=F64)
    model = Bowl(c, 5.0)
    x = torch.tensor([[0.1, 0.0, 0.0], [0.0, -0.2, 0.1]], dtype=F64)
    y = torch.ones(2, dtype=F64)
    cert = local_max_certificate(model, x, y, c - x, loss=_output_loss, eps=eps, radius=0.01, ftol=1e-3,
                                 generator=_gen(6))
    # (the two gradient-direction probes are void where ∇ℓ = 0: they probe δ itself, Δℓ = 0)
    assert float(cert.max_increase.max()) == 0.0 and int(cert.n_increasing.sum()) == 0
    assert cert.is_local_max.all() and not cert.on_sphere.any()
    assert bool(cert.flat.all()) is expect_flat and bool(cert.flat.any()) is expect_flat
    assert not cert.constant.any()  # the probes see ℓ fall: flat at most to the resolution, never constant


def test_flat_per_example_in_a_mixed_batch():
    """One network, inputs in its dead region (every hidden unit off on the whole ball) and in its
    live region: flat exactly for the former."""
    d, h = 4, 6
    g = _gen(7)
    net = _relu_net(d=d, h=h, k=2, seed=8)
    u = torch.randn(d, generator=g, dtype=F64)
    with torch.no_grad():  # every hidden unit reads u·z, shifted by −1: dead for u·z < 1, live for u·z ≫ 1
        net[0].weight.copy_(u.expand(h, d) * torch.linspace(0.5, 1.5, h, dtype=F64).unsqueeze(-1))
        net[0].bias.fill_(-1.0)
    uu = u / torch.linalg.vector_norm(u)
    x = torch.stack([-5 * uu, 5 * uu, -6 * uu, 8 * uu])  # dead, live, dead, live
    y = torch.tensor([0, 1, 1, 0])
    cert = local_max_certificate(net, x, y, torch.zeros_like(x), loss="quadratic", eps=0.5, generator=_gen(9))
    assert cert.flat.tolist() == [True, False, True, False]
    assert cert.constant.tolist() == cert.flat.tolist()  # the flat ones are dead: exactly constant


# ---- distinct maxima over non-flat restarts ------------------------------------------------
def test_distinct_maxima_exclude_and_flat_fraction():
    e = torch.eye(3, dtype=F64)
    deltas = torch.stack([e[0], e[1], e[2], -e[0], e[0]])
    assert landscape.distinct_maxima(deltas) == 4
    keep_two = torch.tensor([True, False, True, True, False])  # left: e1, −e0 → 2
    assert landscape.distinct_maxima(deltas, exclude=keep_two) == 2
    assert landscape.distinct_maxima(deltas, exclude=~keep_two) == landscape.distinct_maxima(deltas[keep_two])
    assert math.isnan(landscape.distinct_maxima(deltas, exclude=torch.ones(5, dtype=torch.bool)))
    with pytest.raises(ValueError, match="exclude"):
        landscape.distinct_maxima(deltas, exclude=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="exclude"):
        landscape.distinct_maxima(deltas, exclude=torch.ones(5))
    flat = torch.tensor([[True, False], [True, True], [False, False], [True, False]])
    torch.testing.assert_close(landscape.flat_fraction(flat), torch.tensor([0.75, 0.25], dtype=F64))


def test_probe_restarts_marks_flat_restarts_and_distinct_maxima_ignores_them():
    """On a dead input every restart stays at its random start (ℓ constant): all flat, and R
    starts would otherwise count as R distinct 'maxima'; on a live input nothing is flat."""
    d, h = 4, 6
    g = _gen(10)
    net = _relu_net(d=d, h=h, k=2, seed=11)
    u = torch.randn(d, generator=g, dtype=F64)
    with torch.no_grad():
        net[0].weight.copy_(u.expand(h, d) * torch.linspace(0.5, 1.5, h, dtype=F64).unsqueeze(-1))
        net[0].bias.fill_(-1.0)
    uu = u / torch.linalg.vector_norm(u)
    x = torch.stack([-5 * uu, 5 * uu])
    y = torch.tensor([0, 1])
    R = 6
    pr = landscape.probe_restarts(net, x, y, loss="quadratic", eps=0.5, restarts=R, steps=60, step_size=0.05,
                                  tol=1e-9, generator=_gen(12))
    assert pr.flat.shape == (R, 2)
    assert pr.flat[:, 0].all() and not pr.flat[:, 1].any()
    assert torch.equal(pr.constant, pr.flat)
    assert pr.is_local_max[:, 0].all()  # the certificate passes trivially where ℓ is constant
    assert landscape.distinct_maxima(pr.deltas[:, 0]) == R  # the artefact without the mask
    assert math.isnan(landscape.distinct_maxima(pr.deltas[:, 0], exclude=pr.flat[:, 0]))
    assert landscape.distinct_maxima(pr.deltas[:, 1], exclude=pr.flat[:, 1]) == landscape.distinct_maxima(pr.deltas[:, 1])
    again = landscape.probe_restarts(net, x, y, loss="quadratic", eps=0.5, restarts=R, steps=60, step_size=0.05,
                                     tol=1e-9, generator=_gen(12))
    assert torch.equal(again.flat, pr.flat) and torch.equal(again.deltas, pr.deltas)


# ---- claim E2 ------------------------------------------------------------------------------
def _final_table(flat_share_16: float, seeds=(0, 1, 2), n_inputs=10, restarts=4, seed=0) -> pd.DataFrame:
    """Every non-flat certified maximum on the sphere; at scale 16 a share of the restarts ends
    flat, inside the ball (not on the sphere) and certified (local_max = True)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in (1.0, 16.0):
        for k in seeds:
            for i in range(n_inputs):
                for r in range(restarts):
                    flat = s == 16.0 and rng.random() < flat_share_16
                    rows.append({"scale": s, "seed": k, "checkpoint": 1, "input": i, "restart": r, "converged": True,
                                 "iterations": 0 if flat else 20, "on_sphere": not flat, "local_max": True,
                                 "flat": flat, "constant": flat and r % 2 == 0, "initial_loss": 0.5, "final_loss": 0.5 if flat else 0.7,
                                 "norm_ratio": 0.4 if flat else 1.0})
    return pd.DataFrame(rows)


def test_e2_counts_only_non_flat_maxima():
    df = _final_table(0.5)
    n_flat = int(df["flat"].sum())
    assert 0 < n_flat < (df["scale"] == 16).sum()
    e = claims.claim_on_sphere(df, None, RULES)
    assert e["verdict"] == claims.SUPPORTED and e["value"] == 1.0
    assert e["details"]["dataset_left_out"] == n_flat and e["details"]["leave_out"] == "flat"
    assert e["details"]["dataset_maxima"] == len(df) - n_flat
    g16 = next(g for g in e["details"]["groups"] if g["group"].startswith("scale 16"))
    assert g16["flat_excluded"] == n_flat and g16["n_obs"] == (df["scale"] == 16).sum() - n_flat
    assert "flat" in e["statistic"] and "Flat maxima" in e["rule"]
    # the same table without the flag: the flat interior points drag scale 16 down to its on-sphere share
    old = claims.claim_on_sphere(df.drop(columns="flat"), None, RULES)
    expect = df.loc[df["scale"] == 16, "on_sphere"].mean()
    assert old["verdict"] == claims.NOT_SUPPORTED and old["value"] == pytest.approx(expect)
    assert old["details"]["dataset_left_out"] == 0 and "dataset_left_out_note" in old["details"]
    # a group whose certified maxima are all flat says nothing: inconclusive, and so is the claim
    allflat = claims.claim_on_sphere(_final_table(1.0), None, RULES)
    g16 = next(g for g in allflat["details"]["groups"] if g["group"].startswith("scale 16"))
    assert g16["n_obs"] == 0 and g16["verdict"] == claims.INCONCLUSIVE and g16["flat_excluded"] == 120
    assert allflat["verdict"] == claims.SUPPORTED  # the scale-1 group alone (min_supported_groups 0.5)
    # "True"/"False" strings (a CSV round trip) read the same
    rt = claims.claim_on_sphere(df.astype({"flat": str, "local_max": str, "on_sphere": str}), None, RULES)
    assert rt["value"] == e["value"] and rt["details"]["dataset_left_out"] == n_flat


def test_e2_leave_out_is_a_config_choice_and_every_choice_is_reported():
    """claims.e2_leave_out: flat (default), constant (exactly constant only) or none; the entry's
    sensitivity gives the value and verdict under all three, the configured one equal to the entry."""
    df = _final_table(0.5)
    n_flat, n_const = int(df["flat"].sum()), int(df["constant"].sum())
    assert 0 < n_const < n_flat
    on16 = lambda keep: df.loc[(df["scale"] == 16) & keep, "on_sphere"].mean()  # noqa: E731
    for choice, left, value in [("flat", n_flat, 1.0), ("constant", n_const, on16(~df["constant"])),
                                ("none", 0, on16(df["scale"] == 16))]:
        e = claims.claim_on_sphere(df, None, {**RULES, "e2_leave_out": choice})
        assert e["details"]["leave_out"] == choice and e["details"]["dataset_left_out"] == left
        assert e["value"] == pytest.approx(value)
        sens = e["details"]["sensitivity"]
        assert list(sens) == ["flat", "constant", "none"]
        assert sens[choice] == {"value": e["value"], "interval": e["interval"], "verdict": e["verdict"],
                                "left_out": left}
        assert sens["flat"]["value"] == 1.0 and sens["none"]["value"] == pytest.approx(on16(df["scale"] == 16))
        assert ("constant = False" in e["statistic"]) == (choice == "constant")
    md = claims.render_markdown([{**e, "id": "E2", "paper_location": "ext", "paper_evidence": "none",
                                  "claim": "c", "runs": {"count": 1, "unit": "u", "tables": ["t"]}}], "x", RULES)
    assert "Sensitivity:" in md and "| flat |" in md and "| none |" in md
    with pytest.raises(ValueError, match="e2_leave_out"):
        claims.claim_on_sphere(df, None, {**RULES, "e2_leave_out": "some"})


# ---- ext_theory: no converged restart → NaN ------------------------------------------------
def test_theory_distinct_maxima_nan_without_a_converged_restart_and_t4_reads_it():
    kw = dict(dims=[2], width_powers=[2.5], scales=[1.0], eps_factor=1.0, eta_fractions=[0.8], trials=2,
              max_steps=200, refine_factor=2.0, refine_tol=0.05, maxima_dims=[2], maxima_ratios=[0.01, 3.0],
              maxima_trials=3, maxima_restarts=4, maxima_steps=40, maxima_step=0.1, maxima_tol=1e-3,
              maxima_merge=0.05, contrast_activation=None)
    none = theory.theory_run(**{**kw, "maxima_steps": 1, "maxima_tol": 1e-12})["maxima"]  # nothing converges
    assert none and all(r["converged"] == 0 and math.isnan(r["distinct_maxima"]) for r in none)
    rows = theory.theory_run(**{**kw, "maxima_steps": 200})["maxima"]
    conv = [r for r in rows if r["converged"] > 0]
    assert conv and all(isinstance(r["distinct_maxima"], int) and r["distinct_maxima"] >= 1 for r in conv)
    # T4 on a table with NaN counts: the same verdict and numbers as with those rows dropped
    mx = pd.DataFrame(rows + [{**r, "trial": r["trial"] + 100} for r in none])
    assert (mx["distinct_maxima"].isna() == (mx["converged"] == 0)).all() and mx["distinct_maxima"].isna().sum() >= len(none)
    a = claims.claim_t4_single_maximum(mx, None, RULES)
    b = claims.claim_t4_single_maximum(mx[mx["converged"] > 0], None, RULES)
    assert a["verdict"] == b["verdict"] and a["value"] == b["value"]
    assert [g["n_obs"] for g in a["details"]["groups"]] == [g["n_obs"] for g in b["details"]["groups"]]
    rho_a = [t["rho_eps_distinct"] for t in a["details"]["thresholds"]]
    rho_b = [t["rho_eps_distinct"] for t in b["details"]["thresholds"]]
    assert np.allclose(rho_a, rho_b, equal_nan=True)
