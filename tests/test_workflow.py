"""The real workflow, end to end, on the tiny configuration (tests/workflow/config.yaml):
every rule runs, every notebook is executed by papermill, every figure and table appears and
holds finite numbers; a second run has nothing to do; the workflow lints clean."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workflow_copy import ROOT, copy_workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
FIGURES = ["ext_pga_convergence", "ext_training_convergence", "ext_landscape_statistics", "ext_theory"]
TABLES = ["fig1_curves", "fig1_final", "fig2_steps", "fig2_epochs", "fig2_runs", "fig3_grid", "fig3_circle",
          "fig3_traj", "fig3_regularity", "ext_theory"]


def run(args, cwd, timeout=900):
    return subprocess.run(SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("wf"))
    res = run(["--cores", "2", "--configfile", "tests/workflow/config.yaml"], work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return work


@pytest.mark.slow
def test_every_figure_and_table_is_built(tiny_run):
    for fig in FIGURES:
        for ext in ("pdf", "png"):
            p = tiny_run / "figures" / "tiny" / f"{fig}.{ext}"
            assert p.exists() and p.stat().st_size > 1000, p
        nb = tiny_run / "logs" / "tiny" / "notebooks" / f"{fig}.ipynb"
        assert nb.exists(), f"papermill did not write the executed notebook {nb}"
    for t in TABLES:
        df = pd.read_csv(tiny_run / "results" / "tiny" / "tables" / f"{t}.csv")
        assert len(df) > 0, t
        num = df.select_dtypes("number")
        if t == "fig3_grid":  # NaN outside the disk by design
            num = num.dropna()
        if t == "fig2_epochs":  # epoch 0 (initialisation) has no training steps to average
            assert df.loc[df["epoch"] == 0, "train_adv_loss"].isna().all()
            num = num.drop(columns="train_adv_loss").join(df.loc[df["epoch"] > 0, ["train_adv_loss"]]).dropna(
                subset=["train_adv_loss"])
        if t in ("fig2_runs", "fig3_regularity"):  # optional/undefined entries are empty, not inf
            assert not num.isin([math.inf, -math.inf]).any().any(), t
            continue
        assert num.notna().all().all() and not num.isin([math.inf, -math.inf]).any().any(), t


@pytest.mark.slow
def test_second_run_has_nothing_to_do(tiny_run):
    res = run(["-n", "--cores", "2", "--configfile", "tests/workflow/config.yaml"], tiny_run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr


@pytest.mark.slow
def test_one_figure_alone(tiny_run):
    """Removing one figure rebuilds just that figure's rule."""
    target = tiny_run / "figures" / "tiny" / "ext_theory.pdf"
    target.unlink()
    res = run(["-n", "ext_theory", "--cores", "2", "--configfile", "tests/workflow/config.yaml"], tiny_run)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "ext_theory" in out and "rule train" not in out and "rule probe" not in out


def test_lint_is_clean():
    res = subprocess.run(SNAKEMAKE + ["--lint", "--configfile", "tests/workflow/config.yaml"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out, out[-4000:]


def test_dry_run_default_config():
    res = subprocess.run(SNAKEMAKE + ["-n", "--cores", "8", "--directory", str(ROOT), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]


@pytest.mark.slow
def test_report_has_every_figure(tiny_run):
    import zipfile

    res = run(["--report", "report.zip", "--configfile", "tests/workflow/config.yaml"], tiny_run)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    names = zipfile.ZipFile(tiny_run / "report.zip").namelist()
    for fig in FIGURES:
        assert any(n.endswith(f"{fig}.png") for n in names), (fig, names)
    assert any(n.endswith("claims.md") for n in names) and any(n.endswith("report.html") for n in names)
