"""Nothing lost: interruptions, crashes mid-write and numerical trouble.

* scripts/train.py killed (SIGKILL) or stopped (SIGTERM) mid-run, then rerun, ends bit-identical
  to an uninterrupted run (steps.csv, epochs.csv, status.json, every checkpoint tensor);
* a whole workflow run interrupted with Ctrl-C (SIGINT to the process group) and rerun finishes
  without redoing the jobs that had completed;
* no script writes a result file other than through the atomic helpers of runio, and a crash
  during such a write leaves nothing under the final name;
* a run whose loss becomes NaN/inf is stopped and recorded as diverged, and the workflow
  (every table, and the training figure where its notebook exists) completes around it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from adversary_dynamics.storage import runio
from workflow_copy import ROOT, copy_workflow, stage_folder

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# the table-producing targets of the extension figures (the theory rule writes its tables itself)
AGGREGATES = ["ext_pga_convergence_tables", "ext_training_convergence_tables",
              "ext_landscape_statistics_tables", "theory"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

# digits, 300 training examples, width 32: ~0.3 s per epoch, long enough to interrupt mid-run
TRAIN = ["--scale", "1", "--seeds", "0", "--dataset", "digits", "--n-train", "300", "--n-test", "100",
         "--ratio", "0.5", "--width", "32", "--epochs", "10", "--batch-size", "4", "--lr", "0.05",
         "--attack-steps", "10", "--attack-step-size", "0.25", "--eval-steps", "5", "--checkpoints", "0,1,5,10",
         "--threads", "1", "--progress", "false", "--device", "cpu"]


def _train_cmd(out_root: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / "train.py"), "--out-root", str(out_root), *TRAIN, *extra]


def _start(out_root: Path, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_train_cmd(out_root, *extra), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 50.0) -> None:
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before {path.name} appeared"
        assert time.time() - t0 < timeout, f"{path} did not appear within {timeout} s"
        time.sleep(0.005)


def _into_second_epoch(run: Path, proc: subprocess.Popen) -> None:
    """Return halfway through the second epoch (timed by the first), whatever the machine's speed."""
    _wait_for(run / "checkpoints" / "epoch_0000.pt", proc)
    t0 = time.time()
    _wait_for(run / "checkpoints" / "epoch_0001.pt", proc)
    time.sleep(0.5 * (time.time() - t0))


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def _assert_identical(run: Path, ref: Path) -> None:
    for name in ("steps.csv", "epochs.csv", "status.json"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), f"{name} differs from the uninterrupted run"
    cks = sorted(p.name for p in (ref / "checkpoints").iterdir())
    assert cks == sorted(p.name for p in (run / "checkpoints").iterdir())
    for name in cks + ["../state.pt"]:
        a, b = _tensors(run / "checkpoints" / name), _tensors(ref / "checkpoints" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: tensor {k} differs"
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


def _no_stray_files(run: Path) -> None:
    """Only complete files under final names: temporaries carry the .<name>.tmp- prefix."""
    for p in run.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            if p.suffix == ".pt":
                torch.load(p, map_location="cpu", weights_only=False)  # loads: not truncated


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run."""
    root = tmp_path_factory.mktemp("ref")
    res = subprocess.run(_train_cmd(root), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return root / "seed~0"


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_is_bit_identical(reference, tmp_path):
    run = tmp_path / "seed~0"
    proc = _start(tmp_path, tmp_path / "first.log")
    _into_second_epoch(run, proc)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.kill()
    assert proc.wait(timeout=20) == -signal.SIGKILL
    assert not (run / "status.json").exists() and not (run / "steps.csv").exists()
    _no_stray_files(run)
    st = torch.load(run / "state.pt", weights_only=False)
    assert st["status"] == "running" and 1 <= st["epoch"] < 10
    res = subprocess.run(_train_cmd(tmp_path), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_identical(run, reference)


@pytest.mark.slow
def test_sigterm_mid_epoch_exits_143_then_resumes_bit_identical(reference, tmp_path):
    run = tmp_path / "seed~0"
    log = tmp_path / "first.log"
    proc = _start(tmp_path, log)
    _into_second_epoch(run, proc)
    assert proc.poll() is None, "the run finished before it could be stopped"
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143, log.read_text()[-2000:]
    assert time.time() - t0 < 5, "SIGTERM was not acted on at the next minibatch boundary"
    assert "SIGTERM" in log.read_text()
    st = torch.load(run / "state.pt", weights_only=False)
    assert st["status"] == "running" and st["epoch"] >= 1
    assert not (run / "status.json").exists()
    _no_stray_files(run)
    res = subprocess.run(_train_cmd(tmp_path), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_identical(run, reference)


@pytest.mark.slow
def test_sigterm_during_startup_exits_143(tmp_path):
    """Before training begins (imports, data loading) a SIGTERM also ends the job with 143."""
    log = tmp_path / "run.log"
    proc = _start(tmp_path, log)
    t0 = time.time()
    while "run_config" not in (log.read_text() if log.exists() else ""):
        assert proc.poll() is None and time.time() - t0 < 30
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143, log.read_text()[-2000:]
    assert not (tmp_path / "seed~0" / "status.json").exists()


# ---- Ctrl-C of a whole workflow run -----------------------------------------------------------
def _workdir(dst: Path, **overrides) -> Path:
    work = copy_workflow(dst)
    if (ROOT / "environment.yml").exists():  # the rules' conda: directive refers to it
        shutil.copy2(ROOT / "environment.yml", work / "environment.yml")
    cfg = yaml.safe_load((ROOT / "tests" / "workflow" / "config.yaml").read_text())
    for k, v in overrides.items():
        node = cfg
        *parents, last = k.split(".")
        for p in parents:
            node = node[p]
        node[last] = v
    (work / "test.yaml").write_text(yaml.safe_dump(cfg))
    return work


def _outputs(work: Path) -> dict[str, int]:
    """Declared results (no resume states, checkpoints or temporaries) with their mtimes."""
    out = {}
    for p in (work / "results").rglob("*"):
        if p.is_file() and p.name != "state.pt" and "checkpoints" not in p.parts and not p.name.startswith("."):
            out[str(p.relative_to(work))] = p.stat().st_mtime_ns
    return out


def _jobs_planned(text: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    stats = {}
    m = re.search(r"Job stats:\n(.*?)\n\n", text + "\n\n", re.S)
    assert m, text[-2000:]
    for line in m.group(1).splitlines()[2:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            stats[parts[0]] = int(parts[1])
    return stats


@pytest.mark.slow
def test_ctrl_c_of_workflow_then_rerun_keeps_completed_jobs(tmp_path):
    # the training outlasts the theory job by many seconds (400 epochs): Ctrl-C lands while it runs, also
    # on a quiet machine (with 4 or 40 epochs every job could finish before the signal, and the run exited 0)
    work = _workdir(tmp_path, scales=[2.0], seeds=[0], **{"theory.dims": [8], "train.epochs": 400,
                                                         "probe.checkpoints": [0, 4]})
    args = AGGREGATES + ["--cores", "2", "--configfile", "test.yaml"]
    log = work / "first.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(SNAKEMAKE + args, cwd=work, env={**ENV, "PYTHONUNBUFFERED": "1"}, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    while len(re.findall(r"Finished jobid", log.read_text())) < 1:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.time() - t0 < 50, log.read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    proc.wait(timeout=50)
    first = log.read_text()
    assert proc.returncode != 0, first[-3000:]
    finished_ids = dict(re.findall(r"Finished jobid: (\d+) \(Rule: (\w+)\)", first))
    finished = list(finished_ids.values())
    assert finished, first[-3000:]
    # the outputs of the jobs Snakemake reported finished (a job killed while it was writing
    # its last file is not finished: Snakemake reruns it, as it must); every rule has one job here,
    # so --summary's output -> rule table gives them (rules with a `message:` log no output list)
    summary = subprocess.run(SNAKEMAKE + args + ["--summary"], cwd=work, env=ENV, capture_output=True, text=True,
                             timeout=60)
    assert summary.returncode == 0, summary.stderr[-3000:]
    outputs_of_rule: dict[str, list[str]] = {}
    for line in summary.stdout.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3:
            outputs_of_rule.setdefault(cols[2], []).append(cols[0])
    existing = _outputs(work)
    done = {f: existing[f] for r in set(finished_ids.values()) for f in outputs_of_rule.get(r, []) if f in existing}
    assert done, "no completed output survived the interruption"

    dry = subprocess.run(SNAKEMAKE + args + ["-n"], cwd=work, env=ENV, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    planned, at_first = _jobs_planned(dry.stdout + dry.stderr), _jobs_planned(first)
    # train, probe and the targets at first; now all but the completed ones
    assert sum(at_first.values()) == 2 + len(AGGREGATES)
    for rule, n in at_first.items():
        assert planned.get(rule, 0) == n - finished.count(rule), (finished, planned)
    second = subprocess.run(SNAKEMAKE + args, cwd=work, env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-4000:]
    after = _outputs(work)
    for path, mtime in done.items():
        assert after[path] == mtime, f"{path} of a completed job was written again"
    assert len(after) > len(done)
    final = subprocess.run(SNAKEMAKE + args + ["-n"], cwd=work, env=ENV, capture_output=True, text=True,
                           timeout=60)
    assert "Nothing to be done" in final.stdout + final.stderr


# ---- no partial files -------------------------------------------------------------------------
WRITES = ("write_text", "write_bytes", "to_csv", "to_parquet", "savefig", "save", "savez", "savez_compressed",
          "dump", "write")


def _code(path: Path) -> str:
    """Python source of a script, or the code cells of a notebook (IPython magics dropped)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    src = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(ln for c in src for ln in c.splitlines() if not ln.lstrip().startswith(("%", "!")))


def _raw_writes(path: Path) -> list[str]:
    """Calls in a script that write a file by name outside runio's atomic helpers: open(.., 'w'),
    Path.write_text, DataFrame.to_csv(path), fig.savefig(path), np.save(path), torch.save(obj, path)...
    Writes into an object (a buffer, or the temporary file of runio.atomic_path) are allowed."""
    tree = ast.parse(_code(path))
    atomic_tmp = set()  # names bound by `with [runio.]atomic_path(...) as tmp`
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                c = item.context_expr
                fn = c.func if isinstance(c, ast.Call) else None
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
                if name == "atomic_path" and isinstance(item.optional_vars, ast.Name):
                    atomic_tmp.add(item.optional_vars.id)
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else "")
        first = node.args[0] if node.args else None
        first_is_tmp = isinstance(first, ast.Name) and first.id in atomic_tmp
        if name == "open":
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+") and not first_is_tmp:
                bad.append(f"{path.name}:{node.lineno}: open(..., {mode.value!r})")
        elif name in ("write_text", "write_bytes") and isinstance(f, ast.Attribute):
            if not (isinstance(f.value, ast.Name) and f.value.id == "runio"):
                bad.append(f"{path.name}:{node.lineno}: .{name}()")
        elif name in ("to_csv", "to_parquet", "savefig", "savez", "savez_compressed") and first is not None:
            if not first_is_tmp and not (isinstance(first, ast.Name) and first.id in ("buf", "f")):
                bad.append(f"{path.name}:{node.lineno}: .{name}({ast.unparse(first)})")
        elif name in ("save", "dump") and isinstance(f, ast.Attribute) and len(node.args) >= 2:
            target = node.args[1]
            if not (isinstance(target, ast.Name) and (target.id in atomic_tmp or target.id == "f")):
                bad.append(f"{path.name}:{node.lineno}: {ast.unparse(f)}(..., {ast.unparse(target)})")
    return bad


