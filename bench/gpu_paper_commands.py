"""Write bench/gpu_paper_commands.sh: the commands bench/gpu_paper_check.sh runs, taken from the workflow.

The GPU check (bench/gpu_paper_check.sh, issue 11) runs two of config/paper.yaml's paper-figure jobs on a
machine that may not have Snakemake: the whole Fig. 2 escape stage (rule ``paper_fig2_escape_run``) and one
Fig. 3 adversarial-training job (rule ``paper_fig3_train`` at scale 0.1, ratio 1). Rather than typing their
flags by hand (they would drift from adversary_dynamics.pipeline.stages' ``paper_fig2_escape_run`` / ``paper_fig3_train``),
this script asks the workflow itself:

    snakemake -n -p paper_fig2_escape_run paper_fig3_escape_run --configfile config/paper.yaml

in a temporary copy of the workflow (so no .snakemake/ or results/ appear in the checkout), with header-only
placeholder MNIST IDX files in the copy's data/mnist (the configuration check reads only the headers, the
stage keys their content; a dry run reads no data), and takes the Fig. 2 escape job and the Fig. 3 training
job at scale 0.1, ratio 1. Each printed ``exec python <script> ... > <log> 2>&1`` becomes a bash array of the
script and its arguments (``exec``, ``python`` and the log redirection dropped), its ``--params`` document
written out as the flags it stands for (as adversary_dynamics.pipeline.cli.parse_args reads it; the stage record
``_stage`` dropped) and each stage folder (``results/stages/<stage>/<key>``, whose key changes with every
code edit) replaced by ``"$RESULTS"/<stage>``, so that the check can point it at its own folder and append
its overrides (dataset, root, sizes; the scripts' argparse keeps the last value of a repeated flag).

Usage (from anywhere; Snakemake needed here, not on the GPU machine):

    python bench/gpu_paper_commands.py           # rewrite bench/gpu_paper_commands.sh
    python bench/gpu_paper_commands.py --check   # exit 1 with a diff when the committed file is stale

tests/test_bench.py regenerates the file and fails when it differs from the committed one.
Raises RuntimeError when the dry run fails or prints commands of an unexpected form.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shlex
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "gpu_paper_commands.sh"
CONFIG = "config/paper.yaml"
STAGES = "results/stages"
# the one Fig. 3 training job the check times: (scale, ratio, seed) as they appear in the workflow's paths
FIG3_TRAIN = ("0.1", "1", "0")
# bash variable -> the script whose command it holds (exactly one job each in the dry run)
JOBS = {"paper_fig2_escape_run": "scripts/escape.py", "paper_fig3_train": "scripts/train.py"}


def _copy_workflow(src: Path, dst: Path) -> None:
    """The files a workflow run reads, without results or logs: tests/workflow_copy.py's copy."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from workflow_copy import copy_workflow
    finally:
        sys.path.pop(0)
    copy_workflow(dst, root=src)


