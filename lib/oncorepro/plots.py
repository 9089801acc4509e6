"""Figures for the book: one style, every axis labelled, figures returned (never shown) and saved reproducibly.

Figures are built on ``matplotlib.figure.Figure`` directly, not through pyplot, so a notebook cell that returns
one displays it once and nothing accumulates in pyplot's registry.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from sklearn.metrics import roc_curve

from .metrics import across_seeds, bootstrap_ci, classification_metrics

DPI = 150
PALETTE = "colorblind"
HEATMAP_CMAP = "turbo"
PAPER_MARKER = {"marker": "D", "s": 42, "edgecolors": "black", "linewidths": 0.8, "zorder": 4}


def apply_style() -> None:
    """Set the book's theme (seaborn whitegrid, colorblind palette, fixed fonts and dpi); safe to call again."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font="DejaVu Sans")
    mpl.rcParams.update({"figure.dpi": 100, "savefig.dpi": DPI, "axes.titleweight": "bold",
                         "axes.titlesize": "medium", "legend.fontsize": "small", "legend.frameon": True,
                         "image.cmap": "viridis"})


def show_in_notebooks() -> None:
    """Let a notebook cell that returns a Figure display it as PNG (figures here are built without pyplot)."""
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("png")


def save(fig: Figure, path: Path | str) -> Path:
    """Write ``fig`` as PNG at DPI with no metadata (no software version or date), so equal figures give equal bytes.

    The layout engine settles over the first two renders (the first one can be a pixel wider), so one
    throw-away render comes first: the file is the same whether or not the figure was displayed or saved before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"format": "png", "dpi": DPI, "metadata": {"Software": None}, "bbox_inches": "tight"}
    fig.savefig(io.BytesIO(), **options)
    fig.savefig(path, **options)
    return path


def _figure(width: float, height: float) -> Figure:
    apply_style()
    return Figure(figsize=(width, height), layout="constrained")


def _pretty(name: str) -> str:
    return name.replace("_", " ")


# --- ROC -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RocCurveInput:
    """One ROC curve: a single run (``y_true`` 0/1 and ``score``, the positive-class probability) or several
    runs (``runs``: (y_true, score) per seed) drawn as their mean curve with a band of one standard deviation."""

    label: str
    y_true: np.ndarray | None = None
    score: np.ndarray | None = None
    runs: Sequence[tuple[np.ndarray, np.ndarray]] = ()

    def __post_init__(self) -> None:
        single = self.y_true is not None or self.score is not None
        if single == bool(self.runs) or (single and (self.y_true is None or self.score is None)):
            raise ValueError(f"ROC curve {self.label!r}: give either y_true and score, or runs")


def _interval_text(auc: float, low: float, high: float, level: float, runs: int | None = None) -> str:
    scope = "" if runs is None else f", {runs} runs"
    if np.isnan(low) or np.isnan(high):
        return f"AUC {auc:.2f} (CI n/a{scope})"
    return f"AUC {auc:.2f} ({level:.0%} CI {low:.2f}–{high:.2f}{scope})"


def roc_figure(curves: Sequence[RocCurveInput], title: str, *, n_boot: int = 1000, seed: int = 0,
               level: float = 0.95) -> Figure:
    """ROC curves with the AUC and its interval in the legend.

    A single run gets a stratified percentile-bootstrap interval (``n_boot`` resamples, ``seed``); several runs
    get their mean AUC with a t-interval over runs, and the mean curve (true-positive rate interpolated on a
    common false-positive grid) with a band of one standard deviation.
    """
    fig = _figure(5.2, 5.0)
    ax = fig.subplots()
    grid = np.linspace(0, 1, 201)
    colors = sns.color_palette(PALETTE, len(curves))
    for curve, color in zip(curves, colors):
        if not curve.runs:
            y, score = np.asarray(curve.y_true).astype(int), np.asarray(curve.score, dtype=float)
            fpr, tpr, _ = roc_curve(y, score)
            auc, low, high = bootstrap_ci(y, np.column_stack([1 - score, score]), "roc_auc", n_boot=n_boot,
                                          seed=seed, level=level)
            ax.plot(fpr, tpr, color=color, lw=2, label=f"{curve.label}: {_interval_text(auc, low, high, level)}")
            continue
        tprs, aucs = [], []
        for y, score in curve.runs:
            y, score = np.asarray(y).astype(int), np.asarray(score, dtype=float)
            fpr, tpr, _ = roc_curve(y, score)
            tprs.append(np.interp(grid, fpr, tpr))
            aucs.append(classification_metrics(y, np.column_stack([1 - score, score]))["roc_auc"])
        tprs = np.array(tprs)
        tprs[:, 0] = 0.0
        mean, sd = tprs.mean(axis=0), tprs.std(axis=0)
        auc, low, high = across_seeds(aucs, level)
        ax.plot(grid, mean, color=color, lw=2,
                label=f"{curve.label}: {_interval_text(auc, low, high, level, runs=len(aucs))}")
        ax.fill_between(grid, np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1), color=color, alpha=0.2, lw=0)
    ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", title=title,
           xlabel="False positive rate (1 − specificity)", ylabel="True positive rate (sensitivity)")
    ax.legend(loc="lower right")
    return fig


# --- confusion matrix ------------------------------------------------------------------------------------------


def confusion_figure(cm: np.ndarray, labels: Sequence[str], title: str) -> Figure:
    """Confusion matrix (rows true, columns predicted): each cell shows its count and its share of the true class;
    the colour is that row-normalised share."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(labels):
        raise ValueError(f"confusion matrix of shape {cm.shape} does not match {len(labels)} labels")
    totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(totals > 0, cm / np.where(totals > 0, totals, 1), np.nan)
    annotations = np.array([[f"{count:d}\n{rate:.1%}" if np.isfinite(rate) else f"{count:d}\n—"
                             for count, rate in zip(row_counts, row_rates)]
                            for row_counts, row_rates in zip(cm.astype(int), rates)])
    side = 1.3 * len(labels) + 2.2
    fig = _figure(side + 0.8, side)
    ax = fig.subplots()
    sns.heatmap(np.nan_to_num(rates), annot=annotations, fmt="", cmap="Blues", vmin=0, vmax=1, square=True,
                linewidths=0.5, linecolor="white", xticklabels=list(labels), yticklabels=list(labels), ax=ax,
                cbar_kws={"label": "Share of true class (row-normalised)", "format": PercentFormatter(1.0)})
    ax.set(xlabel="Predicted class", ylabel="True class", title=title)
    ax.tick_params(axis="y", rotation=0)
    return fig


