#!/usr/bin/env python
"""Escape from local minima of the adversarial loss: the paper's Figs. 2–3 (Sec. 5.1.2).

    escape.py run --figure fig2 --out-dir DIR --scales 0.1,10,1000 --ratios 0.001,...,10 --seeds 0 ...
    escape.py run --figure fig3 --out-dir DIR --train-root ROOT --checkpoints 0,10,100 ...
    escape.py tables --runs DIR ... --out-dir TABLES/<figure> [--config-json JSON]

``run`` probes CNNs (fig2: at initialisation, seed = init seed; fig3: the checkpoints of the
adversarially trained models under ROOT/scale~<s>/ratio~<r>/seed~<k>/, one model per ratio) with
:func:`adversary_dynamics.figures.escape.probe_escape` (descent to a local minimum of the loss in the
ball, then PGA with the paper's update) and writes DIR/escape.csv (one row per (scale, ratio,
seed, checkpoint, input)), DIR/curves.npz (``losses``: row i's trajectory, float32),
DIR/levels.csv (fig2: the clean loss of both input-normalisation variants), DIR/escape_replica.csv
(the rows of the replica trajectories, ``--replica-ulps``; column replica_ulps) and provenance.json.
``tables`` aggregates runs into a figure's tables (:func:`adversary_dynamics.figures.escape.write_tables`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from adversary_dynamics.pipeline import cli
from adversary_dynamics.storage import datasets


def _fmt(x: float) -> str:
    return f"{float(x):g}"


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="probe models and write one raw run")
    r.add_argument("--figure", choices=("fig2", "fig3"), required=True)
    r.add_argument("--out-dir", type=Path, required=True)
    r.add_argument("--train-root", type=Path, default=None, help="fig3: folder of scale~<s>/ratio~<r>/seed~<k>/")
    r.add_argument("--checkpoints", type=cli.int_list, default=[0], help="fig3: epochs probed")
    r.add_argument("--dataset", type=str, default="digits")
    r.add_argument("--root", type=str, default=None)
    r.add_argument("--n-train", type=cli.optional_int, default=None, help="training subsample (defines the scale)")
    r.add_argument("--n-test", type=cli.optional_int, default=None)
    r.add_argument("--dim", type=int, default=64)
    r.add_argument("--split-seed", type=int, default=0)
    cli.add_model_args(r)
    r.add_argument("--norm", choices=("l2",), default="l2", help="the paper's l2 ball (p of the input scale)")
    r.add_argument("--scales", type=cli.float_list, required=True)
    r.add_argument("--ratios", type=cli.float_list, required=True)
    r.add_argument("--seeds", type=cli.int_list, required=True)
    r.add_argument("--n-inputs", type=int, required=True, help="first N test inputs")
    r.add_argument("--steps", type=int, default=1000, help="PGA steps from the minimum")
    r.add_argument("--step-size", type=float, required=True, help="eta, absolute")
    r.add_argument("--descent-steps", type=int, default=200)
    r.add_argument("--descent-step-size", type=float, default=0.1, help="first stage's step, fraction of eps")
    r.add_argument("--descent-stages", type=int, default=4)
    r.add_argument("--check-directions", type=int, default=32)
    r.add_argument("--check-radius", type=float, default=1e-2)
    r.add_argument("--check-mapping-step", type=float, default=1e-2)
    r.add_argument("--check-gtol", type=float, default=0.05)
    r.add_argument("--check-ftol", type=float, default=1e-4)
    r.add_argument("--rtol", type=float, default=1e-3, help="escape_time's rtol")
    r.add_argument("--step-rule", choices=("absolute", "proportional", "normalized"), default="absolute",
                   help="absolute: eta = step size (the paper's); proportional: eta = step size x eps; normalized: "
                        "steps of step size x eps along the unit gradient")
    r.add_argument("--start-ulp", type=int, default=0, help="the probe starts from the uniform start moved this many ulps (0: itself)")
    r.add_argument("--replica-ulps", type=cli.int_list, default=[], help="one replica probe per value, from the "
                   "uniform start moved start-ulp + k ulps (the claims' numerical margin); escape_replica.csv")
    r.add_argument("--censor-min-rise", type=float, default=0.1,
                   help="censoring rule (a): censored if the rise <= this x eps ||grad at the uniform start||")
    r.add_argument("--censor-tail", type=float, default=0.1, help="censoring rule (b): the last fraction of the steps")
    r.add_argument("--censor-tail-rise", type=float, default=0.25,
                   help="censoring rule (b): censored if more than this share of the rise is first reached in the tail")
    r.add_argument("--input-normalization", choices=("none", "scale"), default="none",
                   help="fig2: none (plain CNN) or scale (the CNN sees x / s)")
    r.add_argument("--device", type=str, default="auto")
    r.add_argument("--threads", type=int, default=1)
    cli.add_precision_arg(r)
    t = sub.add_parser("tables", help="aggregate runs into a figure's tables")
    t.add_argument("--runs", nargs="+", type=Path, required=True)
    t.add_argument("--out-dir", type=Path, required=True)
    t.add_argument("--config-json", type=str, default=None)
    t.add_argument("--extra-runs", nargs="*", type=Path, default=[], help="runs named in provenance.json only "
                   "(Fig. 3: the training runs probed)")
    t.add_argument("--points", type=int, default=100, help="evenly spaced steps kept in curves.csv")
    return cli.parse_args(p, argv)


def run(args) -> int:
    started = time.time()
    cfg = cli.print_config(args)
    cli.setup_threads(args.threads)
    import numpy as np
    import torch

    from adversary_dynamics.figures import escape
    from adversary_dynamics.learning import data, losses, models
    from adversary_dynamics.storage import runio

    if args.figure == "fig3" and args.train_root is None:
        raise SystemExit("--train-root is required with --figure fig3")
    if args.figure == "fig3" and args.input_normalization != "none":
        raise SystemExit("--input-normalization scale is for fig2 only (the trained CNN has no such layer)")
    device = cli.setup_device(args.device, args.precision)
    ds = data.load_dataset(args.dataset, root=args.root, n_train=args.n_train, n_test=args.n_test,
                           seed=args.split_seed, dim=args.dim)
    if args.n_inputs > ds.x_test.shape[0]:
        raise SystemExit(f"--n-inputs {args.n_inputs} exceeds the {ds.x_test.shape[0]} test inputs")
    spec = cli.model_spec(args)
    descent = dict(steps=args.descent_steps, step_size=args.descent_step_size, stages=args.descent_stages,
                   directions=args.check_directions, radius=args.check_radius,
                   mapping_step=args.check_mapping_step, gtol=args.check_gtol, ftol=args.check_ftol)
    censor = dict(min_rise=args.censor_min_rise, tail=args.censor_tail, tail_rise=args.censor_tail_rise)

    def build(seed):
        return models.build_model(spec, input_dim=ds.input_dim, image_shape=ds.image_shape, n_outputs=ds.n_classes,
                                  generator=torch.Generator().manual_seed(seed), device=device)

    rows, rep_rows, curves, levels = [], [], [], []
    for s in args.scales:
        x_all = data.rescale_to_scale(ds.x_test, scale=s, reference=ds.x_train, norm=args.norm)
        x = x_all[: args.n_inputs].to(device)
        y = ds.y_test[: args.n_inputs].to(device)
        for seed in args.seeds:
            starts = escape.unit_ball_starts(x.shape[0], x.shape[1], generator=torch.Generator().manual_seed(seed),
                                             dtype=x.dtype).to(device)
            if args.figure == "fig2":
                jobs = [(0, args.ratios, build(seed))]
            else:  # every (ratio, checkpoint) model of the scale in one batched call (rows of a StackedCNN)
                nets, ratios, cks = [], [], []
                for ratio in args.ratios:
                    run_dir = args.train_root / f"scale~{_fmt(s)}" / f"ratio~{_fmt(ratio)}" / f"seed~{seed}"
                    for k in args.checkpoints:
                        m = build(seed)
                        ck = torch.load(runio.checkpoint_path(run_dir, k), map_location=device)
                        m.load_state_dict(ck["model"])
                        nets.append(m)
                        ratios.append(ratio)
                        cks.append(k)
                jobs = [(cks, ratios, models.StackedCNN(nets))]
            for k, ratios, m in jobs:
                m.eval()
                if args.figure == "fig2":
                    with torch.no_grad():
                        for variant, net in (("none", m), ("scale", escape.InputScaled(m, scale=s))):
                            lc = losses.get_loss(args.loss)(net(x), y)
                            levels.append({"scale": s, "seed": seed, "input_normalization": variant,
                                           "used": variant == args.input_normalization,
                                           "loss_clean_mean": float(lc.mean()), "loss_clean_median": float(lc.median())})
                    if args.input_normalization == "scale":
                        m = escape.InputScaled(m, scale=s)
                t0 = time.time()
                pr = escape.probe_escape(m, x, y, ratios=ratios, scale=s, loss=args.loss, step_size=args.step_size,
                                         steps=args.steps, starts=starts, descent=descent, rtol=args.rtol, censor=censor,
                                         generator=torch.Generator(device=device).manual_seed(1000 * seed + 1),
                                         start_ulp=args.start_ulp, replica_ulps=args.replica_ulps,
                                         step_rule=args.step_rule)
                eta = escape.step_of(args.step_rule, args.step_size, pr.eps)  # column eta: the step each row used
                rows += escape.run_rows(pr, scale=s, ratios=ratios, eta=eta, seed=seed, checkpoint=k, labels=y)
                for ulps, rep in zip(args.replica_ulps, pr.replicas):
                    rep_rows += [{**r, "replica_ulps": int(ulps)} for r in escape.run_rows(
                        rep, scale=s, ratios=ratios, eta=eta, seed=seed, checkpoint=k, labels=y)]
                curves.append(pr.losses.reshape(pr.losses.shape[0], -1).t().float().cpu().numpy())
                conv = float(pr.descent.converged.float().mean())
                print(f"scale={_fmt(s)} seed={seed} checkpoint={k} ratios={ratios}: {time.time() - t0:.1f} s, "
                      f"descent converged {conv:.0%}, median escape (escaped runs) "
                      f"{np.median(pr.escape_time[pr.escaped].cpu().numpy()) if pr.escaped.any() else float('nan')}, "
                      f"censored {int(pr.censored.sum())} of {pr.censored.numel()} (rule a: "
                      f"{int(pr.censored_rise.sum())}, rule b: {int(pr.censored_late.sum())})",
                      file=sys.stderr, flush=True)
    out = args.out_dir
    runio.write_csv_atomic(out / "escape.csv", rows, escape.ESCAPE_COLUMNS)
    runio.write_csv_atomic(out / "escape_replica.csv", rep_rows, [*escape.ESCAPE_COLUMNS, "replica_ulps"])
    with runio.atomic_path(out / "curves.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, losses=np.concatenate(curves, 0))
    if levels:
        runio.write_csv_atomic(out / "levels.csv", levels)
    runio.write_json_atomic(out / "provenance.json", runio.provenance(config=cli.run_record(args), device=device, started=started))
    print(f"wrote {len(rows)} rows to {out} in {time.time() - started:.1f} s", file=sys.stderr)
    return 0


def tables(args) -> int:
    from adversary_dynamics.figures import escape_tables as escape  # no torch

    paths = escape.write_tables(args.runs, out_dir=args.out_dir, points=args.points, extra_runs=args.extra_runs,
                                config=cli.run_record(args) if args.stage else (json.loads(args.config_json) if args.config_json else None))
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = get_args(argv)
    datasets.refuse_placeholder_or_exit(args.stage, root=getattr(args, "root", None))  # a dry run's key: no results
    return run(args) if args.command == "run" else tables(args)


if __name__ == "__main__":
    sys.exit(main())
