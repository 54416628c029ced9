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
   positively homogeneous network ∇ℓ grows like s at large s while ε grows like s. (At an exact
   minimum ∇ℓ(δ_0) ≈ 0 by construction, so the uniform start's relative step is the fairer axis.)
4. **Censoring** (:func:`censoring`, a rule fixed in the configuration before the runs,
   ``paper_escape.censor_*``): a half-rise time that the step budget T decides is not an escape
   time but a censored observation, "escape time > T". A finite, non-flat run is *censored* when

   (a) its rise is no departure from the start: Δ ≤ ``min_rise`` · ε‖∇ℓ(δ_u)‖, the first-order
       range of ℓ over the ball at the uniform start (measured on the default digits run, Figs. 2–3:
       runs that leave their start rise by 0.80–4.0 of it, runs that only start to move from an
       exact minimum by 4·10⁻⁵–0.021), or it has no rise beyond round-off (Δ ≤ rtol · level,
       above); or
   (b) it is still rising at the budget: more than ``tail_rise`` of Δ is first reached in the last
       ``tail`` · T steps, tail share = (ℓ_max − max_{t ≤ T − ⌈tail·T⌉} ℓ_t)/Δ (measured: 0.39–0.82
       of the rise in the last 10 % of the steps for the late movers and one run with a second
       rise near the end, ≤ 0.045 for the others).

   Why ε‖∇ℓ(δ_u)‖ and not the loss level ℓ(δ_u): at small ratios the ball is tiny and a clean
   one-step escape rises by ~2 ε‖∇ℓ‖, only 10⁻⁵ of ℓ(δ_u) at scale 0.1, ratio 0.001, the size of
   a creep; relative to the ball's first-order range both a tiny-ball escape (≈ 2) and a creep
   (rise ≈ T η‖∇ℓ‖² ≪ ε‖∇ℓ‖ when PGA cannot cross the ball within T) are measured fairly.

   ``escaped`` = finite, not flat and not censored; every finite run is then exactly one of
   escaped, censored or flat. escape_time is the half-rise step where escaped, +inf (> T) where
   censored, NaN where flat or non-finite (no escape time defined); the raw half-rise step is kept
   as ``half_rise_step``. With one budget T for every run this is type-I censoring: every censored
   run is known to exceed every observed escape time, and censored runs are mutually unordered,
   so ranks with censored runs tied at +inf (claims T5, T6) respect the censoring, and the
   Kaplan–Meier survival curve (:func:`survival_table`) is the empirical share not yet escaped.

The paper plots −ℓ ("loss" of its minimisation form) against the step; the tables here keep ℓ
and the notebooks negate it. The aggregation of raw runs into the figures' tables
(:func:`run_rows`, :func:`curve_table`, :func:`write_tables`) is here too; scripts/escape.py is a
thin command line around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    "STEP_RULES",
    "step_of",
    "relative_step",
    "escape_time",
    "nudge_ulps",
    "censoring",
    "CENSOR_DEFAULTS",
    "probe_escape",
    "run_rows",
    "thin_steps",
    "curve_table",
    "survival_table",
    "escape_summary",
    "write_tables",
    "ESCAPE_COLUMNS",
]

from adversary_dynamics.figures.escape_tables import ESCAPE_COLUMNS  # noqa: E402  (escape.csv's columns; torch-free)


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


#: the step rules of the PGA stage (``paper_escape.step_rule``): the paper's absolute η, η ∝ ε, and a
#: normalised step of length c·ε (:func:`ascend`)
STEP_RULES = ("absolute", "proportional", "normalized")


def step_of(step_rule: str, step_size: float, eps):
    """The step η of :func:`ascend` under ``step_rule`` (``eps`` ε, a number or tensor (*batch)):
    ``absolute`` η = ``step_size`` (the paper's update, the same η at every scale and ratio);
    ``proportional`` η = ``step_size`` · ε (a fixed fraction of the ball per unit gradient);
    ``normalized`` η = ``step_size`` · ε, applied to the unit gradient (each step moves c·ε).
    Raises ValueError for an unknown rule."""
    if step_rule not in STEP_RULES:
        raise ValueError(f"step_rule must be one of {STEP_RULES}, got {step_rule!r}")
    return float(step_size) if step_rule == "absolute" else step_size * eps


