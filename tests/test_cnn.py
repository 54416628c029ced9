"""The CNN on flat inputs: shapes against an independent NCHW computation, PyTorch's default
initialisation drawn from the passed generator, bad shapes refused, the one model interface
(build_model) and CNN adversarial training that resumes bit-identically from an epoch checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adversary_dynamics.learning import data, training
from adversary_dynamics.learning.models import CNN, TwoLayerNet, build_model
from adversary_dynamics.learning.training import AttackSpec, adversarial_train, checkpoint_path

SMALL = dict(input_shape=(1, 8, 8), channels=(4, 8), kernel_size=3, hidden=16, n_outputs=10)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference_forward(net: CNN, x_nchw: torch.Tensor) -> torch.Tensor:
    """The architecture written out with torch.nn.functional on image-shaped input."""
    F = nn.functional
    p = net.kernel_size // 2
    h = F.max_pool2d(F.relu(F.conv2d(x_nchw, net.conv1.weight, net.conv1.bias, padding=p)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, net.conv2.weight, net.conv2.bias, padding=p)), 2)
    h = F.relu(h.reshape(h.shape[0], -1) @ net.fc1.weight.T + net.fc1.bias)
    return h @ net.fc2.weight.T + net.fc2.bias


@pytest.mark.parametrize("batch", [(), (5,), (2, 3), (2, 1, 3)])
def test_flat_inputs_of_any_batch_rank_match_the_image_computation(batch):
    net = CNN(input_shape=(2, 12, 8), channels=(3, 5), kernel_size=5, hidden=7, n_outputs=4, generator=_gen(0),
              dtype=torch.float64)
    x = torch.randn(*batch, 2 * 12 * 8, generator=_gen(1), dtype=torch.float64)
    out = net(x)
    assert out.shape == (*batch, 4)
    ref = _reference_forward(net, x.reshape(-1, 2, 12, 8)).reshape(*batch, 4)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert net.fc1.in_features == 5 * 3 * 2  # c2 * (H/4) * (W/4)


def test_default_is_the_classic_mnist_architecture():
    net = CNN(input_shape=(1, 28, 28), generator=_gen(0))
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {"conv1.weight": (32, 1, 5, 5), "conv1.bias": (32,), "conv2.weight": (64, 32, 5, 5),
                      "conv2.bias": (64,), "fc1.weight": (1024, 64 * 7 * 7), "fc1.bias": (1024,),
                      "fc2.weight": (10, 1024), "fc2.bias": (10,)}
    assert net(torch.zeros(3, 784)).shape == (3, 10)


def test_initialisation_is_pytorchs_default_drawn_from_the_generator():
    a = CNN(**SMALL, generator=_gen(5))
    b = CNN(**SMALL, generator=_gen(5))
    c = CNN(**SMALL, generator=_gen(6))
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    # the same draws as torch.nn's own layers (Kaiming-uniform a=sqrt(5), bias U(+-1/sqrt(fan_in))) built
    # in the same order from the global generator seeded alike
    state = torch.get_rng_state()
    try:
        torch.manual_seed(5)
        ref = [nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.Linear(8 * 2 * 2, 16),
               nn.Linear(16, 10)]
    finally:
        torch.set_rng_state(state)
    for layer, mine in zip(ref, (a.conv1, a.conv2, a.fc1, a.fc2)):
        assert torch.equal(layer.weight, mine.weight) and torch.equal(layer.bias, mine.bias)
    # the passed generator is the only source: the global one is neither used nor advanced
    before = torch.get_rng_state()
    CNN(**SMALL, generator=_gen(5))
    assert torch.equal(before, torch.get_rng_state())
    bound = 1 / math.sqrt(4 * 3 * 3)
    assert float(a.conv2.bias.detach().abs().max()) <= bound and float(a.conv2.weight.detach().abs().max()) <= bound


@pytest.mark.parametrize("kw, match", [
    (dict(input_shape=(1, 10, 8)), "input_shape.*divisible by 4"),
    (dict(input_shape=(1, 8, 6)), "input_shape.*divisible by 4"),
    (dict(input_shape=(8, 8)), "input_shape"),
    (dict(input_shape=(0, 8, 8)), "input_shape"),
    (dict(channels=(4,)), "channels"),
    (dict(channels=(4, 0)), "channels"),
    (dict(kernel_size=4), "kernel_size"),
    (dict(kernel_size=0), "kernel_size"),
    (dict(hidden=0), "hidden"),
])
def test_invalid_shapes_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        CNN(**{**SMALL, **kw})


def test_wrong_input_width_is_refused():
    with pytest.raises(ValueError, match=r"\(\*batch, 64\)"):
        CNN(**SMALL, generator=_gen(0))(torch.zeros(2, 63))


# ----------------------------------------------------------------------------- build_model

SPEC = {"architecture": "two_layer", "width": 12, "activation": "softplus", "bias": True, "train_output_layer": True,
        "channels": [4, 8], "kernel_size": 3, "hidden": 16}


def test_build_model_two_layer_equals_the_direct_construction():
    m = build_model(SPEC, input_dim=64, image_shape=(1, 8, 8), n_outputs=10, generator=_gen(2))
    ref = TwoLayerNet(input_dim=64, width=12, n_outputs=10, activation="softplus", bias=True, train_output_layer=True,
                      generator=_gen(2))
    assert isinstance(m, TwoLayerNet) and m.activation == "softplus" and m.A.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref.state_dict().values()))
    # architecture defaults to two_layer; a dataset without an image shape is fine here
    assert isinstance(build_model({"width": 4}, input_dim=5, image_shape=None, n_outputs=1), TwoLayerNet)


def test_build_model_cnn_from_flat_or_nested_keys():
    flat = build_model({**SPEC, "architecture": "cnn"}, input_dim=64, image_shape=(1, 8, 8), n_outputs=10,
                       generator=_gen(3))
    nested = build_model({"architecture": "cnn", "width": 256, "cnn": {"channels": [4, 8], "kernel_size": 3,
                                                                       "hidden": 16}},
                         input_dim=64, image_shape=(1, 8, 8), n_outputs=10, generator=_gen(3))
    ref = CNN(**SMALL, generator=_gen(3))
    for m in (flat, nested):
        assert isinstance(m, CNN) and (m.channels, m.kernel_size, m.hidden_units) == ((4, 8), 3, 16)
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref.state_dict().values()))


def test_build_model_errors_name_the_key():
    with pytest.raises(ValueError, match="model.architecture.*no image shape"):
        build_model({**SPEC, "architecture": "cnn"}, input_dim=2, image_shape=None, n_outputs=1)
    with pytest.raises(ValueError, match="model.architecture='mlp'"):
        build_model({**SPEC, "architecture": "mlp"}, input_dim=64, image_shape=(1, 8, 8), n_outputs=10)
    with pytest.raises(ValueError, match="input_dim=63"):
        build_model({**SPEC, "architecture": "cnn"}, input_dim=63, image_shape=(1, 8, 8), n_outputs=10)
    with pytest.raises(ValueError, match="input_shape.*divisible by 4"):
        build_model({**SPEC, "architecture": "cnn"}, input_dim=36, image_shape=(1, 6, 6), n_outputs=10)
    with pytest.raises(ValueError, match="model.width"):
        build_model({"architecture": "two_layer"}, input_dim=64, image_shape=None, n_outputs=10)


def test_scripts_model_arguments_go_through_build_model():
    import argparse

    from adversary_dynamics.pipeline import cli

    p = argparse.ArgumentParser()
    cli.add_model_args(p)
    args = p.parse_args(["--architecture", "cnn", "--cnn-channels", "4,8", "--cnn-kernel-size", "3", "--cnn-hidden",
                         "16", "--loss", "squared_error"])
    m = cli.model_from_args(args, input_dim=64, n_classes=10, device="cpu", generator=_gen(4), image_shape=(1, 8, 8))
    assert args.loss == "squared_error" and isinstance(m, CNN)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), CNN(**SMALL, generator=_gen(4)).state_dict()
                                                 .values()))
    with pytest.raises(ValueError, match="model.architecture"):
        cli.model_from_args(args, input_dim=64, n_classes=10, device="cpu", image_shape=None)
    two = cli.model_from_args(p.parse_args(["--width", "12"]), input_dim=64, n_classes=10, device="cpu",
                              generator=_gen(4))
    assert isinstance(two, TwoLayerNet) and torch.equal(two.W, TwoLayerNet(input_dim=64, width=12,
                                                                           generator=_gen(4)).W)


# ----------------------------------------------------------------------------- adversarial training

ATTACK = AttackSpec(eps=0.5, steps=2, step_size=0.2)
EVAL_ATTACK = AttackSpec(eps=0.5, steps=2, step_size=0.2, restarts=2)


@pytest.fixture(scope="module")
def digits_tiny():
    return data.rescale_dataset(data.load_digits(n_train=64, n_test=32, seed=0), scale=2.0)


def _rows(rows):
    """Logged rows with NaN (epoch 0's training loss) made comparable."""
    return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


def _train_cnn(ds, run_dir, **kw):
    model = build_model({"architecture": "cnn", "channels": [4, 8], "kernel_size": 3, "hidden": 16},
                        input_dim=ds.input_dim, image_shape=ds.image_shape, n_outputs=10, generator=_gen(0))
    res = adversarial_train(model, ds, loss="cross_entropy", attack=ATTACK, eval_attack=EVAL_ATTACK, lr=0.1,
                            momentum=0.5, epochs=3, batch_size=16, seed=0, checkpoint_epochs=(0, 1, 2, 3),
                            run_dir=run_dir, **kw)
    return model, res


def test_cnn_training_resumes_bit_identically_from_an_epoch_checkpoint(digits_tiny, tmp_path):
    full_model, full = _train_cnn(digits_tiny, tmp_path / "full")
    assert full.status == "completed" and [e["epoch"] for e in full.epochs] == [0, 1, 2, 3]
    assert len(full.steps) == 3 * 4 and all(math.isfinite(s["adv_loss"]) for s in full.steps)
    part = tmp_path / "part"
    _, r1 = _train_cnn(digits_tiny, part, stop_after_epoch=1)  # train to k = 1, stop
    assert r1.status == "running" and len(r1.epochs) == 2
    assert not checkpoint_path(part, 2).exists()
    resumed_model, resumed = _train_cnn(digits_tiny, part)  # a fresh model: resume to k + 2 = 3
    assert resumed.status == "completed"
    assert _rows(resumed.steps) == _rows(full.steps) and _rows(resumed.epochs) == _rows(full.epochs)  # exactly
    for k, v in full_model.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k
    init = CNN(**SMALL, generator=_gen(0)).state_dict()
    for epoch in range(4):
        a = torch.load(checkpoint_path(tmp_path / "full", epoch), weights_only=True)
        b = torch.load(checkpoint_path(part, epoch), weights_only=True)
        assert a["epoch"] == b["epoch"] == epoch and a["model"].keys() == init.keys()
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in init)
        fresh = CNN(**SMALL, generator=_gen(9))
        fresh.load_state_dict(b["model"])  # the checkpoint loads into a plain CNN
        # epoch 0 is the initialisation; training moved the weights afterwards
        assert torch.equal(a["model"]["conv1.weight"], init["conv1.weight"]) == (epoch == 0)


