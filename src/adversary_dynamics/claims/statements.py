"""The paper's statements T1-T7 and our extensions E1-E4, each checked ONE way.

Every ``claim_*`` function takes its table(s) (pandas DataFrames, see :data:`TABLES`) and the
verdict rules (:func:`~adversary_dynamics.claims.rules._rules`) and returns the entry built by
:func:`_result`:

``{id, kind, paper_location, claim, paper_evidence, statistic, value, interval, runs, n_runs,
verdict, rule, details}``

- ``value``/``interval``: the headline statistic and its percentile-bootstrap interval at level
  ``confidence``; for a claim checked per group the headline is the least favourable counted
  group, and ``details["groups"]`` lists every group with its own statistic, interval and verdict.
- ``runs``: ``{"count", "unit", "tables"}``, the independent units the statistic rests on
  (``n_runs`` = ``runs["count"]``).
- ``verdict``: ``supported`` / ``not supported`` / ``inconclusive``. A claim checked per group is
  not supported when a counted group is not, supported when none is not and at least
  ``min_supported_groups`` of the counted groups are supported, inconclusive otherwise
  (:func:`~adversary_dynamics.claims.rules.combine`). A group resting on fewer than ``min_runs``
  units is inconclusive whatever its statistic says. Groups outside the statement's regime (the
  ReLU and narrow-width contrasts of the theory setting, d = 2 for T3) are reported with
  ``counted = False``.

Non-finite runs: a row whose run met a NaN or ±inf loss (the tables' ``finite`` column False, or a
NaN/inf in its loss columns, :data:`LOSS_COLUMNS`) is no result, neither a success nor a failure:
E1-E3, T1, T2, T5 and T6 leave such rows out before anything else and report how many in
``details["nonfinite"]`` (a line of claims.md when > 0).

Bootstraps are deterministic: ``numpy.random.default_rng([seed, claim number])``. Probe-type
tables are resampled two-way (seeds and inputs independently, with replacement), training runs
over seeds, theory runs over trial ids (a trial's runs at every η move together); the statistics
are those of :mod:`adversary_dynamics.stats`. Nothing here knows which answer the paper expects
beyond the direction of each statement; the parameters come from the configuration.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..stats import (INCONCLUSIVE, TwoWay, bootstrap_spearman, codes, estimate_threshold, fraction_verdict, interval,
                     one_way_fraction, power_law_slope, resample_weights, sign_verdict, slope_verdict, spearman,
                     weighted_spearman)
from adversary_dynamics.claims.rules import (E2_LEAVE_OUT, _rules, claim_rng, combine, corr_rule, escape_rule,
                                             fraction_rule, slope_rule)


class Table(NamedTuple):
    """A figure table the claims read: ``<figure>/<table>.csv`` of the figure's tables stage."""

    figure: str
    table: str
    claims: str  # the claims that read it (help text)

    @property
    def path(self) -> str:
        return f"{self.figure}/{self.table}.csv"


#: THE list of the tables the claims read: name (a key of :func:`evaluate_claims`'s ``tables``, a
#: flag of scripts/claims.py, an input of the workflow's claims rule via ``stages.CLAIM_TABLES``)
#: -> (figure, table, claims).
TABLES: dict[str, Table] = {
    "theory_runs": Table("ext_theory", "pga", "T1, T2"),
    "theory_hessian": Table("ext_theory", "hessian", "T3"),
    "theory_maxima": Table("ext_theory", "maxima", "T4"),
    "fig1_maxima": Table("paper_fig1_landscapes", "maxima", "T4, optional"),
    "escape_scale": Table("paper_fig2_escape_by_scale", "escape", "T5"),
    "escape_scale_replica": Table("paper_fig2_escape_by_scale", "escape_replica", "T5's numerical margin"),
    "escape_step_rule": Table("ext_step_rule", "t5_by_variant", "T5 under each step rule, reported beside T5 (optional)"),
    "escape_training": Table("paper_fig3_escape_during_training", "escape", "T6"),
    "escape_training_replica": Table("paper_fig3_escape_during_training", "escape_replica", "T6's numerical margin"),
    "training_runs": Table("ext_training_convergence", "runs", "T7"),
    "pga_final": Table("ext_pga_convergence", "final", "E1-E3"),
    "landscape_regularity": Table("ext_landscape_statistics", "regularity", "E4"),
}


def _path(name: str) -> str:
    return TABLES[name].path


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


def _worst(groups: list[dict], key: str = "value", sign: int = 1) -> dict | None:
    """The least favourable group: smallest ``sign * value`` among groups with a finite value
    (the first group when none has one)."""
    if not groups:
        return None
    finite = [g for g in groups if g.get(key) is not None and np.isfinite(g[key])]
    return min(finite, key=lambda g: sign * g[key]) if finite else groups[0]


