"""Bad configurations are caught before any job starts, each with a message that names the key,
the bad value and what is allowed.

The table calls :func:`validate_config` directly (fast); a few cases go through the real
``snakemake`` command line (``--config`` overrides and ``--configfile``) in a temporary copy of
the workflow, checking the exit status, what the user reads on stderr, and that no job ran and
nothing under results/ (or logs/, benchmarks/) was created or changed.
"""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adversary_dynamics.pipeline.config import ConfigError, validate_config
from workflow_copy import ROOT, copy_workflow

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TINY = yaml.safe_load((ROOT / "tests" / "workflow" / "config.yaml").read_text())


def _set(cfg: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


def _validate(overrides: dict, *, base=DEFAULT, cuda_available=False) -> dict:
    cfg = copy.deepcopy(base)
    for k, v in overrides.items():
        _set(cfg, k, v)
    return validate_config(cfg, SCHEMA, cuda_available=cuda_available)


# (id, overrides, key named, bad value as shown, what is allowed)
CASES = [
    ("negative-scale", {"scales": [-1.0, 1.0]}, "scales[0]", "-1.0", "a value > 0"),
    # issue 11's bad input: a CNN on data without an image shape, a ratio <= 0, a grid with values that
    # coincide once written in paths, a CNN kernel that would change the image size
    ("cnn-on-simulated-data", {"model.architecture": "cnn", "dataset.name": "gaussian"}, "model.architecture",
     "'cnn'", "an image dataset"),
    ("escape-cnn-on-simulated-data", {"dataset.name": "gaussian"}, "paper_escape.architecture", "'cnn'",
     "an image dataset"),
    ("paper-ratio-zero", {"paper_fig2.ratios": [0, 1]}, "paper_fig2.ratios[0]", "0", "a value > 0"),
    ("paper-ratio-negative", {"paper_fig1.ratios": [0.1, -1]}, "paper_fig1.ratios[1]", "-1", "a value > 0"),
    ("paper-scales-coincide-in-paths", {"paper_fig2.scales": [0.1, 0.1000000001]}, "paper_fig2.scales",
     "[0.1, 0.1000000001]", "distinct at 6 significant digits"),
    ("paper-fig3-ratios-coincide-in-paths", {"paper_fig3.ratios": [1, 1.0000001]}, "paper_fig3.ratios",
     "[1, 1.0000001]", "distinct at 6 significant digits"),
    ("cnn-even-kernel", {"cnn.kernel_size": 4}, "cnn.kernel_size", "4", "an odd number"),
    ("zero-scale", {"scales": [0.0, 1.0]}, "scales[0]", "0.0", "a value > 0"),
    ("duplicate-scales", {"scales": [0.5, 1.0, 0.5]}, "scales", "[0.5, 1.0, 0.5]",
     "a list without duplicates (0.5 repeated)"),
    ("duplicate-scales-int-float", {"scales": [1, 1.0]}, "scales", "[1, 1.0]", "without duplicates"),
    ("scale-not-a-list", {"scales": 0.5}, "scales", "0.5", "a list"),
    ("scale-infinite", {"scales": [math.inf]}, "scales[0]", "inf", "a finite number"),
    ("scale-nan", {"scales": [math.nan]}, "scales[0]", "nan", "a finite number"),
    ("scale-too-precise-for-paths", {"scales": [0.1234567]}, "scales[0]", "0.1234567",
     "at most 6 significant digits"),
    ("theory-scale-too-precise", {"theory.scales": [1.0, 1.0000001]}, "theory.scales[1]", "1.0000001",
     "at most 6 significant digits"),
    ("ratio-zero", {"threat.ratio": 0}, "threat.ratio", "0", "a value > 0"),
    ("ratio-negative", {"threat.ratio": -0.5}, "threat.ratio", "-0.5", "a value > 0"),
    ("theory-eps-factor-negative", {"theory.eps_factor": -1}, "theory.eps_factor", "-1", "a value > 0"),
    ("ratio-text", {"threat.ratio": "half"}, "threat.ratio", "'half'", "a number"),
    ("unknown-dataset", {"dataset.name": "imagenet"}, "dataset.name", "'imagenet'",
     "one of digits, gaussian, mnist, fashion_mnist, cifar10"),
    ("unknown-norm", {"threat.norm": "l3"}, "threat.norm", "'l3'", "one of l2, linf"),
    ("unknown-activation", {"model.activation": "sigmoid"}, "model.activation", "'sigmoid'",
     "one of relu, softplus, tanh"),
    ("activation-case-did-you-mean", {"model.activation": "ReLU"}, "model.activation", "'ReLU'",
     "did you mean 'relu'?"),
    ("unknown-loss", {"loss": "hinge"}, "loss", "'hinge'", "one of quadratic,"),
    ("unknown-optimizer", {"train.optimizer": "rmsprop"}, "train.optimizer", "'rmsprop'", "one of sgd, adam"),
    ("unknown-batch-seeds", {"train.batch_seeds": "always"}, "train.batch_seeds", "'always'",
     "one of auto, true, false"),
    ("unknown-gradient", {"attack.gradient": "signed"}, "attack.gradient", "'signed'",
     "one of raw, normalized, sign; did you mean 'sign'?"),
    ("unknown-device", {"device": "tpu"}, "device", "'tpu'", "one of auto, cpu, cuda"),
    ("zero-width", {"model.width": 0}, "model.width", "0", "a value >= 1"),
    ("zero-epochs", {"train.epochs": 0, "probe.checkpoints": [0]}, "train.epochs", "0", "a value >= 1"),
    ("zero-batch-size", {"train.batch_size": 0}, "train.batch_size", "0", "a value >= 1"),
    ("zero-threads", {"threads": 0}, "threads", "0", "a value >= 1"),
    ("negative-lr", {"train.lr": -0.1}, "train.lr", "-0.1", "a value > 0"),
    ("momentum-above-one", {"train.momentum": 1.5}, "train.momentum", "1.5", "a value <= 1"),
    ("lr-nan", {"train.lr": math.nan}, "train.lr", "nan", "a finite number"),
    ("empty-seeds", {"seeds": []}, "seeds", "[]", "a list of at least 1 item(s)"),
    ("negative-seed", {"seeds": [0, -1]}, "seeds[1]", "-1", "a value >= 0"),
    ("duplicate-seeds", {"seeds": [0, 1, 1]}, "seeds", "[0, 1, 1]", "without duplicates (1 repeated)"),
    ("checkpoint-beyond-last-epoch", {"probe.checkpoints": [0, 1, 30]}, "probe.checkpoints", "[30]",
     "epochs between 0 and 20"),
    ("checkpoint-beyond-shortened-training", {"train.epochs": 3}, "probe.checkpoints", "[20]",
     "epochs between 0 and 3"),
    ("negative-checkpoint", {"probe.checkpoints": [-1, 1]}, "probe.checkpoints[0]", "-1", "a value >= 0"),
    ("empty-checkpoints", {"probe.checkpoints": []}, "probe.checkpoints", "[]", "at least 1 item"),
    ("grid-too-coarse", {"probe.grid": 3}, "probe.grid", "3", "a value >= 5"),
    ("cos-threshold-zero", {"probe.cos_threshold": 0}, "probe.cos_threshold", "0", "a value > 0"),
    ("theory-zero-dim", {"theory.dims": [0, 25]}, "theory.dims[0]", "0", "a value >= 1"),
    ("theory-empty-width-powers", {"theory.width_powers": []}, "theory.width_powers", "[]", "at least 1 item"),
    ("cuda-without-cuda", {"device": "cuda"}, "device", "'cuda'", "auto or cpu"),
    ("unknown-top-key-typo", {"moddel": {"width": 3}}, "moddel", "moddel", "did you mean 'model'?"),
    ("flat-key-one-level-down", {"epochs": 5}, "epochs", "epochs",
     "did you mean 'train.epochs'? (on the command line: snakemake --config train='{epochs: 5}', or adversary-dynamics --config train.epochs=5)"),
    ("flat-key-in-several-sections", {"step_size": 0.1}, "step_size", "step_size", "did you mean 'attack.step_size' or"),
    ("misspelt-flat-key-elsewhere", {"lrr": 0.1}, "lrr", "lrr", "did you mean 'train.lr'?"),
    ("device-alias-gpu", {"device": "gpu"}, "device", "'gpu'", "one of auto, cpu, cuda; did you mean 'cuda'?"),
    ("norm-alias-inf", {"threat.norm": "inf"}, "threat.norm", "'inf'", "did you mean 'linf'?"),
    ("unknown-nested-key-typo", {"train.epoch": 3}, "train.epoch", "train.epoch", "did you mean 'epochs'?"),
    ("unknown-key-lists-allowed", {"threat.eps": 0.1}, "threat.eps", "threat.eps",
     "allowed keys here: norm, ratio"),
    ("width-text", {"model.width": "32x"}, "model.width", "'32x'", "an integer"),
    ("epochs-fraction", {"train.epochs": 2.5}, "train.epochs", "2.5", "an integer"),
    ("bias-not-boolean", {"model.bias": "maybe"}, "model.bias", "'maybe'", "true or false"),
    ("section-not-mapping", {"model": 3}, "model", "3", "a mapping (key: value)"),
    ("n-train-zero", {"dataset.n_train": 0}, "dataset.n_train", "0", "a value >= 1"),
    ("n-train-text", {"dataset.n_train": "all"}, "dataset.n_train", "'all'", "an integer or null"),
    ("name-with-slash", {"name": "a/b"}, "name", "'a/b'", "a string matching"),
    ("name-empty", {"name": ""}, "name", "''", "a string matching"),
    ("sphere-start-with-linf", {"threat.norm": "linf", "attack.init": "uniform_sphere"}, "attack.init",
     "'uniform_sphere'", "zero or uniform_ball"),
    ("mnist-files-missing", {"dataset.name": "mnist", "dataset.root": "/nonexistent/mnist"}, "dataset",
     "'/nonexistent/mnist'", "dataset.download: true"),
]


@pytest.mark.parametrize("overrides, key, value, allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_message_names_key_value_and_allowed(overrides, key, value, allowed):
    with pytest.raises(ConfigError) as exc:
        _validate(overrides)
    msg = str(exc.value)
    line = next((ln for ln in msg.splitlines() if f"'{key}'" in ln or f"'{key}:" in ln or f"key '{key}'" in ln),
                None)
    assert line is not None, f"no line names the key {key!r}:\n{msg}"
    # the key's line (or, for multi-line data messages, the whole message) shows value and allowed
    where = msg if key == "dataset" else line
    assert value in where, f"bad value {value!r} not shown:\n{msg}"
    assert allowed in where, f"allowed {allowed!r} not shown:\n{msg}"


def test_table_is_large_enough():
    assert len(CASES) >= 15


@pytest.mark.parametrize("base", [DEFAULT, TINY], ids=["default", "tiny"])
def test_shipped_configs_are_valid(base):
    cfg = _validate({}, base=base)
    assert cfg["scales"] and cfg["threads"] >= 1


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        _validate({"scales": [-1.0], "threat.ratio": 0, "model.width": 0, "loss": "hinge", "moddel": 1,
                   "probe.checkpoints": [0, 50], "device": "cuda", "theory.scales": [0.1234567]})
    msg = str(exc.value)
    # schema problems and the checks beyond the schema, together
    for key in ("scales[0]", "threat.ratio", "model.width", "loss", "moddel", "probe.checkpoints", "device",
                "theory.scales[0]"):
        assert f"'{key}'" in msg, msg


def test_defaults_are_filled_in():
    cfg = validate_config({"name": "x", "probe": {"checkpoints": [0, 1]}}, SCHEMA, cuda_available=False)
    assert cfg["train"]["epochs"] == 20 and cfg["threat"]["ratio"] == 0.5 and cfg["dataset"]["name"] == "digits"


def test_cuda_accepted_where_available():
    assert _validate({"device": "cuda"}, cuda_available=True)["device"] == "cuda"


def test_command_line_text_is_converted():
    """Snakemake's --config reads values inside lists and mappings as text: they are converted to
    the types the schema expects, so `--config threat='{ratio: 0.3}'` means ratio 0.3."""
    cfg = _validate({"threat": {"ratio": "0.3"}, "scales": ["0.5", "1", "2e0"], "seeds": ["0", "1"],
                     "train.lr": "1e-3", "train.epochs": "5", "probe.checkpoints": ["0", "5"],
                     "model.bias": "true", "dataset.n_train": "null", "dataset.root": "null", "name": 2024})
    assert cfg["threat"] == {"ratio": 0.3, "norm": "l2"}
    assert cfg["scales"] == [0.5, 1, 2.0] and cfg["seeds"] == [0, 1]
    assert cfg["train"]["lr"] == 1e-3 and cfg["train"]["epochs"] == 5 and isinstance(cfg["train"]["epochs"], int)
    assert cfg["probe"]["checkpoints"] == [0, 5] and cfg["model"]["bias"] is True
    assert cfg["dataset"]["n_train"] is None and cfg["dataset"]["root"] is None and cfg["name"] == "2024"


@pytest.mark.parametrize("text, value", [("true", True), ("false", False), ("auto", "auto")])
def test_batch_seeds_text_is_converted(text, value):
    """train.batch_seeds is auto or a boolean: command-line text true/false becomes the boolean."""
    assert _validate({"train.batch_seeds": text})["train"]["batch_seeds"] == value
    assert _validate({"train.batch_seeds": value})["train"]["batch_seeds"] == value


def test_integral_floats_become_integers():
    """JSON Schema accepts 20.0 as an integer; the scripts' int() parsing would not: it is converted."""
    cfg = _validate({"train.epochs": 20.0, "model.width": 32.0})
    assert type(cfg["train"]["epochs"]) is int and type(cfg["model"]["width"]) is int


def test_config_that_is_not_a_mapping():
    with pytest.raises(ConfigError, match="allowed: a mapping"):
        validate_config(["scales"], SCHEMA)


# ---- the real command line ------------------------------------------------------------------
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGETS = ["theory", "claims"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("cfgwf"))
    if (ROOT / "environment.yml").exists():
        shutil.copy2(ROOT / "environment.yml", work / "environment.yml")
    # earlier results that a rejected configuration must leave alone: a stage folder and the record of
    # the configuration that wrote it
    old = work / "results" / "stages" / "train" / "0123456789ab" / "scale~0.5" / "seed~0"
    old.mkdir(parents=True)
    (old / "steps.csv").write_text("step,epoch,adv_loss,clean_loss\n1,1,0.5,0.4\n")
    (work / "results" / "tiny").mkdir(parents=True)
    (work / "results" / "tiny" / "stages.json").write_text(
        '{"train": {"key": "0123456789ab", "folder": "results/stages/train/0123456789ab"}}')
    return work


def _snapshot(work: Path) -> dict:
    out = {}
    for top in ("results", "logs", "benchmarks", "figures"):
        for p in sorted((work / top).rglob("*")) if (work / top).exists() else []:
            st = p.stat()
            out[str(p.relative_to(work))] = (st.st_mtime_ns, st.st_size)
    return out


def _snakemake(work: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(SNAKEMAKE + args, cwd=work, capture_output=True, text=True, timeout=120, env=env)


CLI_CASES = [
    # (id, extra arguments, key, value, allowed, dry run, slow)
    ("ratio-negative-dry-run", ["--config", "threat={ratio: -1}"], "threat.ratio", "-1", "a value > 0", True, False),
    ("scales-duplicate-and-zero", ["--config", "scales=[1.0, 1, 0]"], "scales", "[1.0, 1, 0]",
     "without duplicates (1 repeated)", False, True),
    ("typo-did-you-mean", ["--config", "train={epoch: 3}"], "train.epoch", "train.epoch", "did you mean 'epochs'?",
     False, True),
    ("cuda-requested", ["--config", "device=cuda"], "device", "'cuda'", "allowed here: auto or cpu", False, True),
    ("flat-key-suggests-section", ["--config", "epochs=5"], "epochs", "epochs",
     "did you mean 'train.epochs'? (on the command line: snakemake --config train='{epochs: 5}', or adversary-dynamics --config train.epochs=5)", True, False),
    ("device-alias-suggests-cuda", ["--config", "device=gpu"], "device", "'gpu'", "did you mean 'cuda'?", True, False),
]


def _cli_params():
    for c in CLI_CASES:
        yield pytest.param(*c[1:6], id=c[0], marks=[pytest.mark.slow] if c[6] else [])


@pytest.mark.parametrize("extra, key, value, allowed, dry", list(_cli_params()))
def test_snakemake_cli_rejects_before_any_job(workdir, extra, key, value, allowed, dry):
    before = _snapshot(workdir)
    args = TARGETS + ["--cores", "2"] + (["-n"] if dry else []) + ["--configfile", "tests/workflow/config.yaml"]
    res = _snakemake(workdir, args + extra)
    # Snakemake 9 logs to stdout in a dry run (-n), to stderr otherwise
    err = res.stdout if dry else res.stderr
    assert res.returncode != 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "invalid configuration" in err, err[-3000:]
    line = next((ln for ln in err.splitlines() if f"'{key}'" in ln), "")
    assert value in line and allowed in line, err[-3000:]
    # readable: the message, not a long Python traceback
    assert "Traceback (most recent call last)" not in err, err
    assert len(err.splitlines()) < 15, err
    # nothing ran: no job was scheduled, nothing under results/, logs/, benchmarks/ changed
    assert "Building DAG" not in res.stdout + err and "rule train" not in res.stdout + err
    assert _snapshot(workdir) == before


def test_snakemake_cli_rejects_bad_configfile(workdir, tmp_path):
    bad = copy.deepcopy(TINY)
    bad["name"] = "other"
    bad["train"]["optimizer"] = "adamw"
    bad["probe"]["checkpoints"] = [0, 9]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    before = _snapshot(workdir)
    res = _snakemake(workdir, TARGETS + ["--cores", "2", "--configfile", str(path)])
    err = res.stderr
    assert res.returncode != 0
    assert "config key 'train.optimizer' has value 'adamw'; allowed: one of sgd, adam" in err, err
    assert ("config key 'probe.checkpoints' has value [0, 9], and [9] lie beyond train.epochs = 2; allowed: epochs "
            "between 0 and 2 (set both, e.g. --config train='{epochs: 2}' probe='{checkpoints: [0, 2]}')") in err, err
    assert _snapshot(workdir) == before
    assert not (workdir / "results" / "other").exists() and not (workdir / "logs" / "other").exists()


@pytest.mark.slow
def test_snakemake_cli_accepts_typed_overrides(workdir):
    """The command-line text conversion works through Snakemake: a valid override plans jobs."""
    res = _snakemake(workdir, ["ext_training_convergence_tables", "-n", "--cores", "2", "--configfile", "tests/workflow/config.yaml",
                               "--config", "threat={ratio: 0.25}", "scales=[0.5, 1]", "train={lr: 1e-2}"])
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert re.search(r"results/stages/train/[0-9a-f]{12}/scale~1/seed~0/steps\.csv", out), out[-3000:]
    assert "--ratio 0.25" not in out and '"ratio": 0.25' not in out  # planned, not run


# ---- issue 19: a key written twice in a config file is refused, naming file, key and lines ------
DUPLICATED = """\
name: dup
theory:
  dims: [2]
train: {epochs: 3, lr: 0.1}
theory:
  dims: [3]
  trials: 4
  trials: 5
paper_fig3:
  train:
    lr: 0.1
    lr: 0.2
probe: {checkpoints: [0, 2], checkpoints: [0, 1]}
seq:
  - {a: 1}
  - {b: 1, b: 2}
anchor: &a {x: 1, y: 2}
merged:
  <<: *a
  x: 3
"""


def test_strict_loader_refuses_duplicate_keys_at_any_depth_with_dotted_key_and_both_lines(tmp_path):
    from adversary_dynamics.pipeline.config import DuplicateKeyError, _load_yaml

    path = tmp_path / "pasted.yaml"
    path.write_text(DUPLICATED)
    with pytest.raises(DuplicateKeyError) as info:
        _load_yaml(path)
    msg = str(info.value)
    assert msg.startswith(f"config file {path}: ")
    for part in ("key 'theory' appears twice (lines 2 and 5)", "key 'theory.trials' appears twice (lines 7 and 8)",
                 "key 'paper_fig3.train.lr' appears twice (lines 11 and 12)",
                 "key 'probe.checkpoints' appears twice (both on line 13)",
                 "key 'seq[1].b' appears twice (both on line 16)"):
        assert part in msg, msg
    assert "merged" not in msg and "anchor" not in msg  # a `<<` merge overriding a key is YAML's own
    assert "keep only the last one" in msg and "merge the two" in msg
    assert isinstance(info.value, ConfigError)


def test_strict_loader_reads_every_committed_config_as_yaml_does():
    from adversary_dynamics.pipeline.config import _load_yaml

    for path in sorted(ROOT.glob("config/*.yaml")) + sorted(ROOT.glob("tests/workflow/*.yaml")):
        assert _load_yaml(path) == yaml.safe_load(path.read_text()), path


def test_check_config_files_names_the_first_file_with_a_duplicate(tmp_path):
    from adversary_dynamics.pipeline.config import DuplicateKeyError, check_config_files

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("name: a\n")
    bad.write_text("name: a\nname: b\n")
    check_config_files([good, tmp_path / "missing.yaml"])  # missing files are Snakemake's to report
    with pytest.raises(DuplicateKeyError, match=r"bad\.yaml: key 'name' appears twice \(lines 1 and 2\)"):
        check_config_files([good, bad])


def _pasted_twice(text: str) -> str:
    """The tiny config with its `theory:` line pasted again at the end (other dims)."""
    line = next(ln for ln in text.splitlines() if ln.startswith("theory:"))
    return text + line.replace("dims: [2, 4]", "dims: [3]") + "\n"


def test_snakemake_cli_refuses_a_configfile_with_a_key_twice(workdir, tmp_path):
    text = (ROOT / "tests" / "workflow" / "config.yaml").read_text()
    path = tmp_path / "pasted.yaml"
    path.write_text(_pasted_twice(text))
    n = len(text.splitlines())
    first = 1 + next(i for i, ln in enumerate(text.splitlines()) if ln.startswith("theory:"))
    before = _snapshot(workdir)
    res = _snakemake(workdir, TARGETS + ["-n", "--cores", "2", "--configfile", str(path)])
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert f"pasted.yaml: key 'theory' appears twice (lines {first} and {n + 1})" in out, out[-3000:]
    assert "Traceback (most recent call last)" not in out and "Building DAG" not in out, out[-3000:]
    assert _snapshot(workdir) == before


def test_snakemake_cli_refuses_the_workflows_own_config_with_a_key_twice(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = work / "config" / "config.yaml"
    cfg.write_text(cfg.read_text() + "name: other\n")
    res = _snakemake(work, TARGETS + ["-n", "--cores", "2"])
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "config/config.yaml: key 'name' appears twice (lines" in out, out[-3000:]
    assert not (work / "results").exists()


# ---- issue 19: a name too long for a folder is refused before any job -------------------------
def test_a_name_too_long_for_a_folder_names_the_key_and_the_maximum():
    with pytest.raises(ConfigError) as info:
        _validate({"name": "a" * 247})
    msg = str(info.value)
    assert "config key 'name'" in msg and "at most 64 characters (this one has 247)" in msg, msg
    assert "a" * 100 not in msg  # the value is shortened, not printed in full
    assert _validate({"name": "a" * 64})["name"] == "a" * 64


@pytest.mark.parametrize("name", ["a/b", "../up", ".hidden", "with space", "x\\y", ""])
def test_a_name_that_cannot_be_a_folder_is_refused(name):
    with pytest.raises(ConfigError, match=r"config key 'name' has value .*allowed: a string matching"):
        _validate({"name": name})


def test_snakemake_cli_refuses_a_long_name_before_any_job(workdir):
    before = _snapshot(workdir)
    res = _snakemake(workdir, TARGETS + ["-n", "--cores", "2", "--configfile", "tests/workflow/config.yaml",
                                         "--config", "name=" + "n" * 247])
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "config key 'name'" in out and "at most 64 characters" in out, out[-3000:]
    assert "File name too long" not in out and "Traceback" not in out, out[-3000:]
    assert len(out.splitlines()) < 15, out
    assert _snapshot(workdir) == before


def test_a_config_entry_that_writes_a_key_twice_is_refused():
    """`--config train='{lr: 0.1, lr: 0.2}'` kept only 0.2 without a word (a fresh-clone trial)."""
    from adversary_dynamics.pipeline.config import DuplicateKeyError, check_config_args

    with pytest.raises(DuplicateKeyError, match=r"--config train=.*key 'lr' appears twice"):
        check_config_args(["train={lr: 0.1, lr: 0.2}"])
    check_config_args(["train={lr: 0.1}", "name=007", "theory={trials: [unclosed"])  # fine, or Snakemake's to report
