#!/usr/bin/env python
"""Speed of one epoch of PGD adversarial training against the matrix-product floor of the same work.

Setting (MNIST's shape, SYNTHETIC data: 60 000 uniform random images in [0, 1]^784 with random
labels; speed does not depend on the pixel values): two-layer ReLU net, d = 784, m = 1024,
K = 10, quadratic loss, plain SGD, minibatch 128, inner PGA of 10 raw-gradient l2 steps from a
uniform-ball start (eps = 1, eta = eps/4).

Measured, interleaved over ``--repeats`` rounds (order rotated per round), medians reported:

* ``adversarial_train``: ``adversary_dynamics.learning.training.adversarial_train`` for one epoch; its
  evaluation passes (at epoch 0 and 1) use a 16-image test set and a 1-step attack, so they
  cost next to nothing, but it still includes them;
* ``training steps``: the training steps of one epoch alone, calling the same functions in the
  same order as ``adversarial_train``'s inner loop (shuffle, ``training.train_step``: pga, clean
  loss, forward + backward + SGD step on the adversarial minibatch, loss logging);
* ``attack only``: the pga calls of those training steps alone (the attack's share);
* ``GEMM floor``: the matrix products the same work cannot avoid, alone, with torch.mm into
  preallocated outputs, per minibatch: 10 attack steps × 2 GEMMs ((B×d)@(d×m) forward,
  (B×m)@(m×d) input gradient) + 3 GEMMs for the weight update (forward at x + δ, the weight
  gradient (m×B)@(B×d), and the forward at x for the clean loss the loop logs) = 23 GEMMs.
  pga also evaluates the gradient at the last iterate (it logs loss and gradient at δ_T):
  2 more GEMMs per minibatch that are counted against us, not in the floor.

Ratio floor/epoch = fraction of the GEMM floor reached (1 = nothing but the matrix products).

Seeds, sequential vs batched (``--seed-count`` S, default 3; 0 skips it), interleaved likewise:
S seeds trained for one epoch one after another (S calls of ``adversarial_train``) against all
together as one batched program (one ``adversarial_train_seeds`` call on an ensemble network),
for two shapes:

* ``digits-default``: the default configuration (config/config.yaml) at scale 1: scikit-learn's
  digits, 1 438 training images, d = 64, m = 256, minibatch 128, 10 PGA steps (eps = 0.5,
  eta = eps/4), lr 0.1, and its evaluations as configured (epochs 0 and 1: 359 test images,
  20-step PGA, 2 restarts);
* ``mnist-shape``: the setting above (synthetic, d = 784, m = 1024) on the first
  ``--seed-images`` images (default 6000), with the tiny evaluation of ``adversarial_train``'s row.

Ratio sequential/batched > 1 means batching the seeds is faster.

CNN (``--cnn-images``, default 1000, quick 128; 0 skips it), one epoch of ``adversarial_train``
(the one training loop, one model; autograd PGA on flat inputs):

* ``cnn-digits-default``: the default configuration's CNN (channels 16, 32; 5×5; hidden 128) on
  digits at scale 1 (all 1 438 training images), the digits attack and evaluation above;
* ``cnn-mnist-shape``: the classic MNIST CNN (channels 32, 64; 5×5; hidden 1024) on the first
  ``--cnn-images`` synthetic MNIST-shaped images, the attack above, a tiny evaluation.

Stacked CNNs (``--stack-ks``, default 3,9,18; empty skips it; ``--stack-only`` runs this section
alone): the training inner loop (minibatch, PGA attack of 10 raw l2 steps from a uniform-ball
start, clean loss, forward + backward + optimiser step; Fig. 3's Adam by default) of K CNNs, one
after another (K ``_SingleModel.step`` calls per minibatch, as ``adversarial_train`` per model) against
the same K as one ``CNNEnsemble`` (one ``_Ensemble.step`` call, as ``adversarial_train_seeds``), for
the K = ratios × seeds models of Fig. 3 (ε = ratio × scale cycling over ratios 0.1, 1, 10; seeds
0, 1, ...), two families:

* ``digits-cnn``: the default configuration's CNN (channels 16, 32; 5×5; hidden 128) on digits (8×8);
* ``classic-cnn``: the classic MNIST CNN (channels 32, 64; 5×5; hidden 1024) on synthetic 28×28 images.

Per case: seconds for ``--stack-minibatches`` minibatches of ``--stack-batch`` images (digits;
default 100, Fig. 3's minibatch, the least favourable realistic size for stacking, whose gain is
per-operation overhead saved) or ``--stack-classic-batch`` images (classic; default 8, to keep the
run within minutes on a small CPU: the most favourable size for stacking, so a loss there is a
loss at any larger size) (medians of ``--repeats`` interleaved rounds, after one warm-up minibatch that also creates the optimiser
state), the ratio sequential/stacked (> 1: stacking is faster), which path scripts/train.py's
``--batch-seeds auto`` picks on this device (``use_batched``) and that path's ratio (1 when it
picks one after another), and the deterministic GPU proxy: tensor operations and host
synchronisations per minibatch (``adversary_dynamics.learning.opcount.OpCounter``), both paths.

The last line of output is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Callable

import torch

from _common import default_threads, environment, loadavg  # bench/ is the script folder, on sys.path
from adversary_dynamics.learning import training
from adversary_dynamics.learning.data import Dataset, load_digits
from adversary_dynamics.learning.losses import get_loss
from adversary_dynamics.learning.models import CNN, TwoLayerNet
from adversary_dynamics.learning.training import AttackSpec, adversarial_train, resolve_device

D, WIDTH, K = 784, 1024, 10
ATTACK = AttackSpec(eps=1.0, steps=10, step_size=0.25, norm="l2", gradient="raw", init="uniform_ball")
LOSS = "quadratic"
LR = 0.1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_steps(model: TwoLayerNet, x: torch.Tensor, y: torch.Tensor, batch: int, seed: int,
                   attack_only: bool = False) -> None:
    """One epoch of adversarial_train's inner loop (the same generators, shuffle and
    ``training.train_step`` calls, and the same loss logging), without its evaluation; with
    ``attack_only``, the step's pga call (``training._attack``) alone."""
    device = x.device
    fn = get_loss(LOSS)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=LR, momentum=0.0)
    g_shuffle, g_attack, _ = training._seed_generators(seed, device)
    n = x.shape[0]
    nb = (n + batch - 1) // batch
    perm = torch.randperm(n, generator=g_shuffle).to(device)
    adv_vals, clean_vals = [], []
    for b in range(nb):
        idx = perm[b * batch:(b + 1) * batch]
        xb, yb = x[idx], y[idx]
        if attack_only:
            training._attack(model, xb, yb, ATTACK, LOSS, g_attack)
            continue
        adv, clean = training.train_step(model, opt, fn, xb, yb, attack=ATTACK, loss=LOSS, generator=g_attack)
        adv_vals.append(adv)
        clean_vals.append(clean)
    if not attack_only:
        torch.stack(adv_vals).tolist(), torch.stack(clean_vals).tolist()
    sync(device)


