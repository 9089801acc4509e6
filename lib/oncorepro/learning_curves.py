"""Readings of per-epoch learning curves, and the chapter tables built on them and on a study's runs.

Papers describe curves in words ("test loss below 0.6 after 10 epochs", "accuracy ~0.80, stable", "a minimum of
0.45 early on"). :func:`curve_readings` turns a run's history into those numbers, named as the paper-values files
name them, ``<part>_<quantity>_<reading>`` (part ``test``, ``val`` or ``train``; quantity ``loss`` or
``accuracy``):

- ``early``: mean of the first ``EARLY_EPOCHS`` epochs;
- ``min`` / ``max``: the extreme over all epochs; ``min_epoch`` / ``max_epoch``: the first epoch reaching it;
- ``plateau``: the level the curve settles at, the median of the second half of the epochs; ``plateau_epoch``:
  the first epoch from which the rolling mean over ``SMOOTHING`` epochs stays within ``PLATEAU_BAND`` of it;
- ``final``: the last epoch's value.

Every table is keyed by the label the chapter gave the spec (``RunOutcome.spec.label``), not the label stored
with a result: two settings that are the same run under a profile (the smoke profile fixes epochs and batch
size) each keep their own name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from . import plots, report
from .metrics import across_seeds, classification_metrics, summarise_runs
from .runner import RunOutcome

EARLY_EPOCHS = 3
SMOOTHING = 3
PLATEAU_BAND = {"loss": 0.05, "accuracy": 0.03}  # accuracy: about 4 images of a 117-image test set
MASK_ID_SEPARATOR = "|"  # runner.mask_records names a mask image "<image id>|<mask file stem>"
SUMMARY_COLUMNS = ["setting", "metric", "mean", "low", "high", "n"]


# --- one run's curves -------------------------------------------------------------------------------------------


def _readings(values: np.ndarray, epochs: np.ndarray, band: float) -> dict[str, float]:
    plateau = float(np.median(values[len(values) // 2:]))
    smooth = pd.Series(values).rolling(SMOOTHING, min_periods=1).mean().to_numpy()
    outside = np.flatnonzero(np.abs(smooth - plateau) > band)
    settled = 0 if outside.size == 0 else outside[-1] + 1
    return {"early": float(values[:EARLY_EPOCHS].mean()),
            "min": float(values.min()), "min_epoch": float(epochs[values.argmin()]),
            "max": float(values.max()), "max_epoch": float(epochs[values.argmax()]),
            "plateau": plateau,
            "plateau_epoch": float(epochs[settled]) if settled < len(values) else float(epochs[-1]),
            "final": float(values[-1])}


def curve_readings(history: pd.DataFrame) -> dict[str, float]:
    """Readings of every ``<part>_loss`` / ``<part>_accuracy`` column of a history (see the module docstring)."""
    if "epoch" not in history.columns:
        raise ValueError(f"history needs an 'epoch' column; it has {list(history.columns)}")
    ordered = history.sort_values("epoch")
    epochs = ordered["epoch"].to_numpy()
    out: dict[str, float] = {}
    for column in ordered.columns:
        part, _, quantity = column.rpartition("_")
        if not part or quantity not in PLATEAU_BAND:
            continue
        values = ordered[column].to_numpy(dtype=float)
        if len(values) == 0 or not np.isfinite(values).all():
            raise ValueError(f"history column {column!r} is empty or holds missing values")
        for reading, value in _readings(values, epochs, PLATEAU_BAND[quantity]).items():
            out[f"{column}_{reading}"] = value
    return out


# --- tables over a study's runs -----------------------------------------------------------------------------------


def _done(runs: Sequence[RunOutcome]) -> list[RunOutcome]:
    return [o for o in runs if o.result is not None]


def per_run(runs: Sequence[RunOutcome], evaluation: str = "test") -> pd.DataFrame:
    """One row per finished run: setting (the spec's label), seed, every metric of ``evaluation``, the curve
    readings and the timings."""
    rows = [{"setting": o.spec.label, "seed": o.spec.seed, **o.result.metrics[evaluation],
             **curve_readings(o.result.history), **o.result.timings}
            for o in _done(runs) if evaluation in o.result.metrics]
    return pd.DataFrame(rows)


def summary(runs: Sequence[RunOutcome], metrics: Sequence[str], evaluation: str = "test") -> pd.DataFrame:
    """Mean and 95% t-interval over seeds per setting, long format (setting, metric, mean, low, high, n), for the
    ``metrics`` the runs have (metric values, curve readings or timings); intervals of scores are clipped to
    [0, 1]."""
    table = per_run(runs, evaluation)
    present = [m for m in metrics if m in table.columns]
    if table.empty or not present:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return _clip_scores(summarise_runs(table, ["setting"], present))


def _clip_scores(long: pd.DataFrame) -> pd.DataFrame:
    scores = long["metric"].map(report.metric_kind) == "fraction"
    long.loc[scores, ["low", "high"]] = long.loc[scores, ["low", "high"]].clip(0, 1)
    return long


def compare(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], items: Sequence[str],
            evaluation: str = "test", as_paper: Mapping[str, str] | None = None, wide: bool = False) -> pd.DataFrame:
    """Every paper value of ``items`` whose setting the runs have, beside our mean over seeds (95% CI), with the
    verdict of ``report.compare``; curve statements are matched by their readings. Paper values of a metric no
    finished run has (e.g. a description such as "segmentation_masks") are left out. ``as_paper`` maps our setting
    labels to the paper's settings they stand for (e.g. a variant of a paper's model). ``wide``: one row per
    setting and, per metric, the paper's value, ours and the verdict."""
    rename = dict(as_paper or {})
    settings = {rename.get(o.spec.label, o.spec.label) for o in runs}
    chosen = [v for v in paper if v.item in items and v.setting in settings]
    measured = set(per_run(runs, evaluation).columns)
    if measured:
        chosen = [v for v in chosen if v.metric in measured]
    ours = summary(runs, sorted({v.metric for v in chosen}), evaluation)
    ours["setting"] = ours["setting"].map(lambda name: rename.get(name, name))
    reference = ours["metric"].map(report.metric_kind) == "reference"  # epochs of curve readings
    ours.loc[reference, ["mean", "low", "high"]] = ours.loc[reference, ["mean", "low", "high"]].round(1)
    table = report.format_table(report.compare(chosen, ours), ["paper", "ours"])
    if not wide or table.empty:
        return table
    settings_order = list(dict.fromkeys(table["setting"]))
    metrics_order = list(dict.fromkeys(table["metric"]))
    out = table.pivot(index="setting", columns="metric", values=["paper", "ours", "verdict"])
    out = out.swaplevel(axis=1).reindex(columns=pd.MultiIndex.from_product([metrics_order, ["paper", "ours",
                                                                                            "verdict"]]))
    return out.reindex(settings_order).fillna("")


