#!/usr/bin/env python
"""Adversarially train networks (two-layer or CNN, --architecture) at one input scale, one run per seed.

The input scale s is the paper's (Sec. 5.1): the mean l_p norm (p = --norm) of the training
inputs after one global rescaling x <- x * s / mean_i ||x_i||_p, applied to train and test
with the training set's factor; eps = ratio * s.

Writes to --out-root/seed~<k>/ for every seed: steps.csv, epochs.csv, status.json,
provenance.json, checkpoints/epoch_XXXX.pt and state.pt (resume state). Seeds run one after
another in one process (one interpreter start per scale), or, with --batch-seeds, all together
as one batched program (one ensemble network: an ensemble TwoLayerNet, or a CNNEnsemble of the
seeds' CNNs; equal to one after another up to floating-point rounding; the group's resume state
is then --out-root/state-batched.pt instead of the seeds' state.pt). Rerunning after an interruption
resumes from the resume state; on SIGTERM the resume state is written and the process exits
with 143 (during training at the next minibatch boundary; before or between trainings at once,
any file being written is dropped whole by the atomic writes).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from adversary_dynamics.pipeline import cli
from adversary_dynamics.storage import datasets

BATCH_SEEDS = ("auto", "true", "false")
GROUP_STATE = "state-batched.pt"  # the batched seeds' resume state, in --out-root
# auto on CPU: bench/train_speed.py measured batching 3 seeds not reliably faster there (speed-up over
# one after another, default config: 0.75-0.84 at 1 thread, the workflow default; 0.6-1.24 at 2 threads,
# within the noise; MNIST shape 0.91-0.95), so auto batches two-layer nets on CUDA only
CPU_BATCHED = False
# CNNs on CPU: stacking pays where per-operation overhead matters, i.e. small images (bench/train_speed.py,
# "stacked CNNs": digits 8x8 CNNs faster stacked for K = 3, 9, 18; classic 28x28 CNNs not reliably), so auto
# stacks CNNs on CPU when H*W is at most this many pixels
CPU_STACK_MAX_PIXELS = 64


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-root", type=Path, required=True, help="folder of the scale; runs go to seed~<k>/")
    p.add_argument("--scale", type=float, required=True,
                   help="input scale s: mean l_p norm of the training inputs after rescaling")
    p.add_argument("--seeds", type=cli.int_list, required=True, help="comma-separated training seeds")
    p.add_argument("--dataset", type=str, default="digits", help="dataset name")
    p.add_argument("--root", type=str, default=None, help="dataset folder (file-based datasets)")
    p.add_argument("--download", type=cli.bool_arg, default=False)
    p.add_argument("--n-train", type=cli.optional_int, default=None)
    p.add_argument("--n-test", type=cli.optional_int, default=None)
    p.add_argument("--dim", type=int, default=64, help="input dimension of the gaussian dataset")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--ratio", type=float, required=True, help="eps = ratio * scale")
    p.add_argument("--norm", choices=("l2", "linf"), default="l2", help="threat norm; p of the input scale")
    cli.add_model_args(p)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--lr-scale-power", type=float, default=0.0, help="lr used = lr * scale**(-power)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--attack-steps", type=int, required=True)
    p.add_argument("--attack-step-size", type=float, required=True, help="fraction of eps")
    p.add_argument("--attack-gradient", choices=("raw", "normalized", "sign"), default="raw")
    p.add_argument("--attack-init", choices=("zero", "uniform_ball", "uniform_sphere"), default="uniform_ball")
    p.add_argument("--eval-steps", type=int, required=True)
    p.add_argument("--eval-restarts", type=int, default=1)
    p.add_argument("--checkpoints", type=cli.int_list, default=[], help="comma-separated epochs to save")
    p.add_argument("--device", type=str, default="auto")
    p.add_argument("--threads", type=int, default=1)
    cli.add_precision_arg(p)
    p.add_argument("--progress", type=cli.bool_arg, default=True)
    p.add_argument("--batch-seeds", type=str.lower, choices=BATCH_SEEDS, default="auto",
                   help="train the seeds together as one batched program (an ensemble network): true, false, or "
                        "auto (batched with two or more seeds on CUDA; on CPU for CNNs on small images only, where "
                        "bench/train_speed.py measured it faster: see use_batched)")
    return cli.parse_args(p, argv)


def use_batched(option: str, device, n_seeds: int, architecture: str = "two_layer",
                image_shape: tuple[int, ...] | None = None) -> bool:
    """Whether --batch-seeds ``option`` trains the seeds as one batched program on ``device``.

    ``auto``: with two or more seeds on CUDA (one sequence of kernel launches for all seeds instead
    of one per seed keeps the GPU busy; the operation count per minibatch falls about S-fold); on
    CPU, two-layer nets only if CPU_BATCHED (bench/train_speed.py's measurement: not faster there,
    so off), CNNs when their images have at most CPU_STACK_MAX_PIXELS pixels (H·W of
    ``image_shape`` (C, H, W)), where bench/train_speed.py measured stacking faster.
    """
    if option not in BATCH_SEEDS:
        raise ValueError(f"--batch-seeds {option!r} is not allowed: choose one of {BATCH_SEEDS}")
    if option != "auto":
        return option == "true"
    if n_seeds < 2:
        return False
    if device.type == "cuda":
        return True
    if architecture == "two_layer":
        return CPU_BATCHED
    return image_shape is not None and image_shape[-1] * image_shape[-2] <= CPU_STACK_MAX_PIXELS


def _exit_143(signum, frame):
    print("SIGTERM: stopping (completed epochs are in the resume state); rerun to resume", file=sys.stderr, flush=True)
    raise SystemExit(143)


def main(argv=None) -> int:
    """Run :func:`_main`; a SIGTERM outside training (imports, data loading, writing results,
    between seeds) ends it with 143 like one during training (which training handles itself)."""
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    old = signal.signal(signal.SIGTERM, _exit_143)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, old)


def _main(argv=None) -> int:
    args = get_args(argv)
    datasets.refuse_placeholder_or_exit(args.stage, root=getattr(args, "root", None))  # a dry run's key: no results
    started = time.time()
    cfg = cli.print_config(args)
    cli.setup_threads(args.threads)
    import torch

    from adversary_dynamics.learning import data, training
    from adversary_dynamics.storage import runio

    device = cli.setup_device(args.device, args.precision)
    ds = data.load_dataset(args.dataset, root=args.root, n_train=args.n_train, n_test=args.n_test,
                           seed=args.split_seed, dim=args.dim, download=args.download)
    ds = data.rescale_dataset(ds, scale=args.scale, norm=args.norm).to(device)
    eps = data.epsilon(ratio=args.ratio, scale=args.scale)
    lr = args.lr * args.scale ** (-args.lr_scale_power)
    attack = training.AttackSpec(eps=eps, steps=args.attack_steps, step_size=args.attack_step_size * eps,
                                 norm=args.norm, gradient=args.attack_gradient, init=args.attack_init)
    eval_attack = training.AttackSpec(eps=eps, steps=args.eval_steps, step_size=args.attack_step_size * eps,
                                      norm=args.norm, gradient=args.attack_gradient, init=args.attack_init,
                                      restarts=args.eval_restarts)
    # a resume state is reused only by the same configuration and the same library code
    fingerprint = {k: v for k, v in cfg.items()
                   if k not in ("out_root", "seeds", "progress", "device", "threads", "batch_seeds")}
    fingerprint["code"] = runio.code_version()["source_sha256"]
    batched = use_batched(args.batch_seeds, device, len(args.seeds), args.architecture, ds.image_shape)
    outs = [args.out_root / f"seed~{seed}" for seed in args.seeds]

    def write_outputs(seed: int, out: Path, res, seed_started: float) -> None:
        runio.write_csv_atomic(out / "steps.csv", res.steps, ["step", "epoch", "adv_loss", "clean_loss"])
        runio.write_csv_atomic(out / "epochs.csv", res.epochs)
        runio.write_json_atomic(out / "provenance.json", runio.provenance(
            config={**cli.run_record(args), "seed": seed, "batched": batched}, device=device, started=seed_started))
        runio.write_json_atomic(out / "status.json", {
            "status": res.status, "diverged_at_step": res.diverged_at_step, "steps": len(res.steps),
            "epochs_completed": len(res.epochs) - 1, "eps": eps, "lr": lr})
        msg = f"diverged at step {res.diverged_at_step}" if res.status == "diverged" else "completed"
        print(f"scale={args.scale} seed={seed}: {msg}", file=sys.stderr, flush=True)

    if batched:  # every seed at once; each seed's wall time in provenance.json is the group's
        group_started = time.time()
        models = [cli.model_from_args(args, input_dim=ds.input_dim, n_classes=ds.n_classes, device=device,
                                      generator=torch.Generator().manual_seed(seed), image_shape=ds.image_shape)
                  for seed in args.seeds]
        try:
            results = training.adversarial_train_seeds(
                training.stack_models(models), ds, seeds=args.seeds, run_dirs=outs,
                state_file=args.out_root / GROUP_STATE, loss=args.loss, attack=attack, eval_attack=eval_attack,
                optimizer=args.optimizer, lr=lr, momentum=args.momentum, epochs=args.epochs,
                batch_size=args.batch_size, checkpoint_epochs=tuple(args.checkpoints),
                fingerprint={**fingerprint, "batched": True}, progress=args.progress)
        except training.Terminated as exc:
            print(f"seeds {args.seeds}: {exc}; rerun to resume", file=sys.stderr, flush=True)
            return 143
        for seed, out, res in zip(args.seeds, outs, results):
            write_outputs(seed, out, res, group_started)
        return 0
    for seed, out in zip(args.seeds, outs):
        seed_started = time.time()
        model = cli.model_from_args(args, input_dim=ds.input_dim, n_classes=ds.n_classes, device=device,
                                    generator=torch.Generator().manual_seed(seed), image_shape=ds.image_shape)
        try:
            res = training.adversarial_train(
                model, ds, loss=args.loss, attack=attack, eval_attack=eval_attack, optimizer=args.optimizer,
                lr=lr, momentum=args.momentum, epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                checkpoint_epochs=tuple(args.checkpoints), run_dir=out, fingerprint={**fingerprint, "seed": seed},
                progress=args.progress)
        except training.Terminated as exc:
            print(f"seed {seed}: {exc}; rerun to resume", file=sys.stderr, flush=True)
            return 143
        write_outputs(seed, out, res, seed_started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
