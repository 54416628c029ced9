#!/usr/bin/env python
"""Speed of the escape probes of the paper's Figs. 2-3 (``adversary_dynamics.figures.escape``) on the CNN.

Everything is measured in ONE run, interleaved (round-robin repetitions, the order rotated every
round, see pga_speed.measure) after a warm-up, and summarised by medians (the machine is shared).

1. **CNN PGA step**: ``attack.pga`` on a :class:`~adversary_dynamics.learning.models.CNN` (flat inputs,
   autograd; the paper's raw-gradient update and the normalised one) against ``torchattacks.PGDL2``
   on the same CNN and inputs (image-shaped (N, 1, H, W) through a flattening wrapper;
   cross-entropy, zero start, clamp to [0, 1]), in ms per step, at two shapes: the digits CNN of
   the default config (8x8, channels 16/32, hidden 128) and the classic MNIST CNN (28x28, 32/64,
   1024), batch 128 (``--quick``: 32).
2. **Batched (ratio x input) trajectory** (Fig. 2): one ``escape.probe_escape`` call for all 5
   ratios x N inputs against a Python loop of 5 calls (one per ratio), digits CNN, the default's
   N = 8 inputs, descent + PGA steps as given.
3. **Stacked models** (Fig. 3): one call on a ``models.StackedCNN`` of 9 (ratio x checkpoint)
   models against a loop of 9 single-model calls, same N and steps.

Ratios: torchattacks/ours > 1 means ours is faster; loop/batched > 1 means batching pays.
The last line of output is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from _common import default_threads, environment, loadavg  # bench/ is the script folder, on sys.path
from pga_speed import Flatten, measure
from adversary_dynamics.figures import escape
from adversary_dynamics.attack import pga
from adversary_dynamics.learning.models import CNN, StackedCNN

SHAPES = {"digits": dict(input_shape=(1, 8, 8), channels=(16, 32), hidden=128),
          "mnist": dict(input_shape=(1, 28, 28), channels=(32, 64), hidden=1024)}
RATIOS = [0.001, 0.01, 0.1, 1.0, 10.0]


def bench_cnn_step(name: str, batch: int, steps: int, repeats: int, seed: int) -> dict:
    import torchattacks  # noqa: F401  (fails early when the peer library is missing)

    spec = SHAPES[name]
    gen = torch.Generator().manual_seed(seed)
    net = CNN(**spec, n_outputs=10, generator=gen)
    net.eval()
    C, H, W = spec["input_shape"]
    x = torch.rand(batch, C * H * W, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    eps, alpha = 1.0, 0.25
    atk = torchattacks.PGDL2(Flatten(net), eps=eps, alpha=alpha, steps=steps, random_start=False)
    kw = dict(eps=eps, steps=steps, step_size=alpha, init="zero")
    fns = {
        "ours_raw": lambda: pga(net, x, y, loss="squared_error", gradient="raw", **kw),
        "ours_norm_ce_clamp": lambda: pga(net, x, y, loss="cross_entropy", gradient="normalized",
                                          clamp=(0.0, 1.0), **kw),
        "torchattacks": lambda: atk(x.reshape(batch, C, H, W), y),
    }
    t = measure(fns, repeats)
    ms = {k: 1e3 * statistics.median(v) / steps for k, v in t.items()}
    # gradient evaluations per call: ours T + 1 (it also evaluates, and logs, the loss and gradient at
    # the final iterate δ_T), torchattacks T; per evaluation is the cost of a step itself
    evals = {k: steps + (k != "torchattacks") for k in t}
    per_eval = {k: 1e3 * statistics.median(v) / evals[k] for k, v in t.items()}
    return {"shape": name, "batch": batch, "steps": steps, "repeats": repeats,
            "ms_per_step": {k: round(v, 4) for k, v in ms.items()},
            "ms_per_gradient_evaluation": {k: round(v, 4) for k, v in per_eval.items()},
            "torchattacks_over_ours_raw": round(ms["torchattacks"] / ms["ours_raw"], 4),
            "torchattacks_over_ours_same_update": round(ms["torchattacks"] / ms["ours_norm_ce_clamp"], 4),
            "per_evaluation_torchattacks_over_ours_raw": round(per_eval["torchattacks"] / per_eval["ours_raw"], 4),
            "per_evaluation_torchattacks_over_ours_same_update": round(
                per_eval["torchattacks"] / per_eval["ours_norm_ce_clamp"], 4)}


def bench_batched(n_inputs: int, steps: int, descent_steps: int, repeats: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    net = CNN(**SHAPES["digits"], n_outputs=10, generator=gen)
    x = torch.rand(n_inputs, 64, generator=gen) * 10 / 4.0
    y = torch.randint(0, 10, (n_inputs,), generator=gen)
    z = escape.unit_ball_starts(n_inputs, 64, generator=gen)
    kw = dict(scale=10.0, loss="squared_error", step_size=1.0, steps=steps, starts=z,
              descent=dict(steps=descent_steps, stages=4, directions=32))

    def batched():
        escape.probe_escape(net, x, y, ratios=RATIOS, generator=torch.Generator().manual_seed(1), **kw)

    def loop():
        for r in RATIOS:
            escape.probe_escape(net, x, y, ratios=[r], generator=torch.Generator().manual_seed(1), **kw)

    models = [CNN(**SHAPES["digits"], n_outputs=10, generator=torch.Generator().manual_seed(k)) for k in range(9)]
    stacked = StackedCNN(models)
    rat9 = [RATIOS[2 + k // 3] for k in range(9)]

    def stacked_call():
        escape.probe_escape(stacked, x, y, ratios=rat9, generator=torch.Generator().manual_seed(1), **kw)

    def stacked_loop():
        for m, r in zip(models, rat9):
            escape.probe_escape(m, x, y, ratios=[r], generator=torch.Generator().manual_seed(1), **kw)

    t = measure({"batched": batched, "loop": loop, "stacked": stacked_call, "stacked_loop": stacked_loop}, repeats)
    ms = {k: 1e3 * statistics.median(v) for k, v in t.items()}
    return {"inputs": n_inputs, "ratios": len(RATIOS), "models": 9, "steps": steps, "descent_steps": descent_steps,
            "repeats": repeats, "ms_per_call": {k: round(v, 2) for k, v in ms.items()},
            "loop_over_batched": round(ms["loop"] / ms["batched"], 4),
            "loop_over_stacked": round(ms["stacked_loop"] / ms["stacked"], 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repetitions (default 5, quick 1)")
    ap.add_argument("--steps", type=int, default=None, help="PGA steps per timed call (default 20, quick 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the workflow's jobs; "
                    f"this machine has {default_threads()} cores: small CNN batches get slower with more threads "
                    "on a busy machine)")
    ap.add_argument("--quick", action="store_true", help="small shapes and few repetitions (a smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    steps = args.steps or (5 if args.quick else 20)
    if repeats < 1 or steps < 1 or args.threads < 1:
        ap.error("--repeats, --steps and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    import torchattacks  # noqa: F401  (fails early when the peer library is missing)

    env = environment()
    print(f"# escape_speed: torch {env['torch']}, torchattacks {env['torchattacks']}, {env['threads']} threads, "
          f"{repeats} interleaved repeats{' (quick)' if args.quick else ''}; load average {env['loadavg_start']}")
    t_start = time.perf_counter()
    batch = 32 if args.quick else 128
    rows = [bench_cnn_step(name, batch, steps, repeats, args.seed) for name in (("digits",) if args.quick
                                                                                 else ("digits", "mnist"))]
    hdr = f"{'CNN':>7} {'B':>4} | {'ours raw':>9} {'ours n+ce':>9} {'torchatk':>9} | {'ta/raw':>7} {'ta/same':>7}"
    print("\nms per PGA step on the CNN (median); ta/raw: torchattacks / ours (raw gradient, squared error); "
          "ta/same: / ours with torchattacks' update (normalised, cross-entropy, clamp)")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        t = r["ms_per_step"]
        print(f"{r['shape']:>7} {r['batch']:>4} | {t['ours_raw']:>9.3f} {t['ours_norm_ce_clamp']:>9.3f} "
              f"{t['torchattacks']:>9.3f} | {r['torchattacks_over_ours_raw']:>7.2f} "
              f"{r['torchattacks_over_ours_same_update']:>7.2f}")
    print(f"per gradient evaluation (ours runs T + 1 = {steps + 1} of them per call: the final iterate's loss "
          f"and gradient are logged; torchattacks T = {steps}):")
    for r in rows:
        print(f"{r['shape']:>7} {r['batch']:>4} | ta/raw {r['per_evaluation_torchattacks_over_ours_raw']:.2f}, "
              f"ta/same {r['per_evaluation_torchattacks_over_ours_same_update']:.2f}")
    tr_steps, d_steps = (10, 8) if args.quick else (200, 40)
    b = bench_batched(8, tr_steps, d_steps, repeats, args.seed)
    m = b["ms_per_call"]
    print(f"\nescape probe, digits CNN, {b['inputs']} inputs, {d_steps} descent + {tr_steps} PGA steps:")
    print(f"  Fig. 2: {b['ratios']} ratios x inputs in one call {m['batched']:.1f} ms, loop over ratios "
          f"{m['loop']:.1f} ms -> loop/batched {b['loop_over_batched']:.2f}")
    print(f"  Fig. 3: {b['models']} models stacked in one call {m['stacked']:.1f} ms, loop over models "
          f"{m['stacked_loop']:.1f} ms -> loop/stacked {b['loop_over_stacked']:.2f}")
    wall = time.perf_counter() - t_start
    env["loadavg_end"] = loadavg()
    print(f"\nwall time {wall:.1f} s; load average at the end {env['loadavg_end']}")
    print(json.dumps({"bench": "escape_speed", "quick": args.quick, "env": env,
                      "cnn_step": rows[0], "cnn_steps": rows, "batched": b, "wall_s": round(wall, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
