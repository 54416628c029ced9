"""Shared plot style for the figure notebooks in ``notebooks/``.

* one ordered palette for input scales used by every figure (:func:`scale_palette`; for
  seaborn's ``hue``, :func:`scale_hue` keyed by the scales' text), the input-scale axis label
  (:data:`SCALE_AXIS_LABEL`: the scale is E‖x‖₂, the mean l2 norm of the training inputs, paper
  Sec. 5.1) and a log2 axis with one tick per scale (:func:`scale_axis`);
* one style per perturbation ratio (:func:`ratio_styles`: colour-blind-safe colour, line style
  and marker);
* a suptitle naming the configuration and an atomic figure writer (:func:`save_figure`, PDF
  and PNG); :func:`pad_nan_edge` for disk-shaped images; :func:`number_text` for tick labels
  (plain or scientific notation, no SI prefixes);
* :func:`escape_heatmap` (the escape-time heat maps of Figs. 2–3, censored cells marked) and
  :func:`survival_steps` (a survival curve of ``survival.csv``, the share not yet escaped);
* :func:`non_finite_rows` leaves out the rows a table marks non-finite (column ``finite``, where
  present) and counts them, for a note on the figure (:func:`non_finite_note`).

Intervals and bands are drawn by seaborn in the notebooks (lineplot's ``errorbar``, boxplot).

Only matplotlib, numpy and pandas are imported (lazily where cheap), so notebooks start fast.
"""

from __future__ import annotations

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


# the perturbation ratio (ε = ratio × s): colour-blind-safe colours (Okabe & Ito), ordered cool -> warm by decade,
# each with its own line style and marker, so curves stay apart where their colours meet or their values coincide
RATIO_COLOURS = ["#0072B2", "#56B4E9", "#009E73", "#E69F00", "#D55E00", "#CC79A7", "#000000"]
RATIO_DASHES = ["-", (0, (5, 2)), (0, (1, 1.2)), (0, (7, 2, 1.5, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (9, 3)), "-"]
RATIO_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def ratio_styles(ratios: Sequence[float]) -> dict[float, dict]:
    """Ratio -> {'color', 'linestyle', 'marker'}. Ratios that are powers of ten keep one style in
    every figure (10⁻³ blue ... 1 orange, 10 vermillion, 100 purple, 1000 black); any other set
    is styled by its order."""
    ordered = sorted({float(r) for r in ratios})
    k = [int(round(np.log10(r))) + 3 if r > 0 else -1 for r in ordered]
    decades = all(r > 0 and abs(np.log10(r) - round(np.log10(r))) < 1e-9 for r in ordered)
    if not (decades and len(set(k)) == len(k) and min(k) >= 0 and max(k) < len(RATIO_COLOURS)):
        k = list(range(len(ordered)))
    n = len(RATIO_COLOURS)
    return {r: {"color": RATIO_COLOURS[i % n], "linestyle": RATIO_DASHES[i % n], "marker": RATIO_MARKERS[i % n]}
            for r, i in zip(ordered, k)}


SCALE_AXIS_LABEL = "input scale E‖x‖₂"  # the paper's input scale: mean l2 norm of the training inputs (Sec. 5.1)


def scale_hue(scales: Sequence[float]) -> tuple[dict[str, tuple], list[str]]:
    """For seaborn's ``hue``: (palette, order) keyed by the scales' text ('1', '0.5', ... as
    :func:`scale_text` writes them), ordered from small to large, colours of :func:`scale_palette`.
    Use with a column made by ``df["scale"].map(scale_text)``, so legends show the values as
    written in the config rather than binned numbers."""
    pal = {scale_text(s): c for s, c in scale_palette(scales).items()}
    return pal, list(pal)


def scale_text(s: float) -> str:
    """A scale as text: 1.0 -> '1', 0.25 -> '0.25' (the workflow's folder names)."""
    return f"{float(s):g}"


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


def number_text(v: float, digits: int = 3) -> str:
    """A tick label in plain or scientific notation (never SI prefixes, which read as units on a
    loss): ``digits`` significant digits, positional for 1e-3 ≤ |v| < 1e5 ('−0.695', '−1430'),
    else mantissa and exponent ('−5.98e−6', '−3.04e5'); a true minus sign."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v == 0 or 1e-3 <= abs(v) < 1e5:
        t = np.format_float_positional(v, precision=digits, fractional=False, trim="-")
    else:
        mant, exp = f"{v:.{max(digits - 1, 0)}e}".split("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        t = f"{mant}e{int(exp)}"
    return t.replace("-", "−")


# ---- tables ------------------------------------------------------------------------------------
def as_bool(series: pd.Series) -> pd.Series:
    """Booleans as written by the tables ('True'/'False', bool, 0/1); anything else -> False."""
    if series.dtype == bool:
        return series
    m = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    return series.astype(str).str.strip().str.lower().map(m).fillna(False).astype(bool)


def non_finite_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(finite rows, number left out): rows whose column ``finite`` is False are dropped (their
    losses are non-finite); a table without that column is taken as all finite."""
    if "finite" not in df.columns:
        return df, 0
    ok = as_bool(df["finite"])
    return df[ok].copy(), int((~ok).sum())


def non_finite_note(n: int, what: str = "runs") -> str:
    """'' or a second title line '(3 non-finite runs left out)', to append to a figure title."""
    return f"\n({n} non-finite {what} left out)" if n else ""


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


def scale_axis(ax, scales: Sequence[float], axis: str = "x", label: str = SCALE_AXIS_LABEL) -> None:
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


def add_suptitle(fig, title: str, config_name: str, y: float | None = None) -> None:
    """Figure title that names where the figure's numbers come from; each line of ``title`` is
    wrapped to the figure's width on its own, and the tag is never split. ``config_name`` (the
    notebooks' parameter) is, in the workflow, the figure's tables stage and key
    (``<stage>/<key>``: results/stages/<stage>/<key>/), shown as '[tables: <stage>/<key>]'; any other
    text (a configuration's name, by hand) as '[config: <name>]'."""
    import textwrap

    kw = {} if y is None else {"y": y}
    # no-break spaces: the tag is never split across lines ("[tables:" / "<stage>/<key>]")
    tag = "tables" if "/" in str(config_name) else "config"
    text = f"{title}\u00a0\u00a0[{tag}:\u00a0{config_name}]"
    # wrapped to the figure's width (about 9 bold characters per inch), so narrow figures do not clip it
    width = max(40, int(9 * fig.get_figwidth()))
    fig.suptitle("\n".join(textwrap.fill(line, width=width) for line in text.split("\n")), fontweight="bold", **kw)


def save_figure(fig, *, pdf: str, png: str, dpi: int = 150) -> None:
    """Write the figure to temporary files, then rename onto ``pdf`` and ``png``.

    A figure with a layout engine (e.g. constrained layout) is laid out once, for the PNG, and
    the PDF reuses that layout (the engine is then switched off: laying out a large grid of
    panels costs seconds); such figures already fit their canvas, so no tight bounding box.
    Neither file carries a date, so an unchanged figure is rewritten with the same bytes."""
    from adversary_dynamics.storage.runio import atomic_path

    engine = fig.get_layout_engine()
    bbox = None if engine is not None else "tight"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches=bbox)
    if engine is not None:
        fig.set_layout_engine("none")  # keep the positions just computed
    with atomic_path(pdf) as tmp:
        # no creation date: the same figure gives the same PDF bytes on every rebuild
        fig.savefig(tmp, format="pdf", dpi=dpi, bbox_inches=bbox, metadata={"CreationDate": None})


