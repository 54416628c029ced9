"""Two-layer networks and per-example losses: shapes, initialisation, closed-form gradients."""

from __future__ import annotations

import math

import pytest
import torch

from adversary_dynamics.learning import losses, models
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize("activation", models.ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_formula(activation, bias):
    net = TwoLayerNet(input_dim=7, width=11, n_outputs=3, activation=activation, bias=bias, generator=_gen(),
                      dtype=F64)
    if bias:
        with torch.no_grad():
            net.b.normal_(generator=_gen(1))
    x = torch.randn(4, 5, 7, generator=_gen(2), dtype=F64)
    sigma = {"relu": torch.relu, "softplus": torch.nn.functional.softplus, "tanh": torch.tanh}[activation]
    h = torch.einsum("rnd,md->rnm", x, net.W) + (net.b if bias else 0.0)
    expected = torch.einsum("rnm,km->rnk", sigma(h), net.A)
    out = net(x)
    assert out.shape == (4, 5, 3)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_initialisation_follows_the_theory():
    d, m, K = 50, 400, 4
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=K, generator=_gen(3), dtype=F64)
    assert net.W.shape == (m, d) and net.A.shape == (K, m) and net.b is None
    # A = ±1/sqrt(m), both signs present, fixed (not trained) by default
    assert torch.allclose(net.A.abs(), torch.full_like(net.A, 1 / math.sqrt(m)))
    frac_pos = float((net.A > 0).double().mean())
    assert 0.4 < frac_pos < 0.6
    assert not net.A.requires_grad and net.W.requires_grad
    # W ~ N(0, 1/d): the empirical variance of 20,000 entries is within a few percent
    var = float(net.W.detach().var() * d)
    assert abs(var - 1.0) < 0.05
    assert abs(float(net.W.detach().mean())) < 0.02
    # bias starts at zero, output layer trainable on request
    net_b = TwoLayerNet(input_dim=d, width=m, bias=True, train_output_layer=True, generator=_gen(3))
    assert torch.equal(net_b.b, torch.zeros(m)) and net_b.A.requires_grad
    assert [n for n, p in net_b.named_parameters() if p.requires_grad] == ["W", "A", "b"]


def test_initialisation_is_seeded():
    a = TwoLayerNet(input_dim=5, width=6, generator=_gen(7))
    b = TwoLayerNet(input_dim=5, width=6, generator=_gen(7))
    c = TwoLayerNet(input_dim=5, width=6, generator=_gen(8))
    assert torch.equal(a.W, b.W) and torch.equal(a.A, b.A)
    assert not torch.equal(a.W, c.W)


@pytest.mark.parametrize("bias", [False, True])
def test_ensemble_equals_its_members(bias):
    E, n, d, m, K = 3, 4, 6, 8, 2
    ens = TwoLayerNet(input_dim=d, width=m, n_outputs=K, activation="softplus", bias=bias, ensemble=(E,),
                      generator=_gen(4), dtype=F64)
    if bias:
        with torch.no_grad():
            ens.b.normal_(generator=_gen(5))
    x = torch.randn(E, n, d, generator=_gen(6), dtype=F64)
    out = ens(x)
    assert out.shape == (E, n, K)
    for e in range(E):
        single = TwoLayerNet(input_dim=d, width=m, n_outputs=K, activation="softplus", bias=bias, dtype=F64)
        with torch.no_grad():
            single.W.copy_(ens.W[e])
            single.A.copy_(ens.A[e])
            if bias:
                single.b.copy_(ens.b[e])
        torch.testing.assert_close(out[e], single(x[e]), rtol=1e-12, atol=1e-12)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="activation"):
        TwoLayerNet(input_dim=3, width=4, activation="gelu")
    with pytest.raises(ValueError):
        TwoLayerNet(input_dim=0, width=4)
    with pytest.raises(ValueError):
        models.activation_and_derivative("sigmoid", torch.zeros(2))


