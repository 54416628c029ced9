"""The stage registry: what every compute stage of the workflow reads, and the key its results live under.

One entry per stage (:data:`STAGES`) says which configuration keys the stage reads (``reads``, dotted
paths), which stages' results it consumes (``consumes``), whether it reads the dataset files
(``data``), the code it runs (``script``, whose library imports are followed), and how its declared
keys become the typed parameters of its script (``args``). The workflow (``workflow/rules/*.smk``)
takes its rules' result paths, parameters and resources from here; nothing else states them.

**Stage key.** A stage's results lie in ``results/stages/<stage>/<key>/``, where ``key`` is the first
:data:`KEY_LENGTH` hex digits of the SHA-256 of the canonical JSON of

* the values of the keys it reads (numbers the schema types as ``number`` written as floats),
* the keys of the stages it consumes,
* the fingerprint of the dataset files it reads (:func:`data_fingerprint`; content, not path), and
* the fingerprint of its code (:func:`code_fingerprint`: the script or notebook and every library
  module it imports, as Python syntax trees: comments and formatting do not count, docstrings do).

So a change of configuration, data or code reruns exactly the stages that read it, into a new
folder (nothing computed is overwritten or reused under other parameters or data), and two
configurations that agree on what a stage reads share its results. A stage's ``args`` builder sees
only the keys the stage declares (:class:`Declared` raises on any other), so a key cannot be read
without entering the key.

Nothing here runs at import; everything is plain Python (tested without Snakemake).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

#: hex digits of a stage key (48 bits: a collision among a project's stage folders is ~1e-9 at 10^3 keys)
KEY_LENGTH = 12
#: bumped when the layout of a stage's folder changes, so that old folders are never read as new ones
STAGE_FORMAT = 1
LIB = "src/adversary_dynamics"


class UndeclaredKey(KeyError):
    """A stage's ``args`` builder read a configuration key its registry entry does not declare."""

    def __str__(self) -> str:  # KeyError quotes its argument; this is a sentence
        return str(self.args[0])


class Declared:
    """Read-only view of a configuration restricted to a stage's declared keys.

    ``view["train.lr"]`` (dotted) or ``view["train"]["lr"]`` returns the value when ``train.lr``, or a
    section above it (``train``), is declared; anything else raises :class:`UndeclaredKey` naming the
    stage and the key. Sections come back as plain dicts holding only their declared keys."""

    def __init__(self, stage: str, doc: Mapping[str, Any]):
        self._stage, self._doc = stage, doc

    def __getitem__(self, dotted: str) -> Any:
        node: Any = self._doc
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise UndeclaredKey(
                    f"stage '{self._stage}' reads config key '{dotted}', which its registry entry "
                    f"(adversary_dynamics.pipeline.stages.STAGES['{self._stage}'].reads) does not declare: add it there")
            node = node[part]
        return node


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"config key '{dotted}' is missing (validate the configuration first)")
        node = node[part]
    return node


def declared_doc(config: Mapping[str, Any], reads: tuple[str, ...], schema: Mapping | None = None) -> dict:
    """The nested mapping of the ``reads`` keys of ``config`` (and nothing else), numbers in the
    schema's canonical form (``config._canonical``), ready to be hashed or written."""
    import copy

    out: dict = {}
    for dotted in reads:
        value = copy.deepcopy(_lookup(config, dotted))
        if schema is not None:
            from adversary_dynamics.pipeline.config import _canonical

            sub: Any = schema
            for part in dotted.split("."):
                sub = sub.get("properties", {}).get(part, {}) if isinstance(sub, Mapping) else {}
            value = _canonical(value, sub)
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


# ---- fingerprints: data and code ------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_FILE_HASHES: dict[tuple, str] = {}


def _file_hash(path: Path, cache: dict | None) -> str:
    """SHA-256 of a file, remembered by (absolute path, size, mtime) in ``cache`` (and this process)."""
    st = path.stat()
    ident = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    key = "|".join(map(str, ident))
    if ident in _FILE_HASHES:
        return _FILE_HASHES[ident]
    if cache is not None and key in cache:
        digest = cache[key]
    else:
        digest = _sha256_file(path)
        if cache is not None:
            cache[key] = digest
    _FILE_HASHES[ident] = digest
    return digest


