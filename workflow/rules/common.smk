# The Python of the workflow: config validation first, then named helper functions.
# Rules hold no config lookups in their shell commands: everything arrives via params.
import shlex
import shutil
import sys
from pathlib import Path

from adversary_dynamics.config import (
    config_digest,
    folder_name,
    load_schema,
    name_as_typed,
    validate_config,
)

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"


name_as_typed(config, workflow.config_settings.config_args)
# a key written twice in a config file (Snakemake's YAML loader keeps the last one without a word):
# refused first, naming the file, the key and both lines (--configfile files, then config/config.yaml)
from adversary_dynamics.config import check_config_files
from adversary_dynamics.runio import input_size_mb  # resource functions: no unawaited coroutine in --report

check_config_files(workflow.configfiles)
validate_config(config, SCHEMA)

# ---- where this configuration's results go (content-keyed; docs: README "Configurations") ----
# A committed config file (config/*.yaml, tests/workflow/*.yaml) run as it is keeps its plain
# name: results/default/ and figures/ for config/config.yaml, results/<name>/ and figures/<name>/
# for the others. Anything else (--config overrides, a file of one's own, a partial
# --configfile) goes to <name>-<hash8>, the first 8 hex digits of the SHA-256 of the canonical
# JSON of every result-affecting key (adversary_dynamics.config.config_digest), so that two
# configurations that differ in such a key never share a folder.
DIGEST = config_digest(config, load_schema(SCHEMA))
NAME = folder_name(
    config,
    SCHEMA,
    base=Path(workflow.basedir) / "config/config.yaml",
    committed=sorted(Path(workflow.basedir).glob("config/*.yaml"))
    + sorted(Path(workflow.basedir).glob("tests/workflow/*.yaml")),
)
RESULTS = f"results/{NAME}"
LOGS = f"logs/{NAME}"
BENCH = f"benchmarks/{NAME}"
TABLES = f"{RESULTS}/tables"
FIGDIR = "figures" if NAME == "default" else f"figures/{NAME}"
# the whole validated configuration and its digest, written before the first job (onstart)
CONFIG_RECORD = f"{RESULTS}/config.json"


def record_config():
    """Write {RESULTS}/config.json (the validated configuration, its digest and folder) unless it
    already holds exactly that; atomic (temporary file, then rename)."""
    import json
    import os

    text = json.dumps(
        {"folder": NAME, "digest": DIGEST, "config": config}, indent=1, sort_keys=True
    )
    path = Path(CONFIG_RECORD)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def where_results_go():
    """The one line a run prints first: which configuration, and where its results go."""
    return (
        f"Configuration '{config['name']}' (digest {DIGEST[:8]}): results in {RESULTS}/, "
        f"figures in {FIGDIR}/, job logs in {LOGS}/ (the configuration: {CONFIG_RECORD})"
    )


def stage_message(stage, what, log="{log}"):
    """A rule's `message:`, one line: the results folder, the stage, the rule's name in brackets
    (a target of `snakemake <name>`), what the job does, and where its log (and progress bar) is.
    The train rule's reads "[default] training (train)", then "adversarial training at scale 4,
    seeds 0,1,2 — log: logs/default/train/scale~4.log".
    `what` and `log` may hold Snakemake's {wildcards.x}, {threads}, {log} placeholders.
    """
    return f"[{NAME}] {stage} ({{rule}}): {what} — log: {log}"


if workflow.is_main_process:
    print(where_results_go(), file=sys.stderr)


def submit_without_guessed_account():
    """profiles/slurm: `slurm_account: ""` (or none set) submits without -A, deterministically.
    The SLURM executor plugin (2.8) instead guesses an account from `sacct`'s records and submits
    with -A <guess> (its --slurm-no-account setting is not consulted). Called by the Snakefile's
    onstart, before the first submission, only when the slurm executor runs this workflow; an
    account that is set goes through the plugin unchanged (checked against sacctmgr, -A).
    """
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    import snakemake_executor_plugin_slurm as slurm

    if getattr(slurm.Executor.get_account_arg, "no_guess", False):
        return
    given = slurm.Executor.get_account_arg

    def get_account_arg(self, job):
        if str(job.resources.get("slurm_account") or "").strip():
            yield from given(self, job)
        else:
            yield ""  # no -A: the cluster's default account for the user, or none

    get_account_arg.no_guess = True
    slurm.Executor.get_account_arg = get_account_arg


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


