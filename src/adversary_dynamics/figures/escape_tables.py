"""The tables of paper Figs. 2-3 from the escape runs (escape.csv, curves.npz of ``scripts/escape.py run``):
escape.csv, curves.csv (thinned trajectories) and levels.csv, with the figure's provenance.

Apart from :mod:`adversary_dynamics.figures.escape` (the probes, which need torch) so that a tables job
imports numpy and pandas only (``scripts/escape.py tables``); ``escape.write_tables`` etc. remain
available there."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def thin_steps(T: int, *, dense: int = 20, points: int = 100) -> list[int]:
    """The steps kept in curves.csv: every step up to ``dense``, then ``points`` + 1 evenly spaced
    steps over 0 … T (T included), sorted and unique."""
    if not isinstance(T, int) or T < 0:
        raise ValueError(f"T must be an integer >= 0, got {T!r}")
    even = {round(k * T / points) for k in range(points + 1)} if T > 0 else {0}
    return sorted(set(range(min(dense, T) + 1)) | even)


def curve_table(rows: Sequence[dict[str, Any]], losses, *, dense: int = 20, points: int = 100):
    """Long table of thinned trajectories: one row per (escape.csv row, kept step) with columns
    scale, ratio, seed, input, checkpoint, step, loss. ``losses`` (n_rows, T+1) holds row i's
    trajectory ℓ_0 … ℓ_T. Returns a pandas DataFrame. Raises ValueError when the counts differ."""
    import numpy as np
    import pandas as pd

    L = np.asarray(losses)
    if L.ndim != 2 or L.shape[0] != len(rows):
        raise ValueError(f"losses must be (n_rows, T+1) with n_rows = {len(rows)}, got {L.shape}")
    steps = thin_steps(L.shape[1] - 1, dense=dense, points=points)
    keys = pd.DataFrame(rows)[["scale", "ratio", "seed", "input", "checkpoint"]]
    n, k = len(keys), len(steps)
    out = keys.loc[keys.index.repeat(k)].reset_index(drop=True)
    out["step"] = np.tile(np.asarray(steps), n)
    out["loss"] = L[:, steps].reshape(-1).astype(np.float64)
    return out


def write_tables(run_dirs: Sequence[str | Path], *, out_dir: str | Path, config: dict | None = None,
                 extra_runs: Sequence[str | Path] = (), dense: int = 20, points: int = 100) -> dict[str, Path]:
    """Aggregate escape runs (folders with escape.csv and curves.npz, written by scripts/escape.py
    run) into a figure's tables: ``out_dir``/escape.csv (all rows), curves.csv (:func:`curve_table`),
    levels.csv when the runs wrote one (concatenated), and provenance.json
    (:func:`adversary_dynamics.figures.tables.write_provenance`: configuration, code version, a record of
    every run in ``run_dirs`` and ``extra_runs``, e.g. the training runs Fig. 3 probed). Returns
    {table: path}. Raises FileNotFoundError for a missing run file and ValueError for runs whose
    trajectories do not match their rows."""
    import numpy as np
    import pandas as pd

    from adversary_dynamics.figures import tables as _tables

    out_dir = Path(out_dir)
    esc, curves, levels = [], [], []
    for d in map(Path, run_dirs):
        df = pd.read_csv(d / "escape.csv")
        with np.load(d / "curves.npz") as z:
            L = z["losses"]
        esc.append(df)
        curves.append(curve_table(df.to_dict("records"), L, dense=dense, points=points))
        if (d / "levels.csv").exists():
            levels.append(pd.read_csv(d / "levels.csv"))
    tabs = {"escape": pd.concat(esc, ignore_index=True), "curves": pd.concat(curves, ignore_index=True)}
    if levels:
        tabs["levels"] = pd.concat(levels, ignore_index=True)
    paths = {k: out_dir / f"{k}.csv" for k in tabs}
    _tables.write_tables(tabs, paths)
    paths["provenance"] = out_dir / "provenance.json"
    _tables.write_provenance(paths["provenance"], tables=[p for k, p in paths.items() if k != "provenance"],
                             runs=[*map(Path, run_dirs), *map(Path, extra_runs)], config=config)
    return paths
