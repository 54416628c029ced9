r"""Projected gradient ascent (PGA) on input perturbations, and a local-maximum certificate.

The adversary's problem (the paper's inner maximisation, Sec. 3), per example (x, y)::

    maximise   ℓ(F(x + δ), y)   over   δ ∈ S,
    S = { δ : ‖δ‖₂ ≤ ε }   ("l2", the paper's ball)   or   { δ : ‖δ‖_∞ ≤ ε }   ("linf").

PGA iterates, from δ₀ given by ``init``::

    δ_{t+1} = Π_S( δ_t + η · D(∇_δ ℓ(F(x + δ_t), y)) ),

with D the identity (``gradient="raw"``, the paper's update), g ↦ g/‖g‖₂ per example
(``"normalized"``, Madry et al. for l2: every g ≠ 0 takes a step of length η exactly, g = 0 takes
none; ``normalize_eps`` gives torchattacks' g/(‖g‖₂ + 1e-10) instead, see pga) or g ↦ sign(g)
(``"sign"``, for linf). Π_S is the Euclidean projection: δ · min(1, ε/‖δ‖₂) for l2,
clip(δ, −ε, ε) for linf. With ``clamp=(lo, hi)`` the iterate is then clipped coordinate-wise to
[lo − x, hi − x] (x + δ stays in [lo, hi], torchattacks' convention; the feasible set becomes
S ∩ [lo − x, hi − x], and the clip only shrinks |δ_i|, so δ stays in S). x itself must lie in
[lo, hi]: otherwise x is infeasible (the feasible set may be empty) and pga raises.

Shapes. ``x`` has shape ``(*batch, *event)`` with ``len(event) == event_dims`` (default 1: one
example is the last dimension, ``(*batch, d)``; ``event_dims=3``: images ``(*batch, C, H, W)``).
Norms, projections and the per-example ε are taken over the event dimensions; ``batch`` may have
any number of dimensions (for example restarts × inputs); ``y``, a tensor ``eps`` and a tensor
``step_size`` broadcast against ``batch``. With ``event_dims=1`` the model is called on tensors
shaped (*batch', d) (it must map them to (*batch', K), as nn.Linear does); with ``event_dims > 1``
the batch dims are flattened into one, the model is called on (n, *event) with n = prod(batch)
(the single batch dimension of an ordinary CNN) and its outputs (n, K) are restored to
(*batch, K). An empty batch (n = 0) is allowed on every path. Flat x (*batch, d) given to a model
with convolutions, or image-shaped x with ``event_dims=1``, fails with a ValueError saying to
reshape x to (*batch, C, H, W) and pass ``event_dims=3``.

The model is attacked as a deterministic function: an ``nn.Module`` is put in eval mode for the
attack (BatchNorm uses its running statistics and does not update them, Dropout is off) and every
submodule's training flag is restored afterwards, also when the attack raises. Parameters are not
changed, their ``requires_grad`` is untouched and no ``.grad`` is accumulated (gradients are taken
with respect to the input only).

Convergence (with ``tol``), two criteria, both scale-free so scales can be compared:

* ``criterion="loss"`` (default): the best loss stops rising. An anchor (t₀, ℓ_{t₀}) moves
  to t whenever ℓ_t > ℓ_{t₀} + tol·|ℓ_{t₀}|; the example is *converged at t₀* once
  ``patience`` further steps bring no such rise. This suits ReLU networks, whose maxima
  often sit on a kink where fixed-step PGA keeps oscillating at an unchanged loss.
* ``criterion="movement"``: the gradient mapping ‖δ_{t+1} − δ_t‖₂/η, the stationarity
  measure of projected gradient methods; converged at the first t with
  ‖δ_{t+1} − δ_t‖₂ ≤ tol · ε (meaningful for smooth activations).

Fast paths. A :class:`~adversary_dynamics.models.TwoLayerNet` (also an ensemble of them) with
``event_dims=1`` takes an analytic path: per step one fused forward GEMM (x W^T is computed once
and δ W^T added) and one backward GEMM, and all per-example norms are updated algebraically from
two reductions. For the paper's update (l2, raw or normalised gradient, no clamp) with m < 2d, δ
can be kept in coefficient form, δ = α δ₀ + S W, and a step costs a single (n × m)(m × m) product
with the Gram matrix W Wᵀ (see _ImplicitTwoLayer): fewer operations than the two products above,
which pga checks per call (counting the m² d of forming W Wᵀ, cached per model while W is
unchanged). Any other model (and any model with ``event_dims > 1``: the event dimensions are
flattened internally and restored before each call of the model) is differentiated by autograd.

Inputs are validated once, before the first step (no per-step host synchronisation); every
unusable argument raises ``ValueError`` naming the argument, what was given (shape, dtype or
value) and what is expected.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import weakref
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .losses import LossLike, _target, check_labels, get_loss, loss_and_output_grad, quadratic
from .models import TwoLayerNet, activation_and_derivative

NORMS = ("l2", "linf")
GRADIENTS = ("raw", "normalized", "sign")
INITS = ("zero", "uniform_ball", "uniform_sphere")
CRITERIA = ("loss", "movement")
TORCHATTACKS_NORMALIZE_EPS = 1e-10  # torchattacks' g/(‖g‖ + 1e-10), on the batch-mean loss (× N on ours)

__all__ = [
    "NORMS",
    "GRADIENTS",
    "INITS",
    "CRITERIA",
    "TORCHATTACKS_NORMALIZE_EPS",
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
    finite:            (property, *batch bool) every logged loss ℓ_0 … ℓ_T of the example is finite.
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

    @property
    def finite(self) -> torch.Tensor:
        """(*batch) bool: every logged loss ℓ_0 … ℓ_T of the example is finite (no NaN, no ±inf)."""
        return torch.isfinite(self.losses).all(0)


# ----------------------------------------------------------------------------- argument checks
# All run once per public call, before any step.


def _check_choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {allowed}")


def _check_int(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r} (type {type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value, *, minimum: float = 0.0, strict: bool = False, finite: bool = True) -> float:
    """A real number ≥ minimum (> minimum when ``strict``), finite unless ``finite=False``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} (type {type(value).__name__})")
    v = float(value)
    bad = math.isnan(v) or (finite and math.isinf(v)) or (v <= minimum if strict else v < minimum)
    if bad:
        what = ("a finite number" if finite else "a number") + f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def _check_tensor(name: str, value, *, floating: bool = True) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype} "
                         f"(shape {tuple(value.shape)})")
    return value


