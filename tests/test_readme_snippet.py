"""The README's library snippet (section "The library from Python") runs as a script and prints
its result (issue 19: its last line was a bare expression, which prints nothing in a script), and
the same idiom works for norm="linf" (norm_ratio was None there)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sec = text.split("### The library from Python", 1)[1]
    return re.search(r"```python\n(.*?)```", sec, re.S).group(1)


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_readme_library_snippet_prints_its_result():
    code = snippet().replace("steps=100", "steps=5")  # the same code, fewer steps
    m = re.fullmatch(r"\((\d+), (\d+)\) (\S+)\n", _run(code))
    assert m, "the snippet must print (steps+1, N) and the final norm ratio"
    assert (int(m.group(1)), int(m.group(2))) == (6, 64) and 0 < float(m.group(3)) <= 1 + 1e-6


def test_readme_library_snippet_idiom_works_for_linf():
    code = snippet().replace("steps=100", "steps=5").replace('init="uniform_ball"',
                                                             'init="uniform_ball", norm="linf", gradient="sign"')
    assert 'norm="linf"' in code
    m = re.fullmatch(r"\((\d+), (\d+)\) (\S+)\n", _run(code))
    assert m and 0 < float(m.group(3)) <= 1 + 1e-6
