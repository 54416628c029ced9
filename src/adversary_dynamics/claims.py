"""Verdicts on the paper's statements (Deng et al., ICML 2020), computed from the figure tables.

The report is built around the paper's own statements T1-T7 (issue 13), each checked where the
paper makes it:

=====  ==========================  =============================================================
id     paper                       our check (table)
=====  ==========================  =============================================================
T1     Theorem 3.1                 log-log slopes of iterations and of distance to the maximum
                                   on the absolute step η (ext_theory/pga.csv)
T2     Lemma 4.1                   per-step loss increase / η inside the ball; runs ending on the
                                   sphere (ext_theory/pga.csv)
T3     Lemmas 4.3-4.4              sign pattern of the constrained Hessian at converged points
                                   (ext_theory/hessian.csv)
T4     Theorem 5.1                 single maximum below a threshold in ε (ext_theory/maxima.csv,
                                   paper_fig1_landscapes/maxima.csv)
T5     Sec. 5.1.2, Fig. 2          Spearman ρ(scale, escape time) per ratio
                                   (paper_fig2_escape_by_scale/escape.csv)
T6     Fig. 3, Sec. 6              Spearman ρ(checkpoint, escape time) per (scale, ratio)
                                   (paper_fig3_escape_during_training/escape.csv)
T7     Abstract, Sec. 6            Spearman ρ(scale, steps to the training-loss threshold)
                                   (ext_training_convergence/runs.csv)
E1-E4  our extensions              the project's older checks on trained networks (PGA reaches a
                                   certified maximum, on the sphere, iterations and landscape
                                   regularity against the scale)
=====  ==========================  =============================================================

Each ``claim_*`` function takes its table(s) (pandas DataFrames) and the verdict rules (the
``claims:`` section of the configuration, fixed before the runs are read) and returns one dict
``{id, kind, paper_location, claim, paper_evidence, statistic, value, interval, runs, n_runs,
verdict, rule, details}``:

- ``value``/``interval``: the headline statistic and its percentile-bootstrap interval at level
  ``confidence``; for a claim checked per group the headline is the least favourable counted
  group, and ``details["groups"]`` lists every group with its own statistic, interval and verdict.
- ``runs``: ``{"count", "unit", "tables"}``, the independent units the statistic rests on.
- ``verdict``: ``supported`` / ``not supported`` / ``inconclusive``. A claim checked per group is
  not supported when a counted group is not, supported when none is not and at least
  ``min_supported_groups`` of the counted groups are supported, inconclusive otherwise. A group
  resting on fewer than ``min_runs`` units is inconclusive whatever its statistic says. Groups
  outside the statement's regime (the ReLU and narrow-width contrasts of the theory setting, d = 2
  for T3) are reported with ``counted = False``.

Non-finite runs: a row whose run met a NaN or ±inf loss (the tables' ``finite`` column False, or a
NaN/inf in its loss columns, :data:`LOSS_COLUMNS`) is no result, neither a success nor a failure:
E1-E3, T1, T2, T5 and T6 leave such rows out before anything else and report how many in
``details["nonfinite"]`` (a line of claims.md when > 0).

Bootstraps are deterministic: ``numpy.random.default_rng([seed, claim number])``. Probe-type
tables are resampled two-way (seeds and inputs independently, with replacement), training runs
over seeds, theory runs over trial ids (a trial's runs at every η move together). Rank
correlations are Spearman's rho with average ranks for ties, computed exactly on the resampled
data (as weighted ranks). Nothing here knows which answer the paper expects beyond the direction
of each statement; the parameters come from the configuration.
"""

from __future__ import annotations

import math
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
    "PAPER",
    "spearman",
    "weighted_spearman",
    "power_law_slope",
    "slope_verdict",
    "claim_t1_theorem31",
    "claim_t2_interior_ascent",
    "claim_t3_no_saddles",
    "claim_t4_single_maximum",
    "claim_t5_escape_by_scale",
    "claim_t6_escape_during_training",
    "claim_t7_training_vs_scale",
    "claim_pga_converges",
    "claim_on_sphere",
    "claim_pga_iterations_vs_scale",
    "claim_training_vs_scale",
    "claim_regularity_vs_scale",
    "evaluate_claims",
    "cli_flags",
    "render_markdown",
    "to_jsonable",
    "CLAIMS_JSON_SCHEMA",
]

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)

#: The defaults of the configuration's ``claims:`` section (workflow/schemas/config.schema.yaml).
DEFAULT_RULES: dict[str, Any] = {
    "confidence": 0.95,
    "bootstrap": 2000,
    "seed": 0,
    "min_runs": 3,
    "min_fraction": 0.9,
    "min_supported_groups": 0.5,
    "iterations_slope": -2.0,
    "distance_slope": 0.5,
    "slope_tolerance": 0.1,
    "min_rate": 1.0e-3,
    "theorem_activation": "softplus",
    "e2_leave_out": "flat",
}
#: E2's choices of certified maxima to leave out (``claims.e2_leave_out``; see :func:`claim_on_sphere`).
E2_LEAVE_OUT = ("flat", "constant", "none")

#: The tables each claim reads (keys of ``evaluate_claims``'s ``tables``).
TABLES = ("theory_runs", "theory_hessian", "theory_maxima", "fig1_maxima", "escape_scale", "escape_training",
          "training_runs", "pga_final", "landscape_regularity")

#: id -> (paper location, the statement in our words, what the paper's own evidence is).
PAPER: dict[str, tuple[str, str, str]] = {
    "T1": ("Theorem 3.1",
           "For softplus two-layer networks at initialisation with m = Omega(d^{5/2}), eps < Theta((log m)^-2) and "
           "eta < min{Theta((log m)^-2), eps^2}, PGA reaches within O(eta^-2) iterations a point on the sphere that is "
           "O(eta^{1/2})-close to a local maximum (w.h.p.).",
           "A theorem; its proof is in the supplementary material, which is not reachable here. The main text has no "
           "experiment in the theorem's regime."),
    "T2": ("Lemma 4.1",
           "Inside the ball every PGA step increases the loss by Omega(eta), so the trajectories end on the sphere.",
           "A lemma of the proof of Theorem 3.1 (main text states it; proof in the supplement); no experiment."),
    "T3": ("Lemmas 4.3-4.4",
           "There are no saddle points on the sphere: near critical points the constrained Hessian is definite.",
           "Lemmas of the proof of Theorem 3.1; no experiment."),
    "T4": ("Theorem 5.1",
           "Below a threshold tau_eps there is, with high probability, a single local maximum on the sphere "
           "('more regular landscape').",
           "An informal theorem, illustrated by Fig. 1 (simulated 2-D data: one optimum at small scale, rugged at "
           "large scale unless the ratio is small)."),
    "T5": ("Sec. 5.1.2, Fig. 2",
           "At a fixed ratio, a smaller input scale gives a faster escape from local maxima of the paper's objective "
           "(faster decay of the paper's loss along PGD).",
           "Fig. 2: single trajectories of an MNIST CNN at initialisation, three scales (0.1, 10, 1000), five ratios; "
           "no statistics, no repeated seeds."),
    "T6": ("Fig. 3, Sec. 6",
           "After many epochs of adversarial training escaping becomes harder, more so at a large input scale.",
           "Fig. 3: trajectories at scale 0.1 after 0, 10 and 100 epochs, three ratios; the large-scale part is text "
           "only (not plotted)."),
    "T7": ("Abstract, Sec. 6",
           "In the initial phase of adversarial training, a smaller input scale helps training converge faster.",
           "No training-convergence experiment: the paper's evidence is the escape behaviour of Fig. 2 (T5) and its "
           "theory; our check on training curves is an extension."),
    "E1": ("our extension (of Theorem 3.1)",
           "PGA reaches a certified local maximum within the budget on the trained networks of the digits runs.",
           "None: the paper's theorem covers softplus networks at initialisation only."),
    "E2": ("our extension (of Lemma 4.1)",
           "The local maxima PGA reaches on the trained networks lie on the sphere.",
           "None beyond Lemma 4.1 (theory setting)."),
    "E3": ("our extension (of Sec. 5.1.2)",
           "A smaller input scale needs fewer PGA iterations to reach a local maximum.",
           "None: the paper measures escape from a local maximum (T5), not convergence to one."),
    "E4": ("our extension (of Theorem 5.1, Fig. 1)",
           "A smaller input scale gives a more regular adversarial loss landscape on trained networks (fewer distinct "
           "maxima, less non-linear).",
           "Fig. 1 (simulated data only)."),
}

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
    for k in ("min_fraction", "min_supported_groups", "confidence"):
        out[k] = float(out[k])
    if not 0 <= out["min_supported_groups"] <= 1:
        raise ValueError(f"min_supported_groups must lie in [0, 1], got {out['min_supported_groups']}")
    if not 0 < out["confidence"] < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {out['confidence']}")
    if out["bootstrap"] < 1:
        raise ValueError(f"bootstrap must be >= 1, got {out['bootstrap']}")
    if out["e2_leave_out"] not in E2_LEAVE_OUT:
        raise ValueError(f"claims.e2_leave_out must be one of {E2_LEAVE_OUT}, got {out['e2_leave_out']!r}")
    return out