# --- training curves -------------------------------------------------------------------------------------------


def training_curves_figure(history: pd.DataFrame, title: str, *, per_seed: bool = False) -> Figure:
    """Loss and accuracy per epoch in two panels, one line per split (columns ``<split>_loss``,
    ``<split>_accuracy``, e.g. train_loss, val_loss). With a ``seed`` column: mean over seeds with a band of one
    standard deviation, or one line per seed when ``per_seed``."""
    if "epoch" not in history.columns:
        raise ValueError(f"history needs an 'epoch' column; it has {list(history.columns)}")
    has_seed = "seed" in history.columns
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, quantity in zip(axes, ("loss", "accuracy")):
        columns = [c for c in history.columns if c.endswith(f"_{quantity}")]
        if not columns:
            raise ValueError(f"history has no '<split>_{quantity}' column; it has {list(history.columns)}")
        long = history.melt(id_vars=["epoch", *(["seed"] if has_seed else [])], value_vars=columns,
                            var_name="split", value_name=quantity)
        long["split"] = long["split"].str.removesuffix(f"_{quantity}")
        if has_seed and per_seed:
            sns.lineplot(data=long, x="epoch", y=quantity, hue="split", units="seed", estimator=None, lw=1,
                         alpha=0.8, ax=ax)
        else:
            sns.lineplot(data=long, x="epoch", y=quantity, hue="split", errorbar="sd" if has_seed else None,
                         ax=ax)
        ax.set(xlabel="Epoch", ylabel=quantity.capitalize(), title=quantity.capitalize())
        ax.legend(title="split")
    fig.suptitle(title, fontweight="bold")
    return fig


# --- heatmaps --------------------------------------------------------------------------------------------------


