"""Adversarial training: logs, checkpoints, bit-identical determinism and resume (also after
SIGTERM), and divergence recorded as a status rather than raised."""

from __future__ import annotations

import math
import os
import signal
import warnings

import pytest
import torch

from adversary_dynamics import data as data_mod
from adversary_dynamics import losses, training
from adversary_dynamics.models import TwoLayerNet
from adversary_dynamics.training import AttackSpec, adversarial_train, checkpoint_path

ATTACK = AttackSpec(eps=0.5, steps=3, step_size=0.2, init="uniform_ball")
EVAL_ATTACK = AttackSpec(eps=0.5, steps=4, step_size=0.2, init="uniform_ball", restarts=2)
BATCH = 50  # 200 training examples → 4 minibatches per epoch


def _model(seed=0, width=32):
    return TwoLayerNet(input_dim=64, width=width, n_outputs=10, generator=torch.Generator().manual_seed(seed))


def _train(data, run_dir=None, *, loss="quadratic", epochs=4, seed=0, **kw):
    kw.setdefault("checkpoint_epochs", (0, 2, 4) if epochs >= 4 else ())
    model = _model(seed)
    res = adversarial_train(model, data, loss=loss, attack=ATTACK, eval_attack=EVAL_ATTACK, lr=0.1, epochs=epochs,
                            batch_size=BATCH, seed=seed, run_dir=run_dir, **kw)
    return model, res


def _same_rows(a, b):
    """Rows of logged numbers equal exactly (NaN equals NaN: epoch 0 has no training loss)."""
    def key(row):
        return {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}

    return [key(r) for r in a] == [key(r) for r in b]


def _assert_same_run(a, b):
    (ma, ra), (mb, rb) = a, b
    assert ra.status == rb.status and ra.diverged_at_step == rb.diverged_at_step
    assert len(ra.steps) == len(rb.steps) and len(ra.epochs) == len(rb.epochs)
    assert _same_rows(ra.steps, rb.steps)  # every logged float compared exactly
    assert _same_rows(ra.epochs, rb.epochs)
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.fixture
def sigterm_guard():
    """Catch any SIGTERM that reaches the test process outside the trainer's own handler, so a
    failure cannot kill the test session; restore the original disposition afterwards."""
    caught = []
    old = signal.signal(signal.SIGTERM, lambda *_: caught.append(1))
    yield caught
    signal.signal(signal.SIGTERM, old)


# ----------------------------------------------------------------------------- logs and determinism


def test_logs_and_checkpoints(digits_small, tmp_path):
    model, res = _train(digits_small, tmp_path)
    assert res.status == "completed" and res.diverged_at_step is None
    assert [s["step"] for s in res.steps] == list(range(1, 17))
    assert [s["epoch"] for s in res.steps] == [e for e in range(1, 5) for _ in range(4)]
    assert [e["epoch"] for e in res.epochs] == [0, 1, 2, 3, 4]
    assert [e["step"] for e in res.epochs] == [0, 4, 8, 12, 16]
    for row in res.epochs:
        for k in ("clean_test_acc", "robust_test_acc"):
            assert 0.0 <= row[k] <= 1.0
        assert row["robust_test_loss"] >= 0 and row["clean_test_loss"] >= 0
    # the epoch's mean adversarial loss is the mean of its steps' losses
    for e in range(1, 5):
        vals = [s["adv_loss"] for s in res.steps if s["epoch"] == e]
        assert res.epochs[e]["train_adv_loss"] == pytest.approx(sum(vals) / len(vals), rel=1e-12)
    # the adversarial loss is at least the clean loss on average (PGA ascends from the same batch)
    assert sum(s["adv_loss"] for s in res.steps) > sum(s["clean_loss"] for s in res.steps)
    # training does something: the clean training loss goes down
    assert res.steps[-1]["clean_loss"] < res.steps[0]["clean_loss"]
    # checkpoints: exactly the configured epochs; the last one holds the final weights,
    # the first one the initialisation
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["epoch_0000.pt", "epoch_0002.pt", "epoch_0004.pt"]
    last = torch.load(checkpoint_path(tmp_path, 4), weights_only=False)
    assert last["epoch"] == 4
    for k, v in model.state_dict().items():
        assert torch.equal(last["model"][k], v)
    first = torch.load(checkpoint_path(tmp_path, 0), weights_only=False)
    assert torch.equal(first["model"]["W"], _model(0).W.detach())
    assert not torch.equal(first["model"]["W"], model.W.detach())
    assert (tmp_path / "state.pt").exists()
    assert not [p for p in tmp_path.rglob(".*tmp-*")]


