"""What each compute stage costs: the work it does, the measured rate of the device it runs on, and the
resources its jobs ask a scheduler for (``runtime`` in minutes, ``mem_mb``, ``gpu``).

**Work.** Counted in passes of the model over one example: a *pass* is one forward evaluation plus the
gradient with respect to the input (what one PGA step costs per example); a training update (forward
plus the full backward) counts :data:`UPDATE_PASSES` passes. A pass costs :func:`pass_flops` FLOPs:

* two-layer net of width m on d inputs and K outputs: ``4 m (d + K)`` (two products forward, two for the
  input gradient);
* the CNN of the ``cnn:`` block (conv k×k, padding k//2, ReLU, 2×2 max-pool, twice; hidden; output):
  twice the forward FLOPs (2 per multiply-add); the classic MNIST CNN (32/64 channels, 5×5, 1024 hidden)
  costs 27.8 MFLOP forward per 28×28 image, 55.5 MFLOP per pass (/work/shared/notes/measured-baselines.md).

**Time** of a job on device kind ``kind`` (:data:`RATES`): ``startup + FLOPs / rate + calls × per_call``,
where ``calls`` counts the model calls on a minibatch (one per PGA step and minibatch: the overhead that
dominates small models), times :data:`SAFETY`; the request is at least :data:`MIN_MINUTES` and grows with
Snakemake's ``attempt`` (a retried job asks for ``attempt ×`` as much).

**Device kind.** ``h200`` when the job runs on a GPU (``device: cuda``, or ``auto`` where ``nvidia-smi``
is found), else ``cpu-core``. CPU requests count ONE core whatever ``threads`` says: the speed-up of
more threads was not measured for these shapes, so on CPU the request is an upper bound of up to
``threads`` ×. Only the H200 was measured among GPUs; another GPU gets the H200's rates.

Everything here is plain Python on the validated configuration (no torch import); the workflow's rules
take their ``resources:`` from :func:`resources` (workflow/rules/common.smk) and the launcher's
``--plan`` lists them. Nothing runs at import."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

#: one factor between the estimated time and the request (the estimate is the rates' central value)
SAFETY = 1.5
#: no request below this many minutes (a scheduler's granularity; start-up and file system)
MIN_MINUTES = 2
#: a training update (forward + full backward, weight gradients included) in passes (forward + input
#: gradient): 82 / 55.5 MFLOP for the classic CNN (measured-baselines.md), 3 / 2 products for the two-layer net
UPDATE_PASSES = 1.5


@dataclass(frozen=True)
class Rate:
    """A measured speed: ``flops_per_s`` of the model family's passes (effective: what the job's code
    reached, not the device's peak), ``per_call_s`` the fixed cost of one model call on a minibatch (a
    PGA step's launches and Python), and where the numbers were measured."""

    flops_per_s: float
    per_call_s: float
    source: str


