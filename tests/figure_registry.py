"""The figures registered in the workflow (register_figure in workflow/rules/*.smk), asked of
Snakemake itself: the workflow is parsed (no job runs) with a configuration, and its FIGURES
dict (figure -> {"tables": {notebook parameter: table path}, "provenance": path}) is read back.
Parsing runs in a subprocess (a few seconds) so that Snakemake's logging stays out of pytest;
it runs no job and writes no result."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi, OutputSettings, ResourceSettings, ConfigSettings
root, configfile, workdir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
cfg = ConfigSettings(configfiles=[Path(configfile)] if configfile else [])
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), config_settings=cfg, snakefile=root / "Snakefile",
                      workdir=workdir)
    w = wf._workflow
    print("FIGURES-JSON " + json.dumps({"figures": w.globals["FIGURES"], "rules": sorted(r.name for r in w.rules)}))
"""


@functools.lru_cache(maxsize=None)
def _parse(root: str, configfile: str | None) -> dict:
    cfg = str(Path(root) / configfile) if configfile else ""
    res = subprocess.run([sys.executable, "-c", _SCRIPT, root, cfg, root], capture_output=True, text=True,
                         timeout=120, cwd=root)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("FIGURES-JSON ")), None)
    if res.returncode != 0 or line is None:
        raise RuntimeError(f"could not parse the workflow ({configfile}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json.loads(line[len("FIGURES-JSON "):])


def registered_figures(configfile: str | None = None, root: Path = ROOT) -> dict[str, dict]:
    """FIGURES of the workflow at ``root`` parsed with ``configfile`` (relative to ``root``; None:
    the default config/config.yaml): figure -> {"tables": {parameter: path}, "provenance": path}."""
    return _parse(str(root), configfile)["figures"]


def rule_names(configfile: str | None = None, root: Path = ROOT) -> list[str]:
    """Names of all rules of the workflow parsed with ``configfile``."""
    return _parse(str(root), configfile)["rules"]