def test_scripts_write_only_through_atomic_helpers():
    """Every script, library module and notebook writes files through runio's atomic helpers
    (temporary file in the same folder, then rename): a crash never leaves a partial file
    under a final name, so Snakemake never mistakes one for a finished output."""
    files = (sorted((ROOT / "scripts").glob("*.py")) + sorted((ROOT / "src" / "adversary_dynamics").glob("*.py"))
             + sorted((ROOT / "notebooks").glob("*.ipynb")))
    assert any(f.parent.name == "scripts" for f in files)
    bad = [b for f in files for b in _raw_writes(f)]
    assert not bad, "non-atomic writes (a crash would leave a partial file): " + "; ".join(bad)


def test_static_check_catches_raw_writes(tmp_path):
    """The check above is not vacuous."""
    src = tmp_path / "bad.py"
    src.write_text("import torch, numpy as np\nfrom pathlib import Path\n"
                   "def f(df, fig, out, obj):\n"
                   "    open(out, 'w').write('x')\n    Path(out).write_text('x')\n    df.to_csv(out)\n"
                   "    fig.savefig(out)\n    np.savez(out, a=1)\n    torch.save(obj, out)\n"
                   "    with runio.atomic_path(out) as tmp:\n        torch.save(obj, tmp)\n")
    bad = _raw_writes(src)
    assert len(bad) == 6, bad