def _rng(rules: Mapping[str, Any], claim_no: int) -> np.random.Generator:
    return np.random.default_rng([int(rules["seed"]), int(claim_no)])


def _as_bool(s: pd.Series) -> np.ndarray:
    if s.dtype == bool:
        return s.to_numpy()
    m = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    return s.astype(str).str.strip().str.lower().map(m).fillna(False).to_numpy(dtype=bool)


#: The loss columns that must be finite for a row to count, per table kind (with the ``finite`` column).
LOSS_COLUMNS: dict[str, tuple[str, ...]] = {
    "final": ("initial_loss", "final_loss"),  # ext_pga_convergence/final.csv
    "theory": ("loss_start", "loss_final"),  # ext_theory/pga.csv
    "escape": ("loss_clean", "loss_ball", "loss_start", "loss_end", "loss_max"),  # escape.csv of Figs 2-3
}


def _finite_rows(df: pd.DataFrame, kind: str) -> np.ndarray:
    """Boolean (len(df),): the row's run had finite losses. The table's ``finite`` column where
    present (a missing value, from a run written before the column existed, counts as True) and
    every loss column of :data:`LOSS_COLUMNS` [``kind``] that the table has finite."""
    ok = np.ones(len(df), dtype=bool)
    if "finite" in df:
        ok &= _as_bool(df["finite"]) | df["finite"].isna().to_numpy()
    for c in LOSS_COLUMNS[kind]:
        if c in df:
            ok &= np.isfinite(pd.to_numeric(df[c], errors="coerce").to_numpy(float))
    return ok


def _drop_nonfinite(df: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, int]:
    """(df without the rows of non-finite runs, how many were left out): a NaN or ±inf loss is no
    result, neither a success nor a failure; the count goes into the claim's ``details["nonfinite"]``
    (and a line of claims.md when > 0). ``df`` is returned as it is when every row is finite."""
    ok = _finite_rows(df, kind)
    n = int((~ok).sum())
    return (df[ok].reset_index(drop=True) if n else df), n


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


def _combine(verdicts: Sequence[str], rules: Mapping[str, Any] | None = None) -> str:
    """Not supported if any verdict is; supported if none is and at least ``min_supported_groups``
    of them are supported; inconclusive otherwise (also with no verdict at all)."""
    share = float((rules or DEFAULT_RULES).get("min_supported_groups", 1.0))
    if not verdicts:
        return INCONCLUSIVE
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    n_sup = sum(v == SUPPORTED for v in verdicts)
    if n_sup > 0 and n_sup >= share * len(verdicts) - 1e-12:
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


def _combine_text(rules) -> str:
    return (f"The claim is not supported if any counted group is not, supported if none is not and at least "
            f"{rules['min_supported_groups']:.0%} of them are supported, inconclusive otherwise.")


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
            f"{_combine_text(rules)}")


