"""The compute device a job runs on (``auto``: CUDA when present, else the CPU; ``cpu``; ``cuda``) and
the floating-point precision it computes in (config key ``precision``).

Kept apart from :mod:`adversary_dynamics.learning.training` so that a job that only needs a device (a probe,
the theory sweep, Fig. 1's tables) does not depend on the training code (the workflow reruns a
stage when code it imports changes: :mod:`adversary_dynamics.pipeline.stages`).

**Precision** (config key ``precision``; default ``fp32``; it changes results, so every stage that runs
torch declares it and it enters their keys):

* ``fp32``: IEEE float32 everywhere: ``torch.backends.cuda.matmul.allow_tf32 = False``,
  ``torch.backends.cudnn.allow_tf32 = False`` (PyTorch's default for convolutions is True: before
  this key, GPU convolutions ran in TF32), ``torch.set_float32_matmul_precision("highest")``.
* ``tf32``: TensorFloat-32 (10-bit mantissa) inside CUDA matrix products and convolutions on
  Ampere and later (both flags True, matmul precision ``"high"``); float32 storage. No effect on
  CPU kernels.
* ``bf16``: the flags of ``fp32`` plus :func:`precision_context`, which autocasts the model's matrix
  products and convolutions to bfloat16 (``torch.autocast(device.type, dtype=torch.bfloat16)``);
  what runs outside the context (optimizer updates, projections, reductions) stays float32. NOT YET
  APPLIED by the training and probe code (a process-wide autocast breaks the attack's analytic
  two-layer path, whose ``torch.addmm(..., out=...)`` buffers are float32): the configuration refuses
  ``bf16`` (``config.validate_config``) until the model calls run inside :func:`precision_context`.

:func:`apply_precision` sets the flags (one place: ``cli.setup_device`` calls it for every job that
computes on a device); :func:`precision_record` reads them back from torch, for every run's
provenance (:func:`adversary_dynamics.storage.runio.provenance`)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

#: the values of config key ``precision``
PRECISIONS = ("fp32", "tf32", "bf16")
#: the default of config key ``precision`` (and of the scripts' ``--precision``)
DEFAULT_PRECISION = "fp32"

_APPLIED: str | None = None  # the last value given to apply_precision in this process


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without CUDA is an error.

    Raises ``RuntimeError`` when ``device`` names CUDA on a machine without it (the message says to use
    ``device: auto`` or ``device: cpu``)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available on this machine; "
                           "use device: auto or device: cpu")
    return torch.device(device)


def check_precision(precision: Any) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else ``ValueError`` naming the config key."""
    if precision not in PRECISIONS:
        raise ValueError(f"config key 'precision' has value {precision!r}; allowed: {', '.join(PRECISIONS)}")
    return precision


def apply_precision(precision: str = DEFAULT_PRECISION) -> dict[str, Any]:
    """Set torch's TF32 flags and float32 matmul precision for ``precision`` (see the module's
    docstring), process-wide, and return :func:`precision_record`. Call it before the first CUDA
    work (``cli.setup_device`` does). Raises ``ValueError`` naming ``precision`` for another value."""
    global _APPLIED
    check_precision(precision)
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    _APPLIED = precision
    return precision_record()


def precision_record() -> dict[str, Any]:
    """The effective precision settings, read back from torch: ``precision`` (the value last given to
    :func:`apply_precision` in this process; None: never applied, torch's defaults, where cuDNN
    convolutions use TF32), ``cuda_matmul_allow_tf32``, ``cudnn_allow_tf32``,
    ``float32_matmul_precision`` and ``autocast_dtype`` (``bfloat16`` for bf16, else None)."""
    return {"precision": _APPLIED,
            "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "autocast_dtype": "bfloat16" if _APPLIED == "bf16" else None}


def precision_context(device: torch.device | str, precision: str = DEFAULT_PRECISION):
    """The context the model runs in: ``torch.autocast(device.type, dtype=torch.bfloat16)`` for ``bf16``
    (matrix products and convolutions in bfloat16), a no-op for ``fp32`` and ``tf32`` (their flags are
    process-wide: :func:`apply_precision`). Usage: ``with precision_context(device, precision): train(...)``."""
    check_precision(precision)
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

