"""Safe by default (issue 12): no configuration overwrites another (a configuration's own record and
figures are in <name>-<hash8>/, its stages in results/stages/<stage>/<key>/, keyed by what they read),
every value reaches its notebook or script as the text it is, every code edit reruns the jobs that run it
(a new stage key) and a comment does not, an empty SLURM account submits without -A, and the user sees
which stage runs and where its log is.

Everything goes through the real ``snakemake`` command line in a temporary copy of the workflow
(dry runs, or ``--touch``, which runs no job; marked slow: about a minute together), except the
checks of the folder rule itself (:func:`adversary_dynamics.pipeline.config.folder_name`,
:func:`config_digest`) and of the code the stage keys cover, which are direct (seconds).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from adversary_dynamics.pipeline import stages as stage_registry
from adversary_dynamics.pipeline.config import (NON_RESULT_KEYS, config_digest, folder_name, load_schema, merge_config,
                                       validate_config)
from workflow_copy import ROOT, copy_workflow, stage_record

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = load_schema(SCHEMA_PATH)
BASE = ROOT / "config" / "config.yaml"
COMMITTED = sorted(ROOT.glob("config/*.yaml")) + sorted(ROOT.glob("tests/workflow/*.yaml"))
TINY = "tests/workflow/config.yaml"
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("safety"))


def _snakemake(work: Path, *args: str, timeout: int = 120, env=None) -> tuple[int, str]:
    """Exit status and everything printed (Snakemake 9 logs to stdout in dry runs, else stderr)."""
    r = subprocess.run(SNAKEMAKE + list(args), cwd=work, capture_output=True, text=True, timeout=timeout,
                       env={**ENV, "PYTHONPATH": str(work / "src"), **(env or {})})
    return r.returncode, r.stdout + r.stderr


def _dry(work: Path, *args: str) -> str:
    rc, out = _snakemake(work, "-n", "-p", "--cores", "2", *args)
    assert rc == 0, out[-4000:]
    return out


def _commands(out: str) -> list[str]:
    """The shell commands a dry run with -p prints."""
    return [ln.split("Shell command: ", 1)[1] if "Shell command: " in ln else ln.strip()
            for ln in out.splitlines()
            if "Shell command: " in ln or ln.lstrip().startswith(("python ", "exec python", "papermill "))]


def _params_docs(out: str) -> list[tuple[str, dict]]:
    """(command, its --params document) of every command of a dry run that passes one."""
    docs = []
    for c in _commands(out):
        argv = shlex.split(c)
        if "--params" in argv:
            docs.append((c, json.loads(argv[argv.index("--params") + 1])))
    return docs


@pytest.fixture(scope="module")
def odd(work, tmp_path_factory):
    """One dry run of the tiny configuration named 007 whose dataset root holds a space, a quote
    and a $ (digits ignore the root): (its output, the root)."""
    tmp = tmp_path_factory.mktemp("odd")
    cfg = yaml.safe_load((ROOT / TINY).read_text())
    cfg["name"] = "007"
    cfg["dataset"]["root"] = root = str(tmp / "my data") + "/it's $HOME"
    f = tmp / "odd.yaml"
    f.write_text(yaml.safe_dump(cfg))
    assert "'007'" in f.read_text()
    return _dry(work, "--configfile", str(f)), root


def _folder(out: str) -> str:
    """The configuration's own folder (results/<folder>/stages.json, figures/<folder>/), as the run says."""
    m = re.search(r"\(which ones: results/([^/\s]+)/stages\.json\)", out)
    assert m, f"the run does not say where its results go:\n{out[:3000]}"
    return m.group(1)


STAGE_PATH = re.compile(r"\b(?:results|logs|benchmarks)/stages/(\w+)/([0-9a-f]{12})/")


def _planned_keys(out: str) -> dict[str, set[str]]:
    """stage -> the keys of its folders (results/, logs/, benchmarks/stages/<stage>/<key>/) a dry run names."""
    keys: dict[str, set[str]] = {}
    for stage, key in STAGE_PATH.findall(out):
        keys.setdefault(stage, set()).add(key)
    return keys


