"""`adversary-dynamics`: snakemake with the command line's configuration checked first (issue 12,
"a missing --configfile gives a short message naming the file, not a 28-line traceback").

Snakemake 9 loads --configfile/--config before the Snakefile, so a missing file or a dotted key
fails inside Snakemake's CLI with a Python traceback that the workflow never sees; the launcher
checks them first and then runs `python -m snakemake` with the same arguments.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from adversary_dynamics.pipeline.launcher import LauncherError, rewrite_dotted_keys, snakemake_argv
from workflow_copy import copy_workflow

LAUNCH = [sys.executable, "-m", "adversary_dynamics.pipeline.launcher"]


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("launcher"))


def _run(wf: Path, *args: str, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([*LAUNCH, *args], cwd=wf, capture_output=True, text=True, timeout=timeout)


def _write(wf: Path, name: str, text: str) -> str:
    (wf / name).write_text(text)
    return name


@pytest.mark.parametrize("make, fragment", [
    (lambda wf: "missing.yaml", r"--configfile missing\.yaml: no such file \(.*missing\.yaml\); configuration files "
                                r"here: .*config/config\.yaml"),
    (lambda wf: "config", r"--configfile config: is a directory"),
    (lambda wf: _write(wf, "broken.yaml", "train: {epochs: 5\n"), r"--configfile broken\.yaml: not valid YAML at line"),
    (lambda wf: _write(wf, "list.yaml", "- 1\n- 2\n"), r"--configfile list\.yaml: holds a list, not a mapping"),
])
def test_an_unusable_configfile_gets_one_line_naming_it_before_snakemake_starts(wf, make, fragment):
    name = make(wf)
    before = sorted(p.name for p in wf.iterdir())
    r = _run(wf, "-n", "--cores", "1", "--configfile", name)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr  # Snakemake 9.27 itself prints a Python traceback for a missing file
    assert re.search(r"^adversary-dynamics: " + fragment, lines[0]), lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert sorted(p.name for p in wf.iterdir()) == before  # Snakemake never started: no .snakemake/


def test_a_target_read_as_a_config_file_or_entry_is_explained(wf):
    r = _run(wf, "-n", "--configfile", "config/fashion-mnist.yaml", "claims")
    assert r.returncode == 2 and "'claims' is a target: --configfile takes several files" in r.stderr
    r = _run(wf, "-n", "--config", "train.lr=0.02", "claims")
    assert r.returncode == 2 and "'claims': expected KEY=VALUE" in r.stderr and "targets before it" in r.stderr


def test_a_bad_key_is_reported_in_a_few_lines_before_snakemake_starts(wf):
    r = _run(wf, "-n", "--config", "epochs=5")
    assert r.returncode == 2
    assert "config key 'epochs' is unknown" in r.stderr and "train.epochs" in r.stderr
    assert "Traceback" not in r.stderr and "SNAKEMAKE" not in r.stderr and len(r.stderr.splitlines()) <= 4
    r = _run(wf, "-n", "--config", "train.epochs=abc")
    assert r.returncode == 2 and "config key 'train.epochs' has value 'abc'" in r.stderr


def test_dotted_keys_are_nested_the_way_snakemake_merges_them():
    from snakemake.cli import parse_config

    assert rewrite_dotted_keys(["train.epochs=5", "name=x", "paper_fig2.ratios=[0.1, 1]", "a.b.c=7"]) == [
        "train={epochs: 5}", "name=x", "paper_fig2={ratios: [0.1, 1]}", "a={b: {c: 7}}"]
    # Snakemake parses the rewritten entries into exactly the nested configuration
    assert parse_config(rewrite_dotted_keys(["train.epochs=5", "train.lr=0.02"])) == parse_config(
        ["train={epochs: 5, lr: 0.02}"])
    for bad in ["train.=5", "train", ".x=1", "train.ep ochs=1"]:
        with pytest.raises(LauncherError, match="--config"):
            rewrite_dotted_keys([bad])


def test_arguments_other_than_config_pass_through_unchanged(wf, monkeypatch):
    monkeypatch.chdir(wf)
    args = ["paper_fig2_escape_by_scale", "--cores", "2", "-n", "--configfile", "config/fashion-mnist.yaml",
            "--rerun-triggers", "mtime", "--config", "train.lr=0.02", "seeds=[0]"]
    assert snakemake_argv(args, check=False) == [
        "paper_fig2_escape_by_scale", "--cores", "2", "-n", "--configfile", "config/fashion-mnist.yaml",
        "--rerun-triggers", "mtime", "--config", "train={lr: 0.02}", "seeds=[0]"]
    with pytest.raises(LauncherError, match="--configfile needs at least one file"):
        snakemake_argv(["--configfile", "-n"], check=False)


def test_the_launched_snakemake_plans_the_same_configuration_as_the_nested_form(wf):
    """Same folder digest (the content hash of the validated configuration) as plain snakemake."""
    def folder(cmd):
        r = subprocess.run(cmd, cwd=wf, capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"\(which ones: (results/[^/\s]+/)stages\.json\)", r.stdout + r.stderr)
        assert m, r.stdout + r.stderr
        return m.group(1)

    plain = folder([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "train={epochs: 25, lr: 0.02}"])
    launched = folder([*LAUNCH, "-n", "--cores", "1", "--config", "train.epochs=25", "train.lr=0.02"])
    assert launched == plain and plain.startswith("results/default-")
    r = subprocess.run([*LAUNCH, "-n", "--cores", "1"], cwd=wf, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "(which ones: results/default/stages.json)" in r.stdout + r.stderr


def test_help_names_the_checks():
    r = subprocess.run([*LAUNCH, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--configfile" in r.stdout and "snakemake --help" in r.stdout


def test_the_readmes_launcher_examples_pass_the_check(wf, monkeypatch):
    """Every `adversary-dynamics ...` command quoted in README.md passes the launcher's own checks
    (the first one quoted there once failed: train.epochs=5 left probe.checkpoints at 20)."""
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    cmds = re.findall(r"`adversary-dynamics ([^`]+)`", readme)
    assert cmds, "README.md quotes no adversary-dynamics command"
    monkeypatch.chdir(wf)
    for cmd in cmds:
        snakemake_argv(shlex.split(cmd), check=True)


# ---- issue 19 -------------------------------------------------------------------------------------
def test_a_configfile_with_a_key_twice_is_refused_naming_file_key_and_lines(wf):
    name = _write(wf, "pasted.yaml", "theory: {dims: [2]}\ntrain:\n  epochs: 3\n  epochs: 4\ntheory: {dims: [3]}\n")
    before = sorted(p.name for p in wf.iterdir())
    r = _run(wf, "-n", "--cores", "1", "--configfile", name)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("adversary-dynamics: --configfile pasted.yaml: "), lines[0]
    assert "key 'train.epochs' appears twice (lines 3 and 4)" in lines[0]
    assert "key 'theory' appears twice (lines 1 and 5)" in lines[0]
    assert sorted(p.name for p in wf.iterdir()) == before  # Snakemake never started


def test_the_workflows_own_config_with_a_key_twice_is_refused(tmp_path):
    work = copy_workflow(tmp_path / "wf")
    cfg = work / "config" / "config.yaml"
    n = len(cfg.read_text().splitlines())
    cfg.write_text(cfg.read_text() + "seeds: [0]\n")
    r = _run(work, "-n", "--cores", "1", "--config", "train.lr=0.02")
    assert r.returncode == 2, r.stderr
    assert "config file config/config.yaml: key 'seeds' appears twice (lines" in r.stderr, r.stderr
    assert f"and {n + 1})" in r.stderr, r.stderr


def test_a_name_too_long_for_a_folder_is_refused_before_snakemake_starts(wf):
    r = _run(wf, "-n", "--cores", "1", "--config", "name=" + "x" * 247)
    assert r.returncode == 2, r.stderr
    assert "config key 'name'" in r.stderr and "at most 64 characters" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "File name too long" not in r.stderr


def test_help_reads_like_a_commands_help(wf):
    r = subprocess.run([*LAUNCH, "--help"], cwd=wf, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    out = r.stdout
    assert out.startswith("usage: adversary-dynamics ")
    # no developer docstring: no reST/Sphinx markup, no notes about imports or entry points
    for dev in ("``", ":func:", ":data:", "Nothing here runs at import", "entry point", "Snakemake 9.27.1"):
        assert dev not in out, dev
    # what it does, the common commands, where configurations live, and that the rest goes to snakemake
    assert "Rebuild the figures" in out
    for cmd in ("adversary-dynamics --cores 8\n", "adversary-dynamics -n ", "--configfile config/paper.yaml",
                "--config train.lr=0.02", "adversary-dynamics --cores 2 claims"):
        assert cmd in out, cmd
    assert "Configurations live in config/*.yaml; every key is described in config/config.yaml." in out
    assert "In config/ here: cifar10.yaml, config.yaml, fashion-mnist.yaml, paper.yaml." in out
    assert "Every other argument goes to snakemake unchanged (see snakemake --help)" in out
    # each example command passes the launcher's own checks
    import shlex

    cmds = [ln.strip() for ln in out.splitlines() if ln.startswith("  adversary-dynamics ")]
    assert len(cmds) >= 5
    for cmd in cmds:
        snakemake_argv(shlex.split(cmd)[1:], check=False)
    assert max(len(ln) for ln in out.splitlines()) <= 100


def test_a_config_entry_that_writes_a_key_twice_is_refused_by_the_launcher():
    with pytest.raises(LauncherError, match=r"--config 'train=\{lr: 0.1, lr: 0.2\}': key 'lr' appears twice"):
        rewrite_dotted_keys(["train={lr: 0.1, lr: 0.2}"])