#: the ``files`` entry of a data fingerprint computed without the files (:func:`data_fingerprint` with
#: ``missing_ok``): a key that only plans (a dry run); no job runs under it (``datasets.refuse_placeholder``)
MISSING = "missing"  # = datasets.PLACEHOLDER (not imported here: the registry loads without numpy)


def data_fingerprint(dataset: Mapping[str, Any], *, cache_file: str | os.PathLike | None = None,
                     missing_ok: bool = False) -> dict:
    """What identifies the data a stage reads, by content (not by where it lies).

    Returns ``{"name": ..., "files": {role: sha256}}`` for the file datasets (MNIST, Fashion-MNIST,
    CIFAR-10: every file :func:`datasets.find_files` picks under ``dataset.root``), the hash of
    scikit-learn's embedded file for ``digits``, and ``{"name": "gaussian", "generated": True}`` for the
    synthetic data (its parameters are keys the stage reads). Missing files with ``dataset.download``
    give ``{"name": ..., "files": "to be downloaded"}`` (the key changes once they are there).
    File hashes are remembered in ``cache_file`` (JSON) by path, size and modification time, so that an
    unchanged 50 MB file is read once. Raises ``datasets.DataError`` when files are missing and
    ``download`` is false (the message names the folders searched and how to get them), unless
    ``missing_ok``: then ``{"name": ..., "files": MISSING}``, a placeholder that lets a dry run plan the
    jobs (``snakemake -n``) and that no job may run under (``datasets.refuse_placeholder``)."""
    from adversary_dynamics.storage import datasets

    name = dataset["name"]
    cache: dict | None = None
    if cache_file is not None and Path(cache_file).exists():
        try:
            cache = json.loads(Path(cache_file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cache = {}
    elif cache_file is not None:
        cache = {}
    before = dict(cache) if cache is not None else None
    if name == "gaussian":
        out: dict = {"name": name, "generated": True}
    elif name == "digits":
        import importlib.util

        spec = importlib.util.find_spec("sklearn")
        f = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
        out = {"name": name, "files": {"digits.csv.gz": _file_hash(f, cache) if f and f.exists() else "sklearn"}}
    else:
        try:
            files = datasets.find_files(name, dataset.get("root"))
        except datasets.DataError:
            if dataset.get("download"):
                return {"name": name, "files": "to be downloaded"}
            if missing_ok:
                return {"name": name, "files": MISSING}
            raise
        out = {"name": name, "files": {role: _file_hash(Path(p), cache) for role, p in sorted(files.items())}}
    if cache_file is not None and cache != before:
        from adversary_dynamics.storage.runio import write_json_atomic

        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_file, cache)
    return out


def is_placeholder(data: Mapping[str, Any] | None) -> bool:
    """Whether a data fingerprint (or a stage record's ``data``) is the dry-run placeholder (:data:`MISSING`)."""
    return isinstance(data, Mapping) and data.get("files") == MISSING


def _code_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":  # a notebook: its code cells, without IPython's magics
        cells = json.loads(text)["cells"]
        text = "\n".join(line for c in cells if c["cell_type"] == "code"
                         for line in "".join(c["source"]).splitlines()
                         if not line.lstrip().startswith(("%", "!")))
    return text


_CODE_INFO: dict[tuple, tuple[list, str]] = {}
_CODE_CACHE: dict[str, list] | None = None  # the on-disk cache of :func:`_code_info`, once loaded
_CODE_USED: set[str] = set()  # its entries this process used (the only ones written back)


PACKAGE = "adversary_dynamics"


def _module_file(module: str, base: Path) -> Path | None:
    """The file of a dotted module name of the package (``adversary_dynamics.attack.driver`` ->
    ``<base>/attack/driver.py``, a subpackage -> its ``__init__.py``), or None if it is not ours."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    rel = Path(*parts[1:]) if len(parts) > 1 else Path()
    for cand in (base / rel.with_suffix(".py") if parts[1:] else None, base / rel / "__init__.py"):
        if cand is not None and cand.is_file():
            return cand
    return None


def _module_name(path: Path, base: Path) -> str | None:
    """The dotted name of a file of the package, or None for a file outside it (a script, a notebook)."""
    try:
        rel = path.resolve().relative_to(base.resolve())
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


def _parse_imports(tree: ast.AST, *, module: str | None, is_package: bool) -> set[str]:
    """Dotted names of everything the tree imports from the package: ``import adversary_dynamics.x``,
    ``from adversary_dynamics.x import y`` (y may be a submodule), and relative imports resolved
    against ``module`` (the file's own dotted name; None outside the package, where relative imports
    do not count)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").split(".")[0] != PACKAGE:
                    continue
                origin = node.module
            else:
                if module is None:
                    continue
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                origin = ".".join(pkg + ([node.module] if node.module else []))
            found.add(origin)
            found.update(f"{origin}.{a.name}" for a in node.names)  # submodules among the names
    return found


def _code_info(path: Path, *, base: Path) -> tuple[list, str]:
    """(dotted names the file imports from the package, SHA-256 of its syntax tree), remembered by
    (path, size, modification time) in this process and in the on-disk cache (:func:`resolve`)."""
    st = path.stat()
    ident = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(base.resolve()))
    if ident in _CODE_INFO:
        return _CODE_INFO[ident]
    key = "|".join(map(str, ident))
    _CODE_USED.add(key)
    if _CODE_CACHE is not None and key in _CODE_CACHE:
        info = tuple(_CODE_CACHE[key])
    elif path.suffix not in (".py", ".ipynb"):  # a data file the code runs with (a kernel spec): its bytes
        info = ([], hashlib.sha256(path.read_bytes()).hexdigest())
    else:
        tree = ast.parse(_code_text(path), filename=str(path))
        info = (sorted(_parse_imports(tree, module=_module_name(path, base), is_package=path.name == "__init__.py")),
                hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest())
        if _CODE_CACHE is not None:
            _CODE_CACHE[key] = list(info)
    _CODE_INFO[ident] = info
    return info


