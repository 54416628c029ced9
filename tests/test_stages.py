"""The stage registry (adversary_dynamics.pipeline.stages): a change reruns exactly the stages that read it.

Fast tests resolve the stage keys of configurations directly (no Snakemake); the slow ones run the
tiny configuration for real and check Snakemake's plan (dry runs) after each change, a stale-result
case (theory.trials 12 -> 6: the theory stage reruns into a new folder, the old one stays) and a data
swap (MNIST-format files changed under the same root reruns the data stages; the same files under
another root reuse them and overwrite nothing)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adversary_dynamics.pipeline import config as cfgmod
from adversary_dynamics.pipeline import stages

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
sys.path.insert(0, str(Path(__file__).parent))
from workflow_copy import copy_workflow  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _config(path: Path = ROOT / "config/config.yaml", **over) -> dict:
    cfg = cfgmod._load_yaml(path)
    if path != ROOT / "config/config.yaml":
        cfg = cfgmod.merge_config(cfgmod._load_yaml(ROOT / "config/config.yaml"), cfg)
    cfg = cfgmod.merge_config(cfg, over)
    return cfgmod.validate_config(cfg, SCHEMA, check_files=False, cuda_available=True)


def _keys(cfg: dict, root: Path = ROOT) -> dict[str, str]:
    return {n: k.key for n, k in stages.resolve(cfg, schema=cfgmod.load_schema(SCHEMA), root=root).items()}


def _changed(a: dict, b: dict) -> set[str]:
    return {n for n in a if a[n] != b[n]}


FIG2 = {"paper_fig2_escape_run", "paper_fig2_escape_by_scale_tables", "paper_fig2_escape_by_scale"}
FIG3_PROBES = {"paper_fig3_escape_run", "paper_fig3_escape_during_training_tables", "paper_fig3_escape_during_training"}
EXT_TRAIN = {"train", "probe", "ext_pga_convergence_tables", "ext_pga_convergence", "ext_training_convergence_tables",
             "ext_training_convergence", "ext_landscape_statistics_tables", "ext_landscape_statistics"}
EXT_STEP = {"ext_step_rule_tables", "ext_step_rule"}

#: the issue's rerun table: a change -> the stages that depend on it (and nothing else)
RERUN_TABLE = [
    ("claims-threshold", {"claims": {"min_fraction": 0.8}}, {"claims"}),
    ("escape-inputs", {"paper_escape": {"n_inputs": 8}}, FIG2 | FIG3_PROBES | EXT_STEP | {"claims"}),
    # T5's bootstrap: the claims and T5 under each step rule (ext_step_rule's table)
    ("claims-bootstrap", {"claims": {"bootstrap": 500}}, EXT_STEP | {"claims"}),
    ("step-rule-c", {"ext_step_rule": {"normalized_step": 0.02}}, EXT_STEP | {"claims"}),
    ("theory-trials", {"theory": {"trials": 6}}, {"theory", "ext_theory", "claims"}),
    ("fig3-training", {"paper_fig3": {"train": {"lr": 0.02}}}, {"paper_fig3_train"} | FIG3_PROBES | {"claims"}),
    # fewer ratios: the remaining models are the same runs (one training job per (scale, ratio))
    ("fig3-ratios", {"paper_fig3": {"ratios": [0.1, 1]}}, FIG3_PROBES | {"claims"}),
    ("train-threshold", {"train": {"threshold": 0.4}},
     {"ext_training_convergence_tables", "ext_training_convergence", "claims"}),
    ("probe-budget", {"probe": {"max_steps": 100}},
     EXT_TRAIN - {"train", "ext_training_convergence_tables", "ext_training_convergence"} | {"claims"}),
    ("name-only", {"name": "renamed"}, set()),
    ("threads", {"threads": 2}, EXT_TRAIN | FIG2 | FIG3_PROBES | EXT_STEP | {"paper_fig3_train", "theory", "ext_theory",
                                                                           "claims"}),
]


@pytest.mark.parametrize("label, over, expected", RERUN_TABLE, ids=[r[0] for r in RERUN_TABLE])
def test_a_change_reruns_exactly_the_stages_that_read_it(label, over, expected):
    assert _changed(_keys(_config()), _keys(_config(**over))) == expected


def test_every_stage_is_keyed_and_configurations_that_agree_share_keys():
    a, b = _keys(_config()), _keys(_config())
    assert a == b and set(a) == set(stages.all_stages())
    assert all(re.fullmatch(r"[0-9a-f]{%d}" % stages.KEY_LENGTH, k) for k in a.values())
    # a --configfile that changes only Fig. 3 reuses every other stage (Fig. 2, theory, extensions)
    fig3 = _keys(_config(paper_fig3={"checkpoints": [0, 5, 10]}))
    assert _changed(a, fig3) == {"paper_fig3_train"} | FIG3_PROBES | {"claims"}


def test_an_args_builder_cannot_read_an_undeclared_key(monkeypatch):
    st = stages.STAGES["theory"]
    planted = stages.Stage(st.name, reads=("theory",), script=st.script, args=lambda c: {"threads": c["threads"]})
    monkeypatch.setitem(stages.STAGES, "theory", planted)
    with pytest.raises(stages.UndeclaredKey, match=r"stage 'theory' reads config key 'threads'.*does not declare"):
        stages.resolve(_config(), schema=cfgmod.load_schema(SCHEMA), root=ROOT, only={"theory"})


def test_every_declared_key_exists_in_the_schema_and_the_default():
    schema = cfgmod.load_schema(SCHEMA)
    cfg = _config()
    for st in stages.all_stages().values():
        for dotted in st.reads:
            node, sch = cfg, schema
            for part in dotted.split("."):
                assert part in node, f"{st.name}: {dotted}"
                assert part in sch.get("properties", {}), f"{st.name}: {dotted} not in the schema"
                node, sch = node[part], sch["properties"][part]


def _copy_code(dst: Path) -> Path:
    copy_workflow(dst)
    return dst


def test_a_comment_reruns_nothing_and_a_code_change_reruns_the_stages_that_run_it(tmp_path):
    work = _copy_code(tmp_path / "w")
    base = _keys(_config(), root=work)
    lib = work / "src/adversary_dynamics/learning/training.py"
    text = lib.read_text(encoding="utf-8")
    lib.write_text(text + "\n# a comment, and the formatting of nothing else\n", encoding="utf-8")
    assert _changed(base, _keys(_config(), root=work)) == set()
    lib.write_text(text + "\n\ndef _a_new_helper():\n    return 1\n", encoding="utf-8")
    changed = _changed(base, _keys(_config(), root=work))
    # training.py is run by the two training stages only; everything downstream of them reruns,
    # not theory, not Fig. 1, not Fig. 2
    assert changed == EXT_TRAIN | {"paper_fig3_train"} | FIG3_PROBES | {"claims"}
    assert not changed & ({"theory", "ext_theory", "paper_fig1_landscapes_tables", "paper_fig1_landscapes"} | FIG2)
    # a notebook edit reruns that figure only
    nb = work / "notebooks/ext_theory.ipynb"
    doc = json.loads(nb.read_text(encoding="utf-8"))
    cell = next(c for c in doc["cells"] if c["cell_type"] == "code")
    cell["source"] = ["_unused = 1\n"] + list(cell["source"] if isinstance(cell["source"], list) else [cell["source"]])
    nb.write_text(json.dumps(doc), encoding="utf-8")
    assert _changed(base, _keys(_config(), root=work)) - changed == {"ext_theory"}


def _write_mnist(folder: Path, seed: int) -> None:
    from test_datasets import balanced_labels, write_idx

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, arr in {"train-images-idx3-ubyte": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
                      "train-labels-idx1-ubyte": balanced_labels(40, 2),
                      "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
                      "t10k-labels-idx1-ubyte": balanced_labels(20, 4)}.items():
        write_idx(folder / name, arr)


def test_the_data_fingerprint_follows_the_files_content_not_their_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write_mnist(a, seed=1)
    shutil.copytree(a, b)
    cache = tmp_path / "cache.json"
    fa = stages.data_fingerprint({"name": "mnist", "root": str(a)}, cache_file=cache)
    assert fa == stages.data_fingerprint({"name": "mnist", "root": str(b)}, cache_file=cache)
    assert len(json.loads(cache.read_text())) == 8  # four files in two folders, remembered by path
    _write_mnist(a, seed=7)  # other files under the same root
    assert stages.data_fingerprint({"name": "mnist", "root": str(a)}, cache_file=cache) != fa


def test_data_stages_are_keyed_by_the_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write_mnist(a, seed=1)
    shutil.copytree(a, b)
    mnist = {"dataset": {"name": "mnist", "root": str(a), "n_train": 40, "n_test": 20},
             "model": {"architecture": "two_layer"}}
    first = _keys(_config(**mnist))
    assert first == _keys(_config(**{**mnist, "dataset": {**mnist["dataset"], "root": str(b)}}))
    _write_mnist(a, seed=7)
    swapped = _keys(_config(**mnist))
    data_stages = {n for n, s in stages.STAGES.items() if s.data}
    assert data_stages <= _changed(first, swapped)
    assert not _changed(first, swapped) & {"theory", "ext_theory", "paper_fig1_landscapes_tables"}


# ---- the workflow: dry runs after a real run of the tiny configuration -------------------------
TINY = "tests/workflow/config.yaml"


def _smk(work: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + list(args), cwd=work, env=ENV, capture_output=True, text=True, timeout=timeout)


def _planned(out: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count (empty when nothing is to be done)."""
    table, rows = False, {}
    for line in out.splitlines():
        if line.startswith("job ") and "count" in line:
            table = True
            continue
        if table:
            m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                rows[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total") or not line.strip():
                if rows:
                    break
    return rows


PUBLISHED = set(stages.FIGURES)  # every registered figure's publishing rule


def _compute(plan: dict[str, int]) -> set[str]:
    """The stages a plan computes: rules other than `all` and the figures' publishing copies
    (the rule named after a figure copies it into figures/<name>/); a figure's notebook rule is the
    figure's stage."""
    return {r.removesuffix("_notebook") for r in plan if r != "all" and r not in PUBLISHED}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("stages") / "w")
    res = _smk(work, "--cores", "2", "--configfile", TINY)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work