def _train_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train as train_script
    finally:
        sys.path.pop(0)
    return train_script


def _small_args(out_root: Path, seeds: str = "0") -> list[str]:
    """In-process runs: 40 training examples, 2 epochs (well under a second per seed)."""
    args = ["--out-root", str(out_root), *TRAIN]
    for k, v in (("--epochs", "2"), ("--checkpoints", "0,2"), ("--n-train", "40"), ("--seeds", seeds),
                 ("--batch-size", "8")):
        args[args.index(k) + 1] = v
    return args


def test_sigterm_after_last_minibatch_still_stops_train_script(tmp_path, monkeypatch):
    """A SIGTERM that arrives after the last minibatch of a seed (during its final evaluation)
    is not swallowed: the script stops with 143 before the next seed, and the rerun completes
    with the same results as an uninterrupted run."""
    from adversary_dynamics.learning import training

    train_script = _train_script()
    handler_before = signal.getsignal(signal.SIGTERM)
    assert train_script.main(_small_args(tmp_path / "ref", "0,1")) == 0
    real_eval, calls = training.evaluate, []

    def evaluate_then_sigterm(*a, **k):
        out = real_eval(*a, **k)
        calls.append(1)
        if len(calls) == 3:  # epochs 0, 1, 2 of seed 0: the last one
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(training, "evaluate", evaluate_then_sigterm)
    with pytest.raises(SystemExit) as exc:
        train_script.main(_small_args(tmp_path / "run", "0,1"))
    assert exc.value.code == 143
    assert torch.load(tmp_path / "run/seed~0/state.pt", weights_only=False)["status"] == "done"
    assert not (tmp_path / "run/seed~1").exists(), "the next seed started after SIGTERM"
    monkeypatch.setattr(training, "evaluate", real_eval)
    assert signal.getsignal(signal.SIGTERM) is handler_before, "the script left its SIGTERM handler installed"
    assert train_script.main(_small_args(tmp_path / "run", "0,1")) == 0
    for seed in (0, 1):
        for name in ("steps.csv", "epochs.csv", "status.json"):
            assert (tmp_path / f"run/seed~{seed}/{name}").read_bytes() == (
                tmp_path / f"ref/seed~{seed}/{name}").read_bytes(), (seed, name)


