r"""Escape from a local minimum of the adversarial loss: the experiment of the paper's Figs. 2–3.

Paper Sec. 5.1.2 (Deng, He, Huang & Su, ICML 2020): when ε is not small, a PGA trajectory that
starts near a local maximum of the paper's objective L = −ℓ (a local *minimum* of the adversarial
loss ℓ in the ball) makes progress slowly; Fig. 2 shows that this is worse at large input scale
(MNIST, a CNN at initialisation, scales 0.1 / 10 / 1000, ratios 0.001 … 10), Fig. 3 that it gets
worse during adversarial training (scale 0.1, epochs 0 / 10 / 100, ratios 0.1 / 1 / 10).

For one input (x, y), ball B = {δ : ‖δ‖₂ ≤ ε}, ε = ratio · s (s the input scale), the probe is:

1. **Descent stage** (:func:`descend`): an approximate local minimum δ* of ℓ(δ) = ℓ(F(x + δ), y)
   on B, by projected gradient *descent* from a uniform start δ_u = ε z (z uniform in the unit
   ball, one z per input shared by every ratio, :func:`unit_ball_starts`): :func:`~.attack.pga`
   on the negated loss −ℓ with normalised steps δ ← Π_B(δ − h ∇ℓ/‖∇ℓ‖), h = ``step_size`` · ε,
   run in ``stages`` stages of equal length with h halved from one stage to the next.
   The end point is checked (:func:`min_certificate`):

   * the projected-gradient mapping G_t(δ) = (δ − Π_B(δ − t ∇ℓ(δ)))/t with t = ``mapping_step``
     · ε/‖∇ℓ(δ_u)‖ is small relative to the gradient at the uniform start:
     ρ = ‖G_t(δ*)‖/‖∇ℓ(δ_u)‖ ≤ ``gtol`` (ρ = 0 exactly at a KKT point of min_B ℓ: an interior
     critical point, or a sphere point where −∇ℓ points outward along δ);
   * no improving feasible direction among K random ones and the mapping's own direction: for
     K unit directions v (uniform on the sphere) and v = −G_t/‖G_t‖,
     ℓ(Π_B(δ* + r ε v)) ≥ ℓ(δ*) − ``ftol`` · ℓ(δ_u), r = ``radius``.

   ``stationary`` = ρ ≤ gtol (a smooth critical point); ``converged`` = no improving direction.
   The two differ at the kinks of a ReLU/max-pool network, where ∇ℓ is one-sided: a local
   minimum on a kink keeps a one-sided gradient (ρ of order 0.1–0.5 measured on the digits CNN),
   yet a step along −G_t crosses the kink and raises ℓ; ``converged`` accepts such minima.
2. **PGA from δ*** (:func:`ascend`): the paper's update δ_{t+1} = Π_B(δ_t + η ∇ℓ(δ_t)),
   raw gradient, absolute step η (the same η at every scale and ratio), for T = ``steps``
   steps, recording ℓ_t = ℓ(δ_t), t = 0 … T. All (ratio × input) pairs of one model are one
   batched call (x of shape (R, N, d), per-example ε); Fig. 3's (ratio × checkpoint) models of
   a scale are one call through :class:`~adversary_dynamics.learning.models.StackedCNN`. From an
   interior minimum where ℓ ≈ 0 (F(x + δ*) ≈ e_y, reachable when ε is large) the gradient
   vanishes and, for a piecewise
   linear network with ℓ = ‖J δ + c‖² locally, the distance to the minimum grows like
   (1 + 2ησ²)^t (σ a singular value of J): the plateau lasts about log(ε/r₀)/log(1 + 2ησ²) steps,
   r₀ the descent's residual distance (of the order of its last step), which the descent's
   settings therefore set.
3. **Escape time** (:func:`escape_time`): with ℓ_max = max_t ℓ_t and the rise Δ = ℓ_max − ℓ_0,
   the first t with ℓ_t − ℓ_0 ≥ Δ/2 (steps until the loss has covered half of its total rise
   within the budget). When Δ ≤ ``rtol`` · max(|ℓ_0|, |ℓ_max|, reference) the trajectory has not
   left its start within T steps (or cannot rise): escape time NaN, ``escaped`` False. Such a
   run is ``flat`` when, in addition, the loss has no gradient at the uniform start to first
   order, ε‖∇ℓ(δ_u)‖ ≤ 10⁻⁶ · ℓ(δ_u) (e.g. a network whose output no longer depends on the
   input, as adversarial training at large ratios can leave it): nothing to escape from, as
   opposed to a trajectory stuck at its start.
   The relative step η‖∇ℓ(δ_0)‖/ε at the start, and η‖∇ℓ(δ_u)‖/ε at the uniform start (the
   typical gradient in the ball), tell a step-size effect from a landscape effect: for a
   positively homogeneous network ∇ℓ grows like s at large s while ε grows like s.

The paper plots −ℓ ("loss" of its minimisation form) against the step; the tables here keep ℓ
and the notebooks negate it. The aggregation of raw runs into the figures' tables
(:func:`run_rows`, :func:`curve_table`, :func:`write_tables`) is here too; scripts/escape.py is a
thin command line around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from adversary_dynamics.attack import pga, project
from adversary_dynamics.learning.losses import LossLike, get_loss
from adversary_dynamics.learning.models import StackedCNN  # noqa: F401  (defined in models; kept here so escape.StackedCNN still works)

__all__ = [
    "InputScaled",
    "DescentResult",
    "EscapeProbe",
    "unit_ball_starts",
    "descend",
    "min_certificate",
    "ascend",
    "escape_time",
    "probe_escape",
    "run_rows",
    "thin_steps",
    "curve_table",
    "write_tables",
    "ESCAPE_COLUMNS",
]

# the columns of escape.csv (helper "claims" reads these names)
ESCAPE_COLUMNS = [
    "scale", "ratio", "eps", "eta", "seed", "input", "label", "checkpoint", "loss_clean", "loss_ball",
    "loss_start", "loss_end", "loss_max", "loss_rise", "escaped", "flat", "escape_time", "relative_step",
    "relative_step_ball", "descent_converged", "descent_stationary", "descent_mapping", "descent_improving",
    "finite",
]


class InputScaled(nn.Module):
    """F_s(x) = F(x / s): ``model`` applied to the input divided by the input scale s, so that the
    network sees inputs of mean norm 1 at every scale (a fixed input normalisation, as a
    normalisation layer at initialisation would give). Inputs (*batch, d) -> (*batch, K).
    Raises ValueError unless ``scale`` is a finite number > 0."""

    def __init__(self, model: nn.Module, *, scale: float) -> None:
        super().__init__()
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.model = model
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x / self.scale)


def _check_positive(name: str, value, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    ok = ok and not isinstance(value, bool) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def unit_ball_starts(n: int, d: int, *, generator: torch.Generator | None = None, device="cpu",
                     dtype=torch.float32) -> torch.Tensor:
    """z (n, d), uniform in the unit l2 ball (direction uniform on the sphere, radius U^{1/d}).
    The descent of input i starts at δ_u = ε z_i for every ratio (ε = ratio · s), so that adding or
    removing a ratio changes no other start. Raises ValueError unless n, d are integers >= 1."""
    _check_positive("n", n, integer=True)
    _check_positive("d", d, integer=True)
    z = torch.randn((n, d), generator=generator, device=device, dtype=dtype)
    z = z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-30)
    r = torch.rand((n, 1), generator=generator, device=device, dtype=dtype) ** (1.0 / d)
    return z * r


def _neg(loss: LossLike):
    fn = get_loss(loss)

    def negated(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -fn(output, y)

    return negated


@dataclass
class DescentResult:
    """What :func:`descend` returns; every tensor has the batch shape of x unless stated.

    delta:        δ* (shaped like x), the approximate local minimum of ℓ on the ball.
    loss:         ℓ(δ*).
    loss_ball:    ℓ(δ_u) at the uniform start.
    grad_ball:    ‖∇ℓ(δ_u)‖₂ at the uniform start (the reference gradient of the checks).
    mapping:      ρ = ‖G_t(δ*)‖/‖∇ℓ(δ_u)‖ (module docstring).
    stationary:   ρ ≤ gtol.
    n_improving:  how many of the K + 1 probe points (K random directions and −G_t) lower ℓ by
                  more than ftol · ℓ(δ_u).
    converged:    n_improving == 0.
    """

    delta: torch.Tensor
    loss: torch.Tensor
    loss_ball: torch.Tensor
    grad_ball: torch.Tensor
    mapping: torch.Tensor
    stationary: torch.Tensor
    n_improving: torch.Tensor
    converged: torch.Tensor


def _grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, loss: LossLike):
    fn = get_loss(loss)
    with torch.enable_grad():
        xa = (x + delta).detach().requires_grad_(True)
        ell = fn(model(xa), y)
        (g,) = torch.autograd.grad(ell.sum(), xa)
    return ell.detach(), g


def min_certificate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    delta: torch.Tensor,
    *,
    loss: LossLike,
    eps: torch.Tensor,
    grad_ref: torch.Tensor,
    loss_ref: torch.Tensor,
    directions: int = 32,
    radius: float = 1e-2,
    mapping_step: float = 1e-2,
    gtol: float = 0.05,
    ftol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Approximate-local-minimum check of δ for min_{‖δ‖₂ ≤ ε} ℓ(F(x + δ), y) (module docstring).

    Shapes: x, delta (*batch, d); y, eps, grad_ref (‖∇ℓ‖ at a reference point, e.g. the uniform
    start), loss_ref (a reference loss level) broadcast to batch. Returns (ρ, stationary,
    n_improving, converged), each of the batch shape: ρ = ‖G_t(δ)‖/grad_ref with
    G_t(δ) = (δ − Π(δ − t∇ℓ))/t, t = mapping_step · ε/grad_ref; stationary = ρ ≤ gtol;
    n_improving = #{k : ℓ(Π(δ + radius·ε·v_k)) < ℓ(δ) − ftol · loss_ref} over K = ``directions``
    random unit v_k and v_{K+1} = −G_t/‖G_t‖ (left out where G_t = 0); converged = n_improving == 0.
    A point where ℓ(δ), ∇ℓ(δ) or a probe's ℓ is NaN or ±inf is neither stationary nor converged
    (NaN comparisons are false, which would otherwise count no improving direction).
    Raises ValueError for directions < 1 or non-positive radius / mapping_step / gtol, or a
    negative ftol.
    """
    _check_positive("directions", directions, integer=True)
    _check_positive("radius", radius)
    _check_positive("mapping_step", mapping_step)
    _check_positive("gtol", gtol)
    _check_positive("ftol", ftol, allow_zero=True)
    batch = x.shape[:-1]
    y = y.expand(batch)
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(batch)
    gref = torch.as_tensor(grad_ref, dtype=x.dtype, device=x.device).expand(batch).clamp_min(1e-30)
    lref = torch.as_tensor(loss_ref, dtype=x.dtype, device=x.device).expand(batch)
    fn = get_loss(loss)
    with torch.no_grad():
        ell, g = _grad(model, x, y, delta, loss)
        t = (mapping_step * e / gref).unsqueeze(-1)
        G = (delta - project(delta - t * g, eps=e)) / t
        rho = torch.linalg.vector_norm(G, dim=-1) / gref
        # probe directions along a new second-to-last dimension (*batch, K + 1, d), so that the leading
        # batch dimensions stay in front (a StackedCNN's model rows)
        v = torch.randn((*batch, directions, x.shape[-1]), generator=generator, device=x.device, dtype=x.dtype)
        v = torch.cat([v, -G.unsqueeze(-2)], -2)  # G = 0 gives v = 0: the probe point is δ itself
        v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-30)
        K = directions + 1
        ek = e.unsqueeze(-1).expand(*batch, K)
        cand = project(delta.unsqueeze(-2) + (radius * ek).unsqueeze(-1) * v, eps=ek)
        ell2 = fn(model(x.unsqueeze(-2) + cand), y.unsqueeze(-1).expand(*batch, K))
        n_imp = (ell2 < ell.unsqueeze(-1) - ftol * lref.abs().unsqueeze(-1)).sum(-1)
        finite = torch.isfinite(ell) & torch.isfinite(g).all(-1) & torch.isfinite(ell2).all(-1)
    return rho, (rho <= gtol) & finite, n_imp, (n_imp == 0) & finite


