r"""A local-maximum certificate for a perturbation δ of the l2 ball (the paper's local maxima,
Sec. 4): first-order optimality (tangent gradient, KKT residual) and a probe of feasible
directions around δ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adversary_dynamics.learning.losses import LossLike, get_loss
from .checks import (_check_generator, _check_int, _check_label_values, _check_labels, _check_loss, _check_model,
                     _check_model_dtype, _check_real, _check_tensor, _deterministic, _flat, _flat_model,
                     _per_example, _split_event)
from adversary_dynamics.attack.driver import _input_gradient_flat
from adversary_dynamics.attack.threat import _project_flat


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