def paper_settings(paper: Sequence[report.PaperValue], metrics: Sequence[str],
                   required: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's configuration values as a table: one row per setting that states every ``required`` metric
    (default: all of ``metrics``), in the order the paper-values file lists them; absent values are nan."""
    required = list(metrics if required is None else required)
    values: dict[str, dict[str, float]] = {}
    for v in paper:
        if v.metric in metrics:
            values.setdefault(v.setting, {})[v.metric] = v.value
    rows = {name: row for name, row in values.items() if all(m in row for m in required)}
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(metrics)).rename_axis("setting")
    for column in table.columns:  # whole numbers print as such (epochs 30, not 30.0)
        if table[column].notna().all() and (table[column] % 1 == 0).all():
            table[column] = table[column].astype(int)
    return table


def paper_value(paper: Sequence[report.PaperValue], setting: str, metric: str) -> float:
    """One value of the paper, by setting and metric."""
    found = [v.value for v in paper if v.setting == setting and v.metric == metric]
    if not found:
        raise KeyError(f"the paper values hold no {metric!r} for setting {setting!r}")
    return found[0]


def counts_versus_paper(runs: Sequence[RunOutcome], setting: str, paper: Sequence[report.PaperValue],
                        dataset: str) -> pd.DataFrame:
    """Images per class in all, train and test of the split of ``setting``'s first finished run, beside the
    paper's counts named ``"<dataset> / <all|train|test> / <class or total>"``."""
    done = [o for o in _done(runs) if o.spec.label == setting]
    chosen = [v for v in paper if v.metric == "count" and v.setting.startswith(f"{dataset} /")]
    rows = []
    if done:
        counts = done[0].result.split_counts.set_index("label")
        for label in counts.index:
            for part, column in (("all", "total"), ("train", "train"), ("test", "test")):
                rows.append({"setting": f"{dataset} / {part} / {str(label).lower()}", "metric": "count",
                             "mean": counts.loc[label, column], "low": np.nan, "high": np.nan, "n": 1})
    table = report.compare(chosen, pd.DataFrame(rows, columns=SUMMARY_COLUMNS))
    table["verdict"] = table["verdict"].str.replace(" (1 run)", "", regex=False)
    return report.format_table(table.drop(columns=["ci_low", "ci_high", "n"]), ["paper", "ours"])


def score_bars(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], item: str, metric: str,
               title: str) -> Figure:
    """Our mean of ``metric`` per setting with its 95% CI as bars, the paper's value (of ``item``) as a marker."""
    ours = summary(runs, [metric])
    values = {v.setting: v.value for v in paper if v.item == item and v.metric == metric}
    order = list(dict.fromkeys(o.spec.label for o in runs))
    ours = ours.set_index("setting").reindex([s for s in order if s in set(ours["setting"])]).reset_index()
    ours["paper"] = ours["setting"].map(values)
    return plots.bar_figure(ours, "setting", "mean", None, title, err_low="low", err_high="high", paper_col="paper",
                            ylabel=metric.replace("_", " "), percent=report.metric_kind(metric) == "fraction")


