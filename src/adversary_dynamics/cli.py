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


def print_config(args: argparse.Namespace) -> dict[str, Any]:
    """Log the full run configuration at the start of a run (to stderr, i.e. the rule's log)."""
    cfg = {k: v for k, v in vars(args).items()}
    print(json.dumps({"run_config": cfg, "pid": os.getpid()}, default=str), file=sys.stderr, flush=True)
    return cfg


def model_from_args(args: argparse.Namespace, *, input_dim: int, n_classes: int, device, generator=None):
    """The TwoLayerNet a training or probe script's model arguments describe (--width,
    --activation, --bias, --train-output-layer), on ``device``."""
    from .models import TwoLayerNet

    return TwoLayerNet(input_dim=input_dim, width=args.width, n_outputs=n_classes, activation=args.activation,
                       bias=args.bias, train_output_layer=args.train_output_layer, generator=generator).to(device)
