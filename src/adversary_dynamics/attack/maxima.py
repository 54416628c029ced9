r"""Counting distinct maxima: the final iterates of PGA from many starts, merged into clusters, one
cluster per maximum found (the paper's Theorem 5.1: a single maximum below a threshold τ_ε).

One counter, :func:`count_distinct`, with the merge rule as an explicit keyword:

* ``cos_threshold=c`` (direction; the landscape probes and paper Fig. 1): greedy clustering in
  row order by cosine similarity — row r opens a new cluster when cos(δ_r, u) < c for every
  centre u so far (centres are the unit vectors of the rows that opened a cluster). Suits maxima
  on the sphere ‖δ‖ = ε at any scale (a cosine is scale-free).
* ``radius=r`` (distance; the theory setting, T4): two points closer than r (‖δ_i − δ_j‖₂ ≤ r)
  are linked and the clusters are the connected components of that graph (order-free).

Rows with a NaN or ±inf entry are always left out (no result is no maximum), as are rows with
``valid`` False.
"""

from __future__ import annotations

import math

import torch

__all__ = ["count_distinct"]


def count_distinct(points: torch.Tensor, valid: torch.Tensor | None = None, *, cos_threshold: float | None = None,
                   radius: torch.Tensor | float | None = None) -> torch.Tensor:
    """Number of distinct maxima among the rows of each group of ``points``.

    ``points`` (..., R, d); ``valid`` optional (..., R) bool, the rows to count (e.g. converged
    restarts); rows with a non-finite entry never count. Exactly one merge rule (module
    docstring): ``cos_threshold`` (a number; greedy cosine clustering in row order) or ``radius``
    (a number or a tensor broadcasting to (...); connected components of the ≤ radius graph).
    Returns (...) long: the number of clusters among the counted rows, 0 where none is left
    (callers that need "nothing found" rather than 0 check for that themselves). Raises
    ValueError when not exactly one rule is given, ``points`` has fewer than 2 dims or ``valid``
    has another shape."""
    if (cos_threshold is None) == (radius is None):
        raise ValueError(f"give exactly one merge rule, cos_threshold or radius; got cos_threshold={cos_threshold!r}, "
                         f"radius={radius!r}")
    if points.dim() < 2:
        raise ValueError(f"points must be (..., R, d), got shape {tuple(points.shape)}")
    ok = torch.isfinite(points).all(-1)
    if valid is not None:
        if not torch.is_tensor(valid) or valid.dtype != torch.bool or valid.shape != points.shape[:-1]:
            raise ValueError(f"valid must be a boolean tensor of shape {tuple(points.shape[:-1])}, got "
                             f"{getattr(valid, 'dtype', type(valid).__name__)} {tuple(getattr(valid, 'shape', ()))}")
        ok = ok & valid.to(points.device)
    R = points.shape[-2]
    if cos_threshold is not None:
        u = points / torch.linalg.vector_norm(points, dim=-1, keepdim=True).clamp_min(1e-30)
        close = torch.matmul(u, u.transpose(-1, -2)) >= cos_threshold  # (..., R, R)
        centre = torch.zeros_like(ok)
        for r in range(R):
            centre[..., r] = ok[..., r] & ~(close[..., r, :] & centre).any(-1)
        return centre.sum(-1)
    dist = torch.cdist(points, points)
    rad = torch.as_tensor(radius, dtype=points.dtype, device=points.device)
    rad = rad.expand(points.shape[:-2]).unsqueeze(-1).unsqueeze(-1)
    adj = (dist <= rad) & ok.unsqueeze(-1) & ok.unsqueeze(-2)
    reach = adj.clone()
    for _ in range(max(1, math.ceil(math.log2(max(R, 2)))) + 1):
        reach = reach | (torch.matmul(reach.to(points.dtype), reach.to(points.dtype)) > 0)
    idx = torch.arange(R, device=points.device)
    first = torch.where(reach, idx, R).min(dim=-1).values  # smallest index of the component
    return ((first == idx) & ok).sum(-1)
