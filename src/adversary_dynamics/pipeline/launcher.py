"""``adversary-dynamics``: Snakemake with the command line's configuration checked first.

Takes exactly ``snakemake``'s arguments and runs ``python -m snakemake`` with them (same
process: it replaces itself, so Ctrl-C, exit codes and output are Snakemake's own). Before that
it does what Snakemake 9 cannot, because Snakemake reads ``--configfile`` and ``--config`` before
it reads the Snakefile (so the workflow's own checks never see these faults):

* every ``--configfile`` must be a readable YAML/JSON file holding a mapping; otherwise one line
  names the file, what is wrong, and the configuration files that exist (Snakemake 9.27.1 prints a
  27-line Python traceback for a missing one: it opens the file outside the ``try`` that would
  turn FileNotFoundError into its one-line WorkflowError);
* ``--config`` keys may be dotted: ``train.epochs=5`` is passed on as ``train={epochs: 5}``
  (Snakemake merges nested values key by key, so ``train.epochs=5 train.lr=0.1`` sets both);
  Snakemake itself refuses a dotted key with "Config entry must start with a valid identifier";
* the merged configuration (the Snakefile's ``config/config.yaml``, then each ``--configfile``
  in order, then ``--config``; merged with Snakemake's own functions) is validated with
  :func:`adversary_dynamics.pipeline.config.validate_config`, the check ``common.smk`` runs, so a bad key
  is reported in a few lines before Snakemake starts.

Exit status 2 with a message on standard error for each of these; otherwise Snakemake's.
Nothing here runs at import; :func:`main` is the console entry point.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["HELP", "LauncherError", "is_dry_run", "main", "plan_text", "rewrite_dotted_keys", "snakemake_argv"]

PROG = "adversary-dynamics"
_IDENTIFIER = re.compile(r"[a-zA-Z_][\w-]*\w$|[a-zA-Z_]$")
# options of snakemake that take values, so that their values are not read as targets or flags
_CONFIGFILE = ("--configfile", "--configfiles")
_CONFIG = ("--config", "-C")
_DIRECTORY = ("--directory", "-d")
_SNAKEFILE = ("--snakefile", "-s")


class LauncherError(Exception):
    """A command-line fault found before Snakemake starts (its message is printed as is)."""


def _split(argv: Sequence[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Group argv into (option, values) pairs the way Snakemake's argparse does for the options
    this module reads (``--configfile`` nargs='+', ``--config`` nargs='*': values run to the next
    argument that starts with '-'); everything else is kept in place as ("", [arg])."""
    out: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        opt, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
        if opt in _CONFIGFILE + _CONFIG + _DIRECTORY + _SNAKEFILE:
            vals = [val] if eq else []
            i += 1
            single = opt in _DIRECTORY + _SNAKEFILE
            while not eq and i < len(argv) and not argv[i].startswith("-") and not (single and vals):
                vals.append(argv[i])
                i += 1
            out.append((opt, vals))
            continue
        out.append(("", [a]))
        i += 1
    return out


def _config_files_here(base: Path) -> str:
    files = sorted(str(p.relative_to(base)) for p in (base / "config").glob("*.yaml")) if (base / "config").is_dir() \
        else []
    return ", ".join(files) if files else "none found under config/"