def _keys(cfg: dict) -> dict[str, str]:
    """stage -> its key for a validated configuration (the registry, on the checkout's code and data)."""
    return {name: k.key for name, k in stage_registry.resolve(cfg, schema=SCHEMA, root=ROOT).items()}


def _paths(out: str) -> set[str]:
    """Every results/, figures/ and logs/ path a dry run plans to write or names."""
    # not src/adversary_dynamics/figures/*.py (the figures subpackage, named in the stages' records)
    return set(re.findall(r"(?<![\w/])((?:results|figures|logs|benchmarks)/[^\s,;'\"]+)", out))


def _validated(over: dict, base_file: Path = BASE) -> dict:
    base = yaml.safe_load(base_file.read_text())
    return validate_config(merge_config(base, over), SCHEMA_PATH, check_files=False, cuda_available=True)


def _name_of(cfg: dict) -> str:
    return folder_name(cfg, SCHEMA_PATH, base=BASE, committed=COMMITTED)


# ---- fault 1: one configuration overwrites another -----------------------------------------------
# the stages downstream of the two-layer nets' training (train.* keys), and of the theory (theory.*)
AFTER_TRAIN = {"train", "probe", "ext_pga_convergence_tables", "ext_training_convergence_tables",
               "ext_landscape_statistics_tables", "ext_pga_convergence", "ext_training_convergence",
               "ext_landscape_statistics", "claims"}
AFTER_THEORY = {"theory", "ext_theory", "claims"}


def _assert_own_folder(out: str, name: str, cfg: dict, base: dict, changed: set[str]) -> str:
    """The dry run ``out`` of configuration ``cfg`` (validated) writes its record and figures into
    <name>-<hash8>/ only, and its stages into results/stages/<stage>/<key>/ with the registry's keys of
    ``cfg``: exactly the stages ``changed`` get keys other than those of ``base`` (new folders, nothing
    of base's overwritten); every other stage keeps base's key (shared: it reads nothing that changed)."""
    folder = _folder(out)
    assert re.fullmatch(re.escape(name) + r"-[0-9a-f]{8}", folder), folder
    paths = _paths(out)
    assert paths, out[:3000]
    outside = {p for p in paths if p.split("/")[1] not in (folder, "stages")}
    assert not outside, f"planned outside results|figures|logs/{folder}/ and */stages/: {sorted(outside)[:10]}"
    keys, base_keys = _keys(cfg), _keys(base)
    planned = _planned_keys(out)
    assert planned and set(planned) <= set(keys), sorted(planned)
    for stage, ks in planned.items():  # every stage folder planned is the registry's for cfg
        assert ks == {keys[stage]}, (stage, ks, keys[stage])
    assert {s for s in keys if keys[s] != base_keys[s]} == changed, sorted(s for s in keys if keys[s] != base_keys[s])
    assert changed <= set(planned), sorted(changed - set(planned))
    return folder


@pytest.mark.slow
def test_command_line_override_gets_its_own_folder(work):
    """The README's `--config train='{lr: 0.05}'` keeps name: default but must not write into
    results/default/ or the default's figures/ (and never docs/figures/, the committed reference)."""
    lr = yaml.safe_load(BASE.read_text())["train"]["lr"]
    out = _dry(work, "--config", f"train={{lr: {lr / 2}}}")
    cfg = _validated({"train": {"lr": lr / 2}})
    folder = _assert_own_folder(out, "default", cfg, _validated({}), AFTER_TRAIN)
    assert folder == _name_of(cfg)
    # the committed file's own value, typed again: the same content, the committed folder
    assert _name_of(_validated({"train": {"lr": str(lr)}})) == "default"


