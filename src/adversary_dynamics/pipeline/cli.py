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


def setup_device(name: str, precision: str = "fp32"):
    """The torch.device for a ``--device`` value (``devices.resolve_device``: auto, cpu, cuda),
    with :func:`setup_determinism` and the ``--precision`` (config key ``precision``: fp32, tf32,
    bf16; ``devices.apply_precision``) applied: what every script that computes on a device calls.
    bf16 also needs the model calls inside ``devices.precision_context(device, precision)``, which
    the training and probe code do not do yet: it is refused here (ValueError naming the key), as the
    configuration refuses it, so that no run records a bfloat16 autocast it did not apply."""
    from adversary_dynamics.pipeline.devices import apply_precision, resolve_device

    if precision == "bf16":
        raise ValueError("precision 'bf16' (config key 'precision', script option --precision): the training and "
                         "probe code do not run their models under bfloat16 autocast yet; use fp32 or tf32")

    device = resolve_device(name)
    setup_determinism(device)
    apply_precision(precision)
    return device


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    """``--precision fp32|tf32|bf16`` (config key ``precision``; default fp32)."""
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16"), default="fp32",
                   help="precision: fp32 (IEEE float32 everywhere) | tf32 (TF32 CUDA matmuls and convolutions) | "
                        "bf16 (bfloat16 autocast: refused until the model code applies it)")


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
    cfg = {k: v for k, v in vars(args).items() if k != "stage"}
    print(json.dumps({"run_config": cfg, "stage": getattr(args, "stage", None), "pid": os.getpid()}, default=str),
          file=sys.stderr, flush=True)
    return cfg


class _LazyChoices:
    """The choices of a model argument, read from the model code (which imports torch) only when an
    argument is checked (its metavar is given, so argparse does not list them when the parser is built):
    a parser that also has sub-commands without a model
    (``scripts/escape.py tables``) then starts without torch."""

    def __init__(self, name: str):
        self.name = name

    def _values(self) -> tuple:
        from adversary_dynamics.learning.losses import LOSSES
        from adversary_dynamics.learning.models import ACTIVATIONS, ARCHITECTURES

        return tuple({"LOSSES": LOSSES, "ACTIVATIONS": ACTIVATIONS, "ARCHITECTURES": ARCHITECTURES}[self.name])

    def __contains__(self, value) -> bool:
        return value in self._values()

    def __iter__(self):
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The model and loss arguments shared by scripts/train.py and scripts/probe.py (the config's
    ``model``, ``cnn`` and ``loss`` keys): --architecture, --width, --activation, --bias,
    --train-output-layer, --cnn-channels, --cnn-kernel-size, --cnn-hidden, --loss."""
    ARCHITECTURES, ACTIVATIONS, LOSSES = (_LazyChoices(n) for n in ("ARCHITECTURES", "ACTIVATIONS", "LOSSES"))
    p.add_argument("--architecture", choices=ARCHITECTURES, default="two_layer", metavar="ARCHITECTURE",
                   help="model.architecture (models.ARCHITECTURES: two_layer, cnn)")
    p.add_argument("--width", type=int, default=None, help="hidden width m (two_layer; required there)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu", metavar="ACTIVATION",
                   help="model.activation (models.ACTIVATIONS)")
    p.add_argument("--bias", type=bool_arg, default=False)
    p.add_argument("--train-output-layer", type=bool_arg, default=False)
    p.add_argument("--cnn-channels", type=int_list, default=[32, 64], help="cnn.channels, comma-separated c1,c2")
    p.add_argument("--cnn-kernel-size", type=int, default=5, help="cnn.kernel_size")
    p.add_argument("--cnn-hidden", type=int, default=1024, help="cnn.hidden")
    p.add_argument("--loss", choices=LOSSES, default="quadratic", metavar="LOSS", help="loss (losses.LOSSES)")


def model_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The ``model``-like mapping :func:`adversary_dynamics.learning.models.build_model` takes, from the
    arguments of :func:`add_model_args`."""
    return {"architecture": args.architecture, "width": args.width, "activation": args.activation,
            "bias": args.bias, "train_output_layer": args.train_output_layer,
            "channels": list(args.cnn_channels), "kernel_size": args.cnn_kernel_size, "hidden": args.cnn_hidden}


