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

__all__ = ["LOSSES", "LossLike", "quadratic", "squared_error", "cross_entropy", "get_loss", "loss_and_output_grad",
           "check_labels"]


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


def check_labels(loss: LossLike, y: torch.Tensor, *, n_outputs: int, name: str = "y") -> None:
    """Check that labels ``y`` suit the named ``loss`` for a model with ``n_outputs`` = K outputs,
    once, before any compute that would index with them.

    * K > 1 (class labels: e_y for ``quadratic``/``squared_error``, softmax(F)_y for
      ``cross_entropy``): y must hold integers in [0, K) — an integer dtype, or a floating dtype
      with integral values (0.5 would be truncated silently to class 0 by ``y.long()``).
    * K = 1 (scalar output): ``quadratic``/``squared_error`` take real, finite labels (e.g. ±1);
      ``cross_entropy`` is refused (softmax over one output is 1, so ℓ ≡ 0 and ∇ℓ ≡ 0).
    * A callable loss: nothing is checked (its labels are its own).

    One host synchronisation (a min/max over y). Raises ValueError naming ``name``, the loss,
    K, the offending values and the fix.
    """
    if callable(loss):
        return
    get_loss(loss)  # unknown names raise here
    K = int(n_outputs)
    if y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{name} must hold real or integer labels for loss={loss!r}, got dtype {y.dtype}")
    if y.numel() == 0:
        return
    if K == 1:
        if loss == "cross_entropy":
            raise ValueError(f"loss='cross_entropy' needs a model with at least 2 outputs: with one output "
                             f"softmax(F) = 1, so the loss and its gradient are identically 0; use 'quadratic' or "
                             f"'squared_error' for a scalar-output model (real labels {name}, e.g. ±1)")
        if y.is_floating_point() and not bool(torch.isfinite(y).all()):
            raise ValueError(f"{name} (shape {tuple(y.shape)}) contains NaN or inf labels")
        return
    if y.is_floating_point():
        bad = ~torch.isfinite(y) | (y != torch.round(y))
        if bool(bad.any()):
            v = float(y[bad].flatten()[0])
            raise ValueError(f"{name} must hold integer class labels in [0, {K}) for loss={loss!r} and a model with "
                             f"{K} outputs, got the non-integer value {v!r} (dtype {y.dtype}, shape "
                             f"{tuple(y.shape)}); pass class indices, e.g. y.long()")
    lo, hi = (float(v) for v in torch.aminmax(y.reshape(-1)))
    if lo < 0 or hi >= K:
        raise ValueError(f"{name} must hold class labels in [0, {K}) for loss={loss!r} and a model with {K} outputs, "
                         f"got labels in [{lo:g}, {hi:g}] (shape {tuple(y.shape)}); check that the model's number "
                         f"of outputs matches the dataset's classes")


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
