"""adversary_dynamics.figures.tables (raw runs -> figure tables) against independent computations on
small synthetic run folders, and scripts/aggregate.py as its thin CLI (same tables, provenance)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adversary_dynamics.figures import tables

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import aggregate  # noqa: E402  (scripts/aggregate.py)


def _probe(d: Path, rng, *, T=6, inputs=3, restarts=2, checkpoints=(0, 2), landscape=True, short=None):
    d.mkdir(parents=True)
    rows, reg, curves, land = [], [], {}, {}
    for k in checkpoints:
        steps = short if (short and k == checkpoints[-1]) else T
        L = np.cumsum(rng.random((steps + 1, inputs, restarts)), axis=0).astype(np.float32)
        L[:, 0, 0] = 0.5  # a flat curve: no ascent, NaN normalised ascent
        curves[f"epoch_{k}"] = L
        for i in range(inputs):
            reg.append({"checkpoint": k, "input": i, "distinct_maxima": 1 + i, "loss_spread": 0.1 * i,
                        "nonlinearity": 0.2})
            for r in range(restarts):
                rows.append({"checkpoint": k, "input": i, "restart": r, "converged": r == 0, "iterations": T,
                             "on_sphere": True, "local_max": False, "initial_loss": float(L[0, i, r]),
                             "final_loss": float(L[-1, i, r]), "norm_ratio": 1.0})
        if landscape:
            c = np.linspace(-1, 1, 5)
            land[f"epoch_{k}/input_0/coords"] = c
            land[f"epoch_{k}/input_0/grid"] = np.arange(25.0).reshape(5, 5)
            land[f"epoch_{k}/input_0/angles"] = np.linspace(0, 2 * np.pi, 7)
            land[f"epoch_{k}/input_0/circle"] = np.arange(7.0)
            land[f"epoch_{k}/input_0/traj"] = rng.random((T + 1, restarts, 2))
    pd.DataFrame(rows).to_csv(d / "restarts.csv", index=False)
    pd.DataFrame(reg).to_csv(d / "regularity.csv", index=False)
    np.savez(d / "curves.npz", **curves)
    np.savez(d / "landscape.npz", **land)
    (d / "provenance.json").write_text(json.dumps({"wall_time_s": 1.5, "host": "h"}))
    return d


def _train(d: Path, losses, status="completed", diverged_at=None):
    d.mkdir(parents=True)
    pd.DataFrame({"step": np.arange(1, len(losses) + 1), "epoch": 1, "adv_loss": losses,
                  "clean_loss": losses}).to_csv(d / "steps.csv", index=False)
    pd.DataFrame({"epoch": [0, 1], "step": [0, len(losses)], "train_adv_loss": [math.nan, 1.0],
                  "clean_test_acc": 0.5, "robust_test_acc": 0.25, "clean_test_loss": 1.0,
                  "robust_test_loss": 2.0}).to_csv(d / "epochs.csv", index=False)
    (d / "status.json").write_text(json.dumps({"status": status, "diverged_at_step": diverged_at}))
    return d


def test_normalised_ascent_by_hand():
    L = np.array([[1.0, 1.0, 2.0], [2.0, 1.0, 1.0], [3.0, 1.0, 4.0]])  # columns: rising, flat, dip then rise
    A = tables.normalised_ascent(L)
    np.testing.assert_allclose(A[:, 0], [0, 0.5, 1])
    assert np.isnan(A[:, 1]).all()
    np.testing.assert_allclose(A[:, 2], [0, -0.5, 1])


def test_pga_convergence_tables_match_direct_quantiles(tmp_path):
    rng = np.random.default_rng(0)
    T = 6
    runs = [tables.Run(s, k, _probe(tmp_path / f"probe/scale~{s:g}/seed~{k}", rng, T=T, short=3 if s == 2 else None))
            for s in (1.0, 2.0) for k in (0, 1)]
    out = tables.pga_convergence_tables(runs, max_steps=T)
    cur, fin = out["curves"], out["final"]
    assert list(cur.columns) == ["scale", "checkpoint", "step", "median", "q25", "q75", "n"]
    assert len(cur) == 2 * 2 * (T + 1) and len(fin) == 4 * 2 * 3 * 2
    # independent: long table of (ℓ_t − ℓ_0)/(ℓ_T − ℓ_0) per curve, padded with the last value
    rows = []
    for s, k, d in runs:
        with np.load(d / "curves.npz") as z:
            for key in z.files:
                L = z[key].astype(np.float64)
                for i in range(L.shape[1]):
                    for r in range(L.shape[2]):
                        x = L[:, i, r]
                        if not x[-1] - x[0] > 1e-9:
                            continue
                        for t in range(T + 1):
                            v = (x[min(t, len(x) - 1)] - x[0]) / (x[-1] - x[0])
                            rows.append((s, int(key.split("_")[1]), t, v))
    ref = pd.DataFrame(rows, columns=["scale", "checkpoint", "step", "a"]).groupby(["scale", "checkpoint", "step"])["a"]
    got = cur.set_index(["scale", "checkpoint", "step"])
    np.testing.assert_allclose(got["median"], ref.median().loc[got.index], rtol=1e-9)
    np.testing.assert_allclose(got["q25"], ref.quantile(0.25).loc[got.index], rtol=1e-9)
    np.testing.assert_allclose(got["q75"], ref.quantile(0.75).loc[got.index], rtol=1e-9)
    assert (got["n"] == ref.count().loc[got.index]).all() and (got["n"] == 2 * 3 * 2 - 2).all()
    assert list(fin.columns[:2]) == ["scale", "seed"] and set(fin["seed"]) == {0, 1}


def test_training_convergence_tables(tmp_path):
    runs = [tables.Run(1.0, 0, _train(tmp_path / "a", [2.0, 1.5, 0.9, 0.5])),
            tables.Run(1.0, 1, _train(tmp_path / "b", [2.0, 1.9, 1.8, 1.7])),
            tables.Run(4.0, 0, _train(tmp_path / "c", [1.0, 0.4, math.inf, math.nan], "diverged", 3))]
    out = tables.training_convergence_tables(runs, threshold=0.5)
    ru = out["runs"].set_index(["scale", "seed"])
    assert ru.loc[(1.0, 0), "steps_to_threshold"] == 3  # relative losses 1, 0.75, 0.45, 0.25
    assert pd.isna(ru.loc[(1.0, 1), "steps_to_threshold"]) and ru.loc[(1.0, 1), "total_steps"] == 4
    assert ru.loc[(4.0, 0), "status"] == "diverged" and ru.loc[(4.0, 0), "diverged_at_step"] == 3
    assert ru.loc[(4.0, 0), "steps_to_threshold"] == 2
    st = out["steps"]
    np.testing.assert_allclose(st.loc[st["seed"] == 1, "rel_adv_loss"].iloc[:4], [1, 0.95, 0.9, 0.85])
    assert list(out["epochs"].columns[:2]) == ["scale", "seed"] and len(out["epochs"]) == 6
    with pytest.raises(ValueError, match="threshold"):
        tables.training_convergence_tables(runs, threshold=0)


def test_landscape_tables_and_empty_landscapes(tmp_path):
    rng = np.random.default_rng(1)
    runs = [tables.Run(2.0, 0, _probe(tmp_path / "p0", rng)),
            tables.Run(2.0, 1, _probe(tmp_path / "p1", rng, landscape=False))]
    out = tables.landscape_statistics_tables(runs)
    g = out["grid"]
    assert len(g) == 2 * 25 and set(g["checkpoint"]) == {0, 2}
    row = g[(g["checkpoint"] == 0) & (g["u"] == 0.5) & (g["v"] == -1.0)]
    assert row["loss"].item() == 3.0  # grid[v index 0, u index 3]: rows are v, columns are u
    assert len(out["traj"]) == 2 * 7 * 2 and len(out["circle"]) == 2 * 7
    assert len(out["regularity"]) == 2 * 2 * 3
    empty = tables.landscape_statistics_tables(runs[1:])
    assert list(empty["grid"].columns) == tables.COLUMNS["grid"] and len(empty["grid"]) == 0


def test_parse_runs_errors():
    assert tables.parse_runs(["0.5:1:a:b/c"]) == [tables.Run(0.5, 1, Path("a:b/c"))]
    with pytest.raises(ValueError, match="KEY:SEED:PATH"):
        tables.parse_runs(["0.5:results"])
    with pytest.raises(ValueError, match="number"):
        tables.parse_runs(["x:1:results"])


def test_cli_writes_the_library_tables_and_provenance(tmp_path):
    """The workflow's call (--params with the stage record) on the stage layout: the probe and training
    folders are keyed separately, so the training run comes from the probe's provenance (train_run)."""
    rng = np.random.default_rng(2)
    probe = _probe(tmp_path / "results/stages/probe/aaaaaaaaaaaa/scale~1/seed~0", rng)
    train = _train(tmp_path / "results/stages/train/bbbbbbbbbbbb/scale~1/seed~0", [1.0, 0.5])
    decoy = _train(tmp_path / "results/stages/train/aaaaaaaaaaaa/scale~1/seed~0", [1.0, 0.5])  # the old mapping's
    (train / "provenance.json").write_text(json.dumps({"host": "trainer"}))
    (decoy / "provenance.json").write_text(json.dumps({"host": "decoy"}))
    (probe / "provenance.json").write_text(json.dumps({"host": "prober", "config": {"train_run": str(train)}}))
    out = tmp_path / "tables"
    stage = {"stage": "ext_pga_convergence_tables", "key": "cccccccccccc"}
    args = ["ext_pga_convergence", "--runs", f"1:0:{probe}", "--params",
            json.dumps({"max_steps": 6, "_stage": stage}), "--out-curves",
            str(out / "curves.csv"), "--out-final", str(out / "final.csv"), "--out-provenance",
            str(out / "provenance.json")]
    assert aggregate.main(args) == 0
    lib = tables.pga_convergence_tables(tables.parse_runs([f"1:0:{probe}"]), max_steps=6)
    pd.testing.assert_frame_equal(pd.read_csv(out / "curves.csv"), lib["curves"], rtol=1e-8, check_dtype=False)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config"]["stage"] == "ext_pga_convergence_tables" and prov["config"]["key"] == "cccccccccccc"
    assert prov["config"]["arguments"]["max_steps"] == 6
    assert prov["figure_tables"] == [str(out / "curves.csv"), str(out / "final.csv")]
    assert [r["path"] for r in prov["runs"]] == [str(probe), str(train)]
    assert [r["host"] for r in prov["runs"]] == ["prober", "trainer"]
    # train_run at the top level of a provenance record counts too
    (probe / "provenance.json").write_text(json.dumps({"host": "prober", "train_run": str(train)}))
    tables.write_provenance(out / "p2.json", tables=[], runs=[probe])
    assert [r["path"] for r in json.loads((out / "p2.json").read_text())["runs"]] == [str(probe), str(train)]


