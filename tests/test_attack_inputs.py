"""What the public attack functions refuse, and what they leave untouched (issue 12, fault 4).

* every unusable argument of pga / project / random_init / input_gradient / local_max_certificate
  raises ValueError naming the argument, what was given and what is expected (labels that do not
  broadcast to x's batch shape included);
* clamp=(lo, hi) with x outside [lo, hi] (an empty feasible set) is an error, and a clamped
  attack on valid inputs stays in the ε-ball exactly;
* a model in train mode (BatchNorm, Dropout) is attacked as the deterministic eval-mode model and
  left exactly as it was found (training flags, running statistics, requires_grad, no .grad),
  also when the attack raises;
* gradient="normalized" is exact g/‖g‖: every g ≠ 0 takes a full step, also 0 < ‖g‖ ≪ 1e-10,
  on every path (TwoLayerNet explicit and coefficient form, autograd, clamp, image-shaped);
  torchattacks' g/(‖g‖ + 1e-10) only with normalize_eps.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from torch import nn

from adversary_dynamics import attack
from adversary_dynamics.attack import two_layer
from adversary_dynamics.attack import input_gradient, local_max_certificate, pga, project, random_init
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Wrapped(nn.Module):
    """Hides a model behind a plain module, so attacks take the generic autograd path."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


