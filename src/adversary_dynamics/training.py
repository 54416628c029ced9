r"""Adversarial training: min over weights of the adversarial loss, with PGA as the inner max.

    min_θ  (1/n) Σ_i  max_{‖δ_i‖ ≤ ε}  ℓ(F_θ(x_i + δ_i), y_i),

approximated per minibatch by running :func:`~adversary_dynamics.attacks.pga` for δ (with the
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
"""

from __future__ import annotations

import signal
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .attacks import pga
from .data import Dataset
from .losses import LossLike, get_loss
from .runio import save_torch_atomic

OPTIMIZERS = ("sgd", "adam")

__all__ = ["OPTIMIZERS", "AttackSpec", "TrainResult", "Terminated", "adversarial_train", "evaluate",
           "resolve_device", "checkpoint_path"]


class Terminated(Exception):
    """Raised after a SIGTERM once the resume state has been written."""


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available on this machine; "
                           "use device: auto or device: cpu")
    return torch.device(device)


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


def checkpoint_path(run_dir, epoch: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"epoch_{epoch:04d}.pt"


def _attack(model, x, y, spec: AttackSpec, loss, generator):
    return pga(model, x, y, loss=loss, eps=spec.eps, norm=spec.norm, steps=spec.steps, step_size=spec.step_size,
               gradient=spec.gradient, init=spec.init, generator=generator)


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
    """Adversarially train ``model`` on ``data`` (already scaled and on the model's device).

    ``seed`` seeds the minibatch order, the training attack's random starts and the
    evaluation attack's random starts (three generators, all saved in the resume state).
    With ``run_dir``, checkpoints go to ``run_dir/checkpoints/epoch_XXXX.pt`` and the resume
    state to ``run_dir/state.pt``; an existing state is resumed (its ``fingerprint`` must equal
    the given one). ``stop_after_epoch`` ends early after that epoch (used by tests).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={optimizer!r} is not allowed: choose one of {OPTIMIZERS}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    bad = [c for c in checkpoint_epochs if not 0 <= c <= epochs]
    if bad:
        raise ValueError(f"checkpoint epochs {bad} are outside 0..{epochs} (the last epoch)")
    device = data.x_train.device
    fn = get_loss(loss)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.SGD(params, lr=lr, momentum=momentum) if optimizer == "sgd"
           else torch.optim.Adam(params, lr=lr))
    g_shuffle = _generator(seed * 1000 + 1, "cpu")
    g_attack = _generator(seed * 1000 + 2, device)
    g_eval = _generator(seed * 1000 + 3, device)
    n = data.x_train.shape[0]
    nb = (n + batch_size - 1) // batch_size
    state_file = Path(run_dir) / "state.pt" if run_dir is not None else None

    result = TrainResult(status="running", diverged_at_step=None)
    epoch, batch, step, perm = 0, 0, 0, None  # `epoch` = epochs completed
    adv_vals, clean_vals = [], []  # the current epoch's per-step losses, logged at its end
    st = torch.load(state_file, map_location=device, weights_only=False) if (
        state_file is not None and state_file.exists()) else None
    if st is not None and st.get("fingerprint") != fingerprint:
        warnings.warn(f"{state_file} was written by a different configuration; starting afresh", stacklevel=2)
        st = None
    if st is not None:
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        g_shuffle.set_state(st["g_shuffle"])
        g_attack.set_state(st["g_attack"].to(g_attack.get_state().device))
        g_eval.set_state(st["g_eval"].to(g_eval.get_state().device))
        epoch, batch, step, perm = st["epoch"], st["batch"], st["step"], st["perm"]
        adv_vals, clean_vals = list(st.get("adv_vals", [])), list(st.get("clean_vals", []))
        result.steps, result.epochs = st["steps"], st["epochs"]
        if st.get("status") in ("completed", "diverged"):
            result.status, result.diverged_at_step = st["status"], st["diverged_at_step"]
            return result

    def save_state(status: str = "running") -> None:
        if state_file is None:
            return
        save_torch_atomic({
            "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "g_shuffle": g_shuffle.get_state(), "g_attack": g_attack.get_state(), "g_eval": g_eval.get_state(),
            "epoch": epoch, "batch": batch, "step": step, "perm": perm, "adv_vals": adv_vals,
            "clean_vals": clean_vals, "steps": result.steps,
            "epochs": result.epochs, "status": status, "diverged_at_step": result.diverged_at_step,
        }, state_file)

    def save_checkpoint(k: int) -> None:
        if run_dir is not None and k in checkpoint_epochs:
            save_torch_atomic({"epoch": k, "model": model.state_dict()}, checkpoint_path(run_dir, k))

    term = threading.Event()
    old_handler = None
    if handle_sigterm and state_file is not None and threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGTERM, lambda *_: term.set())

    def log_eval(k: int) -> None:
        ev = evaluate(model, data.x_test, data.y_test, loss=loss, attack=eval_attack, generator=g_eval)
        ep_steps = [s for s in result.steps if s["epoch"] == k]
        ev_row = {"epoch": k, "step": step,
                  "train_adv_loss": (sum(s["adv_loss"] for s in ep_steps) / len(ep_steps)) if ep_steps else float("nan"),
                  **ev}
        result.epochs.append(ev_row)

    try:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=epochs * nb, initial=epoch * nb + batch, desc="train", unit="step", mininterval=2.0)
        if epoch == 0 and batch == 0 and not result.epochs:
            log_eval(0)
            save_checkpoint(0)
            save_state()
        while epoch < epochs:
            if batch == 0:
                adv_vals, clean_vals = [], []
            while batch < nb:
                if term.is_set():
                    save_state()
                    term.clear()  # acted on: not passed on below
                    raise Terminated(f"SIGTERM: resume state written at epoch {epoch}, batch {batch}")
                if batch == 0:  # after the SIGTERM check: a state saved at batch 0 has not drawn it yet
                    perm = torch.randperm(n, generator=g_shuffle).to(device)
                idx = perm[batch * batch_size:(batch + 1) * batch_size]
                xb, yb = data.x_train[idx], data.y_train[idx]
                res = _attack(model, xb, yb, attack, loss, g_attack)
                with torch.no_grad():
                    clean = fn(model(xb), yb).mean()
                opt.zero_grad(set_to_none=True)
                adv = fn(model(xb + res.delta), yb).mean()
                adv.backward()
                opt.step()
                step += 1
                batch += 1
                adv_vals.append(adv.detach())
                clean_vals.append(clean)
                if bar is not None:
                    bar.update(1)
            adv_t, clean_t = torch.stack(adv_vals).tolist(), torch.stack(clean_vals).tolist()
            first = step - len(adv_t)
            for i, (a, c) in enumerate(zip(adv_t, clean_t)):
                result.steps.append({"step": first + i + 1, "epoch": epoch + 1, "adv_loss": a, "clean_loss": c})
            finite = torch.isfinite(torch.tensor(adv_t + clean_t)).all() and all(
                bool(torch.isfinite(p).all()) for p in model.parameters())
            epoch += 1
            batch = 0
            if not finite:
                bad = [s["step"] for s in result.steps if not (abs(s["adv_loss"]) < float("inf")
                                                                and abs(s["clean_loss"]) < float("inf"))]
                result.status = "diverged"
                result.diverged_at_step = bad[0] if bad else step
                save_state("diverged")
                return result
            log_eval(epoch)
            save_checkpoint(epoch)
            save_state()
            if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < epochs:
                return result
        result.status = "completed"
        save_state("completed")
        return result
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
        if progress and bar is not None:
            bar.close()
        if term.is_set() and callable(old_handler):
            # a SIGTERM after the last minibatch (training ended anyway): pass it on to the
            # handler it displaced, so the caller still stops
            old_handler(signal.SIGTERM, None)


def spec_dict(spec: AttackSpec) -> dict:
    return asdict(spec)
