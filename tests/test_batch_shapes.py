"""Issue 19, fault 3: the documented shapes with ordinary PyTorch models.

* a plain ``nn.Sequential`` CNN (one batch dimension, as every PyTorch model) takes x of shape
  (R, N, C, H, W) with ``event_dims=3``: the leading batch dims are flattened for the model call
  and restored, and the results equal a loop over R;
* flat x (N, 784) given to a CNN, with default or ``event_dims=3``, and image-shaped x with the
  default ``event_dims=1``, raise a ValueError that says what to do (reshape to (N, 1, 28, 28),
  event_dims=3) before any compute, not an error from inside conv2d;
* an empty batch (N = 0) works on every public attack function for a TwoLayerNet, a generic module
  and a CNN;
* ``PGAResult.norm_ratio`` for linf is ‖δ_t‖_∞/ε (the README idiom works for both norms).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adversary_dynamics.attack import input_gradient, local_max_certificate, pga, project, random_init
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def plain_cnn(seed=0, k=10):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 5, stride=3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 8, k)).to(F64)


def _images(shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=F64)


@pytest.mark.parametrize("norm,gradient", [("l2", "raw"), ("l2", "normalized"), ("linf", "sign")])
def test_plain_cnn_takes_restarts_by_inputs_images_like_a_loop(norm, gradient):
    cnn = plain_cnn()
    R, N = 3, 4
    x = _images((R, N, 1, 28, 28))
    y = torch.tensor([0, 3, 7, 9])
    kw = dict(loss="cross_entropy", eps=0.5, norm=norm, steps=4, step_size=0.1, gradient=gradient, event_dims=3,
              init="uniform_ball")
    res = pga(cnn, x, y, generator=torch.Generator().manual_seed(5), **kw)
    assert res.delta.shape == x.shape and res.losses.shape == (5, R, N) and res.norm_ratio.shape == (5, R, N)
    d0 = random_init(tuple(x.shape), eps=0.5, norm=norm, init="uniform_ball",
                     generator=torch.Generator().manual_seed(5), dtype=F64, event_dims=3)
    for r in range(R):
        one = pga(cnn, x[r], y, delta0=d0[r], **kw)
        torch.testing.assert_close(res.delta[r], one.delta, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(res.losses[:, r], one.losses, rtol=1e-10, atol=1e-12)
    ell, g = input_gradient(cnn, x, y, loss="cross_entropy", event_dims=3)
    assert ell.shape == (R, N) and g.shape == x.shape
    cert = local_max_certificate(cnn, x, y, res.delta, loss="cross_entropy", eps=0.5, event_dims=3, directions=2)
    assert cert.is_local_max.shape == (R, N) and bool(cert.finite.all())


def test_plain_cnn_single_image_without_batch_dims():
    cnn = plain_cnn()
    x = _images((1, 28, 28))
    res = pga(cnn, x, torch.tensor(2), loss="cross_entropy", eps=0.5, steps=2, step_size=0.1, event_dims=3)
    ref = pga(cnn, x.unsqueeze(0), torch.tensor([2]), loss="cross_entropy", eps=0.5, steps=2, step_size=0.1,
              event_dims=3)
    assert res.delta.shape == x.shape and res.losses.shape == (3,)
    torch.testing.assert_close(res.losses, ref.losses[:, 0], rtol=1e-12, atol=0)


def test_flat_inputs_to_a_cnn_say_reshape_and_event_dims_3():
    cnn = plain_cnn()
    x = _images((5, 784))
    y = torch.zeros(5, dtype=torch.long)
    for ed in (1, 3):
        with pytest.raises(ValueError, match=r"reshape\(5, 1, 28, 28\).*event_dims=3"):
            pga(cnn, x, y, loss="cross_entropy", eps=0.5, steps=2, step_size=0.1, event_dims=ed)
    with pytest.raises(ValueError, match=r"reshape\(5, 1, 28, 28\).*event_dims=3"):
        local_max_certificate(cnn, x, y, torch.zeros_like(x), loss="cross_entropy", eps=0.5)
    with pytest.raises(ValueError, match=r"reshape\(5, 1, 28, 28\).*event_dims=3"):
        input_gradient(cnn, x, y, loss="cross_entropy")


def test_image_shaped_x_with_default_event_dims_suggests_event_dims_3():
    cnn = plain_cnn()
    x = _images((5, 1, 28, 28))
    for y in (torch.zeros(5, dtype=torch.long), torch.zeros(5, 1, 28, dtype=torch.long)):
        with pytest.raises(ValueError, match="event_dims=3"):
            pga(cnn, x, y, loss="cross_entropy", eps=0.5, steps=2, step_size=0.1)


def _models():
    g = torch.Generator().manual_seed(0)
    net = TwoLayerNet(input_dim=6, width=8, n_outputs=3, activation="relu", generator=g, dtype=F64)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(F64)
    return [("twolayer", net, (6,), 1), ("mlp", mlp, (6,), 1), ("cnn", plain_cnn(k=3), (1, 28, 28), 3)]


@pytest.mark.parametrize("name,model,event,ed", _models(), ids=["twolayer", "mlp", "cnn"])
@pytest.mark.parametrize("batch", [(0,), (2, 0)])
def test_empty_batch_works_on_every_public_attack_function(name, model, event, ed, batch):
    x = torch.zeros(*batch, *event, dtype=F64)
    y = torch.zeros(batch, dtype=torch.long)
    for kw in (dict(norm="l2", gradient="raw"), dict(norm="linf", gradient="sign"),
               dict(norm="l2", gradient="normalized", tol=1e-3, init="uniform_ball")):
        res = pga(model, x, y, loss="cross_entropy", eps=0.5, steps=3, step_size=0.1, event_dims=ed, **kw)
        assert res.delta.shape == x.shape and res.losses.shape == (4, *batch)
        assert res.finite.shape == batch
        if "tol" in kw:
            assert res.converged_at.shape == batch
    cert = local_max_certificate(model, x, y, torch.zeros_like(x), loss="cross_entropy", eps=0.5, event_dims=ed)
    assert cert.is_local_max.shape == batch and cert.finite.shape == batch
    ell, g = input_gradient(model, x, y, loss="cross_entropy", event_dims=ed)
    assert ell.shape == batch and g.shape == x.shape
    assert project(x, eps=0.5, event_dims=ed).shape == x.shape
    assert random_init(tuple(x.shape), eps=0.5, norm="l2", init="uniform_ball", event_dims=ed,
                       dtype=F64).shape == x.shape


def test_linf_norm_ratio_is_the_inf_norm_over_eps():
    cnn = plain_cnn()
    x = _images((2, 1, 28, 28))
    eps = torch.tensor([0.1, 0.3], dtype=F64)
    res = pga(cnn, x, torch.tensor([1, 2]), loss="cross_entropy", eps=eps, norm="linf", gradient="sign", steps=3,
              step_size=0.05, event_dims=3, init="uniform_ball", generator=torch.Generator().manual_seed(0))
    assert res.norm_ratio.shape == res.losses.shape
    torch.testing.assert_close(res.norm_ratio[-1], res.delta.abs().flatten(1).amax(1) / eps, rtol=0, atol=0)
    assert float(res.norm_ratio.max()) <= 1.0 and float(res.norm_ratio[-1].min()) > 0.5
    assert f"{float(res.norm_ratio[-1].mean()):.3f}"  # the README's idiom


@pytest.mark.parametrize("event_dims", [1, 3])
def test_empty_batch_works_for_the_library_cnn(event_dims):
    from adversary_dynamics.learning.models import CNN

    cnn = CNN(input_shape=(1, 8, 8), channels=(2, 3), hidden=5, n_outputs=4, generator=torch.Generator().manual_seed(0),
              dtype=F64)
    x = torch.zeros(0, 64, dtype=F64) if event_dims == 1 else torch.zeros(0, 1, 8, 8, dtype=F64)
    y = torch.zeros(0, dtype=torch.long)
    res = pga(cnn, x, y, loss="cross_entropy", eps=0.5, steps=2, step_size=0.1, tol=1e-3, event_dims=event_dims)
    assert res.delta.shape == x.shape and res.converged_at.shape == (0,)
    cert = local_max_certificate(cnn, x, y, x, loss="cross_entropy", eps=0.5, event_dims=event_dims)
    assert cert.is_local_max.shape == (0,)
