#!/usr/bin/env python
"""Escape time by input scale at fixed ratios under each PGA step rule (extension figure ext_step_rule,
issue 18; the paper's Fig. 2, Sec. 5.1.2, under its own absolute step and three alternatives).

    step_rule.py --params PARAMS.json --out-dir DIR [--root DATA]
    step_rule.py --out-dir DIR --scales 0.1,10,1000 --ratios 0.1,1 --seeds 0 --n-inputs 16 --step-size 1 \\
        --proportional-step 0.1 --normalized-step 0.01 --architecture cnn --loss squared_error ...

Probes the CNN at initialisation (one per seed, as Fig. 2) with
:func:`adversary_dynamics.figures.step_rule.step_rule_runs` (variants absolute, proportional,
normalized, absolute_scaled_input) and writes DIR/escape.csv (one row per variant, scale, seed, ratio,
input), DIR/summary.csv (per variant, ratio, scale), DIR/t5_by_variant.csv (T5's statistic under each
variant, by the claims' code and rules, ``--claims-rules``) and DIR/provenance.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from adversary_dynamics.pipeline import cli
from adversary_dynamics.storage import datasets


def _positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _rules(text: str) -> dict:
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON mapping of verdict rules, got {text!r}")
    return doc


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--dataset", type=str, default="digits")
    p.add_argument("--root", type=str, default=None)
    p.add_argument("--n-train", type=cli.optional_int, default=None, help="training subsample (defines the scale)")
    p.add_argument("--n-test", type=cli.optional_int, default=None)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--split-seed", type=int, default=0)
    cli.add_model_args(p)
    p.add_argument("--scales", type=cli.float_list, required=True, help="input scales s (paper_fig2.scales)")
    p.add_argument("--ratios", type=cli.float_list, required=True, help="fixed ratios, eps = ratio x s")
    p.add_argument("--seeds", type=cli.int_list, required=True, help="network seeds (initialisation)")
    p.add_argument("--n-inputs", type=int, required=True, help="first N test inputs")
    p.add_argument("--steps", type=int, default=1000, help="PGA steps T from the minimum")
    p.add_argument("--step-size", type=_positive, required=True, help="eta of the absolute variants")
    p.add_argument("--proportional-step", type=_positive, required=True, help="c of the proportional rule: eta = c eps")
    p.add_argument("--normalized-step", type=_positive, required=True,
                   help="c of the normalized rule: steps of c eps along the unit gradient")
    p.add_argument("--descent-steps", type=int, default=200)
    p.add_argument("--descent-step-size", type=float, default=0.1, help="first stage's step, fraction of eps")
    p.add_argument("--descent-stages", type=int, default=4)
    p.add_argument("--check-directions", type=int, default=32)
    p.add_argument("--check-radius", type=float, default=1e-2)
    p.add_argument("--check-mapping-step", type=float, default=1e-2)
    p.add_argument("--check-gtol", type=float, default=0.05)
    p.add_argument("--check-ftol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=1e-3, help="escape_time's rtol")
    p.add_argument("--censor-min-rise", type=float, default=0.1)
    p.add_argument("--censor-tail", type=float, default=0.1)
    p.add_argument("--censor-tail-rise", type=float, default=0.25)
    p.add_argument("--claims-rules", type=_rules, default={}, help="the verdict rules of T5 (config claims:, JSON)")
    p.add_argument("--device", type=str, default="auto")
    p.add_argument("--threads", type=int, default=1)
    cli.add_precision_arg(p)
    return cli.parse_args(p, argv)


def main(argv=None) -> int:
    args = get_args(argv)
    datasets.refuse_placeholder_or_exit(args.stage, root=args.root)  # a dry run's key: no results
    started = time.time()
    cli.print_config(args)
    cli.setup_threads(args.threads)
    import pandas as pd
    import torch

    from adversary_dynamics.figures import step_rule
    from adversary_dynamics.learning import data, models
    from adversary_dynamics.storage import runio

    if args.architecture != "cnn":
        raise SystemExit(f"--architecture {args.architecture}: ext_step_rule probes the CNN of Fig. 2 (cnn)")
    variants = step_rule.variant_specs(args.step_size, args.proportional_step, args.normalized_step)
    device = cli.setup_device(args.device, args.precision)
    ds = data.load_dataset(args.dataset, root=args.root, n_train=args.n_train, n_test=args.n_test,
                           seed=args.split_seed, dim=args.dim)
    if args.n_inputs > ds.x_test.shape[0]:
        raise SystemExit(f"--n-inputs {args.n_inputs} exceeds the {ds.x_test.shape[0]} test inputs")
    spec = cli.model_spec(args)

    def build(seed):
        return models.build_model(spec, input_dim=ds.input_dim, image_shape=ds.image_shape, n_outputs=ds.n_classes,
                                  generator=torch.Generator().manual_seed(seed), device=device)

    inputs = {s: data.rescale_to_scale(ds.x_test, scale=s, reference=ds.x_train, norm="l2")[: args.n_inputs].to(device)
              for s in args.scales}
    y = ds.y_test[: args.n_inputs].to(device)
    descent = dict(steps=args.descent_steps, step_size=args.descent_step_size, stages=args.descent_stages,
                   directions=args.check_directions, radius=args.check_radius,
                   mapping_step=args.check_mapping_step, gtol=args.check_gtol, ftol=args.check_ftol)
    censor = dict(min_rise=args.censor_min_rise, tail=args.censor_tail, tail_rise=args.censor_tail_rise)
    rows = step_rule.step_rule_runs(build, inputs, y, ratios=args.ratios, seeds=args.seeds, variants=variants,
                                    loss=args.loss, steps=args.steps, descent=descent, rtol=args.rtol, censor=censor,
                                    device=device, log=lambda text: print(text, file=sys.stderr, flush=True))
    out = args.out_dir
    columns = step_rule.escape_columns()
    runio.write_csv_atomic(out / "escape.csv", rows, columns)
    escape = pd.read_csv(out / "escape.csv")  # the tables from the written rows (what the claims and notebook read)
    summary = step_rule.summary_table(escape, steps=args.steps)
    t5 = step_rule.t5_by_variant(escape, args.claims_rules)
    for name, table in (("summary", summary), ("t5_by_variant", t5)):
        records = [{k: float(v) if isinstance(v, float) else v for k, v in r.items()} for r in table.to_dict("records")]
        runio.write_csv_atomic(out / f"{name}.csv", records, list(table.columns))
    runio.write_json_atomic(out / "provenance.json",
                            runio.provenance(config=cli.run_record(args), device=device, started=started))
    for r in t5.itertuples():
        print(f"T5 under {r.variant}: ratio {r.ratio:g}: rho {r.rho:.3g} [{r.lo:.3g}, {r.hi:.3g}] {r.verdict} "
              f"(variant: {r.variant_verdict})", file=sys.stderr)
    print(f"wrote {len(rows)} runs to {out} in {time.time() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