def test_checkpoints_deleted_before_a_rerun_come_back_from_the_resume_state(digits_tiny, tmp_path):
    """Snakemake deletes a job's outputs (here paper Fig. 3's checkpoints) before rerunning it
    (--rerun-incomplete after an interruption, --forcerun): the resumed run must still end with
    every checkpoint, equal to an uninterrupted run's. Failed before: the resume state skipped the
    epochs whose checkpoints were gone (MissingOutputException)."""
    full = tmp_path / "full"
    _train_cnn(digits_tiny, full)
    part = tmp_path / "part"
    _train_cnn(digits_tiny, part, stop_after_epoch=2)  # interrupted after epoch 2
    for k in (0, 1, 2):
        checkpoint_path(part, k).unlink()  # what the workflow deletes before the rerun
    _, resumed = _train_cnn(digits_tiny, part)
    assert resumed.status == "completed"
    done = tmp_path / "done"
    _train_cnn(digits_tiny, done)
    for k in (0, 1, 2, 3):
        checkpoint_path(done, k).unlink()  # a forced rerun of a finished job
    _train_cnn(digits_tiny, done)
    for d in (part, done):
        for k in range(4):
            a = torch.load(checkpoint_path(full, k), weights_only=True)["model"]
            b = torch.load(checkpoint_path(d, k), weights_only=True)["model"]
            assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a), (d.name, k)