def ascend(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta0: torch.Tensor, *, loss: LossLike, eps,
           step_size: float, steps: int = 1000, step_rule: str = "absolute"):
    """PGA from ``delta0`` for ``steps`` steps under ``step_rule`` (:func:`step_of`): the paper's
    update δ ← Π_B(δ + η∇ℓ) (``absolute``: raw gradient, absolute η = ``step_size``; Sec. 5.1.2),
    δ ← Π_B(δ + c ε ∇ℓ) (``proportional``, c = ``step_size``) or δ ← Π_B(δ + c ε ∇ℓ/‖∇ℓ‖)
    (``normalized``). Returns :func:`~.attack.pga`'s :class:`~.attack.PGAResult` (``losses``
    (T+1, *batch): ℓ at δ_0 = Π_B(delta0) … δ_T; ``grad_norm`` likewise). Shapes as
    :func:`~.attack.pga` (x (*batch, d), per-example ε). Raises ValueError for step_size ≤ 0 or
    an unknown rule."""
    _check_positive("step_size", step_size)
    eta = step_of(step_rule, step_size, eps)
    return pga(model, x, y, loss=loss, eps=eps, steps=steps, step_size=eta,
               gradient="normalized" if step_rule == "normalized" else "raw", delta0=delta0)


def relative_step(step_rule: str, step_size: float, eps, grad_norm):
    """The step relative to the ball, ‖δ_{t+1} − δ_t‖/ε before projection: η‖∇ℓ‖/ε (``absolute``,
    ``proportional``) or c (``normalized``, where ∇ℓ ≠ 0), for a gradient norm ``grad_norm``."""
    eta = step_of(step_rule, step_size, eps)
    if step_rule == "normalized":
        return torch.where(grad_norm > 0, torch.full_like(grad_norm, float(step_size)), torch.zeros_like(grad_norm))
    return eta * grad_norm / eps


