"""The figure notebooks: papermill contract with the figure registry (FIGURES and figure_tables in
workflow/rules/common.smk, two rules per figure made by figures.smk), clean committed notebooks, and a
smoke run of the extension notebooks' code on tiny synthetic tables (including a diverged
training run and NaN/inf values), executed in-process (no kernel, a few seconds)."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from figure_registry import registered_figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES_SMK = ROOT / "workflow" / "rules" / "figures.smk"
COMMON_SMK = ROOT / "workflow" / "rules" / "common.smk"

# nb_params (common.smk) adds '-p out_<output key>' for the rule's outputs (pdf, png) and '-p config_name'
EXTRA_PARAMS = {"out_pdf", "out_png", "config_name"}

# figure -> {parameter: table path} of the default configuration, as Snakemake registers them
REGISTRY = registered_figures()
FIGS = {fig: spec["tables"] for fig, spec in REGISTRY.items()}
# the extension figures smoke-run below on the synthetic tables of _tables() (ext_theory's notebook
# and its smoke run belong to tests/test_claims.py)
EXTENSIONS = ["ext_pga_convergence", "ext_training_convergence", "ext_landscape_statistics"]


def load(fig: str) -> dict:
    return json.loads((NOTEBOOKS / f"{fig}.ipynb").read_text(encoding="utf-8"))


def parameters_cell(nb: dict) -> dict:
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged 'parameters'"
    assert cells[0]["cell_type"] == "code"
    return cells[0]


def defaults(nb: dict) -> dict[str, object]:
    """Names assigned in the parameters cell -> their literal default values."""
    tree = ast.parse("".join(parameters_cell(nb)["source"]))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = ast.literal_eval(node.value)
    return out


def test_registry_and_nb_params_contract():
    assert {*EXTENSIONS, "ext_theory"} <= set(FIGS), sorted(FIGS)
    assert all(FIGS.values()), "a registered figure has no table"
    for fig, spec in REGISTRY.items():  # tables and provenance in the folder of the figure's tables stage
        stage = spec["stage"]
        assert stage == ("theory" if fig == "ext_theory" else f"{fig}_tables"), (fig, stage)
        folder = re.fullmatch(rf"results/stages/{stage}/([0-9a-f]{{12}})/provenance.json", spec["provenance"])
        assert folder, (fig, spec["provenance"])
        for key, path in spec["tables"].items():
            assert path == f"results/stages/{stage}/{folder.group(1)}/{key}.csv", (fig, path)
    # the extra parameters hard-coded above are what nb_params and the rule's outputs produce
    common = COMMON_SMK.read_text(encoding="utf-8")
    nb_params = common[common.index("def nb_params("):]
    nb_params = nb_params[: nb_params.find("\ndef ", 1) if "\ndef " in nb_params[1:] else len(nb_params)]
    assert 'f"out_{k}"' in nb_params and "config_name" in nb_params, nb_params
    smk = FIGURES_SMK.read_text(encoding="utf-8")
    # the notebook rule's outputs are pdf and png (out_pdf, out_png) in the figure's stage folder; the
    # publishing rule copies them to figure(_fig, ...) in {FIGDIR}
    assert re.search(r'^\s*pdf=f"\{stage_dir\(_fig\)\}/', smk, re.M), smk
    assert re.search(r'^\s*png=f"\{stage_dir\(_fig\)\}/', smk, re.M), smk
    assert re.search(r'^\s*figure\(_fig, "pdf"\)', smk, re.M) and re.search(r'^\s*figure\(_fig, "png"\)', smk, re.M)


def test_one_notebook_per_figure():
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == set(FIGS)


@pytest.mark.parametrize("fig", sorted(FIGS))
def test_parameters_cell_defines_every_workflow_parameter(fig):
    nb = load(fig)
    params = defaults(nb)
    missing = (set(FIGS[fig]) | EXTRA_PARAMS) - set(params)
    assert not missing, f"{fig}: parameters cell lacks {sorted(missing)}"
    # defaults run by hand from the repository root: the default configuration's tables (their folder
    # is content-keyed, results/stages/<stage>/<key>/, so a default names the table's file) and figures
    for key, path in FIGS[fig].items():
        assert isinstance(params[key], str) and Path(params[key]).name == Path(path).name, (key, params[key], path)
    assert params["out_pdf"] == f"figures/{fig}.pdf" and params["out_png"] == f"figures/{fig}.png"
    assert params["config_name"] == "default"


@pytest.mark.parametrize("fig", sorted(FIGS))
def test_notebook_is_clean(fig):
    nb = load(fig)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert c.get("outputs", []) == [], "stored outputs"
            assert c.get("execution_count") is None, "stored execution count"
    assert "papermill" not in nb["metadata"], "an executed (papermill) notebook was committed"


# ---- smoke run on synthetic tables -----------------------------------------------------------
def _tables(folder: Path) -> dict[str, Path]:
    """Tiny tables with the columns of docs/tables.md: 3 scales, 2 seeds, checkpoints 0, 1, 3;
    one diverged training run (inf/NaN after its step), NaNs in the regularity measures."""
    rng = np.random.default_rng(0)
    scales, seeds, cks = [0.5, 1.0, 2.0], [0, 1], [0, 1, 3]
    T = 20
    t = {}
    rows = [(s, c, k, 1 - math.exp(-k / (3 * s)), 0.0, 1.0, 8) for s in scales for c in cks for k in range(T + 1)]
    cur = pd.DataFrame(rows, columns=["scale", "checkpoint", "step", "median", "q25", "q75", "n"])
    cur["q25"], cur["q75"] = cur["median"] * 0.9, np.minimum(cur["median"] * 1.1, 1)
    t["curves"] = cur
    rows = []
    for s in scales:
        for k in seeds:
            for c in cks:
                for i in range(2):
                    for r in range(3):
                        conv = bool(rng.random() < 0.7)
                        rows.append((s, k, c, i, r, conv, int(rng.integers(1, T)) if conv else T, conv or s < 1,
                                     conv, conv and s == 2.0 and i == 1, 0.4, 0.6, 1.0))  # flat: dead input
    t["final"] = pd.DataFrame(rows, columns=["scale", "seed", "checkpoint", "input", "restart", "converged",
                                             "iterations", "on_sphere", "local_max", "flat", "initial_loss",
                                             "final_loss", "norm_ratio"])
    steps, epochs, runs = [], [], []
    for s in scales:
        for k in seeds:
            div = 7 if (s == 2.0 and k == 1) else None
            for step in range(1, 13):
                loss = 0.7 * math.exp(-step * s / 4)
                if div and step >= div:
                    loss = math.inf
                steps.append((s, k, step, (step - 1) // 4 + 1, loss, loss, loss / 0.7))
            for e in range(4):
                acc = math.nan if (div and 4 * e >= div) else 0.1 * e * s
                epochs.append((s, k, e, 4 * e, 0.5, acc, acc, 0.5, 0.6))
            hit = [st[2] for st in steps if st[0] == s and st[1] == k and st[6] <= 0.5]
            runs.append((s, k, "diverged" if div else "completed", div, hit[0] if hit and not div else None, 0.5, 12))
    t["steps"] = pd.DataFrame(steps, columns=["scale", "seed", "step", "epoch", "adv_loss", "clean_loss",
                                              "rel_adv_loss"])
    t["epochs"] = pd.DataFrame(epochs, columns=["scale", "seed", "epoch", "step", "train_adv_loss", "clean_test_acc",
                                                "robust_test_acc", "clean_test_loss", "robust_test_loss"])
    t["runs"] = pd.DataFrame(runs, columns=["scale", "seed", "status", "diverged_at_step", "steps_to_threshold",
                                            "threshold", "total_steps"]).astype(
        {"diverged_at_step": "Int64", "steps_to_threshold": "Int64"})
    g = np.linspace(-1, 1, 9)
    U, V = np.meshgrid(g, g)
    grid, circ, traj = [], [], []
    for s in scales:
        for c in cks:
            for i in range(2):
                L = np.where(U**2 + V**2 <= 1, 0.5 + 0.1 * s * U + 0.05 * V**2, np.nan)
                grid += [(s, c, i, u, v, lo) for u, v, lo in zip(U.ravel(), V.ravel(), L.ravel())]
                circ += [(s, c, i, a, 0.5 + 0.1 * s * math.cos(a)) for a in np.linspace(0, 2 * np.pi, 19)]
                traj += [(s, c, i, r, k, 0.1 * k, 0.02 * r) for r in range(3) for k in range(6)]
    t["grid"] = pd.DataFrame(grid, columns=["scale", "checkpoint", "input", "u", "v", "loss"])
    t["circle"] = pd.DataFrame(circ, columns=["scale", "checkpoint", "input", "angle", "loss"])
    t["traj"] = pd.DataFrame(traj, columns=["scale", "checkpoint", "input", "restart", "step", "u", "v"])
    # input 1 at the largest scale: every restart flat (distinct maxima NaN), half of them at input 2
    reg = [(s, k, c, i, math.nan if (s == 2.0 and i == 1) else 1 + int(s * c),
            (1.0 if i == 1 else 0.5 if i == 2 else 0.0) if s == 2.0 else 0.0,
            1e-4 * s**3 * (c + 1), math.nan if i == 1 else 0.2 * s)
           for s in scales for k in seeds for c in cks for i in range(3)]
    t["regularity"] = pd.DataFrame(reg, columns=["scale", "seed", "checkpoint", "input", "distinct_maxima",
                                                 "flat_fraction", "loss_spread", "nonlinearity"])
    paths = {}
    for k, df in t.items():
        paths[k] = folder / f"{k}.csv"
        df.to_csv(paths[k], index=False)
    return paths


@pytest.mark.parametrize("fig", EXTENSIONS)
def test_notebook_runs_on_synthetic_tables(fig, tmp_path):
    """Every code cell, with the parameters replaced as papermill would, on tiny tables."""
    import matplotlib

    matplotlib.use("Agg")
    paths = _tables(tmp_path)
    assert set(FIGS[fig]) <= set(paths), f"{fig} reads tables the synthetic set lacks"
    params = {k: str(paths[k]) for k in FIGS[fig]}
    params |= {"out_pdf": str(tmp_path / "out" / f"{fig}.pdf"), "out_png": str(tmp_path / "out" / f"{fig}.png"),
               "config_name": "smoke"}
    ns: dict = {}
    for cell in load(fig)["cells"]:
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"<{fig}>", "exec"), ns)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            ns.update(params)  # papermill's injected cell
    for ext in ("pdf", "png"):
        out = tmp_path / "out" / f"{fig}.{ext}"
        assert out.stat().st_size > 1000
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("fig", EXTENSIONS)
def test_extension_is_not_numbered_like_the_paper(fig):
    """Extension figures say so in their titles (never 'Fig. k', the paper's numbering), label the
    input scale as the paper defines it, and draw bands and boxes with seaborn."""
    nb = load(fig)
    first = "".join(nb["cells"][0]["source"])
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert first.startswith("# Extension — "), first[:80]
    assert "Extension — " in code and not re.search(r"Fig\.\s*\d", first + code)
    assert "SCALE_AXIS_LABEL" in code or "E‖x‖₂" in code
    assert "import seaborn as sns" in code
    assert not re.search(r"P\.(line_band|summarise|dodge)\(", code), "hand-written band/interval helpers"


def test_scale_label_is_the_mean_l2_norm():
    from adversary_dynamics.figures import plotting as P

    assert P.SCALE_AXIS_LABEL == "input scale E‖x‖₂"
    pal, order = P.scale_hue([4.0, 1, 0.5, 16])
    assert order == ["0.5", "1", "4", "16"] and list(pal) == order
    assert pal["1"] == P.scale_palette([0.5, 1, 4, 16])[1.0]


# ---- the paper's escape figures (Figs. 2-3) on tiny hand-made probes, censored and flat runs included ---------
def _escape_tables(folder: Path, monkeypatch, fig: str) -> dict[str, Path]:
    """Tables of paper_fig2 / paper_fig3 written by escape.write_tables from runs of probe_escape whose descent
    and PGA are replaced by hand-made curves (tests/test_escape.py's _fake_probe): clean rises, a creep and a late
    mover (censored), and for Fig. 3 a cell where every run is flat."""
    import torch

    from adversary_dynamics.figures import escape
    from adversary_dynamics.storage import runio
    from test_escape import _fake_probe

    T, N = 60, 3
    t = torch.arange(T + 1, dtype=torch.float64)
    scales = [0.1, 10.0]
    if fig == "paper_fig2_escape_by_scale":
        ratios, cks = [0.01, 1.0], [0, 0]
    else:
        ratios, cks = [0.1, 0.1, 1.0, 1.0], [0, 10, 0, 10]
    runs = []
    for s in scales:
        L = torch.empty((T + 1, len(ratios), N), dtype=torch.float64)
        fo = torch.full((len(ratios), N), 0.5, dtype=torch.float64)
        for i, r in enumerate(ratios):
            for j in range(N):
                L[:, i, j] = 1 + (1 - torch.exp(-t / (1 + r * s * (j + 1) + cks[i])))
        L[:, -1, 1] = 1 + 1e-6 * t / T  # a creep: censored (no departure)
        L[:, -1, 2] = 1e-5 + 0.04 * torch.exp((t - T) / 3)  # a late mover: censored (both rules)
        if fig != "paper_fig2_escape_by_scale" and s == 10.0:
            L[:, -1, :] = 0.9  # every run flat: no rise, no gradient
            fo[-1, :] = 0.0
        pr, _ = _fake_probe(monkeypatch, L, fo)
        rows = escape.run_rows(pr, scale=s, ratios=ratios, eta=1.0, seed=0, checkpoint=cks,
                               labels=torch.zeros(N, dtype=torch.long))
        run = folder / f"run_{s:g}"
        runio.write_csv_atomic(run / "escape.csv", rows, escape.ESCAPE_COLUMNS)
        np.savez(run / "curves.npz", losses=L.reshape(T + 1, -1).t().numpy())
        if fig == "paper_fig2_escape_by_scale":
            pd.DataFrame([{"scale": s, "seed": 0, "input_normalization": v, "used": v == "none",
                           "loss_clean_mean": 1.0, "loss_clean_median": 1.0} for v in ("none", "scale")]).to_csv(
                run / "levels.csv", index=False)
        runs.append(run)
    return escape.write_tables(runs, out_dir=folder / "tables", points=20)


@pytest.mark.parametrize("fig", ["paper_fig2_escape_by_scale", "paper_fig3_escape_during_training"])
def test_paper_escape_notebook_runs_on_censored_runs(fig, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    paths = _escape_tables(tmp_path, monkeypatch, fig)
    assert set(FIGS[fig]) <= set(paths), f"{fig} reads tables the synthetic set lacks"
    esc = pd.read_csv(paths["escape"])
    n_cells = 2 if fig == "paper_fig2_escape_by_scale" else 1  # Fig. 3: the scale-10 cell is flat instead
    assert esc["censored"].sum() == 2 * n_cells and np.isinf(esc.loc[esc["censored"], "escape_time"]).all()
    assert esc["flat"].sum() == (0 if n_cells == 2 else 3)
    params = {k: str(paths[k]) for k in FIGS[fig]}
    params |= {"out_pdf": str(tmp_path / "out" / f"{fig}.pdf"), "out_png": str(tmp_path / "out" / f"{fig}.png"),
               "config_name": "smoke"}
    ns: dict = {}
    for cell in load(fig)["cells"]:
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), f"<{fig}>", "exec"), ns)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            ns.update(params)  # papermill's injected cell
    for ext in ("pdf", "png"):
        assert (tmp_path / "out" / f"{fig}.{ext}").stat().st_size > 1000
    summ = ns["summ"]
    # 2 of 3 runs censored in the last row: its median is censored, "> T" in the heat map, with the share
    assert np.isinf(summ["median_escape"]).sum() == n_cells and (summ["censored"] > 0.6).sum() == n_cells
    texts = [t.get_text() for ax in ns["fig"].axes for t in ax.texts]
    assert any(t.startswith("> T") and "67% cens." in t for t in texts), texts
