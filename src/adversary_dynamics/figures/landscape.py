r"""Landscape probes: PGA with restarts, local-maximum certificates, the loss over a plane of
the ball, and regularity measures of the adversarial loss δ ↦ ℓ(F(x + δ), y) on ‖δ‖₂ ≤ ε.

Regularity measures (per input):

* distinct maxima — the restarts' final perturbations clustered greedily by cosine
  similarity (a new cluster when cos(δ_r, centre) < ``cos_threshold`` for every centre);
  restarts that end at a flat point (``RestartProbe.flat``: the loss is locally constant, e.g.
  every hidden ReLU inactive, so PGA never moved) are left out, since every such start would
  count as a maximum of its own, and so are restarts whose loss or final perturbation is NaN or
  ±inf (``RestartProbe.finite`` False: no result, never a maximum); NaN when no restart is left;
* flat fraction — the share of restarts that end at a flat point;
* loss spread — std/mean of the restarts' final losses;
* non-linearity index — over P points δ_p uniform in the ball,
  NLI = mean_p |ℓ(δ_p) − ℓ(0) − ∇ℓ(0)·δ_p| / mean_p |∇ℓ(0)·δ_p|,
  i.e. how far the loss departs from its first-order Taylor expansion at δ = 0, relative
  to the linear term (0 for a linear loss; NaN where ∇ℓ(0) = 0, e.g. every ReLU inactive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from adversary_dynamics.attack import count_distinct, input_gradient, local_max_certificate, pga, random_init
from adversary_dynamics.learning.losses import LossLike, get_loss

__all__ = ["RestartProbe", "probe_restarts", "distinct_maxima", "flat_fraction", "nonlinearity_index",
           "PlaneSlice", "plane_slice"]


@dataclass
class RestartProbe:
    """PGA from ``R`` random starts for ``N`` inputs; tensors are (R, N) unless noted.
    ``flat`` (bool) marks final iterates where the loss is locally constant
    (:class:`~adversary_dynamics.attack.Certificate`, field ``flat``); ``finite`` (bool) marks the
    restarts whose losses ℓ_0 … ℓ_T are all finite (:attr:`~adversary_dynamics.attack.PGAResult.finite`);
    a non-finite restart is never converged, certified or flat."""

    losses: torch.Tensor  # (T+1, R, N)
    norm_ratio: torch.Tensor  # (T+1, R, N)
    deltas: torch.Tensor  # (R, N, d) final perturbations
    trajectories: torch.Tensor | None  # (T+1, R, n_keep, d) iterates of the first n_keep inputs
    converged_at: torch.Tensor
    on_sphere: torch.Tensor
    is_local_max: torch.Tensor
    kkt_residual: torch.Tensor
    flat: torch.Tensor
    constant: torch.Tensor  # the exactly constant case of flat (Certificate.constant)
    finite: torch.Tensor  # every loss of the restart's trajectory is finite


def probe_restarts(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: LossLike, eps, restarts: int,
                   steps: int, step_size, tol: float, patience: int = 10, gradient: str = "raw",
                   init: str = "uniform_ball",
                   keep_trajectories: int = 0, generator: torch.Generator | None = None) -> RestartProbe:
    """Run PGA from ``restarts`` starts for every input (one batched call, R × N examples),
    then certify each final iterate. ``keep_trajectories`` keeps every iterate of the first
    inputs (for plotting trajectories); it runs those inputs once more, for the steps the batched
    call took, keeping every iterate (``pga(record=True)``)."""
    xr = x.expand(restarts, *x.shape)
    d0 = random_init(tuple(xr.shape), eps=eps, norm="l2", init=init, generator=generator, device=x.device,
                     dtype=x.dtype)
    res = pga(model, xr, y, loss=loss, eps=eps, norm="l2", steps=steps, step_size=step_size, gradient=gradient,
              delta0=d0, tol=tol, patience=patience)
    cert = local_max_certificate(model, xr, y, res.delta, loss=loss, eps=eps, generator=generator)
    traj = None
    if keep_trajectories:
        k = keep_trajectories
        e_k = eps if not torch.is_tensor(eps) or eps.dim() == 0 else eps[..., :k]
        traj = pga(model, xr[:, :k], y[:k], loss=loss, eps=e_k, norm="l2", steps=res.steps_run, step_size=step_size,
                   gradient=gradient, delta0=d0[:, :k], record=True).iterates
    return RestartProbe(losses=res.losses, norm_ratio=res.norm_ratio, deltas=res.delta, trajectories=traj,
                        converged_at=res.converged_at, on_sphere=cert.on_sphere, is_local_max=cert.is_local_max,
                        kkt_residual=cert.kkt_residual, flat=cert.flat,
                        constant=cert.constant, finite=res.finite)


def distinct_maxima(deltas: torch.Tensor, *, cos_threshold: float = 0.99,
                    exclude: torch.Tensor | None = None) -> int | float:
    """Number of clusters among the rows of ``deltas`` (R, d) under greedy cosine clustering:
    row r opens a new cluster when cos(δ_r, c) < ``cos_threshold`` for every centre c so far
    (centres are the unit vectors of the rows that opened a cluster, in row order):
    :func:`adversary_dynamics.attack.count_distinct` with ``cos_threshold``.

    ``exclude``: optional boolean (R,) mask of rows to leave out (e.g. ``RestartProbe.flat[:, i]``,
    restarts that ended at a flat, locally constant point). Rows with a NaN or ±inf entry are
    always left out (no result is no maximum). Returns an int, or NaN (a float) when no row is
    left. Raises ValueError when ``deltas`` is not 2-D or ``exclude`` is not
    a boolean mask of shape (R,)."""
    if deltas.dim() != 2:
        raise ValueError(f"deltas must be (R, d), got shape {tuple(deltas.shape)}")
    if exclude is not None:
        if not torch.is_tensor(exclude) or exclude.dtype != torch.bool or exclude.shape != deltas.shape[:1]:
            raise ValueError(f"exclude must be a boolean tensor of shape ({deltas.shape[0]},), got "
                             f"{getattr(exclude, 'dtype', type(exclude).__name__)} "
                             f"{tuple(getattr(exclude, 'shape', ()))}")
        deltas = deltas[~exclude.to(deltas.device)]
        if deltas.shape[0] == 0:
            return math.nan
    n = int(count_distinct(deltas, cos_threshold=cos_threshold))
    # rows, but no finite one: nothing was found (NaN), not 0 maxima
    return math.nan if n == 0 and deltas.shape[0] > 0 else n


def flat_fraction(flat: torch.Tensor) -> torch.Tensor:
    """Share of restarts ending at a flat point, per input: ``flat`` (R, N) bool → (N,) float64
    in [0, 1] (NaN for R = 0)."""
    if flat.dtype != torch.bool or flat.dim() != 2:
        raise ValueError(f"flat must be a boolean (R, N) tensor, got {flat.dtype} {tuple(flat.shape)}")
    return flat.to(torch.float64).mean(0)


def nonlinearity_index(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: LossLike, eps,
                       points: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
    """Non-linearity index per input (see the module docstring); ``x`` is (N, d)."""
    fn = get_loss(loss)
    with torch.no_grad():
        ell0, g0 = input_gradient(model, x, y, loss=loss)
        dp = random_init((points, *x.shape), eps=eps, norm="l2", init="uniform_ball", generator=generator,
                         device=x.device, dtype=x.dtype)
        ell = fn(model(x.unsqueeze(0) + dp), y.expand(points, *y.shape))
        lin = (dp * g0.unsqueeze(0)).sum(-1)
        num = (ell - ell0.unsqueeze(0) - lin).abs().mean(0)
        den = lin.abs().mean(0)
        # no linear term (e.g. every hidden unit inactive at x): the index is undefined -> NaN
        undefined = den <= 1e-6 * (num + ell0.abs()).clamp_min(1e-30)
        return torch.where(undefined, torch.full_like(num, float("nan")), num / den.clamp_min(1e-30))


@dataclass
class PlaneSlice:
    """The loss on the disk ‖δ‖ ≤ ε of the plane span(u, v): u = δ*/‖δ*‖ (best PGA solution),
    v a random unit vector orthogonal to u. ``grid`` holds loss values at coordinates
    ``coords`` × ``coords`` (NaN outside the disk); ``circle`` the loss at angles ``angles`` on
    ‖δ‖ = ε; ``traj`` the PGA iterates projected onto (u, v), shape (T+1, R, 2)."""

    coords: torch.Tensor
    grid: torch.Tensor
    angles: torch.Tensor
    circle: torch.Tensor
    traj: torch.Tensor | None
    basis: torch.Tensor


def plane_slice(model: nn.Module, x: torch.Tensor, y: torch.Tensor, best_delta: torch.Tensor, *, loss: LossLike,
                eps: float, grid: int = 61, n_angles: int = 181, trajectories: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> PlaneSlice:
    """Loss over the plane through δ = 0 spanned by the best solution and a random orthogonal
    direction, for one input ``x`` (d,)."""
    fn = get_loss(loss)
    u = best_delta / torch.linalg.vector_norm(best_delta).clamp_min(1e-30)
    v = torch.randn(x.shape[-1], generator=generator, device=x.device, dtype=x.dtype)
    v = v - (v @ u) * u
    v = v / torch.linalg.vector_norm(v)
    basis = torch.stack([u, v])
    c = torch.linspace(-eps, eps, grid, device=x.device, dtype=x.dtype)
    a, b = torch.meshgrid(c, c, indexing="xy")  # a: u-coordinate (columns), b: v-coordinate (rows)
    pts = a.reshape(-1, 1) * u + b.reshape(-1, 1) * v
    theta = torch.linspace(0, 2 * math.pi, n_angles, device=x.device, dtype=x.dtype)
    circ = eps * (torch.cos(theta).unsqueeze(-1) * u + torch.sin(theta).unsqueeze(-1) * v)
    with torch.no_grad():
        vals = fn(model(x + pts), y.expand(pts.shape[0])).reshape(grid, grid)
        vals = torch.where(a * a + b * b <= eps * eps * (1 + 1e-6), vals, torch.full_like(vals, float("nan")))
        circle = fn(model(x + circ), y.expand(n_angles))
    traj = None
    if trajectories is not None:
        traj = trajectories @ basis.T
    return PlaneSlice(coords=c, grid=vals, angles=theta, circle=circle, traj=traj, basis=basis)
