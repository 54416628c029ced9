r"""Projected gradient ascent (PGA) on input perturbations, and a local-maximum certificate.

The adversary's problem (the paper's inner maximisation), per example (x, y)::

    maximise   ℓ(F(x + δ), y)   over   δ ∈ S,
    S = { δ : ‖δ‖₂ ≤ ε }   ("l2", the paper's ball)   or   { δ : ‖δ‖_∞ ≤ ε }   ("linf").

PGA iterates, from δ₀ given by ``init``::

    δ_{t+1} = Π_S( δ_t + η · D(∇_δ ℓ(F(x + δ_t), y)) ),

with D the identity (``gradient="raw"``, the paper's update), g ↦ g/‖g‖₂ per example
(``"normalized"``, Madry et al. / torchattacks for l2) or g ↦ sign(g) (``"sign"``, for linf).
Π_S is the Euclidean projection: δ · min(1, ε/‖δ‖₂) for l2, clip(δ, −ε, ε) for linf.
With ``clamp=(lo, hi)`` the iterate is then replaced by clip(x + δ, lo, hi) − x
(torchattacks' convention; the feasible set becomes S ∩ [lo − x, hi − x]).

Convergence (with ``tol``), two criteria, both scale-free so scales can be compared:

* ``criterion="loss"`` (default): the best loss stops rising. An anchor (t₀, ℓ_{t₀}) moves
  to t whenever ℓ_t > ℓ_{t₀} + tol·|ℓ_{t₀}|; the example is *converged at t₀* once
  ``patience`` further steps bring no such rise. This suits ReLU networks, whose maxima
  often sit on a kink where fixed-step PGA keeps oscillating at an unchanged loss.
* ``criterion="movement"``: the gradient mapping ‖δ_{t+1} − δ_t‖₂/η, the stationarity
  measure of projected gradient methods; converged at the first t with
  ‖δ_{t+1} − δ_t‖₂ ≤ tol · ε (meaningful for smooth activations).

Batching. ``x`` has shape ``(*batch, d)`` with any number of leading dimensions (for example
restarts × inputs); ``y`` and a tensor ``eps`` broadcast against ``batch``. A
:class:`~adversary_dynamics.models.TwoLayerNet` (also an ensemble of them) takes an analytic
fast path: per step one fused forward GEMM (x W^T is computed once and δ W^T added) and one
backward GEMM, and all per-example norms are updated algebraically from two reductions.
Any other ``nn.Module`` is differentiated by autograd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .losses import LossLike, get_loss, loss_and_output_grad
from .models import TwoLayerNet, activation_and_derivative

NORMS = ("l2", "linf")
GRADIENTS = ("raw", "normalized", "sign")
INITS = ("zero", "uniform_ball", "uniform_sphere")
_DIV_EPS = 1e-10  # added to ‖g‖ before normalising, as torchattacks does

__all__ = [
    "NORMS",
    "GRADIENTS",
    "INITS",
    "PGAResult",
    "Certificate",
    "pga",
    "project",
    "random_init",
    "input_gradient",
    "local_max_certificate",
]


@dataclass
class PGAResult:
    """What :func:`pga` returns. ``T`` is the number of steps taken (``steps`` unless ``tol``
    stopped the run early once every example had converged).

    delta:             final perturbation δ_T, shaped like x.
    losses:            (T+1, *batch) per-example loss at δ_0 … δ_T.
    norm_ratio:        (T+1, *batch) ‖δ_t‖₂/ε (l2 only, else None): 1 means on the sphere.
    tangent_grad_norm: (T+1, *batch) ‖g_t − (g_t·u_t)u_t‖₂ with u_t = δ_t/‖δ_t‖ (l2 only): the
                       part of the gradient tangent to the sphere through δ_t; ‖g_t‖ at δ_t = 0.
    grad_norm:         (T+1, *batch) ‖g_t‖₂, g_t = ∇_δ ℓ at δ_t.
    converged_at:      (*batch) iteration at which the example converged (see the module
                       docstring), −1 if never (None without tol).
    """

    delta: torch.Tensor
    losses: torch.Tensor
    norm_ratio: Optional[torch.Tensor]
    tangent_grad_norm: Optional[torch.Tensor]
    grad_norm: torch.Tensor
    converged_at: Optional[torch.Tensor]

    @property
    def steps_run(self) -> int:
        return self.losses.shape[0] - 1


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {allowed}")


def _eps_tensor(eps, batch_shape, like: torch.Tensor) -> torch.Tensor:
    """ε as a tensor of shape (*batch, 1), validated positive."""
    e = torch.as_tensor(eps, dtype=like.dtype, device=like.device)
    if not bool(torch.all(e > 0)):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    return e.expand(batch_shape).unsqueeze(-1).contiguous() if e.dim() else e.reshape(1).expand(*batch_shape, 1)


def project(delta: torch.Tensor, *, eps, norm: str = "l2") -> torch.Tensor:
    """Euclidean projection onto S = {‖δ‖ ≤ ε} over the last dimension (a new tensor).

    l2: δ · min(1, ε/‖δ‖₂) (the identity inside the ball); linf: clip(δ, −ε, ε).
    ``eps`` is a float or a tensor broadcasting against ``delta.shape[:-1]``.
    """
    _check_choice("norm", norm, NORMS)
    e = _eps_tensor(eps, delta.shape[:-1], delta)
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, e), -e)
    n = torch.linalg.vector_norm(delta, dim=-1, keepdim=True)
    return delta * (e / torch.maximum(n, e))


def random_init(
    shape: tuple[int, ...],
    *,
    eps,
    norm: str,
    init: str,
    generator: torch.Generator | None = None,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """δ₀ for PGA: ``zero``; ``uniform_ball`` (uniform in S: for l2, direction uniform on the
    sphere and radius ε·U^{1/d}; for linf, U(−ε, ε) per coordinate); ``uniform_sphere``
    (uniform on ‖δ‖₂ = ε, l2 only)."""
    _check_choice("init", init, INITS)
    _check_choice("norm", norm, NORMS)
    ref = torch.empty(0, device=device, dtype=dtype)
    e = _eps_tensor(eps, shape[:-1], ref)
    if init == "zero":
        return torch.zeros(shape, device=device, dtype=dtype)
    if norm == "linf":
        if init == "uniform_sphere":
            raise ValueError("init='uniform_sphere' is defined for norm='l2' only; use 'uniform_ball' for linf")
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return (2.0 * u - 1.0) * e
    z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    z = z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-30)
    if init == "uniform_sphere":
        return z * e
    r = torch.rand((*shape[:-1], 1), generator=generator, device=device, dtype=dtype) ** (1.0 / shape[-1])
    return z * (r * e)


class _TwoLayerGrad:
    """Analytic loss and input gradient of a TwoLayerNet at x + δ, with x Wᵀ + b precomputed."""

    def __init__(self, model: TwoLayerNet, x: torch.Tensor, loss: LossLike) -> None:
        self.loss = loss
        self.act = model.activation
        W = model.W.detach()
        self.A = model.A.detach()
        self.ens = bool(model.ensemble)
        if self.ens:
            self.W = W
            self.xw = torch.matmul(x, W.transpose(-1, -2))
            if model.b is not None:
                self.xw = self.xw + model.b.detach().unsqueeze(-2)
            self.shape = x.shape
        else:
            self.shape = x.shape
            d = x.shape[-1]
            self.W = W
            self.Wt = W.t()
            x2 = x.reshape(-1, d)
            self.xw = x2 @ self.Wt
            if model.b is not None:
                self.xw += model.b.detach()
            self.h = torch.empty_like(self.xw)
            self.g = torch.empty_like(x2)

    def __call__(self, delta: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.ens:
            h = self.xw + torch.matmul(delta, self.W.transpose(-1, -2))
        else:
            h = torch.addmm(self.xw, delta.reshape(-1, delta.shape[-1]), self.Wt, out=self.h)
        s, ds = activation_and_derivative(self.act, h)
        out = torch.matmul(s, self.A.transpose(-1, -2))
        yb = y if self.ens else y.reshape(-1)
        ell, r = loss_and_output_grad(self.loss, out, yb)
        gs = torch.matmul(r, self.A)
        gh = torch.ops.aten.threshold_backward(gs, h, 0.0) if ds is None else gs * ds
        if self.ens:
            g = torch.matmul(gh, self.W)
        else:
            g = torch.mm(gh, self.W, out=self.g)
        return ell.reshape(self.shape[:-1]), g.reshape(self.shape)


def _autograd_fn(model: nn.Module, x: torch.Tensor, loss: LossLike):
    fn = get_loss(loss)

    def value_and_grad(delta: torch.Tensor, y: torch.Tensor):
        with torch.enable_grad():
            xa = (x + delta).detach().requires_grad_(True)
            ell = fn(model(xa), y)
            (g,) = torch.autograd.grad(ell.sum(), xa)
        return ell.detach(), g

    return value_and_grad


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: LossLike = "quadratic"):
    """Per-example loss ℓ(F(x), y) and its input gradient ∇_x ℓ (analytic for TwoLayerNet)."""
    y = y.expand(x.shape[:-1]) if y.dim() else y
    with torch.no_grad():
        if isinstance(model, TwoLayerNet):
            ell, g = _TwoLayerGrad(model, x, loss)(torch.zeros_like(x), y)
            return ell, g.clone()
        return _autograd_fn(model, x, loss)(torch.zeros_like(x), y)


def pga(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: LossLike = "quadratic",
    eps,
    norm: str = "l2",
    steps: int,
    step_size,
    gradient: str = "raw",
    init: str = "zero",
    clamp: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    tol: float | None = None,
    delta0: torch.Tensor | None = None,
    criterion: str = "loss",
    patience: int = 10,
    check_every: int = 10,
) -> PGAResult:
    """Projected gradient ascent on δ for max_{δ ∈ S} ℓ(F(x + δ), y) (see the module docstring).

    ``step_size`` η is absolute (a float or a tensor broadcasting against the batch shape);
    ``eps`` likewise. ``delta0`` overrides ``init``. With ``tol``, the run stops early once all
    examples have converged (checked every ``check_every`` steps, to avoid device syncs).
    """
    _check_choice("norm", norm, NORMS)
    _check_choice("gradient", gradient, GRADIENTS)
    _check_choice("init", init, INITS)
    _check_choice("criterion", criterion, ("loss", "movement"))
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    batch = x.shape[:-1]
    y = y.expand(batch) if y.shape != batch else y
    e = _eps_tensor(eps, batch, x)
    eta = torch.as_tensor(step_size, dtype=x.dtype, device=x.device)
    if not bool(torch.all(eta > 0)):
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    eta = eta.expand(batch).unsqueeze(-1) if eta.dim() else eta
    l2 = norm == "l2"
    if delta0 is not None:
        delta = project(delta0.to(x.dtype), eps=e.squeeze(-1), norm=norm).contiguous()
    else:
        delta = random_init(tuple(x.shape), eps=e.squeeze(-1), norm=norm, init=init, generator=generator,
                            device=x.device, dtype=x.dtype)
    if clamp is not None:
        lo, hi = clamp
        delta = (x + delta).clamp_(lo, hi).sub_(x)

    with torch.no_grad():
        vg = _TwoLayerGrad(model, x, loss) if isinstance(model, TwoLayerNet) else _autograd_fn(model, x, loss)
        T = steps
        losses = torch.empty((T + 1, *batch), dtype=x.dtype, device=x.device)
        gnorm = torch.empty_like(losses)
        ratio = torch.empty_like(losses) if l2 else None
        tang = torch.empty_like(losses) if l2 else None
        conv = torch.full(batch, -1, dtype=torch.long, device=x.device) if tol is not None else None
        dn2 = (delta * delta).sum(-1, keepdim=True) if l2 else None  # ‖δ_t‖², kept algebraically
        t = 0
        while True:
            ell, g = vg(delta, y)
            losses[t] = ell
            if conv is not None and criterion == "loss":
                if t == 0:
                    anchor_val, anchor_t = ell.clone(), torch.zeros_like(conv)
                else:
                    rise = ell > anchor_val + tol * anchor_val.abs().clamp_min(1e-12)
                    anchor_val = torch.where(rise, ell, anchor_val)
                    anchor_t = torch.where(rise, torch.full_like(anchor_t, t), anchor_t)
                    hit = (t - anchor_t >= patience) & (conv < 0)
                    conv = torch.where(hit, anchor_t, conv)
            gn2 = torch.linalg.vector_norm(g, dim=-1, keepdim=True).square_()
            gnorm[t] = gn2.sqrt().squeeze(-1)
            if l2:
                dg = torch.linalg.vecdot(delta, g).unsqueeze(-1)
                ratio[t] = (dn2.sqrt() / e).squeeze(-1)
                tg2 = torch.where(dn2 > 0, gn2 - dg * dg / dn2.clamp_min(1e-300), gn2)
                tang[t] = tg2.clamp_min_(0).sqrt_().squeeze(-1)
            if t == T:
                break
            if conv is not None and t % check_every == 0 and t > 0 and bool((conv >= 0).all()):
                break
            # step size per example: η, or η/(‖g‖+1e-10) for the normalised gradient
            if gradient == "normalized":
                a = eta / (gn2.sqrt() + _DIV_EPS)
            else:
                a = eta
            if gradient == "sign":
                new = delta + a * torch.sign(g)
                new = torch.maximum(torch.minimum(new, e), -e) if not l2 else project(new, eps=e.squeeze(-1))
                new_n2 = (new * new).sum(-1, keepdim=True) if l2 else None
            elif l2 and clamp is None:
                # ‖δ + a g‖² from the two reductions; c = min(1, ε/‖δ + a g‖)
                pre2 = (dn2 + 2.0 * a * dg + a * a * gn2).clamp_min_(0.0)
                c = e / torch.maximum(pre2.sqrt(), e)
                new = torch.addcmul(delta * c, g, c * a)
                new_n2 = c * c * pre2
            else:
                new = delta + a * g
                if l2:
                    new = project(new, eps=e.squeeze(-1))
                else:
                    new = torch.maximum(torch.minimum(new, e), -e)
                new_n2 = None
            if clamp is not None:
                new = (x + new).clamp_(clamp[0], clamp[1]).sub_(x)
                new_n2 = (new * new).sum(-1, keepdim=True) if l2 else None
            if conv is not None and criterion == "movement":
                move = torch.linalg.vector_norm(new - delta, dim=-1)
                hit = (move <= tol * e.squeeze(-1)) & (conv < 0)
                conv = torch.where(hit, torch.full_like(conv, t), conv)
            delta = new
            dn2 = new_n2
            t += 1
        n = t + 1
        return PGAResult(
            delta=delta,
            losses=losses[:n],
            norm_ratio=ratio[:n] if l2 else None,
            tangent_grad_norm=tang[:n] if l2 else None,
            grad_norm=gnorm[:n],
            converged_at=conv,
        )


@dataclass
class Certificate:
    """Result of :func:`local_max_certificate`, per example.

    tangent_grad_norm: ‖g − (g·u)u‖ at δ (u = δ/‖δ‖).
    kkt_residual:      first-order optimality residual for max over the ball: on the sphere
                       sqrt(‖g_tan‖² + min(g·u, 0)²), inside it ‖g‖.
    on_sphere:         ‖δ‖ ≥ (1 − sphere_tol)·ε.
    max_increase:      max over the probe points δ' = Π(δ + r·ε·v), ‖v‖ = 1, of ℓ(δ') − ℓ(δ); the
                       directions v are K random ones plus the tangent gradient and the gradient.
    n_increasing:      how many probe points raise ℓ by more than ftol·max(ℓ, 1e-12).
    is_local_max:      n_increasing == 0 (no probed feasible direction ascends: valid also at
                       the kinks of a ReLU network, where the gradient is one-sided) and, when
                       ``gtol`` is given, kkt_residual·ε/max(ℓ, 1e-12) ≤ gtol.
    """

    tangent_grad_norm: torch.Tensor
    kkt_residual: torch.Tensor
    on_sphere: torch.Tensor
    max_increase: torch.Tensor
    n_increasing: torch.Tensor
    is_local_max: torch.Tensor


def local_max_certificate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    delta: torch.Tensor,
    *,
    loss: LossLike = "quadratic",
    eps,
    directions: int = 32,
    radius: float = 1e-2,
    gtol: float | None = None,
    ftol: float = 1e-3,
    sphere_tol: float = 1e-3,
    generator: torch.Generator | None = None,
) -> Certificate:
    """Approximate first- and second-order check that δ is a local maximum of ℓ(F(x + ·), y)
    over the l2 ball of radius ε. ``radius`` r is the probe length as a fraction of ε."""
    batch = x.shape[:-1]
    y = y.expand(batch) if y.shape != batch else y
    e = _eps_tensor(eps, batch, x).squeeze(-1)
    with torch.no_grad():
        ell, g = input_gradient(model, x + delta, y, loss=loss)
        dn = torch.linalg.vector_norm(delta, dim=-1)
        gn = torch.linalg.vector_norm(g, dim=-1)
        dg = (delta * g).sum(-1)
        u_g = torch.where(dn > 0, dg / dn.clamp_min(1e-300), torch.zeros_like(dg))
        tang = torch.where(dn > 0, (gn * gn - u_g * u_g).clamp_min(0).sqrt(), gn)
        on_sphere = dn >= (1.0 - sphere_tol) * e
        kkt = torch.where(on_sphere, (tang * tang + torch.clamp(u_g, max=0) ** 2).sqrt(), gn)
        v = torch.randn((directions, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        u = delta / dn.clamp_min(1e-30).unsqueeze(-1)
        g_tan = torch.where((dn > 0).unsqueeze(-1), g - (g * u).sum(-1, keepdim=True) * u, g)
        v = torch.cat([v, g_tan.unsqueeze(0), g.unsqueeze(0)])
        v = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-30)
        directions = v.shape[0]
        cand = project(delta.unsqueeze(0) + (radius * e).unsqueeze(-1) * v, eps=e.expand(directions, *batch))
        fn = get_loss(loss)
        ell2 = fn(model(x.unsqueeze(0) + cand), y.expand(directions, *batch))
        inc = ell2 - ell.unsqueeze(0)
        scale = ell.clamp_min(1e-12)
        n_inc = (inc > ftol * scale).sum(0)
        is_max = n_inc == 0
        if gtol is not None:
            is_max = is_max & (kkt * e / scale <= gtol)
        return Certificate(
            tangent_grad_norm=tang,
            kkt_residual=kkt,
            on_sphere=on_sphere,
            max_increase=inc.max(0).values,
            n_increasing=n_inc,
            is_local_max=is_max,
        )
