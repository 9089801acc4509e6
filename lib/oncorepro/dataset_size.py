"""The dataset-size study: scores of the same training configurations on stratified subsets of the training part
(``RunSpec.train_fraction``), against the number of training images."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from . import plots, report
from .metrics import summarise_runs
from .run_tables import clip_intervals, finished
from .runner import RunOutcome

COLUMNS = ["configuration", "train_fraction", "train_images", "mean", "low", "high", "n"]


def configuration(o: RunOutcome) -> str:
    """A run's training configuration in words: learning rate, batch size, epochs."""
    return f"lr {o.spec.lr:g}, batch {o.spec.batch_size}, {o.spec.epochs} epochs"


def size_study(runs: Sequence[RunOutcome], metric: str, evaluation: str = "test") -> pd.DataFrame:
    """Per configuration and training-subset fraction: mean training images and the mean (95% CI) of ``metric``
    over seeds. Columns: configuration, train_fraction, train_images, mean, low, high, n."""
    rows = [{"configuration": configuration(o), "train_fraction": o.spec.train_fraction,
             "train_images": o.result.timings["train_images"], metric: o.result.metrics[evaluation][metric]}
            for o in finished(runs) if evaluation in o.result.metrics]
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.DataFrame(rows)
    groups = ["configuration", "train_fraction"]
    out = clip_intervals(summarise_runs(table, groups, [metric]))
    images = table.groupby(groups)["train_images"].mean()
    out["train_images"] = [float(images[key]) for key in zip(out["configuration"], out["train_fraction"])]
    return out[COLUMNS].sort_values(groups, ignore_index=True)


def subsets_versus_paper(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue],
                         setting_format: str) -> pd.DataFrame:
    """Our training images per subset fraction beside the paper's subset counts, whose settings are named by
    ``setting_format`` with ``{percent}`` (e.g. ``"BUSI {percent}% subset / all / total"``)."""
    images = size_study(runs, "accuracy").groupby("train_fraction")["train_images"].mean()
    ours = {setting_format.format(percent=round(100 * f)): n for f, n in images.items()}
    chosen = [v for v in paper if v.setting in ours]
    return report.format_table(report.compare_counts(chosen, ours), ["paper", "ours"])


def size_figure(runs: Sequence[RunOutcome], metric: str, title: str, evaluation: str = "test") -> Figure:
    """``metric`` against the number of training images, one line per configuration, 95% CI bands."""
    table = size_study(runs, metric, evaluation)
    percent = report.metric_kind(metric) == "fraction"
    return plots.line_figure(table, "train_images", "mean", "configuration", title, "low", "high",
                             xlabel="Training images", ylabel=metric.replace("_", " "), percent=percent)


def size_table(runs: Sequence[RunOutcome], metric: str, evaluation: str = "test") -> pd.DataFrame:
    """Rows: training subsets, largest first; columns: configurations, mean (95% CI) of ``metric`` over seeds;
    and the best configuration by mean (highest score, lowest loss)."""
    table = size_study(runs, metric, evaluation)
    if table.empty:
        return table
    cells = report.format_table(table.assign(metric=metric)[["metric", "mean", "low", "high"]], ["mean"])["mean"]
    wide = table.assign(cell=cells.to_numpy()).pivot(index="train_fraction", columns="configuration", values="cell")
    means = table.pivot(index="train_fraction", columns="configuration", values="mean")
    wide["best (by mean)"] = means.idxmin(axis=1) if report.metric_kind(metric) == "loss" else means.idxmax(axis=1)
    images = table.groupby("train_fraction")["train_images"].mean()
    wide.index = [f"{f:.0%} ({images[f]:.0f} images)" for f in wide.index]
    wide.index.name = "training subset"
    return wide.iloc[::-1]
