"""The README's numbers that come from committed run outputs must equal them.

The claims table of README.md is printed by ``python tests/test_readme.py`` from the committed
reference reports, docs/figures/claims.json and docs/figures/fashion-mnist/claims.json; this test
fails when the README and those reports drift apart (a hand-edited README, a published report
whose table was not regenerated).

Which reports (issue 18): the committed reference in docs/figures/, read from the working tree,
never a run's output. A run writes figures/ (and figures/<name>/), which git ignores and this test
does not read, so a rebuild on another CPU (whose rounding moves the numbers, e.g. T6's rho
-0.425 -> -0.337) cannot make it fail; no rule of the workflow writes under docs/
(tests/test_safety.py checks that a dry run plans nothing there). The comparison is exact (the
table's three significant digits), not within a tolerance: the only way docs/figures/ changes is
``python scripts/publish.py``, which then asks for the table to be regenerated. The working tree's
file rather than ``git show HEAD:...``: after a publish, the README and the reports about to be
committed must agree before the commit, and HEAD would still hold the old report.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the committed reference reports the README's claims table quotes (relative to the repository root)
REPORTS = {"default": Path("docs/figures/claims.json"),
           "Fashion-MNIST": Path("docs/figures/fashion-mnist/claims.json")}


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.3g}"


def cell(claim: dict) -> str:
    """'value [lo, hi] → **verdict**' of one claims.json entry."""
    iv = claim.get("interval") or [None, None]
    return f"{_num(claim.get('value'))} [{_num(iv[0])}, {_num(iv[1])}] → **{claim['verdict']}**"


def table(root: Path = ROOT) -> str:
    """The README's claims table, from the committed reports under ``root``."""
    reports = {k: {c["id"]: c for c in json.loads((root / p).read_text(encoding="utf-8"))["claims"]}
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


def check_readme(readme: str, root: Path = ROOT) -> None:
    """Fail (pytest.fail) unless ``readme`` holds the claims table of the committed reports under ``root``."""
    for p in REPORTS.values():
        if not (root / p).is_file():
            pytest.fail(f"{p} is missing: it is the committed reference README's claims table quotes")
    if table(root) not in readme:
        pytest.fail("README.md's claims table differs from the committed claims reports (docs/figures/); "
                    "replace it with the output of `python tests/test_readme.py`")


def test_readme_claims_table_equals_the_committed_reports():
    check_readme((ROOT / "README.md").read_text(encoding="utf-8"))


def test_a_hand_edited_readme_number_fails():
    """Every number of the table is checked: editing one (T6's default value) makes the check fail."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claims = {c["id"]: c for c in json.loads((ROOT / REPORTS["default"]).read_text(encoding="utf-8"))["claims"]}
    t6 = cell(claims["T6"])
    assert readme.count(t6) >= 1
    edited = dict(claims["T6"], value=claims["T6"]["value"] + 0.1)
    with pytest.raises(pytest.fail.Exception, match="differs from the committed claims reports"):
        check_readme(readme.replace(t6, cell(edited)))
    other = "inconclusive" if claims["T6"]["verdict"] != "inconclusive" else "supported"
    with pytest.raises(pytest.fail.Exception, match="differs"):  # a verdict edited by hand
        check_readme(readme.replace(t6, cell(dict(claims["T6"], verdict=other))))


def test_a_rebuild_writing_figures_does_not_touch_the_check(tmp_path):
    """A rebuild on another CPU rewrites figures/claims.json (and figures/fashion-mnist/) with other
    numbers: the README check reads docs/figures/ only, so it still passes."""
    for p in REPORTS.values():
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / p, tmp_path / p)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    check_readme(readme, tmp_path)
    for p in REPORTS.values():
        run = tmp_path / "figures" / p.relative_to("docs/figures")
        run.parent.mkdir(parents=True, exist_ok=True)
        doc = json.loads((ROOT / p).read_text(encoding="utf-8"))
        for c in doc["claims"]:  # another CPU: every number moved, T6's verdict flipped
            c["value"] = None if c["value"] is None else c["value"] - 0.088
            c["verdict"] = "not supported" if c["id"] == "T6" else c["verdict"]
        run.write_text(json.dumps(doc), encoding="utf-8")
    check_readme(readme, tmp_path)
    assert all(not str(p).startswith("figures/") for p in REPORTS.values())


def test_cell_formats_value_interval_and_verdict():
    assert cell({"value": 0.57613, "interval": [0.4781, 0.7424], "verdict": "supported"}) == \
        "0.576 [0.478, 0.742] → **supported**"
    assert cell({"value": None, "interval": None, "verdict": "inconclusive"}) == "– [–, –] → **inconclusive**"


def test_readme_shows_the_committed_figures():
    """README.md's images and links name the committed reference (docs/figures/), which exists, and
    never a run's untracked figures/."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(images) >= 7, images
    for img in images:
        assert img.startswith("docs/figures/") and (ROOT / img).is_file(), img


if __name__ == "__main__":
    print(table())