@pytest.mark.slow
def test_partial_configfile_gets_its_own_folder(work, tmp_path):
    """A --configfile holding only a smaller theory: block (no name)."""
    part = tmp_path / "theory_only.yaml"
    part.write_text("theory:\n  trials: 4\n")
    out = _dry(work, "--configfile", str(part))
    _assert_own_folder(out, "default", _validated({"theory": {"trials": 4}}), _validated({}), AFTER_THEORY)


@pytest.mark.slow
def test_committed_name_on_other_content_gets_its_own_folder(work):
    """Naming a run after a committed configuration does not give it that configuration's folder."""
    out = _dry(work, "--configfile", TINY, "--config", "name=fashion-mnist")
    # (issue 19) the tiny run uses digits: the folder does not claim fashion-mnist's dataset; no stage
    # reads the name, so every stage is the tiny configuration's own (shared, nothing recomputed)
    tiny = yaml.safe_load((ROOT / TINY).read_text())
    _assert_own_folder(out, "digits", _validated(dict(tiny, name="fashion-mnist")), _validated(tiny), set())


@pytest.mark.slow
def test_no_rule_writes_the_committed_reference(work):
    """(issue 18) docs/figures/ is the committed reference that README.md shows and tests/test_readme.py
    reads; the workflow never writes it. Every output file of the default's whole DAG (`--summary`
    lists them all) lies under results/ or figures/ (which git ignores: tests/test_reference.py)."""
    rc, out = _snakemake(work, "--summary", "--cores", "2")
    assert rc == 0, out[-4000:]
    lines = out.splitlines()
    files = [ln.split("\t")[0] for ln in lines[lines.index(next(ln for ln in lines if ln.startswith("output_file\t"))) + 1:]
             if "\t" in ln]
    assert "figures/claims.json" in files and "figures/paper_fig2_escape_by_scale.png" in files, files[:30]
    assert all(f.startswith(("results/", "figures/")) for f in files), [f for f in files if not f.startswith(("results/", "figures/"))]
    assert not [f for f in files if f.startswith("docs/")]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_configs_keep_their_plain_names(path):
    raw = yaml.safe_load(path.read_text())
    cfg = _validated({} if path == BASE else raw)
    assert _name_of(cfg) == raw["name"]
    # one changed result-affecting key, or the same content under another name: a folder of its own
    other = copy.deepcopy(cfg)
    other["threads"] += 1
    assert _name_of(other) == f"{raw['name']}-{config_digest(other, SCHEMA)[:8]}"
    renamed = dict(cfg, name="mine")
    assert _name_of(renamed) == f"mine-{config_digest(cfg, SCHEMA)[:8]}"


def _leaves(d: dict, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, prefix + (k,))
        else:
            yield prefix + (k,)


def test_every_result_affecting_key_changes_the_digest():
    """Each key but NON_RESULT_KEYS enters the digest; equal content in another spelling does not
    change it (integral numbers where the schema expects numbers)."""
    cfg = _validated({})
    d0 = config_digest(cfg, SCHEMA)
    leaves = list(_leaves(cfg))
    assert len(leaves) > 40 and ("threads",) in leaves and ("device",) in leaves
    for path in leaves:
        c = copy.deepcopy(cfg)
        node = c
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = ["changed", node[path[-1]]]
        same = path in NON_RESULT_KEYS
        assert (config_digest(c, SCHEMA) == d0) == same, ".".join(path)
    c = copy.deepcopy(cfg)
    c["scales"] = [int(s) if float(s).is_integer() else s for s in c["scales"]]
    assert config_digest(c, SCHEMA) == d0