def _check_finite(name: str, t: torch.Tensor) -> None:
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} (shape {tuple(t.shape)}, dtype {t.dtype}) contains NaN or inf values")


def _split_event(name: str, shape: torch.Size | tuple, event_dims) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(batch, event) of a shape (*batch, *event) with len(event) == event_dims."""
    k = _check_int("event_dims", event_dims, minimum=1)
    shape = tuple(shape)
    if len(shape) < k:
        hint = ""
        if k >= 3 and len(shape) >= 1:
            side = math.isqrt(shape[-1])
            eg = (f", e.g. {name}.reshape({', '.join(map(str, shape[:-1]))}{', ' if len(shape) > 1 else ''}1, "
                  f"{side}, {side}) for one channel of {side}x{side} pixels") if side * side == shape[-1] else ""
            hint = (f"; image models take (*batch, C, H, W): reshape {name} to that shape{eg} and pass "
                    f"event_dims=3")
        raise ValueError(f"{name} has shape {shape} ({len(shape)} dims), but event_dims={k} needs at least {k} "
                         f"dims: {name} is (*batch, *event) with len(event) == event_dims{hint}")
    batch, event = shape[:len(shape) - k], shape[len(shape) - k:]
    if math.prod(event) == 0:
        raise ValueError(f"{name} has shape {shape}: its event dims {event} (the last event_dims={k}) are empty")
    return batch, event


def _check_shape_arg(shape) -> tuple[int, ...]:
    try:
        out = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of ints, got {shape!r}") from None
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in out):
        raise ValueError(f"shape must be a tuple of ints >= 0, got {shape!r}")
    return tuple(int(s) for s in out)



def _broadcasts_to(shape, batch) -> bool:
    """Whether a tensor of ``shape`` broadcasts to exactly ``batch`` (one value per example)."""
    try:
        return torch.broadcast_shapes(shape, batch) == torch.Size(batch)
    except RuntimeError:
        return False

def _per_example(name: str, value, batch: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A positive, finite per-example quantity (ε or η) as a tensor of shape (*batch, 1) in like's
    dtype and device. A number is checked on the host (no device synchronisation); a tensor (or
    array) must broadcast against ``batch``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = _check_real(name, value, strict=True)
        return torch.tensor(v, dtype=like.dtype, device=like.device).reshape(1).expand(*batch, 1)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a positive number or a tensor broadcasting against the batch shape "
                         f"{tuple(batch)}, got {value!r}")
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a positive number or a tensor broadcasting against the batch shape "
                         f"{tuple(batch)}, got {type(value).__name__}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    if not _broadcasts_to(t.shape, batch):
        raise ValueError(f"{name} of shape {tuple(t.shape)} does not broadcast to the batch shape {tuple(batch)} "
                         f"(one value per example; x's event dims are not part of it)")
    if t.numel() and not bool(torch.all(torch.isfinite(t) & (t > 0))):
        raise ValueError(f"{name} must be finite and > 0 for every example, got values in "
                         f"[{float(t.min()):g}, {float(t.max()):g}] (shape {tuple(t.shape)})")
    t = t.to(dtype=like.dtype, device=like.device)
    return t.expand(batch).unsqueeze(-1).contiguous() if t.dim() else t.reshape(1).expand(*batch, 1)


def _check_labels(y, batch: tuple[int, ...], x: torch.Tensor, event_dims: int) -> torch.Tensor:
    """y broadcast to the batch shape (a view)."""
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"y must be a torch.Tensor of labels broadcasting to x's batch shape {tuple(batch)}, "
                         f"got {type(y).__name__}")
    if not _broadcasts_to(y.shape, batch):
        hint = (f"; for image-shaped x (*batch, C, H, W) pass event_dims=3" if event_dims == 1 and x.dim() >= 4
                else "")
        raise ValueError(f"y must broadcast to x's batch shape {tuple(batch)} (x has shape {tuple(x.shape)}, "
                         f"event_dims={event_dims}: one label per example), got y of shape {tuple(y.shape)}{hint}")
    if y.is_complex():
        raise ValueError(f"y must be real or integer labels, got dtype {y.dtype}")
    if y.device != x.device:
        raise ValueError(f"y is on device {y.device} but x is on {x.device}: put both on the same device")
    return y if y.shape == torch.Size(batch) else y.expand(batch)


def _check_label_values(model, x: torch.Tensor, y: torch.Tensor, loss, *, x_shape: tuple, event_dims: int) -> None:
    """The model's outputs and the label values, before any loss evaluation indexes with them. x is
    flat (*batch, d) and model takes it (already in eval mode). The outputs must be shaped
    (*batch, K): checked on one forward pass of the first example of each leading batch group (no
    gradient; on the whole x where that fails, so that the model's own error names the user's
    shape ``x_shape``). Then :func:`losses.check_labels` against K (named losses only)."""
    if isinstance(model, TwoLayerNet):
        k = model.n_outputs
    else:
        # an empty batch is passed whole (the model's own empty forward pass gives K)
        probe = x if x.dim() == 1 or x.shape[-2] == 0 else x.narrow(-2, 0, 1)
        with torch.no_grad():
            try:
                out = model(probe)
                ok = isinstance(out, torch.Tensor) and out.dim() >= 1 and out.shape[:-1] == probe.shape[:-1]
            except Exception:
                ok = False
            if not ok:
                try:  # a failure here is the model's own error, on the shape the user passed
                    out = model(x)
                except Exception as err:
                    hint = _shape_hint(model, x_shape, event_dims)
                    if hint is None:
                        raise
                    raise ValueError(f"the model failed on x of shape {tuple(x_shape)} with event_dims={event_dims} "
                                     f"({type(err).__name__}: {err}); {hint}") from err
                if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[:-1] != x.shape[:-1]:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise ValueError(
                        f"the model maps x of shape {tuple(x_shape)} to outputs of shape {got}, but each example "
                        f"needs one output row: outputs shaped (*batch, K) with batch = {tuple(x.shape[:-1])} (x's "
                        f"shape without its last event_dims={event_dims} dims); for image-shaped x (N, C, H, W) "
                        f"pass event_dims=3")
        k = out.shape[-1]
    if not callable(loss) and y.numel():
        check_labels(loss, y, n_outputs=k)


def _shape_hint(model, x_shape: tuple, event_dims: int) -> str | None:
    """What to do when the model fails on x's shape, where the shape is the likely cause: flat
    inputs (*batch, d) to a model with convolutions (reshape to images, event_dims=3), or
    image-shaped x (*batch, C, H, W) with event_dims=1 (pass event_dims=3); None otherwise."""
    x_shape = tuple(x_shape)
    convs = isinstance(model, nn.Module) and any(
        isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in model.modules())
    if event_dims == 1 and len(x_shape) >= 4:
        return f"for image-shaped x (*batch, C, H, W) pass event_dims=3"
    if event_dims == 1 and convs:
        d, side = x_shape[-1], math.isqrt(x_shape[-1])
        eg = (f", e.g. x.reshape({', '.join(map(str, x_shape[:-1]))}{', ' if len(x_shape) > 1 else ''}1, "
              f"{side}, {side}) for one channel of {side}x{side} pixels" if side * side == d else "")
        return (f"the model has convolutions, which take images: reshape x from flat (*batch, {d}) to "
                f"(*batch, C, H, W){eg}, and pass event_dims=3")
    return None


def _check_model_dtype(model, x: torch.Tensor) -> None:
    """An nn.Module's floating-point parameters must share x's dtype and device (torch's own error
    comes from deep inside the forward pass and names neither argument)."""
    if not isinstance(model, nn.Module):
        return
    p = next((q for q in model.parameters() if q.is_floating_point()), None)
    if p is None:
        return
    if p.dtype != x.dtype:
        raise ValueError(f"x has dtype {x.dtype} but the model's parameters are {p.dtype}: convert one of them "
                         f"(x.to({p.dtype}) or model.to({x.dtype}))")
    if p.device != x.device:
        raise ValueError(f"x is on device {x.device} but the model's parameters are on {p.device}: move one of them "
                         f"(x.to('{p.device}') or model.to('{x.device}'))")


def _check_model(model) -> None:
    if not callable(model):
        raise ValueError(f"model must be an nn.Module (or a callable) mapping x to outputs, got "
                         f"{type(model).__name__}")


def _check_loss(loss) -> None:
    if not callable(loss):
        get_loss(loss)  # raises ValueError for an unknown name or a non-callable


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _check_clamp(clamp, x: torch.Tensor) -> tuple[float, float] | None:
    """(lo, hi) with lo < hi and x inside [lo, hi] (otherwise no feasible point exists near x)."""
    if clamp is None:
        return None
    try:
        lo, hi = clamp
    except (TypeError, ValueError):
        raise ValueError(f"clamp must be None or a pair (lo, hi), got {clamp!r}") from None
    lo = _check_real("clamp[0] (lo)", lo, minimum=-math.inf, finite=False)
    hi = _check_real("clamp[1] (hi)", hi, minimum=-math.inf, finite=False)
    if not lo < hi:
        raise ValueError(f"clamp=(lo, hi) needs lo < hi, got clamp={clamp!r}")
    if x.numel():
        xmin, xmax = (float(v) for v in torch.aminmax(x))
        if xmin < lo or xmax > hi:
            raise ValueError(
                f"clamp={clamp!r} excludes the inputs themselves: x ranges over [{xmin:g}, {xmax:g}], outside "
                f"[{lo:g}, {hi:g}]: x itself is infeasible (the feasible set {{‖δ‖ <= ε, lo <= x + δ <= hi}} "
                f"excludes δ = 0 and may be empty) and clipping x + δ would leave the ε-ball; rescale x into "
                f"[lo, hi], or widen or drop clamp")
    return lo, hi


# ----------------------------------------------------------------------------- model handling


@contextlib.contextmanager
def _deterministic(model):
    """Eval mode for the attack (BatchNorm on running statistics, no Dropout); every submodule's
    training flag restored afterwards, also on exceptions. Parameters are never touched."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    if any(t for _, t in modes):
        model.eval()
    try:
        yield
    finally:
        for m, t in modes:
            if m.training != t:
                m.training = t


