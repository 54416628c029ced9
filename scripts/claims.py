#!/usr/bin/env python
"""Check the paper's claims against the aggregated tables (docs/tables.md) and write a
Markdown report and a JSON file, one entry per claim, each with its statistic, interval,
number of runs and verdict by the rules given here (the configuration's `claims:` section).

    claims.py --fig1-final F1.csv --fig2-runs F2.csv --fig3-regularity F3.csv --fig4-theory F4.csv \\
        --config-name default --min-fraction 0.9 --confidence 0.95 --bootstrap 2000 --seed 0 \\
        --min-runs 3 --power-law-fraction 0.75 --max-slope 3 --out-md claims.md --out-json claims.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _fraction(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}")
    return v


def _level(text: str) -> float:
    v = float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a level in (0, 1), got {text!r}")
    return v


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t = p.add_argument_group("tables")
    t.add_argument("--fig1-final", type=Path, required=True, help="fig1_final.csv (claims 1-3)")
    t.add_argument("--fig2-runs", type=Path, required=True, help="fig2_runs.csv (claim 4)")
    t.add_argument("--fig3-regularity", type=Path, required=True, help="fig3_regularity.csv (claim 5)")
    t.add_argument("--fig4-theory", type=Path, required=True, help="fig4_theory.csv (claims 2 and 6)")
    r = p.add_argument_group("verdict rules (config `claims:`)")
    r.add_argument("--min-fraction", type=_fraction, required=True, help="claims 1-2: least fraction")
    r.add_argument("--confidence", type=_level, required=True, help="two-sided level of every interval")
    r.add_argument("--bootstrap", type=_positive_int, required=True, help="bootstrap resamples")
    r.add_argument("--seed", type=int, required=True, help="seed of the bootstrap")
    r.add_argument("--min-runs", type=_positive_int, required=True,
                   help="fewer seeds per scale (theory: trials per cell) -> inconclusive")
    r.add_argument("--power-law-fraction", type=_fraction, required=True,
                   help="claim 6: least fraction of curves where the power law fits better than the exponential")
    r.add_argument("--max-slope", type=float, required=True, help="claim 6: largest admissible log-log slope")
    p.add_argument("--config-name", type=str, default="default")
    p.add_argument("--out-md", type=Path, required=True)
    p.add_argument("--out-json", type=Path, required=True)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = get_args(argv)
    from adversary_dynamics import cli

    cli.print_config(args)
    import pandas as pd

    from adversary_dynamics import claims, runio

    t0 = time.time()
    paths = {"fig1_final": args.fig1_final, "fig2_runs": args.fig2_runs, "fig3_regularity": args.fig3_regularity,
             "fig4_theory": args.fig4_theory}
    tables = {k: pd.read_csv(v) for k, v in paths.items()}
    rules = {"min_fraction": args.min_fraction, "confidence": args.confidence, "bootstrap": args.bootstrap,
             "seed": args.seed, "min_runs": args.min_runs, "power_law_fraction": args.power_law_fraction,
             "max_slope": args.max_slope}
    results = claims.evaluate_claims(tables, rules)
    runio.write_text_atomic(args.out_md, claims.render_markdown(results, args.config_name, rules))
    runio.write_json_atomic(args.out_json, claims.to_jsonable({
        "config_name": args.config_name,
        "rules": rules,
        "tables": {k: str(v) for k, v in paths.items()},
        "code_version": runio.code_version(),
        "claims": results,
    }))
    for e in results:
        print(f"claim {e['id']}: {e['verdict']} ({e['value']!r}, interval {e['interval']}, {e['n_runs']} runs)",
              file=sys.stderr)
    print(f"wrote {args.out_md} and {args.out_json} in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
