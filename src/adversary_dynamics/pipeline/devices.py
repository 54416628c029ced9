"""The compute device a job runs on: ``auto`` (CUDA when present, else the CPU), ``cpu`` or ``cuda``.

Kept apart from :mod:`adversary_dynamics.learning.training` so that a job that only needs a device (a probe,
the theory sweep, Fig. 1's tables) does not depend on the training code (the workflow reruns a
stage when code it imports changes: :mod:`adversary_dynamics.pipeline.stages`)."""

from __future__ import annotations

import torch


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
