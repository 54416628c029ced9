r"""The threat model: the feasible set S of the perturbation, the projection onto it, random
starts in it and the step direction of each update rule (paper Sec. 3).

    S = { δ : ‖δ‖₂ ≤ ε }   ("l2", the paper's ball)   or   { δ : ‖δ‖_∞ ≤ ε }   ("linf").

Π_S is the Euclidean projection: δ · min(1, ε/‖δ‖₂) for l2, clip(δ, −ε, ε) for linf. With
``clamp=(lo, hi)`` (see :func:`~adversary_dynamics.attack.pga`) the iterate is then clipped
coordinate-wise to [lo − x, hi − x] (:func:`_clip_box`).

Step directions D(g) of the update δ ← Π_S(δ + η D(g)) (``gradient=``): the identity ("raw", the
paper's update), g ↦ g/‖g‖₂ per example ("normalized", Madry et al. for l2: every g ≠ 0 takes a
step of length η exactly, g = 0 takes none; ``normalize_eps`` > 0 gives torchattacks'
g/(‖g‖₂ + normalize_eps)) or g ↦ sign(g) ("sign", for linf); :func:`_step_length` gives the per-
example multiplier a of g (a g = η D(g) for raw and normalized).
"""

from __future__ import annotations

import math

import torch

from adversary_dynamics.attack.checks import _check_choice, _check_generator, _check_shape_arg, _check_tensor, _flat, _per_example, _split_event

NORMS = ("l2", "linf")
GRADIENTS = ("raw", "normalized", "sign")
INITS = ("zero", "uniform_ball", "uniform_sphere")



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


def _init_draws(shape: tuple[int, ...], norm: str, init: str, generator, device, dtype) -> tuple[torch.Tensor, ...]:
    """The random numbers δ₀ is made of, in the order random_init draws them (shape (*batch, d)):
    () for zero; (u,) U[0, 1) of ``shape`` for linf; (z,) N(0, 1) of ``shape`` for uniform_sphere;
    (z, r) with r U[0, 1) of shape (*batch, 1) for the l2 uniform_ball."""
    if init == "zero":
        return ()
    if norm == "linf":
        return (torch.rand(shape, generator=generator, device=device, dtype=dtype),)
    z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if init == "uniform_sphere":
        return (z,)
    return z, torch.rand((*shape[:-1], 1), generator=generator, device=device, dtype=dtype)


def _init_from_draws(draws: tuple[torch.Tensor, ...], e: torch.Tensor, norm: str, init: str) -> torch.Tensor:
    """δ₀ from :func:`_init_draws`' numbers (stacked along any batch dims, elementwise and row-wise
    maths only: the same bits per row however many rows); e is ε broadcasting to (*batch, 1)."""
    if norm == "linf":
        return (2.0 * draws[0] - 1.0) * e
    z = draws[0]
    z = z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-30)
    if init == "uniform_sphere":
        return z * e
    r = draws[1] ** (1.0 / z.shape[-1])
    return z * (r * e)


def _random_init_flat(shape: tuple[int, ...], e: torch.Tensor, norm: str, init: str, generator,
                      device, dtype) -> torch.Tensor:
    """δ₀ of shape (*batch, d) (see random_init); e is ε shaped (*batch, 1)."""
    if init == "zero":
        return torch.zeros(shape, device=device, dtype=dtype)
    return _init_from_draws(_init_draws(shape, norm, init, generator, device, dtype), e, norm, init)


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



def _clip_box(delta: torch.Tensor, box_lo: torch.Tensor, box_hi: torch.Tensor) -> torch.Tensor:
    """δ clipped coordinate-wise to [box_lo, box_hi] = [lo − x, hi − x] (x + δ stays in [lo, hi]).
    The box contains 0 (x ∈ [lo, hi]), so the clip only shrinks each |δ_i| and δ stays in S."""
    return torch.maximum(torch.minimum(delta, box_hi), box_lo)


def _step_length(gradient: str, eta: torch.Tensor, gn: torch.Tensor, normalize_eps: float,
                 zero: torch.Tensor) -> torch.Tensor:
    """The multiplier a of the update δ + a·D'(g): η for "raw" and "sign" (D' = id or sign), η/‖g‖
    for "normalized" (0 where g = 0: no step) or torchattacks' η/(‖g‖ + normalize_eps). ``eta``
    and ``gn`` = ‖g‖ are shaped (*batch, 1)."""
    if gradient == "normalized":
        return eta / (gn + normalize_eps) if normalize_eps > 0 else torch.where(gn > 0, eta / gn, zero)
    return eta
