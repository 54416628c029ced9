"""Many models in one program (issue 20, items 1-2): S CNNs of one architecture trained as one
CNNEnsemble equal S solo trainings up to floating-point rounding (each with its own seed, ε,
data order, attack starts, optimiser state, checkpoints and resume state), the two-layer nets'
batched seeds are a case of the same mechanism, and the training inner loop makes no host
synchronisation (pga's value checks run once per stage, not per minibatch). Operation counts are
deterministic (OpCounter), so they are asserted here; times are in bench/train_speed.py."""

from __future__ import annotations

import math

import pytest
import torch

from adversary_dynamics.attack import pga
from adversary_dynamics.learning import data, training
from adversary_dynamics.learning.losses import get_loss
from adversary_dynamics.learning.models import CNN, CNNEnsemble, TwoLayerNet
from adversary_dynamics.learning.opcount import OpCounter
from adversary_dynamics.learning.training import AttackSpec, adversarial_train, adversarial_train_seeds, checkpoint_path

SMALL = dict(input_shape=(1, 8, 8), channels=(4, 8), kernel_size=3, hidden=16, n_outputs=10)
# Fig. 3's layout: one model per (ratio, seed), ε = ratio × scale; seeds repeat across ratios
MEMBERS = [(0, 0.1), (0, 0.5), (1, 0.5)]  # (seed, eps)


def _cnn(seed, **kw):
    return CNN(**{**SMALL, **kw}, generator=torch.Generator().manual_seed(seed))


def _specs(eps_list, steps=3, restarts=1):
    return [AttackSpec(eps=e, steps=steps, step_size=0.5 * e, init="uniform_ball", restarts=restarts)
            for e in eps_list]


@pytest.fixture(scope="module")
def digits_small():
    return data.rescale_dataset(data.load_digits(n_train=100, n_test=24, seed=0), scale=2.0)


def _rows(rows):
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


# ----------------------------------------------------------------------------- the ensemble network


def test_cnn_ensemble_forward_equals_each_member_and_broadcasts_like_a_two_layer_ensemble():
    models = [_cnn(s, dtype=torch.float64) for s in range(3)]
    ens = CNNEnsemble(models)
    x = torch.randn(2, 3, 5, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = ens(x)
    assert out.shape == (2, 3, 5, 10)
    for k, m in enumerate(models):
        torch.testing.assert_close(out[:, k], m(x[:, k]), rtol=1e-12, atol=1e-12)
    shared = ens(x[0, 0])  # (n, d): every member sees the same inputs, as TwoLayerNet(ensemble=(S,))
    assert shared.shape == (3, 5, 10)
    torch.testing.assert_close(shared[2], models[2](x[0, 0]), rtol=1e-12, atol=1e-12)
    fresh = _cnn(9, dtype=torch.float64)
    fresh.load_state_dict(ens.member_state_dict(1))  # a member's weights load into a plain CNN
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), models[1].state_dict().values()))
    with pytest.raises(ValueError, match="one architecture"):
        CNNEnsemble([_cnn(0), _cnn(1, hidden=8)])
    with pytest.raises(ValueError, match=r"\(\*pre, 3, n, 64\)"):
        ens(torch.zeros(2, 2, 5, 64, dtype=torch.float64))


