"""The tables of paper Figs. 2-3 from the escape runs (escape.csv, curves.npz of ``scripts/escape.py run``):
escape.csv, escape_replica.csv, curves.csv (thinned trajectories), survival.csv and levels.csv, with the
figure's provenance; the figures' per-group summary (:func:`escape_summary`).

Apart from :mod:`adversary_dynamics.figures.escape` (the probes, which need torch) so that a tables job
imports numpy and pandas only (``scripts/escape.py tables``); ``escape.write_tables`` etc. remain
available there."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

# the columns of escape.csv (helper "claims" reads these names)
ESCAPE_COLUMNS = [
    "scale", "ratio", "eps", "eta", "seed", "input", "label", "checkpoint", "loss_clean", "loss_ball",
    "loss_start", "loss_end", "loss_max", "loss_rise", "escaped", "flat", "escape_time", "relative_step",
    "relative_step_ball", "descent_converged", "descent_stationary", "descent_mapping", "descent_improving",
    "finite", "half_rise_step", "rise_first_order", "tail_share", "censored", "censored_rise", "censored_late",
]


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


SURVIVAL_GROUPS = ["scale", "ratio", "checkpoint"]


def survival_table(escape, *, T: int, by: Sequence[str] = tuple(SURVIVAL_GROUPS)):
    """survival.csv: per group of escape.csv rows (``by``, default scale, ratio, checkpoint), the
    share of runs not yet escaped by step t (:func:`~adversary_dynamics.stats.kaplan_meier`; with
    the common budget T it is the empirical share #{escape time > t}/n).

    ``escape``: a DataFrame with the columns of ``by`` and escape_time (+inf where censored), plus
    finite and flat when present; rows that are non-finite or flat (no escape time defined) are
    left out of a group. Returns a DataFrame with one row per (group, step) where step runs over 0,
    every observed escape time of the group and T: columns ``by``, step, survival (S(step) = share
    of the group's runs with escape time > step), escaped (runs escaped by step), runs (the group's
    runs), censored (its runs censored at T, i.e. survival at T = censored / runs). A group without
    runs gives no rows. Raises ValueError for T < 0, an escape time above T, or missing columns.
    """
    import numpy as np
    import pandas as pd

    from adversary_dynamics.stats import kaplan_meier

    if not isinstance(T, (int, np.integer)) or T < 0:
        raise ValueError(f"T must be an integer >= 0, got {T!r}")
    by = list(by)
    missing = [c for c in [*by, "escape_time"] if c not in escape]
    if missing:
        raise ValueError(f"escape table lacks the columns {missing}")
    df = escape
    keep = np.ones(len(df), dtype=bool)
    for col in ("finite", "flat"):
        if col in df:
            v = df[col].astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()
            keep &= v if col == "finite" else ~v
    df = df[keep]
    t_all = pd.to_numeric(df["escape_time"], errors="coerce").to_numpy(float)
    if np.isfinite(t_all).any() and np.nanmax(np.where(np.isfinite(t_all), t_all, -np.inf)) > T:
        raise ValueError(f"an observed escape time exceeds the budget T = {T}")
    rows = []
    for key, idx in df.groupby(by, sort=True).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        t = t_all[idx]
        cens = ~np.isfinite(t)  # +inf (> T); NaN rows were left out above as flat / non-finite
        km = kaplan_meier(np.where(cens, np.inf, t), cens)
        n = len(t)
        steps = sorted({0, int(T), *(int(v) for v in km["time"])})
        for st in steps:
            j = np.searchsorted(km["time"], st, side="right")
            surv = float(km["survival"][j - 1]) if j > 0 else 1.0
            rows.append({**dict(zip(by, key)), "step": st, "survival": surv,
                         "escaped": int((~cens & (t <= st)).sum()), "runs": n, "censored": int(cens.sum())})
    return pd.DataFrame(rows, columns=[*by, "step", "survival", "escaped", "runs", "censored"])


def _bools(col) -> "Any":
    import numpy as np

    if getattr(col, "dtype", None) == bool:
        return col.to_numpy()
    return col.astype(str).str.strip().str.lower().isin(["true", "1", "1.0"]).to_numpy(dtype=bool)


def escape_summary(escape, by: Sequence[str]):
    """The figures' per-group summary of escape.csv rows (Figs. 2(c), 3(b, c) heat maps).

    ``escape``: a DataFrame with the columns of ``by``, escape_time, escaped and flat (censored,
    censored_rise, censored_late where present; a table without ``censored`` takes every finite
    run that neither escaped nor is flat as censored). Per group: runs; flat (share of runs on a
    flat landscape); censored, censored_rise, censored_late (shares among the non-flat runs);
    median_escape = the median escape time over the non-flat runs with censored runs at +inf
    (+inf, i.e. "> T", when the median is censored; pandas' median, the mean of the two middle
    values for an even count; NaN when every run is flat); relative_step and relative_step_ball
    (medians), loss_start, loss_end and descent_converged (means) where the table has them.
    Returns a DataFrame with one row per group."""
    import numpy as np
    import pandas as pd

    d = escape.copy()
    for c in ("escaped", "flat"):
        d[c] = _bools(d[c])
    d["censored"] = _bools(d["censored"]) if "censored" in d else (~d["escaped"] & ~d["flat"])
    for c in ("censored_rise", "censored_late"):
        d[c] = _bools(d[c]) if c in d else np.zeros(len(d), dtype=bool)
    t = pd.to_numeric(d["escape_time"], errors="coerce").where(d["escaped"], np.inf).where(~d["flat"])
    live = ~d["flat"]
    d = d.assign(t=t, c_all=d["censored"].where(live), c_a=d["censored_rise"].where(live),
                 c_b=d["censored_late"].where(live))
    for c in ("c_all", "c_a", "c_b"):
        d[c] = d[c].astype(float)
    aggs = dict(median_escape=("t", "median"), censored=("c_all", "mean"), censored_rise=("c_a", "mean"),
                censored_late=("c_b", "mean"), flat=("flat", "mean"), runs=("t", "size"))
    for c, how in (("relative_step", "median"), ("relative_step_ball", "median"), ("loss_start", "mean"),
                   ("loss_end", "mean"), ("descent_converged", "mean")):
        if c in d:
            if c == "descent_converged":
                d[c] = _bools(d[c]).astype(float)
            aggs[c] = (c, how)
    return d.groupby(list(by)).agg(**aggs).reset_index()


def write_tables(run_dirs: Sequence[str | Path], *, out_dir: str | Path, config: dict | None = None,
                 extra_runs: Sequence[str | Path] = (), dense: int = 20, points: int = 100) -> dict[str, Path]:
    """Aggregate escape runs (folders with escape.csv and curves.npz, written by scripts/escape.py
    run) into a figure's tables: ``out_dir``/escape.csv (all rows), escape_replica.csv (the replica
    probes' rows, column replica_ulps; no rows without replicas), curves.csv (:func:`curve_table`),
    survival.csv (:func:`survival_table` per scale, ratio, checkpoint; T from the trajectories),
    levels.csv when the runs wrote one (concatenated), and provenance.json
    (:func:`adversary_dynamics.figures.tables.write_provenance`: configuration, code version, a record of
    every run in ``run_dirs`` and ``extra_runs``, e.g. the training runs Fig. 3 probed). Returns
    {table: path}. Raises FileNotFoundError for a missing run file and ValueError for runs whose
    trajectories do not match their rows."""
    import numpy as np
    import pandas as pd

    from adversary_dynamics.figures import tables as _tables

    out_dir = Path(out_dir)
    esc, curves, levels, budgets, replicas = [], [], [], set(), []
    for d in map(Path, run_dirs):
        df = pd.read_csv(d / "escape.csv")
        if (d / "escape_replica.csv").exists():  # runs without replicas (older runs) contribute no rows
            replicas.append(pd.read_csv(d / "escape_replica.csv"))
        with np.load(d / "curves.npz") as z:
            L = z["losses"]
        budgets.add(int(L.shape[1]) - 1)
        esc.append(df)
        curves.append(curve_table(df.to_dict("records"), L, dense=dense, points=points))
        if (d / "levels.csv").exists():
            levels.append(pd.read_csv(d / "levels.csv"))
    if len(budgets) > 1:
        raise ValueError(f"the runs have different step budgets T {sorted(budgets)}; survival.csv needs one")
    tabs = {"escape": pd.concat(esc, ignore_index=True), "curves": pd.concat(curves, ignore_index=True),
            "escape_replica": (pd.concat(replicas, ignore_index=True) if replicas
                               else pd.DataFrame(columns=[*ESCAPE_COLUMNS, "replica_ulps"]))}
    tabs["survival"] = survival_table(tabs["escape"], T=budgets.pop())
    if levels:
        tabs["levels"] = pd.concat(levels, ignore_index=True)
    paths = {k: out_dir / f"{k}.csv" for k in tabs}
    _tables.write_tables(tabs, paths)
    paths["provenance"] = out_dir / "provenance.json"
    _tables.write_provenance(paths["provenance"], tables=[p for k, p in paths.items() if k != "provenance"],
                             runs=[*map(Path, run_dirs), *map(Path, extra_runs)], config=config)
    return paths