def test_training_is_bit_deterministic(digits_small):
    a = _train(digits_small, epochs=2)
    b = _train(digits_small, epochs=2)
    _assert_same_run(a, b)
    c = _train(digits_small, epochs=2, seed=1)
    assert c[1].steps != a[1].steps


def test_rerun_of_a_completed_run_returns_it(digits_small, tmp_path):
    a = _train(digits_small, tmp_path, epochs=2)
    state_before = (tmp_path / "state.pt").read_bytes()
    b = _train(digits_small, tmp_path, epochs=2)  # fresh model; everything comes from the state
    _assert_same_run(a, b)
    assert (tmp_path / "state.pt").read_bytes() == state_before


def test_invalid_configuration_raises(digits_small):
    with pytest.raises(ValueError, match="checkpoint epochs"):
        _train(digits_small, epochs=2, checkpoint_epochs=(3,))
    with pytest.raises(ValueError, match="optimizer"):
        _train(digits_small, epochs=2, optimizer="lbfgs")


def test_adam_with_trainable_output_layer_runs(digits_small):
    model = TwoLayerNet(input_dim=64, width=16, n_outputs=10, train_output_layer=True, bias=True,
                        generator=torch.Generator().manual_seed(0))
    a0 = model.A.detach().clone()
    res = adversarial_train(model, digits_small, loss="cross_entropy", attack=ATTACK, eval_attack=EVAL_ATTACK,
                            optimizer="adam", lr=1e-2, epochs=1, batch_size=BATCH, seed=0)
    assert res.status == "completed" and not torch.equal(model.A.detach(), a0)


# ----------------------------------------------------------------------------- resume


def test_resume_after_stop_is_bit_identical(digits_small, tmp_path):
    full = _train(digits_small, tmp_path / "full")
    part_dir = tmp_path / "part"
    m1, r1 = _train(digits_small, part_dir, stop_after_epoch=2)
    assert r1.status == "running" and len(r1.epochs) == 3 and len(r1.steps) == 8
    assert sorted(p.name for p in (part_dir / "checkpoints").iterdir()) == ["epoch_0000.pt", "epoch_0002.pt"]
    resumed = _train(digits_small, part_dir)  # a fresh model object, same seed and arguments
    _assert_same_run(full, resumed)
    assert sorted(p.name for p in (part_dir / "checkpoints").iterdir()) == [
        "epoch_0000.pt", "epoch_0002.pt", "epoch_0004.pt"]
    for k in (0, 2, 4):
        a = torch.load(checkpoint_path(tmp_path / "full", k), weights_only=False)["model"]
        b = torch.load(checkpoint_path(part_dir, k), weights_only=False)["model"]
        assert all(torch.equal(a[n], b[n]) for n in a)


def test_resume_with_a_different_fingerprint_starts_afresh(digits_small, tmp_path):
    full = _train(digits_small, tmp_path / "full", epochs=2, fingerprint="B")
    d = tmp_path / "run"
    _train(digits_small, d, epochs=2, fingerprint="A", stop_after_epoch=1)
    with pytest.warns(UserWarning, match="different configuration"):
        again = _train(digits_small, d, epochs=2, fingerprint="B")
    _assert_same_run(full, again)


class SignalingLoss:
    """The quadratic loss (through the generic callable path) that sends SIGTERM to this process
    once, at the ``fire_at``-th call made on a tensor of the given kind ("train": minibatch of 50
    examples; "eval": the 100 test examples)."""

    def __init__(self, kind=None, fire_at=None):
        self.kind, self.fire_at, self.count = kind, fire_at, 0

    def __call__(self, out, y):
        kind = "train" if out.shape[-2] == BATCH else "eval"
        if kind == self.kind:
            self.count += 1
            if self.count == self.fire_at:
                os.kill(os.getpid(), signal.SIGTERM)
        return losses.quadratic(out, y)


