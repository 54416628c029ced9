"""Adversarial training: logs, checkpoints, bit-identical determinism and resume (also after
SIGTERM), and divergence recorded as a status rather than raised."""

from __future__ import annotations

import math
import os
import signal
import warnings

import pytest
import torch

from adversary_dynamics.learning import data as data_mod
from adversary_dynamics.learning import losses, training
from adversary_dynamics.learning.models import TwoLayerNet
from adversary_dynamics.learning.training import AttackSpec, adversarial_train, checkpoint_path

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


# ----------------------------------------------------------------------------- several seeds as one batched program

SEEDS = (0, 1, 2)


def _members(seeds=SEEDS, width=32, **kw):
    return [TwoLayerNet(input_dim=64, width=width, n_outputs=10, generator=torch.Generator().manual_seed(s), **kw)
            for s in seeds]


def _train_seeds(data, root=None, *, seeds=SEEDS, epochs=4, loss="quadratic", models=None, **kw):
    """Batched training of ``seeds``; with ``root``, seed k's run folder is root/seed~k and the
    group's resume state root/state.pt."""
    kw.setdefault("checkpoint_epochs", (0, 2, 4) if epochs >= 4 else ())
    kw.setdefault("lr", 0.1)
    model = training.ensemble_of(models if models is not None else _members(seeds))
    run_dirs = [root / f"seed~{s}" for s in seeds] if root is not None else None
    res = training.adversarial_train_seeds(model, data, seeds=seeds, run_dirs=run_dirs,
                                           state_file=root / "state.pt" if root is not None else None, loss=loss,
                                           attack=ATTACK, eval_attack=EVAL_ATTACK, epochs=epochs, batch_size=BATCH,
                                           **kw)
    return model, res


def _assert_same_seeds_run(a, b):
    (ma, ra), (mb, rb) = a, b
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        assert x.status == y.status and x.diverged_at_step == y.diverged_at_step
        assert _same_rows(x.steps, y.steps) and _same_rows(x.epochs, y.epochs)
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _close_rows(a, b, rel=1e-5, acc_tol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if k in ("step", "epoch"):
                assert x[k] == y[k]
            elif k.endswith("_acc"):  # a prediction flipped by rounding moves accuracy by 1/n
                assert abs(x[k] - y[k]) <= acc_tol + 1e-12, (k, x, y)
            elif not (math.isnan(x[k]) and math.isnan(y[k])):
                assert x[k] == pytest.approx(y[k], rel=rel, abs=1e-7), (k, x, y)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batched_seeds_match_per_seed_training(digits_small, optimizer):
    """Each member of the batched run follows its own single-seed run: same random streams,
    same gradient, so equal up to the rounding of the batched products."""
    if optimizer == "sgd":
        kw, model_kw = dict(optimizer="sgd", lr=0.1, momentum=0.5), {}
    else:  # Adam, also on a trained output layer and a bias
        kw, model_kw = dict(optimizer="adam", lr=1e-2), dict(bias=True, train_output_layer=True)
    singles = []
    for s in SEEDS:
        m = _members((s,), **model_kw)[0]
        r = adversarial_train(m, digits_small, loss="quadratic", attack=ATTACK, eval_attack=EVAL_ATTACK, epochs=3,
                              batch_size=BATCH, seed=s, **kw)
        singles.append((m, r))
    ens, res = _train_seeds(digits_small, epochs=3, models=_members(**model_kw), **kw)
    for k, (m, r) in enumerate(singles):
        assert res[k].status == r.status == "completed"
        _close_rows(res[k].steps, r.steps)
        _close_rows(res[k].epochs, r.epochs, rel=1e-4, acc_tol=0.01)
        member = training.member_state_dict(ens, k)
        assert member.keys() == m.state_dict().keys()
        for name, v in m.state_dict().items():
            assert float((member[name] - v).norm()) <= 1e-5 * float(v.norm()), (k, name)
    assert not torch.equal(training.member_state_dict(ens, 0)["W"], training.member_state_dict(ens, 1)["W"])


def test_batched_seeds_are_bit_deterministic(digits_small):
    _assert_same_seeds_run(_train_seeds(digits_small, epochs=2), _train_seeds(digits_small, epochs=2))


def test_batched_seeds_logs_and_checkpoints_load_into_a_plain_network(digits_small, tmp_path):
    ens, res = _train_seeds(digits_small, tmp_path)
    for k, s in enumerate(SEEDS):
        r, run = res[k], tmp_path / f"seed~{s}"
        assert r.status == "completed" and r.diverged_at_step is None
        assert [x["step"] for x in r.steps] == list(range(1, 17))
        assert [e["epoch"] for e in r.epochs] == [0, 1, 2, 3, 4]
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
            "epoch_0000.pt", "epoch_0002.pt", "epoch_0004.pt"]
        for epoch in (0, 4):
            ck = torch.load(checkpoint_path(run, epoch), weights_only=False)
            assert ck["epoch"] == epoch
            plain = _model(99)
            plain.load_state_dict(ck["model"])  # strict: exactly the plain network's keys and shapes
            assert ck["model"]["W"].shape == (32, 64) and ck["model"]["W"].untyped_storage().nbytes() == 32 * 64 * 4
            if epoch == 0:
                assert torch.equal(plain.W.detach(), _model(s).W.detach())
            else:
                assert torch.equal(plain.W.detach(), ens.W.detach()[k])
    assert not [p for p in tmp_path.rglob(".*tmp-*")]


