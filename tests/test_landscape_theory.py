"""Landscape probes (restart clustering, non-linearity index, plane slices)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adversary_dynamics.figures import landscape
from adversary_dynamics.attack import random_init
from adversary_dynamics.learning.models import TwoLayerNet

F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x @ self.w).unsqueeze(-1)


def _output_loss(out, y):
    """ℓ = y·F: linear in the output, so linear in δ for a linear model."""
    return out[..., 0] * y.to(out.dtype)


# ----------------------------------------------------------------------------- distinct maxima


def test_distinct_maxima_counts_clusters():
    e = torch.eye(4, dtype=F64)
    deltas = torch.stack([
        e[0], 2 * e[0] + 1e-3 * e[1],  # same direction, different length → one cluster
        e[1], e[1] + 1e-3 * e[2],  # second cluster
        -e[0],  # antipodal: its own cluster
        e[2] + e[3], 3 * (e[2] + e[3]),  # third direction
    ])
    assert landscape.distinct_maxima(deltas) == 4
    assert landscape.distinct_maxima(deltas[:2]) == 1
    assert landscape.distinct_maxima(deltas[:1]) == 1
    # all copies of one vector: one cluster
    assert landscape.distinct_maxima(e[0].expand(10, 4)) == 1


def test_distinct_maxima_threshold():
    # two unit vectors at an angle with cos = 0.995
    c = 0.995
    a = torch.tensor([1.0, 0.0], dtype=F64)
    b = torch.tensor([c, math.sqrt(1 - c * c)], dtype=F64)
    pair = torch.stack([a, b])
    assert landscape.distinct_maxima(pair, cos_threshold=0.99) == 1
    assert landscape.distinct_maxima(pair, cos_threshold=0.999) == 2
    # R directions evenly spread on a circle: all distinct at a tight threshold
    th = torch.linspace(0, 2 * math.pi, 13, dtype=F64)[:-1]
    ring = torch.stack([th.cos(), th.sin()], -1)
    assert landscape.distinct_maxima(ring, cos_threshold=0.99) == 12
    assert landscape.distinct_maxima(ring, cos_threshold=-1.0) == 1


# ----------------------------------------------------------------------------- non-linearity index


def test_nonlinearity_index_is_zero_for_a_linear_loss():
    gen = _gen(1)
    w = torch.randn(6, generator=gen, dtype=F64)
    x = torch.randn(5, 6, generator=gen, dtype=F64)
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=F64)
    nli = landscape.nonlinearity_index(Linear(w), x, y, loss=_output_loss, eps=2.0, points=64, generator=_gen(2))
    assert nli.shape == (5,)
    assert float(nli.abs().max()) < 1e-12


def test_nonlinearity_index_is_positive_for_a_relu_net():
    gen = _gen(3)
    net = TwoLayerNet(input_dim=6, width=32, n_outputs=1, generator=_gen(4), dtype=F64)
    x = torch.randn(5, 6, generator=gen, dtype=F64)
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=F64)
    nli = landscape.nonlinearity_index(net, x, y, loss=_output_loss, eps=2.0, points=128, generator=_gen(5))
    assert bool((nli > 0.05).all())
    # shrinking the ball makes the ReLU net look more linear
    small = landscape.nonlinearity_index(net, x, y, loss=_output_loss, eps=1e-3, points=128, generator=_gen(5))
    assert float(small.mean()) < float(nli.mean())


def test_nonlinearity_index_closed_form_for_quadratic_loss():
    """Linear model, ℓ = ½(r + wᵀδ)²: NLI = mean ½(wᵀδ)² / mean |r wᵀδ| over the same samples."""
    gen = _gen(6)
    w = torch.randn(4, generator=gen, dtype=F64)
    x = torch.randn(3, 4, generator=gen, dtype=F64)
    y = torch.randn(3, generator=gen, dtype=F64)
    nli = landscape.nonlinearity_index(Linear(w), x, y, loss="quadratic", eps=0.7, points=50, generator=_gen(7))
    dp = random_init((50, 3, 4), eps=0.7, norm="l2", init="uniform_ball", generator=_gen(7), dtype=F64)
    wd = dp @ w
    r = x @ w - y
    expected = (0.5 * wd * wd).mean(0) / (r * wd).abs().mean(0)
    torch.testing.assert_close(nli, expected, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- plane slice


@pytest.fixture
def slice_setup():
    gen = _gen(8)
    net = TwoLayerNet(input_dim=7, width=16, n_outputs=10, activation="softplus", generator=_gen(9), dtype=F64)
    x = torch.randn(7, generator=gen, dtype=F64)
    y = torch.tensor(3)
    best = torch.randn(7, generator=gen, dtype=F64)
    eps = 0.9
    best = best / torch.linalg.vector_norm(best) * eps
    return net, x, y, best, eps


def test_plane_slice_disk_and_circle(slice_setup):
    net, x, y, best, eps = slice_setup
    grid, n_angles = 21, 41
    ps = landscape.plane_slice(net, x, y, best, loss="cross_entropy", eps=eps, grid=grid, n_angles=n_angles,
                               generator=_gen(10))
    assert ps.grid.shape == (grid, grid) and ps.circle.shape == (n_angles,) and ps.coords.shape == (grid,)
    # an orthonormal basis whose first vector is the best solution's direction
    torch.testing.assert_close(ps.basis @ ps.basis.T, torch.eye(2, dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(ps.basis[0] * eps, best, rtol=0, atol=1e-12)
    # NaN exactly outside the disk (columns: u-coordinate, rows: v-coordinate)
    a = ps.coords.view(1, -1)
    b = ps.coords.view(-1, 1)
    inside = (a * a + b * b) <= eps * eps * (1 + 1e-6)
    assert torch.equal(torch.isfinite(ps.grid), inside.expand(grid, grid))
    assert math.isnan(float(ps.grid[0, 0])) and math.isnan(float(ps.grid[-1, -1]))
    assert inside.sum() > grid  # many points inside
    mid = grid // 2
    with torch.no_grad():
        center = torch.nn.functional.cross_entropy(net(x).unsqueeze(0), y.view(1))
    torch.testing.assert_close(ps.grid[mid, mid], center, rtol=1e-10, atol=1e-12)
    # circle values equal the grid at the four axis points: θ = 0, π/2, π, 3π/2
    q = (n_angles - 1) // 4
    for k, (row, col) in zip((0, q, 2 * q, 3 * q), ((mid, grid - 1), (grid - 1, mid), (mid, 0), (0, mid))):
        torch.testing.assert_close(ps.circle[k], ps.grid[row, col], rtol=1e-10, atol=1e-12)
    # and the θ = 0 point is the best solution itself
    with torch.no_grad():
        at_best = torch.nn.functional.cross_entropy(net(x + best).unsqueeze(0), y.view(1))
    torch.testing.assert_close(ps.circle[0], at_best, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ps.circle[0], ps.circle[-1], rtol=1e-10, atol=1e-12)


def test_plane_slice_trajectory_projection(slice_setup):
    net, x, y, best, eps = slice_setup
    traj = torch.stack([torch.zeros(2, 7, dtype=F64), torch.stack([best, -0.5 * best])])  # (T+1=2, R=2, d)
    ps = landscape.plane_slice(net, x, y, best, loss="cross_entropy", eps=eps, grid=5, n_angles=9,
                               trajectories=traj, generator=_gen(10))
    assert ps.traj.shape == (2, 2, 2)
    torch.testing.assert_close(ps.traj[1, 0], torch.tensor([eps, 0.0], dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(ps.traj[1, 1], torch.tensor([-0.5 * eps, 0.0], dtype=F64), rtol=0, atol=1e-12)
    assert torch.equal(ps.traj[0], torch.zeros(2, 2, dtype=F64))


# ----------------------------------------------------------------------------- restart probe


def test_probe_restarts_shapes_and_trajectories():
    gen = _gen(11)
    net = TwoLayerNet(input_dim=8, width=16, n_outputs=10, activation="tanh", generator=_gen(12), dtype=F64)
    x = torch.randn(4, 8, generator=gen, dtype=F64)
    y = torch.randint(0, 10, (4,), generator=gen)
    pr = landscape.probe_restarts(net, x, y, loss="cross_entropy", eps=0.5, restarts=3, steps=20, step_size=0.1,
                                  tol=1e-6, keep_trajectories=2, generator=_gen(13))
    T = pr.losses.shape[0] - 1
    assert pr.losses.shape == (T + 1, 3, 4) and pr.norm_ratio.shape == (T + 1, 3, 4)
    assert pr.deltas.shape == (3, 4, 8)
    assert pr.trajectories.shape == (T + 1, 3, 2, 8)
    for t in (pr.converged_at, pr.on_sphere, pr.is_local_max, pr.kkt_residual):
        assert t.shape == (3, 4)
    # the step-by-step trajectories end where the batched run ended
    torch.testing.assert_close(pr.trajectories[-1], pr.deltas[:, :2], rtol=0, atol=1e-8)
    assert bool((torch.linalg.vector_norm(pr.trajectories, dim=-1) <= 0.5 * (1 + 1e-9)).all())


# The theory setting (Theorem 3.1's regime) is tested in tests/test_theory.py.
