"""Issue 19, fault 4: notebooks run with the workflow's own interpreter, not whatever `python3`
kernel spec a machine has registered (a stale one pointing to another environment made a figure job
fail after 600 log lines, or could have drawn a figure with other code); the figure's provenance
records the kernel's interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from workflow_copy import copy_workflow  # noqa: E402


def _stale_python3_kernel(folder: Path) -> Path:
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(folder / "other-env/bin/python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (a stale environment)", "language": "python"}), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_a_stale_python3_kernel_spec_does_not_run_the_figures(tmp_path):
    work = copy_workflow(tmp_path / "w")
    stale = _stale_python3_kernel(tmp_path / "jupyter")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           # both places jupyter_client looks for a user's kernel specs hold the stale python3
           "JUPYTER_DATA_DIR": str(stale), "JUPYTER_PATH": str(stale)}
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "ext_theory", "--configfile",
                          "tests/workflow/config.yaml"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    prov = json.loads((work / "figures/tiny/ext_theory.provenance.json").read_text(encoding="utf-8"))
    kernel = prov["notebook_kernel"]
    assert kernel["name"] == "adversary-dynamics"
    assert Path(kernel["interpreter"]).resolve() == Path(sys.executable).resolve()
    assert (work / kernel["kernel_spec"]).is_file()