def _imported_files(path: Path, base: Path) -> set[Path]:
    """The package's files that importing the names in ``path`` runs: each module's file and the
    ``__init__.py`` of every package above it (Python runs those first)."""
    out: set[Path] = set()
    for name in _code_info(path, base=base)[0]:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            f = _module_file(".".join(parts[:k]), base)
            if f is not None:
                out.add(f)
    return out


def imported_modules(path: str | os.PathLike, *, root: str | os.PathLike = ".") -> set[str]:
    """The package's files (relative to ``src/adversary_dynamics``, without ``.py``: ``models``,
    ``attack/driver``, ``attack/__init__``) that the Python file or notebook at ``path`` imports,
    anywhere in it (imports inside functions count: a job that calls the function runs that code)."""
    base = Path(root) / LIB
    return {f.relative_to(base).with_suffix("").as_posix() for f in _imported_files(Path(path), base)}


def code_files(script: str, *, root: str | os.PathLike = ".") -> list[str]:
    """The code a stage runs: ``script`` (a script or notebook, relative to ``root``) and every file of
    the package it imports, directly or through other modules of the package, sorted (the package's
    ``__init__`` included)."""
    base = Path(root) / LIB
    seen: set[Path] = {base / "__init__.py"}
    todo = list(_imported_files(Path(root) / script, base))
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(_imported_files(f, base))
    return [script] + sorted(f"{LIB}/{f.relative_to(base).as_posix()}" for f in seen)


def code_fingerprint(files: list[str], *, root: str | os.PathLike = ".") -> str:
    """SHA-256 over the syntax trees (``ast.dump``) of ``files``: a comment or a reformatting leaves it
    unchanged, any change of code (docstrings included) changes it."""
    h = hashlib.sha256()
    base = Path(root) / LIB
    for f in files:
        h.update(f.encode() + b"\0" + _code_info(Path(root) / f, base=base)[1].encode() + b"\0")
    return h.hexdigest()


# ---- the registry -------------------------------------------------------------------------------
Args = Callable[[Declared], dict]