# ----------------------------------------------------------------------------- stacked = solo, up to rounding


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_cnns_equal_solo_training_up_to_rounding(digits_small, tmp_path, optimizer):
    """K = 3 CNNs (seeds 0, 0, 1 at ε 0.1, 0.5, 0.5: two ratios sharing a seed, as in Fig. 3)
    trained for 3 epochs of 7 minibatches (21 SGD/Adam steps) as one CNNEnsemble, against each
    trained alone by adversarial_train. Every random draw is the same (each member's own three
    generators), so the runs differ only by the rounding of grouped vs plain convolutions and of
    batched vs plain matrix products (float32, relative ~1e-7 per operation); over 21 steps of a
    small, well-conditioned network that stays below rtol 1e-4 / atol 1e-5 on the weights for SGD
    and 1e-5 on the logged losses. Adam divides each gradient coordinate by its running RMS, so a
    coordinate whose gradient is near 0 moves by up to ~lr whatever its size: there a rounding-level
    change of g changes the update by a small fraction of lr (measured: 3.4e-5 at lr 0.05 on one of
    288 weights), hence atol 1e-4 (0.2 % of lr) for Adam. A different minibatch order, attack start
    or ε would change the weights at the 1e-2 level."""
    kw = dict(optimizer=optimizer, lr=0.05, momentum=0.9 if optimizer == "sgd" else 0.0, epochs=3, batch_size=16,
              checkpoint_epochs=(0, 3), handle_sigterm=False, loss="quadratic")
    attacks, evals = _specs([e for _, e in MEMBERS]), _specs([e for _, e in MEMBERS], steps=2, restarts=2)
    atol = 1e-5 if optimizer == "sgd" else 1e-4
    solo = []
    for k, ((seed, _), a, v) in enumerate(zip(MEMBERS, attacks, evals)):
        m = _cnn(seed)
        r = adversarial_train(m, digits_small, attack=a, eval_attack=v, seed=seed, run_dir=tmp_path / f"solo{k}", **kw)
        solo.append((m, r))
    ens = CNNEnsemble([_cnn(seed) for seed, _ in MEMBERS])
    dirs = [tmp_path / f"stacked{k}" for k in range(len(MEMBERS))]
    res = adversarial_train_seeds(ens, digits_small, seeds=[s for s, _ in MEMBERS], attack=attacks,
                                  eval_attack=evals, run_dirs=dirs, state_file=tmp_path / "state.pt", **kw)
    for k, (m, r) in enumerate(solo):
        assert res[k].status == r.status == "completed"
        for name, p in m.state_dict().items():
            torch.testing.assert_close(ens.member_state_dict(k)[name], p, rtol=1e-4, atol=atol)
        assert len(res[k].steps) == len(r.steps) == 21
        for a, b in zip(res[k].steps, r.steps):
            assert a["step"] == b["step"] and a["epoch"] == b["epoch"]
            assert a["adv_loss"] == pytest.approx(b["adv_loss"], rel=1e-5, abs=1e-6)
            assert a["clean_loss"] == pytest.approx(b["clean_loss"], rel=1e-5, abs=1e-6)
        for a, b in zip(res[k].epochs[1:], r.epochs[1:]):
            assert a["robust_test_loss"] == pytest.approx(b["robust_test_loss"], rel=1e-4)
        for e in (0, 3):  # each member's checkpoints in its own folder, in the plain CNN's format
            got = torch.load(checkpoint_path(dirs[k], e), weights_only=True)
            want = torch.load(checkpoint_path(tmp_path / f"solo{k}", e), weights_only=True)
            assert got["epoch"] == e and got["model"].keys() == want["model"].keys()
            for name in want["model"]:
                torch.testing.assert_close(got["model"][name], want["model"][name], rtol=1e-4, atol=atol)
    # the members really differ (ε 0.1 vs 0.5 of one seed): the test would notice a shared ε
    assert not torch.allclose(ens.member_state_dict(0)["fc2.weight"], ens.member_state_dict(1)["fc2.weight"],
                              atol=1e-4)


def test_stacked_cnns_resume_bit_identically(digits_small, tmp_path):
    attacks, evals = _specs([e for _, e in MEMBERS]), _specs([e for _, e in MEMBERS], steps=1)
    kw = dict(seeds=[s for s, _ in MEMBERS], attack=attacks, eval_attack=evals, optimizer="adam", lr=0.01, epochs=3,
              batch_size=32, checkpoint_epochs=(0, 2, 3), handle_sigterm=False)

    def run(root, **extra):
        ens = CNNEnsemble([_cnn(seed) for seed, _ in MEMBERS])
        dirs = [root / f"m{k}" for k in range(3)]
        return ens, dirs, adversarial_train_seeds(ens, digits_small, run_dirs=dirs, state_file=root / "state.pt",
                                                  **kw, **extra)

    full, fdirs, fres = run(tmp_path / "full")
    _, _, part = run(tmp_path / "part", stop_after_epoch=1)
    assert all(r.status == "running" for r in part)
    resumed, rdirs, rres = run(tmp_path / "part")
    for k in range(3):
        assert _rows(rres[k].steps) == _rows(fres[k].steps) and _rows(rres[k].epochs) == _rows(fres[k].epochs)
        for e in (0, 2, 3):
            a = torch.load(checkpoint_path(fdirs[k], e), weights_only=True)["model"]
            b = torch.load(checkpoint_path(rdirs[k], e), weights_only=True)["model"]
            assert all(torch.equal(a[n], b[n]) for n in a)
    assert all(torch.equal(p, q) for p, q in zip(full.parameters(), resumed.parameters()))


