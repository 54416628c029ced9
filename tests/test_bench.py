"""The benchmark scripts run and end with their JSON summary line (speed itself is not tested:
the machines are shared and noisy)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("script,key", [("pga_speed.py", "shapes"), ("train_speed.py", None)])
def test_benchmark_quick_run_prints_json(script, key):
    res = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], capture_output=True, text=True,
                         timeout=900, cwd=ROOT)  # a smoke test, not a timing: a loaded 2-core machine took > 300 s
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["quick"] is True
    if key:
        assert summary[key] and all(v > 0 for s in summary[key] for v in s["ms_per_step"].values())


# ---- bench/gpu_paper_check.sh runs the workflow's own commands (bench/gpu_paper_commands.sh) ----------------
def _generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_paper_commands", ROOT / "bench" / "gpu_paper_commands.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_paper_commands_are_the_workflows():
    """The committed commands equal what `snakemake -n -p --configfile config/paper.yaml` prints now
    (drift between workflow/rules/common.smk and the GPU check fails here)."""
    gen = _generator()
    committed = (ROOT / "bench" / "gpu_paper_commands.sh").read_text(encoding="utf-8")
    assert gen.generate() == committed, "bench/gpu_paper_commands.sh is stale: run python bench/gpu_paper_commands.py"
    # independent spot checks against config/paper.yaml itself
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text(encoding="utf-8"))
    esc, f3 = cfg["paper_escape"], cfg["paper_fig3"]["train"]
    assert f"  --n-inputs {esc['n_inputs']}\n" in committed and f"  --steps {esc['steps']}\n" in committed
    assert f"  --descent-steps {esc['descent']['steps']}\n" in committed
    assert f"  --attack-steps {f3['attack_steps']}\n" in committed and f"  --lr {f3['lr']}\n" in committed
    # the stage folders, without their keys (which change with every code edit)
    assert '  --out-dir "$RESULTS"/paper_fig2_escape_run\n' in committed
    assert """  --out-root "$RESULTS"'/paper_fig3_train/scale~0.1/ratio~1'\n""" in committed
    assert "_stage" not in committed and not re.search(r"[0-9a-f]{12}", committed)


def test_gpu_paper_commands_follow_the_config():
    """Changing config/paper.yaml changes exactly the generated flags (the commands are not hard-coded)."""
    gen = _generator()
    text = (ROOT / "config" / "paper.yaml").read_text(encoding="utf-8")
    edited = text.replace("  n_inputs: 64 ", "  n_inputs: 7 ", 1).replace("    lr: 0.001 ", "    lr: 0.0005 ", 1)
    assert edited.count("n_inputs: 7 ") == 1 and edited.count("lr: 0.0005 ") == 1
    committed = (ROOT / "bench" / "gpu_paper_commands.sh").read_text(encoding="utf-8").splitlines()
    new = gen.generate(config_text=edited).splitlines()
    changed = sorted((a, b) for a, b in zip(committed, new) if a != b)
    assert len(new) == len(committed)
    assert ("  --lr 0.001", "  --lr 0.0005") in changed and ("  --n-inputs 64", "  --n-inputs 7") in changed
    # nothing else: the stage folders are "$RESULTS"/<stage> (their keys, which the edit changes, are not written)
    assert changed == [("  --lr 0.001", "  --lr 0.0005"), ("  --n-inputs 64", "  --n-inputs 7")], changed


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_gpu_paper_check_quick_mode_runs(tmp_path):
    """bench/gpu_paper_check.sh DATA OUT quick runs both generated commands with its overrides (~20 s on a CPU)."""
    res = subprocess.run(["bash", "bench/gpu_paper_check.sh", "/usr/share/datasets/fashion-mnist", str(tmp_path),
                          "quick"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHON": sys.executable})
    assert res.returncode == 0, res.stderr[-3000:] + (tmp_path / "train.log").read_text()[-2000:]
    times = json.loads((tmp_path / "times.txt").read_text().strip().splitlines()[-1])
    assert times["fig2_trajectories"] == 3 * 5 * 4  # paper scales x ratios x 4 inputs, one seed
    assert times["train_epochs"] == 2
    assert (tmp_path / "paper_fig2_escape_run/escape.csv").is_file()
    cfg = json.loads((tmp_path / "paper_fig3_train/scale~0.1/ratio~1/seed~0/provenance.json").read_text())["config"]
    assert (cfg["dataset"], cfg["seeds"], cfg["epochs"], cfg["cnn_hidden"]) == ("fashion_mnist", [0], 2, 1024)


def test_benchmark_environment_records_the_cpu(monkeypatch):
    """Results differ in the last bits between an AVX-512 and an AVX2-only CPU: every benchmark's
    JSON line names the CPU model, its vector flags and torch's CPU capability (issue 19)."""
    import torch

    from adversary_dynamics.storage.runio import cpu_info

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import _common

    env = _common.environment(device="cpu")
    info = cpu_info()
    assert env["cpu_model"] == info["cpu_model"] and env["cpu_model"]
    assert env["cpu_flags"] == info["cpu_flags"]
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["device"] == "cpu"
    json.dumps(env)


# ---- bench/pipeline_cost.py: a configuration's cost by stage, from Snakemake's benchmark files ----------
def _pipeline_cost():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipeline_cost", ROOT / "bench" / "pipeline_cost.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pipeline_cost_sums_the_last_run_of_each_job_of_the_keys_the_configuration_used(tmp_path):
    mod = _pipeline_cost()
    (tmp_path / "results" / "cfg").mkdir(parents=True)
    (tmp_path / "results" / "cfg" / "stages.json").write_text(json.dumps(
        {"train": {"key": "aaa", "folder": "results/stages/train/aaa"},
         "claims": {"folder": "results/stages/claims/ccc"}}))
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, lines in {"train/aaa/scale~1.tsv": ["9.0\t0\t0\t0\t0\t0\t0\t0\t0\t7.0", "4.0\t0\t0\t0\t0\t0\t0\t0\t0\t3.0"],
                       "train/aaa/scale~2.tsv": ["5.0\t0\t0\t0\t0\t0\t0\t0\t0\t4.5"],
                       "train/old/scale~1.tsv": ["99\t0\t0\t0\t0\t0\t0\t0\t0\t99"],  # another key: not counted
                       "claims/ccc/default.tsv": ["2.0\t0\t0\t0\t0\t0\t0\t0\t0\t1.5"]}.items():
        f = tmp_path / "benchmarks" / "stages" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(head + "\n".join(lines) + "\n")
    rows = {r["stage"]: r for r in mod.stage_costs("cfg", root=tmp_path)}
    assert rows["train"] == {"stage": "train", "key": "aaa", "jobs": 2, "cpu_s": 7.5, "wall_s": 9.0, "max_wall_s": 5.0}
    assert rows["claims"]["key"] == "ccc" and rows["claims"]["cpu_s"] == 1.5
    with pytest.raises(FileNotFoundError):
        mod.stage_costs("missing", root=tmp_path)
