"""environment.yml (conda) and pyproject.toml (pip) name the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        pip_reqs += extra
    pip_names = {_name(r) for r in pip_reqs}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            conda_names |= {_name(r) for r in dep.get("pip", [])}
        elif _name(dep) not in ("python", "pip"):
            conda_names.add(CONDA_TO_PIP.get(_name(dep), _name(dep)))
    assert conda_names == pip_names, (
        f"only in environment.yml: {sorted(conda_names - pip_names)}; "
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}"
    )


def test_readme_commands_match_ci():
    """The test command of README.md is the one .ci/run runs."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmd = ('pip install torch==2.13.0 && pip install -e ".[test,slurm]" && pip install --no-deps torchattacks==3.5.1 '
           "&& python -m pytest")
    assert cmd in readme and cmd in ci
    assert "snakemake --cores 8" in readme
