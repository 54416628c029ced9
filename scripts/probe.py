#!/usr/bin/env python
"""Probe the adversarial loss landscape of the training runs of one scale (every seed) at
their saved checkpoints.

For every probed checkpoint: PGA from R random starts on N fixed test inputs (one batched
call), a local-maximum certificate for each final iterate (with its ``flat`` flag: the loss is
locally constant there, e.g. every hidden ReLU inactive), regularity measures per input
(distinct maxima over the non-flat restarts with finite losses, NaN when none is left; the flat
fraction), ``finite`` per restart (every loss of its trajectory is finite: a NaN or ±inf restart
is never converged, certified or counted as a maximum),
and (with --landscape-inputs > 0) plane slices of the loss with the projected trajectories.
The probed test inputs are rescaled as training rescaled them: by the training set's factor
s / mean_i ||x_i||_p (p = --norm), so --scale is the mean l_p norm of the training inputs.

Writes to --out-root/seed~<k>/: restarts.csv, regularity.csv, curves.npz, landscape.npz (if requested),
status.json and provenance.json. Checkpoints missing because the run diverged are skipped
and listed in status.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from adversary_dynamics.pipeline import cli
from adversary_dynamics.storage import datasets


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-root", type=Path, required=True, help="training folder of the scale (seed~<k>/ inside)")
    p.add_argument("--out-root", type=Path, required=True)
    p.add_argument("--scale", type=float, required=True,
                   help="input scale s: mean l_p norm of the training inputs after rescaling (as in train.py)")
    p.add_argument("--seeds", type=cli.int_list, required=True, help="comma-separated seeds")
    p.add_argument("--dataset", type=str, default="digits")
    p.add_argument("--root", type=str, default=None)
    p.add_argument("--n-train", type=cli.optional_int, default=None)
    p.add_argument("--n-test", type=cli.optional_int, default=None)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--ratio", type=float, required=True)
    p.add_argument("--norm", choices=("l2", "linf"), default="l2", help="p of the input scale (the threat norm)")
    cli.add_model_args(p)
    p.add_argument("--checkpoints", type=cli.int_list, required=True)
    p.add_argument("--n-inputs", type=int, required=True)
    p.add_argument("--restarts", type=int, required=True)
    p.add_argument("--max-steps", type=int, required=True)
    p.add_argument("--step-size", type=float, required=True, help="eta (a fraction of eps with --step-rule relative)")
    p.add_argument("--step-rule", choices=("relative", "absolute"), default="relative")
    p.add_argument("--tol", type=float, required=True)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--landscape-inputs", type=int, default=0, help="plane slices for this many inputs (first seed)")
    p.add_argument("--grid", type=int, default=61)
    p.add_argument("--cos-threshold", type=float, default=0.99)
    p.add_argument("--device", type=str, default="auto")
    p.add_argument("--threads", type=int, default=1)
    cli.add_precision_arg(p)
    return cli.parse_args(p, argv)


def probe_seed(args, cfg, *, model, x, y, eps: float, eta: float, device, seed: int, train_dir: Path,
               out_dir: Path, landscape_inputs: int) -> None:
    """Probe every checkpoint of one training run and write its raw results to ``out_dir``."""
    import torch
    from tqdm import tqdm

    from adversary_dynamics.figures import landscape
    from adversary_dynamics.storage import runio

    seed_started = time.time()
    rows, reg_rows, curves, land = [], [], {}, {}
    missing = []
    for k in tqdm(args.checkpoints, desc="probe", unit="checkpoint", file=sys.stderr):
        path = runio.checkpoint_path(train_dir, k)
        if not path.exists():
            missing.append(k)
            continue
        model.load_state_dict(torch.load(path, map_location=device, weights_only=True)["model"])
        g = torch.Generator(device=device).manual_seed(seed * 1000 + k)
        keep = min(landscape_inputs, x.shape[0])
        pr = landscape.probe_restarts(model, x, y, loss=args.loss, eps=eps, restarts=args.restarts,
                                      steps=args.max_steps, step_size=eta, tol=args.tol,
                                      patience=args.patience, keep_trajectories=keep, generator=g)
        L = pr.losses.cpu()
        curves[f"epoch_{k}"] = L.numpy().astype(np.float32)
        conv = pr.converged_at.cpu()
        fin = pr.finite.cpu()
        for r in range(args.restarts):
            for i in range(x.shape[0]):
                c = int(conv[r, i])
                rows.append({"checkpoint": k, "input": i, "restart": r, "converged": c >= 0,
                             "iterations": c if c >= 0 else args.max_steps, "on_sphere": bool(pr.on_sphere[r, i]),
                             "local_max": bool(pr.is_local_max[r, i]), "flat": bool(pr.flat[r, i]),
                             "constant": bool(pr.constant[r, i]),
                             "initial_loss": float(L[0, r, i]),
                             "final_loss": float(L[-1, r, i]), "norm_ratio": float(pr.norm_ratio[-1, r, i]),
                             "finite": bool(fin[r, i])})
        nli = landscape.nonlinearity_index(model, x, y, loss=args.loss, eps=eps, generator=g).cpu()
        final = L[-1]
        spread = (final.std(0) / final.mean(0).abs().clamp_min(1e-30))
        flat = pr.flat.cpu()
        flat_frac = landscape.flat_fraction(flat)
        for i in range(x.shape[0]):
            # flat restarts (locally constant loss, PGA never moved) are no maxima of their own, nor are
            # restarts whose losses are not finite
            dm = landscape.distinct_maxima(pr.deltas[:, i].cpu(), cos_threshold=args.cos_threshold,
                                           exclude=flat[:, i] | ~fin[:, i])
            reg_rows.append({"checkpoint": k, "input": i, "distinct_maxima": dm,
                             "flat_fraction": float(flat_frac[i]),
                             "loss_spread": float(spread[i]), "nonlinearity": float(nli[i])})
        for i in range(keep):
            # the best restart among those with finite losses (argmax would pick a NaN)
            fin_i = pr.finite[:, i]
            best = int(torch.argmax(torch.where(fin_i, pr.losses[-1, :, i], -math.inf)))
            sl = landscape.plane_slice(model, x[i], y[i], pr.deltas[best, i], loss=args.loss, eps=eps,
                                       grid=args.grid, trajectories=pr.trajectories[:, :, i], generator=g)
            pre = f"epoch_{k}/input_{i}/"
            land.update({pre + "coords": sl.coords.cpu().numpy() / eps, pre + "grid": sl.grid.cpu().numpy(),
                         pre + "angles": sl.angles.cpu().numpy(), pre + "circle": sl.circle.cpu().numpy(),
                         pre + "traj": sl.traj.cpu().numpy() / eps})
    out = out_dir
    out.mkdir(parents=True, exist_ok=True)
    runio.write_csv_atomic(out / "restarts.csv", rows, ["checkpoint", "input", "restart", "converged", "iterations",
                                                        "on_sphere", "local_max", "flat", "constant",
                                                        "initial_loss",
                                                        "final_loss", "norm_ratio", "finite"])
    runio.write_csv_atomic(out / "regularity.csv", reg_rows,
                           ["checkpoint", "input", "distinct_maxima", "flat_fraction", "loss_spread",
                            "nonlinearity"])
    with runio.atomic_path(out / "curves.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **curves)
    with runio.atomic_path(out / "landscape.npz") as tmp:  # empty unless --landscape-inputs > 0
        with open(tmp, "wb") as f:
            np.savez(f, **land)
    runio.write_json_atomic(out / "status.json", {"probed": [k for k in args.checkpoints if k not in missing],
                                                  "missing_checkpoints": missing, "eps": eps})
    runio.write_json_atomic(out / "provenance.json",
                            runio.provenance(config={**cli.run_record(args), "seed": seed, "train_run": str(train_dir)}, device=device, started=seed_started))
    if missing:
        print(f"checkpoints {missing} are missing (the run diverged before them): skipped", file=sys.stderr)
    print(json.dumps({"probed_rows": len(rows)}), file=sys.stderr)


def main(argv=None) -> int:
    args = get_args(argv)
    datasets.refuse_placeholder_or_exit(args.stage, root=getattr(args, "root", None))  # a dry run's key: no results
    cfg = cli.print_config(args)
    cli.setup_threads(args.threads)
    from adversary_dynamics.learning import data

    device = cli.setup_device(args.device, args.precision)
    ds = data.load_dataset(args.dataset, root=args.root, n_train=args.n_train, n_test=args.n_test,
                           seed=args.split_seed, dim=args.dim)
    idx = data.stratified_indices(ds.y_test.numpy(), min(args.n_inputs, len(ds.y_test)), seed=args.split_seed)
    x = data.rescale_to_scale(ds.x_test[idx], scale=args.scale, reference=ds.x_train, norm=args.norm).to(device)
    y = ds.y_test[idx].to(device)
    eps = data.epsilon(ratio=args.ratio, scale=args.scale)
    eta = data.step_length(step_size=args.step_size, eps=eps, rule=args.step_rule)
    model = cli.model_from_args(args, input_dim=ds.input_dim, n_classes=ds.n_classes, device=device,
                                image_shape=ds.image_shape)
    for j, seed in enumerate(args.seeds):
        probe_seed(args, cfg, model=model, x=x, y=y, eps=eps, eta=eta, device=device, seed=seed,
                   train_dir=args.train_root / f"seed~{seed}", out_dir=args.out_root / f"seed~{seed}",
                   landscape_inputs=args.landscape_inputs if j == 0 else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