def _display_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image, "gray"
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image, None
    raise ValueError(f"image of shape {image.shape} is neither greyscale nor RGB")


def heatmap_grid_figure(images: Sequence[np.ndarray], heatmaps: Sequence[np.ndarray], titles: Sequence[str],
                        masks: Sequence[np.ndarray | None] | None = None, ncols: int = 4, *,
                        alpha: float = 0.45) -> Figure:
    """For each image, two panels: the image, and the image under its heatmap (turbo colour map, ``alpha``);
    both outline the lesion mask, when given, in white. Heatmaps hold values in [0, 1] and are stretched to the
    image's size; one colour bar serves the grid."""
    n = len(images)
    masks = [None] * n if masks is None else list(masks)
    if not (len(heatmaps) == len(titles) == len(masks) == n) or n == 0:
        raise ValueError(f"got {n} images, {len(heatmaps)} heatmaps, {len(titles)} titles, {len(masks)} masks")
    for i, heatmap in enumerate(heatmaps):
        heatmap = np.asarray(heatmap)
        if heatmap.ndim != 2 or not np.isfinite(heatmap).all() or heatmap.min() < 0 or heatmap.max() > 1:
            raise ValueError(f"heatmap {i} ({titles[i]!r}) must be a finite 2-D array in [0, 1]")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = _figure(2 * 2.1 * ncols + 0.8, 2.3 * nrows)
    axes = np.atleast_2d(fig.subplots(nrows, 2 * ncols, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, (image, heatmap, title, mask) in enumerate(zip(images, heatmaps, titles, masks)):
        image, cmap = _display_image(image)
        h, w = image.shape[:2]
        row, col = divmod(i, ncols)
        image_ax, overlay_ax = axes[row, 2 * col], axes[row, 2 * col + 1]
        for ax in (image_ax, overlay_ax):
            ax.imshow(image, cmap=cmap)
        overlay_ax.imshow(heatmap, cmap=HEATMAP_CMAP, alpha=alpha, vmin=0, vmax=1, interpolation="bilinear",
                          extent=(-0.5, w - 0.5, h - 0.5, -0.5))
        if mask is not None:
            mask = np.asarray(mask, dtype=float)
            xs, ys = np.linspace(0, w - 1, mask.shape[1]), np.linspace(0, h - 1, mask.shape[0])
            for ax in (image_ax, overlay_ax):
                if mask.max() > 0:
                    ax.contour(xs, ys, mask, levels=[0.5], colors="white", linewidths=1.2)
        image_ax.set_title(title, fontsize="small")
        overlay_ax.set_title("heatmap", fontsize="small")
    fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=HEATMAP_CMAP), ax=axes.ravel().tolist(), shrink=0.8,
                 label="Heatmap value (0–1)")
    return fig


# --- our values versus the paper's ----------------------------------------------------------------------------


def _errors(frame: pd.DataFrame, y: str, err_low: str | None, err_high: str | None) -> np.ndarray | None:
    if err_low is None or err_high is None:
        return None
    below = (frame[y] - frame[err_low]).to_numpy(dtype=float)
    above = (frame[err_high] - frame[y]).to_numpy(dtype=float)
    return np.nan_to_num(np.clip(np.vstack([below, above]), 0, None))


def _finish(ax, title: str, xlabel: str, ylabel: str, percent: bool) -> None:
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)


def _check_columns(df: pd.DataFrame, columns: Sequence[str | None]) -> None:
    absent = [c for c in columns if c is not None and c not in df.columns]
    if absent:
        raise ValueError(f"table lacks column(s) {absent}; it has {list(df.columns)}")


