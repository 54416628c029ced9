r"""Escape time by input scale under each PGA step rule: the extension figure ``ext_step_rule`` (issue 18).

The paper's Fig. 2 (Sec. 5.1.2; Deng, He, Huang & Su, ICML 2020) measures how long projected gradient
ascent (PGA) takes to leave a local minimum δ* of the adversarial loss ℓ(δ) = ℓ(F(x + δ), y) in the
ℓ2 ball B = {‖δ‖₂ ≤ ε}, ε = ratio · s, at input scales s = 0.1 / 10 / 1000, with ONE absolute step
η at every scale (the paper's update δ ← Π_B(δ + η ∇ℓ)). Its statement T5 (at a fixed ratio, a smaller
scale escapes faster) may then be a step-size effect: for a positively homogeneous network the
gradient in the ball grows like s while ε grows like s, so the relative step η‖∇ℓ‖/ε moves with the
scale. This module reruns Fig. 2's probe (:func:`adversary_dynamics.figures.escape.probe_escape`:
descent to δ*, then T PGA steps, escape time = the half-rise step, censored at T) at the figure's
fixed ratios under four *variants* (:data:`VARIANTS`):

==========================  =======================================  ===============================
variant                     PGA step from δ*                         the network sees
==========================  =======================================  ===============================
``absolute``                δ ← Π_B(δ + η ∇ℓ), η = ``step_size``     x (the paper's Fig. 2)
``proportional``            δ ← Π_B(δ + c ε ∇ℓ), c = ``proportional_step``   x
``normalized``              δ ← Π_B(δ + c ε ∇ℓ/‖∇ℓ‖), c = ``normalized_step``  x
``absolute_scaled_input``   δ ← Π_B(δ + η ∇ℓ), η = ``step_size``     x / s (:class:`~.escape.InputScaled`)
==========================  =======================================  ===============================

and reports, per variant, T5's statistic exactly as the claims compute it
(:func:`adversary_dynamics.claims.statements.claim_t5_escape_by_scale` on the variant's runs: Spearman
ρ(scale, escape time) per ratio, censored runs tied at +inf, seeds and inputs resampled two-way, the
percentile interval and the sign verdict; no replica probes, so no numerical margin).

Tables (``scripts/step_rule.py`` writes them; the notebook ``notebooks/ext_step_rule.ipynb`` plots them):

* ``escape``: one row per (variant, scale, seed, ratio, input) run, the columns of
  :func:`~.escape.run_rows` (:data:`~.escape_tables.ESCAPE_COLUMNS`; ``eta`` the step each run used,
  :func:`~.escape.step_of`) plus :data:`EXTRA_COLUMNS`;
* ``summary`` (:func:`summary_table`): per (variant, ratio, scale), run counts, the median and
  quartiles of the escape time (censored runs as +inf, i.e. "> T");
* ``t5_by_variant`` (:func:`t5_by_variant`): per (variant, ratio), T5's ρ, interval and verdict, and
  the variant's overall T5 verdict.

Only :func:`step_rule_runs` needs torch (imported inside it); the table functions need pandas only.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["VARIANTS", "EXTRA_COLUMNS", "SUMMARY_COLUMNS", "T5_COLUMNS", "variant_specs", "step_rule_runs",
           "escape_columns", "summary_table", "t5_by_variant"]

#: the variants, in the figure's order (module docstring)
VARIANTS = ("absolute", "proportional", "normalized", "absolute_scaled_input")
#: the columns the escape table adds to escape.csv's: the variant, its PGA step rule, its step size
#: (η for ``absolute``, the fraction c of ε otherwise) and what the network sees (none: x, scale: x / s)
EXTRA_COLUMNS = ("variant", "step_rule", "step_size", "input_normalization")
SUMMARY_COLUMNS = ("variant", "step_rule", "step_size", "input_normalization", "ratio", "scale", "steps", "n_runs",
                   "n_escaped", "n_censored", "n_flat", "n_nonfinite", "censored_share", "median_escape_time",
                   "q25_escape_time", "q75_escape_time", "median_eta", "median_relative_step_ball")
T5_COLUMNS = ("variant", "step_rule", "step_size", "input_normalization", "ratio", "rho", "lo", "hi", "verdict",
              "n_seeds", "n_inputs", "n_obs", "censored", "censored_share", "median_escape_by_scale",
              "median_relative_step_ball_by_scale", "variant_verdict", "variant_rho", "variant_lo", "variant_hi")


def variant_specs(step_size: float, proportional_step: float, normalized_step: float) -> list[dict[str, Any]]:
    """The four variants of :data:`VARIANTS` as ``{variant, step_rule, step_size, input_normalization}``:
    ``step_size`` η (absolute, config ``paper_escape.step_size``), ``proportional_step`` and
    ``normalized_step`` the fractions c of ε (config ``ext_step_rule.*``). Raises ValueError unless all
    three are finite numbers > 0."""
    for name, v in (("step_size", step_size), ("proportional_step", proportional_step),
                    ("normalized_step", normalized_step)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return [
        {"variant": "absolute", "step_rule": "absolute", "step_size": float(step_size), "input_normalization": "none"},
        {"variant": "proportional", "step_rule": "proportional", "step_size": float(proportional_step),
         "input_normalization": "none"},
        {"variant": "normalized", "step_rule": "normalized", "step_size": float(normalized_step),
         "input_normalization": "none"},
        {"variant": "absolute_scaled_input", "step_rule": "absolute", "step_size": float(step_size),
         "input_normalization": "scale"},
    ]


def escape_columns() -> list[str]:
    """The escape table's columns: escape.csv's (:data:`~.escape_tables.ESCAPE_COLUMNS`) then :data:`EXTRA_COLUMNS`."""
    from adversary_dynamics.figures.escape_tables import ESCAPE_COLUMNS

    return [*ESCAPE_COLUMNS, *EXTRA_COLUMNS]


def step_rule_runs(build, inputs: Mapping[float, Any], labels, *, ratios: Sequence[float], seeds: Sequence[int],
                   variants: Sequence[Mapping[str, Any]], loss: str, steps: int, descent: Mapping[str, Any],
                   rtol: float, censor: Mapping[str, float], device="cpu", log=None) -> list[dict[str, Any]]:
    """Fig. 2's probe at each (scale, seed) under every variant: the rows of the escape table.

    ``build(seed)``: the CNN at initialisation of seed ``seed`` (the same weights at every scale, as
    Fig. 2); ``inputs``: scale s -> x (N, d), the test inputs rescaled to mean training norm s, on
    ``device``; ``labels`` y (N,); ``ratios``: ε = ratio · s (the rows of one batched probe, shape
    (R, N)); ``variants``: :func:`variant_specs`; ``loss``, ``steps`` T, ``descent`` (keyword
    arguments of :func:`~.escape.descend`), ``rtol`` and ``censor`` as
    :func:`~.escape.probe_escape`. As scripts/escape.py does for Fig. 2: uniform starts z (N, d) from
    ``torch.Generator().manual_seed(seed)`` (:func:`~.escape.unit_ball_starts`, shared by every ratio
    and variant), the certificate's directions from ``manual_seed(1000 * seed + 1)`` on ``device``;
    every variant of a (scale, seed) starts its descent from the same δ_u = ε z, so the three variants
    on the plain network share the descent's end point δ* and differ only in the PGA steps.
    ``log(text)``: a progress line per probe (None: silent). Returns rows with the columns of
    :func:`escape_columns` (``checkpoint`` 0), ordered by scale, seed, variant, ratio, input.
    Raises ValueError for an unknown step rule or input normalisation, or as probe_escape does."""
    import time

    import torch

    from adversary_dynamics.figures import escape

    rows: list[dict[str, Any]] = []
    for s, x in inputs.items():
        for seed in seeds:
            starts = escape.unit_ball_starts(x.shape[0], x.shape[1], generator=torch.Generator().manual_seed(int(seed)),
                                             dtype=x.dtype).to(device)
            model = build(int(seed))
            model.eval()
            for v in variants:
                if v["input_normalization"] not in ("none", "scale"):
                    raise ValueError(f"input_normalization must be none or scale, got {v['input_normalization']!r}")
                net = escape.InputScaled(model, scale=float(s)) if v["input_normalization"] == "scale" else model
                t0 = time.time()
                pr = escape.probe_escape(net, x, labels, ratios=list(ratios), scale=float(s), loss=loss,
                                         step_size=v["step_size"], steps=steps, starts=starts, descent=dict(descent),
                                         rtol=rtol, censor=dict(censor),
                                         generator=torch.Generator(device=device).manual_seed(1000 * int(seed) + 1),
                                         step_rule=v["step_rule"])
                eta = escape.step_of(v["step_rule"], v["step_size"], pr.eps)
                extra = {k: v[k] for k in EXTRA_COLUMNS}
                rows += [{**r, **extra} for r in escape.run_rows(pr, scale=float(s), ratios=list(ratios), eta=eta,
                                                                 seed=int(seed), checkpoint=0, labels=labels)]
                if log is not None:
                    log(f"scale={float(s):g} seed={seed} variant={v['variant']}: {time.time() - t0:.1f} s, escaped "
                        f"{int(pr.escaped.sum())}, censored {int(pr.censored.sum())}, flat {int(pr.flat.sum())} of "
                        f"{pr.escaped.numel()}")
    return rows


# ---- tables (pandas only) -----------------------------------------------------------------------------
def _bool(col) -> "Any":
    import numpy as np

    if col.dtype == bool:
        return col.to_numpy()
    return col.astype(str).str.strip().str.lower().isin(["true", "1", "1.0"]).to_numpy(dtype=bool)


def _order(df) -> list[str]:
    present = list(dict.fromkeys(df["variant"]))
    return [v for v in VARIANTS if v in present] + [v for v in present if v not in VARIANTS]


def summary_table(escape, *, steps: int):
    """Per (variant, ratio, scale) of the escape table ``escape`` (a DataFrame with the columns of
    :func:`escape_columns`; T = ``steps``): ``n_runs``; ``n_escaped``, ``n_censored`` (escape time
    > T, +inf), ``n_flat`` (no gradient in the ball: no escape time) and ``n_nonfinite`` (a NaN or inf
    loss); ``censored_share`` = n_censored / (n_escaped + n_censored); the median and the quartiles
    (order statistics, numpy's ``inverted_cdf``: no interpolation across +inf) of the escape time over
    the escaped and censored runs, censored runs as +inf ("> T"; NaN where no run has an escape
    time); ``median_eta`` (η, or c·ε under ``normalized``) and ``median_relative_step_ball``
    (η‖∇ℓ(δ_u)‖/ε, the step relative to the ball at the uniform start). Returns a DataFrame with
    :data:`SUMMARY_COLUMNS`, rows in :data:`VARIANTS` order, then ratio, then scale."""
    import numpy as np
    import pandas as pd

    rows = []
    df = escape.copy()
    df["_finite"] = _bool(df["finite"]) if "finite" in df else True
    df["_flat"] = _bool(df["flat"])
    df["_censored"] = _bool(df["censored"])
    df["_escaped"] = _bool(df["escaped"])
    for variant in _order(df):
        dv = df[df["variant"] == variant]
        for (ratio, scale), g in dv.groupby(["ratio", "scale"], sort=True):
            t = pd.to_numeric(g["escape_time"], errors="coerce").to_numpy(float)
            timed = g["_finite"].to_numpy() & ~g["_flat"].to_numpy() & (g["_escaped"].to_numpy() | g["_censored"].to_numpy())
            y = np.where(g["_censored"].to_numpy(), np.inf, t)[timed]
            n_esc, n_cens = int((g["_escaped"] & g["_finite"]).sum()), int((g["_censored"] & g["_finite"]).sum())

            def q(p):
                return float(np.quantile(y, p, method="inverted_cdf")) if len(y) else math.nan

            rows.append({"variant": variant, "step_rule": g["step_rule"].iloc[0], "step_size": float(g["step_size"].iloc[0]),
                         "input_normalization": g["input_normalization"].iloc[0], "ratio": float(ratio),
                         "scale": float(scale), "steps": int(steps), "n_runs": int(len(g)), "n_escaped": n_esc,
                         "n_censored": n_cens, "n_flat": int((g["_flat"] & g["_finite"]).sum()),
                         "n_nonfinite": int((~g["_finite"]).sum()),
                         "censored_share": n_cens / (n_esc + n_cens) if n_esc + n_cens else math.nan,
                         "median_escape_time": float(np.median(y)) if len(y) else math.nan,
                         "q25_escape_time": q(0.25), "q75_escape_time": q(0.75),
                         "median_eta": float(pd.to_numeric(g["eta"], errors="coerce").median()),
                         "median_relative_step_ball": float(pd.to_numeric(g["relative_step_ball"], errors="coerce").median())})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def t5_by_variant(escape, rules: Mapping[str, Any] | None = None):
    """T5's statistic under each variant: :func:`~adversary_dynamics.claims.statements.claim_t5_escape_by_scale`
    on the variant's rows of ``escape`` (no replica table), with the claims' verdict rules ``rules``
    (the configuration's ``claims:`` section; None: the defaults). One row per (variant, ratio) with
    :data:`T5_COLUMNS`: ``rho`` = Spearman ρ(scale, escape time) over the ratio's (scale, seed, input)
    runs (censored runs tied at +inf), ``lo``/``hi`` its percentile-bootstrap interval (seeds and inputs
    resampled), ``verdict`` its sign verdict (supported: the whole interval > 0, i.e. slower escape
    at larger scale), the group's counts and medians by scale, and the variant's overall T5
    (``variant_verdict``; ``variant_rho``, ``variant_lo``, ``variant_hi``: the least favourable
    counted ratio, T5's headline). A variant without a finite run gives one row with ratio NaN and
    verdict inconclusive. Raises ValueError for bad rules (:func:`~adversary_dynamics.claims.rules._rules`)."""
    import pandas as pd

    from adversary_dynamics.claims.rules import _rules
    from adversary_dynamics.claims.statements import claim_t5_escape_by_scale

    r = _rules(rules)
    rows = []
    for variant in _order(escape):
        sub = escape[escape["variant"] == variant].reset_index(drop=True)
        res = claim_t5_escape_by_scale(sub, None, cfg=r)
        lo, hi = res["interval"]
        head = {"variant": variant, "step_rule": sub["step_rule"].iloc[0], "step_size": float(sub["step_size"].iloc[0]),
                "input_normalization": sub["input_normalization"].iloc[0]}
        tail = {"variant_verdict": res["verdict"], "variant_rho": res["value"] if res["value"] is not None else math.nan,
                "variant_lo": lo, "variant_hi": hi}
        groups = res["details"]["groups"] or [{"ratio": math.nan, "value": math.nan, "lo": math.nan, "hi": math.nan,
                                               "verdict": res["verdict"]}]
        for g in groups:
            rows.append({**head, "ratio": g["ratio"], "rho": g["value"], "lo": g["lo"], "hi": g["hi"],
                         "verdict": g["verdict"], **{k: g.get(k) for k in T5_COLUMNS[9:16]}, **tail})
    return pd.DataFrame(rows, columns=list(T5_COLUMNS))
