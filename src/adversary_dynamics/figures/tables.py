"""Raw runs → the tidy tables behind each figure (docs/tables.md); notebooks read only these.

Every function here reads run folders written by ``scripts/train.py`` and ``scripts/probe.py``
and returns pandas DataFrames; nothing is written except by
:func:`write_table`, :func:`write_tables` and :func:`write_provenance` (atomically, through
:mod:`adversary_dynamics.storage.runio`). ``scripts/aggregate.py`` is the command-line front end.

Run folders are given as :class:`Run` records ``(key, seed, path)``: for training and probe runs
``key`` is the input scale s (the mean l2 norm of the training inputs, paper Sec. 5.1) and
``seed`` the training seed (other figures may use other keys); :func:`parse_runs` reads them from ``'KEY:SEED:PATH'`` strings.

Tables of the extension figures:

* :func:`pga_convergence_tables` → ``curves``, ``final`` (``ext_pga_convergence``);
* :func:`training_convergence_tables` → ``steps``, ``epochs``, ``runs`` (``ext_training_convergence``);
* :func:`landscape_statistics_tables` → ``grid``, ``circle``, ``traj``, ``regularity``
  (``ext_landscape_statistics``).

(``ext_theory``'s tables are written directly by ``scripts/theory.py``.)

Any figure's tables (paper figures included) record where their numbers came from with
:func:`write_provenance`.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from adversary_dynamics.storage import runio

__all__ = [
    "Run",
    "parse_runs",
    "normalised_ascent",
    "pga_convergence_tables",
    "training_convergence_tables",
    "landscape_statistics_tables",
    "COLUMNS",
    "write_table",
    "write_tables",
    "run_record",
    "write_provenance",
]

# The columns of every table, in order (docs/tables.md); empty tables keep them.
COLUMNS: dict[str, list[str]] = {
    "curves": ["scale", "checkpoint", "step", "median", "q25", "q75", "n"],
    "grid": ["scale", "checkpoint", "input", "u", "v", "loss"],
    "circle": ["scale", "checkpoint", "input", "angle", "loss"],
    "traj": ["scale", "checkpoint", "input", "restart", "step", "u", "v"],
}


class Run(NamedTuple):
    """One run folder of a figure: ``key`` (the input scale s for train/probe runs), ``seed``
    (the training seed) and the folder ``path``."""

    key: float
    seed: int
    path: Path



def _with_run(df: pd.DataFrame, scale, seed) -> pd.DataFrame:
    """``df`` with the run's ``scale, seed`` as its first two columns (in place; returned)."""
    df.insert(0, "seed", seed)
    df.insert(0, "scale", scale)
    return df

def parse_runs(specs: Iterable[str]) -> list[Run]:
    """``'KEY:SEED:PATH'`` strings (as the workflow's ``runs_spec`` writes them) → :class:`Run`
    records; PATH may itself hold colons. Raises ValueError naming the spec when it has fewer
    than three fields or KEY/SEED are not numbers."""
    out = []
    for s in specs:
        parts = str(s).split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"runs: {s!r} is not of the form 'KEY:SEED:PATH' (e.g. '0.5:0:results/stages/probe/<key>/scale~0.5/seed~0')")
        try:
            out.append(Run(float(parts[0]), int(parts[1]), Path(parts[2])))
        except ValueError:
            raise ValueError(f"runs: {s!r}: KEY must be a number and SEED an integer") from None
    return out


