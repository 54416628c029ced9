"""Per-example losses ℓ(F, y) and their gradients with respect to the output F.

* ``quadratic`` (the extension figures' loss; the paper's up to the factor ½): ℓ = ½‖F − e_y‖² for K > 1 outputs and integer labels y;
  ℓ = ½(F − y)² for the scalar-output form (K = 1, real labels, e.g. ±1).
* ``squared_error``: ℓ = ‖F − e_y‖² (no ½), or (F − y)² for one output: the paper's
  L = −(y − f)² sign-flipped (Sec. 3), so that the attacker maximises ℓ.
* ``cross_entropy``: ℓ = −log softmax(F)_y.
* any callable ``loss(output, y)`` returning one loss per example (shape ``output.shape[:-1]``).

Every loss returns a tensor of shape ``output.shape[:-1]`` (one value per example).
"""

from __future__ import annotations

from typing import Callable, Union

import torch

LossLike = Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
LOSSES = ("quadratic", "squared_error", "cross_entropy")

__all__ = ["LOSSES", "LossLike", "quadratic", "squared_error", "cross_entropy", "get_loss", "loss_and_output_grad"]


def _target(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if output.shape[-1] == 1:
        return y.to(output.dtype).unsqueeze(-1)
    onehot = torch.zeros_like(output)
    return onehot.scatter_(-1, y.long().unsqueeze(-1).expand(*output.shape[:-1], 1), 1.0)


def quadratic(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ℓ = ½‖F − e_y‖² (or ½(F − y)² for one output), per example."""
    r = output - _target(output, y)
    return 0.5 * (r * r).sum(-1)


def squared_error(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ℓ = ‖F − e_y‖² (or (F − y)² for one output), per example: the paper's L = −(y − f)²
    sign-flipped (Sec. 3); twice :func:`quadratic`."""
    r = output - _target(output, y)
    return (r * r).sum(-1)


def cross_entropy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ℓ = −log softmax(F)_y, per example."""
    logp = torch.log_softmax(output, dim=-1)
    return -logp.gather(-1, y.long().unsqueeze(-1).expand(*output.shape[:-1], 1)).squeeze(-1)


def get_loss(loss: LossLike) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(loss):
        return loss
    if loss == "quadratic":
        return quadratic
    if loss == "squared_error":
        return squared_error
    if loss == "cross_entropy":
        return cross_entropy
    raise ValueError(f"unknown loss {loss!r}: choose one of {LOSSES} or pass a callable")


def loss_and_output_grad(loss: LossLike, output: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(ℓ, ∂ℓ/∂F)`` per example, in closed form for the named losses.

    quadratic: ∂ℓ/∂F = F − e_y;  squared_error: ∂ℓ/∂F = 2(F − e_y);  cross-entropy: ∂ℓ/∂F = softmax(F) − e_y;
    a callable: autograd through ``loss`` alone (the network is differentiated by the caller).
    """
    if loss == "quadratic" or loss is quadratic:
        r = output - _target(output, y)
        return 0.5 * (r * r).sum(-1), r
    if loss == "squared_error" or loss is squared_error:
        r = output - _target(output, y)
        return (r * r).sum(-1), 2.0 * r
    if loss == "cross_entropy" or loss is cross_entropy:
        logp = torch.log_softmax(output, dim=-1)
        idx = y.long().unsqueeze(-1).expand(*output.shape[:-1], 1)
        ell = -logp.gather(-1, idx).squeeze(-1)
        g = logp.exp().scatter_add_(-1, idx, torch.full_like(logp[..., :1], -1.0))
        return ell, g
    fn = get_loss(loss)
    with torch.enable_grad():
        out = output.detach().requires_grad_(True)
        ell = fn(out, y)
        (g,) = torch.autograd.grad(ell.sum(), out)
    return ell.detach(), g
