"""Compare two claims reports (claims.json documents): verdicts and numbers, within tolerances.

Two runs of the same configuration on two CPUs (or with another thread count) do not give
bit-identical floating-point results: the order of reductions, the vector width and the BLAS
kernels move the last bits, training amplifies them, and a Spearman rho on a handful of runs
moves by whole ranks. :func:`compare` says whether two reports tell the same story: the same
verdict for every claim, and every number (the claim's ``value`` and the two ends of its
``interval``) within an absolute tolerance of the other.

The tolerances (:data:`TOLERANCE` on values, :data:`INTERVAL_TOLERANCE` on interval ends) are
stated here, once, with their reason; ``scripts/publish.py`` (a run's figures into the committed
reference, docs/figures/) and the end of ``snakemake`` (one line: does the fresh report agree with
the committed one?) use them.

Example::

    ref = json.loads(Path("docs/figures/claims.json").read_text())
    new = json.loads(Path("figures/claims.json").read_text())
    compare(ref, new)                     # [] when they agree within the tolerances
    for d in compare(ref, new, tolerance=0.0):   # every difference at all (bit-identical reruns?)
        print(d)                          # "T6 value: -0.425 -> -0.337 (shift +0.088, tolerance 0)"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["TOLERANCE", "INTERVAL_TOLERANCE", "FIELDS", "Difference", "compare", "summary"]

#: The absolute tolerance on a claim's value, in the claim's own unit. The claims' numbers all live
#: on a unit scale: Spearman rho in [-1, 1] (T5-T7, E3, E4), fractions in [0, 1] (T2-T4, E1, E2)
#: and T1's log-log slope (about 0.3). Reason: it covers rounding across CPUs. The yardstick is the
#: largest shift measured between two machines on the default configuration (issue 18: the
#: committed report before and after commit 2d3369e, rebuilt on an AMD EPYC after an Intel CPU;
#: that commit also refactored code without meaning to move numbers): T6's rho
#: -0.425 -> -0.337 (0.089), T5's 0.576 -> 0.550 (0.025), T1's slope 3e-8, the fractions 0. With 8
#: runs per group one swapped rank pair moves rho by about 0.05, so 0.15 covers the measured 0.089
#: with a margin of one more swap and still flags a real change of a statistic.
TOLERANCE: float = 0.15

#: The absolute tolerance on each end of a claim's interval (bootstrap percentiles), same units.
#: Reason: the ends of a percentile interval over a handful of runs move more than the point
#: estimate; the same two machines moved T6's upper end -0.188 -> 0 (0.188), T5's 0.742 -> 0.681
#: (0.060). 0.25 covers the measured 0.188 with a margin of one swapped rank pair.
INTERVAL_TOLERANCE: float = 0.25

#: The numbers of a claim that are compared: its value and the two ends of its interval.
FIELDS = ("value", "interval_lo", "interval_hi")


@dataclass(frozen=True)
class Difference:
    """One difference between two claims reports that is beyond its tolerance.

    ``claim``: the claim's id (``"T6"``). ``field``: ``"verdict"``, ``"value"``, ``"interval_lo"``,
    ``"interval_hi"``, or ``"presence"`` (the claim is in one report only: ``reference`` or ``fresh``
    is then None). ``reference``/``fresh``: the two values (a number, None for a missing or
    non-finite number, or a verdict string). ``tolerance``: the absolute tolerance that was applied
    to a number (None for a verdict or a presence). ``shift``: ``fresh - reference`` for two numbers,
    else None (a number against None is always a difference).
    """

    claim: str
    field: str
    reference: Any
    fresh: Any
    tolerance: float | None = None
    shift: float | None = None

    def __str__(self) -> str:
        if self.field == "presence":
            return f"{self.claim}: only in the {'reference' if self.fresh is None else 'fresh'} report"
        if self.field == "verdict":
            return f"{self.claim} verdict: {self.reference} -> {self.fresh}"
        msg = f"{self.claim} {self.field}: {_num(self.reference)} -> {_num(self.fresh)}"
        if self.shift is not None:
            msg += f" (shift {self.shift:+.3g}, tolerance {self.tolerance:g})"
        return msg


def _num(x: Any) -> str:
    return "none" if x is None else f"{x:.3g}"


def _finite(x: Any) -> float | None:
    """A number as float; None, NaN and +-inf as None (claims.json writes non-finite as null)."""
    if x is None or isinstance(x, bool):
        return None
    if not isinstance(x, (int, float)):
        raise TypeError(f"a claim's number must be a number or null, not {x!r}")
    x = float(x)
    return x if math.isfinite(x) else None


def _numbers(claim: Mapping[str, Any]) -> dict[str, float | None]:
    iv = claim.get("interval") or [None, None]
    if len(iv) != 2:
        raise ValueError(f"claim {claim.get('id')!r}: 'interval' must have two ends, got {iv!r}")
    return {"value": _finite(claim.get("value")), "interval_lo": _finite(iv[0]), "interval_hi": _finite(iv[1])}


def _claims(doc: Mapping[str, Any], which: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("claims"), list):
        raise ValueError(f"the {which} report must be a claims.json document (an object with a 'claims' list)")
    out: dict[str, Mapping[str, Any]] = {}
    for c in doc["claims"]:
        if "id" not in c or "verdict" not in c:
            raise ValueError(f"the {which} report has a claim without 'id' or 'verdict': {sorted(c)}")
        if c["id"] in out:
            raise ValueError(f"the {which} report lists claim {c['id']!r} twice")
        out[c["id"]] = c
    return out


def _tolerance(x: float | None, default: float, what: str) -> float:
    if x is None:
        return default
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not x >= 0:
        raise ValueError(f"{what} must be a number >= 0, got {x!r}")
    return float(x)


def compare(reference: Mapping[str, Any], fresh: Mapping[str, Any], *, tolerance: float | None = None,
            interval_tolerance: float | None = None) -> list[Difference]:
    """The differences between two claims reports that are beyond the tolerances; [] if they agree.

    ``reference``, ``fresh``: two parsed claims.json documents (``{"claims": [{"id", "verdict",
    "value", "interval": [lo, hi], ...}, ...], ...}``; other keys, such as ``code_version`` or a
    claim's ``details``, are not compared). Keyword-only tolerances, absolute, in each claim's unit:
    ``tolerance`` on the value (None: :data:`TOLERANCE`), ``interval_tolerance`` on each interval end
    (None: :data:`INTERVAL_TOLERANCE` when ``tolerance`` is None, else ``tolerance``, so that
    ``tolerance=0.0`` reports every number that is not exactly equal).

    A claim differs where
      * it is in one report only (field ``"presence"``);
      * its verdict differs (``"verdict"``: verdicts are never tolerated);
      * its value or an end of its interval differs by more than the tolerance,
        |fresh - reference| > tolerance, or is a number in one report and null in the other.

    Returns a list of :class:`Difference`, in the reference's claim order (claims only in the fresh
    report last), for each claim the verdict first, then value, interval_lo, interval_hi.
    """
    tol = {"value": _tolerance(tolerance, TOLERANCE, "tolerance")}
    tol["interval_lo"] = tol["interval_hi"] = _tolerance(
        interval_tolerance, INTERVAL_TOLERANCE if tolerance is None else tol["value"], "interval_tolerance")
    ref, new = _claims(reference, "reference"), _claims(fresh, "fresh")
    out: list[Difference] = []
    for cid in list(ref) + [c for c in new if c not in ref]:
        if cid not in new or cid not in ref:
            out.append(Difference(cid, "presence", "present" if cid in ref else None,
                                  "present" if cid in new else None))
            continue
        a, b = ref[cid], new[cid]
        if a["verdict"] != b["verdict"]:
            out.append(Difference(cid, "verdict", a["verdict"], b["verdict"]))
        na, nb = _numbers(a), _numbers(b)
        for f in FIELDS:
            x, y = na[f], nb[f]
            if x is None and y is None:
                continue
            if x is None or y is None:
                out.append(Difference(cid, f, x, y, tol[f]))
            elif abs(y - x) > tol[f]:
                out.append(Difference(cid, f, x, y, tol[f], y - x))
    return out


def summary(differences: list[Difference], *, reference: str, fresh: str) -> str:
    """One line (or one line and one per difference) for people: do the reports agree?

    ``reference``, ``fresh``: how to name the two reports (their paths).
    """
    if not differences:
        return f"{fresh} agrees with the committed report ({reference}) within tolerance"
    claims = list(dict.fromkeys(d.claim for d in differences))
    lines = [f"{fresh} differs from the committed report ({reference}) beyond tolerance in "
             f"{', '.join(claims)}:"]
    lines += [f"  {d}" for d in differences]
    return "\n".join(lines)