# ---- ext_pga_convergence -----------------------------------------------------------------------
def normalised_ascent(L: np.ndarray) -> np.ndarray:
    """The normalised ascent of PGA loss curves, A_t = (ℓ_t − ℓ_0) / (ℓ_T − ℓ_0).

    ``L``: losses of shape (T+1, ...) with the PGA iteration t on axis 0 (any trailing shape,
    e.g. (inputs, restarts)). Returns an array of the same shape: 0 at the start, 1 at the last
    iterate; NaN for a curve where PGA did not raise the loss at all (ℓ_T − ℓ_0 ≤ 10⁻¹²·max(|ℓ_0|, 10⁻¹²)),
    whose normalisation is undefined, and NaN at every t for a curve with any NaN or ±inf loss
    (a non-finite run is no result: it is left out of every step, not only where it is NaN)."""
    L = np.asarray(L)
    num = L - L[:1]
    den = L[-1:] - L[:1]
    finite = np.isfinite(L).all(0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((den > 1e-12 * np.maximum(np.abs(L[:1]), 1e-12)) & finite, num / den, np.nan)


def pga_convergence_tables(runs: Sequence[Run], *, max_steps: int) -> dict[str, pd.DataFrame]:
    """Tables of ``ext_pga_convergence`` from probe runs (``restarts.csv``, ``curves.npz``).

    * ``curves``: one row per (scale, checkpoint, step t = 0 … max_steps), columns
      ``scale, checkpoint, step, median, q25, q75, n``: median and quartiles of the normalised
      ascent A_t = (ℓ_t − ℓ_0)/(ℓ_T − ℓ_0) (:func:`normalised_ascent`) pooled over seeds × inputs ×
      restarts, NaN curves (no ascent, or a NaN or ±inf loss anywhere on the curve) left out;
      ``n`` = number of finite curves at t. A probe
      that stopped early (every curve had converged) is padded with its last value up to
      ``max_steps``.
    * ``final``: the probes' ``restarts.csv`` stacked, with ``scale, seed`` in front (one row per
      (scale, seed, checkpoint, input, restart)); among its columns ``local_max`` (the certificate
      passed), ``flat`` (the loss is locally constant at the final iterate: a degenerate,
      non-strict maximum, see :class:`~adversary_dynamics.attack.Certificate`) and ``finite``
      (every loss of the restart's PGA run is finite; where False the run is never ``converged``,
      ``local_max`` or ``flat``). A ``restarts.csv`` without ``finite`` (written before the column
      existed) gets it from its ``initial_loss`` and ``final_loss``.

    ``runs``: :class:`Run` (scale, seed, probe folder). Raises ValueError when ``runs`` is empty
    or ``max_steps`` < 0."""
    if not runs:
        raise ValueError("runs: no probe runs given")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    finals, pooled = [], {}
    for scale, seed, d in runs:
        df = _with_run(pd.read_csv(d / "restarts.csv"), scale, seed)
        if "finite" not in df:
            df["finite"] = np.isfinite(df["initial_loss"].to_numpy(float)) & np.isfinite(
                df["final_loss"].to_numpy(float))
        finals.append(df)
        with np.load(d / "curves.npz") as z:
            for key in z.files:
                k = int(key.split("_")[1])
                L = z[key].astype(np.float64)
                A = normalised_ascent(L).reshape(L.shape[0], -1)
                if A.shape[0] < max_steps + 1:  # stopped early: every example had converged
                    A = np.concatenate([A, np.repeat(A[-1:], max_steps + 1 - A.shape[0], 0)])
                pooled.setdefault((scale, k), []).append(A)
    rows = []
    for (scale, k), parts in sorted(pooled.items()):
        A = np.concatenate(parts, axis=1)
        if np.isfinite(A).any():
            q = np.nanquantile(A, [0.25, 0.5, 0.75], axis=1)
        else:
            q = np.full((3, A.shape[0]), np.nan)
        n = np.isfinite(A).sum(1)
        for t in range(A.shape[0]):
            rows.append({"scale": scale, "checkpoint": k, "step": t, "median": q[1, t], "q25": q[0, t],
                         "q75": q[2, t], "n": int(n[t])})
    return {"curves": pd.DataFrame(rows, columns=COLUMNS["curves"]),
            "final": pd.concat(finals, ignore_index=True)}


# ---- ext_training_convergence ------------------------------------------------------------------
def training_convergence_tables(runs: Sequence[Run], *, threshold: float) -> dict[str, pd.DataFrame]:
    """Tables of ``ext_training_convergence`` from training runs (``steps.csv``, ``epochs.csv``,
    ``status.json``).

    * ``steps``: one row per (scale, seed, SGD step): the run's ``steps.csv`` with ``scale, seed``
      in front and ``rel_adv_loss`` = adv_loss_t / adv_loss_1 (relative to the first step);
    * ``epochs``: one row per (scale, seed, epoch): the run's ``epochs.csv`` with ``scale, seed``;
    * ``runs``: one row per (scale, seed): ``scale, seed, status, diverged_at_step,
      steps_to_threshold, threshold, total_steps``, where steps_to_threshold is the first step
      with rel_adv_loss ≤ ``threshold`` (empty when never reached) and total_steps the number of
      recorded steps.

    Raises ValueError when ``runs`` is empty or ``threshold`` is not a finite number > 0."""
    if not runs:
        raise ValueError("runs: no training runs given")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    steps, epochs, rows = [], [], []
    for scale, seed, d in runs:
        st = pd.read_csv(d / "steps.csv")
        status = json.loads((d / "status.json").read_text())
        if len(st):
            st["rel_adv_loss"] = st["adv_loss"] / st["adv_loss"].iloc[0]
        else:
            st["rel_adv_loss"] = []
        steps.append(_with_run(st, scale, seed))
        ep = _with_run(pd.read_csv(d / "epochs.csv"), scale, seed)
        epochs.append(ep)
        hit = st.loc[st["rel_adv_loss"] <= threshold, "step"]
        rows.append({"scale": scale, "seed": seed, "status": status["status"],
                     "diverged_at_step": status.get("diverged_at_step"),
                     "steps_to_threshold": int(hit.iloc[0]) if len(hit) else None,
                     "threshold": threshold, "total_steps": int(len(st))})
    return {"steps": pd.concat(steps, ignore_index=True),
            "epochs": pd.concat(epochs, ignore_index=True),
            "runs": pd.DataFrame(rows).astype({"diverged_at_step": "Int64", "steps_to_threshold": "Int64"})}


# ---- ext_landscape_statistics ------------------------------------------------------------------
def landscape_statistics_tables(runs: Sequence[Run]) -> dict[str, pd.DataFrame]:
    """Tables of ``ext_landscape_statistics`` from probe runs (``regularity.csv``, ``landscape.npz``;
    only the first seed's probe holds landscape slices).

    * ``grid``: ``scale, checkpoint, input, u, v, loss`` — the loss ℓ(F(x + ε(u·û + v·v̂)), y) on a
      square grid of (u, v) ∈ [−1, 1]² (units of ε; NaN outside the disk u² + v² ≤ 1), û the
      direction of the best PGA solution, v̂ a random orthogonal one;
    * ``circle``: ``scale, checkpoint, input, angle, loss`` — the loss on the circle ‖δ‖ = ε of
      that plane against the angle from û (radians);
    * ``traj``: ``scale, checkpoint, input, restart, step, u, v`` — PGA iterates projected on the
      plane (units of ε);
    * ``regularity``: the probes' ``regularity.csv`` stacked with ``scale, seed`` in front:
      ``distinct_maxima`` (over the restarts that did not end at a flat point; NaN when all did),
      ``flat_fraction`` (share of restarts ending at a flat point), ``loss_spread``, ``nonlinearity``.

    Raises ValueError when ``runs`` is empty."""
    if not runs:
        raise ValueError("runs: no probe runs given")
    grid, circle, traj, reg = [], [], [], []
    for scale, seed, d in runs:
        r = _with_run(pd.read_csv(d / "regularity.csv"), scale, seed)
        reg.append(r)
        with np.load(d / "landscape.npz") as z:
            keys = sorted({k.rsplit("/", 1)[0] for k in z.files})
            for pre in keys:
                k = int(pre.split("/")[0].split("_")[1])
                i = int(pre.split("/")[1].split("_")[1])
                c, G = z[pre + "/coords"], z[pre + "/grid"]
                U, V = np.meshgrid(c, c, indexing="xy")
                grid.append(pd.DataFrame({"scale": scale, "checkpoint": k, "input": i, "u": U.ravel(),
                                          "v": V.ravel(), "loss": G.ravel()}))
                circle.append(pd.DataFrame({"scale": scale, "checkpoint": k, "input": i, "angle": z[pre + "/angles"],
                                            "loss": z[pre + "/circle"]}))
                T = z[pre + "/traj"]  # (T+1, R, 2)
                tt, rr = np.meshgrid(np.arange(T.shape[0]), np.arange(T.shape[1]), indexing="ij")
                traj.append(pd.DataFrame({"scale": scale, "checkpoint": k, "input": i, "restart": rr.ravel(),
                                          "step": tt.ravel(), "u": T[..., 0].ravel(), "v": T[..., 1].ravel()}))
    out = {name: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS[name])
           for name, parts in (("grid", grid), ("circle", circle), ("traj", traj))}
    out["regularity"] = pd.concat(reg, ignore_index=True)
    return out