def test_train_script_crash_during_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """An exception while scripts/train.py writes its outputs (injected into torch.save and the
    text writer) leaves nothing under the final names; the rerun writes them all."""
    train_script = _train_script()
    args = _small_args(tmp_path)

    real_write = runio.write_bytes_atomic

    def crash_on_status(path, data):
        if Path(path).name == "status.json":
            with runio.atomic_path(path) as tmp:
                Path(tmp).write_bytes(data[: len(data) // 2])  # half written, then the crash
                raise OSError("disk full (injected)")
        return real_write(path, data)

    monkeypatch.setattr(runio, "write_bytes_atomic", crash_on_status)
    with pytest.raises(OSError, match="injected"):
        train_script.main(args)
    run = tmp_path / "seed~0"
    assert not (run / "status.json").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".status.json.tmp")], "temporary file left behind"
    assert (run / "steps.csv").exists()  # written before: complete
    monkeypatch.setattr(runio, "write_bytes_atomic", real_write)

    real_save = torch.save

    def crash_in_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise RuntimeError("killed mid-save (injected)")

    shutil.rmtree(run)
    monkeypatch.setattr(torch, "save", crash_in_save)
    with pytest.raises(RuntimeError, match="injected"):
        train_script.main(args)
    assert not (run / "state.pt").exists() and not (run / "checkpoints" / "epoch_0000.pt").exists()
    assert not [p for p in run.rglob(".*tmp*")], "temporary file left behind"
    monkeypatch.setattr(torch, "save", real_save)
    assert train_script.main(args) == 0
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


