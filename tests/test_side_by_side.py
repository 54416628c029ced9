"""Side by side: configurations with different names never overwrite each other's results, and
rerunning a configuration changes nothing that is up to date.

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

from workflow_copy import ROOT, copy_workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGETS = ["aggregate_fig1", "aggregate_fig2", "aggregate_fig3", "aggregate_fig4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
OUTPUT_DIRS = ("results", "logs", "benchmarks", "figures")


def _write_config(work: Path, name: str, **overrides) -> str:
    cfg = yaml.safe_load((ROOT / "tests" / "workflow" / "config.yaml").read_text())
    cfg.update(name=name, seeds=[0])  # one seed: each run stays well under a minute
    for k, v in overrides.items():
        node = cfg
        *parents, last = k.split(".")
        for p in parents:
            node = node[p]
        node[last] = v
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path.name


def _snakemake(work: Path, configfile: str, *extra: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + TARGETS + ["--cores", "2", *extra, "--configfile", configfile], cwd=work,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def _state(work: Path, name: str) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file a configuration owns (results, logs, benchmarks, figures)."""
    out = {}
    for top in OUTPUT_DIRS:
        root = work / top / name
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
    return work


@pytest.mark.slow
def test_second_configuration_leaves_the_first_untouched(work):
    before = _state(work, "alpha")
    assert any(k.startswith("results/alpha/tables/") for k in before) and len(before) > 20
    # another name, other scales and a shorter training: every job of 'beta' runs
    res = _snakemake(work, _write_config(work, "beta", scales=[0.5, 1.0], **{"train.epochs": 1,
                                                                             "probe.checkpoints": [0, 1]}))
    assert res.returncode == 0, res.stderr[-4000:]
    assert _state(work, "alpha") == before, "running 'beta' changed files of 'alpha'"
    beta = _state(work, "beta")
    assert any(k.startswith("results/beta/tables/") for k in beta)
    assert not set(beta) & set(before)
    # the same settings under another name give the same numbers (scale 0.5, epoch 0 evaluation)
    a = (work / "results/alpha/train/scale~0.5/seed~0/epochs.csv").read_text().splitlines()[:2]
    b = (work / "results/beta/train/scale~0.5/seed~0/epochs.csv").read_text().splitlines()[:2]
    assert a == b
    # and 'alpha' is still up to date
    dry = _snakemake(work, "alpha.yaml", "-n")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]


@pytest.mark.slow
def test_rerun_of_same_configuration_changes_nothing(work):
    before = _state(work, "alpha")
    dry = _snakemake(work, "alpha.yaml", "-n")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "Nothing to be done" in out and "rule train" not in out, out[-3000:]
    res = _snakemake(work, "alpha.yaml")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr
    assert _state(work, "alpha") == before, "a rerun with nothing to do changed files"
    # the default target too (figures, where the notebooks exist) plans no table or run job
    full = subprocess.run(SNAKEMAKE + ["-n", "--cores", "2", "--configfile", "alpha.yaml"], cwd=work, env=ENV,
                          capture_output=True, text=True, timeout=120)
    text = full.stdout + full.stderr
    if full.returncode == 0 and "Nothing to be done" not in text:
        for rule in ("train", "probe", "theory", "aggregate_fig1", "aggregate_fig2", "aggregate_fig3",
                     "aggregate_fig4"):
            assert f"rule {rule}:" not in text, f"rule {rule} planned again:\n{text[-3000:]}"
