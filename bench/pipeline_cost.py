#!/usr/bin/env python
"""What one configuration's pipeline cost, by stage: jobs (one process each), CPU seconds, wall seconds.

Reads the stage keys a configuration used (``results/<name>/stages.json``, written by every run)
and the benchmark files Snakemake wrote for those keys (``benchmarks/stages/<stage>/<key>/**.tsv``,
one file per job; the last line of a file is the job's latest run). Prints one row per stage and
the totals, then one JSON line with every number (``| tail -n 1 >> log.jsonl``). Nothing is timed
here: the numbers are Snakemake's own measurements of the runs that produced the results.

    python bench/pipeline_cost.py                        # the default configuration
    python bench/pipeline_cost.py --name fashion-mnist   # results/fashion-mnist/stages.json

A job's ``cpu_time`` is user + system CPU seconds of its process tree (psutil), ``s`` its wall
seconds; on a machine shared with other work, wall seconds grow and CPU seconds barely move, so
compare CPU seconds across runs. Exit status 2 when the configuration has no stages.json (run it first).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage_costs(name: str, *, root: Path = ROOT) -> list[dict]:
    """[{stage, key, jobs, cpu_s, wall_s, max_wall_s}] for configuration ``name``, in stages.json's order.
    Raises FileNotFoundError when ``results/<name>/stages.json`` is missing."""
    stages = json.loads((root / "results" / name / "stages.json").read_text())
    rows = []
    for stage, rec in stages.items():
        key = rec.get("key") or Path(rec["folder"]).name
        files = sorted((root / "benchmarks" / "stages" / stage / key).rglob("*.tsv"))
        cpu = wall = top = 0.0
        for f in files:
            with f.open() as fh:
                last = list(csv.DictReader(fh, delimiter="\t"))[-1]
            c, s = float(last.get("cpu_time") or 0.0), float(last["s"])
            cpu, wall, top = cpu + c, wall + s, max(top, s)
        rows.append({"stage": stage, "key": key, "jobs": len(files), "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                     "max_wall_s": round(top, 2)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="default", help="configuration name (results/<name>/stages.json)")
    args = p.parse_args(argv)
    try:
        rows = stage_costs(args.name)
    except FileNotFoundError as e:
        print(f"no stage record for configuration {args.name!r}: {e.filename} is missing; run the pipeline first",
              file=sys.stderr)
        return 2
    print(f"| stage | jobs | CPU s | wall s (sum) | longest job s |\n|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -r["cpu_s"]):
        print(f"| {r['stage']} | {r['jobs']} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['max_wall_s']:.1f} |")
    tot = {k: round(sum(r[k] for r in rows), 2) for k in ("jobs", "cpu_s", "wall_s")}
    print(f"| total | {tot['jobs']} | {tot['cpu_s']:.1f} | {tot['wall_s']:.1f} | |")
    print(json.dumps({"configuration": args.name, "stages": rows, "total": tot}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