def by_seed(runs: Sequence[RunOutcome], metric: str, evaluation: str = "test") -> pd.DataFrame:
    """``metric`` of every run, settings as rows and seeds as columns, with the range over seeds."""
    table = per_run(runs, evaluation)
    if table.empty:
        return table
    wide = table.pivot_table(index="setting", columns="seed", values=metric, aggfunc="first")
    wide["range"] = wide.max(axis=1) - wide.min(axis=1)
    order = list(dict.fromkeys(o.spec.label for o in runs))
    wide = wide.reindex([s for s in order if s in wide.index])
    percent = report.metric_kind(metric) == "fraction"
    out = wide.map(lambda v: "—" if pd.isna(v) else f"{v:.1%}" if percent else f"{v:.3f}")
    out.columns = [f"seed {c}" if c != "range" else "range" for c in wide.columns]
    return out


def verdict_counts(table: pd.DataFrame) -> str:
    """One sentence counting the verdicts of a :func:`compare` table, reference-only rows apart."""
    verdicts = table["verdict"].str.replace(" (1 run)", "", regex=False)
    judged = verdicts[~verdicts.isin(["reference only", "not run"])]
    if judged.empty:
        return "No paper value of this table could be judged (nothing run yet, or reference values only)."
    counts = judged.value_counts()
    order = ["reproduced", "close", "paper higher", "paper lower"]
    parts = [f"{counts[v]} {v}" for v in order if v in counts]
    text = f"Of the {len(judged)} paper values judged here, {', '.join(parts)}"
    return text + (f"; {int((verdicts == 'not run').sum())} not run." if (verdicts == "not run").any() else ".")


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
    for o in _done(runs):
        table = o.result.predictions[o.result.predictions["evaluation"] == evaluation]
        labels = list(o.result.spec.classes)
        for kind, select in kinds.items():
            part = table[select(table["id"].astype(str))]
            if part.empty:
                continue
            proba = part[[f"p_{c}" for c in labels]].to_numpy(float)
            values = classification_metrics(part["label"].to_numpy(int), proba, positive=None, labels=labels)
            rows.append({"setting": o.spec.label, "test items": kind, "seed": o.spec.seed, "items": len(part),
                         **{m: values[m] for m in metrics}})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    long = _clip_scores(summarise_runs(table, ["setting", "test items"], list(metrics)))
    formatted = report.format_table(long, ["mean"])
    wide = formatted.pivot(index=["setting", "test items"], columns="metric", values="mean")[list(metrics)]
    wide.insert(0, "items", table.groupby(["setting", "test items"])["items"].mean().round().astype(int))
    order = [(s, k) for s in dict.fromkeys(o.spec.label for o in runs) for k in kinds]
    return wide.reindex([i for i in order if i in wide.index])


# --- dataset-size study -------------------------------------------------------------------------------------------


def configuration(o: RunOutcome) -> str:
    """A run's training configuration in words: learning rate, batch size, epochs."""
    return f"lr {o.spec.lr:g}, batch {o.spec.batch_size}, {o.spec.epochs} epochs"