def claim_pga_converges(fig1_final: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 1: fraction of (input, restart) probes where PGA converged within max_steps at a
    certified local maximum (``converged & local_max``), per (scale, checkpoint)."""
    rules = _rules(cfg)
    stat = "fraction of (input, restart) PGA runs that converged within the budget at a certified local maximum"
    rule = _fraction_rule(rules, "(scale, checkpoint)", "seeds")
    if fig1_final is None or len(fig1_final) == 0:
        return _missing(1, CLAIM1, stat, rule, "fig1_final")
    df, nonfinite = _drop_nonfinite(fig1_final.reset_index(drop=True), "final")
    if len(df) == 0:
        out = _missing(1, CLAIM1, stat, rule, "fig1_final")
        out["details"]["nonfinite"] = nonfinite
        return out
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
        "nonfinite": nonfinite,
        "groups": groups,
    }
    stat += f" (smallest over (scale, checkpoint) groups: scale {w['scale']:g}, checkpoint {w['checkpoint']})"
    return _entry(1, CLAIM1, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups], rules),
                  rule, details)


def claim_on_sphere(fig1_final: pd.DataFrame | None, fig4_theory: pd.DataFrame | None = None,
                    cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Claim 2 (E2, our extension of Lemma 4.1): among final iterates certified as local maxima
    (``local_max``), the fraction on the sphere ‖δ‖ = ε; dataset probes per (scale, checkpoint),
    theory per (m, scale) pooled over d.

    Which certified maxima of the dataset probes are left out is the rule ``e2_leave_out``
    (config ``claims.e2_leave_out``), an open choice that decides the verdict on the default:

    * ``flat`` (default): those where ℓ is locally constant to the certificate's resolution
      (column ``flat``, :class:`~adversary_dynamics.attack.Certificate`): every hidden ReLU
      inactive (PGA never moves, every start passes), or a nearly flat region with one or two weak
      units active (a nonzero gradient inside the ball, too small for the probes to see a change):
      the certificate is vacuous there, and Lemma 4.1 assumes a gradient bounded away from 0;
    * ``constant``: only the exactly constant ones (column ``constant``: ∇ℓ = 0, no probe changes ℓ);
    * ``none``: none (the rule before flat points were found; written before the runs were read).

    ``flat`` and ``constant`` were added after the runs were seen (dead networks at scale 16), so
    ``details["sensitivity"]`` gives the value, interval and verdict under all three choices, and
    the number left out is reported (``details["dataset_left_out"]``, per group ``flat_excluded``).
    A dataset table without the needed column counts every certified maximum (noted)."""
    rules = _rules(cfg)
    entry = _on_sphere(fig1_final, fig4_theory, rules, rules["e2_leave_out"])
    if entry["n_runs"] > 0:
        entry["details"]["sensitivity"] = {
            choice: {k: e[k] for k in ("value", "interval", "verdict")} | {"left_out": e["details"].get(
                "dataset_left_out", 0)}
            for choice in E2_LEAVE_OUT
            for e in [entry if choice == rules["e2_leave_out"] else _on_sphere(fig1_final, fig4_theory, rules, choice)]}
    return entry


def _on_sphere(fig1_final: pd.DataFrame | None, fig4_theory: pd.DataFrame | None, rules: dict[str, Any],
               leave_out: str) -> dict[str, Any]:
    """:func:`claim_on_sphere` with ``leave_out`` (one of :data:`E2_LEAVE_OUT`) and validated rules."""
    what = {"flat": ("certified, non-flat local maxima (local_max = True, flat = False)",
                     " Flat maxima (the loss is locally constant there to the certificate's resolution, e.g. every "
                     "hidden ReLU inactive) are left out of the dataset groups (claims.e2_leave_out = flat; chosen "
                     "after the runs were seen: details.sensitivity gives all three choices)."),
            "constant": ("certified, non-constant local maxima (local_max = True, constant = False)",
                         " Exactly constant maxima (grad = 0, no probe changes the loss) are left out of the dataset "
                         "groups (claims.e2_leave_out = constant; details.sensitivity gives all three choices)."),
            "none": ("certified local maxima (local_max = True)", "")}[leave_out]
    stat = f"fraction of {what[0]} that lie on the sphere ||delta|| = eps"
    rule = _fraction_rule(rules, "(scale, checkpoint) of the dataset probes and per (m, scale) of the theory setting",
                          "seeds (theory: trials)")
    rule += what[1]
    groups, n_runs, notes = [], 0, {}
    have1 = fig1_final is not None and len(fig1_final) > 0
    have4 = fig4_theory is not None and len(fig4_theory) > 0
    if not (have1 or have4):
        return _missing(2, CLAIM2, stat, rule, "fig1_final and fig4_theory")
    rng = _rng(rules, 2)
    notes["nonfinite"] = 0
    if have1:
        df, nf = _drop_nonfinite(fig1_final.reset_index(drop=True), "final")
        notes["nonfinite"] += nf
        have1 = len(df) > 0
    if have4:
        th, nf = _drop_nonfinite(fig4_theory.reset_index(drop=True), "theory")
        notes["nonfinite"] += nf
        have4 = len(th) > 0
    if not (have1 or have4):
        out = _missing(2, CLAIM2, stat, rule, "fig1_final and fig4_theory")
        out["details"]["nonfinite"] = notes["nonfinite"]
        return out
    if have1:
        cert = _as_bool(df["local_max"])
        column = None if leave_out == "none" else leave_out
        flat = _as_bool(df[column]) if column in df else np.zeros(len(df), dtype=bool)
        lm = cert & ~flat  # flat points pass the certificate trivially: not evidence for Lemma 4.1
        sub = df[lm].reset_index(drop=True)
        design = _TwoWay(rng, df["seed"], df["input"], rules["bootstrap"])
        gs = _fraction_groups(sub, _as_bool(sub["on_sphere"]), ["scale", "checkpoint"], design, rules)
        # groups without any certified maximum cannot say anything
        for vals, _ in df.groupby(["scale", "checkpoint"]).indices.items():
            if not any(g["scale"] == _py(vals[0]) and g["checkpoint"] == _py(vals[1]) for g in gs):
                gs.append({"scale": _py(vals[0]), "checkpoint": _py(vals[1]), "value": math.nan, "lo": math.nan,
                           "hi": math.nan, "n_seeds": 0, "n_obs": 0, "verdict": INCONCLUSIVE})
        n_flat = df.assign(_f=cert & flat).groupby(["scale", "checkpoint"])["_f"].sum()
        for g in gs:
            g["flat_excluded"] = int(n_flat.get((g["scale"], g["checkpoint"]), 0))
            groups.append({"source": "dataset", "group": f"scale {g['scale']:g}, checkpoint {g['checkpoint']}", **g})
        n_runs += int(df[["scale", "seed"]].drop_duplicates().shape[0])
        notes["dataset_maxima"] = int(lm.sum())
        notes["leave_out"] = leave_out
        notes["dataset_left_out"] = int((cert & flat).sum())
        if column is not None and column not in df:
            notes["dataset_left_out_note"] = f"the table has no {column} column: every certified maximum is counted"
        notes["dataset_probes"] = int(len(df))
    if have4:
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
               "note": "n_seeds counts seeds (dataset) or trials (theory) with a certified maximum (dataset: one "
                       "not left out); flat_excluded counts the certified maxima left out of a dataset group "
                       "(leave_out says which)",
               **notes, "groups": groups}
    stat += f" (smallest over groups: {w['source']} {w['group']})"
    return _entry(2, CLAIM2, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups], rules),
                  rule, details)


# ---- claims 3-5: rank correlations with scale ---------------------------------------------
CLAIM3 = "Smaller input scale needs fewer PGA iterations to reach a local maximum (per checkpoint)."
CLAIM4 = "Smaller input scale makes adversarial training converge faster (fewer steps to the loss threshold)."
CLAIM5 = "Smaller input scale gives a more regular adversarial loss landscape (fewer distinct maxima, less non-linear)."


def _corr_rule(rules, what: str, units: str) -> str:
    lvl = _level(rules)
    return (f"{what}: supported if the whole {lvl} bootstrap interval of Spearman's rho(scale, .) is > 0; not "
            f"supported if it is entirely < 0; inconclusive otherwise, with fewer than {rules['min_runs']} {units} "
            f"per scale, or with fewer than 2 scales. {_combine_text(rules)}")


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
    df, nonfinite = _drop_nonfinite(fig1_final.reset_index(drop=True), "final")
    if len(df) == 0:
        out = _missing(3, CLAIM3, stat, rule, "fig1_final")
        out["details"]["nonfinite"] = nonfinite
        return out
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
               "nonfinite": nonfinite, "groups": groups}
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    stat += f" (smallest over checkpoints: checkpoint {w['checkpoint']})"
    return _entry(3, CLAIM3, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups], rules),
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
    return _entry(5, CLAIM5, stat, w["value"], [w["lo"], w["hi"]], n_runs, _combine([g["verdict"] for g in groups], rules),
                  rule, details)


# ---- T1-T4: the theory setting ---------------------------------------------------------------
def _theory_groups(df: pd.DataFrame, rules) -> list[tuple[dict, np.ndarray, bool]]:
    """(setting label, row indices, counted) per (activation, d, m, scale): counted = the
    theorem's activation at a width m >= d^{5/2}."""
    out = []
    keys = ["activation", "d", "m", "scale"]
    for vals, idx in df.groupby(keys, sort=True).indices.items():
        act, d, m, s = vals
        regime = str(df["regime"].iloc[idx[0]]) if "regime" in df else "theorem"
        counted = act == rules["theorem_activation"] and regime == "theorem"
        lab = {"activation": str(act), "d": int(d), "m": int(m), "scale": float(s), "regime": regime}
        out.append((lab, idx, counted))
    return out