class Images(nn.Module):
    """A flat-input model applied to image-shaped inputs (*batch, C, H, W)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.flatten(-3))


def _problem(n=6, d=8, K=5, dtype=torch.float32, seed=0):
    g = _gen(seed)
    net = TwoLayerNet(input_dim=d, width=12, n_outputs=K, activation="softplus", generator=g, dtype=dtype)
    x = torch.rand(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, K, (n,), generator=g)
    return net, x, y


# ----------------------------------------------------------------------------- argument checks


def test_labels_that_do_not_broadcast_are_refused_with_both_shapes():
    net, x, y = _problem()
    for model in (net, Wrapped(net)):
        with pytest.raises(ValueError) as err:
            pga(model, x, y.unsqueeze(-1), loss="cross_entropy", eps=0.5, steps=3, step_size=0.1)
        msg = str(err.value)
        assert "y must broadcast to x's batch shape" in msg
        assert "(6,)" in msg and "(6, 1)" in msg and "(6, 8)" in msg
    with pytest.raises(ValueError, match=r"y must broadcast to x's batch shape \(6,\).*\(5,\)"):
        pga(net, x, y[:5], loss="cross_entropy", eps=0.5, steps=3, step_size=0.1)
    for fn in (lambda yy: input_gradient(net, x, yy, loss="cross_entropy"),
               lambda yy: local_max_certificate(net, x, yy, torch.zeros_like(x), loss="cross_entropy", eps=0.5)):
        with pytest.raises(ValueError, match=r"y must broadcast to x's batch shape \(6,\).*\(6, 1\)"):
            fn(y.unsqueeze(-1))
    # what does broadcast is accepted: one label for all, or labels for the last batch dim
    pga(net, x.expand(3, 6, 8), y, loss="cross_entropy", eps=0.5, steps=2, step_size=0.1)
    pga(net, x, y[:1], loss="cross_entropy", eps=0.5, steps=2, step_size=0.1)


# labels the named loss cannot use for K = 5 outputs: (labels, loss, fragment of the message)
BAD_LABELS = [
    (torch.tensor([0, 1, 2, 3, 4, 5]), "cross_entropy", r"in \[0, 5\).*got labels in \[0, 5\]"),
    (torch.tensor([0, 1, 2, 3, 4, 5]), "quadratic", r"in \[0, 5\).*got labels in \[0, 5\]"),
    (torch.tensor([-1, 1, 2, 3, 4, 0]), "squared_error", r"got labels in \[-1, 4\]"),
    (torch.tensor([0.5, 1, 2, 3, 4, 0]), "cross_entropy", r"integer class labels.*0\.5"),
    (torch.tensor([0.0, 1, 2, 3, 4, math.nan]), "quadratic", r"integer class labels.*nan"),
    (torch.tensor([True, False, True, False, True, False]), "cross_entropy", r"dtype torch\.bool"),
]


@pytest.mark.parametrize("labels, loss, fragment", BAD_LABELS)
@pytest.mark.parametrize("model_kind", ["two_layer", "autograd", "images"])
def test_label_values_the_loss_cannot_use_are_refused_before_any_step(labels, loss, fragment, model_kind):
    """Out-of-range class labels gave a raw torch index error (a device-side assert on CUDA) and
    non-integer ones were truncated silently by y.long(): both are refused, naming y and K."""
    net, x, _ = _problem()
    model = {"two_layer": net, "autograd": Wrapped(net), "images": Images(net)}[model_kind]
    xx = x.reshape(6, 1, 2, 4) if model_kind == "images" else x
    ev = 3 if model_kind == "images" else 1
    calls = [lambda: pga(model, xx, labels, loss=loss, eps=0.5, steps=3, step_size=0.1, event_dims=ev),
             lambda: input_gradient(model, xx, labels, loss=loss, event_dims=ev),
             lambda: local_max_certificate(model, xx, labels, torch.zeros_like(xx), loss=loss, eps=0.5,
                                           event_dims=ev)]
    for call in calls:
        with pytest.raises(ValueError, match=r"^y must .*" + fragment):
            call()


def test_integral_float_labels_and_scalar_outputs_are_accepted_and_cross_entropy_needs_two_outputs():
    net, x, y = _problem()
    a = pga(net, x, y, loss="cross_entropy", eps=0.5, steps=3, step_size=0.1)
    b = pga(net, x, y.to(torch.float32), loss="cross_entropy", eps=0.5, steps=3, step_size=0.1)
    assert torch.equal(a.delta, b.delta)
    scalar = nn.Linear(8, 1)
    pga(scalar, x, torch.randn(6), loss="quadratic", eps=0.5, steps=3, step_size=0.1)  # real labels: fine
    with pytest.raises(ValueError, match=r"loss='cross_entropy' needs a model with at least 2 outputs"):
        pga(scalar, x, torch.zeros(6), loss="cross_entropy", eps=0.5, steps=3, step_size=0.1)
    # a callable loss owns its labels: nothing is checked
    pga(net, x, torch.full((6,), 7.5), loss=lambda out, yy: (out.sum(-1) - yy) ** 2, eps=0.5, steps=2,
        step_size=0.1)


def test_training_refuses_labels_outside_the_models_classes_before_any_step(tmp_path):
    import dataclasses

    from adversary_dynamics.learning import data, training
    ds = data.make_gaussian(d=4, n_train=32, n_test=16, n_classes=3, seed=0)
    bad = dataclasses.replace(ds, y_train=ds.y_train + 3)
    net = TwoLayerNet(input_dim=4, width=8, n_outputs=3, generator=_gen(1))
    spec = training.AttackSpec(eps=0.1, steps=1, step_size=0.1)
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match=r"^data\.y_train must hold class labels in \[0, 3\)"):
        training.adversarial_train(net, bad, seed=0, loss="quadratic", attack=spec, eval_attack=spec, epochs=1,
                                   batch_size=8, lr=0.1, run_dir=tmp_path / "run")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any((tmp_path / "run").glob("*"))  # nothing written


_NET, _X, _Y = _problem()
_PGA = dict(loss="cross_entropy", eps=0.5, steps=3, step_size=0.1)

# (override of pga's arguments, the argument the message must name, a fragment of what was given)
PGA_BAD = [
    (dict(x=_X.to(torch.int64)), "x", "torch.int64"),
    (dict(x=_X.tolist()), "x", "list"),
    (dict(x=torch.where(_X > 0.5, math.nan, _X)), "x", "NaN"),
    (dict(y=[1, 2]), "y", "list"),
    (dict(eps=0.0), "eps", "0.0"),
    (dict(eps=-1.0), "eps", "-1.0"),
    (dict(eps=math.nan), "eps", "nan"),
    (dict(eps=math.inf), "eps", "inf"),
    (dict(eps=True), "eps", "True"),
    (dict(eps=torch.full((6,), 0.5).index_fill(0, torch.tensor([2]), -1.0)), "eps", "-1"),
    (dict(eps=torch.full((6,), math.inf)), "eps", "inf"),
    (dict(eps=torch.full((6, 1), 0.5)), "eps", r"\(6, 1\)"),
    (dict(eps=torch.full((5,), 0.5)), "eps", r"\(5,\)"),
    (dict(step_size=0.0), "step_size", "0.0"),
    (dict(step_size=math.nan), "step_size", "nan"),
    (dict(step_size=torch.full((6, 8), 0.1)), "step_size", r"\(6, 8\)"),
    (dict(steps=2.5), "steps", "2.5"),
    (dict(steps=-1), "steps", "-1"),
    (dict(steps=True), "steps", "True"),
    (dict(patience=0, tol=1e-3), "patience", "0"),
    (dict(check_every=0, tol=1e-3), "check_every", "0"),
    (dict(tol=-1e-3), "tol", "-0.001"),
    (dict(tol=math.nan), "tol", "nan"),
    (dict(normalize_eps=-1e-10, gradient="normalized"), "normalize_eps", "-1e-10"),
    (dict(normalize_eps=1e-10, gradient="raw"), "normalize_eps", "raw"),
    (dict(delta0=torch.zeros(6, 1)), "delta0", r"\(6, 1\)"),
    (dict(delta0=torch.zeros(8)), "delta0", r"\(8,\)"),
    (dict(delta0=torch.zeros(6, 8, dtype=torch.int32)), "delta0", "torch.int32"),
    (dict(delta0=torch.full((6, 8), math.nan)), "delta0", "NaN"),
    (dict(clamp=(1.0, 0.0)), "clamp", r"\(1.0, 0.0\)"),
    (dict(clamp=(0.0, 0.0)), "clamp", r"\(0.0, 0.0\)"),
    (dict(clamp=(0.0,)), "clamp", r"\(0.0,\)"),
    (dict(clamp=(0.0, math.nan)), "clamp", "nan"),
    (dict(clamp=(0.0, 0.5)), "clamp", "excludes the inputs"),
    (dict(norm="l3"), "norm", "l3"),
    (dict(gradient="adam"), "gradient", "adam"),
    (dict(init="gaussian"), "init", "gaussian"),
    (dict(init="uniform_sphere", norm="linf"), "uniform_sphere", "linf"),
    (dict(criterion="gradient", tol=1e-3), "criterion", "gradient"),
    (dict(loss="hinge"), "loss", "hinge"),
    (dict(generator=0), "generator", "int"),
    (dict(event_dims=0), "event_dims", "0"),
    (dict(event_dims=3), "event_dims", r"\(6, 8\)"),
    (dict(event_dims=1.0), "event_dims", "1.0"),
    (dict(model="net"), "model", "str"),
]


@pytest.mark.parametrize("override,name,given", PGA_BAD, ids=[f"{n}-{i}" for i, (_, n, _) in enumerate(PGA_BAD)])
def test_pga_refuses_each_unusable_argument_naming_it(override, name, given):
    kw = dict(model=_NET, x=_X, y=_Y, **_PGA)
    kw.update(override)
    with pytest.raises(ValueError) as err:
        pga(kw.pop("model"), kw.pop("x"), kw.pop("y"), **kw)
    msg = str(err.value)
    assert name in msg, msg
    assert re.search(given, msg), msg


@pytest.mark.parametrize("call,name", [
    (lambda: project(torch.zeros(3, 4, dtype=torch.long), eps=1.0), "delta"),
    (lambda: project(torch.zeros(3, 4), eps=torch.ones(4)), "eps"),
    (lambda: project(torch.zeros(3, 4), eps=math.nan), "eps"),
    (lambda: project(torch.zeros(3, 4), eps=1.0, event_dims=3), "event_dims"),
    (lambda: project(torch.zeros(3, 4), eps=1.0, norm="l1"), "norm"),
    (lambda: random_init((3, 4), eps=1.0, norm="l2", init="uniform_ball", dtype=torch.int64), "dtype"),
    (lambda: random_init((3, 4), eps=torch.ones(4), norm="l2", init="uniform_ball"), "eps"),
    (lambda: random_init((3, 4), eps=1.0, norm="l2", init="uniform_ball", event_dims=0), "event_dims"),
    (lambda: random_init((3, 4.5), eps=1.0, norm="l2", init="uniform_ball"), "shape"),
    (lambda: random_init((3, 4), eps=1.0, norm="l2", init="uniform_ball", generator=1), "generator"),
    (lambda: input_gradient(_NET, _X.long(), _Y), "x"),
    (lambda: input_gradient(_NET, _X, _Y, loss="hinge"), "loss"),
    (lambda: input_gradient(_NET, _X, _Y, event_dims=4), "event_dims"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros(6, 1), eps=0.5), "delta"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros_like(_X), eps=-0.5), "eps"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros_like(_X), eps=0.5, directions=-1), "directions"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros_like(_X), eps=0.5, radius=0.0), "radius"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros_like(_X), eps=0.5, sphere_tol=1.0), "sphere_tol"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros_like(_X), eps=0.5, ftol=-1.0), "ftol"),
    (lambda: local_max_certificate(_NET, _X, _Y, torch.zeros_like(_X), eps=0.5, gtol=math.nan), "gtol"),
])
def test_other_attack_functions_refuse_unusable_arguments_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ----------------------------------------------------------------------------- clamp: feasible set


@pytest.mark.parametrize("model_kind", ["fast", "generic"])
def test_clamp_with_inputs_outside_the_box_is_an_error(model_kind):
    """Scale-2 inputs with clamp=(0, 1): the old code returned ‖δ‖ ≫ ε; x outside the box is now an error."""
    net, x, y = _problem(d=16)
    model = net if model_kind == "fast" else Wrapped(net)
    x2 = 2.0 * x + 0.5  # in [0.5, 2.5]
    with pytest.raises(ValueError, match=r"clamp=\(0.0, 1.0\) excludes the inputs themselves.*\[0.5"):
        pga(model, x2, y, loss="cross_entropy", eps=0.1, steps=5, step_size=0.05, clamp=(0.0, 1.0))
    with pytest.raises(ValueError, match="clamp"):  # one coordinate of one example just outside
        xb = x.clone()
        xb[3, 5] = -1e-3
        pga(model, xb, y, loss="cross_entropy", eps=0.1, steps=5, step_size=0.05, clamp=(0.0, 1.0))
    # on the boundary is fine
    xe = x.clone()
    xe[:, :4], xe[:, 4:8] = 0.0, 1.0
    pga(model, xe, y, loss="cross_entropy", eps=0.1, steps=5, step_size=0.05, clamp=(0.0, 1.0))


@pytest.mark.parametrize("norm,gradient", [("l2", "raw"), ("l2", "normalized"), ("l2", "sign"), ("linf", "sign")])
@pytest.mark.parametrize("eps", [1e-3, 0.3, 5.0])
def test_clamped_attack_stays_in_the_ball_and_the_box(norm, gradient, eps):
    gen = _gen(3)
    net = TwoLayerNet(input_dim=64, width=32, n_outputs=10, activation="relu", generator=gen)
    x = 0.5 + 0.5 * torch.rand(40, 64, generator=gen)  # in [0.5, 1]: rounding of x + δ − x is largest here
    x[:, :8] = 1.0
    y = torch.randint(0, 10, (40,), generator=gen)
    init = "uniform_sphere" if norm == "l2" else "uniform_ball"
    for model in (net, Wrapped(net)):
        res = pga(model, x, y, loss="cross_entropy", eps=eps, norm=norm, steps=15, step_size=eps / 3,
                  gradient=gradient, init=init, clamp=(0.0, 1.0), generator=_gen(4))
        size = (torch.linalg.vector_norm(res.delta, dim=-1) if norm == "l2" else res.delta.abs().amax(-1))
        assert bool((size <= eps * (1 + 1e-6)).all()), float(size.max() / eps - 1)
        assert float(size.max()) > 0.5 * min(eps, 1.0)  # not vacuous (the box [0, 1] caps linf at 1)
        adv = x + res.delta
        assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0 + 1.2e-7


# ----------------------------------------------------------------------------- the model is left as found


class BNDropNet(nn.Module):
    def __init__(self, d=6, K=4, seed=0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 16), nn.BatchNorm1d(16), nn.Softplus(), nn.Dropout(0.5),
                                  nn.Linear(16, K))
        with torch.no_grad():  # every value drawn from our own generator (no global RNG)
            for i, p in enumerate(self.parameters()):
                p.normal_(generator=_gen(seed + 10 + i)).mul_(0.5)
            self.body[1].running_mean.normal_(generator=_gen(seed + 1))
            self.body[1].running_var.uniform_(0.5, 2.0, generator=_gen(seed + 2))

    def forward(self, x):  # any batch shape (*batch, d): BatchNorm1d sees (prod(batch), d)
        return self.body(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


def _snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()],
            [p.requires_grad for p in model.parameters()],
            [None if p.grad is None else p.grad.clone() for p in model.parameters()])


def _assert_unchanged(model, snap):
    state, modes, req, grads = snap
    now = model.state_dict()
    for k, v in state.items():
        assert torch.equal(now[k], v), k  # running_mean/var and num_batches_tracked bitwise
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == req
    for p, g in zip(model.parameters(), grads):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)


def _train_mode_model():
    model = BNDropNet()
    model.train()
    model.body[4].eval()  # mixed modes: each module's flag must come back as it was
    model.body[0].bias.requires_grad_(False)
    model.body[4].weight.grad = torch.full_like(model.body[4].weight, 0.25)  # pre-existing .grad kept as is
    return model


def test_pga_attacks_the_eval_model_and_leaves_a_train_mode_model_as_found():
    model = _train_mode_model()
    snap = _snapshot(model)
    g = _gen(5)
    x = torch.randn(12, 6, generator=g)
    y = torch.randint(0, 4, (12,), generator=g)
    kw = dict(loss="cross_entropy", eps=0.5, steps=8, step_size=0.1, init="uniform_ball", gradient="normalized")
    a = pga(model, x, y, generator=_gen(6), **kw)
    _assert_unchanged(model, snap)
    b = pga(model, x, y, generator=_gen(6), **kw)  # Dropout off: identical calls give identical results
    _assert_unchanged(model, snap)
    for f in ("delta", "losses", "grad_norm", "norm_ratio"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    ref_model = copy.deepcopy(model).eval()
    ref = pga(ref_model, x, y, generator=_gen(6), **kw)
    assert torch.equal(a.delta, ref.delta) and torch.equal(a.losses, ref.losses)
    assert float(a.losses[-1].mean()) > float(a.losses[0].mean())  # it did attack


def test_input_gradient_and_certificate_leave_a_train_mode_model_as_found():
    model = _train_mode_model()
    snap = _snapshot(model)
    g = _gen(7)
    x = torch.randn(10, 6, generator=g)
    y = torch.randint(0, 4, (10,), generator=g)
    ell, grad = input_gradient(model, x, y, loss="cross_entropy")
    _assert_unchanged(model, snap)
    ell2, grad2 = input_gradient(model, x, y, loss="cross_entropy")
    assert torch.equal(ell, ell2) and torch.equal(grad, grad2)
    ref = input_gradient(copy.deepcopy(model).eval(), x, y, loss="cross_entropy")
    assert torch.equal(ell, ref[0]) and torch.equal(grad, ref[1])
    delta = 0.3 * torch.randn(10, 6, generator=g)
    c1 = local_max_certificate(model, x, y, delta, loss="cross_entropy", eps=0.5, generator=_gen(8))
    _assert_unchanged(model, snap)
    c2 = local_max_certificate(model, x, y, delta, loss="cross_entropy", eps=0.5, generator=_gen(8))
    assert torch.equal(c1.max_increase, c2.max_increase) and torch.equal(c1.kkt_residual, c2.kkt_residual)


class Exploding(nn.Module):
    """Raises on its n-th forward pass."""

    def __init__(self, n):
        super().__init__()
        self.inner = BNDropNet()
        self.calls, self.n = 0, n

    def forward(self, x):
        self.calls += 1
        if self.calls >= self.n:
            raise RuntimeError("boom")
        return self.inner(x)


def test_model_mode_is_restored_when_the_attack_raises():
    model = Exploding(3)
    model.train()
    snap_modes = [m.training for m in model.modules()]
    x, y = torch.randn(5, 6), torch.zeros(5, dtype=torch.long)
    with pytest.raises(RuntimeError, match="boom"):
        pga(model, x, y, loss="cross_entropy", eps=0.5, steps=10, step_size=0.1)
    assert [m.training for m in model.modules()] == snap_modes and model.training
    model.calls, model.n = 0, 2  # the certificate calls the model twice
    with pytest.raises(RuntimeError, match="boom"):
        local_max_certificate(model, x, y, torch.zeros_like(x), loss="cross_entropy", eps=0.5)
    assert [m.training for m in model.modules()] == snap_modes


# ----------------------------------------------------------------------------- exact normalisation


def _confident_problem(seed=0):
    """Cross-entropy on a network with large output weights: labels = the predicted class, so the
    input gradients are tiny but nonzero (1e-35 … 1e-7 here)."""
    g = _gen(seed)
    net = TwoLayerNet(input_dim=12, width=32, n_outputs=10, activation="relu", generator=g, dtype=F64)
    with torch.no_grad():
        net.A.mul_(60.0)
    x = torch.randn(8, 12, generator=g, dtype=F64) * 3
    with torch.no_grad():
        y = net(x).argmax(-1)
    return net, x, y


@pytest.mark.parametrize("path", ["explicit", "implicit", "generic", "clamp", "images"])
def test_normalized_gradient_takes_a_full_step_for_tiny_gradients(monkeypatch, path):
    net, x, y = _confident_problem()
    _, gr = input_gradient(net, x, y, loss="cross_entropy")
    gn = torch.linalg.vector_norm(gr, dim=-1)
    assert bool((gn > 0).all()) and int((gn < 1e-20).sum()) >= 4  # 0 < ‖g‖ ≪ 1e-10 for most examples
    monkeypatch.setattr(two_layer, "IMPLICIT_MODE", "always" if path == "implicit" else "never")
    eps, eta = 1.0, 0.25
    model, xx, kw = net, x, {}
    if path == "generic":
        model = Wrapped(net)
    elif path == "clamp":
        lo, hi = float(x.min()) - 1.0, float(x.max()) + 1.0  # a box that never binds within the ball
        kw = dict(clamp=(lo, hi))
    elif path == "images":
        model, xx, kw = Images(net), x.reshape(8, 1, 3, 4), dict(event_dims=3)
    res = pga(model, xx, y, loss="cross_entropy", eps=eps, steps=1, step_size=eta, gradient="normalized", **kw)
    d1 = res.delta.reshape(8, 12)
    # one exact step from 0: δ₁ = η g/‖g‖
    torch.testing.assert_close(d1, eta * gr / gn.unsqueeze(-1), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(torch.linalg.vector_norm(d1, dim=-1), torch.full((8,), eta, dtype=F64))
    # torchattacks' convention, only on request: the tiny-gradient examples barely move
    old = pga(model, xx, y, loss="cross_entropy", eps=eps, steps=1, step_size=eta, gradient="normalized",
              normalize_eps=attack.TORCHATTACKS_NORMALIZE_EPS, **kw)
    torch.testing.assert_close(old.delta.reshape(8, 12), eta * gr / (gn + 1e-10).unsqueeze(-1), rtol=1e-9,
                               atol=1e-30)
    assert float(torch.linalg.vector_norm(old.delta.reshape(8, 12), dim=-1)[gn < 1e-20].max()) < 1e-9


def test_exact_normalization_finds_more_adversarial_examples_than_the_torchattacks_convention():
    net, x, y = _confident_problem(seed=1)
    x = torch.cat([x, _confident_problem(seed=2)[1]])
    with torch.no_grad():
        y = net(x).argmax(-1)
    kw = dict(loss="cross_entropy", eps=6.0, steps=40, step_size=0.5, gradient="normalized")
    exact = pga(net, x, y, **kw)
    old = pga(net, x, y, normalize_eps=1e-10, **kw)
    with torch.no_grad():
        acc_exact = float((net(x + exact.delta).argmax(-1) == y).double().mean())
        acc_old = float((net(x + old.delta).argmax(-1) == y).double().mean())
    assert acc_exact < acc_old, (acc_exact, acc_old)  # the old rule over-estimates robust accuracy


@pytest.mark.parametrize("model_kind", ["fast", "generic"])
def test_zero_gradient_takes_no_step_and_gives_no_nan(model_kind, monkeypatch):
    net, x, y = _problem(dtype=F64)
    with torch.no_grad():
        net.A.zero_()  # F ≡ 0: ∇_δ ℓ = 0 exactly
    for mode in ("never", "always"):
        monkeypatch.setattr(two_layer, "IMPLICIT_MODE", mode)
        model = net if model_kind == "fast" else Wrapped(net)
        d0 = random_init(tuple(x.shape), eps=0.5, norm="l2", init="uniform_ball", generator=_gen(9), dtype=F64)
        res = pga(model, x, y, loss="cross_entropy", eps=0.5, steps=4, step_size=0.1, gradient="normalized",
                  delta0=d0)
        assert torch.equal(res.delta, d0)
        assert bool(torch.isfinite(res.losses).all() & torch.isfinite(res.norm_ratio).all())


def test_normalized_step_in_float32_for_a_scaled_loss():
    """0 < ‖g‖ ≈ 1e-15 in float32 (a loss scaled by 1e-15): still a full step of length η."""
    net, x, y = _problem(d=16)

    def tiny(out, yy):
        return 1e-15 * torch.nn.functional.cross_entropy(out, yy, reduction="none")

    for model in (net, Wrapped(net)):
        res = pga(model, x, y, loss=tiny, eps=1.0, steps=1, step_size=0.3, gradient="normalized")
        assert float(res.grad_norm[0].max()) < 1e-13
        torch.testing.assert_close(torch.linalg.vector_norm(res.delta, dim=-1), torch.full((6,), 0.3))


def test_image_inputs_with_the_wrong_event_dims_and_dtype_mismatches_are_refused_naming_them():
    """A CNN on (N, C, H, W) inputs attacked with event_dims=1 maps the 'batch' (N, C, H) to N
    outputs (torch then failed in an expand deep inside the loss); float64 inputs for a float32
    model failed inside the forward pass. Both are ValueErrors naming the shapes/dtypes and the fix."""
    from adversary_dynamics.learning.models import CNN

    net = CNN(input_shape=(1, 8, 8), channels=(4, 8), hidden=16, generator=_gen(0))
    x, y = torch.rand(8, 1, 8, 8, generator=_gen(1)), torch.randint(0, 10, (8,), generator=_gen(2))
    for call in (lambda: pga(net, x, y, loss="cross_entropy", eps=0.1, steps=2, step_size=0.1),
                 lambda: input_gradient(net, x, y, loss="cross_entropy"),
                 lambda: local_max_certificate(net, x, y, torch.zeros_like(x), loss="cross_entropy", eps=0.1)):
        with pytest.raises(ValueError, match=r"maps x of shape \(8, 1, 8, 8\) to outputs of shape \(8, 10\).*"
                                             r"event_dims=1.*pass event_dims=3"):
            call()
    with pytest.raises(ValueError, match=r"x has dtype torch.float64 but the model's parameters are torch.float32"):
        pga(net, x.double(), y, eps=0.1, steps=2, step_size=0.1, event_dims=3)
    with pytest.raises(ValueError, match=r"x has dtype torch.float64"):
        input_gradient(net, x.double(), y, event_dims=3)
    # the right call works and leaves nothing behind
    assert pga(net, x, y, eps=0.1, steps=2, step_size=0.1, event_dims=3).delta.shape == x.shape