class _EventModel:
    """The model on inputs flattened over their event dims: x (*b, prod(event)) is reshaped to
    (n, *event) with n = prod(b), the one batch dimension a PyTorch model takes (a Conv2d takes
    (n, C, H, W), not (R, N, C, H, W)); the outputs (n, *out) are restored to (*b, *out). Outputs
    of another leading size are returned as the model gave them (the callers' checks report them)."""

    def __init__(self, model, event: tuple[int, ...]) -> None:
        self.model, self.event = model, tuple(event)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[:-1]
        n = math.prod(b)
        out = self.model(x.reshape(n, *self.event))
        if isinstance(out, torch.Tensor) and out.dim() >= 1 and out.shape[0] == n and len(b) != 1:
            out = out.reshape(*b, *out.shape[1:])
        return out


def _flat_model(model, event: tuple[int, ...]):
    return model if len(event) == 1 else _EventModel(model, event)


def _flat(t: torch.Tensor, batch: tuple[int, ...]) -> torch.Tensor:
    """t (*batch, *event) as (*batch, prod(event)) (explicit sizes: also for an empty batch)."""
    return t if t.dim() == len(batch) + 1 else t.reshape(*batch, math.prod(t.shape[len(batch):]))


# ----------------------------------------------------------------------------- projection and starts


