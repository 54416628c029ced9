"""Two-layer networks F(x) = A σ(W x + b), the model class of the paper.

Shapes
------
``W`` is ``(*E, m, d)``, ``A`` is ``(*E, K, m)`` and ``b`` (when present) is ``(*E, m)``,
where ``E`` is an optional *ensemble* shape: several independent networks evaluated as
one tensor program (used by the theory setting to run many random networks at once).
An input ``x`` of shape ``(*batch, d)`` is mapped to ``(*batch, K)``; with an ensemble,
``x`` must broadcast against ``(*E, n, d)``.

Initialisation (the theory's, and the default)
----------------------------------------------
* ``W_ij ~ N(0, 1/d)``;
* ``A_kj = ±1/√m`` with independent random signs, fixed at initialisation unless
  ``train_output_layer=True``;
* ``b = 0`` when ``bias=True`` (no bias by default, as in the theory).

The scalar-output form (``K = 1`` with labels ``±1``) is the theory setting's model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = ("relu", "softplus", "tanh")

__all__ = ["ACTIVATIONS", "TwoLayerNet", "activation_and_derivative"]


def _activation(name: str):
    if name == "relu":
        return torch.relu
    if name == "softplus":
        return nn.functional.softplus
    if name == "tanh":
        return torch.tanh
    raise ValueError(f"unknown activation {name!r}: choose one of {ACTIVATIONS}")


def activation_and_derivative(name: str, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return ``(σ(h), σ'(h))``; for relu the derivative is ``None`` (use threshold_backward)."""
    if name == "relu":
        return torch.relu(h), None
    if name == "softplus":
        return nn.functional.softplus(h), torch.sigmoid(h)
    if name == "tanh":
        t = torch.tanh(h)
        return t, 1.0 - t * t
    raise ValueError(f"unknown activation {name!r}: choose one of {ACTIVATIONS}")


class TwoLayerNet(nn.Module):
    r"""F(x) = A σ(W x + b) with W ∈ R^{m×d}, A ∈ R^{K×m}.

    Parameters are keyword-only. ``generator`` supplies all randomness of the
    initialisation; ``device``/``dtype`` place the parameters.
    """

    def __init__(
        self,
        *,
        input_dim: int,
        width: int,
        n_outputs: int = 10,
        activation: str = "relu",
        bias: bool = False,
        train_output_layer: bool = False,
        ensemble: tuple[int, ...] = (),
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if input_dim < 1 or width < 1 or n_outputs < 1:
            raise ValueError(
                f"input_dim, width and n_outputs must be >= 1, got {input_dim}, {width}, {n_outputs}"
            )
        _activation(activation)  # validates the name
        self.input_dim = int(input_dim)
        self.width = int(width)
        self.n_outputs = int(n_outputs)
        self.activation = activation
        self.ensemble = tuple(int(e) for e in ensemble)
        kw = dict(device=device, dtype=dtype)
        W = torch.randn(*self.ensemble, width, input_dim, generator=generator, **kw) / math.sqrt(input_dim)
        signs = torch.randint(0, 2, (*self.ensemble, n_outputs, width), generator=generator, device=device)
        A = (2.0 * signs.to(dtype) - 1.0) / math.sqrt(width)
        self.W = nn.Parameter(W)
        self.A = nn.Parameter(A, requires_grad=train_output_layer)
        self.b = nn.Parameter(torch.zeros(*self.ensemble, width, **kw)) if bias else None

    @property
    def has_bias(self) -> bool:
        return self.b is not None

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations h = W x + b, shape ``(*batch, m)``."""
        h = torch.matmul(x, self.W.transpose(-1, -2))
        if self.b is not None:
            h = h + self.b.unsqueeze(-2) if self.ensemble else h + self.b
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = _activation(self.activation)(self.hidden(x))
        return torch.matmul(s, self.A.transpose(-1, -2))

    def extra_repr(self) -> str:
        return (
            f"d={self.input_dim}, m={self.width}, K={self.n_outputs}, activation={self.activation}, "
            f"bias={self.has_bias}, train_output_layer={self.A.requires_grad}, ensemble={self.ensemble}"
        )
