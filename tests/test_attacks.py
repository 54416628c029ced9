"""PGA, projections, initialisations, analytic input gradients and the local-max certificate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adversary_dynamics.learning import losses
from adversary_dynamics.attack import two_layer
from adversary_dynamics.attack import input_gradient, local_max_certificate, pga, project, random_init
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Linear(nn.Module):
    """F(x) = wᵀx, one output."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x @ self.w).unsqueeze(-1)


class Wrapped(nn.Module):
    """A TwoLayerNet hidden behind a plain module, so attacks take the generic autograd path."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _custom(out, y):
    return torch.cosh(0.3 * out).sum(-1) + out[..., 0] * y.to(out.dtype) + torch.logsumexp(out, -1) ** 2


def _labels(K, shape, gen, dtype=F64):
    if K == 1:
        return torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(dtype)
    return torch.randint(0, K, shape, generator=gen)


def _net(d=9, m=13, K=10, activation="relu", bias=False, ensemble=(), seed=0, dtype=F64):
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=K, activation=activation, bias=bias, ensemble=ensemble,
                      generator=_gen(seed), dtype=dtype)
    if bias:
        with torch.no_grad():
            net.b.normal_(generator=_gen(seed + 100))
    return net


def _autograd_reference(model, x, y, loss):
    xa = x.clone().requires_grad_(True)
    y = y.expand(x.shape[:-1])
    ell = losses.get_loss(loss)(model(xa), y)
    (g,) = torch.autograd.grad(ell.sum(), xa)
    return ell.detach(), g


# ----------------------------------------------------------------------------- input gradients


@pytest.mark.parametrize("activation", ["relu", "softplus", "tanh"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss,K", [("quadratic", 10), ("quadratic", 1), ("cross_entropy", 10), (_custom, 10),
                                    (_custom, 1)], ids=["quad10", "quad1", "ce10", "custom10", "custom1"])
@pytest.mark.parametrize("batch", [(7,), (3, 5)], ids=["N", "RxN"])
def test_input_gradient_matches_autograd(activation, bias, loss, K, batch):
    gen = _gen(1)
    net = _net(K=K, activation=activation, bias=bias)
    x = torch.randn(*batch, 9, generator=gen, dtype=F64)
    y = _labels(K, batch[-1:], gen)  # labels per input, broadcast over leading (restart) dims
    ell, g = input_gradient(net, x, y, loss=loss)
    ref_ell, ref_g = _autograd_reference(net, x, y, loss)
    assert ell.shape == batch and g.shape == x.shape
    torch.testing.assert_close(ell, ref_ell, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, ref_g, rtol=1e-10, atol=1e-12)
    # the generic path (any nn.Module) agrees as well
    ell2, g2 = input_gradient(Wrapped(net), x, y, loss=loss)
    torch.testing.assert_close(g2, ref_g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss,K", [("quadratic", 1), ("cross_entropy", 10)], ids=["quad1", "ce10"])
def test_input_gradient_ensemble_matches_autograd(activation, bias, loss, K):
    gen = _gen(2)
    E, n, d = 4, 6, 9
    net = _net(K=K, activation=activation, bias=bias, ensemble=(E,))
    x = torch.randn(E, n, d, generator=gen, dtype=F64)
    y = _labels(K, (E, n), gen)
    ell, g = input_gradient(net, x, y, loss=loss)
    ref_ell, ref_g = _autograd_reference(net, x, y, loss)
    assert ell.shape == (E, n) and g.shape == x.shape
    torch.testing.assert_close(ell, ref_ell, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, ref_g, rtol=1e-10, atol=1e-12)


def test_input_gradient_does_not_alias_buffers():
    net = _net()
    x = torch.randn(5, 9, generator=_gen(3), dtype=F64)
    y = torch.arange(5)
    _, g1 = input_gradient(net, x, y)
    g1_copy = g1.clone()
    input_gradient(net, x * 2, y)
    assert torch.equal(g1, g1_copy)


# ----------------------------------------------------------------------------- projections


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_projection_lands_in_set_is_identity_inside_and_idempotent(norm):
    gen = _gen(4)
    eps = 0.7
    big = torch.randn(50, 6, generator=gen, dtype=F64) * 3
    p = project(big, eps=eps, norm=norm)
    if norm == "l2":
        n = torch.linalg.vector_norm(p, dim=-1)
        assert bool((n <= eps * (1 + 1e-12)).all())
        outside = torch.linalg.vector_norm(big, dim=-1) > eps
        assert bool(outside.any())
        # the closed form of the Euclidean projection onto the ball: ε δ/‖δ‖ outside
        expected = eps * big / torch.linalg.vector_norm(big, dim=-1, keepdim=True)
        torch.testing.assert_close(p[outside], expected[outside], rtol=1e-12, atol=1e-12)
        inside_pts = big / torch.linalg.vector_norm(big, dim=-1, keepdim=True) * eps * torch.rand(50, 1, generator=gen,
                                                                                                   dtype=F64)
    else:
        assert bool((p.abs() <= eps).all())
        torch.testing.assert_close(p, big.clamp(-eps, eps), rtol=0, atol=0)
        inside_pts = (torch.rand(50, 6, generator=gen, dtype=F64) * 2 - 1) * eps
    assert torch.equal(project(inside_pts, eps=eps, norm=norm), inside_pts)
    torch.testing.assert_close(project(p, eps=eps, norm=norm), p, rtol=1e-14, atol=1e-15)
    assert project(big, eps=eps, norm=norm) is not big


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_projection_per_example_eps(norm):
    gen = _gen(5)
    eps = torch.tensor([0.1, 1.0, 50.0], dtype=F64)
    delta = torch.randn(4, 3, 8, generator=gen, dtype=F64) * 2  # (R, N, d), eps broadcasts over R
    p = project(delta, eps=eps, norm=norm)
    if norm == "l2":
        n = torch.linalg.vector_norm(p, dim=-1)
        assert bool((n <= eps * (1 + 1e-12)).all())
        # tiny radius: every row is on its sphere; huge radius: nothing moves
        torch.testing.assert_close(n[:, 0], torch.full((4,), 0.1, dtype=F64))
        assert torch.equal(p[:, 2], delta[:, 2])
    else:
        assert bool((p.abs() <= eps.view(1, 3, 1)).all())
        torch.testing.assert_close(p, torch.maximum(torch.minimum(delta, eps.view(1, 3, 1)), -eps.view(1, 3, 1)))
    with pytest.raises(ValueError):
        project(delta, eps=0.0, norm=norm)
    with pytest.raises(ValueError):
        project(delta, eps=1.0, norm="l1")


# ----------------------------------------------------------------------------- initialisations


@pytest.mark.parametrize("norm,init", [("l2", "zero"), ("l2", "uniform_ball"), ("l2", "uniform_sphere"),
                                       ("linf", "zero"), ("linf", "uniform_ball")])
def test_random_init_lands_in_the_set(norm, init):
    eps = torch.tensor([0.5, 2.0], dtype=F64)
    d0 = random_init((100, 2, 7), eps=eps, norm=norm, init=init, generator=_gen(6), dtype=F64)
    assert d0.shape == (100, 2, 7) and d0.dtype == F64
    if init == "zero":
        assert torch.equal(d0, torch.zeros_like(d0))
        return
    assert bool((d0 != 0).any())
    if norm == "l2":
        n = torch.linalg.vector_norm(d0, dim=-1)
        assert bool((n <= eps * (1 + 1e-12)).all())
        if init == "uniform_sphere":
            torch.testing.assert_close(n, eps.expand(100, 2), rtol=1e-12, atol=0)
        else:
            assert bool((n < eps * 0.999).any())
    else:
        assert bool((d0.abs() <= eps.view(1, 2, 1)).all())


def test_uniform_ball_radius_distribution():
    """Uniform in the d-ball: (‖δ‖/ε)^d is U(0, 1); directions have mean zero."""
    d, n = 3, 20000
    d0 = random_init((n, d), eps=2.0, norm="l2", init="uniform_ball", generator=_gen(7), dtype=F64)
    u = (torch.linalg.vector_norm(d0, dim=-1) / 2.0) ** d
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert abs(float((u < 0.25).double().mean()) - 0.25) < 0.015
    assert float((d0 / torch.linalg.vector_norm(d0, dim=-1, keepdim=True)).mean(0).abs().max()) < 0.03
    # linf: each coordinate U(−ε, ε)
    b = random_init((n, d), eps=2.0, norm="linf", init="uniform_ball", generator=_gen(7), dtype=F64)
    assert abs(float(b.abs().mean()) - 1.0) < 0.02


def test_random_init_invalid_combinations():
    with pytest.raises(ValueError, match="uniform_sphere"):
        random_init((3, 4), eps=1.0, norm="linf", init="uniform_sphere")
    with pytest.raises(ValueError):
        random_init((3, 4), eps=1.0, norm="l2", init="gaussian")
    with pytest.raises(ValueError):
        random_init((3, 4), eps=-1.0, norm="l2", init="zero")


# ----------------------------------------------------------------------------- PGA on a linear model


def _linear_problem(d=6, signs=(1.0, -1.0, 1.0, -1.0), seed=8):
    gen = _gen(seed)
    w = torch.randn(d, generator=gen, dtype=F64)
    x = torch.randn(len(signs), d, generator=gen, dtype=F64)
    r = torch.tensor(signs, dtype=F64) * torch.linspace(0.5, 2.0, len(signs), dtype=F64)
    y = x @ w - r  # residual wᵀx − y = r, with the given signs
    return Linear(w), w, x, y, r


@pytest.mark.parametrize("gradient,step_size,steps", [("raw", 0.05, 300), ("normalized", 0.1, 60)])
def test_pga_reaches_closed_form_maximiser_on_linear_model(gradient, step_size, steps):
    model, w, x, y, r = _linear_problem()
    eps = 0.8
    res = pga(model, x, y, loss="quadratic", eps=eps, steps=steps, step_size=step_size, gradient=gradient)
    # max_{‖δ‖≤ε} ½(r + wᵀδ)² is attained at δ* = sign(r) ε w/‖w‖
    star = torch.sign(r).unsqueeze(-1) * eps * w / torch.linalg.vector_norm(w)
    torch.testing.assert_close(res.delta, star, rtol=0, atol=1e-10)
    torch.testing.assert_close(res.losses[-1], 0.5 * (r.abs() + eps * torch.linalg.vector_norm(w)) ** 2,
                               rtol=1e-12, atol=0)
    torch.testing.assert_close(res.norm_ratio[-1], torch.ones(4, dtype=F64), rtol=1e-12, atol=0)
    # on the maximiser the gradient is radial: no tangent component (up to the cancellation in
    # sqrt(‖g‖² − (g·u)²), about sqrt(machine eps) relative)
    assert float(res.tangent_grad_norm[-1].max()) < 1e-6 * float(res.grad_norm[-1].min())
    # losses never decrease along the way (a monotone ascent here)
    assert bool((res.losses[1:] >= res.losses[:-1] - 1e-12).all())


def test_pga_linf_on_linear_model_reaches_box_corner():
    model, w, x, y, r = _linear_problem()
    eps = 0.3
    res = pga(model, x, y, loss="quadratic", eps=eps, norm="linf", steps=40, step_size=0.05, gradient="sign")
    # max over the box of ½(r + wᵀδ)²: δ* = sign(r) ε sign(w)
    star = torch.sign(r).unsqueeze(-1) * eps * torch.sign(w)
    torch.testing.assert_close(res.delta, star, rtol=0, atol=1e-12)
    assert res.tangent_grad_norm is None
    # linf: norm_ratio = ‖δ_t‖_∞/ε (issue 19: None made the README's idiom fail for linf)
    assert res.norm_ratio.shape == res.losses.shape
    torch.testing.assert_close(res.norm_ratio[-1], res.delta.abs().amax(-1) / eps, rtol=0, atol=0)


def _fast_vs_generic(dtype, norm, gradient, clamp, loss, init, tol_kwargs):
    gen = _gen(9)
    net = _net(d=12, m=20, K=10, activation="tanh", bias=True, dtype=dtype)
    x = torch.rand(3, 8, 12, generator=gen, dtype=F64).to(dtype)  # (R, N, d) in [0, 1]
    y = torch.randint(0, 10, (8,), generator=gen)
    kw = dict(loss=loss, eps=0.6, norm=norm, steps=25, step_size=0.15, gradient=gradient, clamp=clamp, init=init)
    fast = pga(net, x, y, generator=_gen(10), **kw, **tol_kwargs)
    slow = pga(Wrapped(net), x, y, generator=_gen(10), **kw, **tol_kwargs)
    return fast, slow


@pytest.mark.parametrize("norm,gradient", [("l2", "raw"), ("l2", "normalized"), ("l2", "sign"), ("linf", "sign"),
                                           ("linf", "raw")])
@pytest.mark.parametrize("clamp", [None, (0.0, 1.0)])
@pytest.mark.parametrize("loss", ["cross_entropy", "quadratic"])
def test_pga_fast_path_matches_generic_autograd_path(norm, gradient, clamp, loss):
    fast, slow = _fast_vs_generic(F64, norm, gradient, clamp, loss, "uniform_ball", {})
    assert fast.losses.shape == (26, 3, 8)
    torch.testing.assert_close(fast.delta, slow.delta, rtol=0, atol=1e-9)
    torch.testing.assert_close(fast.losses, slow.losses, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fast.grad_norm, slow.grad_norm, rtol=1e-9, atol=1e-9)
    if norm == "l2":
        torch.testing.assert_close(fast.norm_ratio, slow.norm_ratio, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(fast.tangent_grad_norm, slow.tangent_grad_norm, rtol=1e-7, atol=1e-7)
    assert bool((fast.losses[-1] > fast.losses[0]).any())  # the attack did something


@pytest.mark.parametrize("gradient", ["raw", "normalized"])
def test_pga_fast_path_matches_generic_float32(gradient):
    fast, slow = _fast_vs_generic(torch.float32, "l2", gradient, None, "cross_entropy", "zero", {})
    assert float((fast.delta - slow.delta).abs().max()) < 1e-5
    assert float((fast.losses - slow.losses).abs().max()) < 1e-5


def test_pga_fast_path_matches_generic_with_tol():
    fast, slow = _fast_vs_generic(F64, "l2", "raw", None, "quadratic", "uniform_ball", dict(tol=1e-3, patience=3,
                                                                                            check_every=5))
    assert torch.equal(fast.converged_at, slow.converged_at)
    assert fast.steps_run == slow.steps_run
    torch.testing.assert_close(fast.delta, slow.delta, rtol=0, atol=1e-9)


@pytest.mark.parametrize("activation,bias", [("relu", False), ("relu", True), ("softplus", True)])
@pytest.mark.parametrize("gradient", ["raw", "normalized"])
@pytest.mark.parametrize("init", ["zero", "uniform_ball"])
@pytest.mark.parametrize("m,loss,ensemble", [(6, "quadratic", ()), (20, "cross_entropy", ()), (20, _custom, ()),
                                             (20, "quadratic", (4,))])
def test_pga_implicit_iterates_match_explicit(monkeypatch, activation, bias, gradient, init, m, loss, ensemble):
    """δ kept as α δ₀ + S W (m < 2d) gives the explicit update's results; 40 steps cross the resyncs."""
    d = 12
    net = _net(d=d, m=m, K=10, activation=activation, bias=bias, ensemble=ensemble)
    gen = _gen(21)
    x = torch.rand(3, *ensemble, 7, d, generator=gen, dtype=F64)
    y = torch.randint(0, 10, (*ensemble, 7), generator=gen)
    eps = 0.6 + 0.4 * torch.rand(*ensemble, 7, generator=gen, dtype=F64)  # per-example radii
    kw = dict(loss=loss, eps=eps, steps=40, step_size=0.25 * eps, gradient=gradient, init=init, tol=1e-4,
              patience=5)
    monkeypatch.setattr(two_layer, "IMPLICIT_MODE", "always")
    made = []
    real = two_layer._ImplicitTwoLayer
    monkeypatch.setattr(two_layer, "_ImplicitTwoLayer", lambda *a: made.append(1) or real(*a))
    imp = pga(net, x, y, generator=_gen(22), **kw)
    assert made, "the implicit path was not taken"
    monkeypatch.setattr(two_layer, "IMPLICIT_MODE", "never")
    exp = pga(net, x, y, generator=_gen(22), **kw)
    assert len(made) == 1
    torch.testing.assert_close(imp.delta, exp.delta, rtol=0, atol=1e-10)
    for f in ("losses", "grad_norm", "norm_ratio"):
        torch.testing.assert_close(getattr(imp, f), getattr(exp, f), rtol=1e-8, atol=1e-9)
    # √(‖g‖² − (δ·g)²/‖δ‖²): where g ∥ δ (one active unit) both are √(rounding) ≈ 1e-7, not 0
    torch.testing.assert_close(imp.tangent_grad_norm, exp.tangent_grad_norm, rtol=1e-6, atol=1e-6)
    assert torch.equal(imp.converged_at, exp.converged_at)
    assert float(imp.norm_ratio.max()) <= 1 + 1e-9


