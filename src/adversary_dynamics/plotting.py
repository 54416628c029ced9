"""Shared plot style for the figure notebooks in ``notebooks/``.

* one ordered palette for input scales used by every figure (:func:`scale_palette`), and a
  grey-scale style per probed checkpoint (:func:`checkpoint_styles`) that cannot be confused
  with it;
* NaN/inf-safe summaries: mean with a t-based 95% interval over seeds (:func:`mean_ci`),
  median with interquartile range (:func:`median_iqr`), grouped versions (:func:`summarise`);
* small drawing helpers (a line with a shaded band, a log2 input-scale axis, a suptitle naming
  the configuration) and an atomic figure writer (:func:`save_figure`, PDF and PNG).

Only matplotlib, numpy and pandas are imported (lazily where cheap), so notebooks start fast.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

# ---- style ---------------------------------------------------------------------------------
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.5,
}

BAND_ALPHA = 0.22


def use_style() -> None:
    """Apply the shared rcParams (call once at the top of every notebook)."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)


# ---- palettes and labels -------------------------------------------------------------------
def scale_palette(scales: Sequence[float]) -> dict[float, tuple]:
    """Scale -> colour, ordered from small (dark blue) to large (orange) on 'plasma' (the pale
    yellow end is left out so every line stays visible on white); the same scale always gets
    the same colour for the same set of scales."""
    import matplotlib

    ordered = sorted({float(s) for s in scales})
    cmap = matplotlib.colormaps["plasma"]
    n = max(len(ordered) - 1, 1)
    return {s: cmap(0.05 + 0.73 * i / n) for i, s in enumerate(ordered)}


def scale_label(s: float) -> str:
    return f"s = {float(s):g}"


def checkpoint_label(c: int, checkpoints: Iterable[int]) -> str:
    """'initialisation (epoch 0)', 'final (epoch 20)', 'early (epoch 1)' or 'epoch k'."""
    cs = sorted({int(x) for x in checkpoints})
    c = int(c)
    if c == 0:
        return "initialisation (epoch 0)"
    if c == cs[-1]:
        return f"final (epoch {c})"
    middle = [x for x in cs if x not in (0, cs[-1])]
    if len(middle) == 1 or (middle and c == middle[0]):
        return f"early (epoch {c})"
    return f"epoch {c}"


def checkpoint_styles(checkpoints: Iterable[int]) -> dict[int, dict]:
    """Checkpoint -> line style (grey levels from light to black, distinct markers and dashes),
    for plots whose x axis is the scale (so colour is not available for the checkpoint)."""
    cs = sorted({int(x) for x in checkpoints})
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    dashes = [":", "--", "-", "-.", (0, (5, 1)), (0, (1, 1)), (0, (3, 1, 1, 1))]
    n = max(len(cs) - 1, 1)
    return {
        c: {
            "color": str(round(0.6 * (1 - i / n), 3)),
            "marker": markers[i % len(markers)],
            "linestyle": dashes[i % len(dashes)] if i < len(cs) - 1 else "-",
        }
        for i, c in enumerate(cs)
    }


def group_palette(keys: Sequence, cmap: str = "viridis") -> dict:
    """A second ordered palette (e.g. for input dimensions) on a colour map other than the
    scales' one."""
    import matplotlib

    ordered = sorted(set(keys))
    cm = matplotlib.colormaps[cmap]
    n = max(len(ordered) - 1, 1)
    return {k: cm(0.8 * i / n) for i, k in enumerate(ordered)}


# ---- robust summaries ----------------------------------------------------------------------
def as_bool(series: pd.Series) -> pd.Series:
    """Booleans as written by the tables ('True'/'False', bool, 0/1); anything else -> False."""
    if series.dtype == bool:
        return series
    m = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    return series.astype(str).str.strip().str.lower().map(m).fillna(False).astype(bool)


def finite(values) -> np.ndarray:
    """The finite entries of ``values`` as a float array (NaN and +-inf dropped)."""
    a = np.asarray(values, dtype=float).ravel()
    return a[np.isfinite(a)]


