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
backward GEMM, and all per-example norms are updated algebraically from two reductions. For the
paper's update (l2, raw or normalised gradient, no clamp) with m < 2d, δ can be kept
in coefficient form, δ = α δ₀ + S W, and a step costs a single (n × m)(m × m) product with the
Gram matrix W Wᵀ (see _ImplicitTwoLayer): fewer operations than the two products above, which
pga checks per call (counting the m² d of forming W Wᵀ, cached per model while W is unchanged).
Any other ``nn.Module`` is differentiated by autograd.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .losses import LossLike, _target, get_loss, loss_and_output_grad, quadratic
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
    if isinstance(eps, (int, float)):  # checked on the host: no device synchronisation
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
    elif not bool(torch.all(torch.as_tensor(eps) > 0)):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    e = torch.as_tensor(eps, dtype=like.dtype, device=like.device)
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
    """Analytic loss and input gradient of a TwoLayerNet at x + δ, with x Wᵀ + b precomputed.

    Without an ensemble, every intermediate lives in a buffer allocated once, and the returned
    gradient is one of them: the next call overwrites it (clone it to keep it). The output layer
    is computed transposed, Fᵀ = A σ(h)ᵀ (K × n), which is faster for small K.
    """

    INPUT_GRADIENT = True  # allocate the (n, d) buffer of ∇_δ ℓ

    def __init__(self, model: TwoLayerNet, x: torch.Tensor, loss: LossLike) -> None:
        self.loss = loss
        self.act = model.activation
        self.quad = loss is quadratic or (isinstance(loss, str) and loss == "quadratic")
        W = model.W.detach()
        self.A = model.A.detach()
        self.ens = bool(model.ensemble)
        self.shape = x.shape
        self._key = self._target = None  # the label tensor and its cached quadratic-loss target
        if self.ens:
            self.W = W
            self.xw = torch.matmul(x, W.transpose(-1, -2))
            if model.b is not None:
                self.xw = self.xw + model.b.detach().unsqueeze(-2)
        else:
            d = x.shape[-1]
            self.W, self.Wt = W, W.t()
            x2 = x.reshape(-1, d)
            self.xw = x2 @ self.Wt
            if model.b is not None:
                self.xw += model.b.detach()
            self.h = torch.empty_like(self.xw)
            self.gs = torch.empty_like(self.xw)
            self.outT = self.xw.new_empty((self.A.shape[0], self.xw.shape[0]))
            # views of the buffers, made once (the buffers are always written in place)
            self.hT, self.r = self.h.t(), self.outT.t()
            if self.INPUT_GRADIENT:
                self.g = torch.empty_like(x2)
                self.g_view = self.g.view(x.shape)

    def _ens_call(self, delta: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ell, gh = self._ens_head(self.xw + torch.matmul(delta, self.W.transpose(-1, -2)), y)
        g = torch.matmul(gh, self.W)
        return ell, g.reshape(self.shape)

    def _ens_head(self, h: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ℓ, ∂ℓ/∂h) of an ensemble from the pre-activations h."""
        s, ds = activation_and_derivative(self.act, h)
        out = torch.matmul(s, self.A.transpose(-1, -2))
        if self.quad:
            if y is not self._key:
                self._key, self._target = y, _target(out, y)
            r = out.sub_(self._target)
            ell = torch.sum(r * r, -1).mul_(0.5)
        else:
            ell, r = loss_and_output_grad(self.loss, out, y)
        gs = torch.matmul(r, self.A)
        gh = torch.ops.aten.threshold_backward(gs, h, 0.0) if ds is None else gs * ds
        return ell.reshape(self.shape[:-1]), gh

    def __call__(self, delta: torch.Tensor, y: torch.Tensor,
                 out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ℓ, ∇_δ ℓ) at x + δ; ℓ is written into ``out`` (contiguous, one value per example) when given."""
        if self.ens:
            ell, g = self._ens_call(delta, y)
            return (ell if out is None else out.copy_(ell)), g
        h = torch.addmm(self.xw, delta.reshape(-1, delta.shape[-1]), self.Wt, out=self.h)
        ell, gh = self._loss_and_grad_h(h, y, out)
        torch.mm(gh, self.W, out=self.g)
        return ell, self.g_view

    def _loss_and_grad_h(self, h: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None):
        """(ℓ, ∂ℓ/∂h) from the pre-activations h (overwritten), into the buffers (not for ensembles)."""
        if self.act == "relu":
            s, ds = h.clamp_min_(0.0), None  # relu in place: s > 0 exactly where h > 0
            outT = torch.mm(self.A, self.hT, out=self.outT)
        else:
            s, ds = activation_and_derivative(self.act, h)
            outT = torch.mm(self.A, s.t(), out=self.outT)
        if self.quad:
            if y is not self._key:
                self._key, self._target = y, _target(self.r, y.reshape(-1)).t().contiguous()
            outT.sub_(self._target)  # Fᵀ − e_yᵀ, so self.r = F − e_y
            if out is None:
                ell = torch.linalg.vecdot(outT, outT, dim=0).mul_(0.5).reshape(self.shape[:-1])
            else:
                ell = torch.linalg.vecdot(outT, outT, dim=0, out=out if out.dim() == 1 else out.view(-1))
                ell = out.mul_(0.5)
            r = self.r
        else:
            ell, r = loss_and_output_grad(self.loss, self.r, y.reshape(-1))
            ell = ell.reshape(self.shape[:-1]) if out is None else out.copy_(ell.reshape(out.shape))
        gs = torch.mm(r, self.A, out=self.gs)
        if ds is None:
            gh = torch.ops.aten.threshold_backward.grad_input(gs, s, 0.0, grad_input=gs)
        else:
            gh = gs.mul_(ds)
        return ell, gh


# Which l2 path pga takes for a TwoLayerNet: "auto" (the coefficient form where the operation count
# below says it is cheaper), "always" or "never" (for tests and benchmarks).
IMPLICIT_MODE = "auto"
_IMPLICIT_MARGIN = 0.9  # auto: the coefficient form must need < 90 % of the explicit path's operations
_GRAM_CACHE: "weakref.WeakKeyDictionary[TwoLayerNet, tuple]" = weakref.WeakKeyDictionary()


def _gram_key(W: torch.Tensor) -> tuple:
    """What identifies W's current values: its version counter moves on every in-place update
    (an optimiser step, load_state_dict), its data pointer on reassignment."""
    return (W._version, W.data_ptr(), W.shape, W.dtype, W.device)


def _gram_cached(model: TwoLayerNet) -> bool:
    hit = _GRAM_CACHE.get(model)
    return hit is not None and hit[0] == _gram_key(model.W.detach())


def _gram(model: TwoLayerNet) -> torch.Tensor:
    """G = W Wᵀ (*E, m, m), cached per model until W changes (see _gram_key)."""
    if _gram_cached(model):
        return _GRAM_CACHE[model][1]
    W = model.W.detach()
    G = torch.matmul(W, W.transpose(-1, -2))
    _GRAM_CACHE[model] = (_gram_key(W), G)
    return G


def _implicit_pays(model: TwoLayerNet, n: int, steps: int, random_start: bool) -> bool:
    """Whether the coefficient form needs fewer multiply-adds than the explicit update for ``steps``
    steps on n examples: (T+1) n m² (+1/16 for the resyncs) + n m d for the final δ (+ n m d for
    P₀ = δ₀ Wᵀ) + m² d per member for G unless cached, against (T+1) · 2 n m d."""
    if IMPLICIT_MODE != "auto":
        return IMPLICIT_MODE == "always"
    m, d, k = model.width, model.input_dim, steps + 1
    members = math.prod(model.ensemble) if model.ensemble else 1
    explicit = k * 2 * n * m * d
    implicit = k * n * m * m * (1 + 1 / _ImplicitTwoLayer.RESYNC) + n * m * d * (1 + random_start)
    if not _gram_cached(model):
        implicit += members * m * m * d
    return implicit < _IMPLICIT_MARGIN * explicit


class _ImplicitTwoLayer(_TwoLayerGrad):
    r"""PGA's l2 iterates of a TwoLayerNet kept in coefficient form, never materialised per step.

    Every raw or normalised l2 step adds a multiple of ∇_δ ℓ = (∂ℓ/∂h) W (a row combination of
    W) and the projection rescales, so with δ₀ the start::

        δ_t = α_t δ₀ + S_t W,      α_{t+1} = c_t α_t,   S_{t+1} = c_t (S_t + a_t ∂ℓ/∂h),

    (S is n × m). Everything a step needs follows from G = W Wᵀ (m × m) and P = δ Wᵀ::

        h = x Wᵀ + b + P,   ‖∇ℓ‖² = (∂ℓ/∂h) G (∂ℓ/∂h)ᵀ,   δ·∇ℓ = P·(∂ℓ/∂h),
        P_{t+1} = c_t (P_t + a_t (∂ℓ/∂h) G),

    one (n × m)(m × m) product per step instead of two (n × d)(d × m)-sized ones. P is
    recomputed as α P₀ + S G every ``RESYNC`` steps, so its drift from the δ that
    :meth:`delta` finally returns (α δ₀ + S W) stays at the level of one product's rounding.
    The same arithmetic as the explicit update, reordered: results agree to rounding.
    """

    RESYNC = 16
    INPUT_GRADIENT = False  # ∂ℓ/∂h (n × m) stands in for ∇_δ ℓ

    def __init__(self, model: TwoLayerNet, x: torch.Tensor, loss: LossLike, delta0: torch.Tensor | None) -> None:
        """``delta0``: the start δ₀ (shaped like x), or None for δ₀ = 0."""
        super().__init__(model, x, loss)
        Wt = self.W.transpose(-1, -2)
        self.G = _gram(model)  # (*E, m, m)
        if self.ens:  # S, P, … shaped (*batch, m); products batched over the ensemble
            self.xw = self.xw.expand(*self.shape[:-1], self.xw.shape[-1]).contiguous()
            self.h = self.Q = None
            d0 = delta0
        else:  # flat (n, m) buffers, written in place
            self.Q = torch.empty_like(self.xw)
            d0 = None if delta0 is None else delta0.reshape(self.xw.shape[0], -1)
        self.S = torch.zeros_like(self.xw)
        self.steps_since_sync = 0
        self.delta0 = d0
        if self.delta0 is None:
            self.P0 = self.alpha = None
            self.P = torch.zeros_like(self.xw)
        else:
            self.P0 = torch.matmul(d0, Wt)
            self.P = self.P0.clone()
            self.alpha = self.xw.new_ones((*self.xw.shape[:-1], 1))
        self._gh = None

    def __call__(self, delta, y, out=None):
        """(ℓ, ∂ℓ/∂h) at the current implicit δ (the ``delta`` argument is ignored)."""
        if self.ens:
            ell, self._gh = self._ens_head(self.xw + self.P, y)
            return (ell if out is None else out.copy_(ell)), self._gh
        h = torch.add(self.xw, self.P, out=self.h)
        ell, self._gh = self._loss_and_grad_h(h, y, out)
        return ell, self._gh

    def norms(self, gn: torch.Tensor, dg: torch.Tensor) -> None:
        """Write ‖∇ℓ‖ (shaped (*batch, 1)) and δ·∇ℓ (shaped like the batch) for the last call."""
        gh = self._gh
        self.Q = torch.matmul(gh, self.G, out=self.Q)
        torch.linalg.vecdot(self.Q, gh, out=gn.view(gh.shape[:-1])).clamp_min_(0.0).sqrt_()
        torch.linalg.vecdot(self.P, gh, out=dg.view(gh.shape[:-1]))

    def advance(self, c: torch.Tensor, ca) -> None:
        """δ ← c δ + ca ∇ℓ (c, ca per example, shaped (*batch, 1), or ca a float), in coefficient form."""
        shape = (*self.S.shape[:-1], 1)
        c2 = c.reshape(shape)
        if isinstance(ca, float):
            self.S.mul_(c2).addcmul_(self._gh, c2, value=ca)
        else:
            ca2 = ca.reshape(shape)
            self.S.mul_(c2).addcmul_(self._gh, ca2)
        if self.alpha is not None:
            self.alpha.mul_(c2)
        self.steps_since_sync += 1
        if self.steps_since_sync >= self.RESYNC:
            torch.matmul(self.S, self.G, out=self.P)
            if self.P0 is not None:
                self.P.addcmul_(self.P0, self.alpha)
            self.steps_since_sync = 0
        elif isinstance(ca, float):
            self.P.mul_(c2).addcmul_(self.Q, c2, value=ca)
        else:
            self.P.mul_(c2).addcmul_(self.Q, ca2)

    def delta(self) -> torch.Tensor:
        """δ = α δ₀ + S W, shaped like x (a new tensor)."""
        d = torch.matmul(self.S, self.W)
        if self.delta0 is not None:
            d.addcmul_(self.delta0, self.alpha)
        return d.reshape(self.shape)


def _autograd_fn(model: nn.Module, x: torch.Tensor, loss: LossLike):
    fn = get_loss(loss)

    def value_and_grad(delta: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None):
        with torch.enable_grad():
            xa = (x + delta).detach().requires_grad_(True)
            ell = fn(model(xa), y)
            (g,) = torch.autograd.grad(ell.sum(), xa)
        return (ell.detach() if out is None else out.copy_(ell)), g

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
    scalar_step = isinstance(step_size, (int, float))
    if not (step_size > 0 if scalar_step else bool(torch.all(torch.as_tensor(step_size) > 0))):
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    eta = torch.as_tensor(step_size, dtype=x.dtype, device=x.device)
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
        fast = isinstance(model, TwoLayerNet)
        # l2 without sign or clamp: the algebraic update, δ in place (δ is a fresh tensor here) unless the
        # movement criterion needs δ_t next to δ_{t+1}
        algebraic = l2 and gradient != "sign" and clamp is None
        in_place = algebraic and not (tol is not None and criterion == "movement")
        if delta.shape != x.shape or not delta.is_contiguous():
            delta = delta.expand(x.shape).contiguous()
        random_start = delta0 is not None or init != "zero"
        implicit = fast and in_place and _implicit_pays(model, math.prod(batch), steps, random_start)
        if implicit:
            vg = _ImplicitTwoLayer(model, x, loss, delta if random_start else None)
        else:
            vg = _TwoLayerGrad(model, x, loss) if fast else _autograd_fn(model, x, loss)
        T = steps
        # per-step logs; row t of each is written in place at step t (rows unbound once, outside the loop)
        losses = torch.empty((T + 1, *batch), dtype=x.dtype, device=x.device)
        gn_log = torch.empty((T + 1, *batch, 1), dtype=x.dtype, device=x.device)  # ‖g_t‖
        # l2: ‖δ_t‖² and δ_t·g_t; norm_ratio and tangent_grad_norm are formed from them at the end
        dn2_log = torch.empty((T + 1, *batch, 1), dtype=x.dtype, device=x.device) if l2 else None
        dg_log = torch.empty_like(dn2_log) if l2 else None
        loss_rows, gn_rows = losses.unbind(0), gn_log.unbind(0)
        if l2:
            dn2_rows, dg_rows, dg_rows_flat = dn2_log.unbind(0), dg_log.unbind(0), dg_log.squeeze(-1).unbind(0)
        conv = torch.full(batch, -1, dtype=torch.long, device=x.device) if tol is not None else None
        # ‖δ_t‖², kept algebraically on the common path
        dn2 = torch.sum(delta * delta, -1, keepdim=True, out=dn2_rows[0]) if l2 else None
        e2 = e * e if algebraic else None
        # a scalar step, rounded to x's dtype as η is (on the host: no device synchronisation)
        a_float = (float(torch.tensor(step_size, dtype=x.dtype)) if scalar_step and gradient != "normalized"
                   else None)
        t = 0
        while True:
            ell, g = vg(delta, y, loss_rows[t])
            if conv is not None and criterion == "loss":
                if t == 0:
                    anchor_val, anchor_t = ell.clone(), torch.zeros_like(conv)
                else:
                    rise = ell > anchor_val + tol * anchor_val.abs().clamp_min(1e-12)
                    anchor_val = torch.where(rise, ell, anchor_val)
                    anchor_t = torch.where(rise, torch.full_like(anchor_t, t), anchor_t)
                    hit = (t - anchor_t >= patience) & (conv < 0)
                    conv = torch.where(hit, anchor_t, conv)
            if implicit:  # g is ∂ℓ/∂h here; the norms come from the Gram matrix
                gn, dg = gn_rows[t], dg_rows[t]
                vg.norms(gn, dg_rows_flat[t])
            else:
                gn = torch.linalg.vector_norm(g, dim=-1, keepdim=True, out=gn_rows[t])
            if l2 and not implicit:
                dg = dg_rows[t]
                torch.linalg.vecdot(delta, g, out=dg_rows_flat[t])
            if t == T:
                break
            if conv is not None and t % check_every == 0 and t > 0 and bool((conv >= 0).all()):
                break
            # step size per example: η, or η/(‖g‖+1e-10) for the normalised gradient
            if gradient == "normalized":
                a = eta / (gn + _DIV_EPS)
            else:
                a = eta
            if algebraic:
                # ‖δ + a g‖² from the two reductions; c = min(1, ε/‖δ + a g‖); δ ← c δ + c a g
                if a_float is not None:
                    pre2 = torch.add(dn2, dg, alpha=2.0 * a_float).addcmul_(gn, gn, value=a_float * a_float)
                else:
                    ag = a * gn
                    pre2 = torch.addcmul(dn2, a, dg, value=2.0).addcmul_(ag, ag)
                c = torch.div(e, pre2.clamp_min_(0.0).sqrt()).clamp_max_(1.0)
                dn2 = torch.minimum(pre2, e2, out=dn2_rows[t + 1])  # = c² ‖δ + a g‖²
                if implicit:
                    vg.advance(c, a_float if a_float is not None else c * a)
                    t += 1
                    continue
                if in_place:
                    if a_float is not None:
                        delta.mul_(c).addcmul_(g, c, value=a_float)
                    else:
                        delta.mul_(c).addcmul_(g, c * a)
                    t += 1
                    continue
                new = torch.addcmul(delta * c, g, c * a)
            else:
                new = delta + a * (torch.sign(g) if gradient == "sign" else g)
                new = project(new, eps=e.squeeze(-1)) if l2 else torch.maximum(torch.minimum(new, e), -e)
            if clamp is not None:
                new = (x + new).clamp_(clamp[0], clamp[1]).sub_(x)
            if conv is not None and criterion == "movement":
                move = torch.linalg.vector_norm(new - delta, dim=-1)
                hit = (move <= tol * e.squeeze(-1)) & (conv < 0)
                conv = torch.where(hit, torch.full_like(conv, t), conv)
            delta = new
            if l2 and not algebraic:
                dn2 = torch.sum(new * new, -1, keepdim=True, out=dn2_rows[t + 1])
            t += 1
        if implicit:
            delta = vg.delta()
        n = t + 1
        gnorm = gn_log[:n].squeeze(-1)
        ratio = tang = None
        if l2:
            dn2s, dgs, gn2s = dn2_log[:n], dg_log[:n], gn_log[:n].square()
            ratio = (dn2s.sqrt() / e).squeeze(-1)
            tg2 = torch.where(dn2s > 0, gn2s - dgs * dgs / dn2s.clamp_min(1e-300), gn2s)
            tang = tg2.clamp_min_(0).sqrt_().squeeze(-1)
        return PGAResult(
            delta=delta,
            losses=losses[:n],
            norm_ratio=ratio,
            tangent_grad_norm=tang,
            grad_norm=gnorm,
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