@pytest.mark.slow
def test_config_json_records_configuration_and_digest(work):
    """Before the first job the folder gets config.json: the whole configuration and its digest
    (--touch runs the onstart hook but no job)."""
    rc, out = _snakemake(work, "theory", "--touch", "--cores", "1", "--configfile", TINY, "--config",
                         "name=record", "threads=2")
    assert rc == 0, out[-3000:]
    folder = _folder(out)
    rec = json.loads((work / "results" / folder / "config.json").read_text())
    assert rec["folder"] == folder and rec["digest"].startswith(folder.rsplit("-", 1)[1])
    assert rec["config"]["name"] == "record" and rec["config"]["threads"] == 2
    assert config_digest(rec["config"], SCHEMA) == rec["digest"]
    # beside it, stages.json: every stage's key and folder, as the registry keys this configuration
    stages = stage_record(work, folder)
    keys = _keys(rec["config"])
    assert set(stages) == set(keys) and all(stages[s]["key"] == keys[s] for s in keys)
    assert all(r["folder"] == f"results/stages/{s}/{r['key']}" for s, r in stages.items())
    assert stages["theory"]["reads"]["threads"] == 2 and stages["theory"]["code"][0] == "scripts/theory.py"


# ---- fault 2: values keep their type and text on the way into notebooks and scripts ---------------
PROBE_NB = {
    "cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "config_name = 'x'\n",
         "outputs": [], "execution_count": None},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source":
            "import json, os\n"
            "seen = {k: [type(v).__name__, v] for k, v in dict(globals()).items()\n"
            "        if not k.startswith('_') and isinstance(v, (str, int, float, bool, type(None)))}\n"
            "json.dump(seen, open(os.environ['PROBE_OUT'], 'w'))\n"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def _papermill_argv(out: str) -> tuple[list[str], dict[str, str]]:
    """The first papermill command of a dry run: its argv from ``papermill`` to the log redirection, and
    the environment assignments before it (VAR=value)."""
    line = next((c for c in _commands(out) if re.match(r"(\w+=\S+ )*(python -m )?papermill ", c)), None)
    assert line, out[-3000:]
    argv = shlex.split(line)
    env = {}
    while "=" in argv[0] and not argv[0].startswith("-"):
        k, v = argv.pop(0).split("=", 1)
        env[k] = v
    argv = argv[argv.index("papermill"):]
    return (argv[: argv.index(">")] if ">" in argv else argv), env


@pytest.mark.slow
@pytest.mark.parametrize("how", ["command-line", "configfile"])
def test_notebook_parameters_keep_type_and_text(work, odd, tmp_path, how):
    """A configuration named 007 (papermill's -p made it the integer 7): the notebook receives
    every parameter as the text the workflow meant -- config_name = the tables' stage and key
    (<stage>/<key>: where the figure's numbers come from), each table and output path as a string."""
    out = _dry(work, "--configfile", TINY, "--config", "name=007") if how == "command-line" else odd[0]
    assert _folder(out).startswith("007"), _folder(out)
    argv, env = _papermill_argv(out)
    # the executed notebook: logs/stages/<figure>/<key>/<figure>.ipynb
    m = re.fullmatch(r"logs/stages/(\w+)/([0-9a-f]{12})/(\w+)\.ipynb", argv[2])
    assert m and m.group(1) == m.group(3) and argv[1] == f"notebooks/{m.group(1)}.ipynb", argv[:3]
    fig, key = m.group(1), m.group(2)
    meant = yaml.load(argv[argv.index("-y") + 1], Loader=yaml.BaseLoader)  # every value as its text
    nb = tmp_path / "probe.ipynb"
    nb.write_text(json.dumps(PROBE_NB))
    argv = ["papermill", str(nb), str(tmp_path / "probe.out.ipynb")] + argv[3:]
    r = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=120,
                       env={**ENV, **env, "PROBE_OUT": str(tmp_path / "seen.json")})
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert meant and all(seen[k] == ["str", v] for k, v in meant.items()), (meant, seen)
    tables_stage = stage_registry.FIGURES[fig]
    assert re.fullmatch(rf"{tables_stage}/[0-9a-f]{{12}}", seen["config_name"][1]), seen["config_name"]
    assert seen["out_pdf"][1] == f"results/stages/{fig}/{key}/{fig}.pdf", seen["out_pdf"]
    tables = {k: v for k, v in seen.items() if k not in ("out_pdf", "out_png", "config_name")}
    assert tables and all(t == "str" and v.startswith(f"results/stages/{seen['config_name'][1]}/") and v.endswith(".csv")
                          for t, v in tables.values()), tables


