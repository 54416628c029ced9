r"""The theory setting: Gaussian inputs, randomly initialised two-layer networks, quadratic loss.

For each trial j: a network F_j(x) = a_jᵀ σ(W_j x) (K = 1, W_j ~ N(0, 1/d), a_j = ±1/√m, as
at initialisation), an input x_j ~ N(0, I_d) normalised to ‖x_j‖ = 1, and a label
y_j = sign(teacher(x_j)) ∈ {±1}. At input scale s the adversary solves
max_{‖δ‖₂ ≤ ε} ½(F_j(s·x_j + δ) − y_j)² with ε = ratio · s, by PGA with the raw gradient and
η = step_size · ε (``step_rule="relative"``) or η = step_size at every scale (``"absolute"``). We record the iteration at which PGA converged (the best loss stopped rising by more
than a relative ``tol`` for ``patience`` steps; see :mod:`adversary_dynamics.attacks`),
whether the final iterate lies on the sphere ‖δ‖ = ε and whether it passes the
local-maximum certificate. All trials and all scales run as one tensor program (an ensemble
of ``trials`` networks, each with one row per scale).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .attacks import local_max_certificate, pga
from .data import check_step_rule, gaussian_inputs, step_length, teacher_labels
from .models import TwoLayerNet

__all__ = ["theory_run"]


def theory_run(*, d: int, m: int, scales: Sequence[float], ratio: float, trials: int, max_steps: int,
               step_size: float, tol: float, patience: int = 10, step_rule: str = "relative", init: str = "uniform_ball", activation: str = "relu",
               seed: int = 0, device: torch.device | str = "cpu") -> list[dict[str, Any]]:
    """One row per (scale, trial): iterations to converge, on-sphere, certificate, final loss."""
    check_step_rule(step_rule)  # before any work
    g = torch.Generator(device=device).manual_seed(seed)
    net = TwoLayerNet(input_dim=d, width=m, n_outputs=1, activation=activation, ensemble=(trials,), generator=g,
                      device=device)
    x = gaussian_inputs(trials, d, generator=g, device=device)
    y = teacher_labels(x, n_classes=1, generator=g)
    s = torch.tensor(list(scales), dtype=x.dtype, device=device)
    xs = x.unsqueeze(1) * s.view(1, -1, 1)  # (trials, S, d)
    ys = y.unsqueeze(1).expand(trials, len(scales))
    eps = (ratio * s).expand(trials, len(scales))
    eta = step_length(step_size=step_size, eps=eps, rule=step_rule)
    res = pga(net, xs, ys, loss="quadratic", eps=eps, norm="l2", steps=max_steps, step_size=eta,
              gradient="raw", init=init, generator=g, tol=tol, patience=patience)
    cert = local_max_certificate(net, xs, ys, res.delta, loss="quadratic", eps=eps, generator=g)
    rows = []
    conv = res.converged_at.cpu()
    final = res.losses[-1].cpu()
    init_loss = res.losses[0].cpu()
    on, cert_ok = cert.on_sphere.cpu(), cert.is_local_max.cpu()
    ratio_t = res.norm_ratio[-1].cpu()
    for j in range(trials):
        for i, sc in enumerate(scales):
            c = int(conv[j, i])
            rows.append({"d": d, "m": m, "scale": float(sc), "trial": j, "converged": c >= 0,
                         "iterations": c if c >= 0 else max_steps, "on_sphere": bool(on[j, i]),
                         "local_max": bool(cert_ok[j, i]), "norm_ratio": float(ratio_t[j, i]),
                         "initial_loss": float(init_loss[j, i]), "final_loss": float(final[j, i])})
    return rows
