#!/usr/bin/env python
"""Turn raw runs into the tidy tables behind each figure (see docs/tables.md).

    aggregate.py fig1 --runs S:SEED:PROBE_DIR ... --max-steps T --out-curves C.csv --out-final F.csv
    aggregate.py fig2 --runs S:SEED:TRAIN_DIR ... --threshold 0.5 --out-steps ... --out-epochs ... --out-runs ...
    aggregate.py fig3 --runs S:SEED:PROBE_DIR ... --out-grid ... --out-circle ... --out-traj ... --out-regularity ...
    aggregate.py fig4 --runs D:M:THEORY_DIR ... --out T.csv
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from adversary_dynamics import runio


def _write(df: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.9g")
    runio.write_text_atomic(path, buf.getvalue())
    print(f"wrote {path} ({len(df)} rows)", file=sys.stderr)


def _runs(specs: list[str]) -> list[tuple[float, int, Path]]:
    out = []
    for s in specs:
        a, b, p = s.split(":", 2)
        out.append((float(a), int(b), Path(p)))
    return out


def normalised_ascent(L: np.ndarray) -> np.ndarray:
    """(ℓ_t − ℓ_0)/(ℓ_T − ℓ_0) along axis 0; NaN where PGA did not raise the loss at all."""
    num = L - L[:1]
    den = L[-1:] - L[:1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12 * np.maximum(np.abs(L[:1]), 1e-12), num / den, np.nan)


def fig1(args) -> None:
    finals, pooled = [], {}
    for scale, seed, d in _runs(args.runs):
        df = pd.read_csv(d / "restarts.csv")
        df.insert(0, "seed", seed)
        df.insert(0, "scale", scale)
        finals.append(df)
        with np.load(d / "curves.npz") as z:
            for key in z.files:
                k = int(key.split("_")[1])
                L = z[key].astype(np.float64)
                A = normalised_ascent(L).reshape(L.shape[0], -1)
                if A.shape[0] < args.max_steps + 1:  # stopped early: every example had converged
                    A = np.concatenate([A, np.repeat(A[-1:], args.max_steps + 1 - A.shape[0], 0)])
                pooled.setdefault((scale, k), []).append(A)
    rows = []
    for (scale, k), parts in sorted(pooled.items()):
        A = np.concatenate(parts, axis=1)
        q = np.nanquantile(A, [0.25, 0.5, 0.75], axis=1) if np.isfinite(A).any() else np.full((3, A.shape[0]), np.nan)
        n = np.isfinite(A).sum(1)
        for t in range(A.shape[0]):
            rows.append({"scale": scale, "checkpoint": k, "step": t, "median": q[1, t], "q25": q[0, t],
                         "q75": q[2, t], "n": int(n[t])})
    _write(pd.DataFrame(rows, columns=["scale", "checkpoint", "step", "median", "q25", "q75", "n"]), args.out_curves)
    _write(pd.concat(finals, ignore_index=True), args.out_final)


def fig2(args) -> None:
    steps, epochs, runs = [], [], []
    for scale, seed, d in _runs(args.runs):
        st = pd.read_csv(d / "steps.csv")
        status = json.loads((d / "status.json").read_text())
        if len(st):
            st["rel_adv_loss"] = st["adv_loss"] / st["adv_loss"].iloc[0]
        else:
            st["rel_adv_loss"] = []
        st.insert(0, "seed", seed)
        st.insert(0, "scale", scale)
        steps.append(st)
        ep = pd.read_csv(d / "epochs.csv")
        ep.insert(0, "seed", seed)
        ep.insert(0, "scale", scale)
        epochs.append(ep)
        hit = st.loc[st["rel_adv_loss"] <= args.threshold, "step"]
        runs.append({"scale": scale, "seed": seed, "status": status["status"],
                     "diverged_at_step": status.get("diverged_at_step"),
                     "steps_to_threshold": int(hit.iloc[0]) if len(hit) else None,
                     "threshold": args.threshold, "total_steps": int(len(st))})
    _write(pd.concat(steps, ignore_index=True), args.out_steps)
    _write(pd.concat(epochs, ignore_index=True), args.out_epochs)
    _write(pd.DataFrame(runs).astype({"diverged_at_step": "Int64", "steps_to_threshold": "Int64"}), args.out_runs)


def fig3(args) -> None:
    grid, circle, traj, reg = [], [], [], []
    for scale, seed, d in _runs(args.runs):
        r = pd.read_csv(d / "regularity.csv")
        r.insert(0, "seed", seed)
        r.insert(0, "scale", scale)
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
    cols = {"grid": ["scale", "checkpoint", "input", "u", "v", "loss"],
            "circle": ["scale", "checkpoint", "input", "angle", "loss"],
            "traj": ["scale", "checkpoint", "input", "restart", "step", "u", "v"]}
    for name, parts, out in (("grid", grid, args.out_grid), ("circle", circle, args.out_circle),
                             ("traj", traj, args.out_traj)):
        _write(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols[name]), out)
    _write(pd.concat(reg, ignore_index=True), args.out_regularity)


def fig4(args) -> None:
    parts = [pd.read_csv(Path(s.split(":", 2)[2]) / "theory.csv") for s in args.runs]
    _write(pd.concat(parts, ignore_index=True), args.out)


def _run_record(d: Path) -> dict:
    """Where a run's numbers came from: its folder and its provenance summary."""
    rec = {"path": str(d)}
    prov = d / "provenance.json"
    if prov.exists():
        p = json.loads(prov.read_text())
        rec.update({k: p.get(k) for k in ("code", "finished_at", "wall_time_s", "device", "torch_threads", "host",
                                          "slurm_job_id")})
    return rec


