r"""Paper Fig. 1 ("Landscapes and trajectories on simulated data"): two-dimensional simulated
inputs, the theory network, the adversarial loss over the whole disk, PGD trajectories and a
count of local maxima (paper Secs. 3, 5.1 and Theorem 5.1).

Objects (exactly the paper's, Sec. 3)
-------------------------------------
* Network: f(z) = Σ_{r=1}^m a_r softplus(w_rᵀ z), no bias, w_r ~ N(0, I/d), a_r = ±1/√m,
  scalar output (:func:`theory_network`, a :class:`~adversary_dynamics.learning.models.TwoLayerNet`
  with ``n_outputs=1``).
* Loss: ℓ(δ) = (y − f(x + δ))² ("squared_error"); the paper writes the problem as the
  minimisation of L = −ℓ, so its plots show z = −ℓ ≤ 0 (adversarial maxima are minima of z).
* Input scale: the mean l2 norm of the sample, set by one global rescaling
  x ← x · s / mean_i ‖x_i‖₂ (:func:`~adversary_dynamics.learning.data.rescale_to_scale`); ε = ratio · s.
* Attack: δ ← Π_{‖δ‖≤ε}[δ + η ∇_δ ℓ] (``attack.pga`` with ``gradient="raw"``, absolute η),
  started uniformly in the ball.

The generator of the simulated inputs and labels (:func:`make_simulated`) is ours: the main text
leaves it to the supplementary material. Everything runs in float64 by default: at input scale
0.01 the loss varies by about 1e-4 of its value over the disk, which float32 would turn into
rounding noise (spurious local maxima).

Coordinates: δ = (δ₁, δ₂) in the input space itself (no projection, d = 2); the disk grid is the
Cartesian grid of ``resolution`` × ``resolution`` points on [−ε, ε]², points outside the disk NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from adversary_dynamics.learning import data
from adversary_dynamics.attack import count_distinct, pga, random_init
from adversary_dynamics.learning.losses import squared_error
from adversary_dynamics.learning.models import TwoLayerNet

LABEL_RULES = ("sign", "teacher")
LOSS = "squared_error"  # ℓ = (y − f)², the paper's L = −ℓ

__all__ = [
    "LABEL_RULES",
    "LOSS",
    "make_simulated",
    "theory_network",
    "loss_at",
    "DiskLandscape",
    "disk_landscape",
    "circle_losses",
    "cyclic_local_maxima",
    "grid_interior_maxima",
    "Trajectory",
    "pgd_trajectory",
    "escape_step",
    "MaximaCount",
    "count_maxima",
    "fig1_tables",
]


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def make_simulated(*, n: int, label_rule: str = "sign", generator: torch.Generator | None = None,
                   teacher_width: int = 32, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The simulated two-dimensional sample of Fig. 1 (our generator: the main text leaves it open).

    x_i ~ N(0, I_2), i = 1..n, before any rescaling (mean l2 norm ≈ √(π/2) ≈ 1.25). Labels
    (scalar, real):

    * ``"sign"``: y_i = sign(x_{i,1}) ∈ {−1, +1} (0 mapped to +1): invariant under rescaling;
    * ``"teacher"``: y_i = sign(g(x_i)) with g an independent softplus :func:`theory_network` of
      width ``teacher_width`` (drawn from ``generator`` after x), centred at its median output.

    Returns ``(x, y)`` of shapes (n, 2) and (n,). Raises ValueError for ``n`` < 1 or an unknown
    ``label_rule``.
    """
    n = _positive_int("n", n)
    if label_rule not in LABEL_RULES:
        raise ValueError(f"label_rule={label_rule!r} is not allowed: choose one of {LABEL_RULES}")
    x = torch.randn(n, 2, generator=generator, dtype=dtype)
    if label_rule == "sign":
        y = torch.where(x[:, 0] >= 0, 1.0, -1.0).to(dtype)
    else:
        g = theory_network(width=teacher_width, generator=generator, dtype=dtype)
        with torch.no_grad():
            out = g(x).squeeze(-1)
        y = torch.where(out >= out.median(), 1.0, -1.0).to(dtype)
    return x, y