def full_epoch(model: TwoLayerNet, data: Dataset, batch: int, seed: int) -> None:
    """adversary_dynamics.learning.training.adversarial_train for one epoch (tiny evaluation set, 1-step eval attack)."""
    res = adversarial_train(model, data, loss=LOSS, attack=ATTACK,
                            eval_attack=AttackSpec(eps=ATTACK.eps, steps=1, step_size=ATTACK.step_size, restarts=1),
                            optimizer="sgd", lr=LR, epochs=1, batch_size=batch, seed=seed, handle_sigterm=False)
    if res.status != "completed":
        raise RuntimeError(f"adversarial_train ended with status {res.status!r}")
    sync(data.x_train.device)


# the default configuration (config/config.yaml) at scale 1: eps = ratio * scale = 0.5, eta = 0.25 * eps
DIGITS_WIDTH = 256
DIGITS_ATTACK = AttackSpec(eps=0.5, steps=10, step_size=0.125, norm="l2", gradient="raw", init="uniform_ball")
DIGITS_EVAL = AttackSpec(eps=0.5, steps=20, step_size=0.125, norm="l2", gradient="raw", init="uniform_ball",
                         restarts=2)
TINY_EVAL = AttackSpec(eps=ATTACK.eps, steps=1, step_size=ATTACK.step_size, restarts=1)


