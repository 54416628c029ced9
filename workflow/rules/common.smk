# The Python of the workflow: config validation first, then named helper functions.
# Rules hold no config lookups in their shell commands: everything arrives via params.
import shutil
from pathlib import Path

from adversary_dynamics.config import validate_config

validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")

NAME = config["name"]
RESULTS = f"results/{NAME}"
LOGS = f"logs/{NAME}"
BENCH = f"benchmarks/{NAME}"
TABLES = f"{RESULTS}/tables"
FIGDIR = "figures" if NAME == "default" else f"figures/{NAME}"
# figure name -> {"tables": {notebook parameter: table path}, "provenance": path}; every concern file
# registers its figures (register_figure) and figures.smk, included last, makes one rule per figure
FIGURES = {}
LIB = "src/adversary_dynamics"
# the software of every rule, used with --use-conda (relative to workflow/rules/)
CONDA_ENV = "../../environment.yml"


def fmt(x):
    """Canonical text of a number in paths: 0.25 -> '0.25', 1.0 -> '1'."""
    return f"{float(x):g}"


SCALES = [fmt(s) for s in config["scales"]]
SEEDS = [str(s) for s in config["seeds"]]


def use_gpu():
    """1 when the training/probe jobs will run on a GPU (device cuda, or auto on a CUDA host)."""
    dev = config["device"]
    return 1 if dev == "cuda" or (dev == "auto" and shutil.which("nvidia-smi")) else 0


def _imported_modules(path):
    """Modules of adversary_dynamics that the Python file at `path` imports, anywhere in it
    (also inside functions: lazy imports count)."""
    import ast

    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    in_lib = Path(path).parent.resolve() == (Path(workflow.basedir) / LIB).resolve()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "adversary_dynamics":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and mod.split(".")[0] != "adversary_dynamics":
                continue
            if node.level > 0 and not in_lib:
                continue
            parts = mod.split(".")[1:] if node.level == 0 else ([mod.split(".")[0]] if mod else [])
            if parts:
                found.add(parts[0])
            else:  # from adversary_dynamics import x, y / from . import x, y
                found.update(a.name for a in node.names)
    base = Path(workflow.basedir) / LIB
    return {m for m in found if (base / f"{m}.py").exists()}


def script_code(script):
    """The code a job runs: the script and every library module it imports, directly or through
    other library modules (derived from the import statements, so no edit is missed); editing any
    of them reruns the job."""
    seen, todo = {"__init__"}, list(_imported_modules(Path(workflow.basedir) / script))
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(_imported_modules(Path(workflow.basedir) / LIB / f"{m}.py"))
    return [script] + sorted(f"{LIB}/{m}.py" for m in seen)


def register_figure(fig, *, tables, provenance):
    """Register a figure: its notebook notebooks/<fig>.ipynb reads `tables` (parameter -> path)
    and figures.smk makes the rule <fig> writing {FIGDIR}/<fig>.pdf/.png/.provenance.json."""
    FIGURES[fig] = {"tables": dict(tables), "provenance": provenance}


def fig_tables(fig):
    """Folder of one figure's tables."""
    return f"{TABLES}/{fig}"


def train_dir(scale, seed):
    return f"{RESULTS}/train/scale~{scale}/seed~{seed}"


def probe_dir(scale, seed):
    return f"{RESULTS}/probe/scale~{scale}/seed~{seed}"


def theory_dir(d, m):
    return f"{RESULTS}/theory/d~{d}/m~{m}"


def seed_files(kind, name):
    """The file `name` of every seed's run folder (kind: train or probe) at the job's scale."""
    return [f"{RESULTS}/{kind}/scale~{{scale}}/seed~{k}/{name}" for k in SEEDS]


def scale_root_of_output(wildcards, output):
    """The scale's folder (parent of the seed~<k>/ folders) of a train or probe job."""
    return str(Path(output[0]).parents[1])


def scale_root_of_input(wildcards, input):
    """The training folder of the scale a probe job reads."""
    return str(Path(input.status[0]).parents[1])