@dataclass(frozen=True)
class Stage:
    """One compute stage: a rule of the workflow (named ``name``) and a folder of results per key.

    ``reads``: dotted configuration keys (a section means all of it); ``consumes``: stages whose
    results it reads; ``data``: whether it reads the dataset files; ``script``: the code it runs;
    ``args``: its script's typed parameters (argparse destinations → values) from the declared keys;
    ``figure``: the figure whose tables it writes (None: raw runs), ``tables``: their names (the
    notebook's parameters, ``<table>.csv`` in the stage's folder); ``extra_code``: other files its job
    runs (a helper script, a kernel spec), fingerprinted with its code; ``what``: one line for humans."""

    name: str
    reads: tuple[str, ...]
    script: str
    args: Args | None = None
    consumes: tuple[str, ...] = ()
    data: bool = False
    figure: str | None = None
    what: str = ""
    wildcards: tuple[str, ...] = field(default=())
    tables: tuple[str, ...] = ()
    extra_code: tuple[str, ...] = ()


DATASET = ("dataset.name", "dataset.n_train", "dataset.n_test", "dataset.dim", "dataset.split_seed")
MODEL = ("model", "cnn", "loss")
#: the keys of every stage that runs torch: where, on how many threads and in which precision (fp32, tf32,
#: bf16: it changes results, so it enters the key)
DEVICE = ("device", "threads", "precision")


def _dataset_args(c: Declared, *, n_train: Any = "config", n_test: Any = "config") -> dict:
    return {"dataset": c["dataset.name"], "n_train": c["dataset.n_train"] if n_train == "config" else n_train,
            "n_test": c["dataset.n_test"] if n_test == "config" else n_test, "dim": c["dataset.dim"],
            "split_seed": c["dataset.split_seed"]}


def _model_args(c: Declared) -> dict:
    m, cn = c["model"], c["cnn"]
    return {"architecture": m.get("architecture", "two_layer"), "width": m["width"], "activation": m["activation"],
            "bias": m["bias"], "train_output_layer": m["train_output_layer"], "loss": c["loss"],
            "cnn_channels": [int(x) for x in cn["channels"]], "cnn_kernel_size": cn["kernel_size"],
            "cnn_hidden": cn["hidden"]}


def _device_args(c: Declared) -> dict:
    return {"device": c["device"], "threads": c["threads"], "precision": c["precision"]}


def _train_args(c: Declared) -> dict:
    t, a = c["train"], c["attack"]
    return {**_dataset_args(c), **_model_args(c), "ratio": c["threat.ratio"], "norm": c["threat.norm"],
            "seeds": [int(s) for s in c["seeds"]], "epochs": t["epochs"], "batch_size": t["batch_size"],
            "optimizer": t["optimizer"], "lr": t["lr"], "lr_scale_power": t["lr_scale_power"],
            "momentum": t["momentum"], "attack_steps": a["steps"], "attack_step_size": a["step_size"],
            "attack_gradient": a["gradient"], "attack_init": a["init"], "eval_steps": t["eval_steps"],
            "eval_restarts": t["eval_restarts"], "checkpoints": sorted({int(e) for e in c["probe.checkpoints"]}),
            "batch_seeds": str(t["batch_seeds"]).lower(), **_device_args(c)}


def _probe_args(c: Declared) -> dict:
    p = c["probe"]
    return {**_dataset_args(c), **_model_args(c), "ratio": c["threat.ratio"], "norm": c["threat.norm"],
            "seeds": [int(s) for s in c["seeds"]], "checkpoints": [int(e) for e in p["checkpoints"]],
            "n_inputs": p["n_inputs"], "restarts": p["restarts"], "max_steps": p["max_steps"],
            "step_size": p["step_size"], "step_rule": p["step_rule"], "tol": p["tol"], "patience": p["patience"],
            "landscape_inputs": p["landscape_inputs"], "grid": p["grid"], "cos_threshold": p["cos_threshold"],
            **_device_args(c)}


def _escape_model_args(c: Declared) -> dict:
    cn, e = c["cnn"], c["paper_escape"]
    return {"architecture": e["architecture"], "cnn_channels": [int(x) for x in cn["channels"]],
            "cnn_kernel_size": cn["kernel_size"], "cnn_hidden": cn["hidden"], "loss": e["loss"]}


