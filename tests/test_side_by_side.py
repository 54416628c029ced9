"""Side by side: two configurations never overwrite each other's results -- not even under the
same name (a configuration that is not a committed file has its own record and figures,
<name>-<hash8>/, and each stage's results are filed by what the stage reads, results/stages/<stage>/<key>/:
a stage that reads something that differs gets a folder of its own, one that reads nothing that
differs is shared, and not recomputed) -- and rerunning a configuration changes nothing that is up to date.

Runs the real workflow (the tiny configuration, table targets) in a temporary copy of the
repository, so the repository's own results/ are never touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_copy import ROOT, copy_workflow, stage_folder, stage_record

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGETS = ["ext_pga_convergence_tables", "ext_training_convergence_tables",
           "ext_landscape_statistics_tables", "theory"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
OUTPUT_DIRS = ("results", "logs", "benchmarks", "figures")


def _write_config(work: Path, name: str, file: str | None = None, **overrides) -> str:
    cfg = yaml.safe_load((ROOT / "tests" / "workflow" / "config.yaml").read_text())
    cfg.update(name=name, seeds=[0])  # one seed: each run stays well under a minute
    for k, v in overrides.items():
        node = cfg
        *parents, last = k.split(".")
        for p in parents:
            node = node[p]
        node[last] = v
    path = work / (file or f"{name}.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path.name


def _snakemake(work: Path, configfile: str, *extra: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + TARGETS + ["--cores", "2", *extra, "--configfile", configfile], cwd=work,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def _folder(res: subprocess.CompletedProcess) -> str:
    """The configuration's folder the run announced (its record results/<folder>/stages.json)."""
    import re

    m = re.search(r"\(which ones: results/([^/\s]+)/stages\.json\)", res.stdout + res.stderr)
    assert m, (res.stdout + res.stderr)[-3000:]
    return m.group(1)


def _stage_dirs(work: Path, name: str) -> list[Path]:
    """The stage folders of configuration ``name`` (results|logs|benchmarks/stages/<stage>/<key>/, as its
    stages.json names them) that exist."""
    dirs = []
    for stage, rec in stage_record(work, name).items():
        for top in ("results", "logs", "benchmarks"):
            d = work / top / "stages" / stage / rec["key"]
            assert top != "results" or rec["folder"] == f"results/stages/{stage}/{rec['key']}", rec
            if d.exists():
                dirs.append(d)
    return dirs


def _state(work: Path, name: str) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file a configuration's run wrote: its own (results, logs, benchmarks,
    figures under <name>/) and those of its stages' folders."""
    out = {}
    for root in [work / top / name for top in OUTPUT_DIRS] + _stage_dirs(work, name):
        for p in sorted(root.rglob("*")) if root.exists() else []:
            if p.is_file():
                out[str(p.relative_to(work))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A copy of the workflow in which the configuration 'alpha' has run."""
    work = copy_workflow(tmp_path_factory.mktemp("side"))
    if (ROOT / "environment.yml").exists():  # the rules' conda: directive refers to it
        shutil.copy2(ROOT / "environment.yml", work / "environment.yml")
    res = _snakemake(work, _write_config(work, "alpha"))
    assert res.returncode == 0, res.stderr[-4000:]
    (work / "alpha.folder").write_text(_folder(res))  # alpha-<hash8>
    return work


def _alpha(work: Path) -> str:
    return (work / "alpha.folder").read_text()


@pytest.mark.slow
def test_second_configuration_leaves_the_first_untouched(work):
    alpha = _alpha(work)
    assert alpha.startswith("alpha-")
    before = _state(work, alpha)
    assert any(k.startswith("results/stages/ext_pga_convergence_tables/") for k in before) and len(before) > 20
    assert f"results/{alpha}/stages.json" in before and f"results/{alpha}/config.json" in before
    # the SAME name, other scales and a shorter training: every job of the second one runs
    scale = yaml.safe_load((ROOT / "tests" / "workflow" / "config.yaml").read_text())["scales"][0]
    res = _snakemake(work, _write_config(work, "alpha", "alpha2.yaml", scales=[scale, 2 * scale + 1],
                                         **{"train.epochs": 1, "probe.checkpoints": [0, 1]}))
    assert res.returncode == 0, res.stderr[-4000:]
    beta = _folder(res)
    assert beta.startswith("alpha-") and beta != alpha
    assert _state(work, alpha) == before, "the second configuration changed files of the first"
    after = _state(work, beta)
    assert any(k.startswith("results/stages/ext_pga_convergence_tables/") for k in after)
    # the stages that read what differs (scales, train.epochs, probe.checkpoints) have folders of their
    # own; the theory reads none of it: shared with alpha, the same files (not rewritten: see above)
    ka = {s: r["key"] for s, r in stage_record(work, alpha).items()}
    kb = {s: r["key"] for s, r in stage_record(work, beta).items()}
    own = {"train", "probe", *TARGETS[:3], "ext_pga_convergence", "ext_training_convergence",
           "ext_landscape_statistics", "claims"}
    assert {s for s in ka if ka[s] != kb[s]} == own, sorted(s for s in ka if ka[s] != kb[s])
    shared = set(after) & set(before)
    assert shared and {k.split("/")[2] for k in shared} == {"theory"}, sorted(shared)[:10]
    assert not any(k.split("/")[1] == "stages" and k.split("/")[2] in own for k in shared)
    # the same settings in both give the same numbers (first scale, epoch 0 evaluation)
    s = f"{float(scale):g}"
    a = (stage_folder(work, alpha, "train") / f"scale~{s}/seed~0/epochs.csv").read_text().splitlines()[:2]
    b = (stage_folder(work, beta, "train") / f"scale~{s}/seed~0/epochs.csv").read_text().splitlines()[:2]
    assert a == b
    # and 'alpha' is still up to date
    dry = _snakemake(work, "alpha.yaml", "-n")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


@pytest.mark.slow
def test_rerun_of_same_configuration_changes_nothing(work):
    before = _state(work, _alpha(work))
    dry = _snakemake(work, "alpha.yaml", "-n")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "Nothing to be done" in out and "rule train" not in out, out[-3000:]
    res = _snakemake(work, "alpha.yaml")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr
    assert _state(work, _alpha(work)) == before, "a rerun with nothing to do changed files"
    # the default target too (figures, where the notebooks exist) plans no table or run job
    full = subprocess.run(SNAKEMAKE + ["-n", "--cores", "2", "--configfile", "alpha.yaml"], cwd=work, env=ENV,
                          capture_output=True, text=True, timeout=120)
    text = full.stdout + full.stderr
    if full.returncode == 0 and "Nothing to be done" not in text:
        for rule in TARGETS + ["train", "probe"]:
            assert f"rule {rule}:" not in text and f"(rule {rule})" not in text, \
                f"rule {rule} planned again:\n{text[-3000:]}"
