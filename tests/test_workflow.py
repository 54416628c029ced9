"""The real workflow, end to end, on the tiny configuration (tests/workflow/config.yaml):
every rule runs, every registered figure's notebook is executed by papermill, every figure and
table appears (tables in their stage's folder, results/stages/<stage>/<key>/, as the run's
results/tiny/stages.json names it; figures computed in results/stages/<figure>/<key>/ and published
into figures/tiny/) and holds finite numbers; a second run has nothing to do; one figure alone plans
only its own jobs; the workflow lints clean.

The figures are not listed here: they are read from the workflow's registry (FIGURES of
workflow/rules/common.smk, from adversary_dynamics.pipeline.stages; see figure_registry.py)."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pandas as pd
import pytest

from figure_registry import registered_figures, rule_names
from workflow_copy import ROOT, copy_workflow, stage_folder

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = "tests/workflow/config.yaml"
# the figures of the plan (paper's three, the five extensions); claims is a report, not a figure
PLANNED = ["paper_fig1_landscapes", "paper_fig2_escape_by_scale", "paper_fig3_escape_during_training",
           "ext_pga_convergence", "ext_training_convergence", "ext_landscape_statistics", "ext_theory", "ext_step_rule"]
ALONE = "paper_fig2_escape_by_scale"  # the figure rebuilt alone (issue 11)
# tables of the three data extensions whose NaN entries are by design (checked for inf only); the
# tables of the paper figures and of ext_theory (inf/NaN by design in places, docs/tables.md) are
# checked for numbers here and for their values by their owners' tests
# extension figures whose tables hold inf/NaN by design (ext_step_rule: escape tables as Fig. 2's, censored runs
# +inf, flat runs NaN; tests/test_step_rule.py checks its values), checked for numbers like the paper figures
OWN_VALUES = {"ext_theory", "ext_step_rule"}
NAN_BY_DESIGN = {("ext_landscape_statistics", "grid"), ("ext_training_convergence", "runs"),
                 ("ext_landscape_statistics", "regularity")}


def run(args, cwd, timeout=900):
    return subprocess.run(SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def jobs_planned(text: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: rule -> count."""
    m = re.search(r"Job stats:\n(.*?)\n\n", text + "\n\n", re.S)
    assert m, text[-2000:]
    stats = {}
    for line in m.group(1).splitlines()[2:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            stats[parts[0]] = int(parts[1])
    return stats


@pytest.fixture(scope="module")
def figures():
    """figure -> {"tables": {key: path}, "provenance": path, "stage": its tables stage} of the tiny
    configuration."""
    figs = registered_figures(TINY)
    assert figs, "no figure registered"
    return figs


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("wf"))
    res = run(["--cores", "2", "--configfile", TINY], work)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return work


def test_every_planned_figure_is_registered(figures):
    missing = [f for f in PLANNED if f not in figures]
    assert not missing, f"not registered (register_figure in workflow/rules/*.smk): {missing}"
    rules = set(rule_names(TINY))
    assert set(figures) <= rules and "claims" in rules


@pytest.mark.slow
def test_every_figure_and_table_is_built(tiny_run, figures):
    for fig, spec in figures.items():
        for ext in ("pdf", "png"):
            p = tiny_run / "figures" / "tiny" / f"{fig}.{ext}"
            assert p.exists() and p.stat().st_size > 1000, p
            # published: a copy of what the figure's notebook stage computed
            computed = stage_folder(tiny_run, "tiny", fig) / f"{fig}.{ext}"
            assert computed.read_bytes() == p.read_bytes(), (computed, p)
        assert (tiny_run / "figures" / "tiny" / f"{fig}.provenance.json").exists(), fig
        key = stage_folder(tiny_run, "tiny", fig).name
        nb = tiny_run / "logs" / "stages" / fig / key / f"{fig}.ipynb"
        assert nb.exists(), f"papermill did not write the executed notebook {nb}"
        tables = stage_folder(tiny_run, "tiny", spec["stage"])
        assert tiny_run / spec["provenance"] == tables / "provenance.json", (spec["provenance"], tables)
        assert (tiny_run / spec["provenance"]).exists(), spec["provenance"]
        for key, path in spec["tables"].items():
            assert tiny_run / path == tables / f"{key}.csv", (fig, path)
            df = pd.read_csv(tiny_run / path)
            assert len(df) > 0, path
            num = df.select_dtypes("number")
            if not fig.startswith("ext_") or fig in OWN_VALUES:  # others' tables: their own tests check values
                assert num.notna().any().all(), f"{path}: a numeric column is all NaN"
                continue
            assert not num.isin([math.inf, -math.inf]).any().any(), f"{path}: inf"
            if (fig, key) in NAN_BY_DESIGN:  # NaN outside the disk; optional/undefined entries empty
                continue
            if (fig, key) == ("ext_training_convergence", "epochs"):
                # epoch 0 (initialisation) has no training steps to average
                assert df.loc[df["epoch"] == 0, "train_adv_loss"].isna().all()
                num = num[df["epoch"] > 0]
            assert num.notna().all().all(), f"{path}: NaN"
    for ext in ("md", "json"):
        assert (tiny_run / "figures" / "tiny" / f"claims.{ext}").stat().st_size > 0


