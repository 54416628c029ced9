"""Shared plot style: one ordered palette for input scales across all figures, and an
atomic figure writer (PDF and PNG). Used by the notebooks in ``notebooks/``."""

from __future__ import annotations

from typing import Sequence


def scale_palette(scales: Sequence[float]) -> dict[float, tuple]:
    """Scale -> colour, ordered from small (light) to large (dark) on the 'viridis' map;
    the same scale always gets the same colour within a configuration."""
    import matplotlib

    ordered = sorted({float(s) for s in scales})
    cmap = matplotlib.colormaps["viridis"]
    n = max(len(ordered) - 1, 1)
    return {s: cmap(0.1 + 0.8 * i / n) for i, s in enumerate(ordered)}


def scale_label(s: float) -> str:
    return f"s = {s:g}"


def save_figure(fig, *, pdf: str, png: str, dpi: int = 150) -> None:
    """Write the figure to temporary files, then rename onto ``pdf`` and ``png``."""
    from .runio import atomic_path

    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
