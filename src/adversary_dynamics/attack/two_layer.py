r"""Fast paths of the PGA driver for a :class:`~adversary_dynamics.learning.models.TwoLayerNet`
F(x) = A σ(W x + b) (also an ensemble of them), with ``event_dims=1``.

Explicit analytic path (:class:`_TwoLayerGrad`): per step one fused forward GEMM (x Wᵀ is computed
once and δ Wᵀ added) and one backward GEMM, ∇_δ ℓ = (∂ℓ/∂h) W with ∂ℓ/∂h = ((∂ℓ/∂F) A) ⊙ σ'(h);
the driver updates all per-example norms algebraically from two reductions.

Implicit Gram path (:class:`_ImplicitTwoLayer`): for the paper's update (l2, raw or normalised
gradient, no clamp, no callable hook) with m < 2d, δ can be kept in coefficient form,
δ = α δ₀ + S W, and a step costs a single (n × m)(m × m) product with the Gram matrix W Wᵀ: fewer
operations than the two products above, which the driver checks per call with
:func:`_implicit_pays` (counting the m² d of forming W Wᵀ, cached per model while W is unchanged,
:func:`_gram`). ``IMPLICIT_MODE`` forces the choice ("always"/"never", for tests and benchmarks).

Any other model (and any model with ``event_dims > 1``) is differentiated by autograd
(:func:`adversary_dynamics.attack.driver._autograd_fn`).
"""

from __future__ import annotations

import math
import weakref

import torch

from adversary_dynamics.learning.losses import LossLike, _target, loss_and_output_grad, quadratic
from adversary_dynamics.learning.models import TwoLayerNet, activation_and_derivative



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

