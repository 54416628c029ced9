r"""Adversarial training: min over weights of the adversarial loss, with PGA as the inner max.

    min_θ  (1/n) Σ_i  max_{‖δ_i‖ ≤ ε}  ℓ(F_θ(x_i + δ_i), y_i),

approximated per minibatch by running :func:`~adversary_dynamics.attack.pga` for δ (with the
weights fixed) and then one SGD (or Adam) step on (1/B) Σ ℓ(F_θ(x_i + δ_i), y_i).

Logged per SGD step: the adversarial training loss (the minibatch loss at the PGA solution,
before the update) and the clean training loss (same minibatch, δ = 0, before the update).
Logged per epoch (and at epoch 0, the initialisation): clean and robust test accuracy and
loss, robust under ``eval_attack`` (a stronger PGA; worst case over its restarts).

Checkpoints of the weights are written at the configured epochs (0 = initialisation). A resume
state (weights, optimiser, every generator's state, logs) is written atomically after every
epoch and, on SIGTERM, at the next minibatch boundary; a rerun resumes from it and ends
bit-identical to an uninterrupted run (same machine, same thread count). A non-finite loss
stops training cleanly with ``status = "diverged"`` and the first non-finite step recorded.

One training loop (:func:`_train_loop`) serves every model family: a single network of any kind
(:class:`~adversary_dynamics.learning.models.TwoLayerNet`, :class:`~adversary_dynamics.learning.models.CNN`, any
``nn.Module`` on flat inputs; :func:`adversarial_train`), or S seeds of a two-layer network as one
ensemble network, or S CNNs as one :class:`~adversary_dynamics.learning.models.CNNEnsemble`
(:func:`adversarial_train_seeds`: one batched program per minibatch instead of one per model, each
model with its own seed's random streams, its own ε and its own updates, so its results equal
per-model :func:`adversarial_train` up to the rounding of the batched products). What differs
between the two is only how a minibatch step, the evaluation and a member's checkpoint are
computed (:class:`_SingleModel`, :class:`_Ensemble`).

No host synchronisation in the inner loop: the data are checked once per call (labels against the
model's outputs, inputs finite), and every minibatch's pga call then runs with
``check_values=False``; the losses are kept as device tensors and read once per epoch.
"""

from __future__ import annotations

import math
import signal
import threading
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from adversary_dynamics.pipeline.devices import resolve_device  # noqa: F401  (re-exported: training.resolve_device)
from adversary_dynamics.storage.runio import checkpoint_path  # noqa: F401  (re-exported: training.checkpoint_path)
from adversary_dynamics.attack import pga
from adversary_dynamics.attack.threat import _init_draws, _init_from_draws
from adversary_dynamics.attack.checks import _check_finite, _deterministic
from adversary_dynamics.learning.data import Dataset
from adversary_dynamics.learning.losses import LossLike, check_labels, get_loss
from adversary_dynamics.learning.models import CNN, CNNEnsemble, TwoLayerNet
from adversary_dynamics.storage.runio import link_or_copy_atomic, save_torch_atomic

OPTIMIZERS = ("sgd", "adam")

__all__ = ["OPTIMIZERS", "AttackSpec", "TrainResult", "Terminated", "adversarial_train", "adversarial_train_seeds",
           "ensemble_of", "stack_models", "member_state_dict", "evaluate", "resolve_device", "checkpoint_path",
           "train_step"]


class Terminated(Exception):
    """Raised after a SIGTERM once the resume state has been written."""


@dataclass(frozen=True, kw_only=True)
class AttackSpec:
    """One PGA configuration; ``step_size`` is absolute (η), ``eps`` the l2/linf radius."""

    eps: float
    steps: int
    step_size: float
    norm: str = "l2"
    gradient: str = "raw"
    init: str = "uniform_ball"
    restarts: int = 1


@dataclass
class TrainResult:
    status: str  # "completed" | "diverged"
    diverged_at_step: Optional[int]
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)


class _SigtermGuard:
    """While installed (main thread only), a SIGTERM sets ``event`` instead of ending the process:
    training then writes its resume state at the next minibatch boundary and raises Terminated."""

    def __init__(self, enabled: bool) -> None:
        self.event = threading.Event()
        self.old = None
        if enabled and threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, lambda *_: self.event.set())

    def restore(self) -> None:
        """Put the displaced handler back; a SIGTERM not acted on (it came after the last minibatch,
        training ended anyway) is passed on to it, so the caller still stops."""
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        if self.event.is_set() and callable(self.old):
            self.old(signal.SIGTERM, None)


def _resume_copy_path(run_dir, epoch: int) -> Path:
    """Where the resume state keeps its own copy of a checkpoint (not a workflow output)."""
    return Path(run_dir) / "resume" / f"epoch_{epoch:04d}.pt"