def test_a_plain_cnn_is_not_a_seed_ensemble(digits_tiny):
    """Several CNNs train as one program through a CNNEnsemble (tests/test_stacked_training.py); a
    plain CNN given to adversarial_train_seeds is refused, naming what to pass."""
    model = CNN(**SMALL, generator=_gen(0))
    with pytest.raises(ValueError, match="CNNEnsemble"):
        training.adversarial_train_seeds(model, digits_tiny, seeds=[0], attack=ATTACK, eval_attack=EVAL_ATTACK,
                                         lr=0.1, epochs=1, batch_size=16)


def test_cnn_takes_image_shaped_inputs_and_pga_event_dims_3():
    """The library's CNN also takes (*batch, C, H, W); pga(event_dims=3) on it equals pga on flat inputs."""
    from adversary_dynamics import attack

    m = CNN(input_shape=(1, 8, 8), channels=(4, 8), hidden=16, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (2, 3), generator=torch.Generator().manual_seed(2))
    assert torch.equal(m(x), m(x.flatten(-3))) and m(x).shape == (2, 3, 10)
    kw = dict(loss="cross_entropy", eps=0.5, steps=5, step_size=0.1, init="uniform_ball")
    img = attack.pga(m, x, y, event_dims=3, generator=torch.Generator().manual_seed(3), **kw)
    flat = attack.pga(m, x.flatten(-3), y, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.allclose(img.delta.flatten(-3), flat.delta, atol=1e-6)
    with pytest.raises(ValueError, match="event_dims=3"):
        m(torch.rand(4, 63))