def write_provenance(args) -> None:
    """The figure's provenance: configuration, code version, and every run (for probes, also
    the training run they probed) that its tables were built from."""
    runs = []
    for spec in args.runs:
        d = Path(spec.split(":", 2)[2])
        runs.append(_run_record(d))
        if d.parts and "probe" in d.parts:
            runs.append(_run_record(Path(*["train" if q == "probe" else q for q in d.parts])))
    tables = [str(v) for k, v in vars(args).items() if k.startswith("out_") and k != "out_provenance"]
    runio.write_json_atomic(args.out_provenance, {
        "figure_tables": tables, "config": json.loads(args.config_json) if args.config_json else None,
        "code": runio.code_version(), "runs": runs})


def get_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="figure", required=True)
    a = sub.add_parser("fig1")
    a.add_argument("--runs", nargs="+", required=True)
    a.add_argument("--max-steps", type=int, required=True)
    a.add_argument("--out-curves", type=Path, required=True)
    a.add_argument("--out-final", type=Path, required=True)
    b = sub.add_parser("fig2")
    b.add_argument("--runs", nargs="+", required=True)
    b.add_argument("--threshold", type=float, required=True)
    b.add_argument("--out-steps", type=Path, required=True)
    b.add_argument("--out-epochs", type=Path, required=True)
    b.add_argument("--out-runs", type=Path, required=True)
    c = sub.add_parser("fig3")
    c.add_argument("--runs", nargs="+", required=True)
    c.add_argument("--out-grid", type=Path, required=True)
    c.add_argument("--out-circle", type=Path, required=True)
    c.add_argument("--out-traj", type=Path, required=True)
    c.add_argument("--out-regularity", type=Path, required=True)
    d = sub.add_parser("fig4")
    d.add_argument("--runs", nargs="+", required=True)
    d.add_argument("--out", type=Path, required=True)
    for q in (a, b, c, d):
        q.add_argument("--out-provenance", type=Path, default=None, help="write the provenance record here")
        q.add_argument("--config-json", type=str, default=None, help="the workflow configuration, as JSON")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = get_args(argv)
    {"fig1": fig1, "fig2": fig2, "fig3": fig3, "fig4": fig4}[args.figure](args)
    if args.out_provenance is not None:
        write_provenance(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
