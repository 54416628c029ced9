#!/usr/bin/env python
"""Theorem 3.1's setting (softplus two-layer network at initialisation, scalar output, (y - f)^2,
absolute PGA step eta < eps^2, eps ~ (log m)^-2, widths m = ceil(d^p)): T1-T4 of the claims report.
Writes --out/pga.csv, hessian.csv, maxima.csv and provenance.json (the ext_theory tables)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adversary_dynamics.pipeline import cli


def _optional_activation(text: str) -> str | None:
    return None if text.strip().lower() in ("none", "null", "") else text


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="folder of the tables")
    p.add_argument("--dims", type=cli.int_list, required=True, help="input dimensions d")
    p.add_argument("--width-powers", type=cli.float_list, required=True, help="m = ceil(d^p) for each p")
    p.add_argument("--activation", choices=("softplus", "relu"), default="softplus")
    p.add_argument("--contrast-activation", type=_optional_activation, default="relu",
                   help="also run at m = ceil(d^2.5) (none: no contrast)")
    p.add_argument("--scales", type=cli.float_list, required=True, help="input scales ||x||")
    p.add_argument("--eps-factor", type=float, required=True, help="eps = factor * (log m)^-2")
    p.add_argument("--eta-fractions", type=cli.float_list, required=True, help="eta = fraction * eps^2")
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--max-steps", type=int, required=True)
    p.add_argument("--refine-factor", type=float, required=True)
    p.add_argument("--refine-tol", type=float, required=True)
    p.add_argument("--maxima-dims", type=cli.int_list, required=True)
    p.add_argument("--maxima-ratios", type=cli.float_list, required=True)
    p.add_argument("--maxima-trials", type=int, required=True)
    p.add_argument("--maxima-restarts", type=int, required=True)
    p.add_argument("--maxima-steps", type=int, required=True)
    p.add_argument("--maxima-step", type=float, required=True)
    p.add_argument("--maxima-tol", type=float, required=True)
    p.add_argument("--maxima-merge", type=float, required=True)
    p.add_argument("--hessian-descent", type=cli.bool_arg, default=True,
                   help="also test the minima on the sphere that descent reaches (T3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", type=str, default="cpu", help="cpu | cuda | auto (= cpu)")
    p.add_argument("--threads", type=int, default=1)
    cli.add_precision_arg(p)
    return cli.parse_args(p, argv)


def main(argv=None) -> int:
    args = get_args(argv)
    cfg = cli.print_config(args)
    cli.setup_threads(args.threads)

    from adversary_dynamics.figures import theory
    from adversary_dynamics.storage import runio

    if args.device == "auto":  # small lock-step programs: the CPU unless CUDA is asked for
        args.device = "cpu"
    device = cli.setup_device(args.device, args.precision)
    t0 = time.time()
    kw = {k: v for k, v in vars(args).items() if k not in ("out", "device", "threads", "precision", "stage")}
    tables = theory.theory_run(**kw, device=device)
    for name, rows in tables.items():
        runio.write_csv_atomic(args.out / f"{name}.csv", rows)
    runio.write_json_atomic(args.out / "provenance.json", runio.provenance(config=cli.run_record(args), device=device, started=t0))
    runs = tables["pga"]
    print(f"{len(runs)} runs ({sum(r['reached'] for r in runs) / max(len(runs), 1):.1%} reached the sphere), "
          f"{len(tables['hessian'])} Hessians, {len(tables['maxima'])} restart sets in {time.time() - t0:.1f}s",
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
