"""Validation of a workflow configuration before any job starts.

:func:`validate_config` checks a config (a dict, as Snakemake loads it) against the JSON schema
``workflow/schemas/config.schema.yaml``, fills in defaults, then applies the checks a schema
cannot express (probed checkpoints within the training epochs, CUDA available when asked for,
data files present, finite numbers, scales that survive their text form in paths). Every
problem is reported at once, each naming the key, the bad value and what is allowed, in a
:class:`ConfigError`.

Values given on Snakemake's command line arrive as text inside lists and mappings
(``--config threat='{ratio: 0.3}'`` gives ``{'ratio': '0.3'}``, ``scales=[0.5,1]`` gives
``['0.5', '1']``): text is converted, as YAML reads it, wherever the schema expects a number,
an integer, a boolean or null, before validation.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "DuplicateKeyError", "check_config_files", "validate_config", "load_schema", "NON_RESULT_KEYS", "result_config", "config_digest",
           "folder_name", "merge_config"]


class ConfigError(ValueError):
    """A configuration that cannot run; the message lists every problem found."""


class DuplicateKeyError(ConfigError):
    """A YAML file with a key written twice in one mapping (YAML's last-key-wins would silently
    drop the first value). ``duplicates`` holds ``(dotted key, first line, second line)``."""

    def __init__(self, path: str | Path, duplicates: list[tuple[str, int, int]]):
        self.path = str(path)
        self.duplicates = sorted(duplicates, key=lambda d: (d[2], d[1]))
        lines = [f"key '{key}' appears twice ({f'lines {a} and {b}' if a != b else f'both on line {a}'})"
                 for key, a, b in self.duplicates]
        #: the message without the leading "config file <path>: "
        self.detail = ("; ".join(lines) + ". YAML would silently keep only the last one and drop the first; "
                       "merge the two into one (or delete the one you do not mean) and run again")
        super().__init__(f"config file {self.path}: {self.detail}")


def _strict_loader():
    """A safe YAML loader class (libyaml's where installed) that refuses duplicate keys at any depth.

    Its ``construct_mapping`` records every key seen twice in one mapping (``<<`` merge keys and the
    keys they bring in are YAML's own overriding and are allowed); after the document is built,
    :class:`DuplicateKeyError` lists them all with their dotted key paths and line numbers."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if base in _LOADERS:
        return _LOADERS[base]

    class StrictSafeLoader(base):
        def construct_document(self, node):
            self._dup_paths, self._duplicates = {}, []
            self._assign_paths(node, [])
            data = super().construct_document(node)
            if self._duplicates:
                raise DuplicateKeyError(getattr(self, "_dup_file", "<text>"), self._duplicates)
            return data

        def _assign_paths(self, node, path):
            if id(node) in self._dup_paths:  # an alias: already seen
                return
            if isinstance(node, yaml.MappingNode):
                self._dup_paths[id(node)] = path
                for k, v in node.value:
                    key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                    self._assign_paths(v, path + [key])
            elif isinstance(node, yaml.SequenceNode):
                self._dup_paths[id(node)] = path
                for i, v in enumerate(node.value):
                    self._assign_paths(v, path + [i])

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                        continue
                    key = self.construct_object(key_node)
                    try:
                        first = seen.setdefault(key, key_node)
                    except TypeError:  # unhashable: the base class reports it
                        continue
                    if first is not key_node:
                        path = self._dup_paths.get(id(node), [])
                        self._duplicates.append((_key(list(path) + [key_node.value]),
                                                 first.start_mark.line + 1, key_node.start_mark.line + 1))
            return super().construct_mapping(node, deep=deep)

    _LOADERS[base] = StrictSafeLoader
    return StrictSafeLoader


_LOADERS: dict = {}


def _load_yaml(path: str | Path) -> Any:
    """A YAML (or JSON) file's content, read with a safe loader (libyaml's where installed: the
    workflow reads several files every time it starts) that refuses a key written twice in one
    mapping, at any depth: raises :class:`DuplicateKeyError` (a ConfigError) naming the file, the
    dotted key and both line numbers. Syntax errors are yaml.YAMLError, as from yaml.safe_load."""
    with open(path, encoding="utf-8") as f:
        return load_yaml_text(f.read(), str(path))


def load_yaml_text(text: str, where: str = "<text>") -> Any:
    """YAML text parsed as :func:`_load_yaml` parses a file (``where`` names it in errors)."""
    loader = _strict_loader()(text)
    loader._dup_file = where
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_config_files(paths) -> None:
    """Re-read each configuration file Snakemake was given (``workflow.configfiles``: every
    ``--configfile``, then the Snakefile's ``configfile:``) with the strict loader of
    :func:`_load_yaml`, before any job: Snakemake's own loader keeps the last of two equal keys
    without a word. Raises :class:`DuplicateKeyError` naming the file (relative to the current
    folder where it lies below it), the dotted key and both lines. Files that are missing or that
    libyaml cannot parse are left to Snakemake, which has read them already."""
    import os

    import yaml

    for p in paths:
        shown = str(p)
        try:
            rel = os.path.relpath(p)
            shown = rel if not rel.startswith("..") else shown
        except ValueError:
            pass
        try:
            with open(p, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        try:
            load_yaml_text(text, shown)
        except yaml.YAMLError:
            continue


def load_schema(path: str | Path) -> dict:
    """The JSON schema (a YAML file) as a dict."""
    return _load_yaml(path)


def _key(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


_TYPE_NAMES = {"array": "a list", "object": "a mapping (key: value)", "number": "a number",
               "integer": "an integer", "boolean": "true or false", "string": "a string", "null": "null"}


# words users type for an allowed value (checked before spelling-based suggestions)
_ALIASES = {"gpu": "cuda", "cuda:0": "cuda", "nvidia": "cuda", "inf": "linf", "l_inf": "linf", "linfty": "linf",
            "l_2": "l2", "euclidean": "l2", "fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist",
            "fmnist": "fashion_mnist", "cifar": "cifar10", "cifar-10": "cifar10", "ce": "cross_entropy",
            "crossentropy": "cross_entropy", "xent": "cross_entropy", "mse": "squared_error",
            "two-layer": "two_layer", "mlp": "two_layer", "conv": "cnn", "yes": "true", "no": "false"}


def _allowed(err) -> str:
    v, s = err.validator, err.schema
    if v == "enum":
        names = [str(e).lower() if isinstance(e, bool) else str(e) for e in s["enum"]]  # as YAML writes them
        allowed = "one of " + ", ".join(names)
        alias = _ALIASES.get(str(err.instance).strip().lower())
        near = [alias] if alias in names else difflib.get_close_matches(str(err.instance).lower(), names, n=1)
        return allowed + (f"; did you mean '{near[0]}'?" if near else "")
    if v == "minimum":
        return f"a value >= {s['minimum']}"
    if v == "exclusiveMinimum":
        return f"a value > {s['exclusiveMinimum']}"
    if v == "maximum":
        return f"a value <= {s['maximum']}"
    if v == "type":
        t = s["type"] if isinstance(s["type"], list) else [s["type"]]
        return " or ".join(_TYPE_NAMES.get(x, x) for x in t)
    if v == "uniqueItems":
        seen, dup = [], []
        for x in err.instance:
            (dup if x in seen and x not in dup else seen).append(x)
        return f"a list without duplicates ({', '.join(map(repr, dup))} repeated)"
    if v == "minItems":
        return f"a list of at least {s['minItems']} item(s)"
    if v == "pattern":
        return f"a string matching {s['pattern']}"
    if v == "maxLength":
        return f"a string of at most {s['maxLength']} characters (this one has {len(err.instance)})"
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


def _types(schema: dict) -> list[str]:
    t = schema.get("type", [])
    return t if isinstance(t, list) else [t]


def _fits(value: Any, types: list[str]) -> bool:
    for t in types:
        if t == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t == "boolean" and isinstance(value, bool) or t == "null" and value is None:
            return True
        if t == "string" and isinstance(value, str) or t == "array" and isinstance(value, list):
            return True
        if t == "object" and isinstance(value, dict):
            return True
    return False


def _coerce(value: Any, schema: dict) -> Any:
    """``value`` with command-line text converted to the types ``schema`` expects (see the
    module docstring); anything that does not convert cleanly is left for the schema to report."""
    import yaml

    types = _types(schema)
    enum = schema.get("enum")
    if isinstance(value, str) and (not _fits(value, types) or enum is not None and value not in enum) or (
            isinstance(value, str) and "null" in types and value.strip() in ("", "~", "null", "Null", "NULL")):
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, str) and "number" in types:
            try:  # YAML 1.1 reads 1e-3 as text; Python reads it as the number meant
                parsed = float(parsed)
            except ValueError:
                pass
        if _fits(parsed, types) and not isinstance(parsed, str):
            value = parsed
    elif isinstance(value, int) and not isinstance(value, bool) and types == ["string"]:
        value = str(value)  # --config name=2024
    if isinstance(value, float) and "integer" in types and "number" not in types and value.is_integer():
        value = int(value)  # the schema accepts 3.0 as an integer; the scripts' int() would not
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        value[:] = [_coerce(x, schema["items"]) for x in value]
    if isinstance(value, dict):
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                value[k] = _coerce(value[k], sub)
    return value


def _non_finite(value: Any, path: list) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"config key '{_key(path)}' has value {value!r}; allowed: a finite number"]
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in _non_finite(v, path + [k])]
    if isinstance(value, list):
        return [m for i, v in enumerate(value) for m in _non_finite(v, path + [i])]
    return []


def _path_text(x: float) -> str:
    """How the workflow writes a scale in paths and passes it to the scripts (common.smk's fmt)."""
    return f"{float(x):g}"


def _key_paths(schema: dict, prefix: tuple = ()) -> list[tuple]:
    """Every key path the schema knows, sections and their keys (('train',), ('train', 'epochs'), ...)."""
    out = []
    for k, sub in schema.get("properties", {}).items():
        out.append(prefix + (k,))
        if isinstance(sub, dict) and sub.get("type") == "object":
            out += _key_paths(sub, prefix + (k,))
    return out


def _unknown_key_hint(key: str, where: tuple, value: Any, known: list[str], root: dict) -> str:
    """'; did you mean ...?' for an unknown key: the same key at another level first (a flat
    ``--config epochs=5`` means ``train.epochs``), then a spelling near a key of the same section,
    then a spelling near a key elsewhere."""
    paths = [p for p in _key_paths(root) if p[:-1] != where]
    same = [p for p in paths if p[-1] == key]
    if same:
        shown = " or ".join(f"'{'.'.join(p)}'" for p in same)
        p = same[0]
        cli = ""
        if len(same) == 1 and len(p) == 2 and not where and not isinstance(value, (dict, list)):
            cli = (f" (on the command line: snakemake --config {p[0]}='{{{p[1]}: {value}}}', or "
                   f"adversary-dynamics --config {p[0]}.{p[1]}={value})")
        return f"; did you mean {shown}?{cli}"
    near = difflib.get_close_matches(key, known, n=1)
    if near:
        return f"; did you mean '{near[0]}'?"
    leaves = {}
    for p in sorted(paths, key=len, reverse=True):  # the shallowest path of a leaf name wins
        leaves[p[-1]] = p
    near = difflib.get_close_matches(key, list(leaves), n=1)
    return f"; did you mean '{'.'.join(leaves[near[0]])}'?" if near else ""


def _schema_errors(config: dict, schema: dict) -> tuple[list[str], list[str]]:
    """Messages, and the keys they concern (for the checks beyond the schema)."""
    import jsonschema

    v = jsonschema.Draft202012Validator(schema)
    msgs, keys = [], []
    for err in sorted(v.iter_errors(config), key=lambda e: list(map(str, e.path))):
        if err.validator != "additionalProperties":  # an unknown key spoils none of its neighbours
            keys.append(_key(err.path))
        if err.validator == "additionalProperties":
            known = list(err.schema.get("properties", {}))
            extra = [k for k in err.instance if k not in known]
            for k in extra:
                hint = _unknown_key_hint(k, tuple(err.path), err.instance[k], known, schema)
                where = _key(list(err.path) + [k])
                msgs.append(f"config key '{where}' is unknown (allowed keys here: {', '.join(known)}){hint}")
            continue
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in err.instance]
            msgs += [f"config key '{_key(list(err.path) + [k])}' is missing; allowed: any value the schema "
                     "describes (see config/config.yaml)" for k in missing]
            continue
        desc = err.schema.get("description", "")
        shown = repr(err.instance)
        if isinstance(err.instance, str) and len(shown) > 80:  # a 250-character name: its start and length
            shown = repr(err.instance[:40]) + f"... ({len(err.instance)} characters)"
        msgs.append(f"config key '{_key(err.path)}' has value {shown}; allowed: {_allowed(err)}"
                    + (f" ({desc})" if desc else ""))
    return msgs, keys