def test_pga_implicit_float32_matches_explicit(monkeypatch):
    """MNIST-like float32 case over 200 steps: the coefficient form's rounding drift stays small."""
    d, m = 784, 128
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=10, generator=_gen(23))
    gen = _gen(24)
    x = torch.rand(64, d, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    kw = dict(loss="quadratic", eps=1.0, steps=200, step_size=0.05, gradient="raw", init="uniform_ball")
    assert two_layer._implicit_pays(net, 64, 200, True)  # chosen by the operation count, not forced
    imp = pga(net, x, y, generator=_gen(25), **kw)
    monkeypatch.setattr(two_layer, "IMPLICIT_MODE", "never")
    exp = pga(net, x, y, generator=_gen(25), **kw)
    assert float((imp.delta - exp.delta).abs().max()) < 1e-4
    assert float(((imp.losses - exp.losses).abs() / exp.losses.abs().clamp_min(1e-6)).max()) < 1e-4
    # the returned δ is in the ball and is the iterate whose loss was logged last
    assert float(torch.linalg.vector_norm(imp.delta, dim=-1).max()) <= 1.0 + 1e-5
    ell, _ = input_gradient(net, x + imp.delta, y)
    torch.testing.assert_close(ell, imp.losses[-1], rtol=1e-4, atol=1e-6)


def test_implicit_choice_counts_operations_and_caches_the_gram_matrix():
    net = TwoLayerNet(input_dim=784, width=1024, generator=_gen(26))
    # adversarial training's call (B = 128, 10 steps, random start, W new every minibatch): W Wᵀ
    # (m² d) eats the saving, explicit; once W Wᵀ is cached (evaluation, probes), coefficient form
    assert not two_layer._implicit_pays(net, 128, 10, True)
    assert two_layer._implicit_pays(net, 128, 200, True)
    G = two_layer._gram(net)
    assert two_layer._gram(net) is G and two_layer._implicit_pays(net, 128, 10, True)
    with torch.no_grad():
        net.W.mul_(2.0)  # an in-place update (as an optimiser step) invalidates the cache
    assert not two_layer._gram_cached(net)
    torch.testing.assert_close(two_layer._gram(net), 4.0 * G)
    wide = TwoLayerNet(input_dim=64, width=256, generator=_gen(27))  # m >= 2d: never pays
    two_layer._gram(wide)
    assert not two_layer._implicit_pays(wide, 1024, 1000, False)


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_pga_ensemble_equals_members(activation):
    E, n, d = 3, 5, 8
    ens = _net(d=d, m=16, K=1, activation=activation, bias=True, ensemble=(E,))
    gen = _gen(11)
    x = torch.randn(E, n, d, generator=gen, dtype=F64)
    y = _labels(1, (E, n), gen)
    eps = torch.rand(E, n, generator=gen, dtype=F64) + 0.2
    res = pga(ens, x, y, eps=eps, steps=30, step_size=0.1 * eps, gradient="raw", init="zero")
    for e in range(E):
        single = TwoLayerNet(input_dim=d, width=16, n_outputs=1, activation=activation, bias=True, dtype=F64)
        with torch.no_grad():
            single.W.copy_(ens.W[e]); single.A.copy_(ens.A[e]); single.b.copy_(ens.b[e])
        r = pga(single, x[e], y[e], eps=eps[e], steps=30, step_size=0.1 * eps[e], gradient="raw", init="zero")
        torch.testing.assert_close(res.delta[e], r.delta, rtol=0, atol=1e-10)
        torch.testing.assert_close(res.losses[:, e], r.losses, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- PGAResult


def test_pga_result_shapes_and_consistency():
    gen = _gen(12)
    net = _net(d=10, m=24, K=10, activation="relu")
    R, N = 4, 6
    x = torch.randn(N, 10, generator=gen, dtype=F64).expand(R, N, 10)
    y = torch.randint(0, 10, (N,), generator=gen)
    eps = torch.linspace(0.2, 1.5, N, dtype=F64)
    res = pga(net, x, y, loss="cross_entropy", eps=eps, steps=17, step_size=0.3 * eps, gradient="raw",
              init="uniform_ball", generator=_gen(13))
    for t in (res.losses, res.norm_ratio, res.grad_norm, res.tangent_grad_norm):
        assert t.shape == (18, R, N)
    assert res.delta.shape == (R, N, 10) and res.converged_at is None and res.steps_run == 17
    assert bool((res.norm_ratio <= 1 + 1e-6).all())
    assert bool((torch.linalg.vector_norm(res.delta, dim=-1) <= eps * (1 + 1e-9)).all())
    # the recorded quantities at the last step describe the returned δ
    ell, g = input_gradient(net, x + res.delta, y, loss="cross_entropy")
    torch.testing.assert_close(res.losses[-1], ell, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(res.grad_norm[-1], torch.linalg.vector_norm(g, dim=-1), rtol=1e-10, atol=1e-12)
    dn = torch.linalg.vector_norm(res.delta, dim=-1)
    torch.testing.assert_close(res.norm_ratio[-1], dn / eps, rtol=1e-10, atol=1e-12)
    u = res.delta / dn.unsqueeze(-1)
    tang = torch.linalg.vector_norm(g - (g * u).sum(-1, keepdim=True) * u, dim=-1)
    torch.testing.assert_close(res.tangent_grad_norm[-1], tang, rtol=1e-6, atol=1e-8)
    # the first recorded loss is at δ_0, which is a random point of the ball
    d0 = random_init((R, N, 10), eps=eps, norm="l2", init="uniform_ball", generator=_gen(13), dtype=F64)
    torch.testing.assert_close(res.losses[0], input_gradient(net, x + d0, y, loss="cross_entropy")[0])
    # at δ_0 = 0 the tangent gradient norm is the gradient norm
    r0 = pga(net, x, y, loss="cross_entropy", eps=eps, steps=2, step_size=0.1, init="zero")
    assert torch.equal(r0.tangent_grad_norm[0], r0.grad_norm[0])


def _scalar_path(r0, eps, eta, steps):
    """δ_t = c_t · sign(r0) w/‖w‖ for F = wᵀx with ‖w‖ = 1, raw PGA: c ← min(ε, c + η(|r0| + c))."""
    c, path = 0.0, [0.0]
    for _ in range(steps):
        c = min(eps, c + eta * (abs(r0) + c))
        path.append(c)
    return path


def _unit_linear(residuals, d=5, seed=14):
    gen = _gen(seed)
    w = torch.randn(d, generator=gen, dtype=F64)
    w = w / torch.linalg.vector_norm(w)
    x = torch.randn(len(residuals), d, generator=gen, dtype=F64)
    y = x @ w - torch.tensor(residuals, dtype=F64)
    return Linear(w), x, y


@pytest.mark.parametrize("criterion", ["loss", "movement"])
def test_converged_at_semantics(criterion):
    residuals, eps, eta, patience, check_every = [1.0, -0.25, 3.0], 1.0, 0.1, 5, 10
    model, x, y = _unit_linear(residuals)
    # the iterate reaches the sphere at step k and stays there: loss rises strictly before k, flat after
    ks = []
    for r0 in residuals:
        path = _scalar_path(r0, eps, eta, 60)
        ks.append(path.index(eps))
    assert ks[0] == 8  # 1.1^8 − 1 ≥ 1 > 1.1^7 − 1
    res = pga(model, x, y, eps=eps, steps=100, step_size=eta, gradient="raw", tol=1e-9, criterion=criterion,
              patience=patience, check_every=check_every)
    # "loss": the anchor stops at k; "movement": ‖δ_{k+1} − δ_k‖ = 0 first at t = k
    assert res.converged_at.tolist() == ks
    # the run stops at the first multiple of check_every at which every example has converged
    last = max(ks) + (patience if criterion == "loss" else 1)
    expected_T = check_every * math.ceil(last / check_every)
    assert res.steps_run == expected_T
    assert res.losses.shape == (expected_T + 1, 3)
    # losses follow the closed-form scalar dynamics
    for i, r0 in enumerate(residuals):
        path = _scalar_path(r0, eps, eta, expected_T)
        expected = torch.tensor([0.5 * (abs(r0) + c) ** 2 for c in path], dtype=F64)
        torch.testing.assert_close(res.losses[:, i], expected, rtol=1e-12, atol=1e-12)


def test_converged_at_never_and_without_tol():
    model, x, y = _unit_linear([1.0, 2.0])
    res = pga(model, x, y, eps=1.0, steps=3, step_size=0.01, gradient="raw", tol=1e-9)
    assert res.converged_at.tolist() == [-1, -1] and res.steps_run == 3
    res = pga(model, x, y, eps=1.0, steps=3, step_size=0.01, gradient="raw")
    assert res.converged_at is None


def test_loss_criterion_tolerates_flat_oscillation():
    """A relative rise below tol does not move the anchor."""
    model, x, y = _unit_linear([1.0])
    # step so small that every rise is below tol·loss: converged at 0 after `patience` steps
    res = pga(model, x, y, eps=1.0, steps=50, step_size=1e-6, gradient="raw", tol=1e-3, patience=4,
              check_every=2)
    assert res.converged_at.tolist() == [0] and res.steps_run == 4
    # an exactly flat loss (zero gradient, δ stays 0) with tol = 0: "rise" means strictly higher
    flat = pga(model, x, y, loss=lambda out, yy: 0.0 * out[..., 0] + 1.0, eps=1.0, steps=50, step_size=0.1,
               gradient="raw", tol=0.0, patience=3, check_every=1)
    assert flat.converged_at.tolist() == [0] and flat.steps_run == 3
    assert torch.equal(flat.delta, torch.zeros_like(x))


@pytest.mark.parametrize("gradient", ["raw", "normalized", "sign"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_clamp_keeps_inputs_in_range(gradient, norm):
    gen = _gen(15)
    net = _net(d=16, m=20, K=10, activation="relu", dtype=torch.float32)
    x = torch.rand(30, 16, generator=gen)
    x[:, :4] = 0.0
    x[:, 4:8] = 1.0
    y = torch.randint(0, 10, (30,), generator=gen)
    eps = 3.0 if norm == "l2" else 0.5
    res = pga(net, x, y, loss="cross_entropy", eps=eps, norm=norm, steps=10, step_size=0.5, gradient=gradient,
              init="uniform_ball", clamp=(0.0, 1.0), generator=gen)
    adv = x + res.delta
    assert float(adv.min()) >= -1e-6 and float(adv.max()) <= 1 + 1e-6
    assert float(res.delta.abs().max()) > 0.1
    if norm == "l2":
        assert bool((torch.linalg.vector_norm(res.delta, dim=-1) <= eps * (1 + 1e-5)).all())
        # the recorded norm ratio is that of the clamped iterate
        torch.testing.assert_close(res.norm_ratio[-1], torch.linalg.vector_norm(res.delta, dim=-1) / eps,
                                   rtol=1e-5, atol=1e-6)
    else:
        assert float(res.delta.abs().max()) <= eps + 1e-6
    # without the clamp the same attack leaves [0, 1]
    free = pga(net, x, y, loss="cross_entropy", eps=eps, norm=norm, steps=10, step_size=0.5, gradient=gradient,
               init="uniform_ball", generator=_gen(15))
    assert float((x + free.delta).min()) < -1e-3 or float((x + free.delta).max()) > 1 + 1e-3


def test_delta0_overrides_init_and_is_projected():
    model, x, y = _unit_linear([1.0, -1.0])
    d0 = torch.full_like(x, 10.0)
    res = pga(model, x, y, eps=0.5, steps=0, step_size=0.1, delta0=d0, init="uniform_ball")
    torch.testing.assert_close(res.delta, project(d0, eps=0.5))
    assert res.losses.shape == (1, 2)


def test_pga_invalid_arguments():
    model, x, y = _unit_linear([1.0])
    with pytest.raises(ValueError):
        pga(model, x, y, eps=0.0, steps=2, step_size=0.1)
    with pytest.raises(ValueError):
        pga(model, x, y, eps=1.0, steps=-1, step_size=0.1)
    with pytest.raises(ValueError):
        pga(model, x, y, eps=1.0, steps=2, step_size=0.0)
    with pytest.raises(ValueError):
        pga(model, x, y, eps=1.0, steps=2, step_size=0.1, gradient="adam")
    with pytest.raises(ValueError):
        pga(model, x, y, eps=1.0, steps=2, step_size=0.1, criterion="gradient", tol=1e-3)


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("model_kind", ["fast", "generic"])
def test_pga_is_bit_deterministic_given_the_generator(model_kind):
    net = _net(d=10, m=32, K=10, activation="relu", dtype=torch.float32)
    model = net if model_kind == "fast" else Wrapped(net)
    gen = _gen(16)
    x = torch.rand(3, 20, 10, generator=gen)
    y = torch.randint(0, 10, (20,), generator=gen)
    kw = dict(loss="cross_entropy", eps=0.5, steps=12, step_size=0.1, init="uniform_ball", tol=1e-4)
    a = pga(model, x, y, generator=_gen(17), **kw)
    b = pga(model, x, y, generator=_gen(17), **kw)
    c = pga(model, x, y, generator=_gen(18), **kw)
    for f in ("delta", "losses", "norm_ratio", "tangent_grad_norm", "grad_norm", "converged_at"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert not torch.equal(a.delta, c.delta)


# ----------------------------------------------------------------------------- certificate


def test_certificate_accepts_the_known_maximiser_and_rejects_zero():
    model, w, x, y, r = _linear_problem()
    eps = 0.8
    star = torch.sign(r).unsqueeze(-1) * eps * w / torch.linalg.vector_norm(w)
    cert = local_max_certificate(model, x, y, star, eps=eps, generator=_gen(19), gtol=1e-6)
    assert cert.is_local_max.all() and cert.on_sphere.all()
    assert int(cert.n_increasing.sum()) == 0
    assert float(cert.kkt_residual.max()) < 1e-8
    assert float(cert.tangent_grad_norm.max()) < 1e-8
    assert float(cert.max_increase.max()) <= 1e-12
    # δ = 0: the loss increases along ±w, so it is no local maximum
    cert0 = local_max_certificate(model, x, y, torch.zeros_like(x), eps=eps, generator=_gen(19))
    assert not cert0.is_local_max.any() and not cert0.on_sphere.any()
    assert bool((cert0.n_increasing > 0).all()) and bool((cert0.max_increase > 0).all())
    torch.testing.assert_close(cert0.kkt_residual, r.abs() * torch.linalg.vector_norm(w))
    # the opposite pole −δ*: the residual there is r − sign(r) ε‖w‖; it is a (second) local
    # maximum exactly when that flips the residual's sign (ε‖w‖ > |r|), else g·u < 0 there
    cert_m = local_max_certificate(model, x, y, -star, eps=eps, generator=_gen(19))
    flips = eps * torch.linalg.vector_norm(w) > r.abs()
    assert flips.any() and not flips.all()
    assert torch.equal(cert_m.is_local_max, flips) and cert_m.on_sphere.all()


def test_certificate_accepts_pga_solution_of_smooth_net():
    gen = _gen(20)
    net = _net(d=6, m=12, K=1, activation="softplus")
    x = torch.randn(8, 6, generator=gen, dtype=F64) * 3
    y = _labels(1, (8,), gen)
    res = pga(net, x, y, eps=0.5, steps=2000, step_size=0.05, gradient="raw", init="zero")
    cert = local_max_certificate(net, x, y, res.delta, eps=0.5, generator=_gen(21), gtol=1e-4)
    assert cert.on_sphere.all()
    assert cert.is_local_max.all()


# ----------------------------------------------------------------------------- image-shaped inputs (event_dims)


class Images(nn.Module):
    """A flat-input model applied to image-shaped inputs (*batch, C, H, W)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        assert x.dim() >= 3 and x.shape[-3:] == (2, 3, 4), x.shape  # the model sees x in its own shape
        return self.net(x.flatten(-3))


def _image_problem(dtype=F64, seed=30):
    gen = _gen(seed)
    net = _net(d=24, m=16, K=10, activation="softplus", bias=True, seed=seed, dtype=dtype)
    x4 = torch.rand(3, 5, 2, 3, 4, generator=gen, dtype=dtype)  # (restarts, inputs, C, H, W)
    y = torch.randint(0, 10, (5,), generator=gen)
    eps = torch.linspace(0.2, 1.5, 5, dtype=dtype).expand(3, 5).clone()  # per-example ε
    return net, x4, y, eps


@pytest.mark.parametrize("gradient,norm", [("raw", "l2"), ("normalized", "l2"), ("sign", "linf")])
@pytest.mark.parametrize("clamp", [None, (0.0, 1.0)])
@pytest.mark.parametrize("init", ["uniform_ball", "zero"])
def test_pga_on_image_shaped_inputs_equals_pga_on_flattened_inputs(gradient, norm, clamp, init):
    net, x4, y, eps = _image_problem()
    x = x4.flatten(-3)
    kw = dict(loss="cross_entropy", eps=eps if norm == "l2" else eps / 5, norm=norm, steps=12,
              step_size=eps / 4 if norm == "l2" else 0.05, gradient=gradient, init=init, clamp=clamp,
              tol=1e-6, patience=3, check_every=2)
    img = pga(Images(net), x4, y, event_dims=3, generator=_gen(31), **kw)
    assert img.delta.shape == x4.shape and img.losses.shape[1:] == (3, 5)
    for model in (Wrapped(net), net):  # the generic path and the TwoLayerNet fast path on flat inputs
        flat = pga(model, x, y, generator=_gen(31), **kw)
        torch.testing.assert_close(img.delta.flatten(-3), flat.delta, rtol=0, atol=1e-6)
        for f in ("losses", "grad_norm", "norm_ratio", "tangent_grad_norm"):
            if getattr(flat, f) is not None:
                torch.testing.assert_close(getattr(img, f), getattr(flat, f), rtol=1e-6, atol=1e-6)
        assert torch.equal(img.converged_at, flat.converged_at)
    assert float(img.losses[-1].mean()) > float(img.losses[0].mean())  # it attacked
    flat_delta = img.delta.flatten(-3)
    norms = torch.linalg.vector_norm(flat_delta, dim=-1) if norm == "l2" else flat_delta.abs().amax(-1)
    assert bool((norms <= kw["eps"] * (1 + 1e-6)).all())


def test_pga_image_shaped_delta0_and_float32():
    net, x4, y, eps = _image_problem(dtype=torch.float32)
    d0 = random_init(tuple(x4.shape), eps=eps, norm="l2", init="uniform_ball", generator=_gen(32),
                     dtype=torch.float32, event_dims=3)
    img = pga(Images(net), x4, y, loss="cross_entropy", eps=eps, steps=6, step_size=0.2, gradient="normalized",
              delta0=d0, event_dims=3)
    flat = pga(net, x4.flatten(-3), y, loss="cross_entropy", eps=eps, steps=6, step_size=0.2,
               gradient="normalized", delta0=d0.flatten(-3))
    torch.testing.assert_close(img.delta.flatten(-3), flat.delta, rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_project_and_random_init_over_event_dims_equal_the_flat_versions(norm):
    gen = _gen(33)
    d4 = 3 * torch.randn(4, 6, 2, 3, 4, generator=gen, dtype=F64)
    eps = torch.rand(6, generator=gen, dtype=F64) + 0.5
    torch.testing.assert_close(project(d4, eps=eps, norm=norm, event_dims=3).flatten(-3),
                               project(d4.flatten(-3), eps=eps, norm=norm), rtol=0, atol=1e-12)
    # a 2-d event (H, W) with a per-example ε over (4, 6, 2)
    e3 = torch.rand(4, 6, 2, generator=gen, dtype=F64) + 0.5
    torch.testing.assert_close(project(d4, eps=e3, norm=norm, event_dims=2).flatten(-2),
                               project(d4.flatten(-2), eps=e3, norm=norm), rtol=0, atol=1e-12)
    for init in ("zero", "uniform_ball") + (("uniform_sphere",) if norm == "l2" else ()):
        a = random_init((4, 6, 2, 3, 4), eps=eps, norm=norm, init=init, generator=_gen(34), dtype=F64, event_dims=3)
        b = random_init((4, 6, 24), eps=eps, norm=norm, init=init, generator=_gen(34), dtype=F64)
        assert a.shape == (4, 6, 2, 3, 4)
        assert torch.equal(a.flatten(-3), b)
        size = torch.linalg.vector_norm(a.flatten(-3), dim=-1) if norm == "l2" else a.abs().amax((-3, -2, -1))
        assert bool((size <= eps * (1 + 1e-12)).all())
    # the radius of a uniform l2 start follows the event dimension D = 24 (E[r/ε] = D/(D+1))
    r = torch.linalg.vector_norm(random_init((4000, 2, 3, 4), eps=1.0, norm="l2", init="uniform_ball",
                                             generator=_gen(35), dtype=F64, event_dims=3).flatten(-3), dim=-1)
    assert abs(float(r.mean()) - 24 / 25) < 0.005


def test_input_gradient_and_certificate_over_event_dims_equal_the_flat_versions():
    net, x4, y, eps = _image_problem()
    ell4, g4 = input_gradient(Images(net), x4, y, loss="cross_entropy", event_dims=3)
    ell, g = input_gradient(net, x4.flatten(-3), y, loss="cross_entropy")
    assert g4.shape == x4.shape and ell4.shape == (3, 5)
    torch.testing.assert_close(ell4, ell, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g4.flatten(-3), g, rtol=1e-10, atol=1e-12)
    res = pga(net, x4.flatten(-3), y, loss="cross_entropy", eps=eps, steps=300, step_size=0.1, gradient="raw")
    d4 = res.delta.reshape(x4.shape)
    c4 = local_max_certificate(Images(net), x4, y, d4, loss="cross_entropy", eps=eps, generator=_gen(36),
                               event_dims=3)
    c = local_max_certificate(net, x4.flatten(-3), y, res.delta, loss="cross_entropy", eps=eps, generator=_gen(36))
    # the tangent part is sqrt(‖g‖² − (g·u)²): rounding of the analytic vs autograd g shows at ~1e-8 there
    for f, atol in (("tangent_grad_norm", 1e-7), ("kkt_residual", 1e-7), ("max_increase", 1e-10)):
        torch.testing.assert_close(getattr(c4, f), getattr(c, f), rtol=1e-8, atol=atol)
    for f in ("on_sphere", "n_increasing", "is_local_max"):
        assert torch.equal(getattr(c4, f), getattr(c, f)), f
    assert c.on_sphere.any()  # PGA's maximisers lie on the sphere: the comparison covers that branch
