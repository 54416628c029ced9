"""Verdicts on the paper's claims, computed from the aggregated tables (docs/tables.md).

Each ``claim_*`` function takes the table(s) it needs (pandas DataFrames) and the verdict rules
(the ``claims:`` section of the configuration, fixed before the runs are looked at) and returns
one dict ``{id, claim, statistic, value, interval, n_runs, verdict, rule, details}``:

- ``value``/``interval``: the headline statistic and its percentile-bootstrap interval at level
  ``confidence``; for a claim checked per group (per scale and checkpoint, per checkpoint, ...)
  the headline is the least favourable group, and ``details["groups"]`` lists every group with
  its own statistic, interval and verdict.
- ``n_runs``: the independent runs the statistic rests on: (scale, seed) training/probe runs for
  the dataset experiments, (d, m, trial) random network-input pairs for the theory setting.
- ``verdict``: ``supported`` / ``not supported`` / ``inconclusive`` by the rule in ``rule``.
  A claim checked per group is supported when every group is, not supported when at least
  one group is not, and inconclusive otherwise. A group resting on fewer than ``min_runs``
  seeds (theory: trials) is inconclusive whatever its statistic says.

Bootstraps are deterministic: ``numpy.random.default_rng([seed, claim number])``. The dataset
probes are resampled two-way (seeds and inputs independently, with replacement: every input is
probed at every seed), so the intervals reflect both sources of variation; training runs are
resampled over seeds, theory trials over trial ids. Rank correlations are Spearman's rho with
average ranks for ties, computed exactly on the resampled data (as weighted ranks).

Nothing here knows which answer the paper expects beyond the direction of each claim; the
parameters come from the configuration and must not be tuned to make a claim hold.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_RULES",
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "VERDICTS",
    "TABLES",
    "spearman",
    "weighted_spearman",
    "claim_pga_converges",
    "claim_on_sphere",
    "claim_pga_iterations_vs_scale",
    "claim_training_vs_scale",
    "claim_regularity_vs_scale",
    "claim_theory_polynomial",
    "evaluate_claims",
    "cli_flags",
    "render_markdown",
    "to_jsonable",
]

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)

#: The defaults of the configuration's ``claims:`` section (workflow/schemas/config.schema.yaml).
DEFAULT_RULES: dict[str, Any] = {
    "min_fraction": 0.9,
    "confidence": 0.95,
    "bootstrap": 2000,
    "seed": 0,
    "min_runs": 3,
    "power_law_fraction": 0.75,
    "max_slope": 3.0,
}

#: The tables each claim reads (keys of ``evaluate_claims``'s ``tables``).
TABLES = ("fig1_final", "fig2_runs", "fig3_regularity", "fig4_theory")

_CHUNK = 256  # bootstrap resamples per vectorised chunk (bounds memory)


# ---- small helpers ------------------------------------------------------------------------
def _rules(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The verdict rules: the defaults, overridden by ``cfg`` (a ``claims:`` section or a whole
    configuration holding one)."""
    cfg = dict(cfg or {})
    if isinstance(cfg.get("claims"), Mapping):
        cfg = dict(cfg["claims"])
    out = dict(DEFAULT_RULES)
    out.update({k: v for k, v in cfg.items() if k in DEFAULT_RULES and v is not None})
    out["bootstrap"] = int(out["bootstrap"])
    out["seed"] = int(out["seed"])
    out["min_runs"] = int(out["min_runs"])
    if not 0 < out["confidence"] < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {out['confidence']}")
    if out["bootstrap"] < 1:
        raise ValueError(f"bootstrap must be >= 1, got {out['bootstrap']}")
    return out


def _rng(rules: Mapping[str, Any], claim_no: int) -> np.random.Generator:
    return np.random.default_rng([int(rules["seed"]), int(claim_no)])


def _as_bool(s: pd.Series) -> np.ndarray:
    if s.dtype == bool:
        return s.to_numpy()
    m = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    return s.astype(str).str.strip().str.lower().map(m).fillna(False).to_numpy(dtype=bool)


def _interval(boot: np.ndarray, confidence: float) -> list[float]:
    boot = np.asarray(boot, dtype=float)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return [math.nan, math.nan]
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [a, 1.0 - a])
    return [float(lo), float(hi)]