def _load_mapping(path: Path, shown: str, base: Path) -> dict:
    """The mapping in a configuration file; LauncherError naming the file otherwise."""
    import yaml

    hint = f"configuration files here: {_config_files_here(base)}"
    if not path.exists():
        target = "" if path.suffix.lower() in (".yaml", ".yml", ".json") else (
            f" (if {shown!r} is a target: --configfile takes several files, so put targets before it)")
        raise LauncherError(f"--configfile {shown}: no such file ({path.absolute()}){target}; {hint}")
    if path.is_dir():
        raise LauncherError(f"--configfile {shown}: is a directory, not a YAML file; {hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LauncherError(f"--configfile {shown}: cannot be read ({exc})") from None
    from adversary_dynamics.pipeline.config import DuplicateKeyError, load_yaml_text

    try:
        data = load_yaml_text(text, shown)
    except DuplicateKeyError as exc:
        raise LauncherError(f"--configfile {shown}: {exc.detail}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise LauncherError(f"--configfile {shown}: not valid YAML{at} "
                            f"({getattr(exc, 'problem', None) or exc})") from None
    if data is None:
        raise LauncherError(f"--configfile {shown}: is empty; a configuration file holds key: value lines at the top "
                            f"level, as in config/config.yaml")
    if not isinstance(data, dict):
        raise LauncherError(f"--configfile {shown}: holds a {type(data).__name__}, not a mapping of config keys "
                            f"(key: value lines at the top level, as in config/config.yaml)")
    return data


def rewrite_dotted_keys(entries: Sequence[str]) -> list[str]:
    """``--config`` entries with dotted keys nested: ``a.b.c=v`` → ``a={b: {c: v}}`` (the value text
    unchanged, so Snakemake parses it as it would in the nested form). Undotted entries pass
    unchanged. Raises LauncherError for an entry without '=', with a part that is not an
    identifier, or whose value writes a key twice."""
    out = []
    for entry in entries:
        key, eq, val = entry.partition("=")
        if not eq:
            raise LauncherError(f"--config {entry!r}: expected KEY=VALUE (for example --config train.epochs=5); "
                                f"--config takes several entries, so put targets before it")
        parts = key.split(".")
        bad = [p for p in parts if not _IDENTIFIER.match(p)]
        if bad:
            raise LauncherError(f"--config {entry!r}: {bad[0]!r} is not a config key; keys are names like "
                                f"train.epochs (see config/config.yaml)")
        from adversary_dynamics.pipeline.config import DuplicateKeyError, check_config_args

        try:
            check_config_args([entry])
        except DuplicateKeyError as exc:
            raise LauncherError(f"--config {entry!r}: {exc.detail}") from None
        if len(parts) == 1:
            out.append(entry)
            continue
        nested = val if val != "" else "null"
        for p in reversed(parts[1:]):
            nested = "{" + f"{p}: {nested}" + "}"
        out.append(f"{parts[0]}={nested}")
    return out


def snakemake_argv(argv: Sequence[str], *, check: bool = True) -> list[str]:
    """Snakemake's arguments for ``argv`` (dotted ``--config`` keys nested), after checking each
    ``--configfile`` and, with ``check``, validating the merged configuration (module docstring).
    Raises LauncherError."""
    groups = _split(list(argv))
    directory = Path(next((v[0] for o, v in groups if o in _DIRECTORY and v), "."))
    snakefile = next((v[0] for o, v in groups if o in _SNAKEFILE and v), None)
    base = directory if snakefile is None else Path(snakefile).parent
    files: list[tuple[str, dict]] = []
    entries: list[str] = []
    out: list[str] = []
    for opt, vals in groups:
        if opt in _CONFIGFILE:
            if not vals:
                raise LauncherError(f"{opt} needs at least one file (put targets before it: snakemake "
                                    f"<targets> --configfile my.yaml)")
            for v in vals:
                files.append((v, _load_mapping(Path(v), v, base)))  # Snakemake reads it from the cwd
            out += [opt, *vals]
        elif opt in _CONFIG:
            new = rewrite_dotted_keys(vals)
            entries += new
            out += [opt, *new]
        elif opt:
            out += [opt, *vals]
        else:
            out += vals
    if check and (files or entries):
        _validate(base, files, entries, replace="--replace-workflow-config" in argv, check_files=not is_dry_run(out))
    return out


_DRY_RUN = ("-n", "--dry-run", "--dryrun", "--dry_run")
_SHORT_FLAGS = re.compile(r"-[nprqkFfT]*n[nprqkFfT]*$")  # -n in a cluster of Snakemake's short flags (-np)


def is_dry_run(argv: Sequence[str]) -> bool:
    """Whether the arguments ask for a dry run (``-n``, ``--dry-run``, ``-np``) or the launcher's
    ``--plan``: the workflow then plans without the dataset files (their fingerprint is a placeholder),
    so the launcher does not require them either."""
    return any(a in _DRY_RUN or _SHORT_FLAGS.match(a) or a == "--plan" or a.startswith("--plan=") for a in argv)


def plan_text(argv: Sequence[str]) -> str:
    """``--plan[=KIND]``: the merged configuration's jobs and their requests (:func:`costs.plan`), for
    device kind KIND (cpu-core | h200; default: this host's, ``costs.device_kind``). Needs no data files."""
    from adversary_dynamics.pipeline import costs

    kind = None
    rest = []
    for a in argv:
        if a == "--plan" or a.startswith("--plan="):
            kind = a.partition("=")[2] or None
        else:
            rest.append(a)
    if kind is not None and kind not in costs.RATES:
        raise LauncherError(f"--plan={kind}: unknown device kind; known: {', '.join(costs.RATES)}")
    groups = _split(rest)
    directory = Path(next((v[0] for o, v in groups if o in _DIRECTORY and v), "."))
    files = [(v, _load_mapping(Path(v), v, directory)) for o, vals in groups if o in _CONFIGFILE for v in vals]
    entries = [e for o, vals in groups if o in _CONFIG for e in rewrite_dotted_keys(vals)]
    config = _validate(directory, files, entries, replace="--replace-workflow-config" in rest, check_files=False)
    if config is None:
        raise LauncherError("--plan: run it in the folder of the workflow's Snakefile (no config/config.yaml here)")
    kind = kind or costs.device_kind(config)
    return costs.format_plan(costs.plan(config, kind=kind), kind=kind, name=config["name"])


def _validate(base: Path, files: list[tuple[str, dict]], entries: list[str], *, replace: bool,
              check_files: bool = True) -> dict | None:
    """The configuration Snakemake will build, validated as common.smk validates it (``check_files``:
    the dataset files must be there; not for a dry run); None outside the workflow's folder."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    from adversary_dynamics.pipeline.config import ConfigError, name_as_typed, validate_config

    schema = base / "workflow" / "schemas" / "config.schema.yaml"
    default = base / "config" / "config.yaml"
    if not schema.exists() or not default.exists():
        return None  # not this workflow's folder: Snakemake will say what is missing
    from adversary_dynamics.pipeline.config import _load_yaml

    try:
        config: dict = {} if replace else _load_yaml(default)
    except ConfigError as exc:  # a key written twice in the workflow's own config/config.yaml
        raise LauncherError(str(exc)) from None
    for _, data in files:
        update_config(config, data)
    try:
        update_config(config, parse_config(entries))
    except ValueError as exc:
        raise LauncherError(f"--config: {exc}") from None
    name_as_typed(config, entries)  # `--config name=007`: the text as typed, as common.smk does
    try:
        return validate_config(json.loads(json.dumps(config)), schema, check_files=check_files)
    except ConfigError as exc:
        raise LauncherError(str(exc)) from None


HELP = f"""\
usage: {PROG} [TARGET ...] [--configfile FILE ...] [--config KEY=VALUE ...] [OPTION ...]

Rebuild the figures and the claims report of Deng et al. (ICML 2020), "Towards Understanding the
Dynamics of the First-Order Adversaries": this runs Snakemake on the workflow in the current
folder, after checking the configuration you give it, so that a mistake stops the run in a few
lines, before any job starts.

Common commands:
  {PROG} --cores 8
      every figure and the claims report of the default configuration (config/config.yaml)
  {PROG} --cores 2 paper_fig2_escape_by_scale
      one figure (named after its file in figures/) and only what it needs
  {PROG} --cores 2 claims
      the claims report only (figures/claims.md, claims.json)
  {PROG} -n --cores 8
      dry run: list the jobs that would run, run nothing (works without the dataset files)
  {PROG} --plan --configfile config/paper.yaml
      the configuration's jobs and their resource requests (runtime, mem_mb, gpu) from the
      cost model, rule by rule; --plan=h200 or --plan=cpu-core for that device kind
  {PROG} --cores 8 --configfile config/paper.yaml
      another configuration
  {PROG} --cores 8 --config train.lr=0.02 probe.restarts=8
      change single keys (dotted keys are allowed here, unlike plain snakemake)

Configurations live in config/*.yaml; every key is described in config/config.yaml.
{{here}}
Figures go to figures/ (the default) or figures/<name>/, the configuration's record to
results/<name>/ (config.json, stages.json), or <name>-<hash8> for both when the configuration
differs from the committed file of that name; each stage's results go to
results/stages/<stage>/<key>/, keyed by what the stage reads (shared where that is the same).

Checked before Snakemake starts (exit status 2 and a message naming the file or key):
  - each --configfile exists, is valid YAML holding a mapping, and writes no key twice;
  - every key and value of the merged configuration (config/config.yaml, then each
    --configfile, then --config) is one the workflow accepts.

Every other argument goes to snakemake unchanged (see snakemake --help); targets go before
--configfile and --config, which take several values.
"""


def _help(base: Path) -> str:
    files = sorted(p.name for p in (base / "config").glob("*.yaml")) if (base / "config").is_dir() else []
    import textwrap

    here = (f"In config/ here: {', '.join(files)}." if files else
            "There is no config/ folder here: run it in the folder of the workflow's Snakefile.")
    return HELP.format(here=textwrap.fill(here, 96))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: check, then replace this process by ``python -m snakemake``.
    ``-h``/``--help`` as the first argument prints :data:`HELP` (the configuration files of
    the current folder's config/ listed) and returns 0."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(_help(Path(".")), end="")
        return 0
    try:
        if any(a == "--plan" or a.startswith("--plan=") for a in args):
            print(plan_text(args))
            return 0
        new = snakemake_argv(args)
    except LauncherError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if new != args:
        import shlex

        print(f"{PROG}: running snakemake {shlex.join(new)}", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "snakemake", *new])
    return 0  # not reached


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