def _placeholder_mnist(folder: Path) -> None:
    """Header-only IDX files (0 examples, 28x28): enough for the configuration's file check."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        (folder / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 0, 28, 28))
        (folder / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 0))


def dry_run(source: Path = ROOT, config_text: str | None = None) -> dict[str, str]:
    """Dry-run the two jobs on a copy of ``source``'s workflow; ``config_text`` replaces the copy's
    config/paper.yaml when given (tests use it). Returns {variable: shell command}.

    The Fig. 3 training job is one of the jobs rule ``paper_fig3_escape_run`` needs (its folder's key is
    the workflow's to compute): the one at scale and ratio :data:`FIG3_TRAIN`."""
    with tempfile.TemporaryDirectory(prefix="gpu_paper_commands_") as tmp:
        work = Path(tmp)
        _copy_workflow(Path(source), work)
        if config_text is not None:
            (work / CONFIG).write_text(config_text, encoding="utf-8")
        _placeholder_mnist(work / "data" / "mnist")
        cmd = [sys.executable, "-m", "snakemake", "-n", "-p", "paper_fig2_escape_run", "paper_fig3_escape_run",
               "--configfile", CONFIG]
        res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
    text = res.stdout + res.stderr
    if res.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[1:])}` failed:\n{text[-4000:]}")
    shells = [line.split("Shell command:", 1)[1].strip() for line in text.splitlines()
              if line.startswith("Shell command:")]
    s, r, _ = FIG3_TRAIN
    wanted = {"paper_fig2_escape_run": lambda c: " scripts/escape.py run " in f" {c} " and
              f"{STAGES}/paper_fig2_escape_run/" in c,
              "paper_fig3_train": lambda c: " scripts/train.py " in f" {c} " and f" --scale {s} --ratio {r} " in c}
    out = {}
    for var, script in JOBS.items():
        mine = [c for c in shells if wanted[var](c)]
        if len(mine) != 1:
            raise RuntimeError(f"expected one command running {script} in the dry run, found {len(mine)}:\n{text[-4000:]}")
        out[var] = mine[0]
    return out


def _parser_of(script: str) -> argparse.ArgumentParser:
    """The argparse parser of ``script`` (its get_args builds it and hands it to cli.parse_args)."""
    import importlib.util

    from adversary_dynamics.pipeline import cli

    class _Got(Exception):
        pass

    seen = {}

    def grab(parser, argv=None, **kw):
        seen["parser"] = parser
        raise _Got

    spec = importlib.util.spec_from_file_location(f"_bench_{Path(script).stem}", ROOT / script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    given, cli.parse_args = cli.parse_args, grab
    try:
        mod.get_args([])
    except _Got:
        pass
    finally:
        cli.parse_args = given
    return seen["parser"]


def expand_params(argv: list[str]) -> list[str]:
    """[<script>, (<sub-command>), ..., --params JSON, ...] -> the same command with the typed document
    written out as the flags it stands for, as cli.parse_args reads it (each entry with its option and
    words, in the document's order, before the command's other arguments, which win over it); the
    stage record (``_stage``: key, code and data fingerprints) is dropped: the check runs outside the
    workflow's stage folders."""
    from adversary_dynamics.pipeline import cli

    if "--params" not in argv:
        raise RuntimeError(f"no --params in the workflow's command: {argv}")
    i = argv.index("--params")
    doc = json.loads(argv[i + 1])
    doc.pop("_stage", None)
    rest = argv[1:i] + argv[i + 2:]
    parser = _parser_of(argv[0])
    head: list[str] = []
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        cmd = rest[0] if rest and rest[0] in subs[0].choices else doc.get(subs[0].dest)
        doc.pop(subs[0].dest, None)
        rest = rest[1:] if rest and rest[0] == cmd else rest
        parser, head = subs[0].choices[cmd], [cmd]
    by_dest = {a.dest: a for a in parser._actions if a.option_strings}
    unknown = sorted(set(doc) - set(by_dest))
    if unknown:
        raise RuntimeError(f"--params of {argv[0]}: unknown argument(s) {unknown}")
    words = []
    for dest, value in doc.items():
        words += [by_dest[dest].option_strings[-1], *cli._tokens(by_dest[dest], value)]
    return [argv[0], *head, *words, *rest]


def to_argv(command: str, script: str) -> list[str]:
    """``exec python <script> ARGS > LOG 2>&1`` -> [<script>, *ARGS]; RuntimeError for another form."""
    tokens = shlex.split(command)
    if tokens[:3] != ["exec", "python", script] or len(tokens) < 6 or tokens[-3] != ">" or tokens[-1] != "2>&1":
        raise RuntimeError(f"unexpected form of the workflow's command (expected `exec python {script} ... > LOG "
                           f"2>&1`): {command}")
    argv = tokens[2:-3]
    if any(t in (">", ">>", "|", "&&", ";", "2>&1") for t in argv):
        raise RuntimeError(f"unexpected shell syntax in the workflow's command: {command}")
    return argv


def _word(token: str) -> str:
    """One bash word: a stage folder results/stages/<stage>/<key>[/...] as "$RESULTS"/<stage>[/...]
    (keys change with every code edit; the check writes into its own folder), everything else quoted."""
    m = re.fullmatch(rf"{re.escape(STAGES)}/(\w+)/[0-9a-f]{{12}}(/.*)?", token)
    if m:
        return '"$RESULTS"' + shlex.quote(f"/{m.group(1)}{m.group(2) or ''}")
    if "results/" in token:
        raise RuntimeError(f"a results folder inside an argument: {token}")
    return shlex.quote(token)


def render(commands: dict[str, str]) -> str:
    """The text of bench/gpu_paper_commands.sh (deterministic: no dates, versions, keys or paths of this machine)."""
    s, r, k = FIG3_TRAIN
    lines = [
        "# GENERATED by bench/gpu_paper_commands.py from the workflow; do not edit (tests/test_bench.py fails when",
        "# it is stale: rerun `python bench/gpu_paper_commands.py`). Sourced by bench/gpu_paper_check.sh, which sets",
        f"# RESULTS first: \"$RESULTS\"/<stage> stands for the workflow's {STAGES}/<stage>/<key>. Each array is a",
        f"# job's command as `snakemake -n -p --configfile {CONFIG} <target>` prints it, without exec, python and the",
        "# log, its --params document written out as the flags it stands for (without the stage record).",
    ]
    for var, command in commands.items():
        argv = expand_params(to_argv(command, JOBS[var]))
        words = [_word(t) for t in argv]
        rows, row = [], [words[0]]
        for w in words[1:]:  # one flag (and its value) per line
            if w.startswith("--"):
                rows.append(row)
                row = []
            row.append(w)
        rows.append(row)
        lines.append(f"{var}=(")
        lines += ["  " + " ".join(x) for x in rows]
        lines.append(")")
    lines.append(f"paper_fig3_train_run={_word(f'{STAGES}/paper_fig3_train/{0:012x}/scale~{s}/ratio~{r}/seed~{k}')}")
    return "\n".join(lines) + "\n"


def generate(source: Path = ROOT, config_text: str | None = None) -> str:
    """render(dry_run(source, config_text))."""
    return render(dry_run(source, config_text))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = p.parse_args(argv)
    text = generate()
    if args.check:
        old = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), str(OUT),
                                                       "generated"))
            print(f"{OUT} is stale: run python bench/gpu_paper_commands.py", file=sys.stderr)
            return 1
        print(f"{OUT} is up to date")
        return 0
    tmp = OUT.with_name(f".{OUT.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
