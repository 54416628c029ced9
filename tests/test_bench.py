"""The benchmark scripts run and end with their JSON summary line (speed itself is not tested:
the machines are shared and noisy)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("script,key", [("pga_speed.py", "shapes"), ("train_speed.py", None)])
def test_benchmark_quick_run_prints_json(script, key):
    res = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["quick"] is True
    if key:
        assert summary[key] and all(v > 0 for s in summary[key] for v in s["ms_per_step"].values())