def _project_flat(delta: torch.Tensor, e: torch.Tensor, norm: str) -> torch.Tensor:
    """Π_S over the last dim; e is ε shaped (*batch, 1) (validated by the caller)."""
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, e), -e)
    n = torch.linalg.vector_norm(delta, dim=-1, keepdim=True)
    return delta * (e / torch.maximum(n, e))


def project(delta: torch.Tensor, *, eps, norm: str = "l2", event_dims: int = 1) -> torch.Tensor:
    """Euclidean projection onto S = {‖δ‖ ≤ ε} over the event dims (a new tensor, shaped like δ).

    ``delta``: (*batch, *event), floating point, len(event) == ``event_dims``.
    l2: δ · min(1, ε/‖δ‖₂) (the identity inside the ball); linf: clip(δ, −ε, ε).
    ``eps``: a positive float or a tensor broadcasting against ``batch`` (one radius per example).
    Raises ValueError for a non-floating δ, an unknown norm, ε ≤ 0 or non-finite, or an ε shape
    that does not broadcast to the batch shape.
    """
    _check_choice("norm", norm, NORMS)
    _check_tensor("delta", delta)
    batch, _ = _split_event("delta", delta.shape, event_dims)
    e = _per_example("eps", eps, batch, delta)
    return _project_flat(_flat(delta, batch), e, norm).reshape(delta.shape)