def test_member_specs_may_differ_in_eps_only(digits_small):
    ens = CNNEnsemble([_cnn(0), _cnn(1)])
    bad = [AttackSpec(eps=0.5, steps=3, step_size=0.2), AttackSpec(eps=0.5, steps=4, step_size=0.2)]
    with pytest.raises(ValueError, match="eps and step_size only"):
        adversarial_train_seeds(ens, digits_small, seeds=[0, 1], attack=bad, eval_attack=bad[0], lr=0.1, epochs=1,
                                batch_size=16)
    with pytest.raises(ValueError, match="sequence of 2 AttackSpecs"):
        adversarial_train_seeds(ens, digits_small, seeds=[0, 1], attack=bad[:1], eval_attack=bad[0], lr=0.1,
                                epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="distinct"):  # the same (seed, ε) twice is one model twice
        adversarial_train_seeds(ens, digits_small, seeds=[0, 0], attack=bad[0], eval_attack=bad[0], lr=0.1,
                                epochs=1, batch_size=16)


def test_two_layer_batched_seeds_are_the_same_mechanism_with_per_member_eps(digits_small):
    """The two-layer nets' batched seeds go through the same ensemble path and now also take one ε
    per member; each member equals its solo run up to rounding."""
    eps = [0.2, 0.6]
    attacks, evals = _specs(eps), _specs(eps, steps=1)
    kw = dict(optimizer="sgd", lr=0.1, epochs=2, batch_size=25, handle_sigterm=False)
    nets = [TwoLayerNet(input_dim=64, width=32, generator=torch.Generator().manual_seed(s)) for s in (3, 4)]
    ens = training.stack_models(nets)
    res = adversarial_train_seeds(ens, digits_small, seeds=[3, 4], attack=attacks, eval_attack=evals, **kw)
    for k, (s, net) in enumerate(zip((3, 4), nets)):
        r = adversarial_train(net, digits_small, attack=attacks[k], eval_attack=evals[k], seed=s, **kw)
        torch.testing.assert_close(ens.W[k], net.W, rtol=1e-4, atol=1e-5)
        assert [a["adv_loss"] for a in res[k].steps] == pytest.approx([a["adv_loss"] for a in r.steps], rel=1e-5)
    assert isinstance(training.stack_models([_cnn(0), _cnn(1)]), CNNEnsemble)


# ----------------------------------------------------------------------------- host synchronisations


def test_pga_check_values_false_skips_the_synchronising_checks_and_changes_no_bit():
    m = _cnn(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 64, generator=g), torch.randint(0, 10, (6,), generator=g)
    kw = dict(loss="quadratic", eps=0.5, steps=4, step_size=0.1, init="uniform_ball")
    with OpCounter() as checked:
        a = pga(m, x, y, generator=torch.Generator().manual_seed(1), **kw)
    with OpCounter() as unchecked:
        b = pga(m, x, y, generator=torch.Generator().manual_seed(1), check_values=False, **kw)
    assert checked.syncs >= 3  # x finite, the labels' range, ... (one each)
    assert unchecked.syncs == 0, dict(unchecked.sync_ops)
    assert torch.equal(a.delta, b.delta) and torch.equal(a.losses, b.losses)
    with pytest.raises(ValueError, match="check_values"):
        pga(m, x, y, check_values=1, **kw)
    # shapes are still checked on the host
    with pytest.raises(ValueError, match="broadcast"):
        pga(m, x, y[:3], check_values=False, **kw)