@pytest.mark.slow
def test_script_arguments_keep_their_text(odd):
    """A path with a space, a quote and a $ reaches the script as one argument, unexpanded."""
    out, root = odd
    lines = [c for c in _commands(out) if "--root" in c]
    assert any(re.match(r"(exec )?python scripts/train\.py", c) for c in lines), out[-3000:]
    for line in lines:  # every job that reads the dataset
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise AssertionError(f"{exc}: {line[:300]}") from None
        assert argv[argv.index("--root") + 1] == root, line[:300]


# ---- fault 3: the code a stage's key covers follows from what its script imports -----------------
SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "scripts").glob("*.py"))
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))

# Imports every import statement of each script or notebook (also those inside functions: what a
# run reaches) with Python's own import machinery, then lists the package's modules in sys.modules
# (forgotten again before the next file, so that each file's list is its own).
RUNTIME = r"""
import ast, json, sys
out = {}
for path in sys.argv[1:]:
    for m in [m for m in sys.modules if m.split(".")[0] == "adversary_dynamics"]:
        del sys.modules[m]
    text = open(path, encoding="utf-8").read()
    if path.endswith(".ipynb"):
        text = "\n".join(l for c in json.loads(text)["cells"] if c["cell_type"] == "code"
                         for l in "".join(c["source"]).splitlines() if not l.lstrip().startswith(("%", "!")))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            exec(compile(ast.Module(body=[node], type_ignores=[]), path, "exec"), {})
    out[path] = sorted(m for m in sys.modules if m.split(".")[0] == "adversary_dynamics")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loaded():
    """adversary_dynamics modules each script and notebook loads (one subprocess for all)."""
    r = subprocess.run([sys.executable, "-c", RUNTIME, *SCRIPTS, *NOTEBOOKS], capture_output=True, text=True,
                       timeout=300, cwd=ROOT, env={**ENV, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.parametrize("script", SCRIPTS + NOTEBOOKS)
def test_script_code_covers_what_runs(script, loaded):
    """The code a stage's key covers (stages.code_files of its script or notebook) includes every
    adversary_dynamics module the script (or notebook) actually loads, through any chain of imports."""
    derived = set(stage_registry.code_files(script, root=ROOT))
    def module_file(m: str) -> str:  # adversary_dynamics[.mod[.sub]] -> its file (a subpackage: <pkg>/<sub>.py)
        parts = m.split(".")[1:]
        path = ROOT / "src" / "adversary_dynamics" / "/".join(parts)
        return "src/adversary_dynamics/" + ("/".join(parts) + "/__init__" if parts and path.is_dir() else
                                            "/".join(parts) if parts else "__init__") + ".py"

    files = {module_file(m) for m in loaded[script]}
    if "adversary_dynamics" not in (ROOT / script).read_text(encoding="utf-8"):  # scripts/figure_provenance.py
        assert files == set() and derived == {script, "src/adversary_dynamics/__init__.py"}, (derived, files)
        return
    assert script in derived and len(files) >= 2, (derived, files)
    assert files <= derived, f"{script}: loads {sorted(files - derived)} but its stage key's code omits them"


def _rule_blocks(text: str) -> list[str]:
    """The text of each rule of a .smk file (from one `rule` line to the next)."""
    starts = [m.start() for m in re.finditer(r"^\s*rule\b", text, flags=re.M)]
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def test_every_rule_with_a_script_is_a_keyed_stage():
    """No hand-kept code lists: each rule that runs scripts/<x>.py takes its parameters from the
    registry (--params of stage_params(<stage>), whose key covers the script's code), every script the
    rules run is a registered stage's, and each figure's notebook is its figure stage's script."""
    scripts_run = set()
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in _rule_blocks(text):
            for script in set(re.findall(r"python (scripts/\w+\.py)", block)):
                if script == "scripts/figure_provenance.py":  # copies a provenance record: no stage of its own
                    continue
                scripts_run.add(script)
                assert "--params {params.doc" in block and "doc=stage_params(" in block, \
                    f"{smk.name}: a rule runs {script} without its stage's --params:\n{block[:600]}"
                for name in re.findall(r'doc=stage_params\("(\w+)"\)', block):  # literal stage names
                    assert stage_registry.all_stages()[name].script == script, (smk.name, name, script)
        code = "\n".join(ln.split("#", 1)[0] for ln in text.splitlines())  # comments may name modules
        assert "LIB}/" not in code and "src/adversary_dynamics/" not in code, f"{smk.name}: a hand-listed module"
    assert scripts_run and scripts_run <= {st.script for st in stage_registry.all_stages().values()}, scripts_run
    figures = (ROOT / "workflow" / "rules" / "figures.smk").read_text()
    assert 'notebook=f"notebooks/{_fig}.ipynb"' in figures
    for fig in stage_registry.FIGURES:
        assert stage_registry.figure_stage(fig).script == f"notebooks/{fig}.ipynb"


@pytest.mark.slow
def test_every_job_runs_its_stages_script(odd):
    """In a real dry run, each command's --params names its stage (_stage), the script it runs is that
    stage's (whose code the key covers), and the folders it writes carry that stage's key."""
    docs = _params_docs(odd[0])
    assert {d["_stage"]["stage"] for _, d in docs} >= {"train", "probe", "theory", "claims"}, docs[:1]
    for command, doc in docs:
        rec = doc["_stage"]
        st = stage_registry.all_stages()[rec["stage"]]
        assert re.match(rf"(exec )?python {re.escape(st.script)} ", command), (st.script, command[:200])
        # the code files are in stages.json (the command line keeps their fingerprint, not the list)
        files = stage_registry.code_files(st.script, root=ROOT)
        assert rec["code_fingerprint"] == stage_registry.code_fingerprint(files, root=ROOT), rec["stage"]
        assert rec["folder"] == f"results/stages/{st.name}/{rec['key']}"
        for stage, key in STAGE_PATH.findall(command):  # its own folders, and those of what it consumes
            assert stage == st.name and key == rec["key"] or rec["upstream"].get(stage) == key, (stage, key)


def _indirect_module(script: str) -> str:
    """A library module the script reaches only through another library module (training.py for
    scripts/theory.py when it imports it, the case of the issue)."""
    derived = [f for f in stage_registry.code_files(script, root=ROOT) if f.startswith("src/")]
    direct = {f"src/adversary_dynamics/{m}.py" for m in stage_registry.imported_modules(ROOT / script, root=ROOT)}
    indirect = [f for f in derived if f not in direct and not f.endswith("__init__.py")]
    assert indirect, (derived, direct)
    return next((f for f in indirect if f.endswith("/training.py")), indirect[0])


def _theory_key(out: str) -> str:
    keys = _planned_keys(out).get("theory")
    assert keys and len(keys) == 1, out[-3000:]
    return keys.pop()


@pytest.mark.slow
def test_library_edit_reruns_the_theory_job(work, tmp_path):
    """Editing a library module that scripts/theory.py reaches only through another module
    (issue 12: training.py) must rerun the theory job: the theory stage gets a new key (a new folder;
    the old results are left as they are). A comment in that module changes no key: nothing reruns."""
    work = copy_workflow(tmp_path / "wf")  # edits code: a copy of its own
    out = _dry(work, "theory", "--configfile", TINY)
    m = re.search(r"Missing output files: ([^\n;]+)", out)
    assert m, out[-3000:]
    old_key = _theory_key(out)
    outputs = [work / p.strip() for p in m.group(1).split(",")]
    assert outputs and all(re.search(rf"(results|benchmarks)/stages/theory/{old_key}/", p.as_posix())
                           for p in outputs), outputs
    for p in outputs:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("d,m\n")
    rc, out = _snakemake(work, "-n", "theory", "--cores", "1", "--configfile", TINY)
    assert rc == 0 and "Nothing to be done" in out, out[-3000:]  # the control: up to date
    module = _indirect_module("scripts/theory.py")
    assert module in stage_registry.code_files("scripts/theory.py", root=work)
    text = (work / module).read_text()
    (work / module).write_text(text + "\n# edited: a comment\n")  # no code change: the same key
    rc, out = _snakemake(work, "-n", "theory", "--cores", "1", "--configfile", TINY)
    assert rc == 0 and "Nothing to be done" in out, (module, out[-3000:])
    (work / module).write_text(text + "\n_EDITED = 1\n")  # a real change of code
    rc, out = _snakemake(work, "-n", "theory", "--cores", "1", "--configfile", TINY)
    assert rc == 0, out[-3000:]
    assert "Nothing to be done" not in out, (module, out[-3000:])
    new_key = _theory_key(out)
    assert new_key != old_key and f"results/stages/theory/{new_key}/" in out, (old_key, new_key)
    assert all(p.read_text() == "d,m\n" for p in outputs)  # the old key's results are not touched


# ---- the first hour: progress, short reasons, clear errors ---------------------------------------
@pytest.mark.slow
def test_every_job_says_its_stage_and_log(odd):
    out = odd[0]
    folder = _folder(out)
    jobs = re.findall(r"^Job \d+: (.*)$", out, flags=re.M)
    rules = re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M)
    assert len(jobs) >= 10, out[-3000:]
    assert set(rules) <= {"all"}, f"rules without a message: {set(rules) - {'all'}}"
    for j in jobs:  # a stage's job logs into its key's folder; the configuration's own jobs into logs/<folder>/
        m = re.match(rf"\[{re.escape(folder)}\] [\w ]+ \((\w+)\): .+ — log: logs/(?:{re.escape(folder)}|stages/(\w+)/[0-9a-f]{{12}})/\S+", j)
        assert m, j
        assert m.group(2) is None or m.group(2) == m.group(1) or m.group(1) == f"{m.group(2)}_notebook", j