def _random_init_flat(shape: tuple[int, ...], e: torch.Tensor, norm: str, init: str, generator,
                      device, dtype) -> torch.Tensor:
    """δ₀ of shape (*batch, d) (see random_init); e is ε shaped (*batch, 1)."""
    if init == "zero":
        return torch.zeros(shape, device=device, dtype=dtype)
    if norm == "linf":
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return (2.0 * u - 1.0) * e
    z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    z = z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-30)
    if init == "uniform_sphere":
        return z * e
    r = torch.rand((*shape[:-1], 1), generator=generator, device=device, dtype=dtype) ** (1.0 / shape[-1])
    return z * (r * e)


def random_init(
    shape: tuple[int, ...],
    *,
    eps,
    norm: str,
    init: str,
    generator: torch.Generator | None = None,
    device=None,
    dtype=torch.float32,
    event_dims: int = 1,
) -> torch.Tensor:
    """δ₀ for PGA, shaped ``shape`` = (*batch, *event) with len(event) == ``event_dims``.

    ``zero``; ``uniform_ball`` (uniform in S: for l2, direction uniform on the sphere of the
    D = prod(event)-dimensional event space and radius ε·U^{1/D}; for linf, U(−ε, ε) per
    coordinate); ``uniform_sphere`` (uniform on ‖δ‖₂ = ε, l2 only). ``eps`` as in :func:`project`.
    The draws do not depend on event_dims (the event is drawn flat and reshaped), so the same
    generator state gives the same numbers for image-shaped and flattened shapes.
    Raises ValueError for unknown names, uniform_sphere with linf, a non-floating dtype or a bad ε.
    """
    _check_choice("init", init, INITS)
    _check_choice("norm", norm, NORMS)
    _check_generator(generator)
    shape = _check_shape_arg(shape)
    batch, _ = _split_event("shape", shape, event_dims)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if norm == "linf" and init == "uniform_sphere":
        raise ValueError("init='uniform_sphere' is defined for norm='l2' only; use 'uniform_ball' for linf")
    e = _per_example("eps", eps, batch, torch.empty(0, device=device, dtype=dtype))
    flat = (*batch, math.prod(shape[len(batch):]))
    return _random_init_flat(flat, e, norm, init, generator, device, dtype).reshape(shape)


