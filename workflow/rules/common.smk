# The Python of the workflow: config validation first, then named helper functions.
# Rules hold no config lookups in their shell commands: everything arrives via params.
import shlex
import shutil
import sys
from pathlib import Path

from adversary_dynamics.pipeline.config import (
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
from adversary_dynamics.pipeline.config import check_config_args, check_config_files
from adversary_dynamics.storage.runio import input_size_mb  # resource functions: no unawaited coroutine in --report

check_config_files(workflow.configfiles)
check_config_args(workflow.config_settings.config_args)  # --config train='{lr: 0.1, lr: 0.2}' too
# a dry run (-n) plans without the dataset files (Snakemake's output settings know it while the workflow is read)
DRYRUN = bool(getattr(workflow.output_settings, "dryrun", False)) or workflow.dryrun
validate_config(config, SCHEMA, check_files=not DRYRUN)

# ---- where this configuration's results go (content-keyed; docs: README "Configurations") ----
# A committed config file (config/*.yaml, tests/workflow/*.yaml) run as it is keeps its plain
# name: results/default/ and figures/ for config/config.yaml, results/<name>/ and figures/<name>/
# for the others. Anything else (--config overrides, a file of one's own, a partial
# --configfile) goes to <name>-<hash8>, the first 8 hex digits of the SHA-256 of the canonical
# JSON of every result-affecting key (adversary_dynamics.pipeline.config.config_digest), so that two
# configurations that differ in such a key never share a folder.
DIGEST = config_digest(config, load_schema(SCHEMA))
NAME = folder_name(
    config,
    SCHEMA,
    base=Path(workflow.basedir) / "config/config.yaml",
    committed=sorted(Path(workflow.basedir).glob("config/*.yaml"))
    + sorted(Path(workflow.basedir).glob("tests/workflow/*.yaml")),
)
RESULTS = f"results/{NAME}"  # the configuration's record: config.json, stages.json
LOGS = f"logs/{NAME}"  # the configuration's own jobs (claims, figure publishing)
BENCH = f"benchmarks/{NAME}"
FIGDIR = "figures" if NAME == "default" else f"figures/{NAME}"
# the whole validated configuration and its digest, written before the first job (onstart)
CONFIG_RECORD = f"{RESULTS}/config.json"
# what each stage was computed from: stage -> its key, folder and record (onstart)
STAGES_RECORD = f"{RESULTS}/stages.json"

# ---- every stage keyed by what it reads (adversary_dynamics.pipeline.stages; README "What reruns") ----------
# A stage's results lie in results/stages/<stage>/<key>/, its logs in logs/stages/<stage>/<key>/ and
# its timings in benchmarks/stages/<stage>/<key>/; the key covers the configuration keys the stage
# declares, the keys of the stages it consumes, the dataset files' content and its code (syntax
# trees: comments do not count). Two configurations that agree on all that share the folder.
from adversary_dynamics.pipeline import stages as stage_registry

KEYED = stage_registry.resolve(
    config,
    schema=load_schema(SCHEMA),
    root=workflow.basedir,
    data_cache=Path(".snakemake/adversary-dynamics/data-fingerprints.json"),
    code_cache=Path(".snakemake/adversary-dynamics/code-fingerprints.json"),
    missing_data_ok=True,
)
# Without the dataset files the data-reading stages are keyed with a placeholder fingerprint (data files
# "missing"), so that a dry run (snakemake -n) and the launcher's --plan still list the jobs; anything
# that would run jobs stops here with the data error (the files expected, the folders searched, how to
# get them), and every data-reading script refuses such a key too (datasets.refuse_placeholder).
DATA_MISSING = any(stage_registry.is_placeholder(k.data) for k in KEYED.values())
if DATA_MISSING:
    if DRYRUN:
        print(
            f"Dry run without the {config['dataset']['name']} files: the data-reading stages' keys use a "
            "placeholder (data files 'missing'); a real run needs the files (docs/datasets.md).",
            file=sys.stderr,
        )
    else:
        stage_registry.data_fingerprint(config["dataset"])  # raises the data error


def record_config():
    """Write {RESULTS}/config.json (the validated configuration, its digest and folder),
    {RESULTS}/stages.json (every stage's key, folder and what the key covers) and
    {RESULTS}/params/<stage>.json (each stage's --params document) unless they already hold exactly
    that; atomic (temporary file, then rename)."""
    import json
    import os

    records = {
        CONFIG_RECORD: {"folder": NAME, "digest": DIGEST, "config": config},
        STAGES_RECORD: {name: k.record() for name, k in KEYED.items()},
        # each stage's --params document, to rerun a job by hand (python scripts/<x>.py --params FILE ...)
        **{f"{RESULTS}/params/{name}.json": json.loads(stage_params(name)) for name in KEYED},
    }
    for where, obj in records.items():
        text = json.dumps(obj, indent=1, sort_keys=True)
        path = Path(where)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def where_results_go():
    """The one line a run prints first: which configuration, and where its results go."""
    return (
        f"Configuration '{config['name']}' (digest {DIGEST[:8]}): figures in {FIGDIR}/, results by stage "
        f"in results/stages/<stage>/<key>/ (which ones: {STAGES_RECORD}), job logs in logs/stages/ "
        f"(the configuration: {CONFIG_RECORD})"
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



LIB = "src/adversary_dynamics"
# the software of every rule, used with --use-conda (relative to workflow/rules/)
CONDA_ENV = "../../environment.yml"


def fmt(x):
    """Canonical text of a number in paths: 0.25 -> '0.25', 1.0 -> '1'."""
    return f"{float(x):g}"


SCALES = [fmt(s) for s in config["scales"]]
SEEDS = [str(s) for s in config["seeds"]]


# ---- a stage's folders and parameters -------------------------------------------------------
def stage_dir(name):
    """results/stages/<stage>/<key>: the folder of stage `name`'s results for this configuration."""
    return KEYED[name].folder


def stage_log(name, file):
    return f"logs/stages/{name}/{KEYED[name].key}/{file}"


def stage_bench(name, file):
    return f"benchmarks/stages/{name}/{KEYED[name].key}/{file}"


def stage_params(name):
    """The stage's parameters as one typed JSON document (`--params` of its script, which keeps it in
    its provenance): its script's arguments from the declared keys, and `_stage`, the stage's record."""
    import json

    k = KEYED[name]
    record = {key: v for key, v in k.record().items() if key != "code"}  # the file list: stages.json
    return json.dumps({**k.args, "_stage": record}, sort_keys=True, allow_nan=False)


def data_location(download=False):
    """Where the dataset files are (`dataset.root`, as typed) and, for the training scripts
    (`download=True`), whether missing ones may be fetched: passed to the data-reading stages beside
    their parameters, not part of their key (the files' content is: the same files elsewhere give
    the same results)."""
    ds = config["dataset"]
    words = [f"--root {shlex.quote(str(ds['root']))}"] if ds["root"] else []
    if download:
        words.append(f"--download {str(bool(ds['download'])).lower()}")
    return " ".join(words)


def figure_tables(fig):
    """The tables of figure `fig`: {table name: path} in its tables stage's folder."""
    return {t: f"{stage_dir(FIGURE_TABLES_STAGE[fig])}/{t}.csv" for t in FIGURE_TABLES[fig]}


# figure -> its tables stage, and the tables the notebook reads (stage_registry: a stage with
# `figure=` and `tables=`; the concern files define the tables rules and figures.smk, included last,
# makes the figures' rules)
FIGURE_TABLES_STAGE = dict(stage_registry.FIGURES)
FIGURE_TABLES = {
    fig: stage_registry.STAGES[stage].tables for fig, stage in FIGURE_TABLES_STAGE.items()
}
FIGURES = list(FIGURE_TABLES)


def train_dir(scale, seed):
    return f"{stage_dir('train')}/scale~{scale}/seed~{seed}"


def probe_dir(scale, seed):
    return f"{stage_dir('probe')}/scale~{scale}/seed~{seed}"


def seed_files(stage, name):
    """The file `name` of every seed's run folder of `stage` (train or probe) at the job's scale."""
    return [f"{stage_dir(stage)}/scale~{{scale}}/seed~{k}/{name}" for k in SEEDS]


def scale_root_of_output(wildcards, output):
    """The scale's folder (parent of the seed~<k>/ folders) of a train or probe job."""
    return str(Path(output[0]).parents[1])


def scale_root_of_input(wildcards, input):
    """The training folder of the scale a probe job reads."""
    return str(Path(input.status[0]).parents[1])


# ---- resources: from a cost model of each stage's work (adversary_dynamics.pipeline.costs) ---------
# runtime = SAFETY x (start-up + FLOPs / measured rate + model calls x per-call cost), on the device kind
# the jobs run on (h200 when they run on a GPU, else one CPU core); mem_mb: torch plus the dataset;
# gpu: 1 on a GPU. The rates, and where each was measured: costs.RATES.
from adversary_dynamics.pipeline import costs

DEVICE_KIND = costs.device_kind(config)


def stage_resources(stage):
    """A compute rule's `resources:` (runtime, mem_mb, gpu) from costs.resources."""
    return costs.resources(stage, config, kind=DEVICE_KIND)


def light_mem_mb(wildcards, input, attempt):
    """The light rules (tables, notebooks, claims): pandas/matplotlib plus 4x what they read
    (profiles/slurm's default-resources give the same to rules that state none)."""
    return int((1000 + 4 * input_size_mb(input)) * attempt)


def light_runtime(wildcards, input, attempt):
    """Minutes for a light rule: seconds of work in practice, 5 min plus 1 per 100 MB read."""
    return int((5 + input_size_mb(input) / 100) * attempt)



# ---- inputs of the aggregation rules -----------------------------------------------------
def runs_spec(stage):
    """'scale:seed:dir' entries for scripts/aggregate.py, one per (scale, seed)."""
    folder = train_dir if stage == "train" else probe_dir
    return " ".join(f"{s}:{k}:{folder(s, k)}" for s in SCALES for k in SEEDS)


def all_runs(stage, name):
    folder = train_dir if stage == "train" else probe_dir
    return [f"{folder(s, k)}/{name}" for s in SCALES for k in SEEDS]


def nb_params(wildcards, input, output):
    """papermill's parameters, as one shell-quoted YAML mapping (`-y`): every table the notebook
    reads, every file it writes (out_<key>) and config_name (here: the tables' stage and key, which
    is what the figure's numbers come from). papermill reads `-y` with a YAML safe loader and
    yaml.safe_dump quotes every string that would read as something else, so each value arrives as
    the text it is ('007' stays '007'; `-p` would have made it the integer 7)."""
    import shlex

    import yaml

    ps = {
        k: str(v)
        for k, v in input.items()
        if k not in ("notebook", "code", "provenance")
    }
    ps.update({f"out_{k}": str(v) for k, v in output.items() if k != "provenance"})
    ps["config_name"] = source_label(input)
    text = yaml.safe_dump(
        ps, default_flow_style=True, sort_keys=True, width=1 << 30
    ).strip()
    return f"-y {shlex.quote(text)}"


def source_label(input):
    """What a figure's subtitle names as its source: the tables stage and its key."""
    folder = Path(input.provenance).parent
    return f"{folder.parent.name}/{folder.name}"


def figure(fig, ext):
    return f"{FIGDIR}/{fig}.{ext}"


def report_claims_agreement():
    """Print whether {FIGDIR}/claims.json agrees with the committed reference (docs/figures/, README
    "Committed reference and your run"); silent where either is missing."""
    from adversary_dynamics.pipeline.publish import agreement

    line = agreement(NAME, reference_root=workflow.basedir)
    if line:
        print(line, file=sys.stderr)


def get_final_outputs():
    return [figure(f, e) for f in FIGURES for e in ("pdf", "png")] + [
        f"{FIGDIR}/claims.{e}" for e in ("md", "json")
    ]


def tables_dir_of_output(wildcards, output):
    """A tables job's output folder (its stage's folder): the folder of its provenance.json."""
    return str(Path(output.provenance).parent)


def run_dir_of_input(wildcards, input):
    """The raw-run folder an escape tables job reads: the folder of its escape.csv."""
    return str(Path(input.escape).parent)


# ---- Theorem 3.1 setting (theory.smk) ----
TH = config["theory"]


# ---- paper Figs. 2-3 (paper_escape.smk) ----
ESC, FIG2, FIG3 = config["paper_escape"], config["paper_fig2"], config["paper_fig3"]

# cross-key checks the schema cannot state (a CNN on data without an image shape, scales or ratios that
# coincide in paths) are made with the schema, before any job runs (adversary_dynamics.pipeline.config)
ESC_SEEDS = [str(s) for s in ESC["seeds"]]
FIG3_SCALES = [fmt(s) for s in FIG3["scales"]]
FIG3_RATIOS = [fmt(r) for r in FIG3["ratios"]]


def fig3_train_dir(scale, ratio, seed):
    return f"{stage_dir('paper_fig3_train')}/scale~{scale}/ratio~{ratio}/seed~{seed}"


def fig3_checkpoint(scale, ratio, seed, epoch):
    return f"{fig3_train_dir(scale, ratio, seed)}/checkpoints/epoch_{int(epoch):04d}.pt"


def fig3_train_root_of_input(wildcards, input):
    """The root of the Fig. 3 training runs (the stage's folder), from a checkpoint
    <root>/scale~s/ratio~r/seed~k/checkpoints/epoch_NNNN.pt of the job's input."""
    return str(Path(input.checkpoints[0]).parents[4])