def _attack(model, x, y, spec: AttackSpec, loss, generator, *, check_values: bool = True):
    return pga(model, x, y, loss=loss, eps=spec.eps, norm=spec.norm, steps=spec.steps, step_size=spec.step_size,
               gradient=spec.gradient, init=spec.init, generator=generator, check_values=check_values)


def _predict(out: torch.Tensor) -> torch.Tensor:
    return torch.where(out[..., 0] >= 0, 1.0, -1.0) if out.shape[-1] == 1 else out.argmax(-1)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: LossLike, attack: AttackSpec,
             generator: torch.Generator | None, chunk: int = 2048) -> dict[str, float]:
    """Clean and robust accuracy/loss; robust = worst case over ``attack.restarts`` PGA runs."""
    fn = get_loss(loss)
    correct = robust = closs = rloss = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            xb, yb = x[i:i + chunk], y[i:i + chunk]
            out = model(xb)
            correct += float((_predict(out) == yb).sum())
            closs += float(fn(out, yb).sum())
            xr = xb.expand(attack.restarts, *xb.shape)
            res = _attack(model, xr, yb, attack, loss, generator)
            out_adv = model(xr + res.delta)
            ok = (_predict(out_adv) == yb).all(0)
            robust += float(ok.sum())
            rloss += float(fn(out_adv, yb).max(0).values.sum())
    n = x.shape[0]
    return {"clean_test_acc": correct / n, "robust_test_acc": robust / n, "clean_test_loss": closs / n,
            "robust_test_loss": rloss / n}