def seeds_epoch(make_model: Callable[[int], TwoLayerNet], data: Dataset, seeds: list[int], attack: AttackSpec,
                eval_attack: AttackSpec, batch: int, batched: bool) -> None:
    """One epoch of every seed: one after another (``adversarial_train`` per seed, as scripts/train.py with
    --batch-seeds false) or together (one ``adversarial_train_seeds`` call, --batch-seeds true)."""
    kw = dict(loss=LOSS, attack=attack, eval_attack=eval_attack, optimizer="sgd", lr=LR, epochs=1,
              batch_size=batch, handle_sigterm=False)
    if batched:
        results = training.adversarial_train_seeds(training.ensemble_of([make_model(s) for s in seeds]), data,
                                                   seeds=seeds, **kw)
    else:
        results = [adversarial_train(make_model(s), data, seed=s, **kw) for s in seeds]
    if any(r.status != "completed" for r in results):
        raise RuntimeError(f"training ended with statuses {[r.status for r in results]}")
    sync(data.x_train.device)


def gemm_floor(n: int, batch: int, steps: int, device: torch.device, gen_seed: int) -> Callable[[], None]:
    """Per minibatch: steps × [(B×d)@(d×m), (B×m)@(m×d)] + 2 × (B×d)@(d×m) + (m×B)@(B×d)."""
    g = torch.Generator(device=device).manual_seed(gen_seed)
    x = torch.rand(batch, D, generator=g, device=device)
    W = torch.randn(WIDTH, D, generator=g, device=device) / D ** 0.5
    Wt = W.t()
    h = torch.empty(batch, WIDTH, device=device)
    gx = torch.empty(batch, D, device=device)
    gW = torch.empty(WIDTH, D, device=device)
    ht = h.t()
    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])

    def run() -> None:
        for bs in sizes:
            xb, hb, gxb = x[:bs], h[:bs], gx[:bs]
            for _ in range(steps):
                torch.mm(xb, Wt, out=hb)
                torch.mm(hb, W, out=gxb)
            torch.mm(xb, Wt, out=hb)  # forward at x + δ
            torch.mm(xb, Wt, out=hb)  # forward at x (clean loss)
            torch.mm(ht[:, :bs], xb, out=gW)  # weight gradient
        sync(device)

    return run


STACK_RATIOS = (0.1, 1.0, 10.0)