def theory_root(wildcards, output):
    """results/<name>/theory, the parent of the d~<d>/m~<m>/ folders."""
    return str(Path(output[0]).parents[2])


def _dataset_args():
    ds = config["dataset"]

    def none(v):
        return "none" if v is None else v

    root = f"--root {ds['root']}" if ds["root"] else ""
    return (
        f"--dataset {ds['name']} {root} --n-train {none(ds['n_train'])} --n-test {none(ds['n_test'])} "
        f"--dim {ds['dim']} --split-seed {ds['split_seed']}"
    )


def _model_args():
    mo = config["model"]
    return (
        f"--width {mo['width']} --activation {mo['activation']} --bias {mo['bias']} "
        f"--train-output-layer {mo['train_output_layer']} --loss {config['loss']} "
        f"--ratio {config['threat']['ratio']}"
    )


def _ints(xs):
    return ",".join(str(int(x)) for x in xs)


def train_args(wildcards):
    """All CLI arguments of scripts/train.py but the folder, scale and seeds."""
    t, a = config["train"], config["attack"]
    return (
        f"{_dataset_args()} --download {config['dataset']['download']} {_model_args()} "
        f"--norm {config['threat']['norm']} --epochs {t['epochs']} --batch-size {t['batch_size']} "
        f"--optimizer {t['optimizer']} --lr {t['lr']} --lr-scale-power {t['lr_scale_power']} --momentum {t['momentum']} "
        f"--attack-steps {a['steps']} --attack-step-size {a['step_size']} --attack-gradient {a['gradient']} "
        f"--attack-init {a['init']} --eval-steps {t['eval_steps']} --eval-restarts {t['eval_restarts']} "
        f"--checkpoints {_ints(sorted(set(config['probe']['checkpoints'])))} "
        f"--batch-seeds {str(t['batch_seeds']).lower()} "
        f"--device {config['device']} --threads {config['threads']}"
    )


def probe_args(wildcards):
    """All CLI arguments of scripts/probe.py but folders, scale and seeds (the script draws
    landscape slices for the first seed only)."""
    p = config["probe"]
    return (
        f"{_dataset_args()} {_model_args()} --checkpoints {_ints(p['checkpoints'])} "
        f"--n-inputs {p['n_inputs']} --restarts {p['restarts']} --max-steps {p['max_steps']} "
        f"--step-size {p['step_size']} --step-rule {p['step_rule']} --tol {p['tol']} --patience {p['patience']} "
        f"--landscape-inputs {p['landscape_inputs']} --grid {p['grid']} --cos-threshold {p['cos_threshold']} "
        f"--device {config['device']} --threads {config['threads']}"
    )


def theory_args(wildcards):
    th = config["theory"]
    return (
        f"--dims {_ints(th['dims'])} --widths {_ints(th['widths'])} "
        f"--scales {','.join(fmt(s) for s in th['scales'])} --ratio {th['ratio']} --trials {th['trials']} "
        f"--max-steps {th['max_steps']} --step-size {th['step_size']} --step-rule {th['step_rule']} "
        f"--tol {th['tol']} "
        f"--patience {th['patience']} --activation {config['model']['activation']} --seed {th['seed']} "
        f"--device {config['device']} --threads {config['threads']}"
    )


# ---- resource estimates (from the configuration's size, not constants) --------------------
def _input_dim():
    return {"digits": 64, "gaussian": config["dataset"]["dim"], "cifar10": 3072}.get(
        config["dataset"]["name"], 784
    )


def _n_train():
    full = {"digits": 1438, "gaussian": 1000, "cifar10": 50000}.get(
        config["dataset"]["name"], 60000
    )
    return config["dataset"]["n_train"] or full


GFLOPS = 5.0  # a pessimistic CPU rate per thread (GFLOP/s) for the estimates below


