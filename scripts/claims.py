#!/usr/bin/env python
"""Check the paper's statements T1-T7 (and our extensions E1-E4) against the figure tables and
write a Markdown report and a JSON file, one entry per claim with its paper location, statistic,
interval, runs and verdict by the rules given here (the configuration's `claims:` section).

A table given as `none` (or a path that does not exist) is missing: the claims that need it are
inconclusive and say why.

    claims.py --theory-runs R.csv --theory-hessian H.csv --theory-maxima M.csv --fig1-maxima none \\
        --escape-scale E2.csv --escape-training E3.csv --training-runs T.csv --pga-final F.csv \\
        --landscape-regularity G.csv --confidence 0.95 --bootstrap 2000 ... --out-md claims.md --out-json claims.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from adversary_dynamics.pipeline import cli

from adversary_dynamics.claims import TABLES  # the one list of the tables: name -> (figure, table, claims)


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


def _table(text: str) -> Path | None:
    return None if text.strip().lower() in ("none", "") else Path(text)


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t = p.add_argument_group("tables (a path or none)")
    for name, tab in TABLES.items():
        t.add_argument(f"--{name.replace('_', '-')}", type=_table, default=None, help=f"{tab.path} ({tab.claims})")
    r = p.add_argument_group("verdict rules (config `claims:`)")
    r.add_argument("--confidence", type=_level, required=True, help="two-sided level of every interval")
    r.add_argument("--bootstrap", type=_positive_int, required=True, help="bootstrap resamples")
    r.add_argument("--seed", type=int, required=True, help="seed of the bootstrap")
    r.add_argument("--min-runs", type=_positive_int, required=True, help="fewer units in a group -> inconclusive")
    r.add_argument("--min-fraction", type=_fraction, required=True, help="fraction rules (T2-T4, E1, E2)")
    r.add_argument("--min-supported-groups", type=_fraction, required=True,
                   help="share of counted groups that must be supported (none contradicting)")
    r.add_argument("--iterations-slope", type=float, required=True, help="T1: least admissible slope of iterations")
    r.add_argument("--distance-slope", type=float, required=True, help="T1: least admissible slope of the distance")
    r.add_argument("--slope-tolerance", type=float, required=True, help="T1: tolerance below a slope bound")
    r.add_argument("--min-rate", type=float, required=True, help="T2: least loss increase per unit eta")
    r.add_argument("--theorem-activation", choices=("softplus", "relu"), default="softplus")
    r.add_argument("--margin-factor", type=float, default=2.0,
                   help="T5/T6: intervals widened by this x the numerical margin before the verdict")
    r.add_argument("--e2-leave-out", choices=("flat", "constant", "none"), default="flat",
                   help="E2: certified maxima left out (flat, constant, none)")
    p.add_argument("--config-name", type=str, default="default")
    p.add_argument("--out-md", type=Path, required=True)
    p.add_argument("--out-json", type=Path, required=True)
    return cli.parse_args(p, argv)


def main(argv=None) -> int:
    args = get_args(argv)
    from adversary_dynamics.pipeline import cli

    cli.print_config(args)
    import pandas as pd

    from adversary_dynamics import claims
    from adversary_dynamics.storage import runio

    t0 = time.time()
    paths = {k: getattr(args, k) for k in TABLES}
    tables = {k: pd.read_csv(v) if v is not None and v.is_file() else None for k, v in paths.items()}
    rules = {k: getattr(args, k) for k in claims.DEFAULT_RULES}
    results = claims.evaluate_claims(tables, rules)
    runio.write_text_atomic(args.out_md, claims.render_markdown(results, args.config_name, rules))
    runio.write_json_atomic(args.out_json, claims.to_jsonable({
        "config_name": args.config_name,
        "rules": rules,
        "tables": {k: (str(v) if tables[k] is not None else None) for k, v in paths.items()},
        "code_version": runio.code_version(),
        "claims": results,
    }))
    for e in results:
        print(f"{e['id']}: {e['verdict']} ({e['value']!r}, interval {e['interval']}, {e['runs']['count']} runs)",
              file=sys.stderr)
    print(f"wrote {args.out_md} and {args.out_json} in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
