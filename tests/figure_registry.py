"""The figures registered in the workflow (FIGURES, FIGURE_TABLES_STAGE and figure_tables in
workflow/rules/common.smk; stage_registry.FIGURES), asked of Snakemake itself: the workflow is parsed
(no job runs) with a configuration, and each figure's tables and provenance (figure -> {"tables":
{notebook parameter: table path}, "provenance": path, "stage": its tables stage}) are read back, with
every stage's folder (results/stages/<stage>/<key>).
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
    g = w.globals
    figures = {f: {"tables": g["figure_tables"](f), "stage": g["FIGURE_TABLES_STAGE"][f],
                   "provenance": g["stage_dir"](g["FIGURE_TABLES_STAGE"][f]) + "/provenance.json"}
               for f in g["FIGURES"]}
    folders = {name: k.folder for name, k in g["KEYED"].items()}
    print("FIGURES-JSON " + json.dumps({"figures": figures, "rules": sorted(r.name for r in w.rules),
                                        "stages": folders}))
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
    the default config/config.yaml): figure -> {"tables": {parameter: path}, "provenance": path,
    "stage": the stage that writes its tables}."""
    return _parse(str(root), configfile)["figures"]


def stage_folders(configfile: str | None = None, root: Path = ROOT) -> dict[str, str]:
    """Every keyed stage of the workflow parsed with ``configfile`` -> its folder
    (results/stages/<stage>/<key>, relative to the working directory)."""
    return _parse(str(root), configfile)["stages"]


def rule_names(configfile: str | None = None, root: Path = ROOT) -> list[str]:
    """Names of all rules of the workflow parsed with ``configfile``."""
    return _parse(str(root), configfile)["rules"]