def size_study(runs: Sequence[RunOutcome], metric: str, evaluation: str = "test") -> pd.DataFrame:
    """Per configuration and training-subset fraction: mean training images and the mean (95% CI) of ``metric``
    over seeds. Columns: configuration, train_fraction, train_images, mean, low, high, n."""
    rows = [{"configuration": configuration(o), "train_fraction": o.spec.train_fraction,
             "train_images": o.result.timings["train_images"], "value": o.result.metrics[evaluation][metric]}
            for o in _done(runs) if evaluation in o.result.metrics]
    columns = ["configuration", "train_fraction", "train_images", "mean", "low", "high", "n"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    out = []
    for (config, fraction), group in table.groupby(["configuration", "train_fraction"], sort=False):
        mean, low, high = across_seeds(group["value"].dropna().to_numpy())
        if report.metric_kind(metric) == "fraction":
            low, high = max(low, 0.0), min(high, 1.0)
        out.append({"configuration": config, "train_fraction": fraction,
                    "train_images": float(group["train_images"].mean()), "mean": mean, "low": low, "high": high,
                    "n": int(group["value"].notna().sum())})
    return pd.DataFrame(out, columns=columns).sort_values(["configuration", "train_fraction"], ignore_index=True)


def subsets_versus_paper(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue],
                         setting_format: str) -> pd.DataFrame:
    """Our training images per subset fraction beside the paper's subset counts, whose settings are named by
    ``setting_format`` with ``{percent}`` (e.g. ``"BUSI {percent}% subset / all / total"``)."""
    table = size_study(runs, "accuracy")
    images = table.groupby("train_fraction")["train_images"].mean()
    ours = pd.DataFrame([{"setting": setting_format.format(percent=round(100 * f)), "metric": "count", "mean": n,
                          "low": np.nan, "high": np.nan, "n": 1} for f, n in images.items()],
                        columns=SUMMARY_COLUMNS)
    chosen = [v for v in paper if v.metric == "count" and v.setting in set(ours["setting"])]
    compared = report.compare(chosen, ours)
    compared["verdict"] = compared["verdict"].str.replace(" (1 run)", "", regex=False)
    return report.format_table(compared.drop(columns=["ci_low", "ci_high", "n"]), ["paper", "ours"])


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


# --- time -------------------------------------------------------------------------------------------------------


def training_cost(runs: Sequence[RunOutcome]) -> pd.DataFrame:
    """Per setting, means over seeds: training images, seconds to train the head, inference seconds per image
    (whole model), and the time a frozen-base tool spends end to end: one base pass per training image (timed
    as inference) plus the head's training."""
    table = per_run(runs)
    if table.empty:
        return table
    table["feature_seconds"] = table["train_images"] * table["inference_seconds_per_image"]
    table["total_seconds"] = table["feature_seconds"] + table["train_seconds"]
    columns = ["train_images", "epochs_run", "train_seconds", "feature_seconds", "total_seconds",
               "inference_seconds_per_image"]
    out = table.groupby("setting", sort=False)[columns].mean()
    out["runs"] = table.groupby("setting", sort=False).size()
    return out.round({"train_images": 0, "epochs_run": 0, "train_seconds": 2, "feature_seconds": 1,
                      "total_seconds": 1, "inference_seconds_per_image": 4})


def cost_versus_paper(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], setting: str) -> pd.DataFrame:
    """The paper's timing statements for ``setting`` (e.g. one bound for all its models) beside the slowest of
    our settings: end-to-end training seconds and inference seconds per image."""
    cost = training_cost(runs)
    chosen = [v for v in paper if v.setting == setting and v.metric in report.SECONDS_METRICS]
    if cost.empty:
        return report.format_table(report.compare(chosen, pd.DataFrame(columns=SUMMARY_COLUMNS)), ["paper"])
    ours = pd.DataFrame([
        {"setting": setting, "metric": "train_seconds", "mean": cost["total_seconds"].max(), "low": np.nan,
         "high": np.nan, "n": int(cost["runs"].sum())},
        {"setting": setting, "metric": "inference_seconds_per_image", "mean": cost["inference_seconds_per_image"].max(),
         "low": np.nan, "high": np.nan, "n": int(cost["runs"].sum())}])
    table = report.compare(chosen, ours)
    table["ours from"] = [cost[c].idxmax() for c in
                          ("total_seconds" if m == "train_seconds" else "inference_seconds_per_image"
                           for m in table["metric"])]
    return report.format_table(table.drop(columns=["ci_low", "ci_high"]), ["paper", "ours"])


# --- what printed rates say about the counts behind them -------------------------------------------------------


def _tolerance(value: float) -> float:
    """Half a unit of the last printed digit; rates printed as percentages carry at least one decimal (0.1%)."""
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** -max(3, -exponent if isinstance(exponent, int) else 3)