def power_law_slope(x, y, unit, W: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Pooled within-unit least-squares slope of log y on log x (one intercept per ``unit``, e.g.
    a trial run at several step sizes) and its replicates for unit weights ``W`` (B, n_units) —
    the slope of the data in which unit k appears W[b, k] times. Points with a non-finite or
    non-positive x or y are dropped. Returns (slope, replicates); NaN where x does not vary."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    units, u = _codes(unit)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly, u = np.log(x[ok]), np.log(y[ok]), u[ok]
    n = np.bincount(u, minlength=len(units)).astype(float)
    nz = np.where(n > 0, n, 1)
    dx = lx - (np.bincount(u, lx, minlength=len(units)) / nz)[u]
    dy = ly - (np.bincount(u, ly, minlength=len(units)) / nz)[u]
    sxy = np.bincount(u, dx * dy, minlength=len(units))
    sxx = np.bincount(u, dx * dx, minlength=len(units))
    with np.errstate(invalid="ignore", divide="ignore"):
        point = float(sxy.sum() / sxx.sum()) if sxx.sum() > 0 else math.nan
        boot = (W @ sxy) / (W @ sxx) if W is not None else np.zeros(0)
    return point, boot


def slope_verdict(lo: float, hi: float, bound: float, tolerance: float, enough: bool) -> str:
    """A lower bound on a slope ('slope >= bound', e.g. O(eta^-2) iterations -> slope >= -2):
    supported if the interval's lower end is >= bound - tolerance, not supported if its upper end
    is < bound - tolerance, inconclusive otherwise or without enough data."""
    if not enough or not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if lo >= bound - tolerance:
        return SUPPORTED
    if hi < bound - tolerance:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _runs_obj(count: int, unit: str, tables: Sequence[str]) -> dict[str, Any]:
    return {"count": int(count), "unit": unit, "tables": list(tables)}


def _result(cid: str, statistic: str, groups: list[dict], rule: str, runs: dict, details: dict,
            rules, sign: int = 1, verdict: str | None = None) -> dict[str, Any]:
    """One claim's entry; the headline is the least favourable counted group."""
    counted = [g for g in groups if g.get("counted", True)]
    w = _worst(counted, sign=sign) if counted else None
    if verdict is None:
        verdict = _combine([g["verdict"] for g in counted], rules)
    loc, text, evidence = PAPER[cid]
    if w is not None:
        statistic += f" (least favourable counted group: {w.get('group', '')})"
    return {"id": cid, "kind": "paper" if cid.startswith("T") else "extension", "paper_location": loc,
            "claim": text, "paper_evidence": evidence, "statistic": statistic,
            "value": None if w is None else float(w["value"]),
            "interval": [math.nan, math.nan] if w is None else [float(w["lo"]), float(w["hi"])],
            "runs": runs, "n_runs": runs["count"], "verdict": verdict, "rule": rule,
            "details": {**details, "groups": groups}}


def _missing_result(cid: str, statistic: str, rule: str, tables: Sequence[str], note: str) -> dict[str, Any]:
    loc, text, evidence = PAPER[cid]
    return {"id": cid, "kind": "paper" if cid.startswith("T") else "extension", "paper_location": loc,
            "claim": text, "paper_evidence": evidence, "statistic": statistic, "value": None,
            "interval": [math.nan, math.nan], "runs": _runs_obj(0, "none", tables), "n_runs": 0,
            "verdict": INCONCLUSIVE, "rule": rule, "details": {"note": note, "groups": []}}


def _empty(df) -> bool:
    return df is None or len(df) == 0


def claim_t1_theorem31(runs: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T1 (Theorem 3.1): per setting, the pooled within-trial log-log slope of the iterations to
    the sphere (tangent gradient <= eta^{1/2}) on eta, against the bound's -2, and of the distance
    of that point to the refined maximum (Corollary 3.1) on eta, against 1/2; trials resampled.
    Runs that missed the sphere count ``max_steps`` iterations (censored); the distance uses the runs
    whose refinement met its tolerance (``refined``)."""
    rules = _rules(cfg)
    b1, b2, tol = rules["iterations_slope"], rules["distance_slope"], rules["slope_tolerance"]
    stat = "log-log slope of iterations on eta (bound: >= {:g}) and of distance to the maximum on eta (>= {:g})".format(
        b1, b2)
    rule = (f"per setting and quantity: supported if the {_level(rules)} bootstrap interval of the slope has its lower end "
            f">= bound - {tol:g}, not supported if its upper end is < bound - {tol:g}, inconclusive otherwise or with "
            f"fewer than {rules['min_runs']} trials or 2 step sizes. Counted: {rules['theorem_activation']} at "
            f"m >= d^(5/2); the other settings are contrasts. {_combine_text(rules)}")
    if _empty(runs):
        return _missing_result("T1", stat, rule, ["ext_theory/pga.csv"], "table ext_theory/pga.csv is missing or empty")
    df, nonfinite = _drop_nonfinite(runs.reset_index(drop=True), "theory")
    if _empty(df):
        out = _missing_result("T1", stat, rule, ["ext_theory/pga.csv"], "every run of ext_theory/pga.csv is non-finite")
        out["details"]["nonfinite"] = nonfinite
        return out
    rng = _rng(rules, 11)
    groups = []
    for lab, idx, counted in _theory_groups(df, rules):
        sub = df.iloc[idx]
        trials, _ = _codes(sub["trial"])
        W = _resample_weights(rng, len(trials), rules["bootstrap"])
        enough = len(trials) >= rules["min_runs"] and sub["eta"].nunique() >= 2
        reached = _as_bool(sub["reached"])
        refined = reached & (_as_bool(sub["refined"]) if "refined" in sub else True)
        name = f"{lab['activation']} d={lab['d']} m={lab['m']} s={lab['scale']:g}"
        for qty, col, bound, ok in (("iterations", "iterations", b1, np.ones(len(sub), bool)),
                                    ("distance", "distance", b2, refined)):
            y = pd.to_numeric(sub[col], errors="coerce").to_numpy(float)
            y = np.where(ok, y, np.nan)
            point, boot = power_law_slope(sub["eta"].to_numpy(float), y, sub["trial"].to_numpy(), W)
            lo, hi = _interval(boot, rules["confidence"])
            # the bound is a lower bound: the favourable direction is value - bound large
            groups.append({"group": f"{name}: {qty}", **lab, "quantity": qty, "bound": bound, "value": point,
                           "lo": lo, "hi": hi, "margin": point - bound, "n_trials": int(len(trials)),
                           "reached": float(reached.mean()), "counted": counted,
                           "verdict": slope_verdict(lo, hi, bound, tol, enough and np.isfinite(point))})
    counted = [g for g in groups if g["counted"]]
    for g in groups:
        g["_key"] = g["margin"]
    w = _worst(counted, key="_key") if counted else None
    for g in groups:
        g.pop("_key")
    n = int(df[["activation", "d", "m", "scale", "trial"]].drop_duplicates().shape[0])
    med = (df.groupby(["activation", "d", "m", "eta_over_eps2"])["iterations"].median().reset_index()
           .rename(columns={"iterations": "median_iterations"}).to_dict("records"))
    details = {"resampling": "trial ids with replacement (a trial's runs at every eta move together)",
               "fraction_reached": float(_as_bool(df["reached"]).mean()),
               "fraction_reached_counted": float(np.mean([g["reached"] for g in counted])) if counted else math.nan,
               "median_iterations": med, "nonfinite": nonfinite}
    res = _result("T1", stat, groups, rule, _runs_obj(n, "(setting, trial): network, input, label and start", [
        "ext_theory/pga.csv"]), details, rules)
    if w is not None:  # headline: the group closest to (or furthest below) its bound
        res["value"], res["interval"] = float(w["value"]), [float(w["lo"]), float(w["hi"])]
        res["statistic"] = stat + f" (headline: the counted group closest to its bound: {w['group']})"
    return res


def _fraction_group(sub: pd.DataFrame, success: np.ndarray, W: np.ndarray, trials, rules, **lab) -> dict:
    tcode = np.searchsorted(trials, sub["trial"].to_numpy())
    point, boot = _one_way_fraction(W, tcode, success, len(trials))
    lo, hi = _interval(boot, rules["confidence"])
    n_tr = int(sub["trial"].nunique())
    return {**lab, "value": point, "lo": lo, "hi": hi, "n_trials": n_tr, "n_obs": int(len(sub)),
            "verdict": _fraction_verdict(lo, hi, rules["min_fraction"], n_tr >= rules["min_runs"] and len(sub) > 0)}


def claim_t2_interior_ascent(runs: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T2 (Lemma 4.1): per setting, the fraction of runs (with at least one step inside the ball)
    whose every interior step raised the loss by >= min_rate·eta, and the fraction of runs that
    end on the sphere; trials resampled."""
    rules = _rules(cfg)
    stat = f"fraction of runs whose interior steps all raise the loss by >= {rules['min_rate']:g} * eta; fraction ending on the sphere"
    rule = (_fraction_rule(rules, "setting and quantity", "trials") + f" Counted: {rules['theorem_activation']} at "
            "m >= d^(5/2).")
    if _empty(runs):
        return _missing_result("T2", stat, rule, ["ext_theory/pga.csv"], "table ext_theory/pga.csv is missing or empty")
    df, nonfinite = _drop_nonfinite(runs.reset_index(drop=True), "theory")
    if _empty(df):
        out = _missing_result("T2", stat, rule, ["ext_theory/pga.csv"], "every run of ext_theory/pga.csv is non-finite")
        out["details"]["nonfinite"] = nonfinite
        return out
    rng = _rng(rules, 12)
    groups = []
    for lab, idx, counted in _theory_groups(df, rules):
        sub = df.iloc[idx].reset_index(drop=True)
        trials = np.unique(sub["trial"].to_numpy())
        W = _resample_weights(rng, len(trials), rules["bootstrap"])
        name = f"{lab['activation']} d={lab['d']} m={lab['m']} s={lab['scale']:g}"
        n_int = pd.to_numeric(sub["interior_steps"], errors="coerce").to_numpy(float)
        rate = pd.to_numeric(sub["min_rate"], errors="coerce").to_numpy(float)
        has = n_int > 0
        g1 = _fraction_group(sub[has], rate[has] >= rules["min_rate"], W, trials, rules, group=f"{name}: interior rate",
                             **lab, quantity="interior rate >= min_rate", counted=counted)
        g1["lowest_rate"] = float(np.nanmin(rate[has])) if has.any() else math.nan
        g1["median_rate"] = float(np.nanmedian(rate[has])) if has.any() else math.nan
        g2 = _fraction_group(sub, _as_bool(sub["on_sphere"]), W, trials, rules, group=f"{name}: ends on sphere", **lab,
                             quantity="ends on the sphere", counted=counted)
        groups += [g1, g2]
    n = int(df[["activation", "d", "m", "scale", "trial"]].drop_duplicates().shape[0])
    return _result("T2", stat, groups, rule, _runs_obj(n, "(setting, trial)", ["ext_theory/pga.csv"]),
                   {"resampling": "trial ids with replacement",
                    "note": "runs whose first step already reaches the sphere have no interior step and are left out of the rate",
                    "nonfinite": nonfinite},
                   rules)


def claim_t3_no_saddles(hessian: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T3 (Lemmas 4.3-4.4): per setting with d >= 3, the fraction of converged points on the
    sphere whose constrained Hessian is definite (all tangent eigenvalues of one sign); d = 2 is
    reported but not counted (a one-dimensional tangent space has no saddle)."""
    rules = _rules(cfg)
    stat = "fraction of converged points whose constrained Hessian P(H - mu I)P is definite on the tangent space"
    rule = (_fraction_rule(rules, "setting", "trials") + f" Counted: {rules['theorem_activation']} at m >= d^(5/2) "
            "and d >= 3.")
    if _empty(hessian):
        return _missing_result("T3", stat, rule, ["ext_theory/hessian.csv"],
                               "table ext_theory/hessian.csv is missing or empty")
    df = hessian.reset_index(drop=True)
    rng = _rng(rules, 13)
    groups = []
    for lab, idx, counted in _theory_groups(df, rules):
        sub = df.iloc[idx].reset_index(drop=True)
        trials = np.unique(sub["trial"].to_numpy())
        W = _resample_weights(rng, len(trials), rules["bootstrap"])
        kind = sub["kind"].astype(str).to_numpy()
        definite = np.isin(kind, ["maximum", "minimum"])
        g = _fraction_group(sub, definite, W, trials, rules,
                            group=f"{lab['activation']} d={lab['d']} m={lab['m']} s={lab['scale']:g}", **lab,
                            counted=counted and lab["d"] >= 3)
        g.update({"maxima": int((kind == "maximum").sum()), "minima": int((kind == "minimum").sum()),
                  "saddles": int((kind == "saddle").sum()), "degenerate": int((kind == "degenerate").sum()),
                  "largest_eigenvalue": float(pd.to_numeric(sub["eig_max"]).max()),
                  "median_hessian_over_mu": float(np.median(pd.to_numeric(sub["hessian_norm"]) /
                                                            pd.to_numeric(sub["multiplier"]).abs()))})
        groups.append(g)
    n = int(df[["activation", "d", "m", "scale", "trial"]].drop_duplicates().shape[0])
    return _result("T3", stat, groups, rule, _runs_obj(n, "(setting, trial) with a converged point",
                                                       ["ext_theory/hessian.csv"]),
                   {"resampling": "trial ids with replacement",
                    "caveat": "the points are where PGA ascent converged, which favours maxima; a saddle would show as "
                              "a point with eigenvalues of both signs",
                    "eigenvalues": "Hessians from torch.func (hessian under vmap), Lagrange multiplier mu = g.delta/eps^2"},
                   rules)


def claim_t4_single_maximum(maxima: pd.DataFrame | None, fig1_maxima: pd.DataFrame | None = None,
                            cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T4 (Theorem 5.1): per setting, at every grid eps within the theorem's regime (eps <=
    eps_theorem; the smallest grid eps when none is), the fraction of networks whose restarts
    found exactly one maximum (among networks with at least one converged restart); the estimated threshold (the single-maximum fraction falls below
    1/2) per setting is reported. The Fig. 1 table (if present) adds one group per scale at its
    smallest ratio, counted when it has at least ``min_runs`` rows."""
    from .theory import estimate_threshold

    rules = _rules(cfg)
    stat = "fraction of networks with a single distinct maximum at eps within the theorem's regime"
    rule = (_fraction_rule(rules, "(setting, eps)", "networks") + f" Counted: {rules['theorem_activation']} at "
            "m >= d^(5/2); Fig. 1 groups when they have enough rows.")
    if _empty(maxima) and _empty(fig1_maxima):
        return _missing_result("T4", stat, rule, ["ext_theory/maxima.csv", "paper_fig1_landscapes/maxima.csv"],
                               "tables ext_theory/maxima.csv and paper_fig1_landscapes/maxima.csv are missing or empty")
    rng = _rng(rules, 14)
    groups, thresholds, n = [], [], 0
    if not _empty(maxima):
        df = maxima.reset_index(drop=True)
        for lab, idx, counted in _theory_groups(df, rules):
            sub = df.iloc[idx].reset_index(drop=True)
            trials = np.unique(sub["trial"].to_numpy())
            W = _resample_weights(rng, len(trials), rules["bootstrap"])
            single = pd.to_numeric(sub["distinct_maxima"]).to_numpy() == 1
            fr = sub.assign(single=single).groupby("eps")["single"].mean()
            eps_th = float(sub["eps_theorem"].iloc[0]) if "eps_theorem" in sub else math.nan
            tau = estimate_threshold(fr.index.to_numpy(float), fr.to_numpy(float), level=0.5)
            dm = pd.to_numeric(sub["distinct_maxima"]).to_numpy(float)  # NaN: no converged restart
            ok_dm = np.isfinite(dm)
            rho = spearman(sub["eps"].to_numpy(float)[ok_dm], dm[ok_dm]) if ok_dm.sum() >= 2 else math.nan
            thresholds.append({"source": "theory", **lab, "eps_theorem": eps_th, "threshold": tau,
                               "rho_eps_distinct": rho,
                               "single_share_by_eps": _by_eps(fr)})
            grid = sorted(sub["eps"].unique())
            inside = [e for e in grid if e <= eps_th * (1 + 1e-9)] or grid[:1]
            conv = pd.to_numeric(sub["converged"]).to_numpy() > 0 if "converged" in sub else np.ones(len(sub), bool)
            for e in inside:
                m_ = (sub["eps"] == e).to_numpy() & conv  # networks without a converged restart say nothing
                g = _fraction_group(sub[m_], single[m_], W, trials, rules,
                                    group=f"{lab['activation']} d={lab['d']} m={lab['m']} eps={e:g}",
                                    source="theory", **lab, eps=float(e), counted=counted)
                g["no_converged_restart"] = int(((sub["eps"] == e).to_numpy() & ~conv).sum())
                groups.append(g)
        n += int(df[["activation", "d", "m", "scale", "trial"]].drop_duplicates().shape[0])
    if not _empty(fig1_maxima):
        f1 = fig1_maxima.reset_index(drop=True)
        unit = next((c for c in ("seed", "example", "trial") if c in f1), None)  # the independent landscapes
        for s, idx in f1.groupby("scale", sort=True).indices.items():
            sub = f1.iloc[idx].reset_index(drop=True)
            single = pd.to_numeric(sub["distinct_maxima"]).to_numpy() == 1
            fr = sub.assign(single=single).groupby("eps")["single"].mean()
            tau = estimate_threshold(fr.index.to_numpy(float), fr.to_numpy(float), level=0.5)
            thresholds.append({"source": "fig1", "scale": float(s), "threshold": tau, "threshold_ratio": tau / float(s),
                               "single_share_by_eps": _by_eps(fr)})
            r0 = sub["ratio"].min()
            m_ = (sub["ratio"] == r0).to_numpy()
            s2 = sub[m_].reset_index(drop=True)
            s2 = s2.assign(trial=s2[unit] if unit else np.arange(len(s2)))
            trials = np.unique(s2["trial"].to_numpy())
            W = _resample_weights(rng, len(trials), rules["bootstrap"])
            g = _fraction_group(s2, single[m_], W, trials, rules, group=f"Fig. 1 scale {float(s):g}, ratio {r0:g}",
                                source="fig1", scale=float(s), eps=float(s2["eps"].iloc[0]) if "eps" in s2 else math.nan)
            g["counted"] = g["n_trials"] >= rules["min_runs"]
            groups.append(g)
        n += int(len(f1))
    return _result("T4", stat, groups, rule, _runs_obj(n, "(setting, network) of the theory setting; Fig. 1 landscapes",
                                                       ["ext_theory/maxima.csv", "paper_fig1_landscapes/maxima.csv"]),
                   {"resampling": "network (trial) ids with replacement",
                    "thresholds": thresholds,
                    "threshold_rule": "geometric midpoint between the largest grid eps up to which at least half of the "
                                      "networks have a single maximum and the next grid eps (the largest grid eps, a "
                                      "lower bound, when every grid eps passes)"}, rules)


def _by_eps(fr: pd.Series) -> str:
    """'eps: share; ...' of a Series indexed by eps (one table cell)."""
    return "; ".join(f"{e:.3g}: {v:.2f}" for e, v in fr.items())


def _escape_rule(rules, what: str, x: str) -> str:
    lvl = _level(rules)
    return (f"{what}: supported if the whole {lvl} bootstrap interval of Spearman's rho({x}, escape time) is > 0; not "
            f"supported if it is entirely < 0; inconclusive otherwise, with fewer than {rules['min_runs']} (seed, input) "
            f"pairs, or with fewer than 2 values of the {x}. Runs that never escape count as +inf (worst rank, tied). "
            f"{_combine_text(rules)}")


def _escape_times(df: pd.DataFrame) -> np.ndarray:
    """Escape times with never-escaped runs (NaN or +inf) as +inf (the worst rank, tied)."""
    t = pd.to_numeric(df["escape_time"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(t), t, np.inf)


def _escape_rho_groups(df: pd.DataFrame, y: np.ndarray, rules: Mapping[str, Any], *, claim_no: int, by, x: str,
                       x_label, never_escaped: bool) -> list[tuple[tuple[float, ...], np.ndarray, np.ndarray, dict]]:
    """The per-group bootstrap of T5 and T6: Spearman rho(x, escape time) in each group of rows.

    ``df`` has one row per run with columns ``seed``, ``input``, ``x`` and those of ``by`` (a column
    name or a list of them); ``y`` (len(df),) the escape times of :func:`_escape_times` (+inf for
    runs that never escape). One two-way bootstrap design (seeds and inputs resampled
    independently with replacement, ``rules["bootstrap"]`` replicates, numpy generator
    ``_rng(rules, claim_no)``) is drawn for the whole table and shared by every group. In each group
    (``df.groupby(by, sort=True)``): point rho = Spearman's rank correlation of (x, y) over the
    group's rows, its replicates the weighted rank correlation under the design's row weights
    W (B, n_rows) = w_seed[:, seed] * w_input[:, input], the percentile interval at
    ``rules["confidence"]`` and the sign verdict (:func:`_corr_group`). The group counts as
    enough data when n_seeds * n_inputs >= ``rules["min_runs"]`` (n_seeds: the fewest seeds at
    any value of x) and x takes at least two values.

    Returns, per group in sorted order, (key, idx, W, g): key the group's ``by`` values as a
    tuple, idx the group's row positions in ``df``, W its bootstrap weights, and g the table row
    {"group": "<by> <v:g>, ...", <by>: v, ..., value, lo, hi, verdict, n_seeds, n_inputs, n_obs,
    [never_escaped,] median_escape_by_<x>: "<x_label(v)>: <median:g>; ..."}.
    """
    design = _TwoWay(_rng(rules, claim_no), df["seed"], df["input"], rules["bootstrap"])
    names = [by] if isinstance(by, str) else list(by)
    out = []
    for key, idx in df.groupby(by, sort=True).indices.items():
        key = tuple(float(k) for k in (key if isinstance(key, tuple) else (key,)))
        sub = df.iloc[idx]
        W = design.row_weights(sub["seed"].to_numpy(), sub["input"].to_numpy())
        n_seeds = int(sub.groupby(x)["seed"].nunique().min())
        n_inputs = int(sub["input"].nunique())
        enough = n_seeds * n_inputs >= rules["min_runs"] and sub[x].nunique() >= 2
        g = {"group": ", ".join(f"{n} {k:g}" for n, k in zip(names, key)), **dict(zip(names, key))}
        g.update(_corr_group(sub[x].to_numpy(float), y[idx], W, rules, enough))
        g.update({"n_seeds": n_seeds, "n_inputs": n_inputs, "n_obs": int(len(sub))})
        if never_escaped:
            g["never_escaped"] = int(np.isinf(y[idx]).sum())
        med = pd.Series(y[idx]).groupby(sub[x].to_numpy()).median()
        g[f"median_escape_by_{x}"] = "; ".join(f"{x_label(v)}: {m:g}" for v, m in med.items())
        out.append((key, idx, W, g))
    return out


def claim_t5_escape_by_scale(escape: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T5 (Sec. 5.1.2, Fig. 2): per ratio, Spearman rho(scale, escape time) over (scale, seed,
    input) runs at initialisation, seeds and inputs resampled independently; a positive rho
    means slower escape at larger scale, i.e. the paper's claim."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, escape time) per ratio over (scale, seed, input) runs"
    rule = _escape_rule(rules, "per ratio", "scale")
    tab = ["paper_fig2_escape_by_scale/escape.csv"]
    if _empty(escape):
        return _missing_result("T5", stat, rule, tab, "table paper_fig2_escape_by_scale/escape.csv is missing or empty "
                                                      "(its figure is not built by this configuration)")
    df = escape.reset_index(drop=True)
    if "checkpoint" in df and df["checkpoint"].nunique() > 1:
        df = df[df["checkpoint"] == df["checkpoint"].min()].reset_index(drop=True)
    df, nonfinite = _drop_nonfinite(df, "escape")
    if _empty(df):
        out = _missing_result("T5", stat, rule, tab, "every run of paper_fig2_escape_by_scale/escape.csv is non-finite")
        out["details"]["nonfinite"] = nonfinite
        return out
    y = _escape_times(df)
    groups = []
    for _, idx, _, g in _escape_rho_groups(df, y, rules, claim_no=15, by="ratio", x="scale",
                                           x_label=lambda s: f"{s:g}", never_escaped=True):
        sub = df.iloc[idx]
        if "relative_step" in sub:
            rs = pd.to_numeric(sub["relative_step"], errors="coerce").groupby(sub["scale"].to_numpy()).median()
            g["median_relative_step_by_scale"] = "; ".join(f"{s:g}: {v:.3g}" for s, v in rs.items())
        groups.append(g)
    n = int(df[["seed", "input"]].drop_duplicates().shape[0])
    return _result("T5", stat, groups, rule, _runs_obj(n, "(seed, input) pairs, each run at every (scale, ratio)", tab),
                   {"resampling": "seeds and inputs, independently with replacement (one seed: over inputs only)",
                    "caveat": "the absolute step eta is the same at every scale (the paper's update), so the relative "
                              "step eta*||grad||/eps changes with the scale (medians per scale in the groups); where it "
                              "falls monotonically with the scale these runs cannot tell a landscape effect from a "
                              "step-size effect", "nonfinite": nonfinite}, rules)


def claim_t6_escape_during_training(escape: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T6 (Fig. 3, Sec. 6): per (scale, ratio), Spearman rho(checkpoint, escape time) over
    (checkpoint, seed, input) runs, seeds and inputs resampled; positive = escaping gets harder
    with training. With two or more scales, details compare rho at the largest and smallest
    scale ('more so at a large input scale')."""
    rules = _rules(cfg)
    stat = "Spearman rho(training epochs at the checkpoint, escape time) per (scale, ratio)"
    rule = _escape_rule(rules, "per (scale, ratio)", "checkpoint")
    tab = ["paper_fig3_escape_during_training/escape.csv"]
    if _empty(escape):
        return _missing_result("T6", stat, rule, tab, "table paper_fig3_escape_during_training/escape.csv is missing or "
                                                      "empty (its figure is not built by this configuration)")
    df, nonfinite = _drop_nonfinite(escape.reset_index(drop=True), "escape")
    if _empty(df):
        out = _missing_result("T6", stat, rule, tab,
                              "every run of paper_fig3_escape_during_training/escape.csv is non-finite")
        out["details"]["nonfinite"] = nonfinite
        return out
    y = _escape_times(df)
    groups, rhos = [], {}
    for key, idx, W, g in _escape_rho_groups(df, y, rules, claim_no=16, by=["scale", "ratio"], x="checkpoint",
                                             x_label=lambda c: f"{int(c)}", never_escaped=False):
        groups.append(g)
        rhos[key] = (df.iloc[idx], W, idx)
    details: dict[str, Any] = {"resampling": "seeds and inputs, independently with replacement",
                               "nonfinite": nonfinite}
    scales = sorted({k[0] for k in rhos})
    if len(scales) >= 2:
        more = []
        for r in sorted({k[1] for k in rhos}):
            if (scales[0], r) in rhos and (scales[-1], r) in rhos:
                (a, Wa, ia), (b, Wb, ib) = rhos[(scales[0], r)], rhos[(scales[-1], r)]
                pa = spearman(a["checkpoint"].to_numpy(float), y[ia])
                pb = spearman(b["checkpoint"].to_numpy(float), y[ib])
                ba = weighted_spearman(a["checkpoint"].to_numpy(float), y[ia], Wa)
                bb = weighted_spearman(b["checkpoint"].to_numpy(float), y[ib], Wb)
                lo, hi = _interval(bb - ba, rules["confidence"])
                more.append({"ratio": r, "small_scale": scales[0], "large_scale": scales[-1], "rho_small": pa,
                             "rho_large": pb, "difference": pb - pa, "lo": lo, "hi": hi,
                             "verdict": _sign_verdict(lo, hi, np.isfinite(pb - pa))})
        details["more_so_at_large_scale"] = more
        details["more_so_note"] = ("difference of rho(checkpoint, escape time) between the largest and the smallest "
                                   "scale; reported, not part of the verdict (never-escaping runs tie at +inf, which "
                                   "caps rho at both scales)")
    else:
        details["more_so_at_large_scale"] = "not run: the table has a single scale"
    n = int(df[["seed", "input"]].drop_duplicates().shape[0])
    return _result("T6", stat, groups, rule, _runs_obj(n, "(training seed, input) pairs probed at every checkpoint", tab),
                   details, rules)


def claim_t7_training_vs_scale(runs: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T7 (Abstract, Sec. 6): :func:`claim_training_vs_scale` on the extension figure's training
    runs, with the caveat that the paper's own evidence is the escape behaviour (T5)."""
    rules = _rules(cfg)
    e = claim_training_vs_scale(runs, rules)
    loc, text, evidence = PAPER["T7"]
    d = dict(e["details"])
    d["caveat"] = ("the paper has no training-convergence experiment; its evidence for this statement is Fig. 2 (T5). "
                   "Our training runs use the two-layer network of ext_training_convergence, a fixed learning rate "
                   "across scales and a loss threshold of our choice.")
    return {"id": "T7", "kind": "paper", "paper_location": loc, "claim": text, "paper_evidence": evidence,
            "statistic": e["statistic"], "value": e["value"], "interval": e["interval"],
            "runs": _runs_obj(e["n_runs"], "(scale, seed) training runs", ["ext_training_convergence/runs.csv"]),
            "n_runs": e["n_runs"], "verdict": e["verdict"], "rule": e["rule"], "details": d}


def _as_extension(e: dict[str, Any], cid: str, unit: str, tables: Sequence[str]) -> dict[str, Any]:
    loc, text, evidence = PAPER[cid]
    out = {"id": cid, "kind": "extension", "paper_location": loc, "claim": text, "paper_evidence": evidence}
    out.update({k: e[k] for k in ("statistic", "value", "interval", "verdict", "rule", "details")})
    out["runs"] = _runs_obj(e["n_runs"], unit, tables)
    out["n_runs"] = e["n_runs"]
    return out


def cli_flags(rules: Mapping[str, Any] | None, config_name: str) -> str:
    """The verdict rules (the configuration's ``claims:`` section, defaults filled in) and the
    configuration name as the typed flags of ``scripts/claims.py`` (used by the workflow)."""
    r = _rules(rules)
    return " ".join(f"--{k.replace('_', '-')} {r[k]}" for k in DEFAULT_RULES) + f" --config-name {config_name}"


# ---- all claims ------------------------------------------------------------------------------
def evaluate_claims(tables: Mapping[str, pd.DataFrame | None], cfg: Mapping[str, Any] | None) -> list[dict]:
    """T1-T7, then the extensions E1-E4. ``tables`` maps names of :data:`TABLES` to DataFrames (a
    missing table makes the claims that need it inconclusive); ``cfg`` is the ``claims:`` section
    of the configuration (or a whole configuration)."""
    rules = _rules(cfg)
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise ValueError(f"tables: unknown names {sorted(unknown)}; allowed: {list(TABLES)}")
    t = {k: tables.get(k) for k in TABLES}
    probe = "(scale, seed) probe runs"
    calls: list[Callable[[], dict]] = [
        lambda: claim_t1_theorem31(t["theory_runs"], rules),
        lambda: claim_t2_interior_ascent(t["theory_runs"], rules),
        lambda: claim_t3_no_saddles(t["theory_hessian"], rules),
        lambda: claim_t4_single_maximum(t["theory_maxima"], t["fig1_maxima"], rules),
        lambda: claim_t5_escape_by_scale(t["escape_scale"], rules),
        lambda: claim_t6_escape_during_training(t["escape_training"], rules),
        lambda: claim_t7_training_vs_scale(t["training_runs"], rules),
        lambda: _as_extension(claim_pga_converges(t["pga_final"], rules), "E1", probe, ["ext_pga_convergence/final.csv"]),
        lambda: _as_extension(claim_on_sphere(t["pga_final"], None, rules), "E2", probe, ["ext_pga_convergence/final.csv"]),
        lambda: _as_extension(claim_pga_iterations_vs_scale(t["pga_final"], rules), "E3", probe,
                              ["ext_pga_convergence/final.csv"]),
        lambda: _as_extension(claim_regularity_vs_scale(t["landscape_regularity"], rules), "E4", probe,
                              ["ext_landscape_statistics/regularity.csv"]),
    ]
    return [c() for c in calls]


#: A small JSON schema of claims.json (what other tools may rely on).
CLAIMS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["config_name", "rules", "claims"],
    "properties": {
        "config_name": {"type": "string"},
        "rules": {"type": "object"},
        "claims": {
            "type": "array",
            "minItems": 7,
            "items": {
                "type": "object",
                "required": ["id", "kind", "paper_location", "claim", "paper_evidence", "statistic", "value",
                             "interval", "runs", "verdict", "rule"],
                "properties": {
                    "id": {"type": "string", "pattern": "^(T[1-7]|E[0-9]+)$"},
                    "kind": {"enum": ["paper", "extension"]},
                    "paper_location": {"type": "string", "minLength": 1},
                    "statistic": {"type": "string", "minLength": 1},
                    "value": {"type": ["number", "null"]},
                    "interval": {"type": "array", "minItems": 2, "maxItems": 2,
                                 "items": {"type": ["number", "null"]}},
                    "runs": {"type": "object", "required": ["count", "unit", "tables"],
                             "properties": {"count": {"type": "integer", "minimum": 0},
                                            "unit": {"type": "string"},
                                            "tables": {"type": "array", "items": {"type": "string"}}}},
                    "verdict": {"enum": list(VERDICTS)},
                    "rule": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


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
            if c == "verdict":
                cells.append(f"**{v}**")
            elif c == "interval" and isinstance(v, (list, tuple)) and len(v) == 2:
                cells.append(_ival(v))
            else:
                cells.append(_fmt(v))
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_markdown(results: list[dict], config_name: str, rules: Mapping[str, Any] | None = None) -> str:
    """A Markdown report: a summary table (claim, paper's evidence, statistic and interval, runs,
    verdict), then one section per claim with its rule, details and groups."""
    r = _rules(rules) if rules is not None else None
    lvl = f"{r['confidence']:.0%}" if r else "CI"
    lines = [f"# The paper's statements checked against the runs of configuration `{config_name}`", "",
             "Deng, He, Huang & Su (ICML 2020), *Towards Understanding the Dynamics of the First-Order Adversaries*. "
             "T1-T7 are the paper's statements, checked where the paper makes them; E1-E4 are our extensions (checks "
             "on trained networks that the paper does not make). Every verdict follows a rule fixed in advance in the "
             "configuration (`claims:`), except E2's `e2_leave_out`, chosen after the runs were seen (E2's "
             "sensitivity table gives its verdict under every choice); intervals are percentile bootstraps; *runs* "
             "counts the independent units a statistic rests on.", ""]
    if r:
        lines += ["Rules: " + ", ".join(f"`{k}` = {v}" for k, v in r.items()), ""]
    lines += [f"| id | paper | paper's evidence | our statistic | value | {lvl} interval | runs | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for e in results:
        lines.append(f"| {e['id']} | {_fmt(e['paper_location'])} | {_fmt(e['paper_evidence'])} | {_fmt(e['statistic'])} "
                     f"| {_fmt(e['value'])} | {_ival(e['interval'])} | {e['runs']['count']} | **{e['verdict']}** |")
    for e in results:
        d = dict(e.get("details") or {})
        groups = d.pop("groups", [])
        extra = {k: d.pop(k) for k in list(d) if isinstance(d[k], list) and d[k] and isinstance(d[k][0], dict)}
        # a mapping of mappings (E2's sensitivity: choice -> value, interval, verdict) is a table too
        extra.update({k: [{"choice": c, **row} for c, row in d.pop(k).items()] for k in list(d)
                      if isinstance(d[k], dict) and d[k] and all(isinstance(v, dict) for v in d[k].values())})
        lines += ["", f"## {e['id']} ({e['paper_location']}): {e['claim']}", "",
                  f"- verdict: **{e['verdict']}**",
                  f"- statistic: {e['statistic']} = {_fmt(e['value'])}, {lvl} interval {_ival(e['interval'])}",
                  f"- runs: {e['runs']['count']} ({e['runs']['unit']}; tables: {', '.join(e['runs']['tables'])})",
                  f"- the paper's evidence: {e['paper_evidence']}",
                  f"- rule: {e['rule']}"]
        nonfinite = d.pop("nonfinite", 0)
        if nonfinite:  # a line only when rows were left out (claims.md unchanged otherwise)
            lines.append(f"- nonfinite: {_fmt(nonfinite)} rows left out (a NaN or inf loss: no result, neither a "
                         f"success nor a failure)")
        for k, v in d.items():
            lines.append(f"- {k.replace('_', ' ')}: {_fmt(v) if not isinstance(v, list) else ', '.join(map(_fmt, v))}")
        if groups:
            counts = ", ".join(f"{n} {v}" for v in VERDICTS if (n := sum(g.get("verdict") == v for g in groups)))
            lines += ["", f"Groups ({counts}):" if counts else "Groups:", ""]
            lines += _table(groups)
        for k, rows in extra.items():
            lines += ["", f"{k.replace('_', ' ').capitalize()}:", ""] + _table(rows)
    return "\n".join(lines) + "\n"