def _py(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _empty(df) -> bool:
    return df is None or len(df) == 0


def _runs_obj(count: int, unit: str, tables: Sequence[str]) -> dict[str, Any]:
    return {"count": int(count), "unit": unit, "tables": list(tables)}


def _least_favourable(w: dict) -> str:
    return f" (least favourable counted group: {w.get('group', '')})"


def _result(cid: str, statistic: str, groups: list[dict], rule: str, runs: dict, details: dict,
            rules: Mapping[str, Any], *, key: str = "value", headline: Callable[[dict], str] | None = _least_favourable,
            margin: dict | None = None) -> dict[str, Any]:
    """THE entry of claim ``cid`` (every claim is built here).

    ``groups``: the claim's group rows, each with ``value``, ``lo``, ``hi``, ``verdict`` and
    optionally ``counted`` (default True). The headline (``value``, ``interval``) is the counted
    group with the smallest finite ``key`` (:func:`_worst`; ``key`` = "margin" for T1: the slope
    closest to its bound), ``headline(w)`` appended to ``statistic`` names it (None: nothing
    appended); the verdict combines the counted groups' verdicts (:func:`rules.combine`).
    ``details["groups"]`` = ``groups``; ``runs`` from :func:`_runs_obj`. ``margin``: the claim's
    numerical margin (:func:`_with_margin`; None: not measured), written as ``numerical_margin``;
    when a replica's verdict differs from the runs' own, the verdict is inconclusive."""
    counted = [g for g in groups if g.get("counted", True)]
    w = _worst(counted, key=key) if counted else None
    verdict = combine([g["verdict"] for g in counted], rules)
    if margin is not None and len({margin["verdict_without_margin"], *margin["replica_verdicts"]}) > 1:
        verdict = INCONCLUSIVE
    loc, text, evidence = PAPER[cid]
    if w is not None and headline is not None:
        statistic += headline(w)
    return {"id": cid, "kind": "paper" if cid.startswith("T") else "extension", "paper_location": loc,
            "claim": text, "paper_evidence": evidence, "statistic": statistic,
            "value": None if w is None else float(w["value"]),
            "interval": [math.nan, math.nan] if w is None else [float(w["lo"]), float(w["hi"])],
            "runs": runs, "n_runs": runs["count"], "verdict": verdict, "rule": rule,
            "numerical_margin": margin, "details": {**details, "groups": groups}}


def _with_margin(groups: list[dict], replica: pd.DataFrame | None, group_fn: Callable[[pd.DataFrame], list[dict]],
                 rules: Mapping[str, Any]) -> tuple[list[dict], dict | None]:
    """A claim's groups judged with their numerical margin, and the margin's record.

    ``groups``: the claim's group rows from its runs (``group``, ``value``, ``lo``, ``hi``,
    ``verdict``, ``counted``; sign rule: > 0 supported). ``replica``: the rows of the replica
    probes (column ``replica_ulps``: the same runs, descent and PGA, from the uniform start moved k
    units in the last place; :func:`adversary_dynamics.figures.escape.probe_escape`), or None/empty.
    ``group_fn(table)`` recomputes the groups from a table of runs (the claim's own statistic).

    Per group, margin m = max over replicas of |Δvalue|, |Δlo|, |Δhi| (a group missing from a
    replica: m = inf), and the verdict is the sign verdict of [lo − f m, hi + f m], f =
    ``rules["margin_factor"]`` (:func:`~adversary_dynamics.stats.sign_verdict`; an interval that
    only clears 0 by less than the margin is inconclusive). Each group row gets ``margin``,
    ``verdict_without_margin`` and ``replica_values``. Returns (groups, record) with record =
    {replica_ulps, factor, value, interval (the largest margins over counted groups),
    verdict_without_margin, replica_verdicts (the claim's combined verdict on each replica
    table, without margin)}; (groups unchanged, None) without replicas."""
    if replica is None or len(replica) == 0 or "replica_ulps" not in replica:
        return groups, None
    f = float(rules["margin_factor"])
    reps = {int(k): {g["group"]: g for g in group_fn(sub)} for k, sub in replica.groupby("replica_ulps", sort=True)}
    out, dv, di = [], [], []
    for g in groups:
        m_v = m_i = 0.0
        for r in reps.values():
            h = r.get(g["group"])
            if h is None:
                m_v = m_i = math.inf
                continue
            m_v = max(m_v, abs(h["value"] - g["value"]))
            m_i = max(m_i, abs(h["lo"] - g["lo"]), abs(h["hi"] - g["hi"]))
        m_v, m_i = (float(x) if np.isfinite(x) else math.inf for x in (m_v, m_i))
        m = max(m_v, m_i)
        # the margin only widens: an inconclusive group stays so; a decided one has finite ends
        v = g["verdict"] if g["verdict"] == INCONCLUSIVE else sign_verdict(g["lo"] - f * m, g["hi"] + f * m, True)
        out.append({**g, "verdict": v, "verdict_without_margin": g["verdict"], "margin": m,
                    "replica_values": {str(k): _py(r[g["group"]]["value"]) if g["group"] in r else None
                                       for k, r in reps.items()}})
        if g.get("counted", True):
            dv.append(m_v)
            di.append(m_i)
    counted = [g for g in groups if g.get("counted", True)]
    record = {"replica_ulps": sorted(reps), "factor": f, "value": max(dv) if dv else None,
              "interval": max(di) if di else None,
              "verdict_without_margin": combine([g["verdict"] for g in counted], rules),
              "replica_verdicts": [combine([r[g["group"]]["verdict"] for g in counted if g["group"] in r], rules)
                                   for r in reps.values()]}
    return out, record


def _missing_result(cid: str, statistic: str, rule: str, tables: Sequence[str], note: str, *, unit: str = "none",
                    nonfinite: int | None = None, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The entry of a claim without data (its table missing, empty or all non-finite): value None,
    interval [nan, nan], no runs, inconclusive; ``details`` = {note, groups: [], [nonfinite], **details}."""
    d: dict[str, Any] = {"note": note, "groups": []}
    if nonfinite is not None:
        d["nonfinite"] = nonfinite
    d.update(details or {})
    return _result(cid, statistic, [], rule, _runs_obj(0, unit, tables), d, {}) | {"details": d}


# ---- E1-E4: the probes of the trained networks ---------------------------------------------------
#: the unit of E1-E4's runs
PROBE_RUNS = "(scale, seed) probe runs"


def _fraction_groups(df: pd.DataFrame, success: np.ndarray, keys: Sequence[str], design: TwoWay,
                     rules: Mapping[str, Any]) -> list[dict]:
    groups = []
    for vals, idx in df.groupby(list(keys), sort=True).indices.items():
        vals = vals if isinstance(vals, tuple) else (vals,)
        sub = df.iloc[idx]
        point, boot = design.fraction(sub["seed"].to_numpy(), sub["input"].to_numpy(), success[idx])
        lo, hi = interval(boot, rules["confidence"])
        n_seeds = int(sub["seed"].nunique())
        enough = n_seeds >= rules["min_runs"] and len(sub) > 0
        g = {k: _py(v) for k, v in zip(keys, vals)}
        g.update({"value": point, "lo": lo, "hi": hi, "n_seeds": n_seeds, "n_obs": int(len(sub)),
                  "verdict": fraction_verdict(lo, hi, rules["min_fraction"], enough)})
        groups.append(g)
    return groups


def claim_pga_converges(fig1_final: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """E1 (our extension of Theorem 3.1): fraction of (input, restart) probes where PGA converged
    within max_steps at a certified local maximum (``converged & local_max``), per (scale,
    checkpoint); seeds and inputs resampled."""
    rules = _rules(cfg)
    stat = "fraction of (input, restart) PGA runs that converged within the budget at a certified local maximum"
    rule = fraction_rule(rules, "(scale, checkpoint)", "seeds")
    tab = [_path("pga_final")]
    if _empty(fig1_final):
        return _missing_result("E1", stat, rule, tab, f"table {tab[0]} is missing or empty", unit=PROBE_RUNS)
    df, nonfinite = _drop_nonfinite(fig1_final.reset_index(drop=True), "final")
    if _empty(df):
        return _missing_result("E1", stat, rule, tab, f"every run of {tab[0]} is non-finite", unit=PROBE_RUNS,
                               nonfinite=nonfinite)
    ok = _as_bool(df["converged"]) & _as_bool(df["local_max"])
    design = TwoWay(claim_rng(rules, 1), df["seed"], df["input"], rules["bootstrap"])
    groups = _fraction_groups(df, ok, ["scale", "checkpoint"], design, rules)
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    details = {
        "resampling": "seeds and inputs, independently with replacement",
        "n_obs": int(len(df)),
        "overall_fraction": float(ok.mean()),
        "fraction_converged": float(_as_bool(df["converged"]).mean()),
        "fraction_local_max": float(_as_bool(df["local_max"]).mean()),
        "nonfinite": nonfinite,
    }
    return _result("E1", stat, groups, rule, _runs_obj(n_runs, PROBE_RUNS, tab), details, rules,
                   headline=lambda w: f" (smallest over (scale, checkpoint) groups: scale {w['scale']:g}, "
                                      f"checkpoint {w['checkpoint']})")


def claim_on_sphere(fig1_final: pd.DataFrame | None, fig4_theory: pd.DataFrame | None = None,
                    cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """E2 (our extension of Lemma 4.1): among final iterates certified as local maxima
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
    rule = fraction_rule(rules, "(scale, checkpoint) of the dataset probes and per (m, scale) of the theory setting",
                          "seeds (theory: trials)")
    rule += what[1]
    groups, n_runs, notes = [], 0, {}
    have1 = fig1_final is not None and len(fig1_final) > 0
    have4 = fig4_theory is not None and len(fig4_theory) > 0
    tab = [_path("pga_final")]
    if not (have1 or have4):
        return _missing_result("E2", stat, rule, tab, f"table {tab[0]} is missing or empty", unit=PROBE_RUNS)
    rng = claim_rng(rules, 2)
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
        return _missing_result("E2", stat, rule, tab, f"every run of {tab[0]} is non-finite", unit=PROBE_RUNS,
                               nonfinite=notes["nonfinite"])
    if have1:
        cert = _as_bool(df["local_max"])
        column = None if leave_out == "none" else leave_out
        flat = _as_bool(df[column]) if column in df else np.zeros(len(df), dtype=bool)
        lm = cert & ~flat  # flat points pass the certificate trivially: not evidence for Lemma 4.1
        sub = df[lm].reset_index(drop=True)
        design = TwoWay(rng, df["seed"], df["input"], rules["bootstrap"])
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
        trials, tcode = codes(th["trial"])
        W = resample_weights(rng, len(trials), rules["bootstrap"])
        for (m, scale), idx in th.groupby(["m", "scale"], sort=True).indices.items():
            idx = idx[lm[idx]]
            on = _as_bool(th["on_sphere"].iloc[idx])
            point, boot = one_way_fraction(W, tcode[idx], on, len(trials))
            lo, hi = interval(boot, rules["confidence"])
            n_tr = int(th["trial"].iloc[idx].nunique())
            groups.append({"source": "theory", "group": f"m {_py(m)}, scale {float(scale):g}", "value": point,
                           "lo": lo, "hi": hi, "n_seeds": n_tr, "n_obs": int(len(idx)),
                           "verdict": fraction_verdict(lo, hi, rules["min_fraction"], n_tr >= rules["min_runs"])})
        n_runs += int(th[["d", "m", "trial"]].drop_duplicates().shape[0])
        notes["theory_maxima"] = int(lm.sum())
        notes["theory_runs"] = int(len(th))
    for g in groups:  # a uniform table: dataset groups keep scale/checkpoint only in "group"
        g.pop("scale", None)
        g.pop("checkpoint", None)
    details = {"resampling": "dataset: seeds and inputs independently; theory: trial ids",
               "note": "n_seeds counts seeds (dataset) or trials (theory) with a certified maximum (dataset: one "
                       "not left out); flat_excluded counts the certified maxima left out of a dataset group "
                       "(leave_out says which)",
               **notes}
    return _result("E2", stat, groups, rule, _runs_obj(n_runs, PROBE_RUNS, tab), details, rules,
                   headline=lambda w: f" (smallest over groups: {w['source']} {w['group']})")


# ---- rank correlations with the scale (E3, E4, T7) ----------------------------------------------


def _corr_group(x, y, W, rules, enough) -> dict:
    """{value, lo, hi, verdict} of Spearman's rho(x, y) with row weights W (B, n): the sign rule
    (rho > 0 claimed), inconclusive without ``enough`` data or a finite rho."""
    point, (lo, hi) = bootstrap_spearman(x, y, W, rules["confidence"])
    enough = enough and np.isfinite(point)
    return {"value": point, "lo": lo, "hi": hi, "verdict": sign_verdict(lo, hi, enough)}


def _seeds_per_scale(df: pd.DataFrame) -> int:
    return int(df.groupby("scale")["seed"].nunique().min()) if len(df) else 0


def claim_pga_iterations_vs_scale(fig1_final: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """E3 (our extension of Sec. 5.1.2): Spearman rho between scale and PGA iterations, per
    checkpoint (runs that did not converge count ``max_steps`` iterations, i.e. the worst rank);
    seeds and inputs resampled."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, PGA iterations) over (scale, seed, input, restart) probes"
    rule = corr_rule(rules, "per checkpoint", "seeds")
    tab = [_path("pga_final")]
    if _empty(fig1_final):
        return _missing_result("E3", stat, rule, tab, f"table {tab[0]} is missing or empty", unit=PROBE_RUNS)
    df, nonfinite = _drop_nonfinite(fig1_final.reset_index(drop=True), "final")
    if _empty(df):
        return _missing_result("E3", stat, rule, tab, f"every run of {tab[0]} is non-finite", unit=PROBE_RUNS,
                               nonfinite=nonfinite)
    design = TwoWay(claim_rng(rules, 3), df["seed"], df["input"], rules["bootstrap"])
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
    details = {"resampling": "seeds and inputs, independently with replacement",
               "censoring": "PGA runs that did not converge count max_steps iterations (worst rank, tied)",
               "nonfinite": nonfinite}
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    return _result("E3", stat, groups, rule, _runs_obj(n_runs, PROBE_RUNS, tab), details, rules,
                   headline=lambda w: f" (smallest over checkpoints: checkpoint {w['checkpoint']})")


def claim_regularity_vs_scale(fig3_regularity: pd.DataFrame, cfg: Mapping[str, Any] | None = None,
                              metrics: Sequence[str] = ("distinct_maxima", "nonlinearity")) -> dict[str, Any]:
    """E4 (our extension of Theorem 5.1, Fig. 1): Spearman rho between scale and each
    irregularity measure (distinct maxima, non-linearity index) per checkpoint; NaN measurements
    are dropped; seeds and inputs resampled."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, irregularity measure) over (scale, seed, input) probes"
    rule = corr_rule(rules, "per (measure, checkpoint) with measures " + ", ".join(metrics), "seeds")
    tab = [_path("landscape_regularity")]
    if _empty(fig3_regularity):
        return _missing_result("E4", stat, rule, tab, f"table {tab[0]} is missing or empty", unit=PROBE_RUNS)
    df = fig3_regularity.reset_index(drop=True)
    design = TwoWay(claim_rng(rules, 5), df["seed"], df["input"], rules["bootstrap"])
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
    details = {"resampling": "seeds and inputs, independently with replacement"}
    n_runs = int(df[["scale", "seed"]].drop_duplicates().shape[0])
    return _result("E4", stat, groups, rule, _runs_obj(n_runs, PROBE_RUNS, tab), details, rules,
                   headline=lambda w: f" (smallest over (measure, checkpoint) groups: {w['measure']} at checkpoint "
                                      f"{w['checkpoint']})")


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
    rule = slope_rule(rules)
    tab = [_path("theory_runs")]
    if _empty(runs):
        return _missing_result("T1", stat, rule, tab, f"table {tab[0]} is missing or empty")
    df, nonfinite = _drop_nonfinite(runs.reset_index(drop=True), "theory")
    if _empty(df):
        return _missing_result("T1", stat, rule, tab, f"every run of {tab[0]} is non-finite", nonfinite=nonfinite)
    rng = claim_rng(rules, 11)
    groups = []
    for lab, idx, counted in _theory_groups(df, rules):
        sub = df.iloc[idx]
        trials, _ = codes(sub["trial"])
        W = resample_weights(rng, len(trials), rules["bootstrap"])
        enough = len(trials) >= rules["min_runs"] and sub["eta"].nunique() >= 2
        reached = _as_bool(sub["reached"])
        refined = reached & (_as_bool(sub["refined"]) if "refined" in sub else True)
        name = f"{lab['activation']} d={lab['d']} m={lab['m']} s={lab['scale']:g}"
        for qty, col, bound, ok in (("iterations", "iterations", b1, np.ones(len(sub), bool)),
                                    ("distance", "distance", b2, refined)):
            y = pd.to_numeric(sub[col], errors="coerce").to_numpy(float)
            y = np.where(ok, y, np.nan)
            point, boot = power_law_slope(sub["eta"].to_numpy(float), y, sub["trial"].to_numpy(), W)
            lo, hi = interval(boot, rules["confidence"])
            # the bound is a lower bound: the favourable direction is value - bound large
            groups.append({"group": f"{name}: {qty}", **lab, "quantity": qty, "bound": bound, "value": point,
                           "lo": lo, "hi": hi, "margin": point - bound, "n_trials": int(len(trials)),
                           "reached": float(reached.mean()), "counted": counted,
                           "verdict": slope_verdict(lo, hi, bound, tol, enough and np.isfinite(point))})
    counted = [g for g in groups if g["counted"]]
    n = int(df[["activation", "d", "m", "scale", "trial"]].drop_duplicates().shape[0])
    med = (df.groupby(["activation", "d", "m", "eta_over_eps2"])["iterations"].median().reset_index()
           .rename(columns={"iterations": "median_iterations"}).to_dict("records"))
    details = {"resampling": "trial ids with replacement (a trial's runs at every eta move together)",
               "fraction_reached": float(_as_bool(df["reached"]).mean()),
               "fraction_reached_counted": float(np.mean([g["reached"] for g in counted])) if counted else math.nan,
               "median_iterations": med, "nonfinite": nonfinite}
    # headline: the counted group closest to (or furthest below) its bound, i.e. the smallest margin
    return _result("T1", stat, groups, rule, _runs_obj(n, "(setting, trial): network, input, label and start", tab),
                   details, rules, key="margin",
                   headline=lambda w: f" (headline: the counted group closest to its bound: {w['group']})")


def _fraction_group(sub: pd.DataFrame, success: np.ndarray, W: np.ndarray, trials, rules, **lab) -> dict:
    tcode = np.searchsorted(trials, sub["trial"].to_numpy())
    point, boot = one_way_fraction(W, tcode, success, len(trials))
    lo, hi = interval(boot, rules["confidence"])
    n_tr = int(sub["trial"].nunique())
    return {**lab, "value": point, "lo": lo, "hi": hi, "n_trials": n_tr, "n_obs": int(len(sub)),
            "verdict": fraction_verdict(lo, hi, rules["min_fraction"], n_tr >= rules["min_runs"] and len(sub) > 0)}


def claim_t2_interior_ascent(runs: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T2 (Lemma 4.1): per setting, the fraction of runs (with at least one step inside the ball)
    whose every interior step raised the loss by >= min_rate·eta, and the fraction of runs that
    end on the sphere; trials resampled."""
    rules = _rules(cfg)
    stat = f"fraction of runs whose interior steps all raise the loss by >= {rules['min_rate']:g} * eta; fraction ending on the sphere"
    rule = (fraction_rule(rules, "setting and quantity", "trials") + f" Counted: {rules['theorem_activation']} at "
            "m >= d^(5/2).")
    tab = [_path("theory_runs")]
    if _empty(runs):
        return _missing_result("T2", stat, rule, tab, f"table {tab[0]} is missing or empty")
    df, nonfinite = _drop_nonfinite(runs.reset_index(drop=True), "theory")
    if _empty(df):
        return _missing_result("T2", stat, rule, tab, f"every run of {tab[0]} is non-finite", nonfinite=nonfinite)
    rng = claim_rng(rules, 12)
    groups = []
    for lab, idx, counted in _theory_groups(df, rules):
        sub = df.iloc[idx].reset_index(drop=True)
        trials = np.unique(sub["trial"].to_numpy())
        W = resample_weights(rng, len(trials), rules["bootstrap"])
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
    return _result("T2", stat, groups, rule, _runs_obj(n, "(setting, trial)", tab),
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
    rule = (fraction_rule(rules, "setting", "trials") + f" Counted: {rules['theorem_activation']} at m >= d^(5/2) "
            "and d >= 3.")
    if _empty(hessian):
        return _missing_result("T3", stat, rule, [_path("theory_hessian")],
                               f"table {_path('theory_hessian')} is missing or empty")
    df = hessian.reset_index(drop=True)
    rng = claim_rng(rules, 13)
    groups = []
    for lab, idx, counted in _theory_groups(df, rules):
        sub = df.iloc[idx].reset_index(drop=True)
        trials = np.unique(sub["trial"].to_numpy())
        W = resample_weights(rng, len(trials), rules["bootstrap"])
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
                                                       [_path("theory_hessian")]),
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
    rules = _rules(cfg)
    stat = "fraction of networks with a single distinct maximum at eps within the theorem's regime"
    rule = (fraction_rule(rules, "(setting, eps)", "networks") + f" Counted: {rules['theorem_activation']} at "
            "m >= d^(5/2); Fig. 1 groups when they have enough rows.")
    tab = [_path("theory_maxima"), _path("fig1_maxima")]
    if _empty(maxima) and _empty(fig1_maxima):
        return _missing_result("T4", stat, rule, tab, f"tables {tab[0]} and {tab[1]} are missing or empty")
    rng = claim_rng(rules, 14)
    groups, thresholds, n = [], [], 0
    if not _empty(maxima):
        df = maxima.reset_index(drop=True)
        for lab, idx, counted in _theory_groups(df, rules):
            sub = df.iloc[idx].reset_index(drop=True)
            trials = np.unique(sub["trial"].to_numpy())
            W = resample_weights(rng, len(trials), rules["bootstrap"])
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
            W = resample_weights(rng, len(trials), rules["bootstrap"])
            g = _fraction_group(s2, single[m_], W, trials, rules, group=f"Fig. 1 scale {float(s):g}, ratio {r0:g}",
                                source="fig1", scale=float(s), eps=float(s2["eps"].iloc[0]) if "eps" in s2 else math.nan)
            g["counted"] = g["n_trials"] >= rules["min_runs"]
            groups.append(g)
        n += int(len(f1))
    return _result("T4", stat, groups, rule, _runs_obj(n, "(setting, network) of the theory setting; Fig. 1 landscapes",
                                                       tab),
                   {"resampling": "network (trial) ids with replacement",
                    "thresholds": thresholds,
                    "threshold_rule": "geometric midpoint between the largest grid eps up to which at least half of the "
                                      "networks have a single maximum and the next grid eps (the largest grid eps, a "
                                      "lower bound, when every grid eps passes)"}, rules)


def _by_eps(fr: pd.Series) -> str:
    """'eps: share; ...' of a Series indexed by eps (one table cell)."""
    return "; ".join(f"{e:.3g}: {v:.2f}" for e, v in fr.items())


def _escape_times(df: pd.DataFrame) -> np.ndarray:
    """Escape times with censored runs (escape_time +inf: > the step budget T, or a row marked
    ``censored``) and never-escaped runs (NaN: flat) as +inf: the worst rank, tied. With one
    budget T for every run (type-I censoring) this is the rank treatment that respects censoring:
    a censored run outlasts every observed escape time, and censored runs are mutually unordered."""
    t = pd.to_numeric(df["escape_time"], errors="coerce").to_numpy(float)
    if "censored" in df:
        t = np.where(_bool_col(df["censored"]), np.inf, t)
    return np.where(np.isfinite(t), t, np.inf)


def _bool_col(col: pd.Series) -> np.ndarray:
    """A True/False column of a CSV table (bool, or the strings 'True'/'False') as a numpy bool array."""
    if col.dtype == bool:
        return col.to_numpy()
    return col.astype(str).str.strip().str.lower().isin(["true", "1", "1.0"]).to_numpy()


def _censor_counts(sub: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """Per-group censoring summary of T5/T6: runs censored at the budget (column ``censored``;
    tables without it: escape time +inf), by rule (a: no departure, b: still rising at T) where
    the table has the columns, runs on a flat landscape, and the censored share of the group."""
    n = len(sub)
    cens = _bool_col(sub["censored"]) if "censored" in sub else np.isposinf(
        pd.to_numeric(sub["escape_time"], errors="coerce").to_numpy(float))
    out: dict[str, Any] = {"censored": int(cens.sum()), "censored_share": float(cens.mean()) if n else math.nan}
    for col, name in (("censored_rise", "censored_no_departure"), ("censored_late", "censored_still_rising")):
        if col in sub:
            out[name] = int(_bool_col(sub[col]).sum())
    if "flat" in sub:
        out["flat"] = int(_bool_col(sub["flat"]).sum())
    return out


CENSOR_TREATMENT = ("censored runs (escape time > the step budget T, by the rule paper_escape.censor_* fixed before "
                    "the runs: (a) no departure from the start, (b) still rising at T) tie at +inf, the worst rank; "
                    "with one budget T for every run (type-I censoring) each censored run outlasts every observed "
                    "escape time and censored runs are mutually unordered, so these ranks respect the censoring")


def _censoring_details(df: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """The whole table's censoring summary (claims details of T5 and T6)."""
    return {**_censor_counts(df, y), "runs": int(len(df)), "treatment": CENSOR_TREATMENT}


def _escape_rho_groups(df: pd.DataFrame, y: np.ndarray, rules: Mapping[str, Any], *, claim_no: int, by, x: str,
                       x_label, never_escaped: bool) -> list[tuple[tuple[float, ...], np.ndarray, np.ndarray, dict]]:
    """The per-group bootstrap of T5 and T6: Spearman rho(x, escape time) in each group of rows.

    ``df`` has one row per run with columns ``seed``, ``input``, ``x`` and those of ``by`` (a column
    name or a list of them); ``y`` (len(df),) the escape times of :func:`_escape_times` (+inf for
    runs that never escape). One two-way bootstrap design (seeds and inputs resampled
    independently with replacement, ``rules["bootstrap"]`` replicates, numpy generator
    ``claim_rng(rules, claim_no)``) is drawn for the whole table and shared by every group. In each group
    (``df.groupby(by, sort=True)``): point rho = Spearman's rank correlation of (x, y) over the
    group's rows, its replicates the weighted rank correlation under the design's row weights
    W (B, n_rows) = w_seed[:, seed] * w_input[:, input], the percentile interval at
    ``rules["confidence"]`` and the sign verdict (:func:`_corr_group`). The group counts as
    enough data when n_seeds * n_inputs >= ``rules["min_runs"]`` (n_seeds: the fewest seeds at
    any value of x) and x takes at least two values.

    Returns, per group in sorted order, (key, idx, W, g): key the group's ``by`` values as a
    tuple, idx the group's row positions in ``df``, W its bootstrap weights, and g the table row
    {"group": "<by> <v:g>, ...", <by>: v, ..., value, lo, hi, verdict, n_seeds, n_inputs, n_obs,
    [never_escaped,] censored, censored_share, [censored_no_departure, censored_still_rising, flat,]
    median_escape_by_<x>: "<x_label(v)>: <median:g, '> T' (censored median) or 'flat' (every run flat)>; ..."}
    (:func:`_censor_counts`).
    """
    design = TwoWay(claim_rng(rules, claim_no), df["seed"], df["input"], rules["bootstrap"])
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
        g.update(_censor_counts(sub, y[idx]))
        med = pd.Series(y[idx]).groupby(sub[x].to_numpy()).median()
        all_flat = (pd.Series(_bool_col(sub["flat"]) if "flat" in sub else np.zeros(len(sub), dtype=bool))
                    .groupby(sub[x].to_numpy()).all())
        g[f"median_escape_by_{x}"] = "; ".join(
            f"{x_label(v)}: {'flat' if all_flat[v] else '> T' if np.isinf(m) else f'{m:g}'}" for v, m in med.items())
        out.append((key, idx, W, g))
    return out


def _step_rule_sensitivity(t5_by_variant: pd.DataFrame | None) -> dict[str, Any]:
    """T5 under each PGA step rule (figure ext_step_rule, table ``t5_by_variant``: T5's statistic computed by
    :func:`claim_t5_escape_by_scale` on the runs of each variant, absolute / proportional / normalized /
    absolute_scaled_input): ``{"step_rule_sensitivity": {variant: {step_rule, step_size,
    input_normalization, verdict, value, interval, by_ratio}}}`` with the variant's overall verdict, its
    headline rho (least favourable ratio) and interval, and "ratio: rho [lo, hi] verdict; ..." per ratio.
    Reported beside T5, never part of its verdict; {} when the table is missing or empty (a configuration
    that does not build the figure) or lacks its columns."""
    need = {"variant", "ratio", "rho", "lo", "hi", "verdict", "variant_verdict", "variant_rho", "variant_lo",
            "variant_hi"}
    if _empty(t5_by_variant) or not need <= set(t5_by_variant.columns):
        return {}
    out: dict[str, Any] = {}
    for variant, d in t5_by_variant.groupby("variant", sort=False):
        first = d.iloc[0]
        per = "; ".join(f"{float(r['ratio']):g}: {float(r['rho']):.3g} [{float(r['lo']):.3g}, {float(r['hi']):.3g}] "
                        f"{r['verdict']}" for _, r in d.iterrows() if np.isfinite(float(r["ratio"])))
        out[str(variant)] = {**{k: _py(first[k]) for k in ("step_rule", "step_size", "input_normalization")
                                if k in d.columns},
                             "verdict": str(first["variant_verdict"]), "value": _py(first["variant_rho"]),
                             "interval": [_py(first["variant_lo"]), _py(first["variant_hi"])], "by_ratio": per}
    return {"step_rule_sensitivity": out}


def claim_t5_escape_by_scale(escape: pd.DataFrame | None, replica: pd.DataFrame | None = None,
                             step_rule: pd.DataFrame | None = None,
                             cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T5 (Sec. 5.1.2, Fig. 2): per ratio, Spearman rho(scale, escape time) over (scale, seed,
    input) runs at initialisation, seeds and inputs resampled independently; a positive rho
    means slower escape at larger scale, i.e. the paper's claim. ``replica``: the replica
    trajectories' rows (escape_replica.csv, column replica_ulps), from which the verdict's
    numerical margin is measured (:func:`_with_margin`); None or empty: no margin.
    ``step_rule``: the ext_step_rule figure's ``t5_by_variant`` table (this statistic under each PGA
    step rule), reported in ``details["step_rule_sensitivity"]`` (:func:`_step_rule_sensitivity`) and
    never part of the verdict; None or empty: no such entry. Raises TypeError when a mapping (the
    rules) is passed where a table goes."""
    if isinstance(replica, Mapping) or isinstance(step_rule, Mapping):
        raise TypeError(f"claim_t5_escape_by_scale: replica and step_rule must be tables (or None); pass the rules as cfg=")
    rules = _rules(cfg)
    stat = "Spearman rho(scale, escape time) per ratio over (scale, seed, input) runs"
    rule = escape_rule(rules, "per ratio", "scale")
    tab = [_path("escape_scale")]
    sensitivity = _step_rule_sensitivity(step_rule)
    if _empty(escape):
        return _missing_result("T5", stat, rule, tab, f"table {tab[0]} is missing or empty "
                                                      "(its figure is not built by this configuration)",
                               details=sensitivity)
    df, nonfinite = _drop_nonfinite(_t5_rows(escape), "escape")
    if _empty(df):
        return _missing_result("T5", stat, rule, tab, f"every run of {tab[0]} is non-finite", nonfinite=nonfinite,
                               details=sensitivity)
    def t5_groups(df):
        df, _ = _drop_nonfinite(_t5_rows(df), "escape")
        return [g for *_, g in _escape_rho_groups(df, _escape_times(df), rules, claim_no=15, by="ratio", x="scale",
                                                  x_label=lambda s: f"{s:g}", never_escaped=True)]

    y = _escape_times(df)
    groups = []
    for _, idx, _, g in _escape_rho_groups(df, y, rules, claim_no=15, by="ratio", x="scale",
                                           x_label=lambda s: f"{s:g}", never_escaped=True):
        sub = df.iloc[idx]
        if "relative_step" in sub:
            rs = pd.to_numeric(sub["relative_step"], errors="coerce").groupby(sub["scale"].to_numpy()).median()
            g["median_relative_step_by_scale"] = "; ".join(f"{s:g}: {v:.3g}" for s, v in rs.items())
        if "relative_step_ball" in sub:
            rb = pd.to_numeric(sub["relative_step_ball"], errors="coerce").groupby(sub["scale"].to_numpy()).median()
            g["median_relative_step_ball_by_scale"] = "; ".join(f"{s:g}: {v:.3g}" for s, v in rb.items())
        groups.append(g)
    n = int(df[["seed", "input"]].drop_duplicates().shape[0])
    groups, margin = _with_margin(groups, replica, t5_groups, rules)
    return _result("T5", stat, groups, rule, _runs_obj(n, "(seed, input) pairs, each run at every (scale, ratio)", tab),
                   {"resampling": "seeds and inputs, independently with replacement (one seed: over inputs only)",
                    "caveat": "under the paper's update (paper_escape.step_rule: absolute) the step eta is the same at "
                              "every scale, so the relative step eta*||grad||/eps changes with the scale (medians per "
                              "scale in the groups; table column eta gives each run's step under the rule it ran); "
                              "where it falls monotonically with the scale these runs cannot tell a landscape effect "
                              "from a step-size effect", "nonfinite": nonfinite,
                    "censoring": _censoring_details(df, y), **sensitivity}, rules, margin=margin)


def _t5_rows(escape: pd.DataFrame) -> pd.DataFrame:
    """T5's rows: the table's, at its first checkpoint when it has several."""
    df = escape.reset_index(drop=True)
    if "checkpoint" in df and df["checkpoint"].nunique() > 1:
        df = df[df["checkpoint"] == df["checkpoint"].min()].reset_index(drop=True)
    return df


def claim_t6_escape_during_training(escape: pd.DataFrame | None, replica: pd.DataFrame | None = None,
                                    cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T6 (Fig. 3, Sec. 6): per (scale, ratio), Spearman rho(checkpoint, escape time) over
    (checkpoint, seed, input) runs, seeds and inputs resampled; positive = escaping gets harder
    with training. With two or more scales, details compare rho at the largest and smallest
    scale ('more so at a large input scale'). ``replica``: as :func:`claim_t5_escape_by_scale`'s."""
    if isinstance(replica, Mapping):
        raise TypeError(f"claim_t6_escape_during_training: replica must be the escape_replica table (or None); pass the rules as cfg=")
    rules = _rules(cfg)
    stat = "Spearman rho(training epochs at the checkpoint, escape time) per (scale, ratio)"
    rule = escape_rule(rules, "per (scale, ratio)", "checkpoint")
    tab = [_path("escape_training")]
    if _empty(escape):
        return _missing_result("T6", stat, rule, tab, f"table {tab[0]} is missing or "
                                                      "empty (its figure is not built by this configuration)")
    df, nonfinite = _drop_nonfinite(escape.reset_index(drop=True), "escape")
    if _empty(df):
        return _missing_result("T6", stat, rule, tab, f"every run of {tab[0]} is non-finite", nonfinite=nonfinite)
    def t6_groups(df):
        df, _ = _drop_nonfinite(df.reset_index(drop=True), "escape")
        return [g for *_, g in _escape_rho_groups(df, _escape_times(df), rules, claim_no=16, by=["scale", "ratio"],
                                                  x="checkpoint", x_label=lambda c: f"{int(c)}", never_escaped=False)]

    y = _escape_times(df)
    groups, rhos = [], {}
    for key, idx, W, g in _escape_rho_groups(df, y, rules, claim_no=16, by=["scale", "ratio"], x="checkpoint",
                                             x_label=lambda c: f"{int(c)}", never_escaped=False):
        groups.append(g)
        rhos[key] = (df.iloc[idx], W, idx)
    details: dict[str, Any] = {"resampling": "seeds and inputs, independently with replacement",
                               "nonfinite": nonfinite, "censoring": _censoring_details(df, y)}
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
                lo, hi = interval(bb - ba, rules["confidence"])
                more.append({"ratio": r, "small_scale": scales[0], "large_scale": scales[-1], "rho_small": pa,
                             "rho_large": pb, "difference": pb - pa, "lo": lo, "hi": hi,
                             "verdict": sign_verdict(lo, hi, np.isfinite(pb - pa))})
        details["more_so_at_large_scale"] = more
        details["more_so_note"] = ("difference of rho(checkpoint, escape time) between the largest and the smallest "
                                   "scale; reported, not part of the verdict (never-escaping runs tie at +inf, which "
                                   "caps rho at both scales)")
    else:
        details["more_so_at_large_scale"] = "not run: the table has a single scale"
    n = int(df[["seed", "input"]].drop_duplicates().shape[0])
    groups, margin = _with_margin(groups, replica, t6_groups, rules)
    return _result("T6", stat, groups, rule, _runs_obj(n, "(training seed, input) pairs probed at every checkpoint", tab),
                   details, rules, margin=margin)


def claim_t7_training_vs_scale(runs: pd.DataFrame | None, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """T7 (Abstract, Sec. 6): Spearman rho between scale and steps to the loss threshold over
    (scale, seed) training runs of the extension figure, seeds resampled (a seed's runs at every
    scale move together); runs that never reached the threshold or diverged count +inf (worst
    rank). The paper's own evidence is the escape behaviour (T5): details say so."""
    rules = _rules(cfg)
    stat = "Spearman rho(scale, steps to the adversarial-loss threshold) over (scale, seed) training runs"
    rule = corr_rule(rules, "over all training runs", "seeds")
    rule += " Runs that never reached the threshold or diverged count as +inf steps (worst rank, tied)."
    tab, unit = [_path("training_runs")], "(scale, seed) training runs"
    caveat = ("the paper has no training-convergence experiment; its evidence for this statement is Fig. 2 (T5). "
              "Our training runs use the two-layer network of ext_training_convergence, a fixed learning rate "
              "across scales and a loss threshold of our choice.")
    if _empty(runs):
        return _missing_result("T7", stat, rule, tab, f"table {tab[0]} is missing or empty", unit=unit,
                               details={"caveat": caveat})
    df = runs.reset_index(drop=True)
    steps = pd.to_numeric(df["steps_to_threshold"], errors="coerce").to_numpy(float)
    if "status" in df:
        diverged = (df["status"].astype(str).str.strip() == "diverged").to_numpy()
    else:
        diverged = np.zeros(len(df), dtype=bool)
    never = ~np.isfinite(steps) & ~diverged
    y = np.where(diverged | ~np.isfinite(steps), np.inf, steps)
    seeds, scode = codes(df["seed"])
    W = resample_weights(claim_rng(rules, 4), len(seeds), rules["bootstrap"])[:, scode]
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
               "by_scale": by, "caveat": caveat}
    return _result("T7", stat, [g], rule, _runs_obj(len(df), unit, tab), details, rules, headline=None)


# ---- all claims ------------------------------------------------------------------------------
#: The claims in report order: (id, function, the names of :data:`TABLES` it takes, in order).
CLAIMS: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("T1", claim_t1_theorem31, ("theory_runs",)),
    ("T2", claim_t2_interior_ascent, ("theory_runs",)),
    ("T3", claim_t3_no_saddles, ("theory_hessian",)),
    ("T4", claim_t4_single_maximum, ("theory_maxima", "fig1_maxima")),
    ("T5", claim_t5_escape_by_scale, ("escape_scale", "escape_scale_replica", "escape_step_rule")),
    ("T6", claim_t6_escape_during_training, ("escape_training", "escape_training_replica")),
    ("T7", claim_t7_training_vs_scale, ("training_runs",)),
    ("E1", claim_pga_converges, ("pga_final",)),
    ("E2", claim_on_sphere, ("pga_final",)),
    ("E3", claim_pga_iterations_vs_scale, ("pga_final",)),
    ("E4", claim_regularity_vs_scale, ("landscape_regularity",)),
)


def evaluate_claims(tables: Mapping[str, pd.DataFrame | None], cfg: Mapping[str, Any] | None) -> list[dict]:
    """T1-T7, then the extensions E1-E4 (:data:`CLAIMS`). ``tables`` maps names of :data:`TABLES`
    to DataFrames (a missing table makes the claims that need it inconclusive); ``cfg`` is the
    ``claims:`` section of the configuration (or a whole configuration). Raises ValueError for a
    name outside :data:`TABLES`."""
    rules = _rules(cfg)
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise ValueError(f"tables: unknown names {sorted(unknown)}; allowed: {list(TABLES)}")
    return [fn(*(tables.get(k) for k in names), cfg=rules) for _, fn, names in CLAIMS]
