"""The light jobs (tables, claims, figure notebooks) start without torch: what they import is checked
by module presence (no timing), in a fresh interpreter each."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from workflow_copy import ROOT

HEAVY = ("torch", "seaborn", "matplotlib", "scipy")


def _loaded_after(code: str) -> set[str]:
    prog = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print(" ".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    res = subprocess.run([sys.executable, "-c", prog], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    return set(res.stdout.split())


def _script(name: str, argv: list[str]) -> str:
    return f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("s", {str(ROOT / 'scripts' / name)!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        m.get_args({argv!r})
    """


@pytest.mark.parametrize("name, argv", [
    ("escape.py", ["tables", "--runs", "r", "--out-dir", "o"]),
    ("aggregate.py", ["ext_pga_convergence", "--runs", "1:0:r", "--out-curves", "a", "--out-final", "b",
                      "--max-steps", "10"]),
    ("claims.py", ["--help"]),
])
def test_table_and_claims_scripts_parse_without_torch_or_plotting(name, argv):
    if argv == ["--help"]:
        code = _script(name, []).replace("m.get_args([])", "")
    else:
        code = _script(name, argv)
    assert _loaded_after(code) == set()


def test_table_and_claims_libraries_import_without_torch_or_plotting():
    loaded = _loaded_after("""
        import adversary_dynamics.figures.tables, adversary_dynamics.figures.escape_tables
        import adversary_dynamics.claims, adversary_dynamics.storage.runio
    """)
    assert loaded == set()


def test_notebook_helpers_import_without_torch():
    assert "torch" not in _loaded_after("import adversary_dynamics.figures.plotting, adversary_dynamics.stats")


def test_escape_keeps_its_table_functions():
    from adversary_dynamics.figures import escape, escape_tables

    assert escape.write_tables is escape_tables.write_tables and escape.curve_table is escape_tables.curve_table
