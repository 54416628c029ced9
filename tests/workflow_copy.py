"""Copy the workflow into a temporary folder so tests never touch the repository's results."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("Snakefile", "environment.yml", "workflow", "scripts", "config", "notebooks", "profiles", "src/adversary_dynamics",
         "tests/workflow")


def copy_workflow(dst: Path, *, root: Path = ROOT) -> Path:
    """The files a workflow run reads (rule code inputs included), from the checkout ``root``,
    without results or logs (also used by bench/gpu_paper_commands.py)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for part in PARTS:
        src = Path(root) / part
        if not src.exists():
            continue
        target = dst / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=ignore)
        else:
            shutil.copy2(src, target)
    return dst
