"""Tables over a study's runs: one row per run, means over seeds, our numbers beside the paper's, seeds side by
side and paired differences between settings.

Every table is keyed by the label the chapter gave the spec (``RunOutcome.spec.label``), not the label stored
with a result: two settings that are the same run under a profile (the smoke profile fixes epochs and batch
size) each keep their own name. A run's curve readings (:mod:`oncorepro.learning_curves`) count among its
metrics unless ``readings=False``, so a paper's statements about curves are compared like its scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import plots, report
from .learning_curves import curve_readings
from .metrics import across_seeds, classification_metrics, summarise_runs
from .results import Result
from .runner import MASK_ID_SEPARATOR, RunOutcome


def finished(runs: Sequence[RunOutcome], setting: str | None = None) -> list[RunOutcome]:
    """The runs that have a result (of ``setting`` only, when given)."""
    return [o for o in runs if o.result is not None and (setting is None or o.spec.label == setting)]


def settings(runs: Sequence[RunOutcome]) -> list[str]:
    """The runs' setting labels in their order, each once."""
    return list(dict.fromkeys(o.spec.label for o in runs))


def in_run_order(table: pd.DataFrame, runs: Sequence[RunOutcome]) -> pd.DataFrame:
    """``table``, indexed by setting, with its rows in the order of the runs' settings."""
    return table.reindex([s for s in settings(runs) if s in table.index])


def per_run(runs: Sequence[RunOutcome], evaluation: str = "test", *, readings: bool = True) -> pd.DataFrame:
    """One row per finished run: setting (the spec's label), seed, every metric of ``evaluation``, the curve
    readings (unless ``readings=False``), the timings, and ``eval_seconds``: the model's inference time over
    the whole test set (per-image time x test images)."""
    rows = [{"setting": o.spec.label, "seed": o.spec.seed, **o.result.metrics[evaluation],
             **(curve_readings(o.result.history) if readings else {}), **o.result.timings,
             **_eval_seconds(o.result)}
            for o in finished(runs) if evaluation in o.result.metrics]
    return pd.DataFrame(rows)


def _eval_seconds(result: Result) -> dict[str, float]:
    per_image = result.timings.get("inference_seconds_per_image")
    if per_image is None or result.predictions.empty:
        return {}
    return {"eval_seconds": per_image * len(result.evaluated("test")[0])}


def clip_intervals(long: pd.DataFrame) -> pd.DataFrame:
    """A long summary table with its intervals clipped to what the metrics can take (in place, and returned):
    scores to [0, 1], every other kind (losses, counts, seconds, epochs, settings) to zero and above."""
    scores = long["metric"].map(report.metric_kind) == "fraction"
    long.loc[scores, ["low", "high"]] = long.loc[scores, ["low", "high"]].clip(0, 1)
    long.loc[~scores, ["low", "high"]] = long.loc[~scores, ["low", "high"]].clip(lower=0)
    return long


def summary(runs: Sequence[RunOutcome], metrics: Sequence[str], evaluation: str = "test", *, readings: bool = True,
            single_run_ci: bool = False) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds per setting, long format (``report.SUMMARY_COLUMNS``), for the
    ``metrics`` the runs have (metric values, curve readings or timings); intervals are clipped to
    the metric's range (:func:`clip_intervals`). ``single_run_ci``: a setting with a single finished run shows
    that run's bootstrap interval."""
    table = per_run(runs, evaluation, readings=readings)
    present = [m for m in metrics if m in table.columns]
    if table.empty or not present:
        return pd.DataFrame(columns=list(report.SUMMARY_COLUMNS))
    long = summarise_runs(table, ["setting"], present)
    if single_run_ci:
        bootstrap = {o.spec.label: o.result.ci.get(evaluation, {}) for o in finished(runs)}
        for i, row in long[long["n"] == 1].iterrows():
            long.loc[i, ["low", "high"]] = bootstrap.get(row["setting"], {}).get(row["metric"], (np.nan, np.nan))
    return clip_intervals(long)