def theory_network(*, width: int, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float64) -> TwoLayerNet:
    """The paper's network for d = 2: f(z) = Σ_r a_r softplus(w_rᵀ z), no bias, w_r ~ N(0, I/2),
    a_r = ±1/√m, one output, weights fixed (Sec. 3). Raises ValueError for ``width`` < 1."""
    width = _positive_int("width", width)
    return TwoLayerNet(input_dim=2, width=width, n_outputs=1, activation="softplus", bias=False,
                       generator=generator, dtype=dtype)


def loss_at(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """ℓ = (y − f(x + δ))² per point: ``x`` (*b, 2), ``y`` broadcasting against the batch,
    ``delta`` (*batch, 2) broadcasting against ``x``; returns the batch shape (no gradient)."""
    with torch.no_grad():
        out = model(x + delta)
        yy = torch.as_tensor(y, dtype=out.dtype).expand(out.shape[:-1])
        return squared_error(out, yy)


@dataclass
class DiskLandscape:
    """ℓ on the grid over the disk ‖δ‖₂ ≤ ε: ``coords`` (G,) the grid coordinates on [−ε, ε];
    ``loss`` (G, G) with ``loss[i, j]`` = ℓ(δ = (coords[j], coords[i])) (row i: δ₂, column j:
    δ₁), NaN outside the disk."""

    coords: torch.Tensor
    loss: torch.Tensor
    eps: float

    def points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(δ₁, δ₂) of every grid point, each (G, G), aligned with ``loss``."""
        d2, d1 = torch.meshgrid(self.coords, self.coords, indexing="ij")
        return d1, d2


def disk_landscape(model: torch.nn.Module, x: torch.Tensor, y, *, eps: float, resolution: int) -> DiskLandscape:
    """Evaluate ℓ(δ) = (y − f(x + δ))² densely over the disk ‖δ‖₂ ≤ ε (one forward pass).

    ``x`` (2,), ``y`` a scalar; the grid is ``resolution`` equispaced coordinates on [−ε, ε] per
    axis (odd ``resolution`` puts δ = 0 on the grid); points with ‖δ‖ > ε(1 + 1e-12) are NaN.
    Raises ValueError for ``eps`` ≤ 0 or ``resolution`` < 3."""
    eps = _positive("eps", eps)
    resolution = _positive_int("resolution", resolution, 3)
    c = torch.linspace(-eps, eps, resolution, dtype=x.dtype, device=x.device)
    d2, d1 = torch.meshgrid(c, c, indexing="ij")
    pts = torch.stack([d1, d2], -1)
    vals = loss_at(model, x, y, pts)
    inside = d1 * d1 + d2 * d2 <= (eps * eps) * (1 + 1e-12)
    return DiskLandscape(coords=c, loss=torch.where(inside, vals, torch.full_like(vals, float("nan"))), eps=eps)


def circle_losses(model: torch.nn.Module, x: torch.Tensor, y, *, eps: float, n_angles: int,
                  inner: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ℓ on the circle ‖δ‖ = ε at ``n_angles`` equispaced angles θ_k = 2πk/n (δ = ε(cos θ, sin θ)),
    and ℓ at radius (1 − ``inner``)ε at the same angles. Returns (angles, on, inside), each
    (n_angles,). ``on ≥ inside`` at a circle maximum means ℓ does not decrease outwards there,
    i.e. the point is a local maximum over the ball, not only along the circle."""
    eps = _positive("eps", eps)
    n_angles = _positive_int("n_angles", n_angles, 3)
    th = torch.arange(n_angles, dtype=x.dtype, device=x.device) * (2 * math.pi / n_angles)
    u = torch.stack([torch.cos(th), torch.sin(th)], -1)
    return th, loss_at(model, x, y, eps * u), loss_at(model, x, y, (1 - inner) * eps * u)


def cyclic_local_maxima(values: torch.Tensor) -> torch.Tensor:
    """Mask of the local maxima of a cyclic sequence (last dimension): v_k > v_{k−1} and
    v_k ≥ v_{k+1} (indices mod n), so a flat top counts once; a constant sequence has none."""
    v = values
    return (v > v.roll(1, -1)) & (v >= v.roll(-1, -1))


def grid_interior_maxima(loss: torch.Tensor) -> int:
    """Number of strict local maxima of a disk grid (NaN outside) among the points whose 8
    neighbours are all inside the disk (greater than every neighbour)."""
    L = loss
    core = L[1:-1, 1:-1]
    ok = torch.isfinite(core)
    G = L.shape[0]
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            nb = L[1 + di:G - 1 + di, 1 + dj:G - 1 + dj]
            ok = ok & torch.isfinite(nb) & (core > nb)
    return int(ok.sum())


@dataclass
class Trajectory:
    """PGD iterates of B examples: ``deltas`` (T+1, B, 2) δ_0 … δ_T; ``losses`` (T+1, B) the loss
    pga reports at each iterate; ``eps`` (B,); ``grad_norm`` (T+1, B) ‖∇_δ ℓ(δ_t)‖₂."""

    deltas: torch.Tensor
    losses: torch.Tensor
    eps: torch.Tensor
    grad_norm: torch.Tensor


def pgd_trajectory(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps, step_size: float, steps: int,
                   generator: torch.Generator | None = None, init: str = "uniform_ball") -> Trajectory:
    """The paper's PGD on ℓ = (y − f)²: δ_{t+1} = Π_{‖δ‖≤ε}[δ_t + η ∇_δ ℓ(δ_t)] (``attack.pga``,
    raw gradient, absolute ``step_size`` η, l2 ball) for ``steps`` steps, from δ₀ drawn by
    ``attack.random_init`` (``init``, uniform in the ball by default) with ``generator``.

    ``x`` (B, 2), ``y`` (B,), ``eps`` a float or (B,) tensor. Every iterate is kept: one pga call
    with ``record=True`` (the arithmetic of a run without it).
    Raises ValueError for ``steps`` < 0, η ≤ 0, ε ≤ 0 or an unknown ``init``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    step_size = _positive("step_size", step_size)
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(x.shape[:-1]).contiguous()
    if not bool(torch.all(e > 0)):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    cur = random_init(tuple(x.shape), eps=e, norm="l2", init=init, generator=generator, device=x.device,
                      dtype=x.dtype)
    res = pga(model, x, y, loss=LOSS, eps=e, norm="l2", steps=steps, step_size=step_size, gradient="raw",
              delta0=cur, record=True)
    return Trajectory(deltas=res.iterates, losses=res.losses, eps=e, grad_norm=res.grad_norm)


def escape_step(losses: torch.Tensor, *, fraction: float = 0.5) -> torch.Tensor:
    """Per trajectory (columns of ``losses``, shape (T+1, B)): the first t at which ℓ_t − ℓ_0 has
    covered ``fraction`` of ℓ_T − ℓ_0 (the escape time of the paper's Figs. 1–2, our measure);
    −1 when the loss did not rise (ℓ_T ≤ ℓ_0)."""
    rise = losses - losses[:1]
    total = rise[-1:]
    hit = (rise >= fraction * total) & (total > 0)
    first = torch.where(hit.any(0), hit.to(torch.int64).argmax(0), torch.full_like(total[0], -1, dtype=torch.int64))
    return first


@dataclass
class MaximaCount:
    """Result of :func:`count_maxima` per example (tensors of shape (B,)); ``deltas`` (R, B, 2)
    the restarts' final iterates."""

    distinct_maxima: torch.Tensor
    distinct_on_sphere: torch.Tensor
    frac_on_sphere: torch.Tensor
    frac_settled: torch.Tensor
    final_loss_min: torch.Tensor
    final_loss_max: torch.Tensor
    deltas: torch.Tensor


def count_maxima(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps, restarts: int, steps: int,
                 step_fraction: float, phases: int = 4, cos_threshold: float = 0.99,
                 generator: torch.Generator | None = None, sphere_tol: float = 1e-6,
                 settle_tol: float = 1e-2) -> MaximaCount:
    """Count the distinct local maxima of ℓ = (y − f(x + δ))² over ‖δ‖ ≤ ε that PGA finds from
    ``restarts`` uniform starts per example (Theorem 5.1: one maximum below a threshold τ_ε).

    PGA here is a tool to reach maxima, not the paper's dynamics: normalised gradient steps of
    length κ_p · ε (scale-free, so every ε converges alike), in ``phases`` phases of
    ``steps // phases`` steps with κ_p = ``step_fraction`` · 4^(−p), p = 0 … phases − 1 (a
    shrinking step as in Corollary 3.1: at a kink-like maximum of a near-ReLU softplus the
    iterate oscillates with amplitude ≈ κ_p ε); all R × B runs in one batched pga call, the phases
    given by its ``step_schedule`` hook. Final iterates are clustered per example by
    :func:`adversary_dynamics.attack.count_distinct` (cosine ≥ ``cos_threshold`` is one maximum;
    as ``landscape.distinct_maxima``).

    ``x`` (B, 2), ``y`` (B,), ``eps`` a float or (B,). Returns a :class:`MaximaCount`:
    ``frac_on_sphere`` = share of restarts ending with ‖δ‖ ≥ (1 − sphere_tol)ε;
    ``frac_settled`` = share whose final iterate lies within ``settle_tol`` · ε of the iterate at
    the start of the last phase (converged up to the last phase's oscillation).
    Raises ValueError for ``restarts`` < 1, ``steps`` < ``phases``, ``phases`` < 1,
    ``step_fraction`` ≤ 0 or ``cos_threshold`` outside (0, 1]."""
    restarts = _positive_int("restarts", restarts)
    phases = _positive_int("phases", phases)
    steps = _positive_int("steps", steps, phases)
    step_fraction = _positive("step_fraction", step_fraction)
    if not (0 < cos_threshold <= 1):
        raise ValueError(f"cos_threshold must be in (0, 1], got {cos_threshold!r}")
    e = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(x.shape[:-1]).contiguous()
    if not bool(torch.all(e > 0)):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    R = restarts
    xr = x.expand(R, *x.shape)
    er = e.expand(R, *e.shape)
    cur = random_init(tuple(xr.shape), eps=er, norm="l2", init="uniform_ball", generator=generator,
                      device=x.device, dtype=x.dtype)
    per = steps // phases
    steps_p = [(step_fraction * 4.0 ** -p) * er for p in range(phases)]  # κ_p ε, phase p = t // per
    res = pga(model, xr, y, loss=LOSS, eps=er, norm="l2", steps=per * phases, step_size=steps_p[0],
              gradient="normalized", delta0=cur, record=per, step_schedule=lambda t, state: steps_p[t // per])
    cur = res.delta
    before = res.iterates[phases - 1]  # the iterate at the start of the last phase, t = (phases − 1)·per
    on = res.norm_ratio[-1] >= 1 - sphere_tol
    settled = torch.linalg.vector_norm(cur - before, dim=-1) <= settle_tol * er
    pts = cur.transpose(0, 1)  # (B, R, 2)
    n_all = count_distinct(pts, cos_threshold=cos_threshold).tolist()
    n_on = count_distinct(pts, on.transpose(0, 1), cos_threshold=cos_threshold).tolist()
    # an example whose restarts all ended non-finite found nothing (NaN), not 0 maxima
    dm = [n if n > 0 else math.nan for n in n_all]
    dms = n_on
    fin = res.losses[-1]
    return MaximaCount(distinct_maxima=torch.tensor(dm), distinct_on_sphere=torch.tensor(dms),
                       frac_on_sphere=on.to(x.dtype).mean(0), frac_settled=settled.to(x.dtype).mean(0),
                       final_loss_min=fin.min(0).values, final_loss_max=fin.max(0).values, deltas=cur)


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def fig1_tables(*, scales, ratios, width: int, seed: int, n_points: int, data_seed: int, label_rule: str,
                example: int, grid: int, steps: int, step_size: float, init_seed: int, maxima_ratios,
                maxima_examples: int, restarts: int, maxima_steps: int, maxima_step_fraction: float, maxima_phases: int,
                cos_threshold: float, circle_points: int, dtype: torch.dtype = torch.float64) -> dict[str, list[dict]]:
    """All tables of paper Fig. 1 (rows as dicts; columns in docs and the notebook).

    One network (``width``, weights from seed ``seed``) and one simulated sample (``n_points``,
    ``data_seed``, ``label_rule``); for every scale s the sample is rescaled to mean l2 norm s.

    * ``grid``: for every (scale, ratio) panel, ℓ over the disk ‖δ‖ ≤ ε = ratio·s of example
      ``example`` on a ``grid`` × ``grid`` Cartesian grid (NaN outside); columns scale, ratio, eps,
      i, j (row: δ₂, column: δ₁), delta1, delta2, loss (the paper's z is −loss).
    * ``traj``: the panel's PGD trajectory (absolute η = ``step_size`` for every panel, ``steps``
      steps, uniform start from generator seed ``init_seed``): scale, ratio, eps, step, delta1,
      delta2, norm_ratio (‖δ‖/ε), loss, neg_loss, grad_norm.
    * ``panels``: one row per panel: the example (x1, x2, y), ℓ(0), z range on the grid, start and
      end loss of the trajectory, the relative first step η‖∇ℓ(δ₀)‖/ε, the step the trajectory
      reaches the sphere, the escape step (half of the loss rise, :func:`escape_step`), and the
      maxima counts of the circle (``circle_points`` angles) and of the grid interior.
    * ``rim``: the panels' local maxima of ℓ along the circle ‖δ‖ = ε: scale, ratio, eps, angle,
      delta1, delta2, loss, outward (True where ℓ does not decrease outwards: a maximum over the
      ball, not only along the circle).
    * ``maxima``: for every scale × ``maxima_ratios`` × the first ``maxima_examples`` examples,
      :func:`count_maxima` with ``restarts`` restarts (``maxima_steps`` normalised steps in
      ``maxima_phases`` phases, the first of length ``maxima_step_fraction``·ε) and the circle
      cross-check: all local maxima of ℓ along the
      circle (``circle_maxima``) and those where ℓ does not decrease outwards
      (``circle_maxima_outward``, the local maxima over the ball that lie on the sphere).

    Raises ValueError naming the argument for an empty or non-positive scale/ratio list, an
    ``example`` outside the sample or ``maxima_examples`` > ``n_points``."""
    for name, vals in (("scales", scales), ("ratios", ratios), ("maxima_ratios", maxima_ratios)):
        if len(vals) == 0 or any(not (float(v) > 0 and math.isfinite(float(v))) for v in vals):
            raise ValueError(f"{name} must be a non-empty list of finite numbers > 0, got {list(vals)!r}")
    n_points = _positive_int("n_points", n_points)
    if isinstance(example, bool) or not isinstance(example, int) or not 0 <= example < n_points:
        raise ValueError(f"example must be an index in [0, {n_points}), got {example!r}")
    maxima_examples = _positive_int("maxima_examples", maxima_examples)
    if maxima_examples > n_points:
        raise ValueError(f"maxima_examples={maxima_examples} exceeds n_points={n_points}")
    net = theory_network(width=width, generator=_g(seed), dtype=dtype)
    x_raw, y_all = make_simulated(n=n_points, label_rule=label_rule, generator=_g(data_seed), dtype=dtype)
    panels_in = [(float(s), float(r)) for s in scales for r in ratios]
    xs = {float(s): data.rescale_to_scale(x_raw, scale=float(s), reference=x_raw) for s in scales}

    # ---- the 3 × 3 panels: dense disk, circle, trajectory -----------------------------------
    X = torch.stack([xs[s][example] for s, _ in panels_in])
    Y = y_all[example].expand(len(panels_in)).contiguous()
    E = torch.tensor([data.epsilon(ratio=r, scale=s) for s, r in panels_in], dtype=dtype)
    tr = pgd_trajectory(net, X, Y, eps=E, step_size=step_size, steps=steps, generator=_g(init_seed))
    esc = escape_step(tr.losses)
    grid_rows, traj_rows, panel_rows, rim_rows = [], [], [], []
    for k, (s, r) in enumerate(panels_in):
        eps = float(E[k])
        land = disk_landscape(net, X[k], Y[k], eps=eps, resolution=grid)
        d1, d2 = land.points()
        G = land.loss.shape[0]
        for i in range(G):
            for j in range(G):
                v = float(land.loss[i, j])
                grid_rows.append({"scale": s, "ratio": r, "eps": eps, "i": i, "j": j, "delta1": float(d1[i, j]),
                                  "delta2": float(d2[i, j]), "loss": v})
        nr = torch.linalg.vector_norm(tr.deltas[:, k], dim=-1) / eps
        for t in range(tr.deltas.shape[0]):
            lv = float(tr.losses[t, k])
            traj_rows.append({"scale": s, "ratio": r, "eps": eps, "step": t, "delta1": float(tr.deltas[t, k, 0]),
                              "delta2": float(tr.deltas[t, k, 1]), "norm_ratio": float(nr[t]), "loss": lv,
                              "neg_loss": -lv, "grad_norm": float(tr.grad_norm[t, k])})
        th, on, inside = circle_losses(net, X[k], Y[k], eps=eps, n_angles=circle_points)
        cmax = cyclic_local_maxima(on)
        for a in torch.nonzero(cmax).flatten().tolist():
            rim_rows.append({"scale": s, "ratio": r, "eps": eps, "angle": float(th[a]),
                             "delta1": eps * math.cos(float(th[a])), "delta2": eps * math.sin(float(th[a])),
                             "loss": float(on[a]), "outward": bool(on[a] >= inside[a])})
        on_sphere = torch.nonzero(nr >= 1 - 1e-9)
        fin = land.loss[torch.isfinite(land.loss)]
        panel_rows.append({
            "scale": s, "ratio": r, "eps": eps, "example": example, "x1": float(X[k, 0]), "x2": float(X[k, 1]),
            "x_norm": float(torch.linalg.vector_norm(X[k])), "y": float(Y[k]),
            "loss_at_zero": float(loss_at(net, X[k], Y[k], torch.zeros(2, dtype=dtype))),
            "z_min": -float(fin.max()), "z_max": -float(fin.min()),
            "traj_start_loss": float(tr.losses[0, k]), "traj_end_loss": float(tr.losses[-1, k]),
            "traj_start_norm_ratio": float(nr[0]), "step_size": float(step_size), "steps": int(steps),
            "rel_first_step": float(step_size * tr.grad_norm[0, k] / eps),
            "sphere_step": int(on_sphere[0, 0]) if len(on_sphere) else -1,
            "escape_step": int(esc[k]),
            "circle_maxima": int(cmax.sum()), "circle_maxima_outward": int((cmax & (on >= inside)).sum()),
            "grid_interior_maxima": grid_interior_maxima(land.loss),
        })

    # ---- maxima table: scales × maxima_ratios × examples ----------------------------------
    cells = [(float(s), float(r), b) for s in scales for r in maxima_ratios for b in range(maxima_examples)]
    Xm = torch.stack([xs[s][b] for s, _, b in cells])
    Ym = torch.stack([y_all[b] for _, _, b in cells])
    Em = torch.tensor([data.epsilon(ratio=r, scale=s) for s, r, _ in cells], dtype=dtype)
    mc = count_maxima(net, Xm, Ym, eps=Em, restarts=restarts, steps=maxima_steps,
                      step_fraction=maxima_step_fraction, phases=maxima_phases, cos_threshold=cos_threshold,
                      generator=_g(init_seed + 1))
    maxima_rows = []
    for k, (s, r, b) in enumerate(cells):
        _, on, inside = circle_losses(net, Xm[k], Ym[k], eps=float(Em[k]), n_angles=circle_points)
        cmax = cyclic_local_maxima(on)
        maxima_rows.append({
            "scale": s, "ratio": r, "eps": float(Em[k]), "example": b, "restarts": restarts,
            "distinct_maxima": int(mc.distinct_maxima[k]), "distinct_on_sphere": int(mc.distinct_on_sphere[k]),
            "frac_on_sphere": float(mc.frac_on_sphere[k]), "frac_settled": float(mc.frac_settled[k]),
            "circle_maxima": int(cmax.sum()), "circle_maxima_outward": int((cmax & (on >= inside)).sum()),
            "loss_at_zero": float(loss_at(net, Xm[k], Ym[k], torch.zeros(2, dtype=dtype))),
            "final_loss_min": float(mc.final_loss_min[k]), "final_loss_max": float(mc.final_loss_max[k]),
            "circle_loss_max": float(on.max()),
        })
    return {"grid": grid_rows, "traj": traj_rows, "panels": panel_rows, "rim": rim_rows, "maxima": maxima_rows}