def _generator(seed: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def _seed_generators(seed: int, device) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    """A seed's three generators: minibatch order (CPU), training-attack starts, evaluation starts."""
    return _generator(seed * 1000 + 1, "cpu"), _generator(seed * 1000 + 2, device), _generator(seed * 1000 + 3, device)


def _check_schedule(optimizer: str, epochs: int, batch_size: int, checkpoint_epochs) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not allowed: choose one of {OPTIMIZERS}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    bad = [c for c in checkpoint_epochs if not 0 <= c <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs {bad} are outside 0..{epochs} (the last epoch)")


def _make_optimizer(model: nn.Module, optimizer: str, lr: float, momentum: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return (torch.optim.SGD(params, lr=lr, momentum=momentum) if optimizer == "sgd"
            else torch.optim.Adam(params, lr=lr))


def _epoch_row(epoch: int, step: int, steps: list[dict[str, Any]], ev: dict[str, float]) -> dict[str, Any]:
    """One epochs.csv row: the evaluation ``ev`` after ``epoch`` and the epoch's mean adversarial loss."""
    ep = [s["adv_loss"] for s in steps if s["epoch"] == epoch]
    return {"epoch": epoch, "step": step, "train_adv_loss": sum(ep) / len(ep) if ep else float("nan"), **ev}


def train_step(model: nn.Module, opt: torch.optim.Optimizer, fn, xb: torch.Tensor, yb: torch.Tensor, *,
               attack: AttackSpec, loss: LossLike, generator: torch.Generator | None, check_values: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of adversarial training on the minibatch (xb, yb): δ from PGA (weights fixed),
    then one optimiser step on (1/B) Σ ℓ(F(x_i + δ_i), y_i). Returns the adversarial and the clean
    minibatch loss before the update (detached tensors: no device synchronisation).
    ``check_values=False``: pga skips its value checks (the caller checked the data; see pga)."""
    res = _attack(model, xb, yb, attack, loss, generator, check_values=check_values)
    with torch.no_grad():
        clean = fn(model(xb), yb).mean()
    opt.zero_grad(set_to_none=True)
    adv = fn(model(xb + res.delta), yb).mean()
    adv.backward()
    opt.step()
    return adv.detach(), clean


class _SingleModel:
    """One network, one seed: its minibatch step is :func:`train_step` (pga draws its own start from
    the seed's attack generator), its evaluation :func:`evaluate`."""

    batched = False

    def __init__(self, model: nn.Module, seed: int, device) -> None:
        self.model, self.S = model, 1
        g = _seed_generators(seed, device)
        self.g_shuffle, self.g_attack, self.g_eval = [g[0]], [g[1]], [g[2]]

    def permutation(self, n: int, live: set[int], device) -> torch.Tensor:
        return torch.randperm(n, generator=self.g_shuffle[0]).to(device)  # (n,)

    def step(self, opt, fn, data: Dataset, idx: torch.Tensor, live: list[int], *, attack: Sequence[AttackSpec],
             loss: LossLike) -> tuple[torch.Tensor, torch.Tensor]:
        adv, clean = train_step(self.model, opt, fn, data.x_train[idx], data.y_train[idx], attack=attack[0],
                                loss=loss, generator=self.g_attack[0], check_values=False)
        return adv.reshape(1), clean.reshape(1)

    def evaluate(self, x, y, *, loss: LossLike, attack: Sequence[AttackSpec], active: list[int]) -> list[dict | None]:
        return [evaluate(self.model, x, y, loss=loss, attack=attack[0], generator=self.g_eval[0]) if active else None]

    def member_state(self, k: int):
        return self.model.state_dict()

    def params_finite(self) -> list[bool]:
        return [all(bool(torch.isfinite(p).all()) for p in self.model.parameters())]


class _Ensemble:
    """S models as one ensemble network (an ensemble :class:`TwoLayerNet` or a :class:`CNNEnsemble`,
    ``ensemble=(S,)``): each member's minibatch from its own permutation, its PGA start drawn by the
    call pga makes for it alone (with its own ε), one batched pga call (ε and η per member) and one
    backward pass of Σ_k L_k (see :func:`adversarial_train_seeds`)."""

    batched = True

    def __init__(self, model: "TwoLayerNet | CNNEnsemble", seeds: list[int], device) -> None:
        self.model, self.S = model, len(seeds)
        self.g_shuffle, self.g_attack, self.g_eval = (list(g) for g in zip(*(_seed_generators(s, device)
                                                                               for s in seeds)))

    def permutation(self, n: int, live: set[int], device) -> torch.Tensor:
        return torch.stack([torch.randperm(n, generator=self.g_shuffle[k]) if k in live else torch.arange(n)
                            for k in range(self.S)]).to(device)  # (S, n)

    def step(self, opt, fn, data: Dataset, idx: torch.Tensor, live: list[int], *, attack: Sequence[AttackSpec],
             loss: LossLike) -> tuple[torch.Tensor, torch.Tensor]:
        xb, yb = data.x_train[idx], data.y_train[idx]  # (S, B, d): each seed its own minibatch
        delta0 = _member_starts(tuple(xb.shape[1:]), attack, self.g_attack, set(live), xb, dim=0)
        eps, eta = _member_radii(attack, xb, dim=0)
        a = attack[0]
        res = pga(self.model, xb, yb, loss=loss, eps=eps, norm=a.norm, steps=a.steps, step_size=eta,
                  gradient=a.gradient, init=a.init, delta0=delta0, check_values=False)
        with torch.no_grad():
            clean = fn(self.model(xb), yb).mean(-1)  # (S,)
        opt.zero_grad(set_to_none=True)
        adv = fn(self.model(xb + res.delta), yb).mean(-1)  # (S,): L_k per seed
        (adv.sum() if len(live) == self.S else adv[live].sum()).backward()
        opt.step()
        return adv.detach(), clean

    def evaluate(self, x, y, *, loss: LossLike, attack: Sequence[AttackSpec], active: list[int]) -> list[dict | None]:
        return _evaluate_members(self.model, x, y, loss=loss, attacks=attack, generators=self.g_eval, active=active)

    def member_state(self, k: int):
        return member_state_dict(self.model, k)

    def params_finite(self) -> list[bool]:
        with torch.no_grad():
            return torch.stack([torch.isfinite(p).reshape(self.S, -1).all(1)
                                for p in self.model.parameters()]).all(0).tolist()


def _train_loop(
    group: "_SingleModel | _Ensemble",
    data: Dataset,
    *,
    seeds: list[int],
    run_dirs: Sequence[str | Path] | None,
    state_file: Path | None,
    loss: LossLike,
    attack: list[AttackSpec],
    eval_attack: list[AttackSpec],
    optimizer: str,
    lr: float,
    momentum: float,
    epochs: int,
    batch_size: int,
    checkpoint_epochs: tuple[int, ...],
    fingerprint: Any,
    progress: bool,
    handle_sigterm: bool,
    stop_after_epoch: int | None,
) -> list[TrainResult]:
    """The training loop of :func:`adversarial_train` and :func:`adversarial_train_seeds`: resume
    state, SIGTERM, epochs of minibatch steps (``group.step``), logs, divergence per member,
    evaluations (``group.evaluate``) and checkpoints (``group.member_state``). Returns one
    :class:`TrainResult` per member (seed); ``attack`` and ``eval_attack`` hold one spec per member.

    The data are checked here, once (inputs finite, labels usable by the loss for the model's
    outputs); the minibatch steps then call pga without its value checks (no host
    synchronisation per minibatch)."""
    model, S = group.model, group.S
    device = data.x_train.device
    fn = get_loss(loss)
    _check_finite("data.x_train", data.x_train)
    _check_finite("data.x_test", data.x_test)
    k = getattr(model, "n_outputs", None)
    if k is None and data.x_train.shape[0]:  # any other module: K from one forward pass (eval mode, no gradient)
        with torch.no_grad(), _deterministic(model):
            k = model(data.x_train[:1]).shape[-1]
    if k is not None and not callable(loss):  # before any step: labels the loss cannot use fail here, naming the split
        check_labels(loss, data.y_train, n_outputs=k, name="data.y_train")
        check_labels(loss, data.y_test, n_outputs=k, name="data.y_test")
    opt = _make_optimizer(model, optimizer, lr, momentum)
    g_shuffle, g_attack, g_eval = group.g_shuffle, group.g_attack, group.g_eval
    n = data.x_train.shape[0]
    nb = (n + batch_size - 1) // batch_size
    key = {"fingerprint": fingerprint, "seeds": seeds, "batched": group.batched}

    results = [TrainResult(status="running", diverged_at_step=None) for _ in seeds]
    epoch, batch, step, perm = 0, 0, 0, None  # `epoch` = epochs completed, shared by the members still training
    adv_vals, clean_vals = [], []  # the current epoch's per-step losses, (S,) each, logged at its end
    frozen: dict[int, dict[str, torch.Tensor]] = {}  # member -> its parameters when it diverged (ensembles)
    st = torch.load(state_file, map_location=device, weights_only=False) if (
        state_file is not None and state_file.exists()) else None
    if st is not None and st.get("fingerprint") != key:
        warnings.warn(f"{state_file} was written by a different configuration or seed list; starting afresh",
                      stacklevel=3)
        st = None
    if st is not None:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        for gens, name in ((g_shuffle, "g_shuffle"), (g_attack, "g_attack"), (g_eval, "g_eval")):
            for g, state in zip(gens, st[name]):
                g.set_state(state.to(g.get_state().device))
        epoch, batch, step, perm = st["epoch"], st["batch"], st["step"], st["perm"]
        adv_vals, clean_vals = list(st["adv_vals"]), list(st["clean_vals"])
        frozen = st["frozen"]
        for r, saved in zip(results, st["results"]):
            r.status, r.diverged_at_step, r.steps, r.epochs = (saved["status"], saved["diverged_at_step"],
                                                               saved["steps"], saved["epochs"])
        # checkpoints already written whose files are gone (a workflow manager deletes a job's
        # outputs before rerunning it, e.g. Snakemake's --rerun-incomplete or --forcerun) come back
        # from the resume state's own copies, so resuming never loses an earlier checkpoint
        if run_dirs is not None:
            for d in run_dirs:
                for k in checkpoint_epochs:
                    if d is not None and k <= epoch and not checkpoint_path(d, k).exists() and (
                            _resume_copy_path(d, k).exists()):
                        link_or_copy_atomic(_resume_copy_path(d, k), checkpoint_path(d, k))
        if st["status"] == "done":
            return results

    def active() -> list[int]:
        return [k for k, r in enumerate(results) if r.status == "running"]

    def save_state(status: str = "running") -> None:
        if state_file is None:
            return
        save_torch_atomic({
            "fingerprint": key, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "g_shuffle": [g.get_state() for g in g_shuffle], "g_attack": [g.get_state() for g in g_attack],
            "g_eval": [g.get_state() for g in g_eval], "epoch": epoch, "batch": batch, "step": step, "perm": perm,
            "adv_vals": adv_vals, "clean_vals": clean_vals, "frozen": frozen, "status": status,
            "results": [{"status": r.status, "diverged_at_step": r.diverged_at_step, "steps": r.steps,
                         "epochs": r.epochs} for r in results],
        }, state_file)

    def save_checkpoints(k: int) -> None:
        if run_dirs is not None and k in checkpoint_epochs:
            for j in active():
                if run_dirs[j] is not None:
                    path = checkpoint_path(run_dirs[j], k)
                    save_torch_atomic({"epoch": k, "model": group.member_state(j)}, path)
                    if state_file is not None:  # the resume state's copy (a hard link: no extra space)
                        link_or_copy_atomic(path, _resume_copy_path(run_dirs[j], k))

    guard = _SigtermGuard(handle_sigterm and state_file is not None)
    term = guard.event

    def log_eval(k: int) -> None:
        evs = group.evaluate(data.x_test, data.y_test, loss=loss, attack=eval_attack, active=active())
        for r, ev in zip(results, evs):
            if ev is not None:
                r.epochs.append(_epoch_row(k, step, r.steps, ev))

    def restore_frozen() -> None:
        """Keep diverged members' weights where they diverged (their slices get no useful update)."""
        with torch.no_grad():
            for name, p in model.named_parameters():
                for j, snap in frozen.items():
                    p[j].copy_(snap[name])

    try:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=epochs * nb, initial=epoch * nb + batch, desc="train" if S == 1 else f"train {S} seeds",
                       unit="step", mininterval=2.0)
        if epoch == 0 and batch == 0 and not results[0].epochs:
            log_eval(0)
            save_checkpoints(0)
            save_state()
        while epoch < epochs:
            if batch == 0:
                adv_vals, clean_vals = [], []
            live = active()
            while batch < nb:
                if term.is_set():
                    save_state()
                    term.clear()  # acted on: not passed on below
                    raise Terminated(f"SIGTERM: resume state written at epoch {epoch}, batch {batch}")
                if batch == 0:  # after the SIGTERM check: a state saved at batch 0 has not drawn it yet
                    perm = group.permutation(n, set(live), device)
                idx = perm[..., batch * batch_size:(batch + 1) * batch_size]
                adv, clean = group.step(opt, fn, data, idx, live, attack=attack, loss=loss)
                if frozen:
                    restore_frozen()
                step += 1
                batch += 1
                adv_vals.append(adv)
                clean_vals.append(clean)
                if bar is not None:
                    bar.update(1)
            adv_t, clean_t = torch.stack(adv_vals).t().tolist(), torch.stack(clean_vals).t().tolist()  # (S, steps)
            params_finite = group.params_finite()
            first = step - len(adv_vals)
            for k in live:
                r = results[k]
                r.steps.extend({"step": first + i + 1, "epoch": epoch + 1, "adv_loss": a, "clean_loss": c}
                               for i, (a, c) in enumerate(zip(adv_t[k], clean_t[k])))
                bad_steps = [first + i + 1 for i, (a, c) in enumerate(zip(adv_t[k], clean_t[k]))
                             if not (math.isfinite(a) and math.isfinite(c))]
                if bad_steps or not params_finite[k]:
                    r.status = "diverged"
                    r.diverged_at_step = bad_steps[0] if bad_steps else step
                    if group.batched:
                        frozen[k] = {name: p.detach()[k].clone() for name, p in model.named_parameters()}
            epoch += 1
            batch = 0
            if not active():  # every member has diverged
                save_state("done")
                return results
            log_eval(epoch)
            save_checkpoints(epoch)
            if epoch == epochs:
                for k in active():
                    results[k].status = "completed"
                save_state("done")
                return results
            save_state()
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                return results
        return results  # not reached: the loop returns at the last epoch
    finally:
        if progress and bar is not None:
            bar.close()
        guard.restore()


def adversarial_train(
    model: nn.Module,
    data: Dataset,
    *,
    loss: LossLike = "quadratic",
    attack: AttackSpec,
    eval_attack: AttackSpec,
    optimizer: str = "sgd",
    lr: float,
    momentum: float = 0.0,
    epochs: int,
    batch_size: int,
    seed: int,
    checkpoint_epochs: tuple[int, ...] = (),
    run_dir: str | Path | None = None,
    fingerprint: Any = None,
    progress: bool = False,
    handle_sigterm: bool = True,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Adversarially train ``model`` (any network on flat inputs: a :class:`TwoLayerNet`, a
    :class:`~adversary_dynamics.learning.models.CNN`, ...) on ``data`` (already scaled and on the model's device).

    ``seed`` seeds the minibatch order, the training attack's random starts and the
    evaluation attack's random starts (three generators, all saved in the resume state).
    With ``run_dir``, checkpoints ``{"epoch", "model": state_dict}`` go to
    ``run_dir/checkpoints/epoch_XXXX.pt`` and the resume state to ``run_dir/state.pt``; an existing
    state is resumed (its ``fingerprint`` must equal the given one; else a warning and a fresh
    start), bit-identically. ``stop_after_epoch`` ends early after that epoch (used by tests).
    Raises ValueError for an unknown optimizer, epochs or batch_size < 1, checkpoint epochs
    outside 0..epochs; :class:`Terminated` after a SIGTERM (resume state written).
    """
    _check_schedule(optimizer, epochs, batch_size, checkpoint_epochs)
    if isinstance(model, TwoLayerNet) and model.ensemble:
        raise ValueError(f"model is an ensemble TwoLayerNet (ensemble={model.ensemble}): train it with "
                         "adversarial_train_seeds")
    return _train_loop(
        _SingleModel(model, int(seed), data.x_train.device), data, seeds=[int(seed)],
        run_dirs=[run_dir] if run_dir is not None else None,
        state_file=Path(run_dir) / "state.pt" if run_dir is not None else None, loss=loss, attack=[attack],
        eval_attack=[eval_attack], optimizer=optimizer, lr=lr, momentum=momentum, epochs=epochs,
        batch_size=batch_size, checkpoint_epochs=checkpoint_epochs, fingerprint=fingerprint, progress=progress,
        handle_sigterm=handle_sigterm, stop_after_epoch=stop_after_epoch)[0]


# ----------------------------------------------------------------------------- several seeds as one program


def ensemble_of(models: Sequence[TwoLayerNet]) -> TwoLayerNet:
    """One ensemble :class:`TwoLayerNet` (``ensemble=(S,)``) whose member k holds a copy of the
    weights of ``models[k]`` (S plain networks of one architecture, dtype and device)."""
    if not models:
        raise ValueError("ensemble_of needs at least one model")
    m0 = models[0]

    def arch(m) -> tuple:
        return (type(m), m.input_dim, m.width, m.n_outputs, m.activation, m.has_bias, m.A.requires_grad,
                m.ensemble, m.W.dtype, m.W.device)

    for k, m in enumerate(models):
        if not isinstance(m, TwoLayerNet) or m.ensemble:
            raise ValueError(f"models[{k}] is not a plain TwoLayerNet (got {type(m).__name__}"
                             f"{', ensemble=' + str(m.ensemble) if isinstance(m, TwoLayerNet) else ''})")
        if arch(m) != arch(m0):
            raise ValueError(f"models[{k}] differs from models[0] in architecture, dtype or device: "
                             f"{arch(m)[1:]} vs {arch(m0)[1:]}")
    device, dtype = m0.W.device, m0.W.dtype
    # a throwaway generator: the random initialisation is overwritten, and the global RNG is not touched
    ens = TwoLayerNet(input_dim=m0.input_dim, width=m0.width, n_outputs=m0.n_outputs, activation=m0.activation,
                      bias=m0.has_bias, train_output_layer=m0.A.requires_grad, ensemble=(len(models),),
                      generator=torch.Generator(device=device).manual_seed(0), device=device, dtype=dtype)
    with torch.no_grad():
        for name, p in ens.named_parameters():
            p.copy_(torch.stack([getattr(m, name).detach() for m in models]))
    return ens


def member_state_dict(model: "TwoLayerNet | CNNEnsemble", k: int) -> "OrderedDict[str, torch.Tensor]":
    """The state dict of member ``k`` of an ensemble TwoLayerNet in exactly the plain network's
    format (keys ``W``, ``A`` and ``b`` when present, without the ensemble dimension; copies, so
    saving one does not save the whole ensemble's storage): it loads into ``TwoLayerNet(...)``.
    For a :class:`CNNEnsemble`, member k's :class:`CNN` state dict (``CNNEnsemble.member_state_dict``)."""
    if isinstance(model, CNNEnsemble):
        return model.member_state_dict(k)
    sd = model.state_dict()
    out = OrderedDict((name, t[k].clone()) for name, t in sd.items())
    meta = getattr(sd, "_metadata", None)
    if meta is not None:
        out._metadata = OrderedDict((key, dict(v)) for key, v in meta.items())
    return out


def _member_starts(shape: tuple[int, ...], attacks: Sequence[AttackSpec], generators: Sequence[torch.Generator],
                   active, like: torch.Tensor, *, dim: int) -> torch.Tensor:
    """Every member's PGA start, stacked along ``dim``: member k's random numbers drawn with
    ``generators[k]`` exactly as the ``random_init(shape, ...)`` call pga makes for a single network
    draws them, then turned into δ₀ at its own ε (``attacks[k].eps``) by the same elementwise and
    row-wise maths, once for all members (so bit for bit member k's single-network start); zeros
    (nothing drawn) for members not in ``active``. ``shape`` is one member's (*batch, d)."""
    a0 = attacks[0]  # norm and init are shared (_member_specs)
    kw = dict(device=like.device, dtype=like.dtype)
    if a0.init == "zero":
        return torch.zeros((*shape[:dim], len(attacks), *shape[dim:]), **kw)
    idle = None
    draws = []
    for k, g in enumerate(generators):
        if k in active:
            draws.append(_init_draws(shape, a0.norm, a0.init, g, kw["device"], kw["dtype"]))
        else:  # numbers that make δ₀ exactly 0: u = ½ (linf), z = 0 (l2)
            if idle is None:
                shapes = ((shape,) if a0.norm == "linf" or a0.init == "uniform_sphere"
                          else (shape, (*shape[:-1], 1)))
                idle = tuple(torch.full(sh, 0.5 if a0.norm == "linf" else 0.0, **kw) for sh in shapes)
            draws.append(idle)
    stacked = tuple(torch.stack(ts, dim=dim) for ts in zip(*draws))
    e = _member_radii(attacks, stacked[0], dim=dim, force=True)[0]
    return _init_from_draws(stacked, e.unsqueeze(-1), a0.norm, a0.init)


def _member_radii(attacks: Sequence[AttackSpec], like: torch.Tensor, *, dim: int, force: bool = False):
    """(ε, η) for one batched pga call over the members (member axis ``dim`` of ``like``'s batch
    shape, ``like`` being (*batch, d)): the numbers themselves when every member has the same (the
    single network's call) and not ``force``, else tensors of one value per member, shaped to
    broadcast against the batch (one host-to-device copy of S numbers, no synchronisation)."""
    eps, eta = [a.eps for a in attacks], [a.step_size for a in attacks]
    if not force and len(set(eps)) == 1 and len(set(eta)) == 1:
        return eps[0], eta[0]
    shape = [1] * (like.dim() - 1 - dim)
    shape[0] = len(attacks)
    both = torch.tensor([eps, eta], dtype=like.dtype).to(like.device, non_blocking=True)
    return both[0].reshape(shape), both[1].reshape(shape)


def _evaluate_members(model: "TwoLayerNet | CNNEnsemble", x: torch.Tensor, y: torch.Tensor, *, loss: LossLike,
                      attacks: Sequence[AttackSpec], generators: Sequence[torch.Generator], active: Sequence[int],
                      chunk: int = 2048) -> list[dict[str, float] | None]:
    """:func:`evaluate` for every member of an ensemble at once (None for members not in ``active``).

    Member k's random starts are drawn with ``generators[k]`` by the call pga makes on its own,
    ``random_init((restarts, n_chunk, d), ...)`` at its ε (``attacks[k]``), and passed to pga as
    ``delta0``; inactive members start from 0 and draw nothing.
    """
    attack = attacks[0]
    fn = get_loss(loss)
    S = len(generators)
    act = set(active)
    acc = [[0.0, 0.0, 0.0, 0.0] for _ in range(S)]  # correct, robust, clean loss, robust loss
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            xb, yb = x[i:i + chunk], y[i:i + chunk]
            out = model(xb)  # (S, n, K)
            correct = (_predict(out) == yb).sum(-1).tolist()
            closs = fn(out, yb).sum(-1).tolist()
            delta0 = _member_starts((attack.restarts, *xb.shape), attacks, generators, act, xb, dim=1)
            xr = xb.expand(attack.restarts, S, *xb.shape)  # (R, S, n, d): broadcasts against W (S, m, d)
            eps, eta = _member_radii(attacks, xr, dim=1)
            res = pga(model, xr, yb, loss=loss, eps=eps, norm=attack.norm, steps=attack.steps,
                      step_size=eta, gradient=attack.gradient, init=attack.init, delta0=delta0)
            out_adv = model(xr + res.delta)  # (R, S, n, K)
            robust = (_predict(out_adv) == yb).all(0).sum(-1).tolist()
            rloss = fn(out_adv, yb).max(0).values.sum(-1).tolist()
            for k in range(S):
                for j, v in enumerate((correct[k], robust[k], closs[k], rloss[k])):
                    acc[k][j] += float(v)
    n = x.shape[0]
    return [{"clean_test_acc": a[0] / n, "robust_test_acc": a[1] / n, "clean_test_loss": a[2] / n,
             "robust_test_loss": a[3] / n} if k in act else None for k, a in enumerate(acc)]


def adversarial_train_seeds(
    model: "TwoLayerNet | CNNEnsemble",
    data: Dataset,
    *,
    seeds: Sequence[int],
    run_dirs: Sequence[str | Path] | None = None,
    state_file: str | Path | None = None,
    loss: LossLike = "quadratic",
    attack: AttackSpec | Sequence[AttackSpec],
    eval_attack: AttackSpec | Sequence[AttackSpec],
    optimizer: str = "sgd",
    lr: float,
    momentum: float = 0.0,
    epochs: int,
    batch_size: int,
    checkpoint_epochs: tuple[int, ...] = (),
    fingerprint: Any = None,
    progress: bool = False,
    handle_sigterm: bool = True,
    stop_after_epoch: int | None = None,
) -> list[TrainResult]:
    r"""Adversarially train S = len(seeds) models together, as one ensemble network ("many models,
    one program").

    ``model`` is an ensemble :class:`TwoLayerNet` with ``ensemble=(S,)`` (see :func:`ensemble_of`;
    member k, θ_k = (W[k], A[k], b[k]), is seed ``seeds[k]``'s network) or a
    :class:`~adversary_dynamics.learning.models.CNNEnsemble` of S CNNs (member k's CNN weights).
    ``attack`` and ``eval_attack`` are one spec for all members, or one per member: members may
    differ in ``eps`` and ``step_size`` (paper Fig. 3: one model per ratio, ε = ratio × scale),
    the other fields must agree (one pga call serves them all; ε and η then go to it as tensors
    of one value per member, which changes only rounding). The seeds need not be distinct when
    the specs differ (Fig. 3's ratios share the seed list); each member owns its generators
    regardless. Per minibatch, each member
    draws exactly what :func:`adversarial_train` draws for it: its own minibatch I_k from its own
    permutation (generator ``seed*1000 + 1``, CPU), its PGA start δ⁰_k from its attack generator
    (``seed*1000 + 2``) by the same ``random_init`` call pga makes, and its evaluation starts from
    its evaluation generator (``seed*1000 + 3``). The inputs x[I_k] (shape (S, B, d)) are attacked
    by one batched :func:`~adversary_dynamics.attack.pga` call (δ⁰ passed as ``delta0``), and the
    optimiser minimises

        L(θ) = Σ_k L_k(θ_k),   L_k(θ_k) = (1/B) Σ_{i ∈ I_k} ℓ(F_{θ_k}(x_i + δ_{k,i}), y_i).

    The θ_k are disjoint slices of the parameters, so ∂L/∂θ_k = ∂L_k/∂θ_k, each seed's
    single-seed gradient; SGD (with momentum) and Adam act elementwise (Adam's step count is
    shared, and equal for all seeds that are still training), so every seed follows its
    single-seed trajectory. The results (logs, checkpoints, final weights) therefore equal those of
    :func:`adversarial_train` run per seed from the same initial weights **up to floating-point
    rounding** of the batched products (not bitwise; rounding differences can grow along training,
    as between two thread counts). Runs of this function are bit-identical among themselves
    (same machine, same thread count), also across a resume. The optimisers act elementwise: plain
    SGD, SGD with momentum and Adam (whose step counter is shared; it is equal for all members still
    training), so stacking changes no member's update rule.

    Per member, ``run_dirs[k]`` receives checkpoints ``checkpoints/epoch_XXXX.pt`` in the plain
    network's format (:func:`member_state_dict`: they load into a plain TwoLayerNet or CNN). The group's
    resume state (ensemble weights, optimiser, every seed's three generators, logs) goes to
    ``state_file``, written atomically after every epoch and, on SIGTERM, at the next minibatch
    boundary (then :class:`Terminated` is raised); an existing state is resumed if its
    ``fingerprint`` and ``seeds`` equal the given ones. A seed whose losses or weights become
    non-finite is found at the end of the epoch, as :func:`adversarial_train` finds it: it is
    recorded ``"diverged"`` at its first non-finite step, its logs end with that epoch, its weights
    are frozen there, and the other seeds go on. Returns one :class:`TrainResult` per seed.
    """
    _check_schedule(optimizer, epochs, batch_size, checkpoint_epochs)
    seeds = [int(s) for s in seeds]
    S = len(seeds)
    attacks = _member_specs("attack", attack, S)
    eval_attacks = _member_specs("eval_attack", eval_attack, S)
    if S < 1 or len(set(zip(seeds, [a.eps for a in attacks]))) != S:
        raise ValueError(f"seeds must be a non-empty list of integers, distinct among members of the same attack "
                         f"eps, got seeds {seeds} with eps {[a.eps for a in attacks]}")
    if not isinstance(model, (TwoLayerNet, CNNEnsemble)) or getattr(model, "ensemble", None) != (S,):
        raise ValueError(f"model must be a TwoLayerNet with ensemble=({S},) (ensemble_of) or a CNNEnsemble of {S} "
                         f"CNNs, one member per seed; got "
                         f"{type(model).__name__}" + (f" with ensemble={model.ensemble}"
                                                      if isinstance(model, (TwoLayerNet, CNNEnsemble)) else ""))
    if run_dirs is not None and len(run_dirs) != S:
        raise ValueError(f"run_dirs must name one folder per seed: {len(run_dirs)} folders for {S} seeds")
    return _train_loop(
        _Ensemble(model, seeds, data.x_train.device), data, seeds=seeds, run_dirs=run_dirs,
        state_file=Path(state_file) if state_file is not None else None, loss=loss, attack=attacks,
        eval_attack=eval_attacks, optimizer=optimizer, lr=lr, momentum=momentum, epochs=epochs,
        batch_size=batch_size, checkpoint_epochs=checkpoint_epochs, fingerprint=fingerprint, progress=progress,
        handle_sigterm=handle_sigterm, stop_after_epoch=stop_after_epoch)


def _member_specs(name: str, spec, S: int) -> list[AttackSpec]:
    """One AttackSpec per member: ``spec`` repeated, or the S given; they may differ in ``eps`` and
    ``step_size`` only (one batched pga call serves them all). ValueError naming ``name`` otherwise."""
    specs = [spec] * S if isinstance(spec, AttackSpec) else list(spec)
    if len(specs) != S or not all(isinstance(a, AttackSpec) for a in specs):
        raise ValueError(f"{name} must be an AttackSpec or a sequence of {S} AttackSpecs (one per member), "
                         f"got {spec!r}")
    shared = {(a.norm, a.steps, a.gradient, a.init, a.restarts) for a in specs}
    if len(shared) != 1:
        raise ValueError(f"{name}: the members' specs may differ in eps and step_size only; got (norm, steps, "
                         f"gradient, init, restarts) = {sorted(shared)}")
    return specs


def stack_models(models: Sequence[nn.Module]) -> "TwoLayerNet | CNNEnsemble":
    """S plain networks of one architecture as one ensemble network for :func:`adversarial_train_seeds`:
    :func:`ensemble_of` for TwoLayerNets, :class:`CNNEnsemble` for CNNs (weights copied)."""
    if models and all(isinstance(m, CNN) for m in models):
        return CNNEnsemble(models)
    return ensemble_of(models)


def spec_dict(spec: AttackSpec) -> dict:
    return asdict(spec)