def _step_counts(K, *, image=(1, 8, 8), batch=4, optimizer="sgd"):
    """(ops, syncs) of one training minibatch of K CNNs one after another, and of the same K as one
    CNNEnsemble: the inner loop of adversarial_train(_seeds) (group.step: pga, clean loss, forward,
    backward, optimiser step), the minibatch indices drawn beforehand (once per epoch)."""
    C, H, W = image
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, C * H * W, generator=g), torch.randint(0, 10, (32,), generator=g)
    ds = data.Dataset("synthetic", x, y, x[:4], y[:4], 10, image_shape=image)
    mk = lambda s: CNN(input_shape=image, channels=(2, 4), kernel_size=5, hidden=8,  # noqa: E731
                       generator=torch.Generator().manual_seed(s))
    attacks = [AttackSpec(eps=0.1 * (1 + k % 3), steps=10, step_size=0.025 * (1 + k % 3), init="uniform_ball")
               for k in range(K)]
    fn = get_loss("quadratic")
    seq = [training._SingleModel(mk(k), k, "cpu") for k in range(K)]
    opts = [training._make_optimizer(s.model, optimizer, 0.1, 0.9) for s in seq]
    ens = training._Ensemble(CNNEnsemble([mk(k) for k in range(K)]), list(range(K)), "cpu")
    eopt = training._make_optimizer(ens.model, optimizer, 0.1, 0.9)
    for _ in range(2):  # the second minibatch is counted (the first creates the optimiser state)
        idx = [s.permutation(32, {0}, "cpu")[:batch] for s in seq]
        eidx = ens.permutation(32, set(range(K)), "cpu")[..., :batch]
        with OpCounter() as cs:
            for s, o, i, a in zip(seq, opts, idx, attacks):
                s.step(o, fn, ds, i, [0], attack=[a], loss="quadratic")
        with OpCounter() as ce:
            ens.step(eopt, fn, ds, eidx, list(range(K)), attack=attacks, loss="quadratic")
    return cs, ce


def test_training_inner_loop_makes_no_host_synchronisation_and_stacking_cuts_operations_tenfold():
    """18 CNNs on 28×28 inputs (the classic CNN's code path; the counts do not depend on the channel
    widths or the minibatch size, so the test uses small ones), 10 PGA steps, SGD with momentum:
    0 host synchronisations per minibatch on both paths (before: pga's per-call value checks made
    several per call), and ≥ 10× fewer tensor operations stacked than one after another."""
    seq, stacked = _step_counts(18, image=(1, 28, 28), batch=2)
    assert seq.syncs == 0, dict(seq.sync_ops)
    assert stacked.syncs == 0, dict(stacked.sync_ops)
    assert seq.ops >= 10 * stacked.ops, (seq.ops, stacked.ops)


def test_adversarial_train_checks_the_data_once_per_call(digits_small):
    """pga no longer checks every minibatch, so training checks the data itself, once."""
    bad = data.Dataset("bad", digits_small.x_train.clone(), digits_small.y_train, digits_small.x_test,
                       digits_small.y_test, 10, image_shape=(1, 8, 8))
    bad.x_train[3, 5] = float("nan")
    with pytest.raises(ValueError, match="data.x_train"):
        adversarial_train(_cnn(0), bad, attack=_specs([0.5])[0], eval_attack=_specs([0.5])[0], lr=0.1, epochs=1,
                          batch_size=16, seed=0)
    labels = data.Dataset("bad", digits_small.x_train, digits_small.y_train + 5, digits_small.x_test,
                          digits_small.y_test, 10, image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="data.y_train"):
        adversarial_train(torch.nn.Sequential(torch.nn.Linear(64, 10)), labels, attack=_specs([0.5])[0],
                          eval_attack=_specs([0.5])[0], lr=0.1, epochs=1, batch_size=16, seed=0)