@pytest.mark.parametrize("activation", ["softplus", "tanh"])
def test_activation_derivative_matches_autograd(activation):
    h = torch.linspace(-4, 4, 101, dtype=F64, requires_grad=True)
    s, ds = models.activation_and_derivative(activation, h)
    (g,) = torch.autograd.grad(s.sum(), h)
    torch.testing.assert_close(ds, g, rtol=1e-12, atol=1e-12)


def test_relu_derivative_is_none_and_value_is_relu():
    h = torch.tensor([-1.0, 0.0, 2.0])
    s, ds = models.activation_and_derivative("relu", h)
    assert ds is None and torch.equal(s, torch.tensor([0.0, 0.0, 2.0]))


# ----------------------------------------------------------------------------- losses


def _custom(out, y):
    """A smooth non-standard loss that depends on both output and label."""
    return torch.cosh(0.3 * out).sum(-1) + out[..., 0] * y.to(out.dtype) + torch.logsumexp(out, -1) ** 2


LOSS_CASES = [
    ("quadratic", 10),
    ("quadratic", 1),
    ("squared_error", 10),
    ("squared_error", 1),
    ("cross_entropy", 10),
    ("cross_entropy", 3),
    (_custom, 10),
    (_custom, 1),
    (losses.quadratic, 10),  # the function object takes the closed-form path too
    (losses.squared_error, 1),
]


def _labels(K, shape, gen):
    if K == 1:
        return torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(F64)
    return torch.randint(0, K, shape, generator=gen)


@pytest.mark.parametrize("loss,K", LOSS_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("batch", [(6,), (3, 4)])
def test_loss_and_output_grad_matches_autograd(loss, K, batch):
    gen = _gen(11)
    out = torch.randn(*batch, K, generator=gen, dtype=F64) * 2
    y = _labels(K, batch, gen)
    ell, g = losses.loss_and_output_grad(loss, out, y)
    assert ell.shape == batch and g.shape == out.shape
    o = out.clone().requires_grad_(True)
    ref = losses.get_loss(loss)(o, y)
    (ref_g,) = torch.autograd.grad(ref.sum(), o)
    torch.testing.assert_close(ell, ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, ref_g, rtol=1e-12, atol=1e-12)
    assert not ell.requires_grad and not g.requires_grad


def test_quadratic_and_cross_entropy_values():
    out = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 0.0]], dtype=F64)
    y = torch.tensor([1, 0])
    # ½‖F − e_y‖²
    expected = torch.tensor([0.5 * (1 + 1 + 1), 0.5 * 0.25], dtype=F64)
    torch.testing.assert_close(losses.quadratic(out, y), expected)
    torch.testing.assert_close(losses.cross_entropy(out, y),
                               torch.nn.functional.cross_entropy(out, y, reduction="none"))
    # scalar-output form: ½(F − y)² with real labels
    f = torch.tensor([[0.3], [-2.0]], dtype=F64)
    yy = torch.tensor([1.0, -1.0], dtype=F64)
    torch.testing.assert_close(losses.quadratic(f, yy), torch.tensor([0.5 * 0.49, 0.5], dtype=F64))


def test_squared_error_is_the_papers_loss_without_the_half():
    """ℓ = ‖F − e_y‖² and (y − f)² for one output: the paper's L = −(y − f)² sign-flipped (Sec. 3)."""
    out = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 0.0]], dtype=F64)
    y = torch.tensor([1, 0])
    torch.testing.assert_close(losses.squared_error(out, y), torch.tensor([3.0, 0.25], dtype=F64))
    f = torch.tensor([[0.3], [-2.0]], dtype=F64)
    yy = torch.tensor([1.0, -1.0], dtype=F64)
    torch.testing.assert_close(losses.squared_error(f, yy), torch.tensor([0.49, 1.0], dtype=F64))
    ell, g = losses.loss_and_output_grad("squared_error", f, yy)
    torch.testing.assert_close(g, torch.tensor([[-1.4], [-2.0]], dtype=F64))  # 2(f − y)
    assert "squared_error" in losses.LOSSES and losses.get_loss("squared_error") is losses.squared_error


def test_get_loss_rejects_unknown():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get_loss("hinge")
    assert losses.get_loss("quadratic") is losses.quadratic
    assert losses.get_loss(_custom) is _custom