# ---- numerical trouble ------------------------------------------------------------------------
@pytest.mark.slow
def test_diverging_run_is_recorded_and_workflow_completes(tmp_path):
    figure = (ROOT / "notebooks" / "ext_training_convergence.ipynb").exists()
    work = _workdir(tmp_path, name="blowup", scales=[1000.0], seeds=[0], **{"train.lr": 10.0})
    # every table, and the figure of the training runs where its notebook exists
    targets = AGGREGATES + (["ext_training_convergence"] if figure else [])
    res = subprocess.run(SNAKEMAKE + targets + ["--cores", "2", "--configfile", "test.yaml"], cwd=work, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-5000:]
    (results,) = [p for p in (work / "results").iterdir() if p.name.split("-")[0] == "blowup"]  # name or name-digest

    def stage(name: str) -> Path:  # the stage's folder, as the run's results/<name>/stages.json names it
        return stage_folder(work, results.name, name)

    status = json.loads((stage("train") / "scale~1000/seed~0/status.json").read_text())
    assert status["status"] == "diverged" and status["diverged_at_step"] >= 1
    steps = pd.read_csv(stage("train") / "scale~1000/seed~0/steps.csv")
    bad = steps.loc[~(steps["adv_loss"].abs() < float("inf")) | ~(steps["clean_loss"].abs() < float("inf")), "step"]
    assert int(bad.iloc[0]) == status["diverged_at_step"]
    runs = pd.read_csv(stage("ext_training_convergence_tables") / "runs.csv")
    assert runs.loc[0, "status"] == "diverged" and int(runs.loc[0, "diverged_at_step"]) == status["diverged_at_step"]
    probe = json.loads((stage("probe") / "scale~1000/seed~0/status.json").read_text())
    assert probe["missing_checkpoints"] == [2] and probe["probed"] == [0]
    # the probe records the training run it probed (its own folder does not mirror the training's)
    train_run = json.loads((stage("probe") / "scale~1000/seed~0/provenance.json").read_text())["config"]["train_run"]
    assert (work / train_run).resolve() == (stage("train") / "scale~1000/seed~0").resolve(), train_run
    for t in ("ext_pga_convergence_tables/curves", "ext_pga_convergence_tables/final",
              "ext_landscape_statistics_tables/regularity"):
        assert len(pd.read_csv(stage(t.split("/")[0]) / f"{t.split('/')[1]}.csv")) > 0, t
    theory = sorted(stage("theory").glob("*.csv"))
    assert theory and all(len(pd.read_csv(t)) > 0 for t in theory)
    if figure:
        for ext in ("pdf", "png"):
            assert (work / "figures" / results.name / f"ext_training_convergence.{ext}").stat().st_size > 1000