def _escape_run_args(fig: str) -> Args:
    def args(c: Declared) -> dict:
        e = c["paper_escape"]
        f = c[fig]
        d, k = e["descent"], e["check"]
        n_train = c["dataset.n_train"] if fig == "paper_fig2" else c["paper_fig3.train.n_train"]
        extra = ({"input_normalization": f["input_normalization"]} if fig == "paper_fig2"
                 else {"checkpoints": sorted(int(x) for x in f["checkpoints"])})
        return {"figure": "fig2" if fig == "paper_fig2" else "fig3", **_dataset_args(c, n_train=n_train),
                **_escape_model_args(c), "norm": "l2", "scales": list(f["scales"]), "ratios": list(f["ratios"]),
                "seeds": [int(s) for s in e["seeds"]], "n_inputs": e["n_inputs"], "steps": e["steps"],
                "step_size": e["step_size"], "descent_steps": d["steps"], "descent_step_size": d["step_size"],
                "descent_stages": d["stages"], "check_directions": k["directions"], "check_radius": k["radius"],
                "check_mapping_step": k["mapping_step"], "check_gtol": k["gtol"], "check_ftol": k["ftol"],
                "rtol": e["escape_rtol"], "censor_min_rise": e["censor_min_rise"], "censor_tail": e["censor_tail"],
                "censor_tail_rise": e["censor_tail_rise"], "start_ulp": e["start_ulp"], "step_rule": e["step_rule"],
                "replica_ulps": [int(k) for k in e["replica_ulps"]], **extra, **_device_args(c)}
    return args


#: the verdict rules (config ``claims:``) that T5's statistic without replicas uses: its interval, bootstrap, the
#: least units of a group and how group verdicts combine (the others, e.g. margin_factor, do not change it)
STEP_RULE_CLAIMS = ("confidence", "bootstrap", "seed", "min_runs", "min_supported_groups")


def _step_rule_args(c: Declared) -> dict:
    """ext_step_rule: Fig. 2's probe (paper_escape's settings, paper_fig2's scales) at the section's ratios and
    seeds under each step rule; the claims' verdict rules (T5's statistic) as one JSON mapping."""
    e, x = c["paper_escape"], c["ext_step_rule"]
    d, k = e["descent"], e["check"]
    return {**_dataset_args(c), **_escape_model_args(c), "scales": list(c["paper_fig2.scales"]),
            "ratios": list(x["ratios"]), "seeds": [int(s) for s in x["seeds"]], "n_inputs": e["n_inputs"],
            "steps": e["steps"], "step_size": e["step_size"], "proportional_step": x["proportional_step"],
            "normalized_step": x["normalized_step"], "descent_steps": d["steps"], "descent_step_size": d["step_size"],
            "descent_stages": d["stages"], "check_directions": k["directions"], "check_radius": k["radius"],
            "check_mapping_step": k["mapping_step"], "check_gtol": k["gtol"], "check_ftol": k["ftol"],
            "rtol": e["escape_rtol"], "censor_min_rise": e["censor_min_rise"], "censor_tail": e["censor_tail"],
            "censor_tail_rise": e["censor_tail_rise"],
            "claims_rules": json.dumps({r: c[f"claims.{r}"] for r in STEP_RULE_CLAIMS}, sort_keys=True, allow_nan=False),
            **_device_args(c)}


def _fig3_train_args(c: Declared) -> dict:
    t = c["paper_fig3.train"]
    return {**_dataset_args(c, n_train=t["n_train"], n_test=t["n_test"]), **_escape_model_args(c),
            "norm": "l2", "seeds": [int(s) for s in c["paper_escape.seeds"]],
            "epochs": max(int(e) for e in c["paper_fig3.checkpoints"]), "batch_size": t["batch_size"],
            "optimizer": t["optimizer"], "lr": t["lr"], "lr_scale_power": 0.0, "momentum": 0.0,
            "attack_steps": t["attack_steps"], "attack_step_size": t["attack_step_size"], "attack_gradient": "raw",
            "attack_init": "uniform_ball", "eval_steps": t["eval_steps"], "eval_restarts": t["eval_restarts"],
            "checkpoints": sorted(int(e) for e in c["paper_fig3.checkpoints"]),
            "batch_seeds": str(t.get("batch_seeds", "auto")).lower(),
            "progress": True, **_device_args(c)}