def test_batched_seeds_resume_after_stop_is_bit_identical(digits_small, tmp_path):
    full = _train_seeds(digits_small, tmp_path / "full")
    part = tmp_path / "part"
    _, r1 = _train_seeds(digits_small, part, stop_after_epoch=2)
    assert all(r.status == "running" and len(r.epochs) == 3 and len(r.steps) == 8 for r in r1)
    resumed = _train_seeds(digits_small, part)  # a fresh ensemble; everything comes from the state
    _assert_same_seeds_run(full, resumed)
    for s in SEEDS:
        for k in (0, 2, 4):
            a = torch.load(checkpoint_path(tmp_path / "full" / f"seed~{s}", k), weights_only=False)["model"]
            b = torch.load(checkpoint_path(part / f"seed~{s}", k), weights_only=False)["model"]
            assert all(torch.equal(a[n], b[n]) for n in a)
    state_before = (part / "state.pt").read_bytes()
    _assert_same_seeds_run(full, _train_seeds(digits_small, part))  # a completed run is returned as it is
    assert (part / "state.pt").read_bytes() == state_before
    with pytest.warns(UserWarning, match="seed list"):  # the seed list is part of the fingerprint
        _train_seeds(digits_small, part, seeds=(0, 1), epochs=1)


@pytest.mark.parametrize("where", ["mid_epoch", "during_eval"])
def test_batched_seeds_sigterm_resume_is_bit_identical(digits_small, tmp_path, sigterm_guard, where):
    full = _train_seeds(digits_small, tmp_path / "full", loss=SignalingLoss())
    if where == "mid_epoch":  # during epoch 3, minibatch 2: stops before minibatch 3
        kind, fire_at, expect = "train", 2 * 4 * TRAIN_CALLS_PER_BATCH + 2 * TRAIN_CALLS_PER_BATCH + 1, (2, 3)
    else:  # during the evaluation after epoch 2
        kind, fire_at, expect = "eval", 2 * EVAL_CALLS + 2, (2, 0)
    d = tmp_path / "interrupted"
    with pytest.raises(training.Terminated):
        _train_seeds(digits_small, d, loss=SignalingLoss(kind, fire_at))
    assert not sigterm_guard  # the trainer's handler took the signal
    st = torch.load(d / "state.pt", weights_only=False)
    assert (st["epoch"], st["batch"]) == expect and st["status"] == "running"
    _assert_same_seeds_run(full, _train_seeds(digits_small, d, loss=SignalingLoss()))


