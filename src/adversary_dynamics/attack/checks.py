r"""Argument checks and the model-calling conventions shared by every public call of the attack core
(:func:`~adversary_dynamics.attack.pga`, :func:`~adversary_dynamics.attack.project`,
:func:`~adversary_dynamics.attack.random_init`, :func:`~adversary_dynamics.attack.input_gradient`,
:func:`~adversary_dynamics.attack.local_max_certificate`).

Inputs are validated once, before the first step (no per-step host synchronisation); every
unusable argument raises ``ValueError`` naming the argument, what was given (shape, dtype or
value) and what is expected.

Shapes. ``x`` has shape ``(*batch, *event)`` with ``len(event) == event_dims`` (default 1: one
example is the last dimension, ``(*batch, d)``; ``event_dims=3``: images ``(*batch, C, H, W)``).
Norms, projections and the per-example ε are taken over the event dimensions; ``batch`` may have
any number of dimensions (for example restarts × inputs); ``y``, a tensor ``eps`` and a tensor
``step_size`` broadcast against ``batch``. With ``event_dims=1`` the model is called on tensors
shaped (*batch', d) (it must map them to (*batch', K), as nn.Linear does); with ``event_dims > 1``
the batch dims are flattened into one, the model is called on (n, *event) with n = prod(batch)
(the single batch dimension of an ordinary CNN) and its outputs (n, K) are restored to
(*batch, K) (:class:`_EventModel`). An empty batch (n = 0) is allowed on every path. Flat x
(*batch, d) given to a model with convolutions, or image-shaped x with ``event_dims=1``, fails
with a ValueError saying to reshape x to (*batch, C, H, W) and pass ``event_dims=3``.

The model is attacked as a deterministic function (:func:`_deterministic`): an ``nn.Module`` is
put in eval mode for the attack (BatchNorm uses its running statistics and does not update them,
Dropout is off) and every submodule's training flag is restored afterwards, also when the attack
raises. Parameters are not changed, their ``requires_grad`` is untouched and no ``.grad`` is
accumulated (gradients are taken with respect to the input only).
"""

from __future__ import annotations

import contextlib
import math
import numbers

import torch
from torch import nn

from adversary_dynamics.learning.losses import check_labels, get_loss
from adversary_dynamics.learning.models import TwoLayerNet

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

def _per_example(name: str, value, batch: tuple[int, ...], like: torch.Tensor, *,
                 check_values: bool = True) -> torch.Tensor:
    """A positive, finite per-example quantity (ε or η) as a tensor of shape (*batch, 1) in like's
    dtype and device. A number is checked on the host (no device synchronisation); a tensor (or
    array) must broadcast against ``batch``, and its values are checked (finite, > 0; a host
    synchronisation) unless ``check_values`` is False."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = _check_real(name, value, strict=True)
        # a fill on the device (the same rounding of v to the dtype as torch.tensor(v, dtype)), not a
        # host-to-device copy, which would wait for the device
        return torch.full((1,), v, dtype=like.dtype, device=like.device).expand(*batch, 1)
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
    if check_values and t.numel() and not bool(torch.all(torch.isfinite(t) & (t > 0))):
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


def _check_clamp(clamp, x: torch.Tensor, *, check_values: bool = True) -> tuple[float, float] | None:
    """(lo, hi) with lo < hi and x inside [lo, hi] (otherwise no feasible point exists near x; the
    latter read from x's values, skipped when ``check_values`` is False)."""
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
    if check_values and x.numel():
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

