"""Cross-check of our l2 PGA against torchattacks.PGDL2 (normalised gradient, zero start, [0, 1] clamp).

torchattacks' PGDL2 step: g ← ∇ CE_mean; g ← g/(‖g‖ + 1e-10); x' ← x' + α g; δ ← Π_ε(x' − x);
x' ← clip(x + δ, 0, 1). Our ``gradient="normalized"``, ``init="zero"``, ``clamp=(0, 1)`` is the
same iteration on δ (the batch-mean reduction only rescales g, which the normalisation removes;
torchattacks' 1e-10 on the mean-loss gradient is ``normalize_eps=1e-10·N`` on ours). Our default is
the exact g/‖g‖; both are checked here (they differ only for ‖g‖ near 1e-10·N).
The CNN check runs pga on image-shaped inputs (``event_dims=3``) through the same CNN module.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

torchattacks = pytest.importorskip("torchattacks")

from adversary_dynamics.learning import losses  # noqa: E402
from adversary_dynamics.attack import TORCHATTACKS_NORMALIZE_EPS, pga  # noqa: E402
from adversary_dynamics.learning.models import TwoLayerNet  # noqa: E402


class Flatten(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.flatten(1))


@pytest.fixture(scope="module")
def digits_images():
    from sklearn.datasets import load_digits

    b = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.choice(len(b.target), size=96, replace=False)
    x = torch.from_numpy((b.data[idx] / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(b.target[idx].astype(np.int64))
    return x, y


@pytest.fixture(scope="module")
def net():
    return TwoLayerNet(input_dim=64, width=64, n_outputs=10, activation="relu",
                       generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("eps", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("path", ["fast", "generic"])
@pytest.mark.parametrize("convention", ["torchattacks", "exact"])
def test_pga_matches_torchattacks_pgdl2(digits_images, net, eps, path, convention):
    x4, y = digits_images
    wrapped = Flatten(net)
    wrapped.train()  # torchattacks switches to eval for the attack and restores the mode
    atk = torchattacks.PGDL2(wrapped, eps=eps, alpha=eps / 4, steps=10, random_start=False)
    adv = atk(x4, y)
    assert wrapped.training
    assert adv.shape == x4.shape
    ta_delta = (adv - x4).reshape(x4.shape[0], -1)

    x = x4.reshape(x4.shape[0], -1)
    model = net if path == "fast" else Flatten(net)
    ne = TORCHATTACKS_NORMALIZE_EPS * x.shape[0] if convention == "torchattacks" else 0.0
    res = pga(model, x, y, loss="cross_entropy", eps=eps, norm="l2", steps=10, step_size=eps / 4,
              gradient="normalized", init="zero", clamp=(0.0, 1.0), normalize_eps=ne)
    diff = float((res.delta - ta_delta).abs().max())
    assert diff <= 1e-5, f"max |δ_ours − δ_torchattacks| = {diff:.3g} at eps={eps}"
    assert float((x + res.delta - adv.reshape(x.shape)).abs().max()) <= 1e-5

    # the comparison is not vacuous: the attack moved far and raised the loss
    norms = torch.linalg.vector_norm(ta_delta, dim=-1)
    assert float(norms.max()) > 0.9 * eps
    assert bool((norms <= eps * (1 + 1e-5)).all())
    with torch.no_grad():
        assert float(losses.cross_entropy(net(x + res.delta), y).mean()) > float(
            losses.cross_entropy(net(x), y).mean())


def test_torchattacks_comparison_detects_a_different_step(digits_images, net):
    """Sanity check of the comparison itself: a different step size gives a measurably different δ."""
    x4, y = digits_images
    adv = torchattacks.PGDL2(Flatten(net), eps=1.0, alpha=0.25, steps=10, random_start=False)(x4, y)
    x = x4.reshape(x4.shape[0], -1)
    res = pga(net, x, y, loss="cross_entropy", eps=1.0, steps=10, step_size=0.2, gradient="normalized",
              init="zero", clamp=(0.0, 1.0))
    assert float((res.delta - (adv - x4).reshape(x.shape)).abs().max()) > 1e-3


class SmallCNN(nn.Sequential):
    """conv(1→6, 3×3) → ReLU → 2×2 max-pool → flatten → linear(96 → 10), on (N, 1, 8, 8) images;
    optionally with BatchNorm and Dropout (which both attacks must switch off)."""

    def __init__(self, seed: int, *, norm_layers: bool = False) -> None:
        layers = [nn.Conv2d(1, 6, 3, padding=1)]
        if norm_layers:
            layers.append(nn.BatchNorm2d(6))
        layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
        if norm_layers:
            layers.append(nn.Dropout(0.3))
        layers.append(nn.Linear(6 * 4 * 4, 10))
        super().__init__(*layers)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.normal_(generator=g)
                    m.running_var.uniform_(0.5, 2.0, generator=g)


@pytest.mark.parametrize("eps", [0.5, 2.0])
@pytest.mark.parametrize("norm_layers", [False, True], ids=["plain", "bn_dropout_train_mode"])
@pytest.mark.parametrize("convention", ["torchattacks", "exact"])
def test_pga_on_a_cnn_with_image_inputs_matches_torchattacks_pgdl2(digits_images, eps, norm_layers, convention):
    x4, y = digits_images
    cnn = SmallCNN(seed=3, norm_layers=norm_layers)
    cnn.train()
    state = {k: v.clone() for k, v in cnn.state_dict().items()}
    adv = torchattacks.PGDL2(cnn, eps=eps, alpha=eps / 4, steps=10, random_start=False)(x4, y)
    ne = TORCHATTACKS_NORMALIZE_EPS * x4.shape[0] if convention == "torchattacks" else 0.0
    res = pga(cnn, x4, y, loss="cross_entropy", eps=eps, norm="l2", steps=10, step_size=eps / 4,
              gradient="normalized", init="zero", clamp=(0.0, 1.0), normalize_eps=ne, event_dims=3)
    assert res.delta.shape == x4.shape and res.losses.shape == (11, x4.shape[0])
    diff = float((res.delta - (adv - x4)).abs().max())
    assert diff <= 1e-5, f"max |δ_ours − δ_torchattacks| = {diff:.3g} at eps={eps}"
    # the model is left as found (training flag, BatchNorm statistics)
    assert cnn.training and all(m.training for m in cnn.modules())
    for k, v in cnn.state_dict().items():
        assert torch.equal(v, state[k]), k
    # not vacuous: the attack moved far and raised the loss of the eval-mode model
    norms = torch.linalg.vector_norm(res.delta.flatten(1), dim=-1)
    assert float(norms.max()) > 0.5 * eps and bool((norms <= eps * (1 + 1e-6)).all())
    assert float(res.losses[-1].mean()) > float(res.losses[0].mean())