# ---- escape figures (paper Figs. 2-3) ------------------------------------------------------
def escape_heatmap(ax, summ: pd.DataFrame, *, row: str, col: str, T: int, title: str) -> None:
    """Heat map of the median escape time (log10 colour, 1 … T) of
    :func:`adversary_dynamics.figures.escape.escape_summary` rows, ``row`` × ``col`` (already
    text-labelled). Each cell gives the median; a cell whose median is censored shows "> T", is
    coloured at T and hatched; the share of censored runs (escape time > T: no departure from
    the start or still rising at the budget; "cens.") and of flat runs are added in brackets; cells
    where every run is flat are grey and say "flat"; the title gets "hatched / > T: median censored,
    T = <T> steps" when a cell's median is censored. Uses seaborn's heatmap."""
    import seaborn as sns
    from matplotlib.patches import Rectangle

    piv = summ.pivot(index=row, columns=col, values="median_escape")
    cens = summ.pivot(index=row, columns=col, values="censored")
    fl = summ.pivot(index=row, columns=col, values="flat")

    def med_text(v):
        return "" if np.isnan(v) else ("> T" if np.isinf(v) else f"{v:g}")  # an even count's median can be x.5

    ann = piv.map(med_text)
    ann = ann + cens.map(lambda v: f"\n({100 * v:.0f}% cens.)" if v > 1e-9 else "")
    ann = ann + fl.map(lambda v: f"\n({100 * v:.0f}% flat)" if 1e-9 < v < 1 - 1e-9 else "")
    colour = np.log10(piv.where(~np.isinf(piv), float(T)).clip(lower=1))
    sns.heatmap(colour, annot=ann, fmt="", cmap="magma_r", vmin=0, vmax=np.log10(max(T, 10)), ax=ax,
                cbar_kws={"label": "log10 median escape time (steps)"}, annot_kws={"fontsize": 7.5},
                linewidths=0.5, linecolor="white")
    ax.set_facecolor("0.85")  # grey: every run flat (no gradient in the ball); seaborn leaves such cells unlabelled
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            if np.isnan(v):
                ax.text(j + 0.5, i + 0.5, "flat" if fl.iat[i, j] > 0 else "no runs", ha="center", va="center",
                        fontsize=7.5, color="0.2")
            elif np.isinf(v):  # the median is censored: hatch the cell
                ax.add_patch(Rectangle((j, i), 1, 1, fill=False, hatch="///", edgecolor="0.55", linewidth=0))
    if np.isinf(piv.to_numpy()).any():
        title += f"\nhatched, > T: median censored (T = {T} steps); cens. = share censored"
    ax.set_title(title)


def survival_steps(ax, surv: pd.DataFrame, *, T: int, x0: float = 0.8, **kws):
    """Draw one group of ``survival.csv`` (columns step, survival) as a right-continuous step
    function of the PGA step on a log axis: S(t) = share of runs not yet escaped by step t, from
    S = 1 at ``x0`` (standing in for step 0) to its value at T, where the curve ends (its height
    there is the share censored at T). ``kws`` go to ``ax.step``. Returns the line."""
    d = surv.sort_values("step")
    x = np.maximum(d["step"].to_numpy(float), x0)
    y = d["survival"].to_numpy(float)
    x = np.concatenate([[x0], x, [float(T)]])
    y = np.concatenate([[1.0], y, [y[-1] if len(y) else 1.0]])
    (line,) = ax.step(x, y, where="post", **kws)
    return line
