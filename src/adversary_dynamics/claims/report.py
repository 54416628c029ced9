"""The claims report: claims.json (:func:`to_jsonable`, :data:`CLAIMS_JSON_SCHEMA`) and claims.md
(:func:`render_markdown`: a summary table, then one section per claim with its rule, details, group
table and further tables such as E2's sensitivity to ``e2_leave_out``)."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from adversary_dynamics.stats import VERDICTS
from adversary_dynamics.claims.rules import _rules

__all__ = ["CLAIMS_JSON_SCHEMA", "to_jsonable", "render_markdown"]

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
                    "numerical_margin": {
                        "type": ["object", "null"],
                        "required": ["replica_ulps", "factor", "value", "interval", "verdict_without_margin",
                                     "replica_verdicts"],
                        "properties": {"replica_ulps": {"type": "array", "items": {"type": "integer"}},
                                       "factor": {"type": "number", "minimum": 0},
                                       "value": {"type": ["number", "null"]},
                                       "interval": {"type": ["number", "null"]},
                                       "verdict_without_margin": {"enum": list(VERDICTS)},
                                       "replica_verdicts": {"type": "array", "items": {"enum": list(VERDICTS)}}}},
                },
            },
        },
    },
}


#: the heading and first column of a details table whose generic ones would say less (claims.md)
TABLE_TITLES: dict[str, str] = {
    "step_rule_sensitivity": "T5 under each step rule (figure ext_step_rule: the same statistic on Fig. 2's probe "
                             "at its fixed ratios, under each PGA step rule; reported, not part of T5's verdict):",
}
TABLE_KEYS: dict[str, str] = {"step_rule_sensitivity": "variant"}


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
        extra.update({k: [{TABLE_KEYS.get(k, "choice"): c, **row} for c, row in d.pop(k).items()] for k in list(d)
                      if isinstance(d[k], dict) and d[k] and all(isinstance(v, dict) for v in d[k].values())})
        lines += ["", f"## {e['id']} ({e['paper_location']}): {e['claim']}", "",
                  f"- verdict: **{e['verdict']}**",
                  f"- statistic: {e['statistic']} = {_fmt(e['value'])}, {lvl} interval {_ival(e['interval'])}",
                  f"- runs: {e['runs']['count']} ({e['runs']['unit']}; tables: {', '.join(e['runs']['tables'])})",
                  f"- the paper's evidence: {e['paper_evidence']}",
                  f"- rule: {e['rule']}"]
        m = e.get("numerical_margin")
        if m:  # T5/T6 with replica trajectories (claims.statements._with_margin)
            lines.append(f"- numerical margin: value {_fmt(m['value'])}, interval ends {_fmt(m['interval'])} (largest "
                         f"change over the replicas {m['replica_ulps']} ulps away; intervals widened by "
                         f"{_fmt(m['factor'])} x the margin); verdict without the margin: "
                         f"{m['verdict_without_margin']}; on the replicas: {', '.join(m['replica_verdicts'])}")
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
            lines += ["", TABLE_TITLES.get(k, f"{k.replace('_', ' ').capitalize()}:"), ""] + _table(rows)
    return "\n".join(lines) + "\n"