# ----------------------------------------------------------------------------- analytic TwoLayerNet gradients


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


# ----------------------------------------------------------------------------- autograd path and public calls


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

    The model is attacked in eval mode and restored (module docstring). Returns a
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
    shaped like x, not floating point or not finite; init="uniform_sphere" with linf.
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
    _check_tensor("x", x)
    batch, event = _split_event("x", x.shape, event_dims)
    _check_finite("x", x)
    y = _check_labels(y, batch, x, event_dims)
    e = _per_example("eps", eps, batch, x)
    eta = _per_example("step_size", step_size, batch, x)
    if delta0 is not None:
        _check_tensor("delta0", delta0)
        if delta0.shape != x.shape:
            raise ValueError(f"delta0 must have x's shape {tuple(x.shape)}, got {tuple(delta0.shape)}")
        if delta0.device != x.device:
            raise ValueError(f"delta0 is on device {delta0.device} but x is on {x.device}")
        _check_finite("delta0", delta0)
    clamp = _check_clamp(clamp, x)

    _check_model_dtype(model, x)
    with _deterministic(model):
        model_f, x_f = _flat_model(model, event), _flat(x, batch)
        _check_label_values(model_f, x_f, y, loss, x_shape=x.shape, event_dims=event_dims)
        res = _pga_flat(
            model_f, x_f, y, loss=loss, e=e, eta=eta, norm=norm, steps=steps,
            step_size=step_size, gradient=gradient, init=init, clamp=clamp, generator=generator, tol=tol,
            delta0=None if delta0 is None else _flat(delta0, batch), criterion=criterion, patience=patience,
            check_every=check_every, normalize_eps=normalize_eps)
    if len(event) != 1:
        res.delta = res.delta.reshape(x.shape)
    return res