def descend(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: LossLike,
    eps,
    start: torch.Tensor,
    steps: int = 200,
    step_size: float = 0.1,
    stages: int = 4,
    directions: int = 32,
    radius: float = 1e-2,
    mapping_step: float = 1e-2,
    gtol: float = 0.05,
    ftol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> DescentResult:
    """The descent stage: an approximate local minimum of ℓ on {‖δ‖₂ ≤ ε} (module docstring, step 1).

    x (*batch, d); y and ``eps`` (ε, absolute, > 0) broadcast to batch; ``start`` δ_u, shaped like
    x (e.g. ε z with z from :func:`unit_ball_starts`). Projected descent with normalised steps
    h_k = ``step_size`` · ε · 2^(−k) in stage k = 0 … ``stages`` − 1, ⌈steps/stages⌉ steps each
    (:func:`~.attack.pga` on −ℓ), then :func:`min_certificate` with K = ``directions``, probe
    length ``radius`` · ε, ``mapping_step``, ``gtol`` and ``ftol``; its random directions come
    from ``generator``. Returns a :class:`DescentResult`. Raises ValueError for steps < 1,
    stages < 1 or step_size ≤ 0 (and the errors of pga and min_certificate).
    """
    _check_positive("steps", steps, integer=True)
    _check_positive("stages", stages, integer=True)
    _check_positive("step_size", step_size)
    batch = x.shape[:-1]
    y = y.expand(batch)
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(batch).contiguous()
    neg = _neg(loss)
    per_stage = -(-steps // stages)
    delta, first = start, None
    for k in range(stages):
        res = pga(model, x, y, loss=neg, eps=e, steps=per_stage, step_size=e * (step_size * 0.5 ** k),
                  gradient="normalized", delta0=delta)
        if first is None:
            first = res
        delta = res.delta
    loss_ball, grad_ball = -first.losses[0], first.grad_norm[0]
    ell = -res.losses[-1]
    rho, stat, n_imp, ok = min_certificate(model, x, y, delta, loss=loss, eps=e, grad_ref=grad_ball, loss_ref=loss_ball,
                                     directions=directions, radius=radius, mapping_step=mapping_step, gtol=gtol,
                                     ftol=ftol, generator=generator)
    return DescentResult(delta=delta, loss=ell, loss_ball=loss_ball, grad_ball=grad_ball, mapping=rho,
                         stationary=stat, n_improving=n_imp, converged=ok)


def ascend(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta0: torch.Tensor, *, loss: LossLike, eps,
           step_size: float, steps: int = 1000):
    """PGA from ``delta0`` with the paper's update δ ← Π_B(δ + η∇ℓ) (raw gradient, absolute η =
    ``step_size``) for ``steps`` steps: :func:`~.attack.pga`'s :class:`~.attack.PGAResult`
    (``losses`` (T+1, *batch): ℓ at δ_0 = Π_B(delta0) … δ_T; ``grad_norm`` likewise).
    Shapes as :func:`~.attack.pga` (x (*batch, d), per-example ε)."""
    _check_positive("step_size", step_size)
    return pga(model, x, y, loss=loss, eps=eps, steps=steps, step_size=float(step_size), gradient="raw",
               delta0=delta0)


def escape_time(losses, *, rtol: float = 1e-3, reference=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Escape time of loss curves ℓ_0 … ℓ_T along dim 0 (``losses`` (T+1, *batch), a tensor or array).

    Δ = ℓ_max − ℓ_0 with ℓ_max = max_t ℓ_t (the total rise); escape time = min{t : ℓ_t − ℓ_0 ≥ Δ/2}
    (an integer step, as float). A curve counts as not escaped (escape time NaN) when
    Δ ≤ rtol · max(|ℓ_0|, |ℓ_max|, |reference|) (``reference``: a typical loss level, broadcast to
    batch; 0 when None) or when any ℓ_t of the curve is NaN or ±inf (a non-finite curve never
    escapes). Returns (escape_time, escaped, Δ), each of shape batch. Raises ValueError for an empty curve or rtol < 0.
    """
    L = torch.as_tensor(losses).to(torch.float64)
    if L.dim() < 1 or L.shape[0] < 1:
        raise ValueError(f"losses must have shape (T+1, *batch) with T+1 >= 1, got {tuple(L.shape)}")
    _check_positive("rtol", rtol, allow_zero=True)
    l0, lmax = L[0], L.max(0).values
    rise = lmax - l0
    ref = torch.zeros_like(l0) if reference is None else torch.as_tensor(reference, dtype=L.dtype).expand_as(l0)
    level = torch.maximum(torch.maximum(l0.abs(), lmax.abs()), ref.abs())
    escaped = torch.isfinite(L).all(0) & torch.isfinite(rise) & (rise > rtol * level)
    reached = (L - l0) >= 0.5 * rise
    first = reached.to(torch.int64).argmax(0).to(torch.float64)  # first True (ℓ_max itself reaches it)
    t = torch.where(escaped, first, torch.full_like(first, math.nan))
    return t, escaped, rise


@dataclass
class EscapeProbe:
    """One model's escape probe (:func:`probe_escape`); batch shape (R, N) = (ratios, inputs).

    eps, loss_clean (ℓ at δ = 0), descent (:class:`DescentResult`), losses (T+1, R, N) along the
    PGA trajectory, grad_norm (T+1, R, N), escape_time / escaped / rise (:func:`escape_time`),
    relative_step = η‖∇ℓ(δ_0)‖/ε, relative_step_ball = η‖∇ℓ(δ_u)‖/ε, flat = not escaped and
    ε‖∇ℓ(δ_u)‖ ≤ 10⁻⁶ ℓ(δ_u) (module docstring), finite = ℓ(δ = 0), the descent's ℓ(δ_u) and
    ℓ(δ*) and every ℓ_t of the PGA trajectory are finite (where False: not escaped, not flat, the
    descent not converged).
    """

    eps: torch.Tensor
    loss_clean: torch.Tensor
    descent: DescentResult
    losses: torch.Tensor
    grad_norm: torch.Tensor
    escape_time: torch.Tensor
    escaped: torch.Tensor
    rise: torch.Tensor
    relative_step: torch.Tensor
    relative_step_ball: torch.Tensor
    flat: torch.Tensor
    finite: torch.Tensor


FLAT_TOL = 1e-6  # flat: ε‖∇ℓ(δ_u)‖ ≤ FLAT_TOL · ℓ(δ_u) and no rise


def probe_escape(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    ratios: Sequence[float],
    scale: float,
    loss: LossLike,
    step_size: float,
    steps: int = 1000,
    starts: torch.Tensor,
    descent: dict[str, Any] | None = None,
    rtol: float = 1e-3,
    generator: torch.Generator | None = None,
) -> EscapeProbe:
    """The probe of Figs. 2–3: every (row, input) pair in one batched descent and one batched PGA
    call (x expanded to (R, N, d), ε = ratios[i] · scale in row i). Fig. 2: one model, one row per
    ratio. Fig. 3: a :class:`~adversary_dynamics.learning.models.StackedCNN` whose row i is model i (a
    ratio may then repeat, once per checkpoint).

    x (N, d) inputs already at input scale ``scale``; y (N,) labels; ``starts`` z (N, d) in the
    unit ball (:func:`unit_ball_starts`; δ_u = ε z); ``step_size`` η absolute; ``steps`` T;
    ``descent``: keyword arguments of :func:`descend` (steps, step_size, stages, directions,
    radius, mapping_step, gtol, ftol); ``rtol``: :func:`escape_time`'s (reference = ℓ(δ_u));
    ``generator``: the certificate's random directions. Returns an :class:`EscapeProbe`.
    Raises ValueError for an empty ``ratios``, a ratio ≤ 0, scale ≤ 0, or x / y / starts of the
    wrong shapes.
    """
    ratios = [float(r) for r in ratios]
    if not ratios or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise ValueError(f"ratios must be a non-empty list of finite numbers > 0, got {ratios!r}")
    _check_positive("scale", scale)
    if x.dim() != 2 or y.shape != x.shape[:1] or starts.shape != x.shape:
        raise ValueError(f"x must be (N, d), y (N,) and starts (N, d); got {tuple(x.shape)}, {tuple(y.shape)}, "
                         f"{tuple(starts.shape)}")
    R, (N, d) = len(ratios), x.shape
    eps = (torch.tensor(ratios, dtype=x.dtype, device=x.device) * float(scale)).unsqueeze(-1).expand(R, N).contiguous()
    xb, yb = x.expand(R, N, d), y.expand(R, N)
    with torch.no_grad():
        loss_clean = get_loss(loss)(model(xb), yb)
    des = descend(model, xb, yb, loss=loss, eps=eps, start=eps.unsqueeze(-1) * starts.to(x.dtype),
                  generator=generator, **(descent or {}))
    res = ascend(model, xb, yb, des.delta, loss=loss, eps=eps, step_size=step_size, steps=steps)
    t, esc, rise = escape_time(res.losses, rtol=rtol, reference=des.loss_ball)
    finite = (torch.isfinite(res.losses).all(0) & torch.isfinite(loss_clean) & torch.isfinite(des.loss_ball)
              & torch.isfinite(des.loss))
    flat = ~esc.to(eps.device) & (eps * des.grad_ball <= FLAT_TOL * des.loss_ball.abs()) & finite
    return EscapeProbe(eps=eps, loss_clean=loss_clean, descent=des, losses=res.losses, grad_norm=res.grad_norm,
                       escape_time=t, escaped=esc, rise=rise, relative_step=step_size * res.grad_norm[0] / eps,
                       relative_step_ball=step_size * des.grad_ball / eps, flat=flat, finite=finite)


def run_rows(probe: EscapeProbe, *, scale: float, ratios: Sequence[float], eta: float, seed: int,
             checkpoint: int | Sequence[int], labels: torch.Tensor) -> list[dict[str, Any]]:
    """escape.csv rows (columns :data:`ESCAPE_COLUMNS`) of one probe, row-major (``ratios[i]``,
    ``checkpoint`` or ``checkpoint[i]`` per row i of the batch) then input: the order of
    ``probe.losses.reshape(T+1, -1)``'s columns. loss_rise = ℓ_max − ℓ_0 (the total rise of
    :func:`escape_time`); loss_end = ℓ_T; finite = :attr:`EscapeProbe.finite` (the run's losses
    are all finite; the claims leave the other rows out)."""
    L = probe.losses.to(torch.float64).cpu()
    R, N = L.shape[1:]
    d = probe.descent
    cols = {
        "eps": probe.eps, "loss_clean": probe.loss_clean, "loss_ball": d.loss_ball, "loss_start": L[0],
        "loss_end": L[-1], "loss_max": L.max(0).values, "loss_rise": probe.rise, "escaped": probe.escaped,
        "flat": probe.flat,
        "escape_time": probe.escape_time, "relative_step": probe.relative_step,
        "relative_step_ball": probe.relative_step_ball, "descent_converged": d.converged,
        "descent_stationary": d.stationary,
        "descent_mapping": d.mapping, "descent_improving": d.n_improving, "finite": probe.finite,
    }
    cols = {k: v.detach().cpu().tolist() for k, v in cols.items()}
    lab = labels.cpu().tolist()
    cks = [int(checkpoint)] * R if isinstance(checkpoint, int) else [int(c) for c in checkpoint]
    if len(cks) != R or len(ratios) != R:
        raise ValueError(f"ratios and checkpoint must give one value per row ({R}), got {len(ratios)} and {len(cks)}")
    rows = []
    for i in range(R):
        for j in range(N):
            r = {"scale": float(scale), "ratio": float(ratios[i]), "eta": float(eta), "seed": int(seed),
                 "input": j, "label": int(lab[j]), "checkpoint": cks[i]}
            for k, v in cols.items():
                val = v[i][j]
                r[k] = float(val) if isinstance(val, float) else val
            rows.append(r)
    return rows


# ---- tables of the figures: adversary_dynamics.figures.escape_tables (no torch: a tables job starts fast) ----
from adversary_dynamics.figures.escape_tables import curve_table, thin_steps, write_tables  # noqa: E402,F401
