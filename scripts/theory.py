#!/usr/bin/env python
"""The theory setting: Gaussian inputs, random two-layer networks, quadratic loss; PGA
iterations to an approximate local maximum at every scale, for every (d, m). Writes
--out-root/d~<d>/m~<m>/theory.csv and provenance.json."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adversary_dynamics import cli


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-root", type=Path, required=True)
    p.add_argument("--dims", type=cli.int_list, required=True, help="comma-separated input dimensions d")
    p.add_argument("--widths", type=cli.int_list, required=True, help="comma-separated hidden widths m")
    p.add_argument("--scales", type=cli.float_list, required=True, help="comma-separated input scales")
    p.add_argument("--ratio", type=float, required=True, help="eps = ratio * scale")
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--max-steps", type=int, required=True)
    p.add_argument("--step-size", type=float, required=True, help="eta (a fraction of eps with --step-rule relative)")
    p.add_argument("--step-rule", choices=("relative", "absolute"), default="relative")
    p.add_argument("--tol", type=float, required=True)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--activation", choices=("relu", "softplus", "tanh"), default="relu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", type=str, default="auto")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = get_args(argv)
    cfg = cli.print_config(args)
    cli.setup_threads(args.threads)
    from adversary_dynamics import runio, theory, training

    device = training.resolve_device(args.device)
    for d in args.dims:
        for m in args.widths:
            t0 = time.time()
            rows = theory.theory_run(d=d, m=m, scales=args.scales, ratio=args.ratio, trials=args.trials,
                                     max_steps=args.max_steps, step_size=args.step_size, step_rule=args.step_rule, tol=args.tol,
                                     patience=args.patience, activation=args.activation,
                                     seed=args.seed * 1_000_003 + d * 1009 + m, device=device)
            out = args.out_root / f"d~{d}" / f"m~{m}"
            runio.write_csv_atomic(out / "theory.csv", rows)
            runio.write_json_atomic(out / "provenance.json", runio.provenance(
                config={**cfg, "d": d, "m": m}, device=device, started=t0))
            conv = sum(r["converged"] for r in rows) / len(rows)
            print(f"d={d} m={m}: {len(rows)} rows, {conv:.1%} converged", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
