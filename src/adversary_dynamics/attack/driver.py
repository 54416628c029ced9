r"""The PGA driver: one loop for every model, threat model and update rule (paper Secs. 3-4).

PGA iterates, from δ₀ given by ``init`` (or ``delta0``)::

    δ_{t+1} = Π_S( δ_t + η_t · D(∇_δ ℓ(F(x + δ_t), y)) ),

with S, Π_S and D from :mod:`~adversary_dynamics.attack.threat` and η_t = η (``step_size``) unless
a ``step_schedule`` gives it.

Convergence (with ``tol``), two criteria, both scale-free so scales can be compared:

* ``criterion="loss"`` (default): the best loss stops rising. An anchor (t₀, ℓ_{t₀}) moves
  to t whenever ℓ_t > ℓ_{t₀} + tol·|ℓ_{t₀}|; the example is *converged at t₀* once
  ``patience`` further steps bring no such rise. This suits ReLU networks, whose maxima
  often sit on a kink where fixed-step PGA keeps oscillating at an unchanged loss.
* ``criterion="movement"``: the gradient mapping ‖δ_{t+1} − δ_t‖₂/η, the stationarity
  measure of projected gradient methods; converged at the first t with
  ‖δ_{t+1} − δ_t‖₂ ≤ tol · ε (meaningful for smooth activations).

Update paths. For l2 with the raw or normalised gradient and no clamp, the driver updates the
per-example norms algebraically (‖δ + a g‖² from ‖δ‖², δ·g and ‖g‖²) and δ in place; a
TwoLayerNet may take the implicit Gram path (:mod:`~adversary_dynamics.attack.two_layer`). Every
other case (sign, linf, clamp, or a callable hook) takes the plain update: δ + a·D'(g), projected
with the norm of that point itself.

Hooks (keyword-only, optional; without them nothing above changes):

* ``record``: ``True`` or an int k ≥ 1 keeps the iterates δ_0, δ_k, δ_2k, … and the last one
  (:attr:`PGAResult.iterates`, :attr:`PGAResult.iterate_steps`); the arithmetic is unchanged (the
  implicit path materialises δ at those steps only), so ``iterates[i]`` is bit for bit the
  ``delta`` of a run of ``iterate_steps[i]`` steps on the same path. A callable ``record(state)``
  is called with a :class:`PGAState` at every t = 0 … T, after ∇ℓ(δ_t) is evaluated and before the
  step; returning ``True`` ends the run after that t (as ``tol`` does).
* ``step_schedule(t, state)`` returns η_t, the step from δ_t to δ_{t+1} (absolute, like
  ``step_size``: a number or a tensor broadcasting to the batch; ``state.step_size`` is η for a
  multiplier; 0 takes no step, a negative value steps against the gradient, i.e. projected
  gradient descent on ℓ). Not checked per step (no device synchronisation).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from adversary_dynamics.learning.losses import LossLike, get_loss
from adversary_dynamics.learning.models import TwoLayerNet
from adversary_dynamics.attack import two_layer
from .checks import (_check_choice, _check_clamp, _check_finite, _check_generator, _check_int, _check_label_values,
                     _check_labels, _check_loss, _check_model, _check_model_dtype, _check_real, _check_tensor,
                     _deterministic, _flat, _flat_model, _per_example, _split_event)
from adversary_dynamics.attack.threat import GRADIENTS, INITS, NORMS, _clip_box, _project_flat, _random_init_flat, _step_length
from adversary_dynamics.attack.two_layer import _TwoLayerGrad

CRITERIA = ("loss", "movement")
TORCHATTACKS_NORMALIZE_EPS = 1e-10  # torchattacks' g/(‖g‖ + 1e-10), on the batch-mean loss (× N on ours)


@dataclass
class PGAResult:
    """What :func:`pga` returns. ``T`` is the number of steps taken (``steps`` unless ``tol``
    stopped the run early once every example had converged); ``batch`` is x's batch shape
    (x.shape without its ``event_dims`` trailing dimensions).

    delta:             final perturbation δ_T, shaped like x (*batch, *event).
    losses:            (T+1, *batch) per-example loss at δ_0 … δ_T.
    norm_ratio:        (T+1, *batch) ‖δ_t‖/ε in the threat norm: ‖δ_t‖₂/ε for l2 (1 means on the
                       sphere), ‖δ_t‖_∞/ε for linf (1 means some coordinate at ±ε).
    tangent_grad_norm: (T+1, *batch) ‖g_t − (g_t·u_t)u_t‖₂ with u_t = δ_t/‖δ_t‖ (l2 only): the
                       part of the gradient tangent to the sphere through δ_t; ‖g_t‖ at δ_t = 0.
    grad_norm:         (T+1, *batch) ‖g_t‖₂, g_t = ∇_δ ℓ at δ_t.
    converged_at:      (*batch) iteration at which the example converged (see the module
                       docstring), −1 if never (None without tol). An example whose loss was
                       NaN or ±inf at any logged step never counts as converged (−1).
    iterates:          with ``record=True`` or an int k: (n, *batch, *event) the iterates δ_t at the
                       steps ``iterate_steps`` (0, k, 2k, … and T); None otherwise.
    iterate_steps:     (n,) long, the t of each row of ``iterates``; None without record.
    finite:            (property, *batch bool) every logged loss ℓ_0 … ℓ_T of the example is finite.
    """

    delta: torch.Tensor
    losses: torch.Tensor
    norm_ratio: Optional[torch.Tensor]
    tangent_grad_norm: Optional[torch.Tensor]
    grad_norm: torch.Tensor
    converged_at: Optional[torch.Tensor]
    iterates: Optional[torch.Tensor] = None
    iterate_steps: Optional[torch.Tensor] = None

    @property
    def steps_run(self) -> int:
        return self.losses.shape[0] - 1

    @property
    def finite(self) -> torch.Tensor:
        """(*batch) bool: every logged loss ℓ_0 … ℓ_T of the example is finite (no NaN, no ±inf)."""
        return torch.isfinite(self.losses).all(0)




@dataclass
class PGAState:
    """What a callable hook of :func:`pga` (``record``, ``step_schedule``) sees at step t: the
    iterate δ_t and the loss and gradient there. The tensors are the driver's own (some are
    buffers overwritten by the next step): read them during the call, clone what you keep, and
    never write to them.

    t:          the step index, 0 … T.
    delta:      δ_t, shaped like x (*batch, *event).
    grad:       ∇_δ ℓ(F(x + δ_t), y), shaped like x.
    loss:       (*batch) ℓ at δ_t.
    grad_norm:  (*batch) ‖∇_δ ℓ‖₂.
    eps:        (*batch) ε.
    step_size:  (*batch) η (``step_size``), the base a schedule may scale.
    interior:   (*batch) bool, l2 only: the step into δ_t stayed inside the ball (its point had
                ‖·‖₂ < ε, so the projection did not move it); None at t = 0 and for linf.
    """

    t: int
    delta: torch.Tensor
    grad: torch.Tensor
    loss: torch.Tensor
    grad_norm: torch.Tensor
    eps: torch.Tensor
    step_size: torch.Tensor
    interior: Optional[torch.Tensor] = None


# ----------------------------------------------------------------------------- gradients


def _autograd_fn(model, x: torch.Tensor, loss: LossLike):
    fn = get_loss(loss)

    def value_and_grad(delta: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None):
        with torch.enable_grad():
            xa = (x + delta).detach().requires_grad_(True)
            ell = fn(model(xa), y)
            (g,) = torch.autograd.grad(ell.sum(), xa)
        return (ell.detach() if out is None else out.copy_(ell)), g

    return value_and_grad


def _input_gradient_flat(model, x: torch.Tensor, y: torch.Tensor, loss: LossLike):
    """(ℓ, ∇_x ℓ) for flat x (*batch, d), y of the batch shape, model taking flat inputs."""
    with torch.no_grad():
        if isinstance(model, TwoLayerNet):
            ell, g = _TwoLayerGrad(model, x, loss)(torch.zeros_like(x), y)
            return ell, g.clone()
        return _autograd_fn(model, x, loss)(torch.zeros_like(x), y)


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: LossLike = "quadratic",
                   event_dims: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example loss ℓ(F(x), y) and its input gradient ∇_x ℓ (analytic for a TwoLayerNet with
    event_dims=1, autograd otherwise), of the deterministic (eval-mode) model, which is left as
    it was found.

    x: (*batch, *event), floating point, len(event) == ``event_dims``; y broadcasts to ``batch``.
    Returns ℓ of shape ``batch`` and ∇_x ℓ shaped like x. Raises ValueError for unusable
    arguments (see :func:`pga`).
    """
    _check_model(model)
    _check_loss(loss)
    _check_tensor("x", x)
    batch, event = _split_event("x", x.shape, event_dims)
    y = _check_labels(y, batch, x, event_dims)
    _check_model_dtype(model, x)
    with _deterministic(model):
        model_f, x_f = _flat_model(model, event), _flat(x, batch)
        _check_label_values(model_f, x_f, y, loss, x_shape=x.shape, event_dims=event_dims)
        ell, g = _input_gradient_flat(model_f, x_f, y, loss)
    return ell, g.reshape(x.shape)


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
    normalize_eps: float = 0.0,
    event_dims: int = 1,
    record: bool | int | Callable[[PGAState], Optional[bool]] | None = None,
    step_schedule: Callable[[int, PGAState], object] | None = None,
    check_values: bool = True,
) -> PGAResult:
    """Projected gradient ascent on δ for max_{δ ∈ S} ℓ(F(x + δ), y) (see the module docstring;
    the paper's inner maximisation, Sec. 3, and its PGA, Sec. 4).

    Shapes: ``x`` (*batch, *event) floating point, len(event) == ``event_dims`` (1: (*batch, d);
    3: (*batch, C, H, W)); the model is called on (*batch, d) for event_dims=1 and on
    (prod(batch), *event) otherwise (module docstring). ``y``: labels broadcasting
    to ``batch`` (one per example). ``eps`` ε and ``step_size`` η: absolute (units of x), each a
    positive number or a tensor broadcasting to ``batch``. ``delta0``: the start, shaped like x
    (overrides ``init``; projected onto S and clamped). ``steps`` ≥ 0.

    ``gradient="normalized"`` steps by η g/‖g‖₂ exactly (g = 0: no step; a gradient whose squared
    norm underflows the dtype, about ‖g‖ < 1e-22 in float32, counts as 0); ``normalize_eps`` > 0
    divides by ‖g‖₂ + normalize_eps instead: TORCHATTACKS_NORMALIZE_EPS = 1e-10 is torchattacks'
    convention (its PGDL2 differentiates the batch-mean loss, so on a batch of N examples
    normalize_eps = 1e-10·N reproduces it exactly). ``clamp=(lo, hi)`` keeps
    x + δ in [lo, hi]; x must lie in [lo, hi]. With ``tol``, the run stops early once all examples
    have converged (checked every ``check_every`` steps, to avoid device syncs; ``patience`` ≥ 1
    steps without a rise for ``criterion="loss"``).

    Hooks (module docstring): ``record`` — ``True``/an int k ≥ 1 keeps every k-th iterate (and
    the last) in :attr:`PGAResult.iterates`, without changing the arithmetic; a callable
    ``record(state)`` sees a :class:`PGAState` at every step and ends the run by returning True.
    ``step_schedule(t, state)`` returns the step η_t (absolute; a number or a tensor broadcasting
    to the batch) used from δ_t to δ_{t+1} in place of ``step_size``. A callable hook takes the
    plain update (no implicit or algebraic shortcut): its results agree with a run without hooks
    to rounding.

    The model is attacked in eval mode and restored (checks module docstring). Returns a
    :class:`PGAResult` (delta shaped like x, per-step logs shaped (T+1, *batch)); an example whose
    loss is NaN or ±inf at any logged step is never converged (``converged_at`` −1) and has
    ``PGAResult.finite`` False.

    Raises ValueError, naming the argument, the value/shape/dtype given and what is expected, for:
    unknown norm/gradient/init/criterion/loss; x not a floating-point tensor or not finite, or
    with fewer than ``event_dims`` dims; y not broadcasting to x's batch shape (or on another
    device); labels that the named loss cannot use for the model's K outputs (class labels not
    integers in [0, K), cross-entropy with K = 1; :func:`losses.check_labels`); ε or η not finite
    and > 0 or not broadcasting to the batch shape; steps not an int ≥ 0;
    patience/check_every not ints ≥ 1; tol or normalize_eps negative or not finite (normalize_eps
    > 0 needs gradient="normalized"); clamp not a pair lo < hi, or x outside [lo, hi]; delta0 not
    shaped like x, not floating point or not finite; init="uniform_sphere" with linf; record not
    None, a bool, an int ≥ 1 or a callable; step_schedule not None or a callable.

    ``check_values=False`` skips the checks that read tensor *values* (x and delta0 finite, the
    label values against the model's outputs, which also costs one probing forward pass, tensor ε
    and η finite and > 0, x inside ``clamp``): each of them synchronises the host with the device.
    The caller vouches for those values, e.g. adversarial training, which checks its data once per
    stage and then calls pga once per minibatch (:mod:`~adversary_dynamics.learning.training`).
    Types, shapes, dtypes and devices are still checked (on the host, no synchronisation), and the
    arithmetic is the same bit for bit. With it and without ``tol`` or callable hooks, a call makes
    no host synchronisation at all (``tests/test_stacked_training.py`` counts them).
    """
    # ---- validation, once, before any step
    _check_model(model)
    _check_loss(loss)
    _check_choice("norm", norm, NORMS)
    _check_choice("gradient", gradient, GRADIENTS)
    _check_choice("init", init, INITS)
    _check_choice("criterion", criterion, CRITERIA)
    _check_generator(generator)
    steps = _check_int("steps", steps, minimum=0)
    patience = _check_int("patience", patience, minimum=1)
    check_every = _check_int("check_every", check_every, minimum=1)
    if tol is not None:
        tol = _check_real("tol", tol, minimum=0.0)
    normalize_eps = _check_real("normalize_eps", normalize_eps, minimum=0.0)
    if normalize_eps > 0 and gradient != "normalized":
        raise ValueError(f"normalize_eps={normalize_eps!r} only applies to gradient='normalized', "
                         f"got gradient={gradient!r}")
    if norm == "linf" and init == "uniform_sphere" and delta0 is None:
        raise ValueError("init='uniform_sphere' is defined for norm='l2' only; use 'uniform_ball' for linf")
    if not isinstance(check_values, bool):
        raise ValueError(f"check_values must be True or False, got {check_values!r}")
    _check_tensor("x", x)
    batch, event = _split_event("x", x.shape, event_dims)
    if check_values:
        _check_finite("x", x)
    y = _check_labels(y, batch, x, event_dims)
    e = _per_example("eps", eps, batch, x, check_values=check_values)
    eta = _per_example("step_size", step_size, batch, x, check_values=check_values)
    if delta0 is not None:
        _check_tensor("delta0", delta0)
        if delta0.shape != x.shape:
            raise ValueError(f"delta0 must have x's shape {tuple(x.shape)}, got {tuple(delta0.shape)}")
        if delta0.device != x.device:
            raise ValueError(f"delta0 is on device {delta0.device} but x is on {x.device}")
        if check_values:
            _check_finite("delta0", delta0)
    clamp = _check_clamp(clamp, x, check_values=check_values)
    record_every = observe = None
    if record is True:
        record_every = 1
    elif callable(record):
        observe = record
    elif record is not None and record is not False:
        record_every = _check_int("record", record, minimum=1)
    if step_schedule is not None and not callable(step_schedule):
        raise ValueError(f"step_schedule must be None or a callable (t, state) -> step size, got "
                         f"{type(step_schedule).__name__}")

    _check_model_dtype(model, x)
    with _deterministic(model):
        model_f, x_f = _flat_model(model, event), _flat(x, batch)
        if check_values:
            _check_label_values(model_f, x_f, y, loss, x_shape=x.shape, event_dims=event_dims)
        res = _pga_flat(
            model_f, x_f, y, loss=loss, e=e, eta=eta, norm=norm, steps=steps,
            step_size=step_size, gradient=gradient, init=init, clamp=clamp, generator=generator, tol=tol,
            delta0=None if delta0 is None else _flat(delta0, batch), criterion=criterion, patience=patience,
            check_every=check_every, normalize_eps=normalize_eps, record_every=record_every, observe=observe,
            step_schedule=step_schedule, shape=tuple(x.shape))
    if len(event) != 1:
        res.delta = res.delta.reshape(x.shape)
        if res.iterates is not None:
            res.iterates = res.iterates.reshape(res.iterates.shape[0], *x.shape)
    return res