# calls per minibatch: (steps + 1) inside PGA, the clean loss and the adversarial loss
TRAIN_CALLS_PER_BATCH = ATTACK.steps + 3
# calls per evaluation: clean loss, (steps + 1) inside PGA, the loss at the attack's solution
EVAL_CALLS = EVAL_ATTACK.steps + 3


@pytest.mark.parametrize("where", ["mid_epoch", "during_eval", "last_batch"])
def test_sigterm_resume_is_bit_identical(digits_small, tmp_path, sigterm_guard, where):
    full = _train(digits_small, tmp_path / "full", loss=SignalingLoss())
    if where == "mid_epoch":  # during epoch 3, minibatch 2 (of 0..3): stops before minibatch 3
        kind, fire_at, expect = "train", 2 * 4 * TRAIN_CALLS_PER_BATCH + 2 * TRAIN_CALLS_PER_BATCH + 1, (2, 3)
    elif where == "last_batch":  # during the last minibatch of epoch 2: noticed at epoch 3's start
        kind, fire_at, expect = "train", 1 * 4 * TRAIN_CALLS_PER_BATCH + 3 * TRAIN_CALLS_PER_BATCH + 1, (2, 0)
    else:  # during the evaluation after epoch 2 (evaluations: epoch 0, 1, 2, ...)
        kind, fire_at, expect = "eval", 2 * EVAL_CALLS + 2, (2, 0)
    d = tmp_path / "interrupted"
    with pytest.raises(training.Terminated):
        _train(digits_small, d, loss=SignalingLoss(kind, fire_at))
    assert not sigterm_guard  # the trainer's handler took the signal, not ours
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # our guard handler is back
    st = torch.load(d / "state.pt", weights_only=False)
    assert (st["epoch"], st["batch"]) == expect
    assert st["status"] == "running"
    resumed = _train(digits_small, d, loss=SignalingLoss())
    _assert_same_run(full, resumed)


def test_sigterm_without_run_dir_is_ignored(digits_small, sigterm_guard):
    """Without a run directory there is nowhere to save: no handler is installed, and the
    signal reaches the previous handler (here the guard) instead of stopping the run."""
    _, res = _train(digits_small, None, epochs=1, loss=SignalingLoss("train", 1))
    assert res.status == "completed" and sigterm_guard == [1]


# ----------------------------------------------------------------------------- divergence


def test_divergence_is_recorded_not_raised(digits_small, tmp_path):
    huge = data_mod.Dataset("digits", digits_small.x_train * 1e4, digits_small.y_train, digits_small.x_test * 1e4,
                            digits_small.y_test, 10)
    model = _model(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings either
        res = adversarial_train(model, huge, loss="quadratic", attack=ATTACK, eval_attack=EVAL_ATTACK, lr=0.5,
                                epochs=3, batch_size=BATCH, seed=0, run_dir=tmp_path)
    assert res.status == "diverged"
    assert isinstance(res.diverged_at_step, int) and res.diverged_at_step >= 1
    bad = res.steps[res.diverged_at_step - 1]
    assert bad["step"] == res.diverged_at_step
    assert not (abs(bad["adv_loss"]) < float("inf") and abs(bad["clean_loss"]) < float("inf"))
    for s in res.steps[:res.diverged_at_step - 1]:  # everything before it was finite
        assert abs(s["adv_loss"]) < float("inf") and abs(s["clean_loss"]) < float("inf")
    # the recorded status survives a rerun
    again = adversarial_train(_model(0), huge, loss="quadratic", attack=ATTACK, eval_attack=EVAL_ATTACK, lr=0.5,
                              epochs=3, batch_size=BATCH, seed=0, run_dir=tmp_path)
    assert again.status == "diverged" and again.diverged_at_step == res.diverged_at_step
