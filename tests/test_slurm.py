"""The workflow on a real single-node SLURM cluster, through `--profile profiles/slurm`.

tests/slurm/start.sh starts slurmctld + slurmd (+ munged if none answers) on this machine, with
one fake GPU (gres on /dev/null); tests/slurm/stop.sh ends exactly those daemons, by PID. SLURM
comes from Debian's packages (tests/slurm/install.sh installs them when absent). Two Snakemake
runs share the cluster, each in its own copy of the workflow (importing that copy's library):

* the tiny end-to-end configuration (tests/workflow/config.yaml), with the train and probe jobs
  asking for a GPU: every job ran as a SLURM job, all figures were built, only the GPU rules
  were granted the GPU and saw CUDA_VISIBLE_DEVICES, and the job groups of the profile turned
  its 14 jobs into 4 submissions;
* a training too long for its first attempt's 1-minute limit (runtime = attempt minutes, the
  shape of the estimators in common.smk): SLURM kills it at the limit (SIGTERM, then SIGKILL),
  the script writes its resume state on SIGTERM, Snakemake reports the failure and resubmits
  with 2 minutes and twice the memory, and the second attempt resumes at exactly the step the
  first one stopped at. The test ends that run there (SIGINT: Snakemake cancels its jobs).

The test's cluster does not depend on the machine's own SLURM configuration: every command,
also `srun` inside the jobs (from which the executor plugin removes SLURM_CONF), reads the test
cluster's slurm.conf (tests/slurm/start.sh). To prove it, a decoy /etc/slurm/slurm.conf naming
an unreachable controller is put in place for the test's duration when the machine has none (and
removed after; a real one is left alone and must not matter either). When a check fails, the
message ends with the tails of the failing jobs' own logs (SLURM job logs and rule logs).

Needs root; skipped (with the reason) without SLURM and the means to install it, unless CI=true,
where it must run. About 8 minutes (2 CPUs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_copy import ROOT as REPO, copy_workflow

pytestmark = pytest.mark.slow

HERE = REPO / "tests" / "slurm"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DAEMONS = ("munge", "unmunge", "munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")
# the local test cluster's settings beyond profiles/slurm: no accounts, no accounting daemon
# (squeue for status, MinJobAge=3600 in slurm.conf), quick first status check, the node's CPUs
CLUSTER_ARGS = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "5",
    "--cores", str(min(4, os.cpu_count() or 1)),
]
# seconds for the tiny configuration through SLURM (23 jobs in 6 submissions: about 7 minutes on
# 2 CPUs, mostly Snakemake starting inside each job and the status-poll interval)
RUN_B_LIMIT = 840
ETC_CONF = Path("/etc/slurm/slurm.conf")
DECOY = """# DECOY written by tests/test_slurm.py for the test's duration (safe to delete): another cluster's
# configuration, as on a login node. The test cluster must never read it.
ClusterName=decoy
SlurmctldHost=decoy-controller(127.0.0.9)
SlurmctldPort=9
"""


@pytest.fixture(scope="module")
def decoy_etc_conf():
    """/etc/slurm/slurm.conf of another cluster while the test runs (only if the machine has none)."""
    if ETC_CONF.exists():
        yield False
        return
    made_dir = not ETC_CONF.parent.exists()
    ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
    ETC_CONF.write_text(DECOY)
    try:
        yield True
    finally:
        if ETC_CONF.exists() and ETC_CONF.read_text().startswith("# DECOY written by tests/test_slurm.py"):
            ETC_CONF.unlink()
        if made_dir:
            try:
                ETC_CONF.parent.rmdir()
            except OSError:
                pass


def _tails(*runs: Path, lines: int = 25, limit: int = 12) -> str:
    """The last lines of the jobs' own logs that report an error (SLURM job logs, rule logs), for
    assertion messages: a failure then shows the failing job's error, not only its state."""
    out = []
    for run in runs:
        logs = sorted((p for p in (run / "logs").rglob("*.log") if p.is_file()), key=lambda p: p.stat().st_mtime)
        for p in logs:
            text = p.read_text(errors="replace")
            if re.search(r"Traceback|Error|error:|FAILED|CANCELLED|Killed|slurmstepd", text):
                tail = "\n".join(text.splitlines()[-lines:])
                out.append(f"---- {p.relative_to(run)} (last {lines} lines) ----\n{tail}")
    return ("\n\nLogs of the failing jobs:\n" + "\n".join(out[-limit:])) if out else "\n(no job log reports an error)"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but the SLURM test cannot run: {reason}")
    pytest.skip(reason)