def validate_config(config: dict, schema_path: str | Path, *, check_files: bool = True,
                    cuda_available: bool | None = None) -> dict:
    """Validate ``config`` in place (defaults filled in) and return it; raise ConfigError."""
    schema = load_schema(schema_path)
    if not isinstance(config, dict):
        raise ConfigError(f"invalid configuration:\n  - the configuration is {config!r}; allowed: a mapping "
                          "of the keys in config/config.yaml")
    _fill_defaults(config, schema)
    _coerce(config, schema)
    msgs, bad = _schema_errors(config, schema)
    msgs += _non_finite(config, [])

    def ok(*keys: str) -> bool:
        """The schema found nothing wrong with these keys (nor their sections, nor their items)."""
        return not any(b == "<top level>" or b == k or b.startswith((k + ".", k + "[")) or k.startswith(b + ".")
                       for b in bad for k in keys)

    for key in ("scales", "theory.scales"):
        if not ok(key):
            continue
        scales = config["scales"] if key == "scales" else config["theory"]["scales"]
        for i, x in enumerate(scales):
            if math.isfinite(x) and float(_path_text(x)) != float(x):
                msgs.append(f"config key '{key}[{i}]' has value {x!r}, which the workflow writes as "
                            f"'{_path_text(x)}' in paths and would run at {float(_path_text(x))!r}; "
                            "allowed: a number with at most 6 significant digits")
    for key in ("paper_fig1.scales", "paper_fig1.ratios", "paper_fig2.scales", "paper_fig2.ratios",
                "paper_fig3.scales", "paper_fig3.ratios"):
        if not ok(key):
            continue
        block, sub = key.split(".")
        values = config[block][sub]
        texts = [_path_text(v) for v in values]
        dup = sorted({s for s in texts if texts.count(s) > 1})
        if dup:
            msgs.append(f"config key '{key}' has values {values!r} that coincide in paths as {dup}; "
                        "allowed: numbers distinct at 6 significant digits")
    image_shapes = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28),
                    "cifar10": (3, 32, 32)}
    for key in ("model.architecture", "paper_escape.architecture"):
        if not ok(key, "dataset.name") or config[key.split(".")[0]]["architecture"] != "cnn":
            continue
        name = config["dataset"]["name"]
        shape = image_shapes.get(name)
        if shape is None:
            msgs.append(f"config key '{key}' is 'cnn' but dataset.name is {name!r}, which has no image shape; "
                        f"allowed: two_layer, or an image dataset ({', '.join(image_shapes)})")
        elif shape[1] % 4 or shape[2] % 4:
            msgs.append(f"config key '{key}' is 'cnn' but {name!r} images are {shape[1]}x{shape[2]}; the CNN's "
                        "two 2x2 poolings need a height and width divisible by 4")
        if ok("cnn.kernel_size") and config["cnn"]["kernel_size"] % 2 == 0:
            msgs.append(f"config key 'cnn.kernel_size' has value {config['cnn']['kernel_size']!r} (used by {key}: "
                        "cnn); allowed: an odd number (padding k // 2 keeps the image size)")
    if ok("train.epochs", "probe.checkpoints"):
        epochs = config["train"]["epochs"]
        cks = config["probe"]["checkpoints"]
        late = [k for k in cks if k > epochs]
        if late:
            fix = sorted({k for k in cks if k <= epochs} | {epochs})
            msgs.append(f"config key 'probe.checkpoints' has value {cks!r}, and {late!r} lie beyond train.epochs = "
                        f"{epochs}; allowed: epochs between 0 and {epochs} (set both, e.g. --config "
                        f"train='{{epochs: {epochs}}}' probe='{{checkpoints: {fix}}}')")
    if ok("device") and config["device"] == "cuda":
        if cuda_available is None:
            import torch

            cuda_available = torch.cuda.is_available()
        if not cuda_available:
            msgs.append("config key 'device' has value 'cuda' but CUDA is not available on this machine; "
                        "allowed here: auto or cpu")
    if ok("precision") and config["precision"] == "bf16":
        msgs.append("config key 'precision' has value 'bf16', which the training and probe code do not apply yet "
                    "(adversary_dynamics.pipeline.devices.precision_context is the context their model calls need); "
                    "allowed now: fp32 (the default) or tf32")
    if ok("threat.norm", "attack.init") and config["threat"]["norm"] == "linf" and (
            config["attack"]["init"] == "uniform_sphere"):
        msgs.append("config key 'attack.init' has value 'uniform_sphere', which is defined for the l2 "
                    "norm only; allowed with threat.norm linf: zero or uniform_ball")
    if check_files and ok("dataset") and config["dataset"]["name"] in ("mnist", "fashion_mnist", "cifar10"):
        from adversary_dynamics.storage import datasets

        try:
            datasets.check_dataset_files(config["dataset"]["name"], config["dataset"]["root"],
                                         config["dataset"]["download"])
        except ValueError as exc:
            msgs.append(f"config key 'dataset': {exc}")
    if msgs:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(msgs) + "\n(from config/config.yaml, "
                          "--configfile and --config; every key is described in config/config.yaml)")
    return config


