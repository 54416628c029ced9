"""Small helpers shared by the thin command-line scripts in ``scripts/``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def bool_arg(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def optional_int(text: str) -> int | None:
    return None if text.strip().lower() in ("none", "null", "") else int(text)


def int_list(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def float_list(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def setup_threads(threads: int) -> None:
    """Fix torch's intra-op thread count (bit-identical results need the same count)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def setup_device(name: str):
    """The torch.device for a ``--device`` value (``training.resolve_device``: auto, cpu, cuda),
    with :func:`setup_determinism` applied: what every script that computes on a device calls."""
    from .training import resolve_device

    device = resolve_device(name)
    setup_determinism(device)
    return device


def setup_determinism(device) -> None:
    """Deterministic kernels where the device has a choice, so that the same config and seed give
    bit-identical results on the same machine. CPU: nothing to do (torch's CPU kernels are
    deterministic for a fixed thread count, :func:`setup_threads`). CUDA: cuDNN's deterministic
    convolution algorithms without autotuning (``cudnn.deterministic = True``,
    ``cudnn.benchmark = False``), ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS's condition for
    reproducible GEMMs; set here unless already set, before the first cuBLAS call) and
    ``torch.use_deterministic_algorithms(True, warn_only=True)``: deterministic kernels wherever
    torch has them, a warning (in the job's log) for an op that has none. Call it right after
    resolving the device, before any CUDA work; :func:`runio.provenance` records the flags."""
    import torch

    if torch.device(device).type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def print_config(args: argparse.Namespace) -> dict[str, Any]:
    """Log the full run configuration at the start of a run (to stderr, i.e. the rule's log)."""
    cfg = {k: v for k, v in vars(args).items()}
    print(json.dumps({"run_config": cfg, "pid": os.getpid()}, default=str), file=sys.stderr, flush=True)
    return cfg


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The model and loss arguments shared by scripts/train.py and scripts/probe.py (the config's
    ``model``, ``cnn`` and ``loss`` keys): --architecture, --width, --activation, --bias,
    --train-output-layer, --cnn-channels, --cnn-kernel-size, --cnn-hidden, --loss."""
    from .losses import LOSSES
    from .models import ACTIVATIONS, ARCHITECTURES

    p.add_argument("--architecture", choices=ARCHITECTURES, default="two_layer", help="model.architecture")
    p.add_argument("--width", type=int, default=None, help="hidden width m (two_layer; required there)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    p.add_argument("--bias", type=bool_arg, default=False)
    p.add_argument("--train-output-layer", type=bool_arg, default=False)
    p.add_argument("--cnn-channels", type=int_list, default=[32, 64], help="cnn.channels, comma-separated c1,c2")
    p.add_argument("--cnn-kernel-size", type=int, default=5, help="cnn.kernel_size")
    p.add_argument("--cnn-hidden", type=int, default=1024, help="cnn.hidden")
    p.add_argument("--loss", choices=LOSSES, default="quadratic")


def model_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The ``model``-like mapping :func:`adversary_dynamics.models.build_model` takes, from the
    arguments of :func:`add_model_args`."""
    return {"architecture": args.architecture, "width": args.width, "activation": args.activation,
            "bias": args.bias, "train_output_layer": args.train_output_layer,
            "channels": list(args.cnn_channels), "kernel_size": args.cnn_kernel_size, "hidden": args.cnn_hidden}


def model_from_args(args: argparse.Namespace, *, input_dim: int, n_classes: int, device, generator=None,
                    image_shape: tuple[int, int, int] | None = None):
    """The model a training or probe script's model arguments describe (:func:`add_model_args`),
    built by :func:`adversary_dynamics.models.build_model` on ``device``."""
    from .models import build_model

    return build_model(model_spec(args), input_dim=input_dim, image_shape=image_shape, n_outputs=n_classes,
                       generator=generator, device=device)