def model_from_args(args: argparse.Namespace, *, input_dim: int, n_classes: int, device, generator=None,
                    image_shape: tuple[int, int, int] | None = None):
    """The model a training or probe script's model arguments describe (:func:`add_model_args`),
    built by :func:`adversary_dynamics.learning.models.build_model` on ``device``."""
    from adversary_dynamics.learning.models import build_model

    return build_model(model_spec(args), input_dim=input_dim, image_shape=image_shape, n_outputs=n_classes,
                       generator=generator, device=device)


# ---- a stage's parameters as one typed document ------------------------------------------------
def _load_params(text: str) -> dict[str, Any]:
    """The mapping of ``--params``: JSON text (``{...}``) or the path of a JSON file."""
    from pathlib import Path

    raw = text if text.lstrip().startswith("{") else Path(text).read_text(encoding="utf-8")
    doc = json.loads(raw)
    if not isinstance(doc, dict):
        raise SystemExit(f"--params: expected a JSON mapping (argument name -> value), got {type(doc).__name__}")
    return doc


def _tokens(action: argparse.Action, value: Any) -> list[str]:
    """The command-line words of ``value`` for ``action`` (lists comma-joined unless the option takes
    several words; booleans true/false; None as none)."""
    def word(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "none"
        if isinstance(v, float):
            return repr(v)
        return str(v)

    if isinstance(value, (list, tuple)):
        if action.nargs in ("+", "*") or isinstance(action.nargs, int):
            return [word(v) for v in value]
        return [",".join(word(v) for v in value)]
    return [word(value)]


def parse_args(parser: argparse.ArgumentParser, argv=None, *, command: str | None = None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, where ``--params P`` (a JSON file, or JSON text) supplies arguments.

    ``P`` maps argument names (argparse destinations, e.g. ``attack_step_size``) to typed values; the
    workflow writes it from the stage's declared configuration keys (:mod:`adversary_dynamics.pipeline.stages`),
    and every run of a configuration records it (``results/<folder>/params/<stage>.json``), so that a
    job can be rerun by hand:
    ``python scripts/train.py --params results/default/params/train.json --out-root ... --scale 4``.
    Each entry is checked by argparse as if typed on the command line (types, choices, required
    arguments); arguments given on the command line as well win over the file. The entry ``_stage``
    (the stage's record: name, key, what it read) is not an argument: it comes back as
    ``args.stage`` (None without ``--params``). ``command``: the sub-command of a parser with
    sub-parsers, taken from ``P``'s ``figure``/``command`` entry when not given. An unknown name stops
    with an error naming it and the known ones."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--params" not in argv and not any(a.startswith("--params=") for a in argv):
        args = parser.parse_args(argv)
        args.stage = None
        return args
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--params", required=True)
    known, rest = pre.parse_known_args(argv)
    doc = _load_params(known.params)
    stage = doc.pop("_stage", None)
    target = parser
    words: list[str] = []
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        sub = subs[0]
        cmd = command or (rest[0] if rest and rest[0] in sub.choices else None) or doc.pop(sub.dest, None)
        if cmd is None or cmd not in sub.choices:
            raise SystemExit(f"--params: name the sub-command ({', '.join(sub.choices)})")
        doc.pop(sub.dest, None)
        if rest and rest[0] == cmd:
            rest = rest[1:]
        target, words = sub.choices[cmd], [cmd]
    by_dest = {a.dest: a for a in target._actions if a.option_strings}
    unknown = sorted(set(doc) - set(by_dest))
    if unknown:
        raise SystemExit(f"--params: unknown argument(s) {unknown}; known: {sorted(by_dest)}")
    for dest, value in doc.items():
        action = by_dest[dest]
        words += [action.option_strings[-1], *_tokens(action, value)]
    args = parser.parse_args(words + rest)
    args.stage = stage
    return args


def run_record(args: argparse.Namespace) -> dict[str, Any]:
    """What a run's provenance records as its configuration: the stage record (``--params``' ``_stage``)
    with the arguments, or the arguments alone when the script was called without ``--params``."""
    plain = {k: (str(v) if not isinstance(v, (int, float, str, bool, list, dict, type(None))) else v)
             for k, v in vars(args).items() if k != "stage"}
    return {**args.stage, "arguments": plain} if getattr(args, "stage", None) else plain