@pytest.mark.slow
def test_no_rule_hands_over_the_whole_configuration(odd):
    """No job receives the whole configuration: each command's --params holds its stage's declared keys
    only (the registry's reads; the attack settings reach the training job alone, the claims rules the
    claims job and the stages that declare some of them — ext_step_rule_tables computes T5 per step
    rule with the claims' bootstrap rules — alone), and no --config-json is passed."""
    reads_claims = {name for name, st in stage_registry.all_stages().items()
                    if any(r.split(".")[0] == "claims" for r in st.reads)}
    assert "ext_step_rule_tables" in reads_claims and "train" not in reads_claims
    cmds = _commands(odd[0])
    assert len(cmds) >= 8
    docs = dict(_params_docs(odd[0]))
    assert len(docs) >= 8
    for c in cmds:
        assert "--config-json" not in c, c[:300]
        assert len(c) < 2500, c[:300]
        doc = docs.get(c)
        stage = doc["_stage"]["stage"] if doc else None
        assert '"attack"' not in c or stage == "train", c[:300]
        assert '"claims"' not in c or stage == "claims" or stage in reads_claims, c[:300]
        if doc:
            st = stage_registry.all_stages()[stage]
            tops = {r.split(".")[0] for r in st.reads}
            assert set(doc["_stage"]["reads"]) == tops, (stage, sorted(doc["_stage"]["reads"]), sorted(tops))


