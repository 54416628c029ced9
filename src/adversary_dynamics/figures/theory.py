r"""The theory setting of Deng et al. (ICML 2020), Sec. 3-5: Theorem 3.1 and its lemmas, tested
where they apply.

Setting (Sec. 3)
================
A scalar-output two-layer network at initialisation, f(z) = Σ_r a_r σ(w_rᵀ z) with σ = softplus
(ReLU as a contrast), no bias, w_r ~ N(0, I/d), a_r = ±1/√m (:class:`~adversary_dynamics.learning.models.TwoLayerNet`
with ``n_outputs=1``), one input x ~ N(0, I_d) rescaled to ‖x‖₂ = s (the input scale; the mean
norm of a single input is its norm), a label y = ±1 drawn at random (our choice: the main text
leaves the label open), and the adversarial loss ℓ(δ) = (y − f(x + δ))² maximised over the l2 ball
‖δ‖ ≤ ε by projected gradient ascent (PGA) with an absolute step η:

    δ_{t+1} = Π_{B(0,ε)}[δ_t + η ∇ℓ(δ_t)],   δ_0 uniform in the ball.

Theorem 3.1: if m = Ω(d^{5/2}), ε < Θ((log m)^{-2}) and η < min{Θ((log m)^{-2}), ε²}, then w.h.p.
PGA reaches, within O(η^{-2}) iterations, a point on the sphere ‖δ‖ = ε that is O(η^{1/2})-close to
a local maximum. Here the widths are m = ⌈d^p⌉ (p = 5/2 meets the width condition, smaller p is
the contrast), ε = ``eps_factor``·(log m)^{-2} and η = fraction·ε² (absolute: not normalised by the
gradient); the constants are ours, the theorem gives orders only.

What is measured (one batched tensor program per (activation, d, m, s))
=====================================================================
* **T1** — iterations until δ_t lies on the sphere with tangent gradient ‖P∇ℓ(δ_t)‖ ≤ η^{1/2}
  (P = I − δδᵀ/ε²), then the distance of that point to the local maximum reached by continuing with
  the shrinking step η_s = η·z/(s + z) of Corollary 3.1 (z = the T1 iteration count of the run),
  for at most ``refine_factor``·z steps or until the tangent gradient is ≤ ``refine_tol``·η^{1/2};
* **T2** (Lemma 4.1) — for every step that stays inside the ball, (ℓ(δ_{t+1}) − ℓ(δ_t))/η; its
  minimum per run; and whether the run ends on the sphere;
* **T3** (Lemmas 4.3-4.4) — at every refined point, the eigenvalues of the constrained Hessian
  Bᵀ(∇²ℓ − μI)B, μ = ∇ℓ·δ/ε² (the Lagrange multiplier), B an orthonormal basis of the tangent space
  (the d − 1 non-trivial eigenvalues of P(∇²ℓ − μI)P); second derivatives from :mod:`torch.func`;
* **T4** (Theorem 5.1) — the number of distinct maxima that ``maxima_restarts`` uniform starts of
  PGA (step η = ``maxima_step``·ε) reach, against ε = ratio·s (NaN in the ``maxima`` table for a
  restart set where no restart converged: nothing was found, which is not a count of 0).

Every random draw comes from one ``torch.Generator`` per (d, p, s) (the same network, input, label
and starts for softplus and ReLU, and the same start for every η: a paired design). Nothing runs at
import; results are bit-identical for the same seed and thread count.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from adversary_dynamics.attack import count_distinct as _count_distinct
from adversary_dynamics.attack import input_gradient, pga
from adversary_dynamics.learning.models import TwoLayerNet

LOSS = "squared_error"  # ℓ = (y − f)²

__all__ = [
    "THEOREM_WIDTH_POWER",
    "width_for",
    "theorem_eps",
    "loss_and_grad",
    "pointwise_loss",
    "constrained_hessian_eigenvalues",
    "classify_eigenvalues",
    "pga_to_sphere",
    "count_distinct",
    "count_maxima",
    "theory_settings",
    "theory_run",
]

#: p of the width condition m = Ω(d^p) of Theorem 3.1.
THEOREM_WIDTH_POWER = 2.5
_ACTS = ("softplus", "relu")


# ---- the setting ---------------------------------------------------------------------------
def width_for(d: int, power: float) -> int:
    """m = ⌈d^power⌉ (at least 2, so that log m > 0). Raises ValueError for d < 1 or power <= 0."""
    if int(d) < 1:
        raise ValueError(f"d must be >= 1, got {d!r}")
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power!r}")
    return max(2, math.ceil(float(d) ** float(power) - 1e-9))


def theorem_eps(m: int, *, eps_factor: float) -> float:
    """ε = eps_factor · (log m)^{-2}, Theorem 3.1's order for ε (the constant is ours).
    Raises ValueError for m < 2 or eps_factor <= 0."""
    if int(m) < 2:
        raise ValueError(f"m must be >= 2 (log m > 0), got {m!r}")
    if not eps_factor > 0:
        raise ValueError(f"eps_factor must be > 0, got {eps_factor!r}")
    return float(eps_factor) / math.log(int(m)) ** 2


def _sphere_rtol(dtype: torch.dtype) -> float:
    """Relative tolerance of "on the sphere" (‖δ‖ ≥ ε(1 − tol)): 100 rounding units of ``dtype``."""
    return 100 * torch.finfo(dtype).eps


def _network(W: torch.Tensor, a: torch.Tensor, activation: str) -> TwoLayerNet:
    """The ensemble of T scalar-output networks f_t(z) = Σ_r a_tr σ(w_trᵀ z) (no bias, output layer
    fixed) as a :class:`~adversary_dynamics.learning.models.TwoLayerNet` holding W (T, m, d) and a (T, m)
    (shared, not copied), for the attack core."""
    if activation not in _ACTS:
        raise ValueError(f"activation must be one of {_ACTS}, got {activation!r}")
    T, m, d = W.shape
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=1, activation=activation, bias=False, ensemble=(T,),
                      generator=torch.Generator(device=W.device).manual_seed(0), device=W.device, dtype=W.dtype)
    net.W = torch.nn.Parameter(W.detach(), requires_grad=False)
    net.A = torch.nn.Parameter(a.detach().unsqueeze(-2), requires_grad=False)
    return net


def loss_and_grad(W: torch.Tensor, a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor, *,
                  activation: str) -> tuple[torch.Tensor, torch.Tensor]:
    r"""ℓ = (y − f(x + δ))² and ∇_δ ℓ = −2(y − f)·Wᵀ(a ⊙ σ'(W(x + δ))) for a batch of networks,
    from the attack core (:func:`~adversary_dynamics.attack.input_gradient`, the TwoLayerNet's
    analytic path).

    Shapes: W (T, m, d), a (T, m), x (T, d), y (T,), delta (T, J, d) — J perturbations per
    network. Returns loss (T, J) and grad (T, J, d)."""
    net = _network(W, a, activation)
    return input_gradient(net, x.unsqueeze(1) + delta, y.unsqueeze(1), loss=LOSS)


def pointwise_loss(activation: str) -> Callable[..., torch.Tensor]:
    """ℓ(δ; W, a, x, y) = (y − Σ_r a_r σ(w_rᵀ(x + δ)))² for ONE network and one δ (shapes (d,),
    (m, d), (m,), (d,), ()): a pure function for :func:`torch.func.hessian` / ``vmap``."""
    if activation not in _ACTS:
        raise ValueError(f"activation must be one of {_ACTS}, got {activation!r}")
    act = torch.nn.functional.softplus if activation == "softplus" else torch.relu

    def loss(delta, W, a, x, y):
        return (y - (a * act(W @ (x + delta))).sum()) ** 2

    return loss


def _sphere_tangent_basis(delta: torch.Tensor) -> torch.Tensor:
    """(N, d, d−1): orthonormal bases of the tangent spaces {v: vᵀδ_i = 0} (QR of [δ̂, I])."""
    n, d = delta.shape
    u = delta / delta.norm(dim=-1, keepdim=True)
    eye = torch.eye(d, dtype=delta.dtype, device=delta.device).expand(n, d, d)
    q, _ = torch.linalg.qr(torch.cat([u.unsqueeze(-1), eye], dim=-1))
    return q[..., 1:]


def constrained_hessian_eigenvalues(loss_fn: Callable[..., torch.Tensor], delta: torch.Tensor, *args: torch.Tensor,
                                    eps: torch.Tensor | float) -> dict[str, torch.Tensor]:
    r"""Second-order test on the sphere ‖δ‖ = ε (Lemmas 4.3-4.4).

    ``loss_fn(delta_i, *args_i)`` is a scalar function of one point (shape (d,)) and per-point
    arguments; ``delta`` is (N, d) with ‖δ_i‖ = ε_i and every ``args`` tensor has leading size N.
    With g = ∇ℓ, μ = gᵀδ/ε² (the Lagrange multiplier of max ℓ s.t. ‖δ‖² = ε²) and B an
    orthonormal basis of the tangent space, returns

    * ``eigenvalues`` (N, d−1): ascending eigenvalues of Bᵀ(∇²ℓ − μI)B, i.e. the non-trivial
      eigenvalues of P(∇²ℓ − μI)P with P = I − δδᵀ/ε²; all < 0 at a strict local maximum of ℓ on the
      sphere, all > 0 at a strict local minimum, both signs at a saddle;
    * ``tangent_grad`` (N,): ‖Pg‖ (0 at a critical point); ``multiplier`` (N,): μ.

    Gradient and Hessian come from :func:`torch.func.grad` / :func:`torch.func.hessian` under
    :func:`torch.func.vmap`. Raises ValueError if d < 2 or a δ_i is 0."""
    from torch.func import grad, hessian, vmap

    if delta.ndim != 2 or delta.shape[-1] < 2:
        raise ValueError(f"delta must have shape (N, d) with d >= 2, got {tuple(delta.shape)}")
    if (delta.norm(dim=-1) == 0).any():
        raise ValueError("delta: every point must be non-zero (on the sphere)")
    eps_t = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device).expand(delta.shape[0])
    g = vmap(grad(loss_fn))(delta, *args)
    H = vmap(hessian(loss_fn))(delta, *args)
    mu = (g * delta).sum(-1) / eps_t**2
    B = _sphere_tangent_basis(delta)
    M = H - mu[:, None, None] * torch.eye(delta.shape[-1], dtype=delta.dtype, device=delta.device)
    C = B.transpose(-1, -2) @ M @ B
    ev = torch.linalg.eigvalsh(0.5 * (C + C.transpose(-1, -2)))
    u = delta / delta.norm(dim=-1, keepdim=True)
    tg = (g - (g * u).sum(-1, keepdim=True) * u).norm(dim=-1)
    return {"eigenvalues": ev, "tangent_grad": tg, "multiplier": mu}


def classify_eigenvalues(ev: torch.Tensor, *, rel_tol: float = 1e-6) -> list[str]:
    """'maximum' (all < 0), 'minimum' (all > 0), 'saddle' (both signs) or 'degenerate' (some
    |λ| <= rel_tol·max|λ| and no two signs) for each row of ``ev`` (N, k)."""
    out = []
    for row in ev.tolist():
        tol = rel_tol * max(abs(v) for v in row) if row else 0.0
        neg, pos = any(v < -tol for v in row), any(v > tol for v in row)
        zero = any(abs(v) <= tol for v in row)
        out.append("saddle" if neg and pos else "degenerate" if zero or not row else "maximum" if neg else "minimum")
    return out


# ---- T1/T2: PGA to the sphere, then Corollary 3.1's shrinking step --------------------------
def _uniform_ball(n_shape: tuple[int, ...], d: int, *, generator: torch.Generator, dtype, device) -> torch.Tensor:
    """Points uniform in the open unit ball of R^d, shape (*n_shape, d)."""
    v = torch.randn(*n_shape, d, generator=generator, dtype=dtype, device=device)
    v = v / v.norm(dim=-1, keepdim=True)
    r = torch.rand(*n_shape, 1, generator=generator, dtype=dtype, device=device) ** (1.0 / d)
    return v * r * (1 - 1e-12)


def pga_to_sphere(W: torch.Tensor, a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, delta0: torch.Tensor, *,
                  eps: float, eta: torch.Tensor, activation: str, max_steps: int, refine_factor: float,
                  refine_tol: float, ascent: bool = True) -> dict[str, torch.Tensor]:
    r"""PGA with an absolute step until the sphere is reached with tangent gradient ≤ η^{1/2}
    (Theorem 3.1), then the shrinking step η_s = η·z/(s + z) of Corollary 3.1 (z = that iteration
    count) for at most ``refine_factor``·z steps or until the tangent gradient is ≤ ``refine_tol``·η^{1/2}.

    Shapes: W (T, m, d), a (T, m), x (T, d), y (T,), delta0 (T, J, d) inside the ball of radius
    ``eps``, eta (J,) absolute steps (column j of every network uses eta[j]). All T·J runs advance
    in lock step until each has finished or ``max_steps`` iterations have run. Returns tensors of
    shape (T, J): ``reached`` (bool), ``iterations`` (the first t with ‖δ_t‖ = ε and ‖P∇ℓ(δ_t)‖ ≤
    η^{1/2}; ``max_steps`` where not reached), ``tangent_grad_hit``, ``distance`` (‖δ_T − δ_final‖,
    NaN where not reached), ``refined`` (the refinement met its tolerance), ``tangent_grad_final``,
    ``min_rate`` (min over steps that stayed inside the ball of (ℓ_{t+1} − ℓ_t)/η; +inf where
    there was none), ``interior_steps``, ``on_sphere`` (final), ``loss_start``, ``loss_final``,
    ``finite`` (every loss and gradient evaluated along the run was finite: a run that met NaN or
    ±inf is never ``reached``, ``refined`` or ``on_sphere``, and its ``distance`` is NaN), and
    ``delta`` (T, J, d), the final points. ``ascent=False`` runs projected gradient DEScent
    with the same rules (it ends at minima of ℓ on the sphere: the other kind of critical point,
    used by the second-order test); ``min_rate`` is then the largest per-step decrease's
    negative. Raises ValueError on bad arguments."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
    if not eps > 0 or not (eta > 0).all():
        raise ValueError(f"eps and eta must be > 0, got eps={eps!r}, eta={eta.tolist()!r}")
    if refine_factor < 0 or not refine_tol > 0:
        raise ValueError(f"refine_factor must be >= 0 and refine_tol > 0, got {refine_factor!r}, {refine_tol!r}")
    T, J = delta0.shape[:2]
    dev, dt = delta0.device, delta0.dtype
    eta_b = eta.to(dt).view(1, J).expand(T, J)
    sq = eta_b.sqrt()
    on_tol = eps * (1 - _sphere_rtol(dt))
    phase = torch.zeros(T, J, dtype=torch.long, device=dev)  # 0: to the sphere, 1: refining, 2: done
    it = torch.full((T, J), max_steps, dtype=torch.long, device=dev)
    s_ref = torch.zeros(T, J, dtype=dt, device=dev)
    delta_hit = torch.full_like(delta0, math.nan)
    tg_hit = torch.full((T, J), math.nan, dtype=dt, device=dev)
    min_rate = torch.full((T, J), math.inf, dtype=dt, device=dev)
    n_int = torch.zeros(T, J, dtype=torch.long, device=dev)
    finite = torch.ones(T, J, dtype=torch.bool, device=dev)
    st = {"prev_loss": None, "prev_phase": phase, "loss_start": None, "tg": None, "delta": None, "loss": None}

    def observe(state) -> bool:
        """Theorem 3.1's bookkeeping at δ_t; True (stop) once every run is done."""
        nonlocal phase, it, tg_hit, delta_hit, min_rate, n_int, finite
        delta, g, loss = state.delta, state.grad, state.loss
        if st["loss_start"] is None:
            st["loss_start"] = loss.clone()
        finite &= torch.isfinite(loss) & torch.isfinite(g).all(-1)
        dn = delta.norm(dim=-1)
        on = dn >= on_tol
        u = delta / dn.clamp_min(torch.finfo(dt).tiny).unsqueeze(-1)
        tg = (g - (g * u).sum(-1, keepdim=True) * u).norm(dim=-1)
        if state.t > 0:  # the step into δ_t: an interior step of the first stage (Lemma 4.1)
            prev_int = state.interior & (st["prev_phase"] == 0)
            rate = (loss - st["prev_loss"]) / eta_b
            min_rate = torch.where(prev_int, torch.minimum(min_rate, rate), min_rate)
            n_int += prev_int
        hit = (phase == 0) & on & (tg <= sq)
        if hit.any():
            it = torch.where(hit, state.t, it)
            tg_hit = torch.where(hit, tg, tg_hit)
            delta_hit = torch.where(hit.unsqueeze(-1), delta, delta_hit)
            phase = torch.where(hit, 1, phase)
        z = it.clamp_min(1).to(dt)
        done = (phase == 1) & ((s_ref >= refine_factor * z) | (tg <= refine_tol * sq))
        phase = torch.where(done, 2, phase)
        kept = loss.clone()
        st.update(prev_loss=kept, loss=kept, tg=tg, delta=delta.clone())
        return bool((phase == 2).all())

    def schedule(t, state):
        """η in the first stage, Corollary 3.1's η z/(s + z) while refining, 0 once done (descent: negated)."""
        nonlocal s_ref
        z = it.clamp_min(1).to(dt)
        step = torch.where(phase == 0, eta_b, torch.where(phase == 1, eta_b * z / (s_ref + z), 0.0))
        st["prev_phase"] = phase
        s_ref = s_ref + (phase == 1).to(dt)
        return step if ascent else -step

    net = _network(W, a, activation)
    pga(net, x.unsqueeze(1).expand(T, J, x.shape[-1]), y.unsqueeze(1), loss=LOSS, eps=eps, norm="l2", steps=max_steps,
        step_size=eta_b, gradient="raw", delta0=delta0, record=observe, step_schedule=schedule)
    delta, loss, tg, loss_start = st["delta"], st["loss"], st["tg"], st["loss_start"]
    # a run that met a NaN or ±inf loss or gradient reached nothing (NaN comparisons are false, but a
    # NaN after the sphere was hit, or a refinement that ran out its steps, would otherwise count)
    reached = (it < max_steps) & finite
    dist = torch.where(reached, (delta_hit - delta).norm(dim=-1), torch.full_like(tg, math.nan))
    return {"reached": reached, "iterations": it, "tangent_grad_hit": tg_hit, "distance": dist,
            "refined": (phase == 2) & finite, "tangent_grad_final": tg, "min_rate": min_rate,
            "interior_steps": n_int, "on_sphere": (delta.norm(dim=-1) >= on_tol) & finite,
            "loss_start": loss_start, "loss_final": loss, "finite": finite, "delta": delta}


# ---- T4: distinct maxima from many restarts -------------------------------------------------
def count_distinct(points: torch.Tensor, valid: torch.Tensor, *, radius: torch.Tensor | float) -> torch.Tensor:
    """Number of clusters among the valid points of each group: points (..., R, d), valid
    (..., R) bool; two points closer than ``radius`` (broadcast to (...)) are linked, clusters are
    the connected components (:func:`adversary_dynamics.attack.count_distinct` with ``radius``;
    rows with a NaN or ±inf entry never count). Returns (...) long."""
    return _count_distinct(points, valid, radius=radius)


def count_maxima(W: torch.Tensor, a: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, eps: torch.Tensor,
                 restarts: int, steps: int, step: float, tol: float, merge: float, activation: str,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    r"""Distinct maxima of ℓ over the ball (Theorem 5.1): for every network (T of them) and every
    radius eps (E,), ``restarts`` uniform starts of projected ascent with normalised steps
    δ ← Π(δ + step·ε·∇ℓ/‖∇ℓ‖) for ``steps`` steps (only the endpoints matter here, and this step is
    stable at every ε: our choice). A run has converged when ‖Π(δ + step·ε·∇ℓ/‖∇ℓ‖) − δ‖/(step·ε)
    is ≤ tol (on the sphere: ‖P∇ℓ‖/‖∇ℓ‖ ≲ tol) and its loss and gradient are finite; converged
    endpoints closer than merge·ε are one
    maximum. Returns (T, E) long tensors ``distinct``, ``converged`` and ``on_sphere`` (converged
    endpoints on the sphere)."""
    T, d = x.shape
    E = eps.numel()
    dt = x.dtype
    epsb = eps.to(dt).view(1, E, 1).expand(T, E, restarts).reshape(T, E * restarts)
    delta = _uniform_ball((T, E * restarts), d, generator=generator, dtype=dt, device=x.device) * epsb.unsqueeze(-1)
    eta = step * epsb

    def pstep(delta, g):
        new = delta + (eta / g.norm(dim=-1).clamp_min(1e-30)).unsqueeze(-1) * g
        return new * torch.clamp(epsb / new.norm(dim=-1).clamp_min(1e-30), max=1.0).unsqueeze(-1)

    last = {}

    def keep_last(state) -> None:
        if state.t == steps:
            last.update(delta=state.delta.clone(), loss=state.loss.clone(), grad=state.grad.clone())

    # the attack core's normalised steps (the plain update, as a callable hook is given)
    pga(_network(W, a, activation), x.unsqueeze(1).expand(T, E * restarts, d), y.unsqueeze(1), loss=LOSS, eps=epsb,
        norm="l2", steps=steps, step_size=eta, gradient="normalized", delta0=delta, record=keep_last)
    delta, ell, g = last["delta"], last["loss"], last["grad"]
    # a NaN or ±inf loss or gradient is no converged maximum
    conv = ((pstep(delta, g) - delta).norm(dim=-1) / eta <= tol) & torch.isfinite(ell) & torch.isfinite(g).all(-1)
    on = delta.norm(dim=-1) >= epsb * (1 - _sphere_rtol(dt))
    pts = delta.view(T, E, restarts, d)
    cv = conv.view(T, E, restarts)
    distinct = count_distinct(pts, cv, radius=merge * eps.to(dt).view(1, E).expand(T, E))
    return {"distinct": distinct, "converged": cv.sum(-1), "on_sphere": (cv & on.view(T, E, restarts)).sum(-1)}


# ---- the whole sweep ------------------------------------------------------------------------
def theory_settings(*, dims: Sequence[int], width_powers: Sequence[float], activation: str = "softplus",
                    contrast_activation: str | None = "relu") -> list[dict[str, Any]]:
    """The (activation, d, p, m, regime) settings of the sweep: ``activation`` at every d and width
    power, and ``contrast_activation`` (if any) at the theorem's width m = ⌈d^{5/2}⌉ only. ``regime``
    is ``"theorem"`` when m ≥ d^{5/2} (Theorem 3.1's width condition), else ``"below"``."""
    for name, act in (("activation", activation), ("contrast_activation", contrast_activation)):
        if act is not None and act not in _ACTS:
            raise ValueError(f"{name}: {act!r} not allowed; allowed: {list(_ACTS)}")
    if contrast_activation == activation:
        raise ValueError(f"contrast_activation must differ from activation ({activation!r}), got {contrast_activation!r}")
    if len(dims) == 0 or len(width_powers) == 0:
        raise ValueError(f"dims and width_powers must not be empty, got {list(dims)!r}, {list(width_powers)!r}")
    out = []
    for d in dims:
        runs = [(activation, float(p)) for p in width_powers]
        if contrast_activation is not None:
            runs.append((contrast_activation, THEOREM_WIDTH_POWER))
        for act, p in runs:
            m = width_for(d, p)
            out.append({"activation": act, "d": int(d), "width_power": p, "m": m,
                        "regime": "theorem" if m >= d ** THEOREM_WIDTH_POWER - 1e-9 else "below"})
    return out


def theory_run(*, dims: Sequence[int], width_powers: Sequence[float], activation: str = "softplus",
               contrast_activation: str | None = "relu", scales: Sequence[float], eps_factor: float,
               eta_fractions: Sequence[float], trials: int, max_steps: int, refine_factor: float, refine_tol: float,
               maxima_dims: Sequence[int], maxima_ratios: Sequence[float], maxima_trials: int, maxima_restarts: int,
               maxima_steps: int, maxima_step: float, maxima_tol: float, maxima_merge: float,
               hessian_descent: bool = True, seed: int = 0, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> dict[str, list[dict[str, Any]]]:
    r"""The theory sweep over :func:`theory_settings` × ``scales``.

    Per setting: ``trials`` random (network, input, label, start) draws, each run at every
    η = fraction·ε² (ε = :func:`theorem_eps`) through :func:`pga_to_sphere` (the same start for every
    η); constrained Hessians (:func:`constrained_hessian_eigenvalues`, float64) at the refined points
    and, with ``hessian_descent``, at the minima on the sphere that descent reaches from the same starts
    (largest η only, within 4× the slowest ascent run's iterations + 50);
    for d in ``maxima_dims``, :func:`count_maxima` at ε = ratio·s on the first ``maxima_trials``
    networks. Networks, inputs and labels depend on (seed, d, p, s) only, so the contrast activation
    sees the same draws as the theorem's. Returns three row lists:

    * ``pga`` — one row per PGA run, (setting, s, η, trial): setting, ε, η, η/ε² and the outputs of
      :func:`pga_to_sphere` (``finite`` last: the run's losses and gradients were all finite);
    * ``hessian`` — one row per run that reached the sphere (``point``: ``ascent`` or ``descent``):
      eigenvalue range, ``kind``
      (:func:`classify_eigenvalues`), multiplier μ, ‖∇²ℓ‖₂ and the tangent gradient;
    * ``maxima`` — one row per (setting, s, ratio, trial): restarts, converged ones, distinct maxima
      (a float NaN when no restart converged).

    Raises ValueError for an unknown activation, an empty list, a fraction outside (0, 1)
    (η < ε² is the theorem's condition) or any count < 1."""
    from torch.func import hessian, vmap

    settings = theory_settings(dims=dims, width_powers=width_powers, activation=activation,
                               contrast_activation=contrast_activation)
    for name, v in (("scales", scales), ("eta_fractions", eta_fractions), ("maxima_ratios", maxima_ratios)):
        if len(v) == 0:
            raise ValueError(f"{name} must not be empty")
    if any(not 0 < f < 1 for f in eta_fractions):
        raise ValueError(f"eta_fractions must lie in (0, 1) (eta < eps^2), got {list(eta_fractions)!r}")
    for name, v in (("trials", trials), ("max_steps", max_steps), ("maxima_trials", maxima_trials),
                    ("maxima_restarts", maxima_restarts), ("maxima_steps", maxima_steps)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v!r}")
    runs, hess, maxima = [], [], []
    fr = torch.tensor(sorted(eta_fractions, reverse=True), dtype=torch.float64)
    for st in settings:
        d, m, p = st["d"], st["m"], st["width_power"]
        eps_th = theorem_eps(m, eps_factor=eps_factor)
        eta = fr * eps_th**2
        for si, s in enumerate(scales):
            key = int(seed) * 1_000_003 + d * 7919 + int(round(p * 100)) * 131 + si
            g = torch.Generator(device=device).manual_seed(key)
            n_net = max(trials, maxima_trials)
            net = TwoLayerNet(input_dim=d, width=m, n_outputs=1, activation=st["activation"], ensemble=(n_net,),
                              generator=g, device=device, dtype=torch.float64)
            W64, A64 = net.W.detach(), net.A.detach()[..., 0, :]
            x64 = torch.randn(n_net, d, generator=g, dtype=torch.float64, device=device)
            x64 = x64 * (float(s) / x64.norm(dim=-1, keepdim=True))
            y64 = 2.0 * torch.randint(0, 2, (n_net,), generator=g, device=device).to(torch.float64) - 1.0
            u0 = _uniform_ball((trials, 1), d, generator=g, dtype=torch.float64, device=device)
            W, A, x, y = (t.to(dtype) for t in (W64, A64, x64, y64))
            base = {**st, "scale": float(s), "eps": eps_th}
            sl = slice(0, trials)
            out = pga_to_sphere(W[sl], A[sl], x[sl], y[sl], (u0 * eps_th).expand(trials, len(fr), d).to(dtype),
                                eps=eps_th, eta=eta.to(dtype), activation=st["activation"], max_steps=max_steps,
                                refine_factor=refine_factor, refine_tol=refine_tol)
            cols = {k: v.cpu() for k, v in out.items() if k != "delta"}
            for j in range(trials):
                for k in range(len(fr)):
                    row = {**base, "eta": float(eta[k]), "eta_over_eps2": float(fr[k]), "trial": j}
                    for c, v in cols.items():
                        val = v[j, k].item()
                        row[c] = bool(val) if v.dtype == torch.bool else float(val) if v.is_floating_point() else int(val)
                    runs.append(row)
            # T3: constrained Hessians (float64) at the refined points of the runs that reached the sphere,
            # and at the minima on the sphere that descent (largest eta only) reaches from the same starts
            outs = [("ascent", out, fr)]
            if hessian_descent:
                # budget: 4x the slowest ascent run at this eta (descent may end inside the ball, at a
                # minimum of the loss, and would otherwise hold the batch until max_steps)
                budget = min(max_steps, 4 * int(out["iterations"][:, 0].max()) + 50)
                dsc = pga_to_sphere(W[sl], A[sl], x[sl], y[sl], (u0 * eps_th).to(dtype), eps=eps_th,
                                    eta=eta[:1].to(dtype), activation=st["activation"], max_steps=budget,
                                    refine_factor=refine_factor, refine_tol=refine_tol, ascent=False)
                outs.append(("descent", dsc, fr[:1]))
            for point, o, frs in outs:
                ok = o["reached"] & o["on_sphere"]
                if d < 2 or not bool(ok.any()):
                    continue
                jj, kk = torch.nonzero(ok, as_tuple=True)
                dl = o["delta"][jj, kk].to(torch.float64)
                dl = dl * (eps_th / dl.norm(dim=-1, keepdim=True))  # exactly on the sphere
                fn = pointwise_loss(st["activation"])
                res = constrained_hessian_eigenvalues(fn, dl, W64[jj], A64[jj], x64[jj], y64[jj], eps=eps_th)
                Hn = torch.linalg.matrix_norm(vmap(hessian(fn))(dl, W64[jj], A64[jj], x64[jj], y64[jj]), ord=2)
                kinds = classify_eigenvalues(res["eigenvalues"])
                ev = res["eigenvalues"].cpu()
                for i in range(len(jj)):
                    hess.append({**base, "point": point, "eta": float(frs[kk[i]]) * eps_th**2,
                                 "eta_over_eps2": float(frs[kk[i]]), "trial": int(jj[i]), "kind": kinds[i],
                                 "eig_min": float(ev[i, 0]), "eig_max": float(ev[i, -1]),
                                 "multiplier": float(res["multiplier"][i]), "hessian_norm": float(Hn[i]),
                                 "tangent_grad": float(res["tangent_grad"][i])})
            # T4: distinct maxima against eps = ratio * s
            if d in set(int(v) for v in maxima_dims):
                g4 = torch.Generator(device=device).manual_seed(key + 17)
                eps4 = torch.tensor([r * float(s) for r in maxima_ratios], dtype=dtype, device=device)
                sl = slice(0, maxima_trials)
                mx = count_maxima(W[sl], A[sl], x[sl], y[sl], eps=eps4, restarts=maxima_restarts, steps=maxima_steps,
                                  step=maxima_step, tol=maxima_tol, merge=maxima_merge, activation=st["activation"],
                                  generator=g4)
                for j in range(maxima_trials):
                    for e, r in enumerate(maxima_ratios):
                        maxima.append({**base, "eps": float(r) * float(s), "ratio": float(r), "eps_theorem": eps_th,
                                       "trial": j, "restarts": int(maxima_restarts),
                                       "converged": int(mx["converged"][j, e]), "on_sphere": int(mx["on_sphere"][j, e]),
                                       # no converged restart: no maximum was found, which is missing data, not 0
                                       "distinct_maxima": int(mx["distinct"][j, e]) if int(mx["converged"][j, e]) > 0
                                       else math.nan})
    return {"pga": runs, "hessian": hess, "maxima": maxima}