def train_flops():
    """All seeds of one scale: epochs x examples x (attack steps + update) x 2 GEMMs."""
    t, a, w, d = (
        config["train"],
        config["attack"],
        config["model"]["width"],
        _input_dim(),
    )
    per_seed = t["epochs"] * _n_train() * (a["steps"] + 3) * 4.0 * w * d
    return len(SEEDS) * per_seed


def probe_flops():
    p, w, d = config["probe"], config["model"]["width"], _input_dim()
    per_seed = (
        len(p["checkpoints"])
        * p["n_inputs"]
        * (p["restarts"] * (p["max_steps"] + 40) + 300)
        * 4.0
        * w
        * d
    )
    return len(SEEDS) * per_seed


def theory_flops():
    th = config["theory"]
    dm = sum(d * m for d in th["dims"] for m in th["widths"])
    return th["trials"] * len(th["scales"]) * th["max_steps"] * 4.0 * dm


def theory_mem_mb(wildcards, attempt):
    th = config["theory"]
    big = max(th["dims"]) * max(th["widths"]) * th["trials"] * 4 * 8 / 2**20
    return int((1500 + big) * attempt)


def runtime_min(flops):
    """Wall-time request in minutes: 3x the estimate at GFLOPS per thread, at least 10."""
    return max(10, int(3 * flops / (GFLOPS * 1e9 * config["threads"]) / 60) + 1)


def train_runtime(wildcards, attempt):
    return runtime_min(train_flops()) * attempt


def probe_runtime(wildcards, attempt):
    return runtime_min(probe_flops()) * attempt


def theory_runtime(wildcards, attempt):
    return runtime_min(theory_flops()) * attempt


def data_mem_mb(wildcards, attempt):
    """Dataset held in memory (float32, train + test) plus torch and a margin."""
    return int((1500 + 4 * 1.3 * _n_train() * _input_dim() / 2**20) * attempt)


def light_mem_mb(wildcards, input, attempt):
    """The light rules (tables, notebooks, claims): pandas/matplotlib plus 4x what they read
    (profiles/slurm's default-resources give the same to rules that state none)."""
    return int((1000 + 4 * input.size_mb) * attempt)


def light_runtime(wildcards, input, attempt):
    """Minutes for a light rule: seconds of work in practice, 5 min plus 1 per 100 MB read."""
    return int((5 + input.size_mb / 100) * attempt)


# ---- inputs of the aggregation rules -----------------------------------------------------
def runs_spec(kind):
    """'scale:seed:dir' entries for scripts/aggregate.py, one per (scale, seed)."""
    folder = train_dir if kind == "train" else probe_dir
    return " ".join(f"{s}:{k}:{folder(s, k)}" for s in SCALES for k in SEEDS)


def theory_spec():
    th = config["theory"]
    return " ".join(
        f"{d}:{m}:{theory_dir(d, m)}" for d in th["dims"] for m in th["widths"]
    )


def all_train(name):
    return [f"{train_dir(s, k)}/{name}" for s in SCALES for k in SEEDS]


def all_probe(name):
    return [f"{probe_dir(s, k)}/{name}" for s in SCALES for k in SEEDS]


def all_theory():
    th = config["theory"]
    return [f"{theory_dir(d, m)}/theory.csv" for d in th["dims"] for m in th["widths"]]


def config_json(wildcards):
    """The whole (validated) configuration as one shell-quoted JSON word."""
    import json
    import shlex

    return shlex.quote(json.dumps(config, sort_keys=True))


def nb_params(wildcards, input, output):
    """papermill '-p key value' for every table the notebook reads and every file it writes."""
    ps = [
        f"-p {k} {v}"
        for k, v in input.items()
        if k not in ("notebook", "style", "provenance")
    ]
    ps += [f"-p out_{k} {v}" for k, v in output.items() if k != "provenance"]
    ps.append(f"-p config_name {NAME}")
    return " ".join(ps)


def figure(fig, ext):
    return f"{FIGDIR}/{fig}.{ext}"


def get_final_outputs():
    return [figure(f, e) for f in FIGURES for e in ("pdf", "png")] + [
        f"{FIGDIR}/claims.{e}" for e in ("md", "json")
    ]
