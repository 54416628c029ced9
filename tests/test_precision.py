"""Config key ``precision`` (fp32 | tf32 | bf16): applied in one place, read back into every run's
provenance, validated with an error naming the key, declared by every stage that runs torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adversary_dynamics.pipeline import devices, stages
from adversary_dynamics.pipeline.config import load_schema, validate_config
from adversary_dynamics.storage import runio

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_flags():
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision(), devices._APPLIED)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])
    devices._APPLIED = saved[3]


def test_fp32_turns_both_tf32_flags_off(restore_flags):
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
    rec = devices.apply_precision("fp32")
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    assert rec == {"precision": "fp32", "cuda_matmul_allow_tf32": False, "cudnn_allow_tf32": False,
                   "float32_matmul_precision": "highest", "autocast_dtype": None}


def test_tf32_turns_both_flags_on(restore_flags):
    rec = devices.apply_precision("tf32")
    assert torch.backends.cuda.matmul.allow_tf32 is True and torch.backends.cudnn.allow_tf32 is True
    assert rec["float32_matmul_precision"] == "high" and rec["precision"] == "tf32"


def test_bf16_autocasts_the_model(restore_flags):
    devices.apply_precision("bf16")
    assert torch.backends.cudnn.allow_tf32 is False
    a = torch.randn(4, 8)
    with devices.precision_context("cpu", "bf16"):
        assert (a @ a.T).dtype == torch.bfloat16
    with devices.precision_context("cpu", "fp32"):
        assert (a @ a.T).dtype == torch.float32


def test_provenance_records_the_flags_read_back_from_torch(restore_flags):
    devices.apply_precision("tf32")
    torch.backends.cudnn.allow_tf32 = False  # changed behind apply_precision's back: provenance says so
    rec = runio.provenance()
    assert rec["precision"]["precision"] == "tf32"
    assert rec["precision"]["cuda_matmul_allow_tf32"] is True and rec["precision"]["cudnn_allow_tf32"] is False


@pytest.mark.parametrize("value", ["fp16", "FP32", None])
def test_unknown_precision_is_refused_naming_the_key(value, restore_flags):
    with pytest.raises(ValueError, match="config key 'precision'"):
        devices.apply_precision(value)


def test_bf16_is_refused_until_the_model_code_applies_it():
    import yaml

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    with pytest.raises(Exception, match="config key 'precision' has value 'bf16'"):
        validate_config({**cfg, "precision": "bf16"}, ROOT / "workflow/schemas/config.schema.yaml")


def test_scripts_refuse_bf16_before_recording_an_autocast_they_do_not_apply(tmp_path, restore_flags):
    """A params document written by hand with precision bf16 must not run: the provenance would
    record a bfloat16 autocast that the model code does not apply."""
    from adversary_dynamics.pipeline import cli

    before = devices._APPLIED
    with pytest.raises(ValueError, match="config key 'precision'.*fp32 or tf32"):
        cli.setup_device("cpu", "bf16")
    assert devices._APPLIED == before  # refused before any flag was set
    cli.setup_device("cpu", "fp32")
    assert devices._APPLIED == "fp32"


def test_schema_refuses_unknown_precision_naming_the_key():
    import yaml

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert cfg["precision"] == "fp32"  # the stated default
    schema = ROOT / "workflow/schemas/config.schema.yaml"
    assert load_schema(schema)["properties"]["precision"]["default"] == "fp32"
    with pytest.raises(Exception, match="precision"):
        validate_config({**cfg, "precision": "fp16"}, schema)


def test_every_torch_stage_declares_precision_and_passes_it():
    torch_scripts = {"scripts/train.py", "scripts/probe.py", "scripts/escape.py", "scripts/theory.py",
                     "scripts/paper_fig1.py"}
    runs = [s for s in stages.STAGES.values() if s.script in torch_scripts and s.args is not None and s.reads]
    assert {s.script for s in runs} == torch_scripts
    for s in runs:
        assert "precision" in s.reads, s.name


def test_precision_changes_the_stage_keys():
    import yaml

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    schema = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
    a = stages.resolve(cfg, schema=schema, root=ROOT, only={"theory"})
    b = stages.resolve({**cfg, "precision": "tf32"}, schema=schema, root=ROOT, only={"theory"})
    assert a["theory"].key != b["theory"].key
    assert b["theory"].args["precision"] == "tf32"


def test_a_job_records_its_precision(tmp_path):
    """scripts/paper_fig1.py (seconds on one core) with --precision tf32: its provenance says so."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["paper_fig1"].update(grid=11, steps=5, maxima_examples=1, restarts=2, maxima_steps=8, circle_points=36,
                             maxima_ratios=[0.1], scales=[1.0], ratios=[0.1])
    cfg["precision"] = "tf32"
    k = stages.resolve(cfg, schema=load_schema(ROOT / "workflow/schemas/config.schema.yaml"), root=ROOT,
                       only={"paper_fig1_landscapes_tables"})["paper_fig1_landscapes_tables"]
    params = tmp_path / "p.json"
    params.write_text(json.dumps(k.args))
    subprocess.run([sys.executable, str(ROOT / "scripts/paper_fig1.py"), "--params", str(params), "--out-dir",
                    str(tmp_path / "out")], check=True, cwd=ROOT, capture_output=True)
    prov = json.loads((tmp_path / "out/provenance.json").read_text())
    assert prov["precision"]["precision"] == "tf32" and prov["precision"]["cudnn_allow_tf32"] is True