_IMPORTS = (
    {}
)  # path -> its modules: each file is parsed once per run, not once per rule


def _imported_modules(path):
    """Modules of adversary_dynamics that the Python file at `path` imports, anywhere in it
    (also inside functions: lazy imports count)."""
    key = str(Path(path).resolve())
    if key not in _IMPORTS:
        _IMPORTS[key] = _parse_imports(path)
    return set(_IMPORTS[key])


def _parse_imports(path):
    import ast

    if not Path(path).exists():  # not written yet: the job's missing input says so
        return set()
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(
        ".ipynb"
    ):  # a notebook: its code cells, without IPython's magics
        import json

        cells = json.loads(text)["cells"]
        text = "\n".join(
            line
            for c in cells
            if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines()
            if not line.lstrip().startswith(("%", "!"))
        )
    tree = ast.parse(text, filename=str(path))
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
            parts = (
                mod.split(".")[1:]
                if node.level == 0
                else ([mod.split(".")[0]] if mod else [])
            )
            if parts:
                found.add(parts[0])
            else:  # from adversary_dynamics import x, y / from . import x, y
                found.update(a.name for a in node.names)
    base = Path(workflow.basedir) / LIB
    return {m for m in found if (base / f"{m}.py").exists()}


def script_code(script):
    """The code a job runs: the script (or notebook, notebooks/<x>.ipynb) and every library module
    it imports, directly or through other library modules (derived from the import statements,
    so no edit is missed); editing any of them reruns the job."""
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
    and figures.smk makes the rule <fig> writing {FIGDIR}/<fig>.pdf/.png/.provenance.json.
    """
    FIGURES[fig] = {"tables": dict(tables), "provenance": provenance}


def fig_tables(fig):
    """Folder of one figure's tables."""
    return f"{TABLES}/{fig}"


def train_dir(scale, seed):
    return f"{RESULTS}/train/scale~{scale}/seed~{seed}"


def probe_dir(scale, seed):
    return f"{RESULTS}/probe/scale~{scale}/seed~{seed}"


def seed_files(kind, name):
    """The file `name` of every seed's run folder (kind: train or probe) at the job's scale."""
    return [f"{RESULTS}/{kind}/scale~{{scale}}/seed~{k}/{name}" for k in SEEDS]


def scale_root_of_output(wildcards, output):
    """The scale's folder (parent of the seed~<k>/ folders) of a train or probe job."""
    return str(Path(output[0]).parents[1])


def scale_root_of_input(wildcards, input):
    """The training folder of the scale a probe job reads."""
    return str(Path(input.status[0]).parents[1])


def _dataset_args(n_train="config", n_test="config"):
    """Dataset arguments of the scripts; n_train/n_test override the `dataset:` block's sizes."""
    ds = config["dataset"]
    n_train = ds["n_train"] if n_train == "config" else n_train
    n_test = ds["n_test"] if n_test == "config" else n_test

    def none(v):
        return "none" if v is None else v

    root = (
        f"--root {shlex.quote(str(ds['root']))}" if ds["root"] else ""
    )  # any path, as typed
    return (
        f"--dataset {ds['name']} {root} --n-train {none(n_train)} --n-test {none(n_test)} "
        f"--dim {ds['dim']} --split-seed {ds['split_seed']}"
    )


def _model_args():
    """Model, loss and threat arguments shared by scripts/train.py and scripts/probe.py (--norm is
    also p of the input scale, the mean l_p norm of the training inputs)."""
    mo, cn = config["model"], config.get("cnn", {})
    return (
        f"--architecture {mo.get('architecture', 'two_layer')} "
        f"--width {mo['width']} --activation {mo['activation']} --bias {mo['bias']} "
        f"--train-output-layer {mo['train_output_layer']} --loss {config['loss']} "
        f"--cnn-channels {_ints(cn.get('channels', [16, 32]))} --cnn-kernel-size {cn.get('kernel_size', 5)} "
        f"--cnn-hidden {cn.get('hidden', 128)} "
        f"--ratio {config['threat']['ratio']} --norm {config['threat']['norm']}"
    )