def _pga_flat(model, x, y, *, loss, e, eta, norm, steps, step_size, gradient, init, clamp, generator, tol,
              delta0, criterion, patience, check_every, normalize_eps) -> PGAResult:
    """pga on validated arguments: x (*batch, d), y of the batch shape, e and eta (*batch, 1)."""
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
        delta = torch.maximum(torch.minimum(delta, box_hi), box_lo)

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
        a_float = (float(torch.tensor(step_size, dtype=x.dtype)) if scalar_step and gradient != "normalized"
                   else None)
        zero = x.new_zeros(())
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
            if t == T:
                break
            if conv is not None and t % check_every == 0 and t > 0 and bool((conv >= 0).all()):
                break
            # step size per example: η, or η/‖g‖ for the normalised gradient (0 where g = 0: no step),
            # or torchattacks' η/(‖g‖ + normalize_eps)
            if gradient == "normalized":
                a = eta / (gn + normalize_eps) if normalize_eps > 0 else torch.where(gn > 0, eta / gn, zero)
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
                new = _project_flat(new, e, norm)
            if clamp is not None:
                new = torch.maximum(torch.minimum(new, box_hi), box_lo)
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
        )


@dataclass
class Certificate:
    """Result of :func:`local_max_certificate`, per example (each field shaped like the batch).

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
    flat:              the loss is locally constant at δ, to the probe's resolution: with
                       c = ftol·max(|ℓ|, 1e-12) and r·ε the probe length,
                       ‖∇ℓ(δ)‖·r·ε ≤ c (the first-order change over a probe step is below c; exactly
                       ∇ℓ = 0 for a constant loss) AND |ℓ(δ') − ℓ(δ)| ≤ c at every probe point δ'
                       (no probe changes ℓ by more than c, in either sign). Such a point passes
                       ``is_local_max`` (nothing ascends by more than c; it stays True there), but
                       the verdict is vacuous: the probes saw no change at all. Exactly constant
                       case: a ReLU network whose hidden units are all inactive on a neighbourhood
                       of x + δ has a constant output, so PGA does not move and every start is
                       "certified" (a non-strict maximum). Near-flat case: a nonzero gradient with
                       ‖∇ℓ‖·r·ε ≤ c (e.g. one or two weak hidden units active) is flat to the
                       probe's resolution, and so is a strict maximum whose curvature changes ℓ by
                       less than c over r·ε. Consumers decide whether to count flat points (claim
                       E2 and the distinct-maxima count leave them out).
    constant:          the exactly constant case of ``flat``: ∇ℓ(δ) = 0 and ℓ(δ') = ℓ(δ) at every
                       probe point, in floating point (e.g. every hidden ReLU inactive); implies
                       ``flat``.
    finite:            ℓ(δ), every entry of ∇ℓ(δ) and ℓ at every probe point are finite (no NaN, no
                       ±inf). Where False, ``is_local_max``, ``flat`` and ``constant`` are False: a
                       NaN comparison is false, so without this a NaN loss would pass every test.
    """

    tangent_grad_norm: torch.Tensor
    kkt_residual: torch.Tensor
    on_sphere: torch.Tensor
    max_increase: torch.Tensor
    n_increasing: torch.Tensor
    is_local_max: torch.Tensor
    flat: torch.Tensor
    constant: torch.Tensor
    finite: torch.Tensor


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
    event_dims: int = 1,
) -> Certificate:
    """Approximate first- and second-order check that δ is a local maximum of ℓ(F(x + ·), y)
    over the l2 ball of radius ε (the paper's local maxima, Sec. 4).

    x and δ: (*batch, *event), floating point, len(event) == ``event_dims``, δ shaped like x;
    y broadcasts to ``batch``; ``eps`` a positive number or a tensor broadcasting to ``batch``.
    ``directions`` K ≥ 0 random probe directions (drawn flat over the event, so the same generator
    gives the same probes for image-shaped and flattened inputs); ``radius`` r > 0 is the probe
    length as a fraction of ε; ``gtol``, ``ftol`` ≥ 0; ``sphere_tol`` in [0, 1). The model is
    evaluated in eval mode and restored. Returns a :class:`Certificate` with fields shaped
    ``batch``; its ``flat`` field marks degenerate points where ℓ is locally constant (‖∇ℓ‖·r·ε
    and every probe's |Δℓ| at most ftol·max(|ℓ|, 1e-12)), which pass ``is_local_max`` trivially;
    its ``finite`` field is False where ℓ, ∇ℓ or a probe's ℓ is NaN or ±inf, and such points are
    never certified (``is_local_max``, ``flat`` and ``constant`` False). Raises ValueError for
    unusable arguments (as :func:`pga`).
    """
    _check_model(model)
    _check_loss(loss)
    _check_generator(generator)
    _check_tensor("x", x)
    batch, event = _split_event("x", x.shape, event_dims)
    y = _check_labels(y, batch, x, event_dims)
    _check_tensor("delta", delta)
    if delta.shape != x.shape:
        raise ValueError(f"delta must have x's shape {tuple(x.shape)}, got {tuple(delta.shape)}")
    e = _per_example("eps", eps, batch, x).squeeze(-1)
    directions = _check_int("directions", directions, minimum=0)
    radius = _check_real("radius", radius, strict=True)
    if gtol is not None:
        gtol = _check_real("gtol", gtol)
    ftol = _check_real("ftol", ftol)
    sphere_tol = _check_real("sphere_tol", sphere_tol)
    if sphere_tol >= 1:
        raise ValueError(f"sphere_tol must be in [0, 1), got {sphere_tol!r}")
    shape_in = tuple(x.shape)
    x, delta = _flat(x, batch), _flat(delta.to(x.dtype), batch)
    model_f = _flat_model(model, event)
    _check_model_dtype(model, x)
    with _deterministic(model), torch.no_grad():
        _check_label_values(model_f, x, y, loss, x_shape=shape_in, event_dims=event_dims)
        ell, g = _input_gradient_flat(model_f, x + delta, y, loss)
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
        eb = e.expand(directions, *batch).unsqueeze(-1)
        cand = _project_flat(delta.unsqueeze(0) + (radius * e).unsqueeze(-1) * v, eb, "l2")
        fn = get_loss(loss)
        ell2 = fn(model_f(x.unsqueeze(0) + cand), y.expand(directions, *batch))
        inc = ell2 - ell.unsqueeze(0)
        scale = ell.clamp_min(1e-12)
        n_inc = (inc > ftol * scale).sum(0)
        is_max = n_inc == 0
        if gtol is not None:
            is_max = is_max & (kkt * e / scale <= gtol)
        # flat: no first-order change over a probe step and no probe changes ℓ (either sign)
        c_flat = ftol * ell.abs().clamp_min(1e-12)
        flat = (gn * (radius * e) <= c_flat) & (inc.abs() <= c_flat.unsqueeze(0)).all(0)
        constant = (gn == 0) & (inc == 0).all(0)
        # a NaN or ±inf loss is no maximum (NaN comparisons are false: n_inc would be 0)
        finite = torch.isfinite(ell) & torch.isfinite(g).all(-1) & torch.isfinite(ell2).all(0)
        is_max, flat, constant = is_max & finite, flat & finite, constant & finite
        return Certificate(
            tangent_grad_norm=tang,
            kkt_residual=kkt,
            on_sphere=on_sphere,
            max_increase=inc.max(0).values,
            n_increasing=n_inc,
            is_local_max=is_max,
            flat=flat,
            constant=constant,
            finite=finite,
        )
