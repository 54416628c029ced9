"""The verdict rules of the claims report: the configuration's ``claims:`` section.

:data:`DEFAULT_RULES` are its defaults (workflow/schemas/config.schema.yaml states the same);
:func:`_rules` fills them in and validates a section; :func:`combine` is the rule that turns the
verdicts of a claim's groups into the claim's verdict; the ``*_rule`` functions write each rule out
as the sentence the report prints; :func:`cli_flags` gives the rules as the flags of
``scripts/claims.py``. The rules are fixed before the runs are read.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from adversary_dynamics.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, bootstrap_rng

__all__ = ["DEFAULT_RULES", "E2_LEAVE_OUT", "_rules", "combine", "claim_rng", "cli_flags"]

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
    "margin_factor": 2.0,
}
#: E2's choices of certified maxima to leave out (``claims.e2_leave_out``; see ``claim_on_sphere``).
E2_LEAVE_OUT = ("flat", "constant", "none")


def _rules(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The verdict rules: the defaults, overridden by ``cfg`` (a ``claims:`` section or a whole
    configuration holding one; keys outside :data:`DEFAULT_RULES` and None values are ignored).
    Raises ValueError for a ``min_supported_groups`` outside [0, 1], a ``confidence`` outside
    (0, 1), ``bootstrap`` < 1 or an unknown ``e2_leave_out``."""
    cfg = dict(cfg or {})
    if isinstance(cfg.get("claims"), Mapping):
        cfg = dict(cfg["claims"])
    out = dict(DEFAULT_RULES)
    out.update({k: v for k, v in cfg.items() if k in DEFAULT_RULES and v is not None})
    out["bootstrap"] = int(out["bootstrap"])
    out["seed"] = int(out["seed"])
    out["min_runs"] = int(out["min_runs"])
    for k in ("min_fraction", "min_supported_groups", "confidence", "margin_factor"):
        out[k] = float(out[k])
    if not out["margin_factor"] >= 0:
        raise ValueError(f"claims.margin_factor must be >= 0, got {out['margin_factor']}")
    if not 0 <= out["min_supported_groups"] <= 1:
        raise ValueError(f"min_supported_groups must lie in [0, 1], got {out['min_supported_groups']}")
    if not 0 < out["confidence"] < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {out['confidence']}")
    if out["bootstrap"] < 1:
        raise ValueError(f"bootstrap must be >= 1, got {out['bootstrap']}")
    if out["e2_leave_out"] not in E2_LEAVE_OUT:
        raise ValueError(f"claims.e2_leave_out must be one of {E2_LEAVE_OUT}, got {out['e2_leave_out']!r}")
    return out


def claim_rng(rules: Mapping[str, Any], claim_no: int) -> np.random.Generator:
    """The bootstrap generator of claim number ``claim_no``: ``default_rng([rules['seed'], claim_no])``."""
    return bootstrap_rng(rules["seed"], claim_no)


def combine(verdicts: Sequence[str], rules: Mapping[str, Any] | None = None) -> str:
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


# ---- the rules as the report writes them --------------------------------------------------------
def level(rules) -> str:
    return f"{rules['confidence']:.0%}"


def combine_text(rules) -> str:
    return (f"The claim is not supported if any counted group is not, supported if none is not and at least "
            f"{rules['min_supported_groups']:.0%} of them are supported, inconclusive otherwise.")


def fraction_rule(rules, what: str, min_what: str) -> str:
    f, lvl = rules["min_fraction"], level(rules)
    return (f"per {what}: supported if the {lvl} bootstrap interval's lower bound is >= {f:g}; not supported if its "
            f"upper bound is < {f:g}; inconclusive otherwise or with fewer than {rules['min_runs']} {min_what}. "
            f"{combine_text(rules)}")


def corr_rule(rules, what: str, units: str) -> str:
    return (f"{what}: supported if the whole {level(rules)} bootstrap interval of Spearman's rho(scale, .) is > 0; not "
            f"supported if it is entirely < 0; inconclusive otherwise, with fewer than {rules['min_runs']} {units} "
            f"per scale, or with fewer than 2 scales. {combine_text(rules)}")


def escape_rule(rules, what: str, x: str) -> str:
    return (f"{what}: supported if the whole {level(rules)} bootstrap interval of Spearman's rho({x}, escape time), "
            f"widened on both sides by {rules['margin_factor']:g} x its numerical margin, is > 0; not supported if it "
            f"is entirely < 0; inconclusive otherwise, with fewer than {rules['min_runs']} (seed, input) pairs, or "
            f"with fewer than 2 values of the {x}. Censored runs (escape time > the step "
            f"budget T: no departure from the start, or still rising at T, by the rule paper_escape.censor_* fixed "
            f"before the runs), runs with no rise at all and runs on a flat landscape count as +inf (worst rank, "
            f"tied): with one budget T for every run (type-I censoring) each censored run outlasts every observed "
            f"escape time and censored runs are mutually unordered, so these tied ranks respect the censoring; the "
            f"number and share censored per group are reported. {combine_text(rules)} {margin_text(rules)}")


def margin_text(rules) -> str:
    return ("Numerical margin: the largest change of a group's value or interval end between the runs and their "
            "replica probes (the same descent and PGA from the uniform start moved by a few units in the "
            "last place, paper_escape.replica_ulps); the claim is inconclusive when a replica gives another verdict, "
            "and has no margin without replicas.")


def slope_rule(rules) -> str:
    tol = rules["slope_tolerance"]
    return (f"per setting and quantity: supported if the {level(rules)} bootstrap interval of the slope has its lower "
            f"end >= bound - {tol:g}, not supported if its upper end is < bound - {tol:g}, inconclusive otherwise or "
            f"with fewer than {rules['min_runs']} trials or 2 step sizes. Counted: {rules['theorem_activation']} at "
            f"m >= d^(5/2); the other settings are contrasts. {combine_text(rules)}")


def cli_flags(rules: Mapping[str, Any] | None, config_name: str) -> str:
    """The verdict rules (the configuration's ``claims:`` section, defaults filled in) and the
    configuration name as the typed flags of ``scripts/claims.py``."""
    r = _rules(rules)
    return " ".join(f"--{k.replace('_', '-')} {r[k]}" for k in DEFAULT_RULES) + f" --config-name {config_name}"