WORKFLOW_TABLE = [
    ("claims-threshold", ["--config", "claims={min_fraction: 0.8}"], {"claims"}),
    ("escape-inputs", ["--config", "paper_escape={n_inputs: 3}"], FIG2 | FIG3_PROBES | EXT_STEP | {"claims"}),
    ("theory-trials", ["--config", "theory={trials: 3}"], {"theory", "ext_theory", "claims"}),
    ("fig3-only", ["--config", "paper_fig3={checkpoints: [0, 3]}"],
     {"paper_fig3_train"} | FIG3_PROBES | {"claims"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("label, extra, expected", WORKFLOW_TABLE, ids=[r[0] for r in WORKFLOW_TABLE])
def test_dry_run_plans_exactly_the_stages_that_depend_on_a_change(tiny_run, label, extra, expected):
    res = _smk(tiny_run, "-n", "--cores", "2", "--configfile", TINY, *extra)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    plan = _planned(res.stdout + res.stderr)
    assert _compute(plan) == expected, plan
    # the other figures are only copied into the new configuration's folder
    assert set(plan) - {"all"} - {r + "_notebook" for r in PUBLISHED} - expected <= PUBLISHED


@pytest.mark.slow
def test_unchanged_configuration_plans_nothing_and_a_comment_reruns_nothing(tiny_run):
    res = _smk(tiny_run, "-n", "--cores", "2", "--configfile", TINY)
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-2000:]
    lib = tiny_run / "src/adversary_dynamics/attack/driver.py"
    text = lib.read_text(encoding="utf-8")
    try:
        lib.write_text(text + "\n# only a comment\n", encoding="utf-8")
        res = _smk(tiny_run, "-n", "--cores", "2", "--configfile", TINY)
        assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-2000:]
    finally:
        lib.write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_stale_theory_results_are_never_reused_and_never_overwritten(tiny_run):
    """theory.trials 12, then 6: the theory stage reruns into a new folder; the first stays."""
    def stages_json(name):
        return json.loads((tiny_run / f"results/{name}/stages.json").read_text())

    runs, kept = {}, None
    for trials in (12, 6):
        res = _smk(tiny_run, "--cores", "2", "theory", "--configfile", TINY, "--config", f"theory={{trials: {trials}}}",
                   "name=trials", timeout=300)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        records = [stages_json(p.parent.name)["theory"] for p in (tiny_run / "results").glob("trials-*/stages.json")]
        runs[trials] = next(r["folder"] for r in records if r["reads"]["theory"]["trials"] == trials)
        if trials == 12:
            kept = (tiny_run / runs[12] / "pga.csv").read_bytes()
    assert runs[12] != runs[6]
    for trials, folder in runs.items():
        prov = json.loads((tiny_run / folder / "provenance.json").read_text())
        assert prov["config"]["reads"]["theory"]["trials"] == trials
    # the first results were not touched by the second run
    assert (tiny_run / runs[12] / "pga.csv").read_bytes() == kept


@pytest.mark.slow
def test_a_data_swap_reruns_the_data_stages_and_another_root_overwrites_nothing(tmp_path):
    work = copy_workflow(tmp_path / "w")
    a, b = tmp_path / "data/a", tmp_path / "data/b"
    _write_mnist(a, seed=1)
    cfg = work / "mnist.yaml"
    base = cfgmod._load_yaml(work / TINY)
    base.update(name="tinymnist", dataset={"name": "mnist", "root": str(a), "n_train": 40, "n_test": 20,
                                           "download": False, "dim": 64, "split_seed": 0})
    base["paper_fig2"] = {**base["paper_fig2"], "scales": [0.1]}
    cfg.write_text(json.dumps(base), encoding="utf-8")
    target = "paper_fig2_escape_by_scale_tables"
    res = _smk(work, "--cores", "2", target, "--configfile", "mnist.yaml", timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    record = next((work / "results").glob("tinymnist*/stages.json"))  # tinymnist-<hash8>: a file of our own
    first = json.loads(record.read_text())["paper_fig2_escape_run"]["folder"]
    escape = (work / first / "escape.csv").read_bytes()
    # the same files under another root: nothing to do, nothing overwritten
    shutil.copytree(a, b)
    moved = dict(base, dataset={**base["dataset"], "root": str(b)})
    (work / "moved.yaml").write_text(json.dumps(moved), encoding="utf-8")
    res = _smk(work, "-n", "--cores", "2", target, "--configfile", "moved.yaml")
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:]
    # other files under the same root: the data stages run again, into a new folder
    _write_mnist(a, seed=7)
    res = _smk(work, "-n", "--cores", "2", target, "--configfile", "mnist.yaml")
    assert _compute(_planned(res.stdout + res.stderr)) == {"paper_fig2_escape_run", target}, res.stdout[-3000:]
    res = _smk(work, "--cores", "2", target, "--configfile", "mnist.yaml", timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    second = json.loads(record.read_text())["paper_fig2_escape_run"]["folder"]
    assert second != first and (work / first / "escape.csv").read_bytes() == escape
    prov = json.loads((work / second / "provenance.json").read_text())
    assert prov["config"]["data"]["files"] != json.loads((work / first / "provenance.json").read_text())["config"]["data"]["files"]


def test_readme_adding_a_figure_names_the_places_a_figure_touches():
    """README's "Adding a figure" list is what every registered figure has: a tables stage in the
    registry (with its tables), a rule of that name, a schema section for what it reads, a notebook
    with one parameter per table, and a caption."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Adding a figure", 1)[1].split("\n## ", 1)[0]
    for place in ("src/adversary_dynamics/pipeline/stages.py", "STAGES", "tables=(...)", "workflow/rules/*.smk",
                  "workflow/schemas/config.schema.yaml", "config/config.yaml", "notebooks/ext_myfigure.ipynb",
                  "workflow/report/ext_myfigure.rst", "stage_params", "CLAIM_TABLES"):
        assert place in section, place
    schema = cfgmod.load_schema(SCHEMA)["properties"]
    rules = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "workflow/rules").glob("*.smk"))
    for fig, stage_name in stages.FIGURES.items():
        st = stages.STAGES[stage_name]
        assert st.tables, fig
        assert (ROOT / f"workflow/report/{fig}.rst").is_file(), fig
        nb = json.loads((ROOT / f"notebooks/{fig}.ipynb").read_text(encoding="utf-8"))
        params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1, fig
        text = "".join(params[0]["source"])
        for table in st.tables:
            assert re.search(rf"^{table}\s*=", text, re.M), (fig, table)
        assert stage_name in rules or "_tables" in stage_name and "{_fig}_tables" in rules or stage_name == "theory"
        for dotted in st.reads:
            assert dotted.split(".")[0] in schema, (fig, dotted)


def test_the_claims_tables_of_the_registry_are_the_claims_own():
    """The registry names the same nine tables as the claims (one list: claims.TABLES), without
    importing the claims (and pandas) when the workflow is read."""
    from adversary_dynamics import claims

    assert stages.CLAIM_TABLES == {k: (t.figure, t.table) for k, t in claims.TABLES.items()}