def check_config_args(config_args) -> None:
    """``--config KEY=VALUE`` entries whose VALUE writes a key twice (``train='{lr: 0.1, lr: 0.2}'``):
    refused, naming the entry and the key (Snakemake's loader keeps the last one without a word).
    Raises :class:`DuplicateKeyError`; values YAML cannot parse are left to Snakemake."""
    import yaml

    for arg in config_args or []:
        key, _, raw = str(arg).partition("=")
        try:
            load_yaml_text(raw, f"--config {key.strip()}=...")
        except yaml.YAMLError:
            continue


def name_as_typed(config: dict, config_args) -> dict:
    """``--config name=007``: Snakemake parses the value as the integer 7; put the text as typed
    (YAML-unquoted: ``'"007"'`` → ``'007'``) into ``config["name"]``. ``config_args`` are the
    ``KEY=VALUE`` entries of ``--config`` (None: none). Returns ``config`` (changed in place)."""
    import yaml

    for arg in config_args or []:
        key, _, raw = str(arg).partition("=")
        if key.strip() == "name" and raw:
            text = yaml.load(raw, Loader=yaml.BaseLoader)  # everything as text
            if isinstance(text, str):
                config["name"] = text
    return config


# ---- where a configuration's results go -------------------------------------------------------
#: Keys that change no result, left out of :func:`config_digest`: the label ``name``, and where the
#: data files lie / whether missing ones may be fetched (the loaders read the published dataset
#: files and check their format and sizes, wherever they are). Every other key counts, ``device``
#: and ``threads`` included (they change the floating-point bits).
NON_RESULT_KEYS = (("name",), ("dataset", "root"), ("dataset", "download"))