def bar_figure(df: pd.DataFrame, x: str, y: str, hue: str | None, title: str, err_low: str | None = None,
               err_high: str | None = None, paper_col: str | None = None, *, xlabel: str | None = None,
               ylabel: str | None = None, percent: bool = False) -> Figure:
    """Bars of our values (one per ``x`` and ``hue``) with interval error bars, the paper's values as black
    diamonds on the same bars. ``percent`` prints a fraction axis as percentages."""
    _check_columns(df, [x, y, hue, err_low, err_high, paper_col])
    keys = [x] if hue is None else [x, hue]
    if df.duplicated(keys).any():
        raise ValueError(f"several rows share the same {keys}; summarise them first")
    categories = list(pd.unique(df[x]))
    levels = [None] if hue is None else list(pd.unique(df[hue]))
    width = 0.8 / len(levels)
    fig = _figure(min(12.0, max(5.0, 1.1 * len(categories) * max(1, len(levels) / 2) + 2)), 4.2)
    ax = fig.subplots()
    colors = sns.color_palette(PALETTE, len(levels))
    paper_labelled = False
    for j, (level, color) in enumerate(zip(levels, colors)):
        part = df if level is None else df[df[hue] == level]
        positions = np.array([categories.index(v) for v in part[x]]) + (j - (len(levels) - 1) / 2) * width
        ax.bar(positions, part[y].to_numpy(dtype=float), width=width * 0.95, color=color,
               label=None if level is None else str(level), yerr=_errors(part, y, err_low, err_high),
               error_kw={"ecolor": "0.2", "capsize": 3, "lw": 1})
        if paper_col is not None:
            values = part[paper_col].to_numpy(dtype=float)
            shown = np.isfinite(values)
            if shown.any():
                ax.scatter(positions[shown], values[shown], color="black", label=None if paper_labelled else "paper",
                           **PAPER_MARKER)
                paper_labelled = True
    ax.set_xticks(range(len(categories)), [str(c) for c in categories],
                  rotation=30 if max(len(str(c)) for c in categories) > 12 else 0, ha="right"
                  if max(len(str(c)) for c in categories) > 12 else "center")
    _finish(ax, title, xlabel or _pretty(x), ylabel or _pretty(y), percent)
    return fig


def line_figure(df: pd.DataFrame, x: str, y: str, hue: str | None, title: str, err_low: str | None = None,
                err_high: str | None = None, paper_col: str | None = None, *, xlabel: str | None = None,
                ylabel: str | None = None, percent: bool = False) -> Figure:
    """Lines of our values over a numeric ``x`` (e.g. training-set size), one per ``hue``, with an interval band
    and the paper's values as diamonds in the line's colour."""
    _check_columns(df, [x, y, hue, err_low, err_high, paper_col])
    levels = [None] if hue is None else list(pd.unique(df[hue]))
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    colors = sns.color_palette(PALETTE, len(levels))
    paper_labelled = False
    for level, color in zip(levels, colors):
        part = (df if level is None else df[df[hue] == level]).sort_values(x)
        xs = part[x].to_numpy(dtype=float)
        ax.plot(xs, part[y].to_numpy(dtype=float), marker="o", color=color, label=None if level is None else str(level))
        if err_low is not None and err_high is not None:
            ax.fill_between(xs, part[err_low].to_numpy(dtype=float), part[err_high].to_numpy(dtype=float),
                            color=color, alpha=0.2, lw=0)
        if paper_col is not None:
            values = part[paper_col].to_numpy(dtype=float)
            shown = np.isfinite(values)
            if shown.any():
                ax.scatter(xs[shown], values[shown], color=color, **PAPER_MARKER)
                paper_labelled = True
    if paper_labelled:  # one legend entry for the paper's diamonds, whatever their colour
        ax.scatter([], [], color="white", label="paper", **PAPER_MARKER)
    _finish(ax, title, xlabel or _pretty(x), ylabel or _pretty(y), percent)
    return fig


# --- image groups ----------------------------------------------------------------------------------------------


def image_rows_figure(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[Sequence[str]], title: str) -> Figure:
    """Rows of images shown side by side (e.g. the members of a duplicate cluster), each with its caption."""
    ncols = max(len(row) for row in rows)
    fig = _figure(2.3 * ncols, 2.4 * len(rows))
    axes = np.atleast_2d(fig.subplots(len(rows), ncols, squeeze=False))
    for r, (images, captions) in enumerate(zip(rows, titles)):
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                image, cmap = _display_image(images[c])
                ax.imshow(image, cmap=cmap, vmin=0, vmax=255)
                ax.set_title(captions[c], fontsize="x-small")
    fig.suptitle(title)
    return fig