_NUMPY_FLOATS = {torch.float16: "float16", torch.float32: "float32", torch.float64: "float64"}


def _round_to_dtype(v, dtype: torch.dtype) -> float:
    """The Python float ``v`` rounded to ``dtype`` (as ``float(torch.tensor(v, dtype=dtype))``), on the
    host without a tensor (no ``.item()``: nothing a synchronisation counter has to see)."""
    name = _NUMPY_FLOATS.get(dtype)
    if name is None:
        return float(torch.tensor(v, dtype=dtype))
    import numpy as np

    return float(np.asarray(v, dtype=name))


def _pga_flat(model, x, y, *, loss, e, eta, norm, steps, step_size, gradient, init, clamp, generator, tol,
              delta0, criterion, patience, check_every, normalize_eps, record_every=None, observe=None,
              step_schedule=None, shape=None) -> PGAResult:
    """pga on validated arguments: x (*batch, d), y of the batch shape, e and eta (*batch, 1);
    ``shape`` the caller's x shape (the hooks see δ and ∇ℓ in it)."""
    batch = x.shape[:-1]
    scalar_step = isinstance(step_size, numbers.Real)
    l2 = norm == "l2"
    if delta0 is not None:
        delta = _project_flat(delta0.to(x.dtype), e, norm).contiguous()
    else:
        delta = _random_init_flat(tuple(x.shape), e, norm, init, generator, x.device, x.dtype)
    if clamp is not None:
        # the box for δ, [lo − x, hi − x] (contains 0 as x ∈ [lo, hi]): clipping δ to it only shrinks
        # each |δ_i|, so δ stays in S exactly (no rounding of x + δ − x)
        box_lo, box_hi = clamp[0] - x, clamp[1] - x
        delta = _clip_box(delta, box_lo, box_hi)

    with torch.no_grad():
        fast = isinstance(model, TwoLayerNet)
        # l2 without sign or clamp: the algebraic update, δ in place (δ is a fresh tensor here) unless the
        # movement criterion needs δ_t next to δ_{t+1}
        hooked = observe is not None or step_schedule is not None  # callable hooks: the plain update
        algebraic = l2 and gradient != "sign" and clamp is None and not hooked
        in_place = algebraic and not (tol is not None and criterion == "movement")
        if delta.shape != x.shape or not delta.is_contiguous():
            delta = delta.expand(x.shape).contiguous()
        random_start = delta0 is not None or init != "zero"
        implicit = fast and in_place and two_layer._implicit_pays(model, math.prod(batch), steps, random_start)
        if implicit:
            vg = two_layer._ImplicitTwoLayer(model, x, loss, delta if random_start else None)
        else:
            vg = _TwoLayerGrad(model, x, loss) if fast else _autograd_fn(model, x, loss)
        T = steps
        # per-step logs; row t of each is written in place at step t (rows unbound once, outside the loop)
        losses = torch.empty((T + 1, *batch), dtype=x.dtype, device=x.device)
        gn_log = torch.empty((T + 1, *batch, 1), dtype=x.dtype, device=x.device)  # ‖g_t‖
        # l2: ‖δ_t‖² and δ_t·g_t; norm_ratio and tangent_grad_norm are formed from them at the end
        dn2_log = torch.empty((T + 1, *batch, 1), dtype=x.dtype, device=x.device) if l2 else None
        dg_log = torch.empty_like(dn2_log) if l2 else None
        # linf: ‖δ_t‖_∞ (norm_ratio = ‖δ_t‖_∞/ε)
        ninf_log = None if l2 else torch.empty((T + 1, *batch, 1), dtype=x.dtype, device=x.device)
        loss_rows, gn_rows = losses.unbind(0), gn_log.unbind(0)
        if l2:
            dn2_rows, dg_rows, dg_rows_flat = dn2_log.unbind(0), dg_log.unbind(0), dg_log.squeeze(-1).unbind(0)
        else:
            ninf_rows = ninf_log.unbind(0)
            torch.linalg.vector_norm(delta, math.inf, dim=-1, keepdim=True, out=ninf_rows[0])
        conv = torch.full(batch, -1, dtype=torch.long, device=x.device) if tol is not None else None
        # with tol: whether every loss so far is finite (a NaN or ±inf loss never counts as converged)
        fin = torch.ones(batch, dtype=torch.bool, device=x.device) if tol is not None else None
        # ‖δ_t‖², kept algebraically on the common path
        dn2 = torch.sum(delta * delta, -1, keepdim=True, out=dn2_rows[0]) if l2 else None
        e2 = e * e if algebraic else None
        # a scalar step, rounded to x's dtype as η is (on the host: no device synchronisation)
        a_float = (_round_to_dtype(step_size, x.dtype) if scalar_step and gradient != "normalized"
                   else None)
        zero = x.new_zeros(())
        shape = tuple(x.shape) if shape is None else shape
        kept, kept_t = [], []  # record=k: the iterates kept
        e_b = eta_b = interior = None
        if hooked:
            e_b, eta_b = e.squeeze(-1), eta.squeeze(-1)
        t = 0
        while True:
            ell, g = vg(delta, y, loss_rows[t])
            if fin is not None:
                fin.logical_and_(torch.isfinite(ell))
            if conv is not None and criterion == "loss":
                if t == 0:
                    anchor_val, anchor_t = ell.clone(), torch.zeros_like(conv)
                else:
                    rise = ell > anchor_val + tol * anchor_val.abs().clamp_min(1e-12)
                    anchor_val = torch.where(rise, ell, anchor_val)
                    anchor_t = torch.where(rise, torch.full_like(anchor_t, t), anchor_t)
                    hit = (t - anchor_t >= patience) & (conv < 0) & fin
                    conv = torch.where(hit, anchor_t, conv)
            if implicit:  # g is ∂ℓ/∂h here; the norms come from the Gram matrix
                gn, dg = gn_rows[t], dg_rows[t]
                vg.norms(gn, dg_rows_flat[t])
            else:
                gn = torch.linalg.vector_norm(g, dim=-1, keepdim=True, out=gn_rows[t])
            if l2 and not implicit:
                dg = dg_rows[t]
                torch.linalg.vecdot(delta, g, out=dg_rows_flat[t])
            if record_every is not None and (t % record_every == 0 or t == T):
                kept.append((vg.delta() if implicit else delta).reshape(shape).clone())
                kept_t.append(t)
            state = None
            if hooked:
                state = PGAState(t=t, delta=delta.reshape(shape), grad=g.reshape(shape), loss=loss_rows[t],
                                 grad_norm=gn.squeeze(-1), eps=e_b, step_size=eta_b, interior=interior)
            stop = observe is not None and observe(state) is True
            if t == T or stop:
                if stop and record_every is not None and kept_t[-1] != t:
                    kept.append(delta.reshape(shape).clone())
                    kept_t.append(t)
                break
            if conv is not None and t % check_every == 0 and t > 0 and bool((conv >= 0).all()):
                if record_every is not None and kept_t[-1] != t:
                    kept.append((vg.delta() if implicit else delta).reshape(shape).clone())
                    kept_t.append(t)
                break
            # step size per example: η (or the schedule's η_t), or η/‖g‖ for the normalised gradient (0
            # where g = 0: no step), or torchattacks' η/(‖g‖ + normalize_eps)
            step = eta
            if step_schedule is not None:
                st = torch.as_tensor(step_schedule(t, state), dtype=x.dtype, device=x.device)
                step = st.reshape(1) if st.dim() == 0 else st.expand(batch).unsqueeze(-1)
            a = _step_length(gradient, step, gn, normalize_eps, zero)
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
                if hooked and l2:  # Π_S as _project_flat, keeping whether the point was inside the ball
                    nrm = torch.linalg.vector_norm(new, dim=-1, keepdim=True)
                    interior = (nrm < e).squeeze(-1)
                    new = new * (e / torch.maximum(nrm, e))
                else:
                    new = _project_flat(new, e, norm)
            if clamp is not None:
                new = _clip_box(new, box_lo, box_hi)
            if conv is not None and criterion == "movement":
                move = torch.linalg.vector_norm(new - delta, dim=-1)
                hit = (move <= tol * e.squeeze(-1)) & (conv < 0) & fin
                conv = torch.where(hit, torch.full_like(conv, t), conv)
            delta = new
            if l2 and not algebraic:
                dn2 = torch.sum(new * new, -1, keepdim=True, out=dn2_rows[t + 1])
            elif not l2:
                torch.linalg.vector_norm(new, math.inf, dim=-1, keepdim=True, out=ninf_rows[t + 1])
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
        else:
            ratio = (ninf_log[:n] / e).squeeze(-1)
        if conv is not None:
            # an example converged before its loss turned NaN or ±inf is not converged either
            conv = torch.where(fin, conv, torch.full_like(conv, -1))
        return PGAResult(
            delta=delta,
            losses=losses[:n],
            norm_ratio=ratio,
            tangent_grad_norm=tang,
            grad_norm=gnorm,
            converged_at=conv,
            iterates=torch.stack(kept) if record_every is not None else None,
            iterate_steps=torch.tensor(kept_t, dtype=torch.long) if record_every is not None else None,
        )