def escape_time(losses, *, rtol: float = 1e-3, reference=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Escape time of loss curves ℓ_0 … ℓ_T along dim 0 (``losses`` (T+1, *batch), a tensor or array).

    Δ = ℓ_max − ℓ_0 with ℓ_max = max_t ℓ_t (the total rise); escape time = min{t : ℓ_t − ℓ_0 ≥ Δ/2}
    (an integer step, as float): the raw half-rise step, which :func:`probe_escape` keeps as
    ``half_rise_step`` and reports as the escape time only where :func:`censoring` does not
    censor the run. The second value ("escaped") says only that the curve rose: it is False
    (escape time NaN) when
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


# the censoring rule's defaults (config paper_escape.censor_min_rise, censor_tail, censor_tail_rise)
CENSOR_DEFAULTS = {"min_rise": 0.1, "tail": 0.1, "tail_rise": 0.25}


def censoring(losses, *, first_order, min_rise: float = CENSOR_DEFAULTS["min_rise"],
              tail: float = CENSOR_DEFAULTS["tail"], tail_rise: float = CENSOR_DEFAULTS["tail_rise"]
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The censoring rule of the escape time (module docstring, step 4) for loss curves ℓ_0 … ℓ_T
    along dim 0 (``losses`` (T+1, *batch)).

    ``first_order`` (broadcast to batch): ε‖∇ℓ(δ_u)‖, the first-order range of ℓ over the ball
    at the uniform start. With Δ = ℓ_max − ℓ_0, returns (rise_first_order, tail_share,
    censored_rise, censored_late), each of shape batch (float64 / bool):

    * rise_first_order = Δ / first_order (+inf where first_order = 0 < Δ, NaN where both are 0);
    * tail_share = (ℓ_max − max_{t ≤ T−k} ℓ_t)/Δ with k = ⌈``tail`` · T⌉ (at least 1 step when
      T ≥ 1): the share of the rise first reached in the last k steps (0 where Δ ≤ 0);
    * censored_rise (rule a) = Δ ≤ ``min_rise`` · first_order (no departure from the start);
    * censored_late (rule b) = tail_share > ``tail_rise`` (still rising at the budget).

    Non-finite curves give False in both rules (they are neither escaped nor censored). Raises
    ValueError for an empty curve, min_rise < 0, tail not in (0, 1) or tail_rise not in [0, 1).
    """
    L = torch.as_tensor(losses).to(torch.float64)
    if L.dim() < 1 or L.shape[0] < 1:
        raise ValueError(f"losses must have shape (T+1, *batch) with T+1 >= 1, got {tuple(L.shape)}")
    _check_positive("min_rise", min_rise, allow_zero=True)
    if not (isinstance(tail, (int, float)) and 0 < tail < 1):
        raise ValueError(f"tail must be a number in (0, 1), got {tail!r}")
    if not (isinstance(tail_rise, (int, float)) and 0 <= tail_rise < 1):
        raise ValueError(f"tail_rise must be a number in [0, 1), got {tail_rise!r}")
    T = L.shape[0] - 1
    l0, lmax = L[0], L.max(0).values
    rise = lmax - l0
    fo = torch.as_tensor(first_order, dtype=L.dtype).expand_as(l0)
    with torch.no_grad():
        ratio = torch.where(fo > 0, rise / fo.clamp_min(1e-300),
                            torch.where(rise > 0, torch.full_like(rise, math.inf), torch.full_like(rise, math.nan)))
        k = min(max(math.ceil(tail * T), 1), T) if T >= 1 else 0
        if k > 0:
            early = L[: T - k + 1].max(0).values
            share = torch.where(rise > 0, (lmax - early) / rise.clamp_min(1e-300), torch.zeros_like(rise))
        else:
            share = torch.zeros_like(rise)
        finite = torch.isfinite(L).all(0) & torch.isfinite(fo)
        c_rise = finite & (rise <= min_rise * fo)
        c_late = finite & (share > tail_rise)
    return ratio, share, c_rise, c_late


@dataclass
class EscapeProbe:
    """One model's escape probe (:func:`probe_escape`); batch shape (R, N) = (ratios, inputs).

    eps, loss_clean (ℓ at δ = 0), descent (:class:`DescentResult`), losses (T+1, R, N) along the
    PGA trajectory, grad_norm (T+1, R, N), half_rise_step and rise (:func:`escape_time`: the
    raw half-rise step, NaN without a rise beyond round-off), relative_step = η‖∇ℓ(δ_0)‖/ε,
    relative_step_ball = η‖∇ℓ(δ_u)‖/ε (:func:`relative_step`), flat = no rise beyond round-off and ε‖∇ℓ(δ_u)‖ ≤ 10⁻⁶ ℓ(δ_u)
    (module docstring), finite = ℓ(δ = 0), the descent's ℓ(δ_u) and ℓ(δ*) and every ℓ_t of the PGA
    trajectory are finite (where False: not escaped, not flat, not censored, the descent not
    converged); rise_first_order, tail_share, censored_rise (rule a), censored_late (rule b) of
    :func:`censoring`; censored = finite, not flat and (no rise, rule a or rule b); escaped =
    finite, not flat and not censored; escape_time = half_rise_step where escaped, +inf where
    censored (> T), NaN otherwise. replicas: the probes from δ_u moved by ``replica_ulps`` ulps
    (each with its own descent; empty without replicas).
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
    half_rise_step: torch.Tensor
    rise_first_order: torch.Tensor
    tail_share: torch.Tensor
    censored: torch.Tensor
    censored_rise: torch.Tensor
    censored_late: torch.Tensor
    replicas: list = field(default_factory=list)


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
    censor: dict[str, float] | None = None,
    generator: torch.Generator | None = None,
    start_ulp: int = 0,
    replica_ulps: Sequence[int] = (),
    step_rule: str = "absolute",
) -> EscapeProbe:
    """The probe of Figs. 2–3: every (row, input) pair in one batched descent and one batched PGA
    call (x expanded to (R, N, d), ε = ratios[i] · scale in row i). Fig. 2: one model, one row per
    ratio. Fig. 3: a :class:`~adversary_dynamics.learning.models.StackedCNN` whose row i is model i (a
    ratio may then repeat, once per checkpoint).

    x (N, d) inputs already at input scale ``scale``; y (N,) labels; ``starts`` z (N, d) in the
    unit ball (:func:`unit_ball_starts`; δ_u = ε z); ``step_size`` η (absolute) or c (a fraction of
    ε) by ``step_rule`` (:func:`ascend`; the paper's: ``absolute``); ``steps`` T;
    ``descent``: keyword arguments of :func:`descend` (steps, step_size, stages, directions,
    radius, mapping_step, gtol, ftol); ``rtol``: :func:`escape_time`'s (reference = ℓ(δ_u));
    ``censor``: keyword arguments of :func:`censoring` (min_rise, tail, tail_rise; defaults
    :data:`CENSOR_DEFAULTS`); ``generator``: the certificate's random directions. ``start_ulp`` k ≥ 0:
    the probe starts from the uniform start δ_u moved k units in the last place (:func:`nudge_ulps`;
    0: δ_u itself), a deliberately perturbed start. ``replica_ulps``: for each k in it, the whole
    probe again (descent, certificate with the same directions, PGA) from δ_u moved ``start_ulp`` + k
    ulps: rounding-level perturbations of the trajectories, from which the claims measure a
    statistic's numerical margin (:attr:`EscapeProbe.replicas`). The perturbation enters before the
    descent because the descent is where rounding is amplified: measured on the default, a 1-ulp
    change of the descent's end point δ* moved 1 of 120 Fig. 2 escape times (by one step) and left
    T5/T6's statistics unchanged, while rebuilds on another CPU moved median escape times by ~10 steps.
    Returns an :class:`EscapeProbe`. Raises ValueError for an empty ``ratios``, a ratio ≤ 0,
    scale ≤ 0, a negative ``start_ulp`` or replica ulp, unknown ``censor`` keys, or x / y / starts of
    the wrong shapes.
    """
    ratios = [float(r) for r in ratios]
    if not ratios or not all(math.isfinite(r) and r > 0 for r in ratios):
        raise ValueError(f"ratios must be a non-empty list of finite numbers > 0, got {ratios!r}")
    _check_positive("scale", scale)
    if x.dim() != 2 or y.shape != x.shape[:1] or starts.shape != x.shape:
        raise ValueError(f"x must be (N, d), y (N,) and starts (N, d); got {tuple(x.shape)}, {tuple(y.shape)}, "
                         f"{tuple(starts.shape)}")
    for name, k in (("start_ulp", start_ulp), *((f"replica_ulps[{i}]", k) for i, k in enumerate(replica_ulps))):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"{name} must be an integer >= 0 (units in the last place), got {k!r}")
    step_of(step_rule, 1.0, 1.0)  # an unknown rule is refused before any step
    R, (N, d) = len(ratios), x.shape
    eps = (torch.tensor(ratios, dtype=x.dtype, device=x.device) * float(scale)).unsqueeze(-1).expand(R, N).contiguous()
    xb, yb = x.expand(R, N, d), y.expand(R, N)
    with torch.no_grad():
        loss_clean = get_loss(loss)(model(xb), yb)
    unknown = set(censor or {}) - set(CENSOR_DEFAULTS)
    if unknown:
        raise ValueError(f"censor: unknown keys {sorted(unknown)} (expected {sorted(CENSOR_DEFAULTS)})")
    start = eps.unsqueeze(-1) * starts.to(x.dtype)
    g_state = generator.get_state() if generator is not None else None

    def from_start(k: int) -> EscapeProbe:
        if generator is not None:  # every run draws the certificate's directions from the same state
            generator.set_state(g_state)
        des = descend(model, xb, yb, loss=loss, eps=eps, start=nudge_ulps(start, k), generator=generator,
                      **(descent or {}))
        res = ascend(model, xb, yb, des.delta, loss=loss, eps=eps, step_size=step_size, steps=steps,
                     step_rule=step_rule)
        half, rose, rise = escape_time(res.losses, rtol=rtol, reference=des.loss_ball)
        dev = eps.device
        half, rose, rise = half.to(dev), rose.to(dev), rise.to(dev)
        finite = (torch.isfinite(res.losses).all(0) & torch.isfinite(loss_clean) & torch.isfinite(des.loss_ball)
                  & torch.isfinite(des.loss))
        flat = ~rose & (eps * des.grad_ball <= FLAT_TOL * des.loss_ball.abs()) & finite
        ratio, share, c_rise, c_late = censoring(res.losses, first_order=(eps * des.grad_ball).to(torch.float64),
                                                 **{**CENSOR_DEFAULTS, **(censor or {})})
        ratio, share, c_rise, c_late = ratio.to(dev), share.to(dev), c_rise.to(dev), c_late.to(dev)
        censored = finite & ~flat & (~rose | c_rise | c_late)
        escaped = finite & ~flat & ~censored
        t = torch.where(escaped, half, torch.where(censored, torch.full_like(half, math.inf),
                                                   torch.full_like(half, math.nan)))
        return EscapeProbe(eps=eps, loss_clean=loss_clean, descent=des, losses=res.losses, grad_norm=res.grad_norm,
                           escape_time=t, escaped=escaped, rise=rise,
                           relative_step=relative_step(step_rule, step_size, eps, res.grad_norm[0]),
                           relative_step_ball=relative_step(step_rule, step_size, eps, des.grad_ball), flat=flat,
                           finite=finite, half_rise_step=half, rise_first_order=ratio, tail_share=share,
                           censored=censored, censored_rise=c_rise & finite & ~flat,
                           censored_late=c_late & finite & ~flat)

    probe = from_start(start_ulp)
    probe.replicas = [from_start(start_ulp + k) for k in replica_ulps]
    return probe


