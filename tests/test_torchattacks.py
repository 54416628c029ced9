"""Cross-check of our l2 PGA against torchattacks.PGDL2 (normalised gradient, zero start, [0, 1] clamp).

torchattacks' PGDL2 step: g ← ∇ CE_mean; g ← g/(‖g‖ + 1e-10); x' ← x' + α g; δ ← Π_ε(x' − x);
x' ← clip(x + δ, 0, 1). Our ``gradient="normalized"``, ``init="zero"``, ``clamp=(0, 1)`` is the
same iteration on δ (the batch-mean reduction only rescales g, which the normalisation removes).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

torchattacks = pytest.importorskip("torchattacks")

from adversary_dynamics import losses  # noqa: E402
from adversary_dynamics.attacks import pga  # noqa: E402
from adversary_dynamics.models import TwoLayerNet  # noqa: E402


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
def test_pga_matches_torchattacks_pgdl2(digits_images, net, eps, path):
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
    res = pga(model, x, y, loss="cross_entropy", eps=eps, norm="l2", steps=10, step_size=eps / 4,
              gradient="normalized", init="zero", clamp=(0.0, 1.0))
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
