#!/usr/bin/env python
"""Turn raw runs into the tidy tables behind each extension figure (docs/tables.md); the
aggregation itself is library code (adversary_dynamics.figures.tables).

    aggregate.py ext_pga_convergence --runs S:SEED:PROBE_DIR ... --max-steps T --out-curves C.csv --out-final F.csv
    aggregate.py ext_training_convergence --runs S:SEED:TRAIN_DIR ... --threshold 0.5 --out-steps ... --out-epochs ... --out-runs ...
    aggregate.py ext_landscape_statistics --runs S:SEED:PROBE_DIR ... --out-grid ... --out-circle ... --out-traj ... --out-regularity ...

(fig1, fig2, fig3 are accepted as the old names of the three subcommands; ext_theory's tables are
written by scripts/theory.py.) Each takes --out-provenance P.json and --config-json '{...}'.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from adversary_dynamics.figures import tables
from adversary_dynamics.pipeline import cli

# subcommand -> (its old name, its tables)
FIGURES = {
    "ext_pga_convergence": ("fig1", ("curves", "final")),
    "ext_training_convergence": ("fig2", ("steps", "epochs", "runs")),
    "ext_landscape_statistics": ("fig3", ("grid", "circle", "traj", "regularity")),
}
ALIASES = {old: fig for fig, (old, _) in FIGURES.items()}


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="figure", required=True)
    for fig, (old, names) in FIGURES.items():
        q = sub.add_parser(fig, aliases=[old])
        q.add_argument("--runs", nargs="+", required=True, help="KEY:SEED:FOLDER of every run")
        for name in names:
            q.add_argument(f"--out-{name}", dest=f"out_{name}", type=Path, required=True, help=f"write the {name} table here")
        if fig == "ext_pga_convergence":
            q.add_argument("--max-steps", type=int, required=True, help="PGA iteration budget of the probes")
        if fig == "ext_training_convergence":
            q.add_argument("--threshold", type=float, required=True, help="relative adversarial loss threshold")
        q.add_argument("--out-provenance", type=Path, default=None, help="write the provenance record here")
        q.add_argument("--config-json", type=str, default=None, help="the workflow configuration, as JSON")
    args = cli.parse_args(p, argv)
    args.figure = ALIASES.get(args.figure, args.figure)
    return args


def main(argv=None) -> int:
    args = get_args(argv)
    runs = tables.parse_runs(args.runs)
    if args.figure == "ext_pga_convergence":
        out = tables.pga_convergence_tables(runs, max_steps=args.max_steps)
    elif args.figure == "ext_training_convergence":
        out = tables.training_convergence_tables(runs, threshold=args.threshold)
    else:
        out = tables.landscape_statistics_tables(runs)
    paths = {name: getattr(args, f"out_{name}") for name in FIGURES[args.figure][1]}
    tables.write_tables(out, paths)
    for name, df in out.items():
        print(f"wrote {paths[name]} ({len(df)} rows)", file=sys.stderr)
    if args.out_provenance is not None:
        config = cli.run_record(args) if args.stage else (json.loads(args.config_json) if args.config_json else None)
        tables.write_provenance(args.out_provenance, tables=list(paths.values()), runs=runs, config=config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