def nudge_ulps(delta: torch.Tensor, k: int) -> torch.Tensor:
    """δ with every coordinate moved ``k`` ≥ 0 units in the last place towards +∞
    (``torch.nextafter`` applied k times; a new tensor, same shape and dtype; k = 0 returns δ
    itself): the smallest perturbation of a trajectory's start that its dtype can represent, a
    stand-in for the rounding differences between CPUs, thread counts and BLAS kernels."""
    if k == 0:
        return delta
    up = torch.full_like(delta, math.inf)
    out = delta
    for _ in range(int(k)):
        out = torch.nextafter(out, up)
    return out


def run_rows(probe: EscapeProbe, *, scale: float, ratios: Sequence[float], eta: float | torch.Tensor, seed: int,
             checkpoint: int | Sequence[int], labels: torch.Tensor) -> list[dict[str, Any]]:
    """escape.csv rows (columns :data:`ESCAPE_COLUMNS`) of one probe, row-major (``ratios[i]``,
    ``checkpoint`` or ``checkpoint[i]`` per row i of the batch) then input: the order of
    ``probe.losses.reshape(T+1, -1)``'s columns. eta: the PGA step of each run, a number or a tensor
    shaped like ``probe.eps`` (:func:`step_of`: η under the absolute and proportional rules, the
    step length c·ε under the normalised one). loss_rise = ℓ_max − ℓ_0 (the total rise of
    :func:`escape_time`); loss_end = ℓ_T; finite = :attr:`EscapeProbe.finite` (the run's losses
    are all finite; the claims leave the other rows out); escape_time +inf where censored (> T),
    NaN where flat or non-finite; half_rise_step the raw half-rise step; censored, censored_rise
    (rule a), censored_late (rule b), rise_first_order and tail_share as :class:`EscapeProbe`."""
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
        "half_rise_step": probe.half_rise_step, "rise_first_order": probe.rise_first_order,
        "tail_share": probe.tail_share, "censored": probe.censored, "censored_rise": probe.censored_rise,
        "censored_late": probe.censored_late,
    }
    if isinstance(eta, torch.Tensor):
        cols["eta"] = eta.expand_as(probe.eps)
    cols = {k: v.detach().cpu().tolist() for k, v in cols.items()}
    lab = labels.cpu().tolist()
    cks = [int(checkpoint)] * R if isinstance(checkpoint, int) else [int(c) for c in checkpoint]
    if len(cks) != R or len(ratios) != R:
        raise ValueError(f"ratios and checkpoint must give one value per row ({R}), got {len(ratios)} and {len(cks)}")
    rows = []
    for i in range(R):
        for j in range(N):
            r = {"scale": float(scale), "ratio": float(ratios[i]),
                 "eta": None if "eta" in cols else float(eta),  # a tensor's values: filled below, in this place
                 "seed": int(seed), "input": j, "label": int(lab[j]), "checkpoint": cks[i]}
            for k, v in cols.items():
                val = v[i][j]
                r[k] = float(val) if isinstance(val, float) else val
            rows.append(r)
    return rows


# ---- tables of the figures: adversary_dynamics.figures.escape_tables (no torch: a tables job starts fast) ----
from adversary_dynamics.figures.escape_tables import (SURVIVAL_GROUPS, curve_table, escape_summary,  # noqa: E402,F401
                                                       survival_table, thin_steps, write_tables)
