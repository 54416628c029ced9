"""plotting.save_figure: atomic, and the same figure gives the same bytes on every rebuild (no
creation date in the PDF), so rerunning the pipeline does not rewrite unchanged tracked figures."""

from __future__ import annotations

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adversary_dynamics.figures.plotting import save_figure  # noqa: E402


def _draw(path, layout=None):
    fig, ax = plt.subplots(layout=layout)
    ax.plot([0, 1, 4], label="ε = ratio × s")
    ax.legend()
    save_figure(fig, pdf=str(path / "f.pdf"), png=str(path / "f.png"))
    plt.close(fig)
    return (path / "f.pdf").read_bytes(), (path / "f.png").read_bytes()


def test_the_same_figure_saved_twice_gives_the_same_bytes(tmp_path):
    for layout in (None, "constrained"):
        a, b = tmp_path / f"a{layout}", tmp_path / f"b{layout}"
        a.mkdir(), b.mkdir()
        first = _draw(a, layout)
        time.sleep(1.1)  # a PDF creation date has a resolution of one second
        second = _draw(b, layout)
        assert first[0].startswith(b"%PDF") and first[1].startswith(b"\x89PNG")
        assert first == second
        assert b"CreationDate" not in first[0]