def versus_paper(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], items: Sequence[str],
                 evaluation: str = "test", as_paper: Mapping[str, str] | None = None, *, measured_only: bool = True,
                 readings: bool = True, single_run_ci: bool = False) -> pd.DataFrame:
    """``report.compare`` of every paper value of ``items`` whose setting the runs have with our :func:`summary`
    (unformatted). ``as_paper`` maps our setting labels to the paper's settings they stand for (e.g. a variant
    of a paper's model); ``measured_only`` leaves out paper values of a metric no finished run has (e.g. a
    description such as "segmentation_masks"). Epochs of curve readings are rounded to 0.1."""
    rename = dict(as_paper or {})
    chosen = [v for v in paper if v.item in items and v.setting in {rename.get(s, s) for s in settings(runs)}]
    measured = set(per_run(runs, evaluation, readings=readings).columns) if measured_only else set()
    if measured:
        chosen = [v for v in chosen if v.metric in measured]
    ours = summary(runs, sorted({v.metric for v in chosen}), evaluation, readings=readings,
                   single_run_ci=single_run_ci)
    ours["setting"] = ours["setting"].map(lambda name: rename.get(name, name))
    reference = ours["metric"].map(report.metric_kind) == "reference"
    ours.loc[reference, ["mean", "low", "high"]] = ours.loc[reference, ["mean", "low", "high"]].round(1)
    return report.compare(chosen, ours)


def compare(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], items: Sequence[str],
            evaluation: str = "test", as_paper: Mapping[str, str] | None = None, wide: bool = False) -> pd.DataFrame:
    """:func:`versus_paper` as a printable table: every paper value beside our mean over seeds (95% CI) and the
    verdict; curve statements are matched by their readings. ``wide``: one row per setting and, per metric, the
    paper's value, ours and the verdict."""
    table = report.format_table(versus_paper(runs, paper, items, evaluation, as_paper), ["paper", "ours"])
    if not wide or table.empty:
        return table
    settings_order = list(dict.fromkeys(table["setting"]))
    metrics_order = list(dict.fromkeys(table["metric"]))
    out = table.pivot(index="setting", columns="metric", values=["paper", "ours", "verdict"])
    out = out.swaplevel(axis=1).reindex(columns=pd.MultiIndex.from_product([metrics_order, ["paper", "ours",
                                                                                            "verdict"]]))
    return out.reindex(settings_order).fillna("")


def counts_versus_paper(runs: Sequence[RunOutcome], setting: str, paper: Sequence[report.PaperValue],
                        dataset: str) -> pd.DataFrame:
    """Images per class in all, train and test of the split of ``setting``'s first finished run, beside the
    paper's counts named ``"<dataset> / <all|train|test> / <class or total>"``."""
    done = finished(runs, setting)
    ours = (report.count_settings(done[0].result.split_counts.set_index("label"), dataset,
                                  {"all": "total", "train": "train", "test": "test"}) if done else {})
    chosen = [v for v in paper if v.setting.startswith(f"{dataset} /")]
    return report.format_table(report.compare_counts(chosen, ours), ["paper", "ours"])


def paper_bars(ours: pd.DataFrame, paper: Sequence[report.PaperValue], item: str, metric: str,
               title: str) -> Figure:
    """Bars of a :func:`summary` of ``metric`` (mean per setting, 95% CI), the paper's value of ``item`` as a
    marker."""
    values = {v.setting: v.value for v in paper if v.item == item and v.metric == metric}
    ours = ours.assign(paper=ours["setting"].map(values))
    return plots.bar_figure(ours, "setting", "mean", None, title, err_low="low", err_high="high", paper_col="paper",
                            ylabel=metric.replace("_", " "), percent=report.metric_kind(metric) == "fraction")


def score_bars(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], item: str, metric: str,
               title: str) -> Figure:
    """:func:`paper_bars` of the runs, settings in their order."""
    ours = in_run_order(summary(runs, [metric]).set_index("setting"), runs).reset_index()
    return paper_bars(ours, paper, item, metric, title)