def _fits(numerator: int, denominator: int, value: float) -> bool:
    """numerator / denominator can round to ``value`` (exactly half a unit away counts: 26/32 = 81.25% prints
    as 81.3% when halves round up)."""
    return denominator > 0 and abs(numerator / denominator - value) <= _tolerance(value) + 1e-12


def counts_from_rates(recall: float, precision: float, false_alarm_rate: float, *, max_positives: int = 200,
                      max_negatives: int = 600) -> pd.DataFrame:
    """Every one-vs-rest confusion (tp, fn, fp, tn) whose recall, precision and false alarm rate round to the
    printed values (within half a unit of their last digit), positives and negatives up to the bounds; smallest
    totals first. An empty table means the three printed rates cannot come from one confusion matrix."""
    rows = []
    for positives in range(1, max_positives + 1):
        for tp in sorted({math.floor(recall * positives), math.ceil(recall * positives)}):
            if not 0 < tp <= positives or not _fits(tp, positives, recall):
                continue
            centre = tp * (1 - precision) / precision if precision > 0 else math.inf
            for fp in range(max(0, math.floor(centre) - 2), math.ceil(centre) + 3):
                if not _fits(tp, tp + fp, precision):
                    continue
                candidates = (range(1, max_negatives + 1) if fp == 0 else
                              range(max(fp, math.floor(fp / max(false_alarm_rate, 1e-9)) - 3),
                                    min(max_negatives, math.ceil(fp / max(false_alarm_rate, 1e-9)) + 3) + 1))
                for negatives in candidates:
                    if _fits(fp, negatives, false_alarm_rate):
                        rows.append({"tp": tp, "fn": positives - tp, "fp": fp, "tn": negatives - fp,
                                     "positives": positives, "negatives": negatives})
                        if fp == 0:
                            break
    table = pd.DataFrame(rows, columns=["tp", "fn", "fp", "tn", "positives", "negatives"]).drop_duplicates()
    table["total"] = table["positives"] + table["negatives"]
    return table.sort_values(["total", "positives"], ignore_index=True)


def implied_test_sets(paper: Sequence[report.PaperValue], settings: Sequence[str], positive: str) -> pd.DataFrame:
    """Per setting, the smallest test set whose one-vs-rest counts for class ``positive`` give the paper's printed
    recall, precision and false alarm rate at once (metrics ``recall/<positive>`` etc.), and the exact
    (Clopper-Pearson) 95% interval of the class accuracy (recall) on that many cases of the class."""
    values = {(v.setting, v.metric): v.value for v in paper}
    rows = []
    for setting in settings:
        rates = [values.get((setting, f"{m}/{positive}")) for m in ("recall", "precision", "false_alarm_rate")]
        row: dict[str, object] = {"setting": setting}
        if None in rates:
            rows.append({**row, "consistent": "rates not printed"})
            continue
        solutions = counts_from_rates(*rates)
        if solutions.empty:
            rows.append({**row, "consistent": "no confusion matrix fits"})
            continue
        best = solutions.iloc[0]
        interval = stats.binomtest(int(best["tp"]), int(best["positives"])).proportion_ci(method="exact")
        rows.append({**row, "consistent": "yes", f"{positive} (tp+fn)": int(best["positives"]),
                     "other classes (fp+tn)": int(best["negatives"]), "test items": int(best["total"]),
                     "tp, fn, fp, tn": f"{best['tp']}, {best['fn']}, {best['fp']}, {best['tn']}",
                     f"{positive} accuracy, 95% CI": f"{best['tp'] / best['positives']:.1%} "
                                                      f"({interval.low:.1%}–{interval.high:.1%})"})
    table = pd.DataFrame(rows).set_index("setting")
    counts = [c for c in table.columns if c.endswith(")") and "CI" not in c] + ["test items"]
    return table.astype({c: "Int64" for c in counts if c in table.columns})


def test_set_sizes(runs: Sequence[RunOutcome], positive: str) -> pd.DataFrame:
    """Per setting, our test set: items of class ``positive`` and of the other classes, in the split of its first
    finished run (stratified splits give every seed the same counts; grouped ones vary a little)."""
    rows = {}
    for o in _done(runs):
        if o.spec.label in rows:
            continue
        counts = o.result.split_counts.set_index("label")["test"]
        total = int(counts.get("Total", counts.drop("Total", errors="ignore").sum()))
        rows[o.spec.label] = {f"{positive} (tp+fn)": int(counts.get(positive, 0)),
                              "other classes (fp+tn)": total - int(counts.get(positive, 0)), "test items": total}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting")