def _resample_weights(rng: np.random.Generator, n: int, B: int) -> np.ndarray:
    """(B, n) multiplicities of a resample of n units with replacement."""
    if n == 0:
        return np.zeros((B, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=B).astype(float)


def _codes(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, index of each value among them)."""
    uniq, inv = np.unique(np.asarray(values), return_inverse=True)
    return uniq, inv.ravel()


def _combine(verdicts: Sequence[str]) -> str:
    if not verdicts:
        return INCONCLUSIVE
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return INCONCLUSIVE


def _fraction_verdict(lo: float, hi: float, min_fraction: float, enough: bool) -> str:
    if not enough or not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo >= min_fraction:
        return SUPPORTED
    if hi < min_fraction:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _sign_verdict(lo: float, hi: float, enough: bool, sign: int = 1) -> str:
    """Supported if the whole interval is on the claimed side of 0, not supported if the whole
    interval is on the other side, inconclusive otherwise."""
    if not enough or not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    lo, hi = (lo, hi) if sign > 0 else (-hi, -lo)
    if lo > 0:
        return SUPPORTED
    if hi < 0:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _worst(groups: list[dict], key: str = "value", sign: int = 1) -> dict | None:
    """The least favourable group: smallest ``sign * value`` among groups with a finite value
    (the first group when none has one)."""
    if not groups:
        return None
    finite = [g for g in groups if g.get(key) is not None and np.isfinite(g[key])]
    return min(finite, key=lambda g: sign * g[key]) if finite else groups[0]


def _entry(cid: int, claim: str, statistic: str, value, interval, n_runs: int, verdict: str, rule: str,
           details: dict) -> dict[str, Any]:
    return {"id": cid, "claim": claim, "statistic": statistic,
            "value": None if value is None else float(value),
            "interval": [float(interval[0]), float(interval[1])] if interval is not None else [math.nan, math.nan],
            "n_runs": int(n_runs), "verdict": verdict, "rule": rule, "details": details}


def _missing(cid: int, claim: str, statistic: str, rule: str, table: str) -> dict[str, Any]:
    return _entry(cid, claim, statistic, math.nan, [math.nan, math.nan], 0, INCONCLUSIVE, rule,
                  {"note": f"table {table} is missing or empty", "groups": []})


def _level(rules) -> str:
    return f"{rules['confidence']:.0%}"


# ---- rank correlation ---------------------------------------------------------------------
def _rank_prep(v: np.ndarray):
    order = np.argsort(v, kind="stable")
    sv = v[order]
    new = np.r_[True, sv[1:] != sv[:-1]] if len(sv) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    inv = np.empty(len(v), dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return order, starts, inv


def _weighted_ranks(W: np.ndarray, prep) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of every row in the data set where row i appears W[b, i] times; also the
    number of distinct values present in each resample."""
    order, starts, inv = prep
    Wu = np.add.reduceat(W[:, order], starts, axis=1)
    ru = np.cumsum(Wu, axis=1) - (Wu - 1.0) / 2.0
    return ru[:, inv], (Wu > 0).sum(1)


def weighted_spearman(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Spearman's rho (average ranks for ties) of the data in which row i appears W[b, i] times,
    for every row b of W (integer multiplicities, e.g. bootstrap resamples). NaN where x or y
    takes a single value. x and y must be free of NaN (+inf is allowed and ranks last)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    W = np.atleast_2d(np.asarray(W, dtype=float))
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("weighted_spearman: drop NaN rows first")
    px, py = _rank_prep(x), _rank_prep(y)
    out = np.empty(W.shape[0])
    for a in range(0, W.shape[0], _CHUNK):
        w = W[a:a + _CHUNK]
        rx, kx = _weighted_ranks(w, px)
        ry, ky = _weighted_ranks(w, py)
        sw = w.sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            dx = rx - (w * rx).sum(1, keepdims=True) / sw
            dy = ry - (w * ry).sum(1, keepdims=True) / sw
            r = (w * dx * dy).sum(1) / np.sqrt((w * dx * dx).sum(1) * (w * dy * dy).sum(1))
        r[(kx < 2) | (ky < 2)] = np.nan
        out[a:a + _CHUNK] = np.clip(r, -1.0, 1.0)
    return out


def spearman(x, y) -> float:
    """Spearman's rho with average ranks (NaN if either variable is constant)."""
    x = np.asarray(x, dtype=float)
    return float(weighted_spearman(x, y, np.ones((1, len(x))))[0])


# ---- resampling designs -------------------------------------------------------------------
class _TwoWay:
    """Two-way (seed x input) bootstrap weights, shared by every group of a claim."""

    def __init__(self, rng: np.random.Generator, seeds, inputs, B: int):
        self.seeds, _ = _codes(seeds)
        self.inputs, _ = _codes(inputs)
        self.ws = _resample_weights(rng, len(self.seeds), B)
        self.wi = _resample_weights(rng, len(self.inputs), B)

    def index(self, seeds, inputs) -> tuple[np.ndarray, np.ndarray]:
        return (np.searchsorted(self.seeds, np.asarray(seeds)), np.searchsorted(self.inputs, np.asarray(inputs)))

    def row_weights(self, seeds, inputs) -> np.ndarray:
        si, ii = self.index(seeds, inputs)
        return self.ws[:, si] * self.wi[:, ii]

    def fraction(self, seeds, inputs, success: np.ndarray) -> tuple[float, np.ndarray]:
        """Point estimate and bootstrap replicates of mean(success)."""
        si, ii = self.index(seeds, inputs)
        S = np.zeros((len(self.seeds), len(self.inputs)))
        N = np.zeros_like(S)
        np.add.at(S, (si, ii), success.astype(float))
        np.add.at(N, (si, ii), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            point = S.sum() / N.sum() if N.sum() > 0 else math.nan
            boot = np.einsum("bs,si,bi->b", self.ws, S, self.wi) / np.einsum("bs,si,bi->b", self.ws, N, self.wi)
        return float(point), boot


def _one_way_fraction(rng_w: np.ndarray, units: np.ndarray, success: np.ndarray, n_units: int):
    """Point estimate and replicates of mean(success) with units resampled (weights rng_w)."""
    S = np.bincount(units, weights=success.astype(float), minlength=n_units)
    N = np.bincount(units, minlength=n_units).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = S.sum() / N.sum() if N.sum() > 0 else math.nan
        boot = (rng_w @ S) / (rng_w @ N)
    return float(point), boot


# ---- claims 1 and 2: fractions ------------------------------------------------------------
CLAIM1 = ("PGA reaches an approximate local maximum within the iteration budget for at least the stated fraction "
          "of inputs and restarts (per scale and checkpoint).")
CLAIM2 = "The local maxima PGA reaches lie on the sphere ||delta|| = eps."


def _fraction_groups(df: pd.DataFrame, success: np.ndarray, keys: Sequence[str], design: _TwoWay,
                     rules: Mapping[str, Any]) -> list[dict]:
    groups = []
    for vals, idx in df.groupby(list(keys), sort=True).indices.items():
        vals = vals if isinstance(vals, tuple) else (vals,)
        sub = df.iloc[idx]
        point, boot = design.fraction(sub["seed"].to_numpy(), sub["input"].to_numpy(), success[idx])
        lo, hi = _interval(boot, rules["confidence"])
        n_seeds = int(sub["seed"].nunique())
        enough = n_seeds >= rules["min_runs"] and len(sub) > 0
        g = {k: _py(v) for k, v in zip(keys, vals)}
        g.update({"value": point, "lo": lo, "hi": hi, "n_seeds": n_seeds, "n_obs": int(len(sub)),
                  "verdict": _fraction_verdict(lo, hi, rules["min_fraction"], enough)})
        groups.append(g)
    return groups


def _py(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fraction_rule(rules, what: str, min_what: str) -> str:
    f, lvl = rules["min_fraction"], _level(rules)
    return (f"per {what}: supported if the {lvl} bootstrap interval's lower bound is >= {f:g}; not supported if its "
            f"upper bound is < {f:g}; inconclusive otherwise or with fewer than {rules['min_runs']} {min_what}. "
            f"The claim is supported if every group is, not supported if any group is not, inconclusive otherwise.")


def claim_pga_converges(fig1_final: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 1: fraction of (input, restart) probes where PGA converged within max_steps at a
    certified local maximum (``converged & local_max``), per (scale, checkpoint)."""
    rules = _rules(cfg)
    stat = "fraction of (input, restart) PGA runs that converged within the budget at a certified local maximum"
    rule = _fraction_rule(rules, "(scale, checkpoint)", "seeds")
    if fig1_final is None or len(fig1_final) == 0:
        return _missing(1, CLAIM1, stat, rule, "fig1_final")
    df = fig1_final.reset_index(drop=True)
    ok = _as_bool(df["converged"]) & _as_bool(df["local_max"])
    design = _TwoWay(_rng(rules, 1), df["seed"], df["input"], rules["bootstrap"])
    groups = _fraction_groups(df, ok, ["scale", "checkpoint"], design, rules)
    w = _worst(groups)
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    details = {
        "resampling": "seeds and inputs, independently with replacement",
        "n_obs": int(len(df)),
        "overall_fraction": float(ok.mean()),
        "fraction_converged": float(_as_bool(df["converged"]).mean()),
        "fraction_local_max": float(_as_bool(df["local_max"]).mean()),
        "groups": groups,
    }
    stat += f" (smallest over (scale, checkpoint) groups: scale {w['scale']:g}, checkpoint {w['checkpoint']})"
    return _entry(1, CLAIM1, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups]),
                  rule, details)


def claim_on_sphere(fig1_final: pd.DataFrame | None, fig4_theory: pd.DataFrame | None = None,
                    cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 2: among final iterates certified as local maxima (``local_max``), the fraction on
    the sphere; dataset probes per (scale, checkpoint), theory per (m, scale) pooled over d."""
    rules = _rules(cfg)
    stat = "fraction of certified local maxima (local_max = True) that lie on the sphere ||delta|| = eps"
    rule = _fraction_rule(rules, "(scale, checkpoint) of the dataset probes and per (m, scale) of the theory setting",
                          "seeds (theory: trials)")
    groups, n_runs, notes = [], 0, {}
    have1 = fig1_final is not None and len(fig1_final) > 0
    have4 = fig4_theory is not None and len(fig4_theory) > 0
    if not (have1 or have4):
        return _missing(2, CLAIM2, stat, rule, "fig1_final and fig4_theory")
    rng = _rng(rules, 2)
    if have1:
        df = fig1_final.reset_index(drop=True)
        lm = _as_bool(df["local_max"])
        sub = df[lm].reset_index(drop=True)
        design = _TwoWay(rng, df["seed"], df["input"], rules["bootstrap"])
        gs = _fraction_groups(sub, _as_bool(sub["on_sphere"]), ["scale", "checkpoint"], design, rules)
        # groups without any certified maximum cannot say anything
        for vals, _ in df.groupby(["scale", "checkpoint"]).indices.items():
            if not any(g["scale"] == _py(vals[0]) and g["checkpoint"] == _py(vals[1]) for g in gs):
                gs.append({"scale": _py(vals[0]), "checkpoint": _py(vals[1]), "value": math.nan, "lo": math.nan,
                           "hi": math.nan, "n_seeds": 0, "n_obs": 0, "verdict": INCONCLUSIVE})
        for g in gs:
            groups.append({"source": "dataset", "group": f"scale {g['scale']:g}, checkpoint {g['checkpoint']}", **g})
        n_runs += int(df[["scale", "seed"]].drop_duplicates().shape[0])
        notes["dataset_maxima"] = int(lm.sum())
        notes["dataset_probes"] = int(len(df))
    if have4:
        th = fig4_theory.reset_index(drop=True)
        lm = _as_bool(th["local_max"])
        trials, tcode = _codes(th["trial"])
        W = _resample_weights(rng, len(trials), rules["bootstrap"])
        for (m, scale), idx in th.groupby(["m", "scale"], sort=True).indices.items():
            idx = idx[lm[idx]]
            on = _as_bool(th["on_sphere"].iloc[idx])
            point, boot = _one_way_fraction(W, tcode[idx], on, len(trials))
            lo, hi = _interval(boot, rules["confidence"])
            n_tr = int(th["trial"].iloc[idx].nunique())
            groups.append({"source": "theory", "group": f"m {_py(m)}, scale {float(scale):g}", "value": point,
                           "lo": lo, "hi": hi, "n_seeds": n_tr, "n_obs": int(len(idx)),
                           "verdict": _fraction_verdict(lo, hi, rules["min_fraction"], n_tr >= rules["min_runs"])})
        n_runs += int(th[["d", "m", "trial"]].drop_duplicates().shape[0])
        notes["theory_maxima"] = int(lm.sum())
        notes["theory_runs"] = int(len(th))
    for g in groups:  # a uniform table: dataset groups keep scale/checkpoint only in "group"
        g.pop("scale", None)
        g.pop("checkpoint", None)
    w = _worst(groups)
    details = {"resampling": "dataset: seeds and inputs independently; theory: trial ids",
               "note": "n_seeds counts seeds (dataset) or trials (theory) with a certified maximum",
               **notes, "groups": groups}
    stat += f" (smallest over groups: {w['source']} {w['group']})"
    return _entry(2, CLAIM2, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups]),
                  rule, details)


# ---- claims 3-5: rank correlations with scale ---------------------------------------------
CLAIM3 = "Smaller input scale needs fewer PGA iterations to reach a local maximum (per checkpoint)."
CLAIM4 = "Smaller input scale makes adversarial training converge faster (fewer steps to the loss threshold)."
CLAIM5 = "Smaller input scale gives a more regular adversarial loss landscape (fewer distinct maxima, less non-linear)."


def _corr_rule(rules, what: str, units: str) -> str:
    lvl = _level(rules)
    return (f"{what}: supported if the whole {lvl} bootstrap interval of Spearman's rho(scale, .) is > 0; not "
            f"supported if it is entirely < 0; inconclusive otherwise, with fewer than {rules['min_runs']} {units} "
            f"per scale, or with fewer than 2 scales. The claim is supported if every group is, not supported if "
            f"any group is not, inconclusive otherwise.")


def _corr_group(x, y, W, rules, enough) -> dict:
    point = spearman(x, y)
    boot = weighted_spearman(x, y, W)
    lo, hi = _interval(boot, rules["confidence"])
    enough = enough and np.isfinite(point)
    return {"value": point, "lo": lo, "hi": hi, "verdict": _sign_verdict(lo, hi, enough)}


def _seeds_per_scale(df: pd.DataFrame) -> int:
    return int(df.groupby("scale")["seed"].nunique().min()) if len(df) else 0


def claim_pga_iterations_vs_scale(fig1_final: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 3: Spearman rho between scale and PGA iterations, per checkpoint (runs that did not
    converge count ``max_steps`` iterations, i.e. the worst rank)."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, PGA iterations) over (scale, seed, input, restart) probes"
    rule = _corr_rule(rules, "per checkpoint", "seeds")
    if fig1_final is None or len(fig1_final) == 0:
        return _missing(3, CLAIM3, stat, rule, "fig1_final")
    df = fig1_final.reset_index(drop=True)
    design = _TwoWay(_rng(rules, 3), df["seed"], df["input"], rules["bootstrap"])
    conv = _as_bool(df["converged"])
    groups = []
    for k, idx in df.groupby("checkpoint", sort=True).indices.items():
        sub = df.iloc[idx]
        W = design.row_weights(sub["seed"].to_numpy(), sub["input"].to_numpy())
        n_seeds = _seeds_per_scale(sub)
        enough = n_seeds >= rules["min_runs"] and sub["scale"].nunique() >= 2
        g = {"checkpoint": _py(k)}
        g.update(_corr_group(sub["scale"].to_numpy(float), sub["iterations"].to_numpy(float), W, rules, enough))
        med = sub.groupby("scale")["iterations"].median()
        g.update({"n_seeds": n_seeds, "n_obs": int(len(sub)), "not_converged": int((~conv[idx]).sum()),
                  "median_iterations_by_scale": "; ".join(f"{s:g}: {v:g}" for s, v in med.items())})
        groups.append(g)
    w = _worst(groups)
    details = {"resampling": "seeds and inputs, independently with replacement",
               "censoring": "PGA runs that did not converge count max_steps iterations (worst rank, tied)",
               "groups": groups}
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    stat += f" (smallest over checkpoints: checkpoint {w['checkpoint']})"
    return _entry(3, CLAIM3, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups]),
                  rule, details)


def claim_training_vs_scale(fig2_runs: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 4: Spearman rho between scale and steps to the loss threshold over (scale, seed)
    training runs; runs that never reached the threshold or diverged count +inf (worst rank)."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, steps to the adversarial-loss threshold) over (scale, seed) training runs"
    rule = _corr_rule(rules, "over all training runs", "seeds")
    rule += " Runs that never reached the threshold or diverged count as +inf steps (worst rank, tied)."
    if fig2_runs is None or len(fig2_runs) == 0:
        return _missing(4, CLAIM4, stat, rule, "fig2_runs")
    df = fig2_runs.reset_index(drop=True)
    steps = pd.to_numeric(df["steps_to_threshold"], errors="coerce").to_numpy(float)
    if "status" in df:
        diverged = (df["status"].astype(str).str.strip() == "diverged").to_numpy()
    else:
        diverged = np.zeros(len(df), dtype=bool)
    never = ~np.isfinite(steps) & ~diverged
    y = np.where(diverged | ~np.isfinite(steps), np.inf, steps)
    seeds, scode = _codes(df["seed"])
    W = _resample_weights(_rng(rules, 4), len(seeds), rules["bootstrap"])[:, scode]
    n_seeds = _seeds_per_scale(df)
    enough = n_seeds >= rules["min_runs"] and df["scale"].nunique() >= 2
    g = {"group": "all runs"}
    g.update(_corr_group(df["scale"].to_numpy(float), y, W, rules, enough))
    by = []
    for s, idx in df.groupby("scale", sort=True).indices.items():
        ys = y[idx]
        by.append({"scale": float(s), "runs": int(len(idx)), "reached": int(np.isfinite(ys).sum()),
                   "never_reached": int(never[idx].sum()), "diverged": int(diverged[idx].sum()),
                   "median_steps": float(np.median(ys)) if len(ys) else math.nan})
    g.update({"n_seeds": n_seeds, "n_obs": int(len(df)), "never_reached": int(never.sum()),
              "diverged": int(diverged.sum())})
    details = {"resampling": "seed ids, with replacement (a seed's runs at every scale move together)",
               "threshold": _py(df["threshold"].iloc[0]) if "threshold" in df and len(df) else None,
               "never_reached": int(never.sum()), "diverged": int(diverged.sum()),
               "groups": [g], "by_scale": by}
    return _entry(4, CLAIM4, stat, g["value"], [g["lo"], g["hi"]], len(df), g["verdict"], rule, details)


def claim_regularity_vs_scale(fig3_regularity: pd.DataFrame, cfg: Mapping[str, Any] | None = None,
                              metrics: Sequence[str] = ("distinct_maxima", "nonlinearity")) -> dict[str, Any]:
    """Claim 5: Spearman rho between scale and each irregularity measure (distinct maxima,
    non-linearity index) per checkpoint; NaN measurements are dropped."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, irregularity measure) over (scale, seed, input) probes"
    rule = _corr_rule(rules, "per (measure, checkpoint) with measures " + ", ".join(metrics), "seeds")
    if fig3_regularity is None or len(fig3_regularity) == 0:
        return _missing(5, CLAIM5, stat, rule, "fig3_regularity")
    df = fig3_regularity.reset_index(drop=True)
    design = _TwoWay(_rng(rules, 5), df["seed"], df["input"], rules["bootstrap"])
    groups = []
    for metric in metrics:
        vals = pd.to_numeric(df[metric], errors="coerce").to_numpy(float)
        for k, idx in df.groupby("checkpoint", sort=True).indices.items():
            n_nan = int(np.isnan(vals[idx]).sum())
            idx = idx[~np.isnan(vals[idx])]
            sub = df.iloc[idx]
            W = design.row_weights(sub["seed"].to_numpy(), sub["input"].to_numpy())
            n_seeds = _seeds_per_scale(sub)
            enough = n_seeds >= rules["min_runs"] and sub["scale"].nunique() >= 2
            g = {"measure": metric, "checkpoint": _py(k)}
            if len(sub) >= 2:
                g.update(_corr_group(sub["scale"].to_numpy(float), vals[idx], W, rules, enough))
            else:
                g.update({"value": math.nan, "lo": math.nan, "hi": math.nan, "verdict": INCONCLUSIVE})
            g.update({"n_seeds": n_seeds, "n_obs": int(len(sub)), "nan_dropped": n_nan})
            groups.append(g)
    w = _worst(groups)
    details = {"resampling": "seeds and inputs, independently with replacement",
               "groups": groups}
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    stat += f" (smallest over (measure, checkpoint) groups: {w['measure']} at checkpoint {w['checkpoint']})"
    return _entry(5, CLAIM5, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups]),
                  rule, details)


# ---- claim 6: polynomial growth in d --------------------------------------------------------
CLAIM6 = ("In the theory setting, the iterations PGA needs to reach a local maximum grow polynomially with the input "
          "dimension d (a straight line on log-log axes, better than an exponential fit).")


def _ls_slope(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of Y[..., j] on x[j] along the last axis (NaN points dropped)."""
    m = np.isfinite(Y)
    n = m.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.where(m, x, 0).sum(-1) / n
        ym = np.where(m, Y, 0).sum(-1) / n
        dx = np.where(m, x - xm[..., None], 0)
        dy = np.where(m, Y - ym[..., None], 0)
        s = (dx * dy).sum(-1) / (dx * dx).sum(-1)
    return np.where(n >= 2, s, np.nan)


def _fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    m = np.isfinite(y)
    x, y = x[m], y[m]
    if len(x) < 2:
        return {"slope": math.nan, "rss": math.nan, "r2": math.nan}
    A = np.c_[np.ones_like(x), x]
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    rss = float(((y - A @ coef) ** 2).sum())
    tss = float(((y - y.mean()) ** 2).sum())
    return {"slope": float(coef[1]), "rss": rss, "r2": 1.0 - rss / tss if tss > 0 else math.nan}


def _safe_log(a):
    a = np.asarray(a, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), np.nan)


def claim_theory_polynomial(fig4_theory: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 6: per (m, scale) curve, log(median iterations over trials) against log d (power
    law) and against d (exponential); pooled slope with one intercept per curve. Trials that did
    not converge count ``max_steps`` iterations (a lower bound)."""
    rules = _rules(cfg)
    lvl = _level(rules)
    stat = "pooled slope of log(median iterations) vs log d (one intercept per (m, scale) curve)"
    f, smax = rules["power_law_fraction"], rules["max_slope"]
    rule = (f"supported if the power law (log iterations linear in log d) has a higher R^2 than the exponential "
            f"(log iterations linear in d) in at least a fraction {f:g} of the (m, scale) curves and the {lvl} "
            f"bootstrap interval of the pooled slope lies within (0, {smax:g}]; not supported if that fraction is "
            f"below {f:g} or the interval lies entirely outside (0, {smax:g}] (upper bound <= 0 or lower bound > "
            f"{smax:g}); inconclusive otherwise, with fewer than 3 dimensions d, or with fewer than "
            f"{rules['min_runs']} trials per (d, m, scale).")
    if fig4_theory is None or len(fig4_theory) == 0:
        return _missing(6, CLAIM6, stat, rule, "fig4_theory")
    th = fig4_theory.reset_index(drop=True)
    dims = np.sort(th["d"].unique()).astype(float)
    trials, tcode = _codes(th["trial"])
    curves = sorted(th.groupby(["m", "scale"]).groups.keys())
    C, D, T = len(curves), len(dims), len(trials)
    A = np.full((C, D, T), np.nan)
    ci = {c: i for i, c in enumerate(curves)}
    c_idx = np.array([ci[(m, s)] for m, s in zip(th["m"], th["scale"])])
    d_idx = np.searchsorted(dims, th["d"].to_numpy(float))
    A[c_idx, d_idx, tcode] = th["iterations"].to_numpy(float)
    conv = _as_bool(th["converged"])
    min_trials = int(th.groupby(["d", "m", "scale"])["trial"].nunique().min())
    logd = np.log(dims)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(A, axis=2)  # (C, D)
        rng = _rng(rules, 6)
        B = rules["bootstrap"]
        boot_curve = np.empty((C, B))
        boot_pooled = np.empty(B)
        for a in range(0, B, _CHUNK):
            b = min(B, a + _CHUNK) - a
            idx = rng.integers(0, T, size=(b, T))
            mb = np.nanmedian(A[:, :, idx], axis=3)  # (C, D, b)
            Y = _safe_log(np.moveaxis(mb, 2, 1))  # (C, b, D)
            boot_curve[:, a:a + b] = _ls_slope(logd, Y)
            boot_pooled[a:a + b] = _pooled_slope(logd, np.moveaxis(Y, 1, 0))  # (b, C, D)
    logmed = _safe_log(med)
    groups, better = [], []
    for i, (m, s) in enumerate(curves):
        pw, ex = _fit(logd, logmed[i]), _fit(dims, logmed[i])
        lo, hi = _interval(boot_curve[i], rules["confidence"])
        pb = bool(np.isfinite(pw["r2"]) and np.isfinite(ex["r2"]) and pw["r2"] > ex["r2"])
        better.append(pb)
        groups.append({"m": _py(m), "scale": float(s), "value": pw["slope"], "lo": lo, "hi": hi,
                       "r2_power": pw["r2"], "r2_exp": ex["r2"], "rss_power": pw["rss"], "rss_exp": ex["rss"],
                       "power_better": pb,
                       "median_iterations_by_d": "; ".join(f"{int(d)}: {v:g}" for d, v in zip(dims, med[i]))})
    frac_better = float(np.mean(better)) if better else math.nan
    pooled = float(_pooled_slope(logd, logmed[None])[0])
    lo, hi = _interval(boot_pooled, rules["confidence"])
    pooled_pw = _pooled_rss(logd, logmed)
    pooled_ex = _pooled_rss(dims, logmed)
    enough = D >= 3 and min_trials >= rules["min_runs"] and np.isfinite(lo) and np.isfinite(hi)
    if not enough:
        verdict = INCONCLUSIVE
    elif frac_better < f or hi <= 0 or lo > smax:
        verdict = NOT_SUPPORTED
    elif frac_better >= f and lo > 0 and hi <= smax:
        verdict = SUPPORTED
    else:
        verdict = INCONCLUSIVE
    details = {
        "resampling": "trial ids, with replacement (the same ids for every (d, m, scale))",
        "dims": [int(d) for d in dims],
        "n_curves": C,
        "min_trials_per_cell": min_trials,
        "fraction_power_better": frac_better,
        "pooled_rss_power": pooled_pw,
        "pooled_rss_exp": pooled_ex,
        "fraction_converged": float(conv.mean()),
        "censoring": "trials that did not converge count max_steps iterations",
        "groups": groups,
    }
    n_runs = int(th[["d", "m", "trial"]].drop_duplicates().shape[0])
    return _entry(6, CLAIM6, stat, pooled, [lo, hi], n_runs, verdict, rule, details)


def _pooled_slope(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Common slope of Y[b, c, :] on x with one intercept per curve c (NaN points dropped)."""
    m = np.isfinite(Y)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = m.sum(-1, keepdims=True)
        xm = np.where(m, x, 0).sum(-1, keepdims=True) / n
        ym = np.where(m, Y, 0).sum(-1, keepdims=True) / n
        dx = np.where(m, x - xm, 0)
        dy = np.where(m, Y - ym, 0)
        return (dx * dy).sum((-1, -2)) / (dx * dx).sum((-1, -2))


def _pooled_rss(x: np.ndarray, Y: np.ndarray) -> float:
    """Residual sum of squares of the common-slope fit (one intercept per curve)."""
    s = float(_pooled_slope(x, Y[None])[0])
    m = np.isfinite(Y)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = m.sum(-1, keepdims=True)
        xm = np.where(m, x, 0).sum(-1, keepdims=True) / n
        ym = np.where(m, Y, 0).sum(-1, keepdims=True) / n
        r = np.where(m, (Y - ym) - s * (x - xm), 0)
    return float((r * r).sum())


def cli_flags(rules: Mapping[str, Any] | None, config_name: str) -> str:
    """The verdict rules (the configuration's ``claims:`` section, defaults filled in) and the
    configuration name as the typed flags of ``scripts/claims.py`` (used by the workflow)."""
    r = _rules(rules)
    return (f"--min-fraction {r['min_fraction']} --confidence {r['confidence']} --bootstrap {r['bootstrap']} "
            f"--seed {r['seed']} --min-runs {r['min_runs']} --power-law-fraction {r['power_law_fraction']} "
            f"--max-slope {r['max_slope']} --config-name {config_name}")


# ---- all claims ------------------------------------------------------------------------------
def evaluate_claims(tables: Mapping[str, pd.DataFrame | None], cfg: Mapping[str, Any] | None) -> list[dict]:
    """All six claims, in order. ``tables`` maps the names of :data:`TABLES` to DataFrames (a
    missing table makes the claims that need it inconclusive); ``cfg`` is the ``claims:``
    section of the configuration (or a whole configuration)."""
    rules = _rules(cfg)
    t = {k: tables.get(k) for k in TABLES}
    calls: list[Callable[[], dict]] = [
        lambda: claim_pga_converges(t["fig1_final"], rules),
        lambda: claim_on_sphere(t["fig1_final"], t["fig4_theory"], rules),
        lambda: claim_pga_iterations_vs_scale(t["fig1_final"], rules),
        lambda: claim_training_vs_scale(t["fig2_runs"], rules),
        lambda: claim_regularity_vs_scale(t["fig3_regularity"], rules),
        lambda: claim_theory_polynomial(t["fig4_theory"], rules),
    ]
    return [c() for c in calls]


# ---- output --------------------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN and +-inf as null."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.3g}"
    return str(v).replace("|", "\\|")


def _ival(iv) -> str:
    lo, hi = (iv or [math.nan, math.nan])[:2]
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "n/a"
    return f"[{_fmt(lo)}, {_fmt(hi)}]"


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(f"**{v}**" if c == "verdict" else _fmt(v))
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_markdown(results: list[dict], config_name: str, rules: Mapping[str, Any] | None = None) -> str:
    """A Markdown report: a summary table, then one section per claim with its rule and groups."""
    r = _rules(rules) if rules is not None else None
    lvl = f"{r['confidence']:.0%}" if r else "CI"
    lines = [f"# Claims checked against the runs of configuration `{config_name}`", "",
             "Deng, He, Huang & Su (ICML 2020), *Towards Understanding the Dynamics of the First-Order Adversaries*.",
             "Every verdict follows a rule fixed in advance in the configuration (`claims:` in config/config.yaml); "
             "intervals are percentile bootstraps; *runs* counts the independent runs a statistic rests on "
             "((scale, seed) training/probe runs for the dataset experiments, (d, m, trial) network-input pairs "
             "for the theory setting).", ""]
    if r:
        lines += ["Rules: " + ", ".join(f"`{k}` = {v}" for k, v in r.items()), ""]
    lines += [f"| # | claim | statistic | value | {lvl} interval | runs | verdict |", "|---|---|---|---|---|---|---|"]
    for e in results:
        lines.append(f"| {e['id']} | {_fmt(e['claim'])} | {_fmt(e['statistic'])} | {_fmt(e['value'])} | "
                     f"{_ival(e['interval'])} | {e['n_runs']} | **{e['verdict']}** |")
    for e in results:
        d = dict(e.get("details") or {})
        groups = d.pop("groups", [])
        extra = {k: d.pop(k) for k in list(d) if isinstance(d[k], list) and d[k] and isinstance(d[k][0], dict)}
        lines += ["", f"## {e['id']}. {e['claim']}", "",
                  f"- verdict: **{e['verdict']}**",
                  f"- statistic: {e['statistic']} = {_fmt(e['value'])}, {lvl} interval {_ival(e['interval'])}",
                  f"- runs: {e['n_runs']}",
                  f"- rule: {e['rule']}"]
        for k, v in d.items():
            lines.append(f"- {k.replace('_', ' ')}: {_fmt(v) if not isinstance(v, list) else ', '.join(map(_fmt, v))}")
        if groups:
            counts = ", ".join(f"{n} {v}" for v in VERDICTS if (n := sum(g.get("verdict") == v for g in groups)))
            lines += ["", f"Groups ({counts}):" if counts else "Groups:", ""]
            lines += _table(groups)
        for k, rows in extra.items():
            lines += ["", f"{k.replace('_', ' ').capitalize()}:", ""] + _table(rows)
    return "\n".join(lines) + "\n"