# ---- fault 5: an empty SLURM account submits without -A, deterministically -----------------------
FAKE = r"""#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_SLURM_LOG"
case "$(basename "$0")" in
  sbatch) echo 4242 ;;
  sacct) echo "guessed_acct" ;;
  sacctmgr|sshare) echo "guessed_acct" ;;
esac
exit 0
"""


@pytest.mark.slow
def test_empty_account_submits_without_A(work, tmp_path):
    """profiles/slurm's `slurm_account: ""`: the plugin must not guess an account from sacct's
    records. Fake sbatch/sacct/... on PATH record the sbatch call the plugin builds (sacct
    answers with an account, as on a cluster with accounting); no job runs."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for b in ("sbatch", "sacct", "sacctmgr", "sshare", "squeue", "scontrol", "sinfo", "scancel", "srun"):
        (bindir / b).write_text(FAKE)
        (bindir / b).chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    env = {**ENV, "PYTHONPATH": str(work / "src"), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_SLURM_LOG": str(log)}
    env.pop("SLURM_JOB_ID", None)
    proc = subprocess.Popen(SNAKEMAKE + ["theory", "--profile", "profiles/slurm", "--configfile", TINY,
                                         "--config", "name=account", "--slurm-init-seconds-before-status-checks",
                                         "1"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and "sbatch " not in log.read_text() and proc.poll() is None:
            time.sleep(0.2)
    finally:
        if proc.poll() is None:  # nothing was really submitted: no job to cancel
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out = proc.stdout.read()
    calls = log.read_text()
    sbatch = [ln for ln in calls.splitlines() if ln.startswith("sbatch ")]
    assert sbatch, f"no sbatch call:\n{calls}\n{out[-3000:]}"
    argv = shlex.split(sbatch[0])
    assert "-A" not in argv and not any(a.startswith("--account") for a in argv), sbatch[0]
    assert "guessed_acct" not in sbatch[0]


# ---- issue 19: the folder name does not name a dataset the run does not use ----------------------
@pytest.mark.parametrize("config_file, dataset, expected", [
    ("paper.yaml", "fashion_mnist", "paper-fashion-mnist"),   # name paper-mnist on fashion_mnist
    ("paper.yaml", "digits", "paper-digits"),
    ("fashion-mnist.yaml", "mnist", "mnist"),                  # name fashion-mnist: both words replaced
    ("cifar10.yaml", "mnist", "mnist"),
    ("config.yaml", "mnist", "default"),                       # 'default' names no dataset: kept
])
def test_folder_name_does_not_claim_a_dataset_the_run_does_not_use(config_file, dataset, expected):
    raw = yaml.safe_load((ROOT / "config" / config_file).read_text())
    cfg = _validated(merge_config({} if config_file == "config.yaml" else raw, {"dataset": {"name": dataset}}))
    assert cfg["name"] == raw["name"]  # the configuration's own name is left alone
    assert _name_of(cfg) == f"{expected}-{config_digest(cfg, SCHEMA)[:8]}"


def test_folder_name_keeps_the_dataset_word_when_the_dataset_is_the_files_own():
    raw = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg = _validated(merge_config(raw, {"train": {"lr": raw["train"]["lr"] / 2}}))
    assert _name_of(cfg) == f"paper-mnist-{config_digest(cfg, SCHEMA)[:8]}"
    mine = dict(cfg, name="my-mnist-run", dataset=dict(cfg["dataset"], name="fashion_mnist"))
    assert _name_of(mine).startswith("my-mnist-run-")  # a name of one's own: not a committed file's, kept


@pytest.mark.parametrize("name, old, new, out", [
    ("paper-mnist", "mnist", "fashion_mnist", "paper-fashion-mnist"),
    ("fashion-mnist", "fashion_mnist", "cifar10", "cifar10"),
    ("run_MNIST.v2", "mnist", "fashion_mnist", "run_fashion_mnist.v2"),
    ("fashion_mnist-x", "fashion_mnist", "digits", "digits-x"),
    ("mnistish", "mnist", "digits", "mnistish"),              # words, not substrings
    ("default", "digits", "mnist", "default"),
])
def test_dataset_word_replacement(name, old, new, out):
    from adversary_dynamics.pipeline.config import _replace_dataset_word

    assert _replace_dataset_word(name, old, new) == out
