"""The models: two-layer networks F(x) = A σ(W x + b) (the paper's theory, Sec. 4) and a small
convolutional network :class:`CNN` (the paper's "practical multi-layer CNN", Sec. 5), both behind
one interface, :func:`build_model`. Inputs are flat in both: ``(*batch, d)``. :class:`StackedCNN`
evaluates M CNNs of one architecture as one network (grouped convolutions), for batched probes.

Two-layer networks
==================

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
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = ("relu", "softplus", "tanh")

ARCHITECTURES = ("two_layer", "cnn")

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "TwoLayerNet", "CNN", "StackedCNN", "CNNEnsemble", "build_model",
           "activation_and_derivative"]


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


class CNN(nn.Module):
    r"""The classic MNIST adversarial-training CNN on flat inputs (Sec. 5, "a practical multi-layer CNN").

    ``x`` of shape ``(*batch, C·H·W)`` (any number of leading batch dimensions, channel-major
    flattening as in :class:`~adversary_dynamics.learning.data.Dataset`) is reshaped to ``(N, C, H, W)`` and mapped by

        conv(C → c₁, k×k, padding k//2) → ReLU → maxpool 2×2
        → conv(c₁ → c₂, k×k, padding k//2) → ReLU → maxpool 2×2
        → flatten (c₂·(H/4)·(W/4)) → Linear(hidden) → ReLU → Linear(n_outputs)

    to ``(*batch, n_outputs)``. The default ``channels=(32, 64), kernel_size=5, hidden=1024`` is the
    MNIST architecture of Madry et al.; an 8×8 input (scikit-learn's digits) takes e.g.
    ``channels=(16, 32), hidden=128``.

    Initialisation is PyTorch's default for ``Conv2d`` / ``Linear`` (Kaiming-uniform weights with
    a = √5, i.e. U(−1/√fan_in, 1/√fan_in), and biases U(−1/√fan_in, 1/√fan_in)), drawn from
    ``generator`` (the global generator when None) on the generator's device, then moved to
    ``device``: the same generator seed gives bit-identical weights. Nothing else is random.

    Raises ValueError naming the argument when ``input_shape`` is not three positive integers with
    H and W divisible by 4, ``channels`` is not two positive integers, ``kernel_size`` is not a
    positive odd integer, or ``hidden`` / ``n_outputs`` are < 1.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int],
        channels: tuple[int, int] = (32, 64),
        kernel_size: int = 5,
        hidden: int = 1024,
        n_outputs: int = 10,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
        if shape is None or len(shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in shape):
            raise ValueError(f"input_shape must be (C, H, W), three positive integers; got {input_shape!r}")
        C, H, W = shape
        if H % 4 or W % 4:
            raise ValueError(f"input_shape={shape}: H and W must be divisible by 4 (two 2x2 max-poolings), "
                             f"got H={H}, W={W}")
        ch = tuple(channels) if isinstance(channels, (tuple, list)) else None
        if ch is None or len(ch) != 2 or not all(isinstance(v, int) and v >= 1 for v in ch):
            raise ValueError(f"channels must be two positive integers (c1, c2), got {channels!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        if not isinstance(hidden, int) or hidden < 1 or not isinstance(n_outputs, int) or n_outputs < 1:
            raise ValueError(f"hidden and n_outputs must be integers >= 1, got {hidden!r}, {n_outputs!r}")
        self.input_shape = shape
        self.channels = ch
        self.kernel_size = kernel_size
        self.hidden_units = hidden
        self.n_outputs = n_outputs
        self.input_dim = C * H * W
        init_device = generator.device if generator is not None else torch.device(device)
        kw = dict(device="meta", dtype=dtype)
        self.conv1 = nn.Conv2d(C, ch[0], kernel_size, padding=kernel_size // 2, **kw)
        self.conv2 = nn.Conv2d(ch[0], ch[1], kernel_size, padding=kernel_size // 2, **kw)
        self.fc1 = nn.Linear(ch[1] * (H // 4) * (W // 4), hidden, **kw)
        self.fc2 = nn.Linear(hidden, n_outputs, **kw)
        self.to_empty(device=init_device)
        with torch.no_grad():
            for layer in (self.conv1, self.conv2, self.fc1, self.fc2):  # PyTorch's reset_parameters, seeded
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        self.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F(x), shape (*batch, n_outputs), for x flat (*batch, C*H*W) (the library's convention) or
        image-shaped (*batch, C, H, W) (attack it with ``pga(..., event_dims=3)``)."""
        if x.dim() >= 3 and tuple(x.shape[-3:]) == self.input_shape:
            batch = x.shape[:-3]
        elif x.shape[-1:] == (self.input_dim,):
            batch = x.shape[:-1]
        else:
            raise ValueError(f"x must have shape (*batch, {self.input_dim}) (flat) or (*batch, *{self.input_shape}) "
                             f"(image-shaped; attack it with event_dims=3), got {tuple(x.shape)}")
        h = x.reshape(math.prod(batch), *self.input_shape)  # explicit size: also for an empty batch
        h = nn.functional.max_pool2d(torch.relu(self.conv1(h)), 2)
        h = nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        h = torch.relu(self.fc1(h.flatten(1)))
        return self.fc2(h).reshape(*batch, self.n_outputs)

    def extra_repr(self) -> str:
        return (f"input_shape={self.input_shape}, channels={self.channels}, kernel_size={self.kernel_size}, "
                f"hidden={self.hidden_units}, K={self.n_outputs}")


class StackedCNN(nn.Module):
    r"""M :class:`CNN` of one architecture evaluated as one network (paper Fig. 3: every (ratio,
    checkpoint) model of a scale probed in one :func:`~adversary_dynamics.attack.pga` call).

    Shapes: input ``x`` of shape ``(M, *batch, C·H·W)`` (flat, channel-major, as :class:`CNN`);
    row m goes through model m; output ``(M, *batch, K)``, K = ``n_outputs``. For every m,
    ``StackedCNN(models)(x)[m]`` equals ``models[m](x[m])`` up to floating-point rounding.

    The math. A convolution with ``groups = M`` splits its ``M·c_in`` input channels and ``M·c_out``
    output channels into M consecutive blocks and convolves block m with its own weights only:
    with the models' weights w⁽ᵐ⁾ ∈ R^{c_out×c_in×k×k} and biases b⁽ᵐ⁾ ∈ R^{c_out} concatenated
    along the output channels, w = [w⁽¹⁾; …; w⁽ᴹ⁾] ∈ R^{M·c_out×c_in×k×k}, and the M inputs
    laid side by side along the channels, h = [x⁽¹⁾, …, x⁽ᴹ⁾] ∈ R^{n×M·c_in×H×W},

        conv(h, w, b; groups=M)[:, m·c_out:(m+1)·c_out] = conv(x⁽ᵐ⁾, w⁽ᵐ⁾) + b⁽ᵐ⁾,

    i.e. the M convolutions of one layer in one kernel. ReLU and 2×2 max-pooling act per channel,
    so they commute with the stacking. The dense layers run as batched matrix products over m:
    with V⁽ᵐ⁾ = fc.weight⁽ᵐ⁾ᵀ stacked to (M, in, out) and h of shape (M, n, in),
    ``baddbmm(c, h, V)[m] = h[m] V⁽ᵐ⁾ + c⁽ᵐ⁾``. A PGA step of M small models then costs about
    one kernel sequence instead of M.

    The weights are copied (detached, as buffers, not parameters) at construction: later changes
    to ``models`` do not reach the stack, and no gradient flows to the weights (gradients with
    respect to ``x`` do).

    Raises ValueError for an empty list, an element that is not a :class:`CNN`, models whose
    architectures (input_shape, channels, kernel_size, hidden, n_outputs) differ, and (in
    ``forward``) an input whose first dimension is not M or whose last is not C·H·W.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        models = list(models)
        if not models or not all(isinstance(m, CNN) for m in models):
            raise ValueError(f"models must be a non-empty list of CNN, got {[type(m).__name__ for m in models]}")
        arch = {(m.input_shape, m.channels, m.kernel_size, m.hidden_units, m.n_outputs) for m in models}
        if len(arch) != 1:
            raise ValueError(f"models must share one architecture, got {sorted(arch)}")
        m0 = models[0]
        self.M, self.input_shape, self.k = len(models), m0.input_shape, m0.kernel_size

        def cat(f):
            return torch.cat([f(m).detach() for m in models])

        def stack(f):
            return torch.stack([f(m).detach() for m in models])

        self.register_buffer("w1", cat(lambda m: m.conv1.weight))
        self.register_buffer("b1", cat(lambda m: m.conv1.bias))
        self.register_buffer("w2", cat(lambda m: m.conv2.weight))
        self.register_buffer("b2", cat(lambda m: m.conv2.bias))
        self.register_buffer("f1", stack(lambda m: m.fc1.weight.t()))
        self.register_buffer("c1", stack(lambda m: m.fc1.bias).unsqueeze(1))
        self.register_buffer("f2", stack(lambda m: m.fc2.weight.t()))
        self.register_buffer("c2", stack(lambda m: m.fc2.bias).unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) of shape (M, *batch, K) for x of shape (M, *batch, C·H·W); ValueError otherwise."""
        M, (C, H, W) = self.M, self.input_shape
        if x.dim() < 2 or x.shape[0] != M or x.shape[-1] != C * H * W:
            raise ValueError(f"x must have shape ({M}, *batch, {C * H * W}), got {tuple(x.shape)}")
        batch = x.shape[1:-1]
        h = x.reshape(M, -1, C, H, W)
        n = h.shape[1]
        h = h.transpose(0, 1).reshape(n, M * C, H, W)
        h = nn.functional.max_pool2d(torch.relu(nn.functional.conv2d(h, self.w1, self.b1, padding=self.k // 2,
                                                                     groups=M)), 2)
        h = nn.functional.max_pool2d(torch.relu(nn.functional.conv2d(h, self.w2, self.b2, padding=self.k // 2,
                                                                     groups=M)), 2)
        h = h.reshape(n, M, -1).transpose(0, 1)
        h = torch.relu(torch.baddbmm(self.c1, h, self.f1))
        out = torch.baddbmm(self.c2, h, self.f2)
        return out.reshape(M, *batch, out.shape[-1])


_CNN_PARAMS = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
               "fc2.bias")  # a CNN's state-dict keys, in its order


class CNNEnsemble(nn.Module):
    r"""S :class:`CNN` of one architecture as one *trainable* network, an ensemble in the sense of
    :class:`TwoLayerNet`'s ``ensemble=(S,)``: S independent models evaluated (and trained) as one
    tensor program. Used to train many CNNs at once (paper Fig. 3's models of one scale;
    :func:`~adversary_dynamics.learning.training.adversarial_train_seeds`).

    Parameters (nn.Parameter, member k is row k): every CNN parameter with a leading member
    dimension, ``conv1_weight`` (S, c₁, C, k, k), ``conv1_bias`` (S, c₁), ``conv2_weight``
    (S, c₂, c₁, k, k), ``conv2_bias`` (S, c₂), ``fc1_weight`` (S, hidden, c₂·H/4·W/4), ``fc1_bias``
    (S, hidden), ``fc2_weight`` (S, K, hidden), ``fc2_bias`` (S, K). They are disjoint, so the
    gradient of Σ_k L_k(θ_k) with respect to θ_k is member k's own gradient ∂L_k/∂θ_k.

    Shapes, as an ensemble TwoLayerNet: ``x`` (*pre, S, n, C·H·W) (member k sees x[..., k, :, :]),
    or anything broadcasting to it ((n, C·H·W): every member sees the same inputs); output
    (*pre, S, n, K). ``CNNEnsemble(models)(x)[..., k, :, :]`` equals ``models[k](x[..., k, :, :])``
    up to floating-point rounding.

    The math is :class:`StackedCNN`'s: each convolution is one grouped convolution with
    ``groups = S`` (member k's channels are block k), ReLU and max-pooling act per channel, and
    the dense layers are batched matrix products over k, ``baddbmm(c, h, Vᵀ)[k] = h[k] V⁽ᵏ⁾ᵀ + c⁽ᵏ⁾``.

    ``models``: a non-empty list of CNNs of one architecture, dtype and device; their weights are
    copied (later changes to them do not reach the ensemble). Raises ValueError otherwise, and
    (in ``forward``) for inputs whose member dimension is neither S nor 1 or whose last is not C·H·W.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        models = list(models)
        if not models or not all(isinstance(m, CNN) for m in models):
            raise ValueError(f"models must be a non-empty list of CNN, got {[type(m).__name__ for m in models]}")
        arch = {(m.input_shape, m.channels, m.kernel_size, m.hidden_units, m.n_outputs, m.conv1.weight.dtype,
                 m.conv1.weight.device) for m in models}
        if len(arch) != 1:
            raise ValueError(f"models must share one architecture, dtype and device, got {sorted(map(str, arch))}")
        m0 = models[0]
        self.S = len(models)
        self.ensemble = (self.S,)
        self.input_shape, self.channels, self.kernel_size = m0.input_shape, m0.channels, m0.kernel_size
        self.hidden_units, self.n_outputs, self.input_dim = m0.hidden_units, m0.n_outputs, m0.input_dim
        for key in _CNN_PARAMS:
            stacked = torch.stack([m.state_dict()[key].detach() for m in models]).clone()
            self.register_parameter(key.replace(".", "_"), nn.Parameter(stacked))

    def member_state_dict(self, k: int) -> "dict[str, torch.Tensor]":
        """Member k's weights as a :class:`CNN` state dict (its keys, in its order; copies): it
        loads into ``CNN(...)`` of the same architecture."""
        from collections import OrderedDict

        return OrderedDict((key, getattr(self, key.replace(".", "_")).detach()[k].clone()) for key in _CNN_PARAMS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F(x) of shape (*pre, S, n, K) for x (*pre, S, n, C·H·W) (or broadcasting to it)."""
        S, (C, H, W) = self.S, self.input_shape
        if x.dim() < 2 or x.shape[-1] != C * H * W or (x.dim() >= 3 and x.shape[-3] not in (1, S)):
            raise ValueError(f"x must have shape (*pre, {S}, n, {C * H * W}) or broadcast to it, "
                             f"got {tuple(x.shape)}")
        if x.dim() == 2:
            x = x.unsqueeze(0)
        pre, n = x.shape[:-3], x.shape[-2]
        P = math.prod(pre)
        x = x.expand(*pre, S, n, C * H * W)
        N = P * n
        # (*pre, S, n, d) -> (S, N, d) -> (N, S·C, H, W): member k's channels are block k
        h = x.reshape(P, S, n, C * H * W).transpose(0, 1).reshape(S, N, C, H, W).transpose(0, 1)
        h = h.reshape(N, S * C, H, W)
        pad = self.kernel_size // 2
        w1, w2 = self.conv1_weight, self.conv2_weight
        h = nn.functional.max_pool2d(torch.relu(nn.functional.conv2d(
            h, w1.reshape(S * w1.shape[1], *w1.shape[2:]), self.conv1_bias.reshape(-1), padding=pad, groups=S)), 2)
        h = nn.functional.max_pool2d(torch.relu(nn.functional.conv2d(
            h, w2.reshape(S * w2.shape[1], *w2.shape[2:]), self.conv2_bias.reshape(-1), padding=pad, groups=S)), 2)
        h = h.reshape(N, S, -1).transpose(0, 1)  # (S, N, c2·H/4·W/4), each member's flattening as CNN's
        h = torch.relu(torch.baddbmm(self.fc1_bias.unsqueeze(1), h, self.fc1_weight.transpose(1, 2)))
        out = torch.baddbmm(self.fc2_bias.unsqueeze(1), h, self.fc2_weight.transpose(1, 2))  # (S, N, K)
        out = out.reshape(S, P, n, self.n_outputs).transpose(0, 1)
        return out.reshape(*pre, S, n, self.n_outputs)

    def extra_repr(self) -> str:
        return (f"S={self.S}, input_shape={self.input_shape}, channels={self.channels}, "
                f"kernel_size={self.kernel_size}, hidden={self.hidden_units}, K={self.n_outputs}")


_TWO_LAYER_KEYS = ("width", "activation", "bias", "train_output_layer")
_CNN_KEYS = ("channels", "kernel_size", "hidden")


def build_model(
    spec,
    *,
    input_dim: int,
    image_shape: tuple[int, int, int] | None,
    n_outputs: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """The one model interface: the network a config's ``model``-like mapping ``spec`` describes.

    ``spec["architecture"]`` (default ``"two_layer"``) chooses the family:

    * ``two_layer``: :class:`TwoLayerNet` with ``width`` (required), ``activation`` (relu),
      ``bias`` (False), ``train_output_layer`` (False); input ``(*batch, input_dim)``.
    * ``cnn``: :class:`CNN` with ``channels`` ((32, 64)), ``kernel_size`` (5), ``hidden`` (1024),
      taken from ``spec`` itself or from a nested mapping ``spec["cnn"]`` (the config's top-level
      ``cnn:`` block); input ``(*batch, C·H·W)`` with ``image_shape = (C, H, W)``.

    Keys of the other family are ignored. ``generator`` draws the initialisation on its own device
    (a CPU generator gives the same weights on every device); the parameters are then moved to
    ``device``; float32. Returns the model with ``n_outputs`` outputs.

    Raises ValueError naming the key (``model.architecture``, ``model.width``, ...) for an unknown
    architecture, a missing width, ``cnn`` with ``image_shape`` None (the dataset has no image
    shape, e.g. the gaussian or simulated data), or ``input_dim`` ≠ C·H·W; the constructors'
    errors for invalid values.
    """
    if not hasattr(spec, "get"):
        raise ValueError(f"spec must be a mapping (the config's model block), got {type(spec).__name__}")
    arch = spec.get("architecture", "two_layer")
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.architecture={arch!r} is not allowed: choose one of {ARCHITECTURES}")
    if arch == "two_layer":
        if spec.get("width") is None:
            raise ValueError("model.width is required for model.architecture='two_layer' (hidden width m)")
        return TwoLayerNet(input_dim=int(input_dim), width=int(spec["width"]), n_outputs=int(n_outputs),
                           activation=spec.get("activation", "relu"), bias=bool(spec.get("bias", False)),
                           train_output_layer=bool(spec.get("train_output_layer", False)), generator=generator,
                           device=generator.device if generator is not None else device).to(device)
    if image_shape is None:
        raise ValueError("model.architecture='cnn' needs image-shaped inputs, but the dataset has no image shape "
                         "(image_shape=None, e.g. the gaussian or simulated data): use model.architecture: "
                         "two_layer or an image dataset")
    image_shape = tuple(int(v) for v in image_shape)
    if int(input_dim) != math.prod(image_shape):
        raise ValueError(f"input_dim={input_dim} does not match image_shape={image_shape} "
                         f"(C*H*W = {math.prod(image_shape)})")
    nested = spec.get("cnn") if hasattr(spec.get("cnn"), "get") else {}
    cfg = {k: spec[k] for k in _CNN_KEYS if spec.get(k) is not None}
    cfg = {**{k: nested[k] for k in _CNN_KEYS if nested.get(k) is not None}, **cfg}
    try:
        return CNN(input_shape=image_shape, channels=tuple(int(c) for c in cfg.get("channels", (32, 64))),
                   kernel_size=int(cfg.get("kernel_size", 5)), hidden=int(cfg.get("hidden", 1024)),
                   n_outputs=int(n_outputs), generator=generator, device=device)
    except ValueError as e:
        raise ValueError(f"cnn: {e}") from e