def _theory_args(c: Declared) -> dict:
    th = c["theory"]
    keys = ("dims", "width_powers", "activation", "scales", "eps_factor", "eta_fractions", "trials", "max_steps",
            "refine_factor", "refine_tol", "maxima_dims", "maxima_ratios", "maxima_trials", "maxima_restarts",
            "maxima_steps", "maxima_step", "maxima_tol", "maxima_merge", "hessian_descent", "seed")
    return {**{k: th[k] for k in keys}, "contrast_activation": th["contrast_activation"] or "none",
            **_device_args(c)}


def _fig1_args(c: Declared) -> dict:
    p = c["paper_fig1"]
    keys = ("scales", "ratios", "width", "seed", "n_points", "data_seed", "label_rule", "example", "grid", "steps",
            "step_size", "init_seed", "maxima_ratios", "maxima_examples", "restarts", "maxima_steps",
            "maxima_step_fraction", "maxima_phases", "cos_threshold", "circle_points")
    return {**{k: p[k] for k in keys}, "threads": 1, "precision": c["precision"]}


def _claims_args(c: Declared) -> dict:
    from adversary_dynamics.claims import DEFAULT_RULES, _rules

    r = _rules(c["claims"])
    return {k: r[k] for k in DEFAULT_RULES}


#: every compute stage, in the order the pipeline runs them; the rule of a stage is named after it
STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("train", reads=(*DATASET, *MODEL, "threat", "seeds", "probe.checkpoints", "attack",
                          *(f"train.{k}" for k in ("epochs", "batch_size", "optimizer", "lr", "lr_scale_power",
                                                   "momentum", "eval_steps", "eval_restarts", "batch_seeds")),
                          *DEVICE),
          script="scripts/train.py", args=_train_args, data=True, wildcards=("scale",),
          what="adversarial training of the two-layer nets (or CNNs), every seed of one scale"),
    Stage("probe", reads=(*DATASET, *MODEL, "threat", "seeds", "probe", *DEVICE), script="scripts/probe.py",
          args=_probe_args, consumes=("train",), data=True, wildcards=("scale",),
          what="landscape probes (PGA with restarts, certificates, slices) of every seed's checkpoints"),
    Stage("ext_pga_convergence_tables", reads=("scales", "seeds", "probe.max_steps"), script="scripts/aggregate.py",
          args=lambda c: {"max_steps": c["probe.max_steps"]}, consumes=("probe",), figure="ext_pga_convergence",
          tables=("curves", "final"), what="the tables of ext_pga_convergence"),
    Stage("ext_training_convergence_tables", reads=("scales", "seeds", "train.threshold"),
          script="scripts/aggregate.py", args=lambda c: {"threshold": c["train.threshold"]}, consumes=("train",),
          figure="ext_training_convergence", tables=("steps", "epochs", "runs"),
          what="the tables of ext_training_convergence"),
    Stage("ext_landscape_statistics_tables", reads=("scales", "seeds"), script="scripts/aggregate.py",
          args=lambda c: {}, consumes=("probe",), figure="ext_landscape_statistics",
          tables=("grid", "circle", "traj", "regularity"), what="the tables of ext_landscape_statistics"),
    Stage("theory", reads=("theory", *DEVICE), script="scripts/theory.py", args=_theory_args, figure="ext_theory",
          tables=("pga", "hessian", "maxima"), what="Theorem 3.1 setting: PGA to the sphere, Hessians, restart counts (T1-T4)"),
    Stage("paper_fig1_landscapes_tables", reads=("paper_fig1", "precision"), script="scripts/paper_fig1.py", args=_fig1_args,
          figure="paper_fig1_landscapes", tables=("grid", "traj", "panels", "rim", "maxima"), what="Fig. 1 landscapes, trajectories and maxima on simulated 2-D data"),
    Stage("paper_fig2_escape_run", reads=(*DATASET, "cnn", "paper_escape", "paper_fig2", *DEVICE),
          script="scripts/escape.py", args=_escape_run_args("paper_fig2"), data=True,
          what="Fig. 2 escape probes of the CNN at initialisation"),
    Stage("paper_fig2_escape_by_scale_tables", reads=(), script="scripts/escape.py", args=lambda c: {},
          consumes=("paper_fig2_escape_run",), figure="paper_fig2_escape_by_scale",
          tables=("escape", "curves", "survival", "levels", "escape_replica"),
          what="the tables of paper_fig2_escape_by_scale"),
    Stage("paper_fig3_train", reads=(*DATASET, "cnn", "paper_escape.architecture", "paper_escape.loss",
                                     "paper_escape.seeds", "paper_fig3.train", "paper_fig3.checkpoints", *DEVICE),
          script="scripts/train.py", args=_fig3_train_args, data=True, wildcards=("scale", "ratio"),
          what="Fig. 3 adversarial training of the CNN, every seed of one (scale, ratio)"),
    Stage("paper_fig3_escape_run", reads=(*DATASET, "cnn", "paper_escape", "paper_fig3", *DEVICE),
          script="scripts/escape.py", args=_escape_run_args("paper_fig3"), consumes=("paper_fig3_train",), data=True,
          what="Fig. 3 escape probes of the adversarially trained CNNs"),
    Stage("paper_fig3_escape_during_training_tables", reads=(), script="scripts/escape.py", args=lambda c: {},
          consumes=("paper_fig3_escape_run", "paper_fig3_train"), figure="paper_fig3_escape_during_training",
          tables=("escape", "curves", "survival", "escape_replica"),
          what="the tables of paper_fig3_escape_during_training"),
    Stage("ext_step_rule_tables",
          reads=(*DATASET, "cnn", *(f"paper_escape.{k}" for k in ("architecture", "loss", "n_inputs", "steps", "step_size",
                                                                   "escape_rtol", "censor_min_rise", "censor_tail",
                                                                   "censor_tail_rise", "descent", "check")),
                 "paper_fig2.scales", "ext_step_rule", *(f"claims.{r}" for r in STEP_RULE_CLAIMS), *DEVICE),
          script="scripts/step_rule.py", args=_step_rule_args, data=True, figure="ext_step_rule",
          tables=("escape", "summary", "t5_by_variant"),
          what="escape time by input scale at fixed ratios under each PGA step rule, with T5 per rule (issue 18)"),
)}