def _ints(xs):
    return ",".join(str(int(x)) for x in xs)


def train_args(wildcards):
    """All CLI arguments of scripts/train.py but the folder, scale and seeds."""
    t, a = config["train"], config["attack"]
    return (
        f"{_dataset_args()} --download {config['dataset']['download']} {_model_args()} "
        f"--epochs {t['epochs']} --batch-size {t['batch_size']} "
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


def runtime_min(flops):
    """Wall-time request in minutes: 3x the estimate at GFLOPS per thread, at least 10."""
    return max(10, int(3 * flops / (GFLOPS * 1e9 * config["threads"]) / 60) + 1)


def train_runtime(wildcards, attempt):
    return runtime_min(train_flops()) * attempt


def probe_runtime(wildcards, attempt):
    return runtime_min(probe_flops()) * attempt


def data_mem_mb(wildcards, attempt):
    """Dataset held in memory (float32, train + test) plus torch and a margin."""
    return int((1500 + 4 * 1.3 * _n_train() * _input_dim() / 2**20) * attempt)


def light_mem_mb(wildcards, input, attempt):
    """The light rules (tables, notebooks, claims): pandas/matplotlib plus 4x what they read
    (profiles/slurm's default-resources give the same to rules that state none)."""
    return int((1000 + 4 * input_size_mb(input)) * attempt)


def light_runtime(wildcards, input, attempt):
    """Minutes for a light rule: seconds of work in practice, 5 min plus 1 per 100 MB read."""
    return int((5 + input_size_mb(input) / 100) * attempt)


# ---- inputs of the aggregation rules -----------------------------------------------------
def runs_spec(kind):
    """'scale:seed:dir' entries for scripts/aggregate.py, one per (scale, seed)."""
    folder = train_dir if kind == "train" else probe_dir
    return " ".join(f"{s}:{k}:{folder(s, k)}" for s in SCALES for k in SEEDS)


def all_train(name):
    return [f"{train_dir(s, k)}/{name}" for s in SCALES for k in SEEDS]


def all_probe(name):
    return [f"{probe_dir(s, k)}/{name}" for s in SCALES for k in SEEDS]


def config_json(wildcards):
    """The whole (validated) configuration as one JSON shell word, read from {RESULTS}/config.json
    when the job runs: the rule's params hold this short text, not the configuration, so a rerun's
    'reason' line stays one line (the folder is content-keyed: its configuration never changes).
    """
    return f'"$(python -c \'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["config"]))\' {CONFIG_RECORD})"'


def nb_params(wildcards, input, output):
    """papermill's parameters, as one shell-quoted YAML mapping (`-y`): every table the notebook
    reads, every file it writes (out_<key>) and config_name (the results folder's name). papermill
    reads `-y` with a YAML safe loader and yaml.safe_dump quotes every string that would read
    as something else, so each value arrives as the text it is ('007' stays '007'; `-p` would
    have made it the integer 7)."""
    import shlex

    import yaml

    ps = {
        k: str(v)
        for k, v in input.items()
        if k not in ("notebook", "code", "provenance")
    }
    ps.update({f"out_{k}": str(v) for k, v in output.items() if k != "provenance"})
    ps["config_name"] = NAME
    text = yaml.safe_dump(
        ps, default_flow_style=True, sort_keys=True, width=1 << 30
    ).strip()
    return f"-y {shlex.quote(text)}"


def figure(fig, ext):
    return f"{FIGDIR}/{fig}.{ext}"


def get_final_outputs():
    return [figure(f, e) for f in FIGURES for e in ("pdf", "png")] + [
        f"{FIGDIR}/claims.{e}" for e in ("md", "json")
    ]


# ---- folders passed to scripts, inferred from a job's own files (not hard-coded prefixes) ----
def tables_dir_of_output(wildcards, output):
    """A tables job's output folder, {TABLES}/<figure> (= fig_tables(<figure>)): the folder of its
    provenance.json."""
    return str(Path(output.provenance).parent)


def run_dir_of_input(wildcards, input):
    """The raw-run folder an escape tables job reads ({RESULTS}/paper_fig2 or
    {RESULTS}/paper_fig3/escape): the folder of its escape.csv."""
    return str(Path(input.escape).parent)


def fig3_train_root_of_input(wildcards, input):
    """{RESULTS}/paper_fig3/train, the root of the Fig. 3 training runs, from a checkpoint
    <root>/scale~s/ratio~r/seed~k/checkpoints/epoch_NNNN.pt of the job's input."""
    return str(Path(input.checkpoints[0]).parents[4])


# ---- Theorem 3.1 setting (theory.smk; TH = config["theory"] is defined there) ----
def _csv(xs):
    return ",".join(fmt(x) for x in xs)


def theory_cli_args():
    """All arguments of scripts/theory.py but the output folder (config `theory:`)."""
    contrast = TH["contrast_activation"] or "none"
    return (
        f"--dims {_csv(TH['dims'])} --width-powers {_csv(TH['width_powers'])} "
        f"--activation {TH['activation']} --contrast-activation {contrast} --scales {_csv(TH['scales'])} "
        f"--eps-factor {TH['eps_factor']!r} --eta-fractions {_csv(TH['eta_fractions'])} --trials {TH['trials']} "
        f"--max-steps {TH['max_steps']} --refine-factor {TH['refine_factor']!r} --refine-tol {TH['refine_tol']!r} "
        f"--maxima-dims {_csv(TH['maxima_dims'])} --maxima-ratios {_csv(TH['maxima_ratios'])} "
        f"--maxima-trials {TH['maxima_trials']} --maxima-restarts {TH['maxima_restarts']} "
        f"--maxima-steps {TH['maxima_steps']} --maxima-step {TH['maxima_step']!r} --maxima-tol {TH['maxima_tol']!r} "
        f"--maxima-merge {TH['maxima_merge']!r} --hessian-descent {TH['hessian_descent']} --seed {TH['seed']} "
        f"--device {config['device']} "
        f"--threads {config['threads']}"
    )


def theory_job_minutes(wildcards, attempt):
    """Wall-time request: the default sweep takes ~10 s of CPU; scale by the largest d·m·trials·steps."""
    big = (
        max(d**3.5 for d in TH["dims"])
        * TH["trials"]
        * len(TH["eta_fractions"])
        * TH["max_steps"]
    )
    return max(10, int(big * len(TH["scales"]) * 40 / 5e9 / 60) + 1) * attempt


# ---- paper Fig. 1 (paper_fig1.smk; P1 = config["paper_fig1"] is defined there) ----
def _floats(xs):
    """Exact decimal text of a list of numbers (no rounding: these never enter paths)."""
    return ",".join(repr(float(x)) for x in xs)


def paper_fig1_args():
    """All arguments of scripts/paper_fig1.py but the output folder and the configuration."""
    return (
        f"--scales {_floats(P1['scales'])} --ratios {_floats(P1['ratios'])} --width {P1['width']} "
        f"--seed {P1['seed']} --n-points {P1['n_points']} --data-seed {P1['data_seed']} "
        f"--label-rule {P1['label_rule']} --example {P1['example']} --grid {P1['grid']} --steps {P1['steps']} "
        f"--step-size {P1['step_size']!r} --init-seed {P1['init_seed']} "
        f"--maxima-ratios {_floats(P1['maxima_ratios'])} --maxima-examples {P1['maxima_examples']} "
        f"--restarts {P1['restarts']} --maxima-steps {P1['maxima_steps']} "
        f"--maxima-step-fraction {P1['maxima_step_fraction']!r} --maxima-phases {P1['maxima_phases']} "
        f"--cos-threshold {P1['cos_threshold']!r} --circle-points {P1['circle_points']} --threads 1"
    )


# ---- paper Figs. 2-3 (paper_escape.smk; ESC, FIG2, FIG3, ESC_SEEDS, FIG3_EPOCHS are defined there) ----
def fig3_train_dir(scale, ratio, seed):
    return f"{RESULTS}/paper_fig3/train/scale~{scale}/ratio~{ratio}/seed~{seed}"


def fig3_checkpoint(scale, ratio, seed, epoch):
    return f"{fig3_train_dir(scale, ratio, seed)}/checkpoints/epoch_{int(epoch):04d}.pt"


def _escape_model_args():
    cn = config["cnn"]
    return (
        f"--architecture {ESC['architecture']} --cnn-channels {_ints(cn['channels'])} "
        f"--cnn-kernel-size {cn['kernel_size']} --cnn-hidden {cn['hidden']} --loss {ESC['loss']}"
    )


def escape_args(fig):
    """scripts/escape.py run's arguments of one figure (all but folders)."""
    d, c = ESC["descent"], ESC["check"]
    f = FIG2 if fig == "fig2" else FIG3
    n_train = (
        config["dataset"]["n_train"] if fig == "fig2" else FIG3["train"]["n_train"]
    )
    extra = (
        f"--input-normalization {FIG2['input_normalization']}"
        if fig == "fig2"
        else f"--checkpoints {_ints(sorted(FIG3['checkpoints']))}"
    )
    return (
        f"{_dataset_args(n_train, config['dataset']['n_test'])} {_escape_model_args()} --norm l2 "
        f"--scales {','.join(fmt(s) for s in f['scales'])} --ratios {','.join(fmt(r) for r in f['ratios'])} "
        f"--seeds {','.join(ESC_SEEDS)} --n-inputs {ESC['n_inputs']} --steps {ESC['steps']} "
        f"--step-size {ESC['step_size']} --descent-steps {d['steps']} --descent-step-size {d['step_size']} "
        f"--descent-stages {d['stages']} --check-directions {c['directions']} --check-radius {c['radius']} "
        f"--check-mapping-step {c['mapping_step']} --check-gtol {c['gtol']} --check-ftol {c['ftol']} "
        f"--rtol {ESC['escape_rtol']} {extra} --device {config['device']} --threads {config['threads']}"
    )


def fig3_train_args(wildcards):
    t = FIG3["train"]
    ds = config["dataset"]
    return (
        f"{_dataset_args(t['n_train'], t['n_test'])} "
        f"--download {ds['download']} {_escape_model_args()} --ratio {wildcards.ratio} --norm l2 "
        f"--epochs {FIG3_EPOCHS} --batch-size {t['batch_size']} --optimizer {t['optimizer']} --lr {t['lr']} "
        f"--lr-scale-power 0 --momentum 0 --attack-steps {t['attack_steps']} "
        f"--attack-step-size {t['attack_step_size']} --attack-gradient raw --attack-init uniform_ball "
        f"--eval-steps {t['eval_steps']} --eval-restarts {t['eval_restarts']} "
        f"--checkpoints {_ints(sorted(FIG3['checkpoints']))} --batch-seeds false --progress true "
        f"--device {config['device']} --threads {config['threads']}"
    )


def escape_runtime(fig):
    """Minutes for a probe job: 3x (models x ratios x inputs x steps) at 100 us per example-step
    and a 1 ms per-step floor per model call, at least 10."""
    f = FIG2 if fig == "fig2" else FIG3
    steps = ESC["steps"] + ESC["descent"]["steps"]
    calls = (
        len(f["scales"])
        * len(ESC_SEEDS)
        * (1 if fig == "fig2" else len(f["ratios"]) * len(f["checkpoints"]))
    )
    ex = (
        len(f["scales"])
        * len(f["ratios"])
        * len(ESC_SEEDS)
        * ESC["n_inputs"]
        * (1 if fig == "fig2" else len(f["checkpoints"]))
    )
    sec = steps * (ex * 1e-4 + calls * 1e-3) / config["threads"]
    return lambda wildcards, attempt: max(10, int(3 * sec / 60) + 1) * attempt


# ---- claims (claims.smk; CLAIM_TABLES is defined there) ----
def _registered_table(fig, key):
    """The path of table `key` of figure `fig` if the figure is registered, else None."""
    return FIGURES.get(fig, {}).get("tables", {}).get(key)


def claims_table_args(wildcards, input):
    return " ".join(
        f"--{k.replace('_', '-')} {input[k] if k in input.keys() else 'none'}"
        for k in CLAIM_TABLES
    )