def test_cli_provenance_old_layout_and_flags(tmp_path):
    """A probe run without train_run in its provenance (results/<name>/{probe,train}/, the old layout)
    maps to its training folder by its path; the old flags (--max-steps, --config-json) still work."""
    rng = np.random.default_rng(2)
    probe = _probe(tmp_path / "results/x/probe/scale~1/seed~0", rng)
    train = _train(tmp_path / "results/x/train/scale~1/seed~0", [1.0, 0.5])
    (train / "provenance.json").write_text(json.dumps({"host": "trainer"}))
    out = tmp_path / "tables"
    args = ["ext_pga_convergence", "--runs", f"1:0:{probe}", "--max-steps", "6", "--out-curves",
            str(out / "curves.csv"), "--out-final", str(out / "final.csv"), "--out-provenance",
            str(out / "provenance.json"), "--config-json", '{"name": "x"}']
    assert aggregate.main(args) == 0
    lib = tables.pga_convergence_tables(tables.parse_runs([f"1:0:{probe}"]), max_steps=6)
    pd.testing.assert_frame_equal(pd.read_csv(out / "curves.csv"), lib["curves"], rtol=1e-8, check_dtype=False)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config"] == {"name": "x"} and prov["figure_tables"] == [str(out / "curves.csv"), str(out / "final.csv")]
    assert [r["path"] for r in prov["runs"]] == [str(probe), str(train)] and prov["runs"][1]["host"] == "trainer"
    # a training run (no probe component, no train_run) brings nothing else
    tables.write_provenance(out / "p2.json", tables=[], runs=[train])
    assert [r["path"] for r in json.loads((out / "p2.json").read_text())["runs"]] == [str(train)]
    # the old subcommand names still work (fig1 == ext_pga_convergence)
    assert aggregate.get_args(["fig1"] + args[1:]).figure == "ext_pga_convergence"