def _have_slurm() -> bool:
    return all(shutil.which(b) for b in DAEMONS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, decoy_etc_conf):
    """A running single-node cluster: its state folder and the environment to reach it."""
    if os.geteuid() != 0:
        _unavailable("needs root (starts slurmctld, slurmd and munged)")
    if not _have_slurm():
        if not shutil.which("apt-get"):
            _unavailable("SLURM is not installed and apt-get is unavailable")
        r = subprocess.run(["timeout", "-k", "10", "600", str(HERE / "install.sh")],
                           capture_output=True, text=True)
        if r.returncode != 0 or not _have_slurm():
            _unavailable(f"installing SLURM failed: {r.stderr[-2000:]}")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    state = tmp_path_factory.mktemp("slurm")
    r = subprocess.run(["timeout", "-k", "5", "90", str(HERE / "start.sh"), str(state)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        subprocess.run(["timeout", "-k", "5", "120", str(HERE / "stop.sh"), str(state)])
        pytest.fail(f"starting SLURM failed:\n{r.stdout}\n{r.stderr}")
    # what `source STATE/env` sets: the cluster's slurm.conf, and its srun first on the PATH
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"),
           "PATH": f"{state / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    assert (state / "bin" / "srun").is_file(), "start.sh wrote no srun wrapper"
    try:
        yield {"state": state, "env": env}
    finally:
        subprocess.run(["timeout", "-k", "5", "120", str(HERE / "stop.sh"), str(state)])


def _env(cwd: Path, env: dict) -> dict:
    """Jobs import the copy's library, not the editable install's: its code hash (part of the
    resume fingerprint) must not change under a running test when the checkout is edited."""
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd / "src"), env.get("PYTHONPATH")]))}


