"""The committed reference (docs/figures/) and publishing a run into it.

Two folders, never the same:

* ``figures/`` (``figures/<name>/`` for configuration ``<name>``): what a run writes. Not tracked
  by git (.gitignore), so a rebuild in a clone leaves no tracked file modified, whatever the CPU.
* ``docs/figures/`` (``docs/figures/<name>/``): the committed reference, which README.md shows
  and quotes (tests/test_readme.py checks the README's claims table against it). No rule of the
  workflow writes there; only :func:`publish` (``python scripts/publish.py``) does, on request.

:func:`publish` copies a run's report into the reference after comparing the fresh claims with the
committed ones (:func:`adversary_dynamics.claims.compare.compare`, its stated tolerances): it
refuses a changed verdict or a number beyond tolerance unless ``force=True``. The default
configuration publishes its figures (PDF, PNG, provenance) and claims report; other
configurations their claims report only (what the README quotes). Publishing is not a Snakemake
rule on purpose: Snakemake would rewrite a rule's outputs whenever its inputs are newer, and the
reference must change only by a deliberate, checked step.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from adversary_dynamics.claims.compare import Difference, compare, summary

__all__ = ["REFERENCE", "OUTPUT", "reference_dir", "output_dir", "published_files", "agreement",
           "Published", "PublishRefused", "publish"]

#: The committed reference of configuration ``default`` (others: a sub-folder named after them).
REFERENCE = Path("docs/figures")
#: What a run of configuration ``default`` writes (others: a sub-folder; workflow/rules/common.smk FIGDIR).
OUTPUT = Path("figures")
#: The claims report's files (every configuration publishes them).
CLAIMS_FILES = ("claims.json", "claims.md")
#: What each figure of the default configuration publishes.
FIGURE_EXTENSIONS = ("pdf", "png", "provenance.json")

README_REMINDER = ("README.md's claims table quotes the committed reports: print it with "
                   "`python tests/test_readme.py`, replace the table in README.md, then commit "
                   "docs/figures/ and README.md together.")


def _sub(base: Path, name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"name must be a configuration's folder name (default, fashion-mnist, ...), got {name!r}")
    return base if name == "default" else base / name


def reference_dir(name: str = "default", *, root: Path | str = ".") -> Path:
    """The committed reference of configuration (folder) ``name``: docs/figures[/<name>]."""
    return Path(root) / _sub(REFERENCE, name)


def output_dir(name: str = "default", *, root: Path | str = ".") -> Path:
    """What a run of configuration (folder) ``name`` writes: figures[/<name>] (common.smk's FIGDIR)."""
    return Path(root) / _sub(OUTPUT, name)


def published_files(name: str = "default") -> list[str]:
    """The file names that ``name`` publishes: every figure's PDF, PNG and provenance and the claims
    report for ``default``; the claims report only for the others."""
    if name != "default":
        return list(CLAIMS_FILES)
    from adversary_dynamics.pipeline.stages import FIGURES

    return [f"{fig}.{ext}" for fig in FIGURES for ext in FIGURE_EXTENSIONS] + list(CLAIMS_FILES)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def agreement(name: str = "default", *, root: Path | str = ".",
              reference_root: Path | str | None = None) -> str | None:
    """One line for the end of a run: does the run's claims.json agree with the committed one?

    ``root``: where the run wrote (Snakemake's working directory); ``reference_root``: the checkout
    that holds docs/figures/ (the workflow's folder; default ``root``). None when either report is
    missing (a configuration without a committed reference, or a run that did not build the claims).
    """
    reference_root = root if reference_root is None else reference_root
    ref = reference_dir(name, root=reference_root) / "claims.json"
    new = output_dir(name, root=root) / "claims.json"
    if not (ref.is_file() and new.is_file()):
        return None
    return summary(compare(_load(ref), _load(new)), reference=ref.relative_to(reference_root).as_posix(),
                   fresh=new.relative_to(root).as_posix())


class PublishRefused(RuntimeError):
    """The fresh claims differ from the committed ones beyond tolerance, and force was not given."""

    def __init__(self, message: str, differences: list[Difference]):
        super().__init__(message)
        self.differences = differences


@dataclass
class Published:
    """What :func:`publish` did: the files copied (destination paths), the differences found."""

    copied: list[Path] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    report: str = ""


def publish(name: str = "default", *, root: Path | str = ".", force: bool = False,
            dry_run: bool = False) -> Published:
    """Copy the run's report of configuration ``name`` (figures[/<name>]/) into the committed
    reference (docs/figures[/<name>]/).

    First compares the fresh claims.json with the committed one (stated tolerances of
    :mod:`adversary_dynamics.claims.compare`). A changed verdict or a number beyond tolerance raises
    :class:`PublishRefused` (nothing is copied) unless ``force``. ``dry_run``: compare and list, copy
    nothing. Raises FileNotFoundError naming the missing files when the run is incomplete.
    """
    root = Path(root)
    src, dst = output_dir(name, root=root), reference_dir(name, root=root)
    files = published_files(name)
    missing = [f for f in files if not (src / f).is_file()]
    if missing:
        build = "snakemake --cores 8" + ("" if name == "default" else f" --configfile config/{name}.yaml")
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise FileNotFoundError(f"{src.relative_to(root)}/ lacks {len(missing)} of the {len(files)} files to "
                                f"publish ({shown}): build them first ({build})")
    out = Published()
    ref = dst / "claims.json"
    if ref.is_file():
        out.differences = compare(_load(ref), _load(src / "claims.json"))
        out.report = summary(out.differences, reference=ref.relative_to(root).as_posix(),
                             fresh=(src / "claims.json").relative_to(root).as_posix())
    else:
        out.report = f"no committed report in {dst.relative_to(root)}/ yet: nothing to compare"
    if out.differences and not force:
        raise PublishRefused(out.report + "\nNot published: a verdict changed or a number moved beyond the "
                             "tolerance of rounding across CPUs (adversary_dynamics.claims.compare). If the "
                             "change is real (new code, new configuration), publish with --force.",
                             out.differences)
    if not dry_run:
        dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not dry_run:
            shutil.copyfile(src / f, dst / f)
        out.copied.append(dst / f)
    return out