def _train_script():
    """scripts/train.py as a module (its ``use_batched`` is the auto rule being measured)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    spec = importlib.util.spec_from_file_location("train_script_for_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def stacked_cnn_cases(ks: list[int], batches: dict[str, int], minibatches: int, optimizer: str,
                      device: torch.device, seed: int) -> dict[str, dict]:
    """The stacked-CNN cases: per (family, K) a setup returning (sequential, stacked) callables that
    each run ``minibatches`` training minibatches, and the per-minibatch op counts."""
    from adversary_dynamics.learning.models import CNNEnsemble

    digits = load_digits(seed=0).to(device)
    g = torch.Generator().manual_seed(seed + 11)
    n_syn = max(batches["classic-cnn"] * minibatches, 64)
    xs, ys = torch.rand(n_syn, D, generator=g).to(device), torch.randint(0, K, (n_syn,), generator=g).to(device)
    families = {
        "digits-cnn": (digits, dict(input_shape=(1, 8, 8), channels=(16, 32), kernel_size=5, hidden=128)),
        "classic-cnn": (Dataset("synthetic-mnist-shape", xs, ys, xs[:16], ys[:16], K, image_shape=(1, 28, 28)),
                        dict(input_shape=(1, 28, 28))),
    }
    fn = get_loss(LOSS)
    cases = {}
    for fam, (data, arch) in families.items():
        for k_models in ks:
            def setup(data=data, arch=arch, k_models=k_models, batch=batches[fam]):
                members = [(s // len(STACK_RATIOS), STACK_RATIOS[s % len(STACK_RATIOS)]) for s in range(k_models)]
                attacks = [AttackSpec(eps=r, steps=10, step_size=0.25 * r, norm="l2", gradient="raw",
                                      init="uniform_ball") for _, r in members]

                def mk(s):
                    return CNN(**arch, generator=torch.Generator().manual_seed(s), device=device)

                seeds = [s for s, _ in members]
                seq = [training._SingleModel(mk(s), s, device) for s in seeds]
                opts = [training._make_optimizer(m.model, optimizer, LR, 0.0) for m in seq]
                ens = training._Ensemble(CNNEnsemble([mk(s) for s in seeds]), seeds, device)
                eopt = training._make_optimizer(ens.model, optimizer, LR, 0.0)
                n = data.x_train.shape[0]
                idx_seq = [m.permutation(n, {0}, device) for m in seq]
                idx_ens = ens.permutation(n, set(range(k_models)), device)
                live = list(range(k_models))

                def run_seq(mb=minibatches):
                    for b in range(mb):
                        for m, o, i, a in zip(seq, opts, idx_seq, attacks):
                            m.step(o, fn, data, i[b * batch:(b + 1) * batch], [0], attack=[a], loss=LOSS)
                    sync(device)

                def run_ens(mb=minibatches):
                    for b in range(mb):
                        ens.step(eopt, fn, data, idx_ens[..., b * batch:(b + 1) * batch], live, attack=attacks,
                                 loss=LOSS)
                    sync(device)

                return run_seq, run_ens

            cases[f"{fam}_K{k_models}"] = dict(family=fam, K=k_models, setup=setup, data=data, arch=arch,
                                               batch=batches[fam])
    return cases


def count_case(run_seq, run_ens) -> dict:
    """Tensor operations and host synchronisations of one minibatch, both paths (deterministic)."""
    from adversary_dynamics.learning.opcount import OpCounter

    with OpCounter() as cs:
        run_seq(1)
    with OpCounter() as ce:
        run_ens(1)
    return {"sequential_ops": cs.ops, "stacked_ops": ce.ops, "sequential_syncs": cs.syncs, "stacked_syncs": ce.syncs,
            "ops_ratio": round(cs.ops / ce.ops, 2)}


def run_stacked_section(args, device: torch.device, repeats: int) -> list[dict]:
    ks = [int(k) for k in args.stack_ks.split(",") if k.strip()]
    if not ks:
        return []
    script = _train_script()
    cases = stacked_cnn_cases(ks, {"digits-cnn": args.stack_batch, "classic-cnn": args.stack_classic_batch},
                              args.stack_minibatches, args.stack_optimizer, device, args.seed)
    fns, counts = {}, {}
    for name, c in cases.items():
        run_seq, run_ens = c["setup"]()
        run_seq(1)  # warm-up; creates the optimiser state
        run_ens(1)
        counts[name] = count_case(run_seq, run_ens)
        fns[f"{name}_sequential"], fns[f"{name}_stacked"] = run_seq, run_ens
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        k0 = r % len(names)
        for k in names[k0:] + names[:k0]:
            sync(device)
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    rows = []
    print(f"\nStacked CNNs: the training inner loop of K models, one after another vs one CNNEnsemble "
          f"({args.stack_minibatches} minibatch(es) of {args.stack_batch} digits / {args.stack_classic_batch} "
          f"classic images, 10 PGA steps, {args.stack_optimizer}; "
          f"medians of {repeats}); ops and syncs per minibatch (counted)")
    print(f"{'case':18s} {'seq s':>8} {'stacked s':>10} {'seq/stk':>8} {'auto':>10} {'auto ratio':>10} "
          f"{'ops seq':>8} {'ops stk':>8} {'ops x':>6} {'syncs':>6}")
    for name, c in cases.items():
        seq, stk = statistics.median(times[f"{name}_sequential"]), statistics.median(times[f"{name}_stacked"])
        ratio = seq / stk
        pick = script.use_batched("auto", device, c["K"], "cnn", c["data"].image_shape)
        row = {"case": name, "family": c["family"], "K": c["K"], "image_shape": list(c["data"].image_shape),
               "batch": c["batch"], "minibatches": args.stack_minibatches, "optimizer": args.stack_optimizer,
               "sequential_s": round(seq, 4), "stacked_s": round(stk, 4),
               "sequential_min_max": [round(min(times[f"{name}_sequential"]), 4),
                                      round(max(times[f"{name}_sequential"]), 4)],
               "stacked_min_max": [round(min(times[f"{name}_stacked"]), 4), round(max(times[f"{name}_stacked"]), 4)],
               "sequential_over_stacked": round(ratio, 3), "auto_stacks": pick,
               "auto_over_sequential": round(ratio if pick else 1.0, 3), **counts[name]}
        rows.append(row)
        print(f"{name:18s} {seq:>8.3f} {stk:>10.3f} {ratio:>8.2f} {'stacked' if pick else 'sequential':>10} "
              f"{row['auto_over_sequential']:>10.2f} {row['sequential_ops']:>8} {row['stacked_ops']:>8} "
              f"{row['ops_ratio']:>6.1f} {row['sequential_syncs']:>3}/{row['stacked_syncs']:<2}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto = CUDA when present, else CPU (default %(default)s)")
    ap.add_argument("--images", type=int, default=None, help="training images per epoch (default 60000, quick 6000)")
    ap.add_argument("--batch", type=int, default=128, help="minibatch size (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repetitions (default 3, quick 1)")
    ap.add_argument("--threads", type=int, default=default_threads(), help="torch CPU threads (default: all cores "
                    "available to this process, here %(default)s)")
    ap.add_argument("--quick", action="store_true", help="6000 images, 1 repeat (a smoke test: ~10 s on an idle "
                    "2-core machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-count", type=int, default=3, help="seeds of the sequential-vs-batched comparison "
                    "(default %(default)s; 0 skips it)")
    ap.add_argument("--seed-images", type=int, default=None, help="training images of its MNIST shape (default "
                    "6000, quick 1000; capped at --images)")
    ap.add_argument("--cnn-images", type=int, default=None, help="training images of the MNIST-shaped CNN epoch "
                    "(default 1000, quick 128; capped at --images; 0 skips both CNN rows)")
    ap.add_argument("--stack-ks", type=str, default=None, help="K of the stacked-CNN comparison, "
                    "comma-separated (default 3,9,18, quick 3; empty skips it)")
    ap.add_argument("--stack-batch", type=int, default=None, help="its digits minibatch size (default 100, quick 16)")
    ap.add_argument("--stack-classic-batch", type=int, default=None, help="its classic-CNN minibatch size "
                    "(default 8, quick 2)")
    ap.add_argument("--stack-minibatches", type=int, default=1, help="its minibatches per timing (default "
                    "%(default)s)")
    ap.add_argument("--stack-optimizer", choices=("sgd", "adam"), default="adam", help="its optimiser (default "
                    "%(default)s, Fig. 3's)")
    ap.add_argument("--stack-only", action="store_true", help="run the stacked-CNN comparison alone")
    args = ap.parse_args(argv)
    if args.stack_batch is None:
        args.stack_batch = 16 if args.quick else 100
    if args.stack_classic_batch is None:
        args.stack_classic_batch = 2 if args.quick else 8
    if args.stack_ks is None:
        args.stack_ks = "3" if args.quick else "3,9,18"
    if args.stack_batch < 1 or args.stack_classic_batch < 1 or args.stack_minibatches < 1:
        ap.error("--stack-batch, --stack-classic-batch and --stack-minibatches must be >= 1")
    if args.stack_only:
        repeats = args.repeats or (1 if args.quick else 3)
        torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        env = environment(device=str(device), device_name=torch.cuda.get_device_name(device)
                          if device.type == "cuda" else platform.processor() or platform.machine())
        print(f"# train_speed --stack-only: torch {env['torch']} on {device}, {env['threads']} threads; "
              f"load average {env['loadavg_start']}")
        t_start = time.perf_counter()
        rows = run_stacked_section(args, device, repeats)
        env["loadavg_end"] = loadavg()
        wall = time.perf_counter() - t_start
        print(f"wall time {wall:.1f} s; load average at the end {env['loadavg_end']}")
        print(json.dumps({"bench": "train_speed", "section": "stacked_cnns", "quick": args.quick, "env": env,
                          "repeats": repeats, "stacked_cnns": rows, "wall_s": round(wall, 2)}))
        return 0
    n = args.images or (6000 if args.quick else 60000)
    repeats = args.repeats or (1 if args.quick else 3)
    if n < 1 or repeats < 1 or args.batch < 1 or args.threads < 1:
        ap.error("--images, --repeats, --batch and --threads must be >= 1")
    if args.seed_count < 0 or (args.seed_images is not None and args.seed_images < 1):
        ap.error("--seed-count must be >= 0 and --seed-images >= 1")
    if args.seed_count and not hasattr(training, "adversarial_train_seeds"):
        print("# this version of adversary_dynamics has no adversarial_train_seeds: seeds comparison skipped")
        args.seed_count = 0
    n_seed = min(n, args.seed_images or (1000 if args.quick else 6000))
    n_cnn = min(n, args.cnn_images if args.cnn_images is not None else (128 if args.quick else 1000))
    if n_cnn < 0:
        ap.error("--cnn-images must be >= 0")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    env = environment(device=str(device), device_name=torch.cuda.get_device_name(device) if device.type == "cuda"
                      else platform.processor() or platform.machine())
    nb = (n + args.batch - 1) // args.batch
    print(f"# train_speed: torch {env['torch']} on {device} ({env['device_name']}), {env['threads']} threads; "
          f"SYNTHETIC MNIST-shaped data: {n} random images in [0,1]^{D}, m={WIDTH}, batch {args.batch} "
          f"({nb} minibatches), {ATTACK.steps} PGA steps, quadratic loss, SGD; {repeats} interleaved repeat(s)"
          f"{' (quick)' if args.quick else ''}; load average {env['loadavg_start']}")
    t_start = time.perf_counter()

    g = torch.Generator(device="cpu").manual_seed(args.seed)
    x = torch.rand(n, D, generator=g).to(device)
    y = torch.randint(0, K, (n,), generator=g).to(device)
    data = Dataset("synthetic-mnist-shape", x, y, x[:16].clone(), y[:16].clone(), K)

    def new_model() -> TwoLayerNet:
        return TwoLayerNet(input_dim=D, width=WIDTH, n_outputs=K, generator=torch.Generator().manual_seed(args.seed),
                           device=device)

    m_full, m_steps, m_attack = new_model(), new_model(), new_model()
    fns = {
        "adversarial_train": lambda: full_epoch(m_full, data, args.batch, args.seed),
        "training_steps": lambda: training_steps(m_steps, x, y, args.batch, args.seed),
        "attack_only": lambda: training_steps(m_attack, x, y, args.batch, args.seed, attack_only=True),
        "gemm_floor": gemm_floor(n, args.batch, ATTACK.steps, device, args.seed + 7),
    }
    # warm-up on a few minibatches (allocator, thread pool, CUDA context/kernels)
    xw, yw = x[: 4 * args.batch], y[: 4 * args.batch]
    training_steps(new_model(), xw, yw, args.batch, args.seed)
    gemm_floor(xw.shape[0], args.batch, ATTACK.steps, device, 1)()
    # sequential vs batched seeds, per shape (interleaved with the rest)
    seeds = list(range(args.seed, args.seed + args.seed_count))
    seed_shapes: dict[str, dict] = {}
    if seeds:
        digits = load_digits(seed=0).to(device)  # the default configuration's split, at scale 1
        x_s, y_s = x[:n_seed], y[:n_seed]
        seed_shapes = {
            "digits-default": dict(
                data=digits, attack=DIGITS_ATTACK, eval_attack=DIGITS_EVAL,
                make=lambda s: TwoLayerNet(input_dim=digits.input_dim, width=DIGITS_WIDTH, n_outputs=10,
                                           generator=torch.Generator().manual_seed(s), device=device)),
            "mnist-shape": dict(
                data=Dataset("synthetic-mnist-shape", x_s, y_s, x[:16].clone(), y[:16].clone(), K), attack=ATTACK,
                eval_attack=TINY_EVAL,
                make=lambda s: TwoLayerNet(input_dim=D, width=WIDTH, n_outputs=K,
                                           generator=torch.Generator().manual_seed(s), device=device)),
        }
        for shape, c in seed_shapes.items():
            for batched in (False, True):
                def run(c=c, batched=batched) -> None:
                    seeds_epoch(c["make"], c["data"], seeds, c["attack"], c["eval_attack"], args.batch, batched)

                fns[f"seeds_{shape}_{'batched' if batched else 'sequential'}"] = run
            # warm-up: a 4-minibatch epoch of both
            dw = c["data"]
            small = Dataset(dw.name, dw.x_train[: 4 * args.batch], dw.y_train[: 4 * args.batch], dw.x_test[:16],
                            dw.y_test[:16], dw.n_classes)
            for batched in (False, True):
                seeds_epoch(c["make"], small, seeds, c["attack"], TINY_EVAL, args.batch, batched)
    # CNN: one epoch of adversarial_train, seed by seed through the same loop
    cnn_shapes: dict[str, dict] = {}
    if n_cnn:
        digits_cnn = load_digits(seed=0).to(device)
        cnn_shapes = {
            "cnn-digits-default": dict(data=digits_cnn, attack=DIGITS_ATTACK, eval_attack=DIGITS_EVAL,
                                       make=lambda: CNN(input_shape=(1, 8, 8), channels=(16, 32), kernel_size=5,
                                                        hidden=128, generator=torch.Generator().manual_seed(args.seed),
                                                        device=device)),
            "cnn-mnist-shape": dict(data=Dataset("synthetic-mnist-shape", x[:n_cnn], y[:n_cnn], x[:16].clone(),
                                                 y[:16].clone(), K, image_shape=(1, 28, 28)),
                                    attack=ATTACK, eval_attack=TINY_EVAL,
                                    make=lambda: CNN(input_shape=(1, 28, 28),
                                                     generator=torch.Generator().manual_seed(args.seed),
                                                     device=device)),
        }
        for shape, c in cnn_shapes.items():
            def run_cnn(c=c) -> None:
                res = adversarial_train(c["make"](), c["data"], loss=LOSS, attack=c["attack"],
                                        eval_attack=c["eval_attack"], optimizer="sgd", lr=LR, epochs=1,
                                        batch_size=args.batch, seed=args.seed, handle_sigterm=False)
                if res.status != "completed":
                    raise RuntimeError(f"CNN training ended with status {res.status!r}")
                sync(device)

            fns[f"cnn_{shape}"] = run_cnn
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        k0 = r % len(names)
        for k in names[k0:] + names[:k0]:
            sync(device)
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    sec = {k: statistics.median(v) for k, v in times.items()}
    main_names = [k for k in names if not k.startswith(("seeds_", "cnn_"))]
    flops_per_gemm = 2.0 * args.batch * D * WIDTH
    gemms = nb * (2 * ATTACK.steps + 3)
    floor_gflops = gemms * flops_per_gemm / sec["gemm_floor"] / 1e9

    labels = {
        "adversarial_train": "adversarial_train, 1 epoch (+ 2 tiny evals)",
        "training_steps": "training steps of 1 epoch (train_step loop)",
        "attack_only": "attack only (the epoch's pga calls)",
        "gemm_floor": f"GEMM floor ({2 * ATTACK.steps + 3} GEMMs per minibatch)",
    }
    # the attack alone has a floor of 2 * steps GEMMs per minibatch, the rest 2 * steps + 3
    floor_of = {k: sec["gemm_floor"] * (2 * ATTACK.steps / (2 * ATTACK.steps + 3) if k == "attack_only" else 1.0)
                for k in main_names}
    print(f"\n{'':46s} {'s/epoch':>9} {'ms/batch':>9} {'floor/this':>10}")
    for k in main_names:
        print(f"{labels[k]:46s} {sec[k]:>9.3f} {1e3 * sec[k] / nb:>9.3f} {floor_of[k] / sec[k]:>10.2f}")
    print(f"(attack only: against its own floor of {2 * ATTACK.steps} GEMMs per minibatch)")
    share = sec["attack_only"] / sec["training_steps"]
    print(f"\nattack share of the training steps: {share:.2f}; GEMM floor runs at {floor_gflops:.0f} GFLOP/s; "
          f"fraction of the floor reached by the training steps: {sec['gemm_floor'] / sec['training_steps']:.2f}, "
          f"by adversarial_train: {sec['gemm_floor'] / sec['adversarial_train']:.2f}")
    seeds_summary = []
    if seed_shapes:
        print(f"\n{len(seeds)} seeds, one epoch each: one after another vs together as one batched program "
              f"(medians of {repeats})")
        print(f"{'shape':16s} {'images':>7} {'d':>4} {'m':>5} {'sequential s':>13} {'batched s':>10} "
              f"{'seq/batched':>12}")
        for shape, c in seed_shapes.items():
            seq, bat = f"seeds_{shape}_sequential", f"seeds_{shape}_batched"
            dc = c["data"]
            row = {"shape": shape, "images": dc.x_train.shape[0], "d": dc.input_dim,
                   "m": DIGITS_WIDTH if shape.startswith("digits") else WIDTH, "test_images": dc.x_test.shape[0],
                   "eval_steps": c["eval_attack"].steps, "eval_restarts": c["eval_attack"].restarts,
                   "sequential_s": round(sec[seq], 4), "batched_s": round(sec[bat], 4),
                   "sequential_min_max": [round(min(times[seq]), 4), round(max(times[seq]), 4)],
                   "batched_min_max": [round(min(times[bat]), 4), round(max(times[bat]), 4)],
                   "sequential_over_batched": round(sec[seq] / sec[bat], 3)}
            seeds_summary.append(row)
            print(f"{shape:16s} {row['images']:>7} {row['d']:>4} {row['m']:>5} {sec[seq]:>13.3f} {sec[bat]:>10.3f} "
                  f"{sec[seq] / sec[bat]:>12.2f}")
    cnn_summary = []
    if cnn_shapes:
        print(f"\nCNN, one epoch of adversarial_train (medians of {repeats})")
        print(f"{'shape':20s} {'images':>7} {'input':>10} {'channels':>9} {'hidden':>7} {'s/epoch':>9} {'ms/batch':>9}")
        for shape, c in cnn_shapes.items():
            dc, k = c["data"], f"cnn_{shape}"
            m = c["make"]()
            nbc = (dc.x_train.shape[0] + args.batch - 1) // args.batch
            row = {"shape": shape, "images": dc.x_train.shape[0], "input_shape": list(dc.image_shape),
                   "channels": list(m.channels), "kernel_size": m.kernel_size, "hidden": m.hidden_units,
                   "pga_steps": c["attack"].steps, "test_images": dc.x_test.shape[0],
                   "eval_steps": c["eval_attack"].steps, "eval_restarts": c["eval_attack"].restarts,
                   "seconds_per_epoch": round(sec[k], 4), "min_max": [round(min(times[k]), 4), round(max(times[k]), 4)],
                   "ms_per_minibatch": round(1e3 * sec[k] / nbc, 3)}
            cnn_summary.append(row)
            print(f"{shape:20s} {row['images']:>7} {'x'.join(map(str, dc.image_shape)):>10} "
                  f"{','.join(map(str, m.channels)):>9} {m.hidden_units:>7} {sec[k]:>9.3f} "
                  f"{row['ms_per_minibatch']:>9.1f}")
    stacked_rows = run_stacked_section(args, device, repeats)
    wall = time.perf_counter() - t_start
    env["loadavg_end"] = loadavg()
    print(f"wall time {wall:.1f} s; load average at the end {env['loadavg_end']}")
    print(json.dumps({
        "bench": "train_speed", "quick": args.quick, "env": env, "synthetic_data": True, "images": n,
        "batch": args.batch, "minibatches": nb, "d": D, "m": WIDTH, "pga_steps": ATTACK.steps, "repeats": repeats,
        "seconds_per_epoch": {k: round(sec[k], 4) for k in main_names},
        "seconds_min_max": {k: [round(min(times[k]), 4), round(max(times[k]), 4)] for k in main_names},
        "floor_over_training_steps": round(sec["gemm_floor"] / sec["training_steps"], 4),
        "floor_over_adversarial_train": round(sec["gemm_floor"] / sec["adversarial_train"], 4),
        "attack_floor_over_attack_only": round(floor_of["attack_only"] / sec["attack_only"], 4),
        "attack_share": round(share, 4), "floor_gemms_per_epoch": gemms, "floor_gflops": round(floor_gflops, 1),
        "seeds_comparison": {"seeds": len(seeds), "epochs": 1, "shapes": seeds_summary},
        "cnn_epoch": cnn_summary, "stacked_cnns": stacked_rows,
        "wall_s": round(wall, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