def _canonical(value: Any, schema: dict) -> Any:
    """``value`` with every number the schema types as ``number`` written as a float (``scales: [1, 2]``
    and ``[1.0, 2.0]`` run the same), recursively."""
    types = _types(schema) if isinstance(schema, dict) else []
    if isinstance(value, dict):
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        return {k: _canonical(v, props.get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items", {}) if isinstance(schema, dict) else {}
        return [_canonical(v, items if isinstance(items, dict) else {}) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and "number" in types and "integer" not in types:
        return float(value)
    return value


def result_config(config: dict, schema: dict) -> dict:
    """The result-affecting part of a validated configuration: a copy without
    :data:`NON_RESULT_KEYS`, numbers in canonical form."""
    import copy

    out = _canonical(copy.deepcopy(config), schema)
    for path in NON_RESULT_KEYS:
        node = out
        for k in path[:-1]:
            node = node.get(k, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


def config_digest(config: dict, schema: dict) -> str:
    """SHA-256 (hex) of the canonical JSON (sorted keys, no spaces) of :func:`result_config`: two
    validated configurations have the same digest exactly when every result-affecting key agrees."""
    import hashlib
    import json

    text = json.dumps(result_config(config, schema), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def merge_config(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base`` the way Snakemake merges ``--configfile`` and
    ``--config`` (mappings key by key, recursively; anything else replaced)."""
    import copy

    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _replace_dataset_word(name: str, old: str, new: str) -> str:
    """``name`` with the dataset ``old`` (as consecutive words: ``fashion_mnist`` is the words
    fashion, mnist; words of ``name`` are split at '-', '_' and '.', compared case-insensitively)
    replaced by ``new``'s words, joined by the separator ``name`` uses there ('-' if none); the
    first occurrence only. ``name`` unchanged when it does not contain ``old``."""
    import re

    parts = re.split(r"([-_.])", name)
    words, seps = parts[0::2], parts[1::2]
    want = old.lower().split("_")
    k = len(want)
    for i in range(len(words) - k + 1):
        if [w.lower() for w in words[i:i + k]] != want:
            continue
        inner = seps[i:i + k - 1]
        sep = inner[0] if inner else (seps[i - 1] if i > 0 else (seps[i] if i < len(seps) else "-"))
        words_out = words[:i] + [sep.join(new.split("_"))] + words[i + k:]
        seps_out = seps[:i] + seps[i + k - 1:]
        return "".join(w + (seps_out[j] if j < len(seps_out) else "") for j, w in enumerate(words_out))
    return name


def folder_name(config: dict, schema_path: str | Path, *, base: str | Path,
                committed: list[str | Path]) -> str:
    """The folder name of a validated configuration: its record (results/<folder>/: config.json,
    stages.json) and figures (figures/<folder>/; its stages' results are in results/stages/<stage>/<key>/).

    A committed configuration file run as it is keeps its plain ``name``: ``config`` equals, in every
    result-affecting key (:func:`config_digest`), one of the ``committed`` files merged over ``base``
    (the workflow's own config file, as Snakemake merges ``--configfile``) and carries that file's name.
    Anything else -- an override on the command line, a file of one's own, a committed file's
    name on other content -- gets ``<name>-<first 8 hex digits of the digest>``, so two
    configurations that differ in a result-affecting key never share a folder, whatever was typed.

    The folder does not name a dataset the run does not use: when ``name`` is the name of a
    committed file whose ``dataset.name`` differs from the configuration's, and ``name`` contains
    that file's dataset as words (split at '-', '_', '.'; ``fashion_mnist`` = fashion, mnist), those
    words are replaced by the configuration's dataset in the folder name (``config/paper.yaml``
    with ``--config dataset='{name: fashion_mnist}'``: ``paper-fashion-mnist-<hash8>``, not
    ``paper-mnist-<hash8>``; ``config/fashion-mnist.yaml`` on mnist: ``mnist-<hash8>``). A name
    without its file's dataset word (``default`` on any dataset), or one of the user's own, is
    kept as it is. ``config["name"]`` itself is not changed. Raises :class:`DuplicateKeyError` for
    a key written twice in ``base`` or a committed file.
    """
    schema = load_schema(schema_path)
    digest = config_digest(config, schema)
    base_cfg = _load_yaml(base) or {}
    label = config["name"]
    renamed = False
    for path in committed:
        raw = _load_yaml(path) or {}
        if not isinstance(raw, dict):
            continue
        ref = base_cfg if Path(path).resolve() == Path(base).resolve() else merge_config(base_cfg, raw)
        if str(ref.get("name")) != config.get("name"):
            continue
        try:
            ref = validate_config(merge_config(ref, {}), schema_path, check_files=False, cuda_available=True)
        except ConfigError:
            continue
        if config_digest(ref, schema) == digest:
            return config["name"]
        used, claimed = config.get("dataset", {}).get("name"), ref["dataset"]["name"]
        if not renamed and used and used != claimed:
            new = _replace_dataset_word(label, claimed, used)
            renamed = new != label
            label = new
    return f"{label}-{digest[:8]}"
