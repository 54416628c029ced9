"""Validation of a workflow configuration before any job starts.

:func:`validate_config` checks a config (a dict, as Snakemake loads it) against the JSON schema
``workflow/schemas/config.schema.yaml``, fills in defaults, then applies the checks a schema
cannot express (probed checkpoints within the training epochs, CUDA available when asked for,
data files present). Every problem is reported at once, each naming the key, the bad value
and what is allowed, in a :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "validate_config", "load_schema"]


class ConfigError(ValueError):
    """A configuration that cannot run; the message lists every problem found."""


def load_schema(path: str | Path) -> dict:
    import yaml

    with open(path) as f:
        return yaml.safe_load(f)


def _key(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def _allowed(err) -> str:
    v, s = err.validator, err.schema
    if v == "enum":
        return "one of " + ", ".join(map(str, s["enum"]))
    if v == "minimum":
        return f"a value >= {s['minimum']}"
    if v == "exclusiveMinimum":
        return f"a value > {s['exclusiveMinimum']}"
    if v == "maximum":
        return f"a value <= {s['maximum']}"
    if v == "type":
        t = s["type"]
        return "a value of type " + (" or ".join(t) if isinstance(t, list) else t)
    if v == "uniqueItems":
        return "a list without duplicates"
    if v == "minItems":
        return f"a list of at least {s['minItems']} item(s)"
    if v == "pattern":
        return f"a string matching {s['pattern']}"
    if v == "required":
        return "this key to be present"
    return err.message


def _fill_defaults(instance: Any, schema: dict) -> None:
    if not isinstance(instance, dict):
        return
    for k, sub in schema.get("properties", {}).items():
        if k not in instance and "default" in sub:
            d = sub["default"]
            instance[k] = dict(d) if isinstance(d, dict) else (list(d) if isinstance(d, list) else d)
        if k in instance and sub.get("type") == "object":
            _fill_defaults(instance[k], sub)


def _schema_errors(config: dict, schema: dict) -> list[str]:
    import jsonschema

    v = jsonschema.Draft202012Validator(schema)
    msgs = []
    for err in sorted(v.iter_errors(config), key=lambda e: list(map(str, e.path))):
        if err.validator == "additionalProperties":
            known = list(err.schema.get("properties", {}))
            extra = [k for k in err.instance if k not in known]
            for k in extra:
                near = difflib.get_close_matches(k, known, n=1)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                where = _key(list(err.path) + [k])
                msgs.append(f"config key '{where}' is unknown (allowed keys here: {', '.join(known)}){hint}")
            continue
        desc = err.schema.get("description", "")
        msgs.append(f"config key '{_key(err.path)}' has value {err.instance!r}; allowed: {_allowed(err)}"
                    + (f" ({desc})" if desc else ""))
    return msgs


def validate_config(config: dict, schema_path: str | Path, *, check_files: bool = True,
                    cuda_available: bool | None = None) -> dict:
    """Validate ``config`` in place (defaults filled in) and return it; raise ConfigError."""
    schema = load_schema(schema_path)
    _fill_defaults(config, schema)
    msgs = _schema_errors(config, schema)
    if not msgs:
        epochs = config["train"]["epochs"]
        late = [k for k in config["probe"]["checkpoints"] if k > epochs]
        if late:
            msgs.append(f"config key 'probe.checkpoints' has value {late!r}; allowed: epochs between 0 and "
                        f"train.epochs = {epochs}")
        if config["device"] == "cuda":
            if cuda_available is None:
                import torch

                cuda_available = torch.cuda.is_available()
            if not cuda_available:
                msgs.append("config key 'device' has value 'cuda' but CUDA is not available on this machine; "
                            "allowed here: auto or cpu")
        if config["threat"]["norm"] == "linf" and config["attack"]["init"] == "uniform_sphere":
            msgs.append("config key 'attack.init' has value 'uniform_sphere', which is defined for the l2 "
                        "norm only; allowed with threat.norm linf: zero or uniform_ball")
        if check_files and config["dataset"]["name"] in ("mnist", "fashion_mnist", "cifar10"):
            from . import datasets

            try:
                datasets.check_dataset_files(config["dataset"]["name"], config["dataset"]["root"],
                                             config["dataset"]["download"])
            except ValueError as exc:
                msgs.append(f"config key 'dataset': {exc}")
    if msgs:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(msgs))
    return config