def _t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile (scipy.special is much lighter to import than scipy.stats)."""
    try:
        from scipy.special import stdtrit

        return float(stdtrit(dof, 0.5 + level / 2))
    except ImportError:  # a normal approximation when scipy is missing
        return {0.95: 1.96, 0.9: 1.645, 0.99: 2.576}.get(level, 1.96)


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """(mean, lower, upper, n) of the finite values: Student-t interval of the mean; the bounds
    are NaN with fewer than two finite values, everything NaN with none."""
    a = finite(values)
    n = len(a)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    m = float(a.mean())
    if n < 2:
        return (m, math.nan, math.nan, n)
    h = _t_quantile(level, n - 1) * float(a.std(ddof=1)) / math.sqrt(n)
    return (m, m - h, m + h, n)


def geo_mean_ci(values, level: float = 0.95) -> tuple[float, float, float, int]:
    """(geometric mean, lower, upper, n) of the finite positive values: the t-interval of the
    mean of log values, mapped back (the natural band on a log axis; never below zero)."""
    a = finite(values)
    a = a[a > 0]
    m, lo, hi, n = mean_ci(np.log(a), level)
    return (math.exp(m) if n else math.nan, math.exp(lo) if n > 1 else math.nan,
            math.exp(hi) if n > 1 else math.nan, n)


def median_iqr(values) -> tuple[float, float, float, int]:
    """(median, 25th percentile, 75th percentile, n) of the finite values (NaN when none)."""
    a = finite(values)
    if len(a) == 0:
        return (math.nan, math.nan, math.nan, 0)
    q25, q50, q75 = np.percentile(a, [25, 50, 75])
    return (float(q50), float(q25), float(q75), len(a))


def summarise(df: pd.DataFrame, by: Sequence[str] | str, value: str, stat: str = "mean_ci",
              level: float = 0.95) -> pd.DataFrame:
    """Per group of ``by``: columns ``center, lo, hi, n`` of ``value``, NaN/inf-safe (only finite
    values count; ``n`` is their number), groups sorted by ``by``. ``stat``:

    * 'mean_ci': mean and Student-t interval (bounds NaN when n < 2), as :func:`mean_ci`;
    * 'geo_mean_ci': the same on log values (positive values only), mapped back;
    * 'median_iqr': median, 25th and 75th percentiles.
    """
    by = [by] if isinstance(by, str) else list(by)
    v = pd.to_numeric(df[value], errors="coerce").astype(float)
    v = v.where(np.isfinite(v))
    if stat == "geo_mean_ci":
        v = np.log(v.where(v > 0))
    g = v.groupby([df[b] for b in by], sort=True)
    if stat == "median_iqr":
        out = pd.DataFrame({"center": g.median(), "lo": g.quantile(0.25), "hi": g.quantile(0.75), "n": g.count()})
        return out.reset_index()
    if stat not in ("mean_ci", "geo_mean_ci"):
        raise ValueError(f"unknown stat {stat!r}")
    n = g.count()
    m = g.mean()
    sd = g.std(ddof=1)
    t = pd.Series([_t_quantile(level, k - 1) if k >= 2 else math.nan for k in n], index=n.index)
    h = t * sd / np.sqrt(n.where(n > 0))
    out = pd.DataFrame({"center": m, "lo": m - h, "hi": m + h, "n": n})
    if stat == "geo_mean_ci":
        out[["center", "lo", "hi"]] = np.exp(out[["center", "lo", "hi"]])
    return out.reset_index()


# ---- drawing helpers -----------------------------------------------------------------------
def pad_nan_edge(z: np.ndarray) -> np.ndarray:
    """A copy of the 2-D array ``z`` whose NaN cells next to finite ones get the mean of their
    finite neighbours (one pass). For display only: a disk sampled on a square grid then has
    no white notches at its rim once the image is clipped to the circle."""
    z = np.asarray(z, dtype=float)
    p = np.pad(z, 1, constant_values=np.nan)
    stack = np.stack([p[1 + di: p.shape[0] - 1 + di, 1 + dj: p.shape[1] - 1 + dj]
                      for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)])
    ok = np.isfinite(stack)
    cnt = ok.sum(0)
    mean = np.where(cnt > 0, np.where(ok, stack, 0.0).sum(0) / np.maximum(cnt, 1), np.nan)
    return np.where(np.isfinite(z), z, mean)


def line_band(ax, x, center, lo, hi, *, color, label=None, alpha: float = BAND_ALPHA, **kw):
    """A line with a shaded band between ``lo`` and ``hi`` (gaps where values are NaN)."""
    (line,) = ax.plot(x, center, color=color, label=label, **kw)
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0)
    return line


def scale_axis(ax, scales: Sequence[float], axis: str = "x", label: str = "input scale s") -> None:
    """A log2 axis with one tick per input scale, labelled with the scale values."""
    from matplotlib.ticker import FixedLocator, NullLocator

    ss = sorted({float(s) for s in scales})
    if axis == "x":
        ax.set_xscale("log", base=2)
        a = ax.xaxis
        ax.set_xlabel(label)
        lo, hi = ss[0], ss[-1]
        ax.set_xlim(lo / 2**0.4, hi * 2**0.4)
    else:
        ax.set_yscale("log", base=2)
        a = ax.yaxis
        ax.set_ylabel(label)
    a.set_major_locator(FixedLocator(ss))
    a.set_minor_locator(NullLocator())
    a.set_major_formatter(lambda v, pos: f"{v:g}")


def dodge(values, i: int, k: int, width: float = 0.25, log2: bool = True) -> np.ndarray:
    """Shift x positions of series ``i`` of ``k`` sideways (multiplicatively on a log2 axis)."""
    off = (i - (k - 1) / 2) * width / max(k, 1)
    v = np.asarray(values, dtype=float)
    return v * 2.0**off if log2 else v + off


def scale_legend_handles(palette: dict[float, tuple], **kw):
    """Legend handles, one line per scale in order."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=c, label=scale_label(s), **kw) for s, c in sorted(palette.items())]


def add_suptitle(fig, title: str, config_name: str, y: float | None = None) -> None:
    """Figure title that names the configuration the figure was made from."""
    kw = {} if y is None else {"y": y}
    fig.suptitle(f"{title}  [config: {config_name}]", fontweight="bold", **kw)


def panel_letter(ax, letter: str, x: float = -0.02, y: float = 1.02) -> None:
    ax.text(x, y, f"({letter})", transform=ax.transAxes, ha="right", va="bottom", fontweight="bold")


def save_figure(fig, *, pdf: str, png: str, dpi: int = 150) -> None:
    """Write the figure to temporary files, then rename onto ``pdf`` and ``png``.

    A figure with a layout engine (e.g. constrained layout) is laid out once, for the PNG, and
    the PDF reuses that layout (the engine is then switched off: laying out a large grid of
    panels costs seconds); such figures already fit their canvas, so no tight bounding box."""
    from .runio import atomic_path

    engine = fig.get_layout_engine()
    bbox = None if engine is not None else "tight"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches=bbox)
    if engine is not None:
        fig.set_layout_engine("none")  # keep the positions just computed
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", dpi=dpi, bbox_inches=bbox)