def _snakemake(cwd: Path, env: dict, log: Path, *args: str, limit: int) -> subprocess.Popen:
    cmd = ["timeout", "-k", "20", str(limit), "snakemake", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=_env(cwd, env), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _submitted(log_text: str) -> list[str]:
    """SLURM job ids in the order Snakemake submitted them."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", log_text)


def _job(env: dict, jobid: str) -> dict:
    """`scontrol show job` as a dict (finished jobs stay MinJobAge = 3600 s)."""
    out = subprocess.run(["timeout", "-k", "5", "30", "scontrol", "-o", "show", "job", jobid],
                         env=env, capture_output=True, text=True, check=True).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def _wait(proc: subprocess.Popen, seconds: float) -> int:
    try:
        return proc.wait(timeout=max(1.0, seconds))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def _mb(value: str) -> float:
    """scontrol's memory ('1500M', '2.93G') in MB."""
    return float(value[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[value[-1]]


def _submissions(cwd: Path, env: dict, *args: str) -> int:
    """SLURM jobs a dry run of the tiny configuration would submit: group jobs and lone jobs. All jobs are
    planned as if nothing existed (--forceall: the stage folders of a run in ``cwd`` are shared by any
    configuration that reads the same), and the figure publishing rules (<figure>, local rules: a copy
    into figures/) submit nothing."""
    out = subprocess.run(["timeout", "-k", "5", "120", "snakemake", "-n", "--forceall", "--profile", "profiles/slurm",
                          "--configfile=tests/workflow/config.yaml", "--config", "name=dryrun",
                          *CLUSTER_ARGS, *args], cwd=cwd, env=_env(cwd, env), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # a group job's header, or a job outside any group (its stage message, or "rule X:"), not
    # indented; the members of a group are indented under their header
    heads = re.findall(r"^(?:rule (?!all:)(\w+):|Job \d+: (?:\[[^\]]*\] [\w ]+ \((\w+)\))?|\[.*\] Group job )",
                       out.stdout, flags=re.M)
    local = {a or b for a, b in heads if (a or b) and (cwd / "notebooks" / f"{a or b}.ipynb").exists()}
    assert local, out.stdout[-3000:]  # the publishing rules were planned (and are not counted)
    return sum(1 for a, b in heads if not (a or b) or (a or b) not in local)


def _folder_of(run: Path, configfile: Path) -> str:
    """The results folder of a configuration file (common.smk: adversary_dynamics.pipeline.config.folder_name)."""
    from adversary_dynamics.pipeline.config import folder_name, merge_config, validate_config

    schema = run / "workflow/schemas/config.schema.yaml"
    base = run / "config/config.yaml"
    cfg = validate_config(merge_config(yaml.safe_load(base.read_text()), yaml.safe_load(configfile.read_text())),
                          schema, check_files=False)
    return folder_name(cfg, schema, base=base, committed=sorted(run.glob("config/*.yaml"))
                       + sorted(run.glob("tests/workflow/*.yaml")))


def _stage_key_of(run: Path, configfile: Path, stage: str) -> str:
    """The key of ``stage`` for a configuration file (common.smk: adversary_dynamics.pipeline.stages.resolve)."""
    from adversary_dynamics.pipeline import stages
    from adversary_dynamics.pipeline.config import load_schema, merge_config, validate_config

    schema = run / "workflow/schemas/config.schema.yaml"
    base = run / "config/config.yaml"
    cfg = validate_config(merge_config(yaml.safe_load(base.read_text()), yaml.safe_load(configfile.read_text())),
                          schema, check_files=False)
    return stages.resolve(cfg, schema=load_schema(schema), root=run, only={stage})[stage].key


def _planned_rules(cwd: Path, env: dict) -> set[str]:
    """The rules of the tiny configuration's jobs (a dry run's job statistics, all jobs planned as
    if nothing existed), but `all`."""
    out = subprocess.run(["timeout", "-k", "5", "120", "snakemake", "-n", "--forceall",
                          "--configfile=tests/workflow/config.yaml"],
                         cwd=cwd, env=_env(cwd, env), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    stats = out.stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return set(re.findall(r"^(\w+)\s+\d+\s*$", stats, flags=re.M)) - {"all", "job"}


def test_profile_groups_name_existing_rules():
    """Every rule the SLURM profile groups exists, and every light rule (tables, figure notebooks,
    claims) is in the `report` group: a renamed rule would otherwise silently become a SLURM job
    of its own."""
    prof = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    out = subprocess.run([sys.executable, "-m", "snakemake", "--list-rules", "--configfile=tests/workflow/config.yaml"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = {ln.strip() for ln in out.stdout.splitlines() if re.fullmatch(r"\w+", ln.strip())}
    groups = prof["groups"]
    assert set(groups) <= rules, f"the profile groups rules that do not exist: {sorted(set(groups) - rules)}"
    from adversary_dynamics.pipeline.stages import all_stages

    computes = {name for name, st in all_stages().items() if "device" in st.reads}  # runs a model: a job of its own
    assert "ext_step_rule_tables" in computes and "paper_fig2_escape_by_scale_tables" not in computes
    light = {r for r in rules if r == "claims" or (r.endswith("_tables") and r not in computes)
             or (r.endswith("_notebook") and (REPO / "notebooks" / f"{r[:-len('_notebook')]}.ipynb").exists())}
    assert len(light) >= 15, sorted(light)  # 6 tables stages (theory's and ext_step_rule's excepted: they run models) + 8 notebooks + claims
    assert {r for r in light if groups.get(r) != "report"} == set(), "light rules outside the report group"


def test_workflow_on_slurm(cluster, tmp_path):
    env = cluster["env"]
    started = time.time()

    # run A: a training longer than its first attempt's time limit (1 CPU, no GPU)
    run_a = copy_workflow(tmp_path / "resume")
    cfg = yaml.safe_load((REPO / "tests/workflow/config.yaml").read_text())
    cfg.update(name="slurm_resume", scales=[0.5], seeds=[0])
    cfg["dataset"]["n_train"] = None                         # all 1,438 digits: 23 steps an epoch
    cfg["model"]["width"] = 1024
    cfg["attack"]["steps"] = 10
    cfg["train"]["epochs"] = 10_000                          # far beyond the first attempt's minute
    (run_a / "resume.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    folder = _folder_of(run_a, run_a / "resume.yaml")  # slurm_resume-<hash8>: not a committed file
    assert folder.startswith("slurm_resume-"), folder
    key = _stage_key_of(run_a, run_a / "resume.yaml", "train")  # the training's folder: results/stages/train/<key>
    target = f"results/stages/train/{key}/scale~0.5/seed~0/status.json"
    train_log = run_a / f"logs/stages/train/{key}/scale~0.5.log"
    log_a, log_b = tmp_path / "resume.log", tmp_path / "tiny.log"
    run_b = copy_workflow(tmp_path / "tiny")
    procs = []
    try:
        procs.append(proc_a := _snakemake(
            run_a, env, log_a, target, "--profile", "profiles/slurm", "--configfile=resume.yaml",
            *CLUSTER_ARGS, "--set-resources", "train:runtime=attempt", limit=420))
        # run B: the tiny end-to-end configuration, train and probe asking for the (fake) GPU
        procs.append(proc_b := _snakemake(
            run_b, env, log_b, "--profile", "profiles/slurm", "--configfile=tests/workflow/config.yaml",
            *CLUSTER_ARGS, "--set-resources", "train:gpu=1", "probe:gpu=1", limit=RUN_B_LIMIT))

        # run A until its second attempt has started and printed where it resumed
        resumed_at = total = None
        deadline = time.time() + 360
        while time.time() < deadline and proc_a.poll() is None:
            if len(_submitted(log_a.read_text())) >= 2 and train_log.exists():
                bar = re.search(r"(\d+)/(\d+) \[", train_log.read_text(errors="replace"))
                if bar and int(bar.group(1)) > 0:  # the first attempt's log starts at 0
                    resumed_at, total = int(bar.group(1)), int(bar.group(2))
                    break
            time.sleep(2)
        if proc_a.poll() is None:
            proc_a.send_signal(signal.SIGINT)  # via `timeout` to Snakemake: it cancels its jobs
        _wait(proc_a, 90)
        text_a = log_a.read_text(errors="replace")
        ids_a = _submitted(text_a)
        jobs_a = [_job(env, i) for i in ids_a]

        rc_b = _wait(proc_b, RUN_B_LIMIT + 30 - (time.time() - started))
        text_b = log_b.read_text(errors="replace")
        ids_b = _submitted(text_b)
        jobs = {i: _job(env, i) for i in ids_b}
        print(f"\nSLURM test: both runs done after {time.time() - started:.0f} s")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    diag_a, diag_b = _tails(run_a), _tails(run_b)
    # ---- (c) a job killed at its time limit is reported, retried with more, and resumes ------
    assert len(jobs_a) >= 2, f"no retry was submitted:\n{text_a[-5000:]}{diag_a}"
    first, second = jobs_a[:2]
    assert first["JobState"] == "TIMEOUT" and first["Reason"] == "TimeLimit", f"{first}{diag_a}"
    assert first["TimeLimit"] == "00:01:00" and second["TimeLimit"] == "00:02:00", (first, second)
    m1, m2 = _mb(first["MinMemoryNode"]), _mb(second["MinMemoryNode"])
    assert abs(m2 - 2 * m1) <= 2, (m1, m2)
    assert "Error in group train" in text_a and "Trying to restart job" in text_a, text_a[-5000:] + diag_a
    # the script got SLURM's SIGTERM and wrote its state (show-failed-logs prints its log) ...
    term = re.search(r"SIGTERM: resume state written at epoch (\d+), batch (\d+)", text_a)
    assert term, f"the first attempt did not report a SIGTERM state:\n{text_a[-5000:]}{diag_a}"
    # ... and the second attempt started from exactly there
    assert resumed_at is not None, f"the second attempt did not resume:\n{text_a[-5000:]}{diag_a}"
    steps_per_epoch = total // cfg["train"]["epochs"]
    assert resumed_at == int(term.group(1)) * steps_per_epoch + int(term.group(2)), (resumed_at, term.group(0))

    # ---- (a) every job ran as a SLURM job; the profile's groups made fewer submissions -----
    timed_out = f" (timed out after {RUN_B_LIMIT} s)" if rc_b in (124, 137, -9) else f" (exit status {rc_b})"
    assert rc_b == 0, f"the tiny configuration failed on SLURM{timed_out}:\n{text_b[-6000:]}{diag_b}"
    assert all(j["JobState"] == "COMPLETED" for j in jobs.values()), f"{jobs}{diag_b}"
    grouped, ungrouped = _submissions(run_b, env), _submissions(run_b, env, "--groups", "none=none")
    assert len(ids_b) == grouped < ungrouped, (ids_b, grouped, ungrouped)
    for i in ids_b:
        assert list((run_b / "logs/slurm").rglob(f"{i}.log")), f"no SLURM log of job {i}"
    # every planned rule ran inside a SLURM job: its job line (the rules' stage messages,
    # "Job N: [tiny] <stage> (<rule>): ...", or "rule <rule>:") is in a SLURM job's log
    in_slurm = "\n".join(p.read_text(errors="replace") for p in (run_b / "logs/slurm").rglob("*.log"))
    rules_run = set(re.findall(r"^Job \d+: \[[^\]]+\] [\w ]+ \((\w+)\): |^\s*rule (\w+):", in_slurm, flags=re.M))
    rules_run = {a or b for a, b in rules_run}
    # the figure publishing rules (<figure>: three copies from the notebook stage's folder into figures/)
    # are local rules by design; everything that computes runs in a SLURM job
    planned = _planned_rules(run_b, env)
    publishing = {r for r in planned if (run_b / "notebooks" / f"{r}.ipynb").exists()}
    local_run = set(re.findall(r"^\s*localrule (\w+):", text_b, flags=re.M))
    assert local_run <= {"all"} | publishing, f"jobs ran on the submit host: {local_run - publishing}"
    assert {"train", "probe", "theory", "claims"} <= planned, planned
    assert {f"{f}_notebook" for f in publishing} <= planned, planned
    assert planned - publishing <= rules_run, \
        f"not run inside a SLURM job: {sorted(planned - publishing - rules_run)}{diag_b}"
    stages = json.loads((run_b / "results/tiny/stages.json").read_text())  # stage -> its key's folder
    prov = {p: json.loads(p.read_text()) for p in [*(run_b / stages["train"]["folder"]).glob("*/*/provenance.json"),
                                                   *(run_b / stages["probe"]["folder"]).glob("*/*/provenance.json")]}
    tiny = yaml.safe_load((REPO / "tests/workflow/config.yaml").read_text())
    assert len(prov) == 2 * len(tiny["scales"]) * len(tiny["seeds"]), sorted(map(str, prov))
    assert {p["slurm_job_id"] for p in prov.values()} <= set(ids_b), "a run's SLURM job id was not submitted"

    # ---- (b) all figures were built ------------------------------------------------------------
    figures = sorted(publishing)
    assert figures, planned
    for fig in figures:
        for ext in ("pdf", "png"):
            f = run_b / "figures/tiny" / f"{fig}.{ext}"
            assert f.is_file() and f.stat().st_size > 0, f
    assert (run_b / "figures/tiny/claims.md").is_file()

    # ---- (d) only the GPU rules were granted the GPU and saw CUDA_VISIBLE_DEVICES ------------
    by_comment = {j["Comment"]: j for j in jobs.values()}
    gpu_jobs = {c for c, j in by_comment.items() if "gpu" in j.get("TresPerJob", "")}
    assert gpu_jobs == {"rule_train_train", "rule_probe_probe"}, {c: j.get("TresPerJob") for c, j in by_comment.items()}
    for p, rec in prov.items():
        assert rec["cuda_visible_devices"] == "0", (p, rec["cuda_visible_devices"])
    others = [p for rec in stages.values() if (run_b / rec["folder"]).is_dir()
              for p in (run_b / rec["folder"]).rglob("*provenance.json")]
    assert len(others) > len(prov), others
    for p in others:  # every other job ran without a GPU
        rec = json.loads(p.read_text())
        if p not in prov and "cuda_visible_devices" in rec:
            assert rec["cuda_visible_devices"] is None, (p, rec["cuda_visible_devices"])
