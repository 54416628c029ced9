"""Copy the workflow into a temporary folder so tests never touch the repository's results."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("Snakefile", "environment.yml", "workflow", "scripts", "config", "notebooks", "profiles", "src/adversary_dynamics",
         "tests/workflow")


def copy_workflow(dst: Path, *, root: Path = ROOT) -> Path:
    """The files a workflow run reads (the code its stage keys cover included), from the checkout ``root``,
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


def stage_record(work: Path, config_name: str) -> dict:
    """results/<config_name>/stages.json of a run in ``work``: stage -> its record (key, folder, reads, ...),
    written by the workflow before the first job."""
    import json

    return json.loads((Path(work) / "results" / config_name / "stages.json").read_text(encoding="utf-8"))


def stage_folder(work: Path, config_name: str, stage: str) -> Path:
    """The folder of ``stage``'s results (results/stages/<stage>/<key>) for the configuration whose record
    folder is results/<config_name>/, as its stages.json names it (absolute, under ``work``)."""
    return Path(work) / stage_record(work, config_name)[stage]["folder"]