def by_seed(runs: Sequence[RunOutcome], metric: str, evaluation: str = "test") -> pd.DataFrame:
    """``metric`` of every run, settings as rows and seeds as columns, with the range over seeds."""
    table = per_run(runs, evaluation)
    if table.empty:
        return table
    wide = table.pivot_table(index="setting", columns="seed", values=metric, aggfunc="first")
    wide["range"] = wide.max(axis=1) - wide.min(axis=1)
    wide = in_run_order(wide, runs)
    percent = report.metric_kind(metric) == "fraction"
    out = wide.map(lambda v: "—" if pd.isna(v) else f"{v:.1%}" if percent else f"{v:.3f}")
    out.columns = [f"seed {c}" if c != "range" else "range" for c in wide.columns]
    return out


def paired_difference(runs: Sequence[RunOutcome], base: str, variant: str, metric: str,
                      evaluation: str = "test") -> tuple[float, float, float, int]:
    """``variant`` minus ``base`` on ``metric``, paired by seed (equal seeds share the split): mean and 95%
    t-interval over the seeds both settings ran, and their number."""
    table = per_run(runs, evaluation)
    if table.empty or metric not in table.columns:
        return float("nan"), float("nan"), float("nan"), 0
    wide = table.pivot_table(index="seed", columns="setting", values=metric, aggfunc="first")
    if base not in wide.columns or variant not in wide.columns:
        return float("nan"), float("nan"), float("nan"), 0
    differences = (wide[variant] - wide[base]).dropna().to_numpy()
    if differences.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    return (*across_seeds(differences), int(differences.size))


def difference_sentence(runs: Sequence[RunOutcome], base: str, variant: str, metric: str,
                        evaluation: str = "test") -> str:
    """:func:`paired_difference` in words, in percentage points for scores."""
    mean, low, high, n = paired_difference(runs, base, variant, metric, evaluation)
    name = metric.replace("_", " ")
    if n == 0:
        return f"{variant} vs {base}, {name}: not run."
    scale, unit = (100, " points") if report.metric_kind(metric) == "fraction" else (1, "")
    text = f"{variant} minus {base}, {name}: {scale * mean:+.1f}{unit}"
    if math.isnan(low):
        return text + f" ({n} paired seed{'s' if n > 1 else ''}, no interval)."
    side = "includes" if low <= 0 <= high else "excludes"
    return (text + f" (95% CI {scale * low:+.1f} to {scale * high:+.1f} over {n} paired seeds; the interval "
            f"{side} zero).")


def evaluated_inputs(runs: Sequence[RunOutcome], metrics: Sequence[str], evaluation: str = "test") -> pd.DataFrame:
    """Each setting's test metrics on all test items, on its images only and on its mask images only (mask images
    reach the test part when masks are pooled with the images before the split); mean (95% CI) over seeds."""
    kinds: dict[str, Callable[[pd.Series], pd.Series]] = {
        "all items": lambda ids: pd.Series(True, index=ids.index),
        "images": lambda ids: ~ids.str.contains(MASK_ID_SEPARATOR, regex=False),
        "mask images": lambda ids: ids.str.contains(MASK_ID_SEPARATOR, regex=False)}
    rows = []
    for o in finished(runs):
        table, probabilities = o.result.evaluated(evaluation)
        labels = list(o.result.spec.classes)
        for kind, select in kinds.items():
            chosen = select(table["id"].astype(str)).to_numpy()
            part, proba = table[chosen], probabilities[chosen]
            if part.empty:
                continue
            values = classification_metrics(part["label"].to_numpy(int), proba, positive=None, labels=labels)
            rows.append({"setting": o.spec.label, "test items": kind, "seed": o.spec.seed, "items": len(part),
                         **{m: values[m] for m in metrics}})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    long = clip_intervals(summarise_runs(table, ["setting", "test items"], list(metrics)))
    formatted = report.format_table(long, ["mean"])
    wide = formatted.pivot(index=["setting", "test items"], columns="metric", values="mean")[list(metrics)]
    wide.insert(0, "items", table.groupby(["setting", "test items"])["items"].mean().round().astype(int))
    order = [(s, k) for s in settings(runs) for k in kinds]
    return wide.reindex([i for i in order if i in wide.index])
