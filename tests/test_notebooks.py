"""The figure notebooks: papermill contract with workflow/rules/figures.smk, clean committed
notebooks, and a smoke run of every notebook's code on tiny synthetic tables (including a
diverged training run and NaN/inf values), executed in-process (no kernel, a few seconds)."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES_SMK = ROOT / "workflow" / "rules" / "figures.smk"
COMMON_SMK = ROOT / "workflow" / "rules" / "common.smk"

# nb_params (common.smk) adds '-p out_<output key>' for the rule's outputs (pdf, png) and '-p config_name'
EXTRA_PARAMS = {"out_pdf", "out_png", "config_name"}


def figure_tables() -> dict[str, dict[str, str]]:
    """FIGURE_TABLES of figures.smk (figure -> {parameter: table path}), parsed from its text."""
    text = FIGURES_SMK.read_text(encoding="utf-8")
    start = text.index("FIGURE_TABLES = {")
    depth, end = 0, None
    for i in range(text.index("{", start), len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            end = i + 1
            break
    tree = ast.parse(text[start:end])
    out = {}
    for k, v in zip(tree.body[0].value.keys, tree.body[0].value.values):
        out[ast.literal_eval(k)] = {
            ast.literal_eval(kk): "".join(p.value for p in vv.values if isinstance(p, ast.Constant))
            for kk, vv in zip(v.keys, v.values)
        }
    return out


FIGS = figure_tables()


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


def test_figures_smk_parsed_and_nb_params_contract():
    assert set(FIGS) == {"ext_pga_convergence", "ext_training_convergence", "ext_landscape_statistics", "ext_theory"}
    assert all(FIGS.values())
    # the extra parameters hard-coded above are what nb_params and the rule's outputs produce
    common = COMMON_SMK.read_text(encoding="utf-8")
    assert '-p out_{k}' in common and "-p config_name" in common
    smk = FIGURES_SMK.read_text(encoding="utf-8")
    assert re.search(r"^\s*pdf=figure\(", smk, re.M) and re.search(r"^\s*png=report\(", smk, re.M)


def test_one_notebook_per_figure():
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == set(FIGS)


@pytest.mark.parametrize("fig", sorted(FIGS))
def test_parameters_cell_defines_every_workflow_parameter(fig):
    nb = load(fig)
    params = defaults(nb)
    missing = (set(FIGS[fig]) | EXTRA_PARAMS) - set(params)
    assert not missing, f"{fig}: parameters cell lacks {sorted(missing)}"
    # defaults run by hand from the repository root: the default configuration's tables and figures
    for key, path in FIGS[fig].items():
        assert params[key] == "results/default/tables/" + path.rsplit("/", 1)[-1]
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
                                     conv, 0.4, 0.6, 1.0))
    t["final"] = pd.DataFrame(rows, columns=["scale", "seed", "checkpoint", "input", "restart", "converged",
                                             "iterations", "on_sphere", "local_max", "initial_loss", "final_loss",
                                             "norm_ratio"])
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
    reg = [(s, k, c, i, 1 + int(s * c), 1e-4 * s**3 * (c + 1), math.nan if i == 1 else 0.2 * s)
           for s in scales for k in seeds for c in cks for i in range(3)]
    t["regularity"] = pd.DataFrame(reg, columns=["scale", "seed", "checkpoint", "input", "distinct_maxima",
                                                 "loss_spread", "nonlinearity"])
    theory = [(d, m, s, k, k != 0 or s != 2.0, 30 + int(10 * s) + k if (k != 0 or s != 2.0) else 100, True,
               k % 2 == 0, 1.0, 0.4, 0.6)
              for d in (10, 20, 40) for m in (8, 16) for s in scales for k in range(4)]
    t["theory"] = pd.DataFrame(theory, columns=["d", "m", "scale", "trial", "converged", "iterations", "on_sphere",
                                                "local_max", "norm_ratio", "initial_loss", "final_loss"])
    paths = {}
    for k, df in t.items():
        paths[k] = folder / f"{k}.csv"
        df.to_csv(paths[k], index=False)
    return paths


@pytest.mark.parametrize("fig", sorted(FIGS))
def test_notebook_runs_on_synthetic_tables(fig, tmp_path):
    """Every code cell, with the parameters replaced as papermill would, on tiny tables."""
    import matplotlib

    matplotlib.use("Agg")
    paths = _tables(tmp_path)
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