def test_batched_seeds_one_diverging_seed_is_recorded_and_the_others_go_on(digits_small, tmp_path):
    """Seed 1 starts from a huge (fixed) output layer and blows up within the first epoch; it is
    recorded as diverged at the step the single-seed run finds, its logs end with that epoch as the
    single-seed run's do, and seeds 0 and 2 train on unaffected."""
    def members():
        ms = _members()
        with torch.no_grad():
            ms[1].A.mul_(1e3)
        return ms

    single = members()[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings either
        ref = adversarial_train(single, digits_small, loss="quadratic", attack=ATTACK, eval_attack=EVAL_ATTACK,
                                lr=0.5, epochs=3, batch_size=BATCH, seed=1)
        ens, res = _train_seeds(digits_small, tmp_path, epochs=3, models=members(), lr=0.5,
                                checkpoint_epochs=(0, 1, 2, 3))
    assert ref.status == "diverged"
    assert res[1].status == "diverged" and res[1].diverged_at_step == ref.diverged_at_step
    assert len(res[1].steps) == len(ref.steps) and len(res[1].epochs) == len(ref.epochs)
    n_ok = len(res[1].epochs)  # epochs evaluated (0 = initialisation) before the diverging one
    assert sorted(p.name for p in (tmp_path / "seed~1" / "checkpoints").iterdir()) == [
        f"epoch_{e:04d}.pt" for e in range(n_ok)]
    _, normal = _train_seeds(digits_small, epochs=3, lr=0.5)  # the same seeds, none diverging
    for k in (0, 2):
        assert res[k].status == "completed" and len(res[k].steps) == 12 and len(res[k].epochs) == 4
        _close_rows(res[k].steps, normal[k].steps)
        _close_rows(res[k].epochs, normal[k].epochs, rel=1e-4, acc_tol=0.01)
    again = _train_seeds(digits_small, tmp_path, epochs=3, models=members(), lr=0.5, checkpoint_epochs=(0, 1, 2, 3))
    _assert_same_seeds_run_nan((ens, res), again)


def _assert_same_seeds_run_nan(a, b):
    """As _assert_same_seeds_run, NaN weights (a diverged member) equal to NaN."""
    (ma, ra), (mb, rb) = a, b
    for x, y in zip(ra, rb):
        assert (x.status, x.diverged_at_step) == (y.status, y.diverged_at_step)
        assert _same_rows(x.steps, y.steps) and _same_rows(x.epochs, y.epochs)
    for k, v in ma.state_dict().items():
        assert torch.equal(torch.nan_to_num(v), torch.nan_to_num(mb.state_dict()[k])), k


def test_batched_seeds_all_diverging_is_recorded_not_raised(digits_small, tmp_path):
    huge = data_mod.Dataset("digits", digits_small.x_train * 1e4, digits_small.y_train, digits_small.x_test * 1e4,
                            digits_small.y_test, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, res = _train_seeds(huge, tmp_path, epochs=3, lr=0.5)
    for r in res:
        assert r.status == "diverged" and isinstance(r.diverged_at_step, int) and r.diverged_at_step >= 1
        assert not all(math.isfinite(v) for v in (r.steps[r.diverged_at_step - 1]["adv_loss"],
                                                  r.steps[r.diverged_at_step - 1]["clean_loss"]))
    assert torch.load(tmp_path / "state.pt", weights_only=False)["status"] == "done"


def test_batched_seeds_invalid_arguments_raise(digits_small):
    with pytest.raises(ValueError, match=r"ensemble=\(3,\)"):
        training.adversarial_train_seeds(_model(0), digits_small, seeds=SEEDS, attack=ATTACK,
                                         eval_attack=EVAL_ATTACK, lr=0.1, epochs=1, batch_size=BATCH)
    with pytest.raises(ValueError, match="distinct"):
        _train_seeds(digits_small, seeds=(0, 0, 1), epochs=1)
    with pytest.raises(ValueError, match="differs from models"):
        training.ensemble_of([_model(0, width=8), _model(1, width=16)])


def _train_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    spec = importlib.util.spec_from_file_location("train_script_for_tests", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _csv(path):
    from adversary_dynamics.storage import runio

    return [{k: int(v) if k in ("step", "epoch") else float(v) for k, v in row.items()} for row in runio.read_csv(path)]


@pytest.mark.parametrize("model", ["two_layer", "cnn"])
def test_train_script_batch_seeds_true_writes_the_same_files_as_false(tmp_path, model):
    """Two-layer nets and (since issue 20) CNNs: --batch-seeds true trains the seeds as one ensemble
    network and writes every seed's files as seed-by-seed training does, equal up to rounding."""
    import json

    script = _train_script()
    arch = (["--width", "16"] if model == "two_layer" else
            ["--architecture", "cnn", "--cnn-channels", "4,8", "--cnn-kernel-size", "3", "--cnn-hidden", "16"])
    common = ["--scale", "1", "--seeds", "0,1", "--dataset", "digits", "--n-train", "60", "--n-test", "40",
              "--ratio", "0.5", *arch, "--epochs", "2", "--batch-size", "16", "--lr", "0.05",
              "--attack-steps", "3", "--attack-step-size", "0.25", "--eval-steps", "3", "--checkpoints", "0,2",
              "--threads", "1", "--progress", "false", "--device", "cpu"]
    for mode in ("false", "true"):
        assert script.main(["--out-root", str(tmp_path / mode), *common, "--batch-seeds", mode]) == 0
    assert (tmp_path / "true" / script.GROUP_STATE).exists()

    def files(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "state.pt"
                      and p.name != script.GROUP_STATE)

    assert files(tmp_path / "false") == files(tmp_path / "true")
    for s in (0, 1):
        a, b = tmp_path / "false" / f"seed~{s}", tmp_path / "true" / f"seed~{s}"
        _close_rows(_csv(b / "steps.csv"), _csv(a / "steps.csv"))
        _close_rows(_csv(b / "epochs.csv"), _csv(a / "epochs.csv"), rel=1e-4, acc_tol=0.03)
        assert json.loads((a / "status.json").read_text()) == json.loads((b / "status.json").read_text())
        for mode, run in (("false", a), ("true", b)):
            cfg = json.loads((run / "provenance.json").read_text())["config"]
            assert cfg["batched"] is (mode == "true") and cfg["batch_seeds"] == mode and cfg["seed"] == s
        for ck in ("epoch_0000.pt", "epoch_0002.pt"):
            ma, mb = (torch.load(r / "checkpoints" / ck, weights_only=False)["model"] for r in (a, b))
            assert ma.keys() == mb.keys()
            for k in ma:
                torch.testing.assert_close(mb[k], ma[k], rtol=1e-5, atol=1e-6)
    # auto: two-layer nets batched on CUDA only (measured no faster on CPU), and never for a single seed
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert script.use_batched("auto", cuda, 2) and not script.use_batched("auto", cpu, 3)
    assert not script.use_batched("auto", cuda, 1) and script.use_batched("true", cpu, 1)
    assert not script.use_batched("false", cuda, 3)
    # CNNs (a CNNEnsemble): on CUDA, and on CPU for small images only (bench/train_speed.py)
    assert script.use_batched("true", cpu, 3, "cnn") and script.use_batched("auto", cuda, 3, "cnn", (1, 28, 28))
    assert script.use_batched("auto", cpu, 3, "cnn", (1, 8, 8)) and not script.use_batched("auto", cpu, 3, "cnn",
                                                                                            (1, 28, 28))
    assert not script.use_batched("false", cuda, 3, "cnn")