# ---- writing -------------------------------------------------------------------------------------
def write_table(df: pd.DataFrame, path) -> None:
    """Write one table as CSV, atomically, floats with 9 significant digits (``%.9g``)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.9g")
    runio.write_text_atomic(path, buf.getvalue())


def write_tables(tables: Mapping[str, pd.DataFrame], paths: Mapping[str, Any]) -> None:
    """Write ``tables[k]`` to ``paths[k]`` for every k (:func:`write_table`). Raises ValueError
    naming the keys when the two mappings do not have the same keys."""
    if set(tables) != set(paths):
        raise ValueError(f"paths: keys {sorted(paths)} do not match the tables {sorted(tables)}")
    for k, df in tables.items():
        write_table(df, paths[k])


def run_record(path) -> dict:
    """Where a run's numbers came from: ``{"path": ...}`` plus the summary of its
    ``provenance.json`` when present (code, finished_at, wall_time_s, device, torch_threads,
    host, slurm_job_id)."""
    d = Path(path)
    rec: dict[str, Any] = {"path": str(d)}
    prov = d / "provenance.json"
    if prov.exists():
        p = json.loads(prov.read_text())
        rec.update({k: p.get(k) for k in ("code", "finished_at", "wall_time_s", "device", "torch_threads", "host",
                                          "slurm_job_id")})
    return rec


def _train_run_of(probe_dir: Path) -> Path | None:
    """The training folder a probe run probed: ``train_run`` of its provenance.json (top level or in
    its ``config`` record), else the old mapping (``probe`` → ``train`` in its path) for a path with a
    ``probe`` component, else None (not a probe run)."""
    prov = probe_dir / "provenance.json"
    if prov.exists():
        try:
            p = json.loads(prov.read_text())
        except ValueError:
            p = {}
        train = p.get("train_run") or (p.get("config") or {}).get("train_run") if isinstance(p, dict) else None
        if train:
            return Path(train)
    if probe_dir.parts and "probe" in probe_dir.parts:
        return Path(*["train" if q == "probe" else q for q in probe_dir.parts])
    return None


def write_provenance(path, *, tables: Iterable[Any], runs: Iterable[Any], config: Mapping | None = None) -> None:
    """Write a figure's provenance record (JSON, atomically) to ``path``: the table files
    (``figure_tables``), the workflow ``config``, the code version, and one :func:`run_record`
    per run folder in ``runs`` (paths or :class:`Run`); a probe run also brings the record of the
    training run it probed: the folder its provenance.json names as ``train_run`` (probe and training
    folders are keyed separately, results/stages/{probe,train}/<key>/...), or, for a probe run
    without that entry (written before it was recorded), its path with the component ``probe``
    replaced by ``train`` (the old results/<name>/{probe,train}/ layout).
    Usable by every figure, paper figures included."""
    records = []
    for r in runs:
        d = r.path if isinstance(r, Run) else Path(r)
        records.append(run_record(d))
        train = _train_run_of(d)
        if train is not None:
            records.append(run_record(train))
    runio.write_json_atomic(path, {"figure_tables": [str(t) for t in tables], "config": config,
                                   "code": runio.code_version(), "runs": records})
