#!/usr/bin/env python
"""The rebuild matrix of issue 18: do the claims' verdicts survive rounding-level changes?

Rebuilds the claims of one configuration three ways, each into its own configuration name (the
stages they share are computed once; a variant reruns only the stages whose declared keys it
changes):

* ``base``: the configuration as written;
* ``threads2``: ``threads: 2`` (other reduction orders in torch's kernels: a cheap stand-in for
  another CPU or BLAS; every compute stage reads ``threads``, so every stage reruns);
* ``start_ulp1``: ``paper_escape.start_ulp: 1`` (the probes of Figs. 2-3, descent and PGA, start
  from the uniform start moved one unit in the last place; only the escape stages rerun).

and prints, per claim, the verdict of each rebuild, the value and interval ends, and their spread
(the largest difference between two rebuilds) next to the numerical margin the base report
states (``numerical_margin``, T5/T6). Exit status 1 when a verdict differs between rebuilds.

    python bench/verdict_matrix.py                                   # the default configuration
    python bench/verdict_matrix.py --configfile config/fashion-mnist.yaml --out matrix.json

Runs ``python -m snakemake --cores N claims`` three times (minutes each on a laptop CPU for the
default; threads2 retrains everything).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"base": [], "threads2": ["threads=2"], "start_ulp1": ["paper_escape={start_ulp: 1}"]}


def config_name(configfile: str | None) -> str:
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if configfile:
        cfg.update({k: v for k, v in (yaml.safe_load(Path(configfile).read_text()) or {}).items() if k == "name"})
    return str(cfg["name"])


def rebuild(name: str | None, extra: list[str], configfile: str | None, cores: int) -> dict:
    """Run ``snakemake claims`` (``name``: the variant's configuration name; None: the configuration
    as written) and return its claims.json, found where the run's first line says its figures go."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "claims"]
    if configfile:
        cmd += ["--configfile", configfile]
    if name is not None or extra:
        cmd += ["--config", *([f"name={name}"] if name else []), *extra]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(res.stdout[-2000:] + res.stderr[-4000:])
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {res.returncode})")
    m = re.search(r"figures in (\S+?)/?,", res.stdout + res.stderr)
    if not m:
        raise SystemExit("could not find where the run filed its figures (the 'Configuration ...' line)")
    return json.loads((ROOT / m.group(1) / "claims.json").read_text(encoding="utf-8"))


def spread(xs) -> float | None:
    xs = [x for x in xs if x is not None and isinstance(x, (int, float)) and math.isfinite(x)]
    return max(xs) - min(xs) if len(xs) >= 2 else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configfile", default=None)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="write the matrix as JSON here")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="the rebuilds to compare (default: all three; base is always included)")
    args = p.parse_args(argv)
    base = config_name(args.configfile)
    variants = {v: e for v, e in VARIANTS.items() if v == "base" or v in args.variants}
    reports = {v: rebuild(None if v == "base" else f"{base}-{v}", extra, args.configfile, args.cores)
               for v, extra in variants.items()}
    rows, same = [], True
    for c in reports["base"]["claims"]:
        by = {v: next(x for x in r["claims"] if x["id"] == c["id"]) for v, r in reports.items()}
        verdicts = {v: x["verdict"] for v, x in by.items()}
        row = {"id": c["id"], "verdicts": verdicts, "identical": len(set(verdicts.values())) == 1,
               "values": {v: x["value"] for v, x in by.items()},
               "intervals": {v: x["interval"] for v, x in by.items()},
               "spread_value": spread([x["value"] for x in by.values()]),
               "spread_interval": max([s for s in (spread([x["interval"][i] for x in by.values()]) for i in (0, 1))
                                       if s is not None], default=None),
               "numerical_margin": c.get("numerical_margin")}
        same &= row["identical"]
        rows.append(row)
    fmt = lambda x: "–" if x is None else f"{x:.3g}"  # noqa: E731
    print(f"\nconfiguration {base}: " + ", ".join(f"{v} ({' '.join(e) or 'as written'})" for v, e in variants.items()))
    print("| claim | " + " | ".join(variants) + " | value spread | interval spread | stated margin (value, ends) |")
    print("|---|" + "---|" * (len(variants) + 3))
    for r in rows:
        m = r["numerical_margin"]
        cells = [f"{r['verdicts'][v]} {fmt(r['values'][v])}" for v in variants]
        print(f"| {r['id']} | " + " | ".join(cells) + f" | {fmt(r['spread_value'])} | {fmt(r['spread_interval'])} | "
              + (f"{fmt(m['value'])}, {fmt(m['interval'])}" if m else "–") + " |")
    print(f"\nevery verdict identical: {same}")
    if args.out:
        args.out.write_text(json.dumps({"configuration": base, "variants": variants, "claims": rows,
                                        "identical": same}, indent=1) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
