"""Resources from the cost model (adversary_dynamics.pipeline.costs), the dry run of config/paper.yaml
without the data files, and the launcher's --plan."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adversary_dynamics.pipeline import costs, launcher, stages
from adversary_dynamics.pipeline.config import validate_config
from adversary_dynamics.storage import datasets
from workflow_copy import ROOT, copy_workflow

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def merged(*files: str) -> dict:
    from snakemake.utils import update_config

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    for f in files:
        update_config(config, yaml.safe_load((ROOT / f).read_text(encoding="utf-8")))
    return validate_config(config, SCHEMA, check_files=False)


@pytest.fixture(scope="module")
def paper():
    return merged("config/paper.yaml")


# measured times of one job at paper scale (config/paper.yaml's header; measured-baselines.md)
MEASURED_TRAIN_S = 5 * 2.2 * 3600  # rule train: 5 seeds x ~2.2 h per seed on one CPU core
MEASURED_FIG3_TRAIN_S = 3 * 100 * 31.0  # rule paper_fig3_train: 3 seeds x 100 epochs x 31 s on one H200


@pytest.mark.parametrize("stage, kind, measured_s", [("train", "cpu-core", MEASURED_TRAIN_S),
                                                     ("paper_fig3_train", "h200", MEASURED_FIG3_TRAIN_S)])
def test_paper_requests_are_within_a_factor_2_of_the_measured_times(paper, stage, kind, measured_s):
    request_s = 60 * costs.runtime_minutes(stage, paper, kind=kind)
    assert 0.5 <= request_s / measured_s <= 2, (stage, request_s / 3600, measured_s / 3600)
    assert 0.5 <= costs.estimate_s(stage, paper, kind=kind) / measured_s <= 2


def test_retries_ask_for_more(paper):
    assert costs.runtime_minutes("train", paper, kind="cpu-core", attempt=2) == \
        2 * costs.runtime_minutes("train", paper, kind="cpu-core")


def test_work_counts_models_and_flops(paper):
    """The classic CNN's 27.8 MFLOP forward per 28x28 image, twice for a pass; seeds are models."""
    assert costs.pass_flops(paper, "cnn") == pytest.approx(2 * 27.8e6, rel=0.01)
    one = costs.work("paper_fig3_train", {**paper, "paper_escape": {**paper["paper_escape"], "seeds": [0]}})
    assert costs.work("paper_fig3_train", paper).flops == pytest.approx(3 * one.flops)


def test_every_rate_says_where_it_was_measured():
    for kind, table in costs.RATES.items():
        assert table["startup_s"] > 0
        for family, rate in table.items():
            if isinstance(rate, costs.Rate):
                assert rate.flops_per_s > 0 and len(rate.source) > 40, (kind, family)


def test_gpu_requested_only_on_a_gpu(paper):
    assert costs.resources("train", paper, kind="h200")["gpu"] == 1
    assert costs.resources("train", paper, kind="cpu-core")["gpu"] == 0
    assert costs.device_kind({"device": "cpu"}, has_gpu=True) == "cpu-core"
    assert costs.device_kind({"device": "auto"}, has_gpu=True) == "h200"


def test_every_rule_has_runtime_and_mem_mb():
    """Every rule that is not a localrule states runtime and mem_mb (or takes them from the cost model),
    and every stage the cost model prices has a rule that uses it."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "workflow/rules").glob("*.smk")))
    blocks = [b for b in re.split(r"\n(?=[ \t]*rule\b)", text) if re.match(r"[ \t]*rule\b", b)]
    assert len(blocks) >= 10
    for block in blocks:
        if "localrule: True" in block:
            continue
        res = block.split("resources:", 1)
        assert len(res) == 2, block[:200]
        body = res[1][:400]
        assert "stage_resources(" in body or ("runtime=" in body and "mem_mb=" in body), block[:200]
    for stage in costs.COMPUTE:
        assert f'stage_resources("{stage}")' in text, stage
    for stage in costs.COMPUTE:
        r = costs.resources(stage, merged(), kind="cpu-core")
        assert r["runtime"](None, 1) >= costs.MIN_MINUTES and r["mem_mb"](None, 1) >= 1000


# ---- the dry run without the data files -----------------------------------------------------------
def test_missing_files_give_the_placeholder_only_when_asked(tmp_path):
    ds = {"name": "mnist", "root": str(tmp_path), "download": False}
    with pytest.raises(datasets.DataError, match="data files not found"):
        stages.data_fingerprint(ds)
    assert stages.data_fingerprint(ds, missing_ok=True) == {"name": "mnist", "files": stages.MISSING}
    assert stages.MISSING == datasets.PLACEHOLDER


def test_a_job_under_the_placeholder_key_is_refused(tmp_path):
    stage = {"data": {"name": "mnist", "files": stages.MISSING}}
    with pytest.raises(datasets.DataError, match="data files not found") as e:
        datasets.refuse_placeholder(stage, root=str(tmp_path))
    assert "How to get them" in str(e.value)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(datasets.DataError, match="start the workflow again"):
        datasets.refuse_placeholder(stage, root=str(tmp_path))
    datasets.refuse_placeholder({"data": {"name": "mnist", "files": {"x": "0" * 64}}}, root=str(tmp_path))
    datasets.refuse_placeholder({"data": None})


def test_train_script_refuses_a_placeholder_key_and_writes_nothing(tmp_path, paper):
    keyed = stages.resolve({**paper, "dataset": {**paper["dataset"], "root": str(tmp_path / "none")}},
                           schema=yaml.safe_load(SCHEMA.read_text()), root=ROOT, only={"train"},
                           missing_data_ok=True)["train"]
    assert stages.is_placeholder(keyed.data)
    doc = {**keyed.args, "_stage": keyed.record()}
    params = tmp_path / "params.json"
    params.write_text(json.dumps(doc))
    res = subprocess.run([sys.executable, str(ROOT / "scripts/train.py"), "--params", str(params), "--out-root",
                          str(tmp_path / "out"), "--scale", "2.5", "--root", str(tmp_path / "none")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 1 and "data files not found" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def test_paper_dry_run_works_without_the_data_and_a_real_run_stops(work):
    snk = [sys.executable, "-m", "snakemake"]
    dry = subprocess.run(snk + ["-n", "--cores", "8", "--configfile", "config/paper.yaml"], cwd=work,
                         capture_output=True, text=True, timeout=300)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "placeholder" in out and re.search(r"paper_fig3_train\s+6\b", out) and re.search(r"\btrain\s+5\b", out)
    assert not (work / "results/paper-mnist/stages.json").exists()  # a dry run records nothing
    real = subprocess.run(snk + ["--cores", "1", "train", "--configfile", "config/paper.yaml"], cwd=work,
                          capture_output=True, text=True, timeout=300)
    out = real.stdout + real.stderr
    assert real.returncode != 0 and "data files not found" in out and "How to get them" in out, out[-3000:]
    assert not (work / "results/stages/train").exists()


def test_launcher_plans_without_the_data(work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    assert launcher.is_dry_run(["-n"]) and launcher.is_dry_run(["-np"]) and not launcher.is_dry_run(["-j", "4"])
    assert launcher.main(["--plan=h200", "--configfile", "config/paper.yaml"]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| paper_fig3_train |"))
    assert "| 6 |" in row and "| 1 |" in row
    assert launcher.snakemake_argv(["-n", "--configfile", "config/paper.yaml"])  # no data error on a dry run
    with pytest.raises(launcher.LauncherError, match="data files not found"):
        launcher.snakemake_argv(["--cores", "1", "--configfile", "config/paper.yaml"])
