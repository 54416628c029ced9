"""The README's numbers that come from committed run outputs must equal them.

The claims table of README.md is printed by ``python tests/test_readme.py`` from the committed
claims reports (figures/claims.json, figures/fashion-mnist/claims.json); this test fails when the
README and the reports drift apart (a rebuilt report with other numbers, a hand-edited README).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORTS = {"default": ROOT / "figures" / "claims.json",
           "Fashion-MNIST": ROOT / "figures" / "fashion-mnist" / "claims.json"}


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.3g}"


def cell(claim: dict) -> str:
    """'value [lo, hi] → **verdict**' of one claims.json entry."""
    iv = claim.get("interval") or [None, None]
    return f"{_num(claim.get('value'))} [{_num(iv[0])}, {_num(iv[1])}] → **{claim['verdict']}**"


def table() -> str:
    reports = {k: {c["id"]: c for c in json.loads(p.read_text(encoding="utf-8"))["claims"]}
               for k, p in REPORTS.items()}
    base = reports["default"]
    lines = ["| id | paper | the paper's evidence | our statistic | default (digits) | Fashion-MNIST |",
             "|---|---|---|---|---|---|"]
    for cid, c in base.items():
        other = reports["Fashion-MNIST"].get(cid)
        loc, ev, st = (str(c[k]).replace("|", "\\|") for k in ("paper_location", "paper_evidence", "statistic"))
        lines.append(f"| {cid} | {loc} | {ev} | {st} | {cell(c)} | "
                     f"{cell(other) if other else '–'} |")
    return "\n".join(lines)


def test_readme_claims_table_equals_the_committed_reports():
    for p in REPORTS.values():
        if not p.exists():
            pytest.fail(f"{p.relative_to(ROOT)} is missing: rebuild it (README's claims table quotes it)")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = table()
    assert expected in readme, ("README.md's claims table differs from the committed claims reports; "
                                "replace it with the output of `python tests/test_readme.py`")


def test_cell_formats_value_interval_and_verdict():
    assert cell({"value": 0.57613, "interval": [0.4781, 0.7424], "verdict": "supported"}) == \
        "0.576 [0.478, 0.742] → **supported**"
    assert cell({"value": None, "interval": None, "verdict": "inconclusive"}) == "– [–, –] → **inconclusive**"


if __name__ == "__main__":
    print(table())