@pytest.mark.slow
def test_second_run_has_nothing_to_do(tiny_run):
    res = run(["-n", "--cores", "2", "--configfile", TINY], tiny_run)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr


@pytest.mark.slow
def test_one_figure_alone(tiny_run, figures):
    """Removing one figure rebuilds just that figure's rule."""
    if ALONE not in figures:
        pytest.skip(f"{ALONE} is not registered yet")
    (tiny_run / "figures" / "tiny" / f"{ALONE}.pdf").unlink()
    res = run(["-n", ALONE, "--cores", "2", "--configfile", TINY], tiny_run)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert jobs_planned(out) == {ALONE: 1}, out[-3000:]
    # and the real run publishes it again from the figure stage's folder (nothing is recomputed), so
    # the later tests of this module (the report) find every figure
    res = run([ALONE, "--cores", "2", "--configfile", TINY], tiny_run)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    published = tiny_run / "figures" / "tiny" / f"{ALONE}.pdf"
    assert published.read_bytes() == (stage_folder(tiny_run, "tiny", ALONE) / f"{ALONE}.pdf").read_bytes()


def test_one_figure_from_scratch_plans_only_what_it_needs(tmp_path, figures):
    """`snakemake paper_fig2_escape_by_scale` in a fresh clone plans its figure rule and no job of
    the extensions (training, probes, theory, their tables) nor the other figures."""
    if ALONE not in figures:
        pytest.skip(f"{ALONE} is not registered yet")
    work = copy_workflow(tmp_path)
    res = run(["-n", ALONE, "--cores", "2", "--configfile", TINY], work, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    planned = jobs_planned(out)
    assert planned.get(ALONE) == 1, planned
    assert planned.get(f"{ALONE}_notebook") == 1 and planned.get(figures[ALONE]["stage"]) == 1, planned
    foreign = {"train", "probe", "theory", "claims", "paper_fig3_train", *figures,
               *(spec["stage"] for spec in figures.values()), *(f"{f}_notebook" for f in figures)}
    foreign -= {ALONE, f"{ALONE}_notebook", figures[ALONE]["stage"]}
    assert not foreign & set(planned), planned


def test_lint_is_clean():
    res = subprocess.run(SNAKEMAKE + ["--lint", "--configfile", TINY], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out, out[-4000:]


def test_dry_run_default_config():
    res = subprocess.run(SNAKEMAKE + ["-n", "--cores", "8", "--directory", str(ROOT), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]


@pytest.mark.slow
def test_report_has_every_figure(tiny_run, figures):
    import zipfile

    res = run(["--report", "report.zip", "--configfile", TINY], tiny_run)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    # (issue 19) no "coroutine ... was never awaited" (16 of them once: the light rules' input.size_mb)
    assert "never awaited" not in res.stdout + res.stderr and "Warning" not in res.stdout + res.stderr, res.stderr
    zf = zipfile.ZipFile(tiny_run / "report.zip")
    names = zf.namelist()
    for fig in figures:  # (issue 19) the PDF and the provenance of each figure too
        for ext in ("png", "pdf", "provenance.json"):
            assert any(n.endswith(f"/{fig}.{ext}") for n in names), (fig, ext, names)
    for claims in ("claims.md", "claims.json"):
        assert any(n.endswith(f"/{claims}") for n in names), (claims, names)
    html = zf.read(next(n for n in names if n.endswith("report.html"))).decode()
    for fig in figures:  # the introduction describes each of the figures
        assert f"{fig}</tt> \\u2014" in html or f"{fig}</tt> \u2014" in html, fig
    assert "two-layer networks," not in html  # the old introduction (two-layer nets only)


@pytest.mark.slow
def test_claims_of_the_tiny_run_are_complete_and_valid(tiny_run):
    """The claims report the pipeline wrote (CI has no results/default, so this is where the claims
    code meets tables written by the real rules): schema-valid, every statement present once, each
    verdict other than inconclusive backed by runs, a finite value and an ordered interval, and the
    Markdown names them all."""
    import json

    import jsonschema

    from adversary_dynamics import claims

    doc = json.loads((tiny_run / "figures" / "tiny" / "claims.json").read_text())
    jsonschema.validate(doc, claims.CLAIMS_JSON_SCHEMA)
    ids = [c["id"] for c in doc["claims"]]
    assert ids == [f"T{i}" for i in range(1, 8)] + [f"E{i}" for i in range(1, 5)]
    md = (tiny_run / "figures" / "tiny" / "claims.md").read_text()
    for c in doc["claims"]:
        assert c["id"] in md
        if c["verdict"] == claims.INCONCLUSIVE:
            continue
        lo, hi = c["interval"]
        assert c["runs"]["count"] > 0 and math.isfinite(c["value"]), c["id"]
        assert lo <= hi, c["id"]


@pytest.mark.slow
def test_a_forced_rerun_of_fig3_training_keeps_its_checkpoints(tiny_run):
    """Snakemake deletes a job's outputs before rerunning it; paper Fig. 3's training declares its
    checkpoints as outputs and its resume state says "done", so the rerun must restore them (it
    failed with MissingOutputException before). Runs last: it rebuilds Fig. 3 downstream."""
    res = run(["--cores", "2", "--configfile", TINY, "--forcerun", "paper_fig3_train",
               "paper_fig3_escape_during_training"], tiny_run)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert "MissingOutputException" not in res.stdout + res.stderr
    again = run(["--cores", "2", "--configfile", TINY, "-n"], tiny_run)
    assert "Nothing to be done" in again.stdout + again.stderr


# ---- issue 19: the report --------------------------------------------------------------------
def test_report_introduction_describes_every_figure_and_the_claims(figures):
    """workflow/report/workflow.rst (the report's first page) names each registered figure with a
    description, the claims report and the provenance files; not two-layer nets only."""
    text = (ROOT / "workflow" / "report" / "workflow.rst").read_text()
    for fig in figures:
        assert re.search(rf"``{fig}`` — \S", text), fig
    assert "claims.md" in text and "T1–T7" in text and "claims.json" in text
    assert "provenance.json" in text and "PDF" in text


def test_every_figure_reports_its_pdf_png_and_provenance_and_claims_both_files():
    """The report() flags of figures.smk and claims.smk: what `snakemake --report` includes."""
    figs = (ROOT / "workflow" / "rules" / "figures.smk").read_text()
    for key, category in (("pdf", "Figures"), ("png", "Figures"), ("provenance", "Provenance")):
        m = re.search(rf"\n\s+{key}=report\((.*?)\n\s+\),", figs, re.S)
        assert m and f'category="{category}"' in m.group(1), key
        caption = re.search(r'caption=f?"\.\./report/([^"]+)"', m.group(1)).group(1)
        assert caption in ("{fig}.rst", "{_fig}.rst") or (ROOT / "workflow" / "report" / caption).exists(), caption
    claims = (ROOT / "workflow" / "rules" / "claims.smk").read_text()
    for key in ("md", "json"):
        m = re.search(rf"\n\s+{key}=report\((.*?)\n\s+\),", claims, re.S)
        assert m and 'category="Claims"' in m.group(1), key
        caption = re.search(r'caption="\.\./report/([^"]+)"', m.group(1)).group(1)
        assert (ROOT / "workflow" / "report" / caption).exists(), caption


def test_input_size_inside_a_running_event_loop_leaves_no_unawaited_coroutine(tmp_path):
    """`snakemake --report` evaluates resources inside an event loop, where Snakemake's
    input.size_mb raises NestedCoroutineError and leaves its coroutine unawaited (a
    RuntimeWarning per job); runio.input_size_mb reads the sizes directly there."""
    import asyncio
    import gc
    import warnings

    from snakemake.exceptions import NestedCoroutineError
    from snakemake.io import IOFile
    from snakemake.iocontainers import InputFiles

    from adversary_dynamics.storage.runio import input_size_mb

    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * 2 ** 20)
    b.write_bytes(b"x" * 2 ** 19)
    files = InputFiles([IOFile(str(a)), IOFile(str(b))])


    class Own(list):
        size_mb = 42.0

    assert input_size_mb(Own()) == 42.0  # outside a loop: Snakemake's own input.size_mb

    async def inside():
        return input_size_mb(files)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(inside()) == pytest.approx(1.5)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)], [str(w.message) for w in caught]

    async def missing():
        return input_size_mb(InputFiles([IOFile(str(tmp_path / "not-yet"))]))

    with pytest.raises(NestedCoroutineError):  # Snakemake defers the value, as before
        asyncio.run(missing())
