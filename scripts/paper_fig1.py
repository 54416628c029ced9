#!/usr/bin/env python
"""Paper Fig. 1 ("Landscapes and trajectories on simulated data"): write the tables
grid.csv, traj.csv, panels.csv, rim.csv and maxima.csv and provenance.json into --out-dir.

The computation is library code (adversary_dynamics.figures.simulated.fig1_tables); this is a thin CLI.
Every argument mirrors a key of the config's `paper_fig1:` block.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from adversary_dynamics.pipeline import cli

TABLES = ("grid", "traj", "panels", "rim", "maxima")


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-dir", type=Path, required=True, help="folder of the figure's tables")
    p.add_argument("--scales", type=cli.float_list, required=True, help="input scales s (rows), comma-separated")
    p.add_argument("--ratios", type=cli.float_list, required=True, help="ratios eps/s (columns), comma-separated")
    p.add_argument("--width", type=int, required=True, help="hidden width m of the softplus network")
    p.add_argument("--seed", type=int, default=0, help="seed of the network's weights")
    p.add_argument("--n-points", type=int, required=True, help="size of the simulated 2-D sample")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the simulated sample")
    p.add_argument("--label-rule", choices=("sign", "teacher"), default="sign")
    p.add_argument("--example", type=int, default=0, help="index of the (x, y) drawn in the panels")
    p.add_argument("--grid", type=int, required=True, help="disk grid resolution per axis")
    p.add_argument("--steps", type=int, required=True, help="PGD steps of each panel's trajectory")
    p.add_argument("--step-size", type=float, required=True, help="absolute PGD step eta (all panels)")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the uniform starts")
    p.add_argument("--maxima-ratios", type=cli.float_list, required=True, help="ratios of the maxima table")
    p.add_argument("--maxima-examples", type=int, required=True, help="examples per (scale, ratio) of the maxima table")
    p.add_argument("--restarts", type=int, required=True, help="PGA restarts per example (maxima table)")
    p.add_argument("--maxima-steps", type=int, required=True, help="normalised PGA steps per restart (maxima table)")
    p.add_argument("--maxima-step-fraction", type=float, required=True, help="first phase's step / eps")
    p.add_argument("--maxima-phases", type=int, default=4, help="phases, the step shrinking 4x per phase")
    p.add_argument("--cos-threshold", type=float, default=0.99, help="cosine above which two maxima are one")
    p.add_argument("--circle-points", type=int, required=True, help="angles on the circle |delta| = eps")
    p.add_argument("--config-json", type=str, default=None, help="the workflow configuration, as JSON")
    p.add_argument("--threads", type=int, default=1)
    cli.add_precision_arg(p)
    return cli.parse_args(p, argv)


def main(argv=None) -> int:
    started = time.time()
    args = get_args(argv)
    cfg = cli.print_config(args)
    cli.setup_threads(args.threads)
    cli.setup_device("cpu", args.precision)
    from adversary_dynamics.figures import simulated
    from adversary_dynamics.storage import runio

    out = simulated.fig1_tables(
        scales=args.scales, ratios=args.ratios, width=args.width, seed=args.seed, n_points=args.n_points,
        data_seed=args.data_seed, label_rule=args.label_rule, example=args.example, grid=args.grid,
        steps=args.steps, step_size=args.step_size, init_seed=args.init_seed, maxima_ratios=args.maxima_ratios,
        maxima_examples=args.maxima_examples, restarts=args.restarts, maxima_steps=args.maxima_steps,
        maxima_step_fraction=args.maxima_step_fraction, maxima_phases=args.maxima_phases,
        cos_threshold=args.cos_threshold, circle_points=args.circle_points)
    paths = {name: args.out_dir / f"{name}.csv" for name in TABLES}
    for name in TABLES:
        runio.write_csv_atomic(paths[name], out[name])
        print(f"wrote {paths[name]} ({len(out[name])} rows)", file=sys.stderr)
    config = cli.run_record(args) if args.stage else (json.loads(args.config_json) if args.config_json else None)
    runio.write_json_atomic(args.out_dir / "provenance.json", runio.provenance(
        config=config, device="cpu", started=started,
        extra={"figure_tables": [str(p) for p in paths.values()], "arguments": cfg, "runs": []}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