#: the rate table: device kind -> model family -> :class:`Rate`; ``startup_s``: a job's start (imports,
#: data, CUDA context). Every number says which bench and which machine it comes from.
RATES: dict[str, dict[str, Any]] = {
    "cpu-core": {
        "two_layer": Rate(
            flops_per_s=23_000 * 4 * 1024 * (784 + 10), per_call_s=3.0e-4,
            source="config/paper.yaml header: ~23k example passes/s at d = 784, m = 1024, batch 128, 40 PGA steps "
                   "on one core (AVX-512 machine, bench/train_speed.py, 2026-11; one epoch of 60k images ~160 s); "
                   "per call: measured-baselines.md, m = 128, B = 128: 0.33-0.54 ms per PGA step against a "
                   "0.20 ms GEMM floor. This 2-core AVX2 EPYC under load 5 (bench/train_speed.py --threads 1 "
                   "--images 3000, 2026-12-03) reached 8.2k passes/s: 2.8x slower"),
        "cnn": Rate(
            flops_per_s=128 * 55.5e6 / 0.0811, per_call_s=1.0e-3,
            source="bench/README.md (bench/escape_speed.py, 1 thread, 2-core machine): classic MNIST CNN 81.1 ms per "
                   "PGA step at batch 128 (55.5 MFLOP per image pass); per call: the digits CNN's 2.49 ms per step "
                   "at batch 128, less its FLOPs at that rate"),
        "cnn_probe": None,  # the escape probes: the CNN's rate (bench/escape_speed.py times exactly these PGA calls)
        "startup_s": 15.0,  # import torch 2.7 CPU-s + torch._dynamo 2.6 CPU-s (measured-baselines.md), data, writing
    },
    "h200": {
        "cnn": Rate(
            flops_per_s=60_000 * 55.5e6 * (40 + 1 + UPDATE_PASSES) / 31.0, per_call_s=0.0,
            source="bench/gpu_paper_check.sh on one H200, 2026-11-30 (config/paper.yaml header; measured-"
                   "baselines.md): adversarial training of the classic CNN, 60,000 images, batch 128, 40 PGA "
                   "steps, 31 s per epoch per model (4.6 TFLOP/s, launch-bound at batch 128: its per-call cost "
                   "is inside this rate); cuDNN's TF32 convolutions were on (before config key precision)"),
        "two_layer": Rate(
            flops_per_s=60_000 * 55.5e6 * (40 + 1 + UPDATE_PASSES) / 31.0, per_call_s=1.6e-3,
            source="not measured: the CNN's H200 rate, and its per-step time (31 s / (469 minibatches x 41 "
                   "evaluations) = 1.6 ms, launch-bound) as the per-call floor"),
        "cnn_probe": Rate(
            flops_per_s=45 * 64 * (1000 + 400 + 32) * 55.5e6 / 27.0, per_call_s=0.0,
            source="bench/gpu_paper_check.sh on one H200, 2026-11-30 (config/paper.yaml header): the whole Fig. 2 "
                   "escape stage of config/paper.yaml (15 cells x 3 seeds x 64 inputs, 400 descent + 1000 PGA "
                   "steps, classic CNN) in 27 s (8.5 TFLOP/s: the inputs and ratios of a cell in one call)"),
        "startup_s": 60.0,  # CUDA context, data to the device (not measured separately; the Fig. 2 stage took 27 s in all)
    },
}

#: the variants of ext_step_rule (adversary_dynamics.figures.step_rule.VARIANTS; not imported: no torch here)
STEP_RULE_VARIANTS = 4

IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
N_TRAIN = {"digits": 1438, "gaussian": 1000, "mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000}
N_TEST = {"digits": 359, "gaussian": 1000, "mnist": 10000, "fashion_mnist": 10000, "cifar10": 10000}
N_CLASSES = {"gaussian": 2}


def input_dim(config: Mapping[str, Any]) -> int:
    ds = config["dataset"]
    if ds["name"] == "gaussian":
        return int(ds["dim"])
    c, h, w = IMAGE_SHAPES.get(ds["name"], (1, 28, 28))
    return c * h * w


def n_examples(config: Mapping[str, Any], split: str, n: int | None = None) -> int:
    """Examples of ``split`` (train | test) a job reads: ``n`` or the config's ``dataset.n_<split>``, else all."""
    ds = config["dataset"]
    given = n if n is not None else ds[f"n_{split}"]
    full = (N_TRAIN if split == "train" else N_TEST).get(ds["name"], 60000)
    return min(int(given), full) if given else full


def pass_flops(config: Mapping[str, Any], architecture: str) -> float:
    """FLOPs of one pass (forward + input gradient) of one example through the stage's model."""
    k = N_CLASSES.get(config["dataset"]["name"], 10)
    if architecture == "cnn":
        c, h, w = IMAGE_SHAPES.get(config["dataset"]["name"], (1, 28, 28))
        cn = config["cnn"]
        c1, c2 = (int(x) for x in cn["channels"])
        ks = int(cn["kernel_size"]) ** 2
        fwd = 2 * (h * w * c1 * c * ks + (h // 2) * (w // 2) * c2 * c1 * ks
                   + (h // 4) * (w // 4) * c2 * cn["hidden"] + cn["hidden"] * k)
        return 2.0 * fwd
    return 4.0 * config["model"]["width"] * (input_dim(config) + k)


def device_kind(config: Mapping[str, Any], *, has_gpu: bool | None = None) -> str:
    """``h200`` when the jobs run on a GPU (``device: cuda``, or ``auto`` and ``has_gpu``: by default,
    whether ``nvidia-smi`` is on this host's PATH), else ``cpu-core``."""
    dev = config["device"]
    if has_gpu is None:
        import shutil

        has_gpu = shutil.which("nvidia-smi") is not None
    return "h200" if dev == "cuda" or (dev == "auto" and has_gpu) else "cpu-core"


@dataclass(frozen=True)
class Work:
    """A job's work: ``passes`` (example passes), ``calls`` (model calls on a minibatch), the model
    ``family`` (two_layer | cnn), the ``models`` it handles (one after another) and the rate it runs at
    (``rate``: a key of the :data:`RATES` entry; the family's by default)."""

    passes: float
    calls: float
    family: str
    flops_per_pass: float
    models: int
    rate: str | None = None

    @property
    def flops(self) -> float:
        return self.passes * self.flops_per_pass


def _training(config, *, family: str, n_train: int, n_test: int, epochs: int, batch: int, steps: int,
              eval_steps: int, eval_restarts: int, models: int) -> Work:
    """Adversarial training of ``models`` models: per epoch, every minibatch takes ``steps`` + 1 PGA
    evaluations and one update; after each epoch (and at epoch 0) a robust evaluation of ``n_test``
    examples with ``eval_steps`` + 1 evaluations per restart, plus a clean pass of both splits."""
    batches = math.ceil(n_train / batch)
    train = n_train * (steps + 1 + UPDATE_PASSES)
    evals = n_test * eval_restarts * (eval_steps + 1) + n_train + n_test
    passes = models * (epochs * train + (epochs + 1) * evals)
    calls = models * (epochs * batches * (steps + 2)
                      + (epochs + 1) * math.ceil(n_test / batch) * eval_restarts * (eval_steps + 1))
    return Work(passes, calls, family, pass_flops(config, family), models)


def work(stage: str, config: Mapping[str, Any]) -> Work | None:
    """The work of one job of ``stage`` (compute stages; None for the light ones)."""
    c = config
    arch = c["model"].get("architecture", "two_layer")
    if stage == "train":
        t, a = c["train"], c["attack"]
        return _training(c, family=arch, n_train=n_examples(c, "train"), n_test=n_examples(c, "test"),
                         epochs=t["epochs"], batch=t["batch_size"], steps=a["steps"], eval_steps=t["eval_steps"],
                         eval_restarts=t["eval_restarts"], models=len(c["seeds"]))
    if stage == "paper_fig3_train":
        t = c["paper_fig3"]["train"]
        return _training(c, family=c["paper_escape"]["architecture"], n_train=n_examples(c, "train", t["n_train"]),
                         n_test=n_examples(c, "test", t["n_test"]), epochs=max(int(e) for e in c["paper_fig3"]["checkpoints"]),
                         batch=t["batch_size"], steps=t["attack_steps"], eval_steps=t["eval_steps"],
                         eval_restarts=t["eval_restarts"], models=len(c["paper_escape"]["seeds"]))
    if stage == "probe":
        p = c["probe"]
        per_ck = p["n_inputs"] * (p["restarts"] * (p["max_steps"] + 40) + 300)  # PGA, certificates, a slice
        models = len(c["seeds"]) * len(p["checkpoints"])
        calls = models * (p["restarts"] * (p["max_steps"] + 40) + 300)
        return Work(models * per_ck, calls, arch, pass_flops(c, arch), models)
    if stage in ("paper_fig2_escape_run", "paper_fig3_escape_run"):
        e = c["paper_escape"]
        f = c["paper_fig2" if stage == "paper_fig2_escape_run" else "paper_fig3"]
        ck = 1 if stage == "paper_fig2_escape_run" else len(f["checkpoints"])
        steps = e["steps"] + e["descent"]["steps"] + e["check"]["directions"]
        cells = len(f["scales"]) * len(f["ratios"]) * len(e["seeds"]) * ck
        arch = e["architecture"]
        reps = 1 + len(e.get("replica_ulps") or [])  # each replica reruns the whole probe (descent, check, PGA)
        return Work(reps * cells * e["n_inputs"] * steps, reps * cells * steps, arch, pass_flops(c, arch), cells,
                    rate="cnn_probe" if arch == "cnn" else None)
    if stage == "ext_step_rule_tables":
        # one batched probe (descent, check, PGA) per (scale, seed, variant) on (ratios x inputs) examples; 4 variants
        e, x = c["paper_escape"], c["ext_step_rule"]
        steps = e["steps"] + e["descent"]["steps"] + e["check"]["directions"]
        probes = len(c["paper_fig2"]["scales"]) * len(x["seeds"]) * STEP_RULE_VARIANTS
        arch = e["architecture"]
        return Work(probes * len(x["ratios"]) * e["n_inputs"] * steps, probes * steps, arch, pass_flops(c, arch),
                    probes, rate="cnn_probe" if arch == "cnn" else None)
    return None


def estimate_s(stage: str, config: Mapping[str, Any], *, kind: str) -> float | None:
    """Estimated seconds of one job of ``stage`` on ``kind`` (without :data:`SAFETY`), or None."""
    if stage == "theory":
        th = config["theory"]
        big = max(d ** 3.5 for d in th["dims"]) * th["trials"] * len(th["eta_fractions"]) * th["max_steps"]
        # measured: 55 s (16 CPU-s of work after start-up) on one core for the default's big = 16^3.5 * 12 * 3 * 3000
        return RATES["cpu-core"]["startup_s"] + 40.0 * big * len(th["scales"]) / (16 ** 3.5 * 12 * 3 * 3000)
    if stage == "paper_fig1_landscapes_tables":
        p = config["paper_fig1"]
        # measured: 15 s on one core for the default (grid 201, 64 restarts x 400 steps); linear in both
        return RATES["cpu-core"]["startup_s"] + 10.0 * (p["grid"] ** 2 / 201 ** 2 + p["restarts"] * p["maxima_steps"]
                                                        * len(p["maxima_ratios"]) * p["maxima_examples"]
                                                        / (64 * 400 * 12 * 4))
    w = work(stage, config)
    if w is None:
        return None
    rates = RATES[kind]
    r: Rate = rates.get(w.rate or w.family) or rates[w.family]
    return rates["startup_s"] + w.flops / r.flops_per_s + w.calls * r.per_call_s


def runtime_minutes(stage: str, config: Mapping[str, Any], *, kind: str, attempt: int = 1) -> int:
    """The ``runtime`` request (minutes) of one job: ``SAFETY`` × the estimate, at least ``MIN_MINUTES``,
    times ``attempt``."""
    s = estimate_s(stage, config, kind=kind)
    if s is None:
        raise KeyError(f"no cost model for stage '{stage}'")
    return max(MIN_MINUTES, math.ceil(SAFETY * s / 60)) * attempt


def mem_mb(stage: str, config: Mapping[str, Any], *, attempt: int = 1) -> int:
    """The ``mem_mb`` request of a compute job: torch and the process (1500 MB) plus the dataset in memory
    (float32, train + test, 30 % margin), times ``attempt``."""
    if stage in ("theory", "paper_fig1_landscapes_tables"):
        return 1500 * attempt
    n = n_examples(config, "train") + n_examples(config, "test")
    return int((1500 + 4 * 1.3 * n * input_dim(config) / 2 ** 20) * attempt)


def gpu(stage: str, config: Mapping[str, Any], *, kind: str) -> int:
    """GPUs a job asks for: 1 for the stages that run their model on the device on ``h200``, else 0."""
    return int(kind != "cpu-core" and stage not in ("theory", "paper_fig1_landscapes_tables"))


#: the compute stages this module prices (the light ones: common.smk's light_runtime, light_mem_mb)
COMPUTE = ("train", "probe", "theory", "paper_fig1_landscapes_tables", "paper_fig2_escape_run", "paper_fig3_train",
           "paper_fig3_escape_run", "ext_step_rule_tables")


def resources(stage: str, config: Mapping[str, Any], *, kind: str | None = None) -> dict[str, Any]:
    """``{"runtime": f, "mem_mb": f, "gpu": n}`` for a rule's ``resources:`` (``f(wildcards, attempt)``)."""
    kind = kind or device_kind(config)
    return {"runtime": lambda wildcards, attempt: runtime_minutes(stage, config, kind=kind, attempt=attempt),
            "mem_mb": lambda wildcards, attempt: mem_mb(stage, config, attempt=attempt),
            "gpu": gpu(stage, config, kind=kind)}


def plan(config: Mapping[str, Any], *, kind: str | None = None) -> list[dict[str, Any]]:
    """The jobs a configuration plans, rule by rule, with their requests at the first attempt:
    ``{"rule", "jobs", "runtime_min" (per job), "total_min", "mem_mb", "gpu", "estimate_s" (per job,
    without SAFETY; None for the light rules, whose requests come from what they read:
    workflow/rules/common.smk light_runtime, 5 min and up)}``. Every job of the configuration, whether
    or not its results exist already (Snakemake's dry run says which ones would run)."""
    from adversary_dynamics.pipeline.stages import FIGURES, STAGES

    kind = kind or device_kind(config)
    jobs = {"train": len(config["scales"]), "probe": len(config["scales"]), "theory": 1,
            "paper_fig1_landscapes_tables": 1, "paper_fig2_escape_run": 1,
            "paper_fig3_train": len(config["paper_fig3"]["scales"]) * len(config["paper_fig3"]["ratios"]),
            "paper_fig3_escape_run": 1, "ext_step_rule_tables": 1}
    rows = []
    for stage in STAGES:
        if stage in jobs:
            rt = runtime_minutes(stage, config, kind=kind)
            rows.append({"rule": stage, "jobs": jobs[stage], "runtime_min": rt, "total_min": rt * jobs[stage],
                         "mem_mb": mem_mb(stage, config), "gpu": gpu(stage, config, kind=kind),
                         "estimate_s": round(estimate_s(stage, config, kind=kind), 1)})
        else:  # a tables stage
            rows.append({"rule": stage, "jobs": 1, "runtime_min": 5, "total_min": 5, "mem_mb": 1000, "gpu": 0,
                         "estimate_s": None})
    for fig in FIGURES:
        rows.append({"rule": f"{fig}_notebook", "jobs": 1, "runtime_min": 5, "total_min": 5, "mem_mb": 1000,
                     "gpu": 0, "estimate_s": None})
    rows.append({"rule": "claims", "jobs": 1, "runtime_min": 5, "total_min": 5, "mem_mb": 1000, "gpu": 0,
                 "estimate_s": None})
    return rows


def format_plan(rows: list[dict[str, Any]], *, kind: str, name: str = "") -> str:
    """:func:`plan`'s rows as a Markdown table, with the totals (job-minutes, and GPU-hours)."""
    def hm(minutes: float) -> str:
        return f"{minutes / 60:.1f} h" if minutes >= 120 else f"{minutes:.3g} min"

    lines = [f"Planned jobs{f' of {name}' if name else ''} (device kind {kind}; requests at the first attempt, "
             f"{SAFETY}x the cost model's estimate, at least {MIN_MINUTES} min: adversary_dynamics.pipeline.costs)",
             "", "| rule | jobs | estimate per job | runtime per job | total | mem_mb | gpu |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        est = "light" if r["estimate_s"] is None else hm(r["estimate_s"] / 60) if r["estimate_s"] >= 60 \
            else f"{r['estimate_s']:.3g} s"
        lines.append(f"| {r['rule']} | {r['jobs']} | {est} | {hm(r['runtime_min'])} | {hm(r['total_min'])} | "
                     f"{r['mem_mb']} | {r['gpu']} |")
    total = sum(r["total_min"] for r in rows)
    gpu_total = sum(r["total_min"] for r in rows if r["gpu"])
    lines += ["", f"{sum(r['jobs'] for r in rows)} jobs, {hm(total)} requested in all"
              + (f" ({hm(gpu_total)} of it on GPUs)" if gpu_total else "")]
    return "\n".join(lines)