#: the figures: name -> the stage that writes its tables (the notebook notebooks/<figure>.ipynb reads them)
FIGURES: dict[str, str] = {s.figure: s.name for s in STAGES.values() if s.figure}

#: the claims stage: the verdict rules it reads and the figure tables it consumes (claims.TABLES name ->
#: (figure, table)); writes figures/<folder>/claims.{md,json}
CLAIMS = Stage("claims", reads=("claims",), script="scripts/claims.py", args=_claims_args,
               consumes=tuple(FIGURES.values()), what="verdicts on the paper's statements T1-T7 and E1-E4")
CLAIM_TABLES: dict[str, tuple[str, str]] = {
    "theory_runs": ("ext_theory", "pga"), "theory_hessian": ("ext_theory", "hessian"),
    "theory_maxima": ("ext_theory", "maxima"), "fig1_maxima": ("paper_fig1_landscapes", "maxima"),
    "escape_scale": ("paper_fig2_escape_by_scale", "escape"),
    "escape_scale_replica": ("paper_fig2_escape_by_scale", "escape_replica"),
    "escape_step_rule": ("ext_step_rule", "t5_by_variant"),
    "escape_training": ("paper_fig3_escape_during_training", "escape"),
    "escape_training_replica": ("paper_fig3_escape_during_training", "escape_replica"),
    "training_runs": ("ext_training_convergence", "runs"), "pga_final": ("ext_pga_convergence", "final"),
    "landscape_regularity": ("ext_landscape_statistics", "regularity"),
}


def figure_stage(fig: str) -> Stage:
    """The notebook stage of figure ``fig``: it consumes the figure's tables and reads no configuration
    (its results: results/stages/<fig>/<key>/<fig>.{pdf,png,provenance.json})."""
    return Stage(fig, reads=(), script=f"notebooks/{fig}.ipynb", consumes=(FIGURES[fig],), figure=fig,
                 extra_code=FIGURE_CODE, what=f"figure {fig} (notebook)")


