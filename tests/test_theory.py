"""Theorem 3.1's setting (adversary_dynamics.figures.theory): the closed-form gradient against autograd,
the constrained-Hessian test on hand-built saddles and maxima, PGA's first hit of the sphere
against an independent loop, restart clustering, the slope and threshold estimators, and the
whole sweep (rows, determinism, the theorem's regime)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adversary_dynamics import stats
from adversary_dynamics.figures import theory
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def _net(d=4, m=32, T=3, activation="softplus", seed=0):
    g = torch.Generator().manual_seed(seed)
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=1, activation=activation, ensemble=(T,), generator=g, dtype=F64)
    x = torch.randn(T, d, generator=g, dtype=F64)
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.tensor([1.0, -1.0, 1.0][:T], dtype=F64)
    return net, net.W.detach(), net.A.detach()[..., 0, :], x, y, g


# ---- the setting ---------------------------------------------------------------------------
def test_widths_and_eps_follow_the_theorem():
    assert [theory.width_for(d, 2.5) for d in (2, 4, 8, 16)] == [6, 32, 182, 1024]
    assert [theory.width_for(d, 1.5) for d in (2, 4, 16)] == [3, 8, 64]
    assert theory.theorem_eps(1024, eps_factor=1.0) == pytest.approx(1 / math.log(1024) ** 2)
    with pytest.raises(ValueError, match="m must be >= 2"):
        theory.theorem_eps(1, eps_factor=1.0)
    with pytest.raises(ValueError, match="power"):
        theory.width_for(4, 0)
    st = theory.theory_settings(dims=[4], width_powers=[2.5, 1.5], contrast_activation="relu")
    assert [(s["activation"], s["m"], s["regime"]) for s in st] == [
        ("softplus", 32, "theorem"), ("softplus", 8, "below"), ("relu", 32, "theorem")]
    with pytest.raises(ValueError, match="contrast_activation"):
        theory.theory_settings(dims=[4], width_powers=[2.5], contrast_activation="gelu")


@pytest.mark.parametrize("activation", ["softplus", "relu"])
def test_loss_and_grad_match_the_model_and_autograd(activation):
    from torch.func import grad, vmap

    net, W, a, x, y, g = _net(activation=activation)
    delta = 0.1 * torch.randn(3, 5, 4, generator=g, dtype=F64)
    loss, gr = theory.loss_and_grad(W, a, x, y, delta, activation=activation)
    f = net(x.unsqueeze(1) + delta)[..., 0]  # the library model
    torch.testing.assert_close(loss, (y.unsqueeze(1) - f) ** 2)
    fn = theory.pointwise_loss(activation)
    flat = lambda t: t.unsqueeze(1).expand(3, 5, *t.shape[1:]).reshape(15, *t.shape[1:])  # noqa: E731
    ref = vmap(grad(fn))(delta.reshape(15, 4), flat(W), flat(a), flat(x), flat(y))
    torch.testing.assert_close(gr.reshape(15, 4), ref)


# ---- T3: the constrained Hessian ----------------------------------------------------------------
def _quadratic(delta, A):
    return delta @ A @ delta


def test_constrained_hessian_finds_a_known_saddle_maximum_and_minimum():
    """ℓ = δᵀAδ, A = diag(3, 2, 1) on the sphere of radius 0.5: ±e1 are maxima, ±e2 saddles, ±e3
    minima; with g = 2Aδ, μ = 2·a_i at ε e_i and the tangent eigenvalues are 2a_j − 2a_i (j ≠ i)."""
    A = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=F64))
    eps = 0.5
    pts = eps * torch.eye(3, dtype=F64)
    pts = torch.cat([pts, -pts])
    res = theory.constrained_hessian_eigenvalues(_quadratic, pts, A.expand(6, 3, 3), eps=eps)
    assert theory.classify_eigenvalues(res["eigenvalues"]) == ["maximum", "saddle", "minimum"] * 2
    expected = torch.tensor([[-4.0, -2.0], [-2.0, 2.0], [2.0, 4.0]], dtype=F64).repeat(2, 1)
    torch.testing.assert_close(res["eigenvalues"], expected)
    torch.testing.assert_close(res["multiplier"], torch.tensor([6.0, 4.0, 2.0] * 2, dtype=F64))
    assert res["tangent_grad"].abs().max() < 1e-12
    # a point that is not critical has a tangent gradient
    p = torch.tensor([[0.3, 0.4, 0.0]], dtype=F64)
    assert theory.constrained_hessian_eigenvalues(_quadratic, p, A[None], eps=0.5)["tangent_grad"][0] > 0.1
    with pytest.raises(ValueError, match="non-zero"):
        theory.constrained_hessian_eigenvalues(_quadratic, torch.zeros(1, 3, dtype=F64), A[None], eps=0.5)


def test_constrained_hessian_at_a_converged_pga_point_is_a_maximum():
    """On the network's loss: where PGA (constant step, many steps) converged, the tangent
    gradient vanishes and the constrained Hessian is negative definite; the same point run
    through descent (a minimum on the sphere) is positive definite."""
    net, W, a, x, y, g = _net(d=4, m=32)
    eps = theory.theorem_eps(32, eps_factor=1.0)
    out = {}
    for sign in (1.0, -1.0):
        delta = torch.zeros(3, 1, 4, dtype=F64) + 1e-3
        for _ in range(3000):
            _, gr = theory.loss_and_grad(W, a, x, y, delta, activation="softplus")
            new = delta + sign * 0.5 * eps**2 * gr
            delta = new * torch.clamp(eps / new.norm(dim=-1, keepdim=True), max=1.0)
        out[sign] = theory.constrained_hessian_eigenvalues(theory.pointwise_loss("softplus"), delta[:, 0], W, a, x, y,
                                                           eps=eps)
    assert out[1.0]["tangent_grad"].max() < 1e-8 and out[-1.0]["tangent_grad"].max() < 1e-8
    assert theory.classify_eigenvalues(out[1.0]["eigenvalues"]) == ["maximum"] * 3
    assert theory.classify_eigenvalues(out[-1.0]["eigenvalues"]) == ["minimum"] * 3


def test_classify_eigenvalues():
    ev = torch.tensor([[-2.0, -1.0], [-1.0, 1.0], [1.0, 2.0], [-1.0, 0.0]])
    assert theory.classify_eigenvalues(ev) == ["maximum", "saddle", "minimum", "degenerate"]


# ---- T1/T2: PGA to the sphere ---------------------------------------------------------------
def test_pga_to_sphere_first_hit_matches_an_independent_loop():
    net, W, a, x, y, g = _net(d=4, m=32)
    eps = theory.theorem_eps(32, eps_factor=1.0)
    eta = torch.tensor([0.8, 0.2], dtype=F64) * eps**2
    d0 = 0.3 * eps * torch.randn(3, 1, 4, generator=g, dtype=F64).expand(3, 2, 4).contiguous()
    d0 = d0 * (0.3 * eps / d0.norm(dim=-1, keepdim=True))
    out = theory.pga_to_sphere(W, a, x, y, d0, eps=eps, eta=eta, activation="softplus", max_steps=3000,
                               refine_factor=2.0, refine_tol=0.05)
    assert out["reached"].all() and out["on_sphere"].all()
    assert (out["iterations"][:, 1] > 2 * out["iterations"][:, 0]).all()  # 4x smaller step: many more steps
    assert (out["min_rate"] > 0).all() and (out["interior_steps"] > 0).all()
    # independent numpy loop for every run: the first t on the sphere with tangent gradient <= eta^(1/2)
    Wn, an, xn, yn = W.numpy(), a.numpy(), x.numpy(), y.numpy()
    for j in range(3):
        for k in range(2):
            dl, e = d0[j, k].numpy().copy(), float(eta[k])
            rates = []
            prev = None
            for t in range(3000):
                h = Wn[j] @ (xn[j] + dl)
                f = an[j] @ np.logaddexp(0, h)
                loss = (yn[j] - f) ** 2
                gr = -2 * (yn[j] - f) * (Wn[j].T @ (an[j] / (1 + np.exp(-h))))
                if prev is not None and prev[1]:
                    rates.append((loss - prev[0]) / e)
                n = np.linalg.norm(dl)
                tg = np.linalg.norm(gr - (gr @ dl) * dl / n**2)
                if n >= eps * (1 - 1e-9) and tg <= math.sqrt(e):
                    break
                new = dl + e * gr
                inside = np.linalg.norm(new) < eps
                dl = new * min(1.0, eps / np.linalg.norm(new))
                prev = (loss, inside)
            assert int(out["iterations"][j, k]) == t
            assert float(out["min_rate"][j, k]) == pytest.approx(min(rates), rel=1e-6)
    # the refined point is closer to criticality than the hit point, and the distance is small
    assert (out["tangent_grad_final"] < out["tangent_grad_hit"]).all()
    assert (out["distance"] < 0.5 * eps).all()


def test_pga_to_sphere_censors_at_the_budget():
    net, W, a, x, y, g = _net()
    eps = 0.01
    d0 = torch.zeros(3, 1, 4, dtype=F64)
    out = theory.pga_to_sphere(W, a, x, y, d0, eps=eps, eta=torch.tensor([1e-9], dtype=F64), activation="softplus",
                               max_steps=5, refine_factor=1.0, refine_tol=0.05)
    assert not out["reached"].any() and (out["iterations"] == 5).all() and out["distance"].isnan().all()
    with pytest.raises(ValueError, match="max_steps"):
        theory.pga_to_sphere(W, a, x, y, d0, eps=eps, eta=torch.tensor([1e-3]), activation="softplus",
                             max_steps=0, refine_factor=1.0, refine_tol=0.05)


# ---- T4: distinct maxima --------------------------------------------------------------------
def test_count_distinct_clusters():
    pts = torch.tensor([[[0.0, 0.0], [0.01, 0.0], [1.0, 0.0], [1.0, 0.02], [5.0, 5.0]]], dtype=F64)
    valid = torch.tensor([[True, True, True, True, False]])
    assert theory.count_distinct(pts, valid, radius=0.05).tolist() == [2]
    assert theory.count_distinct(pts, torch.ones_like(valid), radius=0.05).tolist() == [3]
    # a chain 0 - 0.04 - 0.08 is one component at radius 0.05
    chain = torch.tensor([[[0.0, 0.0], [0.04, 0.0], [0.08, 0.0]]], dtype=F64)
    assert theory.count_distinct(chain, torch.ones(1, 3, dtype=torch.bool), radius=0.05).tolist() == [1]


def test_count_maxima_single_at_small_eps():
    net, W, a, x, y, g = _net(d=2, m=6)
    res = theory.count_maxima(W, a, x, y, eps=torch.tensor([0.01, 0.02], dtype=F64), restarts=8, steps=150,
                              step=0.1, tol=1e-3, merge=0.05, activation="softplus", generator=g)
    assert (res["converged"] == 8).all() and (res["distinct"] == 1).all() and (res["on_sphere"] == 8).all()


# ---- estimators -----------------------------------------------------------------------------
def test_power_law_slope_recovers_a_planted_exponent():
    """The ext_theory figure's slopes (stats.power_law_slope, T1's estimator; was theory.fit_power_law)."""
    rng = np.random.default_rng(0)
    eta = np.tile([0.1, 0.05, 0.025, 0.0125], 20)
    unit = np.repeat(np.arange(20), 4)
    y = np.exp(rng.normal(0, 1, 20))[unit] * eta ** -1.3 * np.exp(rng.normal(0, 0.02, 80))
    assert stats.power_law_slope(eta, y, unit)[0] == pytest.approx(-1.3, abs=0.03)
    assert math.isnan(stats.power_law_slope([1.0, 1.0], [2.0, 3.0])[0])


def test_estimate_threshold():
    eps = [0.01, 0.1, 1.0, 10.0]
    assert stats.estimate_threshold(eps, [1.0, 0.9, 0.3, 0.0]) == pytest.approx(math.sqrt(0.1))
    assert stats.estimate_threshold(eps, [1.0, 1.0, 1.0, 1.0]) == 10.0
    assert math.isnan(stats.estimate_threshold(eps, [0.2, 1.0, 1.0, 1.0]))


# ---- the sweep -------------------------------------------------------------------------------
KW = dict(dims=[2, 4], width_powers=[2.5, 1.5], scales=[1.0], eps_factor=1.0, eta_fractions=[0.8, 0.4], trials=4,
          max_steps=800, refine_factor=2.0, refine_tol=0.05, maxima_dims=[2], maxima_ratios=[0.01, 3.0],
          maxima_trials=3, maxima_restarts=6, maxima_steps=60, maxima_step=0.1, maxima_tol=1e-3, maxima_merge=0.05)


def test_theory_run_tables_and_determinism():
    out = theory.theory_run(**KW, seed=0)
    runs, hess, mx = out["pga"], out["hessian"], out["maxima"]
    assert len(runs) == 2 * 3 * 2 * 4  # d x (2 softplus widths + relu) x eta x trials
    assert {r["regime"] for r in runs if r["activation"] == "relu"} == {"theorem"}
    for r in runs:
        assert r["eta"] == pytest.approx(r["eta_over_eps2"] * r["eps"] ** 2) and r["eta"] < r["eps"] ** 2
        assert r["eps"] == pytest.approx(1 / math.log(r["m"]) ** 2)
        assert isinstance(r["reached"], bool) and isinstance(r["iterations"], int)
    sp = [r for r in runs if r["activation"] == "softplus"]
    assert all(r["reached"] and r["on_sphere"] for r in sp)
    sph = [h for h in hess if h["activation"] == "softplus"]
    assert all(h["kind"] == {"ascent": "maximum", "descent": "minimum"}[h["point"]] for h in sph)
    assert {h["point"] for h in sph} == {"ascent", "descent"}
    assert len(mx) == 3 * 3 * 2 and {m["d"] for m in mx} == {2}
    import pandas as pd

    again = theory.theory_run(**KW, seed=0)  # bit-identical (NaN-aware comparison)
    assert all(pd.DataFrame(out[k]).equals(pd.DataFrame(again[k])) for k in out)
    assert not pd.DataFrame(out["pga"]).equals(pd.DataFrame(theory.theory_run(**KW, seed=1)["pga"]))
    with pytest.raises(ValueError, match="eta_fractions"):
        theory.theory_run(**{**KW, "eta_fractions": [1.5]})