#: what a figure's job runs besides its notebook (workflow/rules/figures.smk): the kernel spec that
#: starts the notebook and the script that writes the figure's provenance
FIGURE_CODE = ("workflow/jupyter/kernels/adversary-dynamics/kernel.json", "scripts/figure_provenance.py")


def all_stages() -> dict[str, Stage]:
    """Every keyed stage: the compute stages, the figures' notebook stages and claims."""
    return {**STAGES, **{f: figure_stage(f) for f in FIGURES}, CLAIMS.name: CLAIMS}


@dataclass(frozen=True)
class Keyed:
    """A stage resolved against one configuration: its key, folder and everything the key covers."""

    stage: Stage
    key: str
    folder: str
    reads: dict
    upstream: dict
    data: dict | None
    code: list
    code_fingerprint: str
    args: dict

    def record(self) -> dict:
        """What the stage was computed from (written beside its results and into results/<config>/stages.json)."""
        return {"stage": self.stage.name, "key": self.key, "folder": self.folder, "format": STAGE_FORMAT,
                "reads": self.reads, "upstream": self.upstream, "data": self.data, "code": self.code,
                "code_fingerprint": self.code_fingerprint}


def resolve(config: Mapping[str, Any], *, schema: Mapping | None = None, root: str | os.PathLike = ".",
            results: str = "results/stages", only: set[str] | None = None,
            data_cache: str | os.PathLike | None = None,
            code_cache: str | os.PathLike | None = None, missing_data_ok: bool = False) -> dict[str, Keyed]:
    """Every stage of :func:`all_stages` keyed against ``config`` (validated): name -> :class:`Keyed`.

    ``only``: resolve these stages and what they consume (default: all). The dataset's fingerprint is
    computed once (:func:`data_fingerprint`, cached in ``data_cache``), the code fingerprints once per
    script (each file's syntax tree remembered in ``code_cache``, JSON, by path, size and modification
    time). Raises :class:`UndeclaredKey` when an ``args`` builder reads an undeclared key.
    ``missing_data_ok``: missing dataset files give the placeholder fingerprint (:data:`MISSING`)
    instead of ``datasets.DataError`` (for planning; ``datasets.refuse_placeholder`` stops a job under it)."""
    global _CODE_CACHE
    if code_cache is not None and _CODE_CACHE is None:
        try:
            _CODE_CACHE = json.loads(Path(code_cache).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _CODE_CACHE = {}
    before = dict(_CODE_CACHE) if _CODE_CACHE is not None else None
    stages = all_stages()
    out: dict[str, Keyed] = {}
    data_fp: dict | None = None
    scripts: dict[str, tuple[list, str]] = {}

    def key_of(name: str) -> Keyed:
        nonlocal data_fp
        if name in out:
            return out[name]
        st = stages[name]
        upstream = {u: key_of(u).key for u in st.consumes}
        doc = declared_doc(config, st.reads, schema)
        if st.data and data_fp is None:
            data_fp = data_fingerprint(config["dataset"], cache_file=data_cache, missing_ok=missing_data_ok)
        ident = (st.script, st.extra_code)
        if ident not in scripts:
            files = code_files(st.script, root=root)
            for extra in st.extra_code:
                files = files + [f for f in code_files(extra, root=root) if f not in files]
            scripts[ident] = (files, code_fingerprint(files, root=root))
        files, code_fp = scripts[ident]
        payload = {"stage": name, "format": STAGE_FORMAT, "reads": doc, "upstream": upstream,
                   "data": data_fp if st.data else None, "code": code_fp}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:KEY_LENGTH]
        args = st.args(Declared(name, doc)) if st.args else {}
        out[name] = Keyed(st, key, f"{results}/{name}/{key}", doc, upstream, data_fp if st.data else None,
                          files, code_fp, args)
        return out[name]

    for name in (stages if only is None else only):
        key_of(name)
    if code_cache is not None and _CODE_CACHE is not None:
        kept = {k: v for k, v in _CODE_CACHE.items() if k in _CODE_USED}  # entries of edited files go
        if kept != before:
            from adversary_dynamics.storage.runio import write_json_atomic

            Path(code_cache).parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(code_cache, kept)
    return out
