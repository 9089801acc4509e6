"""Classification metrics, bootstrap confidence intervals and summaries over repeated runs.

Point estimates come from scikit-learn. The bootstrap evaluates the same metrics on every resample at once
from stacked confusion matrices and rank statistics (numpy), because a thousand scikit-learn calls per metric
are too slow for a notebook; the tests check that path against scikit-learn resample by resample.

Conventions: ``y_true`` holds class indices 0..K-1, ``proba`` is (N, K) class probabilities and the
prediction is its argmax. A value that is undefined on the data at hand (precision with no predicted
positive, ROC AUC with one class present) is ``nan``, never an exception.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                             precision_recall_fscore_support, roc_auc_score)

MetricFunction = Callable[..., float]


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """The (n_classes, n_classes) count matrix: rows are true classes, columns predicted classes."""
    return confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=np.arange(n_classes))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def one_vs_rest_rates(cm: np.ndarray, index: int) -> dict[str, float]:
    """Bădoi (2025) Table 2 rates for class ``index`` of a K x K confusion matrix (rows true, columns predicted).

    The class is the positive one and all other classes together the negative one. As the paper defines them:
    TP = cases of the class predicted as the class; FN = cases of the class predicted as any other class;
    FP = cases of other classes predicted as the class; TN = cases of other classes predicted as any other
    class (a benign case called normal is a TN for the malignant class), so FP + TN = all cases of other classes.

    - ``recall`` = TP / (TP + FN)                          (paper eq. 1)
    - ``miss_rate`` = MAR = FN / (TP + FN) = 1 - recall     (paper eq. 2, "miss alarm rate")
    - ``false_alarm_rate`` = FAR = FP / (FP + TN)           (paper eq. 3)
    - ``precision`` = TP / (TP + FP)                        (paper eq. 4)
    - ``class_accuracy`` = TP / (TP + FN): the paper gives no formula for its "accuracy of the malignant class"
      (Table 1); its models come from Teachable Machine, whose per-class accuracy is the share of a class's
      test cases predicted correctly, and Table 1 equals Table 2's recall for 10 of its 12 models.
    - ``one_vs_rest_accuracy`` = (TP + TN) / (TP + FN + FP + TN): the other common reading of "class accuracy",
      kept so both can be set beside the paper.

    A rate whose denominator is zero is ``nan``.
    """
    cm = np.asarray(cm)
    tp = cm[index, index]
    fn = cm[index].sum() - tp
    fp = cm[:, index].sum() - tp
    tn = cm.sum() - tp - fn - fp
    return {
        "class_accuracy": _ratio(tp, tp + fn),
        "recall": _ratio(tp, tp + fn),
        "miss_rate": _ratio(fn, tp + fn),
        "false_alarm_rate": _ratio(fp, fp + tn),
        "precision": _ratio(tp, tp + fp),
        "one_vs_rest_accuracy": _ratio(tp + tn, cm.sum()),
    }


def _check(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true, proba = np.asarray(y_true), np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must be (N, K) class probabilities with K >= 2, got shape {proba.shape}")
    if y_true.shape != (proba.shape[0],):
        raise ValueError(f"y_true has shape {y_true.shape} but proba has {proba.shape[0]} rows")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y_true.dtype}")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= proba.shape[1]):
        raise ValueError(f"y_true values must lie in 0..{proba.shape[1] - 1}, got {y_true.min()}..{y_true.max()}")
    return y_true, proba


def _auc(y_binary: np.ndarray, score: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        try:
            return float(roc_auc_score(y_binary, score))
        except ValueError:  # one class only, in scikit-learn versions that raise instead of warning
            return float("nan")


def _macro(values: np.ndarray) -> float:
    """Mean over the classes where the value is defined (scikit-learn's zero_division=nan convention)."""
    values = np.asarray(values, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, *, positive: int | None = 1,
                           labels: Sequence[str] | None = None) -> dict[str, float]:
    """Metrics of argmax predictions.

    Binary (K == 2 and ``positive`` given): accuracy, precision, recall (= sensitivity), specificity, f1,
    roc_auc (of ``proba[:, positive]``), miss_rate = FN/(TP+FN), false_alarm_rate = FP/(FP+TN),
    balanced_accuracy, and precision_macro, recall_macro, f1_macro (unweighted means over both classes, what
    a Keras/scikit-learn "macro avg" report prints).

    Multiclass (otherwise): accuracy; precision, recall, f1 as macro averages (also under the ``_macro`` names);
    specificity_macro (mean one-vs-rest specificity); roc_auc as the macro one-vs-rest AUC; and, when ``labels``
    are given, per-class one-vs-rest entries "<metric>/<label>" for precision, recall, f1, specificity,
    miss_rate, false_alarm_rate, class_accuracy, one_vs_rest_accuracy and roc_auc (see :func:`one_vs_rest_rates`).
    """
    y_true, proba = _check(y_true, proba)
    k = proba.shape[1]
    y_pred = proba.argmax(axis=1)
    classes = np.arange(k)
    cm = confusion(y_true, y_pred, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=classes, average=None,
                                                                   zero_division=np.nan)
        accuracy = float(accuracy_score(y_true, y_pred)) if y_true.size else float("nan")
    macro = {"precision_macro": _macro(precision), "recall_macro": _macro(recall), "f1_macro": _macro(f1)}
    if k == 2 and positive is not None:
        rates = one_vs_rest_rates(cm, positive)
        negative = 1 - positive
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a class absent from y_true
            balanced = float(balanced_accuracy_score(y_true, y_pred)) if y_true.size else float("nan")
        return {
            "accuracy": accuracy,
            "precision": float(precision[positive]),
            "recall": float(recall[positive]),
            "specificity": float(recall[negative]),
            "f1": float(f1[positive]),
            "roc_auc": _auc(y_true == positive, proba[:, positive]),
            "miss_rate": rates["miss_rate"],
            "false_alarm_rate": rates["false_alarm_rate"],
            "balanced_accuracy": balanced,
            **macro,
        }
    aucs = np.array([_auc(y_true == c, proba[:, c]) for c in classes])
    class_rates = [one_vs_rest_rates(cm, c) for c in classes]
    specificity = np.array([1.0 - rates["false_alarm_rate"] for rates in class_rates])
    result = {"accuracy": accuracy, "precision": macro["precision_macro"], "recall": macro["recall_macro"],
              "f1": macro["f1_macro"], "roc_auc": float(aucs.mean()), **macro,
              "specificity_macro": _macro(specificity)}
    if labels is not None:
        if len(labels) != k:
            raise ValueError(f"{len(labels)} labels given for {k} classes")
        for c, (label, rates) in enumerate(zip(labels, class_rates)):
            result.update({f"precision/{label}": float(precision[c]), f"recall/{label}": float(recall[c]),
                           f"f1/{label}": float(f1[c]), f"specificity/{label}": float(specificity[c]),
                           f"miss_rate/{label}": rates["miss_rate"],
                           f"false_alarm_rate/{label}": rates["false_alarm_rate"],
                           f"class_accuracy/{label}": rates["class_accuracy"],
                           f"one_vs_rest_accuracy/{label}": rates["one_vs_rest_accuracy"],
                           f"roc_auc/{label}": float(aucs[c])})
    return result


# --- bootstrap -------------------------------------------------------------------------------------------------


def _resample_indices(y_true: np.ndarray, n_boot: int, seed: int, stratified: bool) -> np.ndarray:
    """(n_boot, N) row indices; stratified draws keep each class's count in every resample."""
    rng = np.random.default_rng(seed)
    if not stratified:
        return rng.integers(0, len(y_true), size=(n_boot, len(y_true)))
    blocks = []
    for c in np.unique(y_true):
        members = np.flatnonzero(y_true == c)
        blocks.append(members[rng.integers(0, len(members), size=(n_boot, len(members)))])
    return np.concatenate(blocks, axis=1)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    defined = np.isfinite(values)
    count = defined.sum(axis=1)
    return _safe_divide(np.where(defined, values, 0.0).sum(axis=1), count)


def _rank_auc(positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Row-wise ROC AUC as the Mann-Whitney statistic (ties count one half, as in scikit-learn's AUC)."""
    ranks = stats.rankdata(score, axis=1)
    n_pos = positive.sum(axis=1)
    n_neg = positive.shape[1] - n_pos
    u = np.where(positive, ranks, 0.0).sum(axis=1) - n_pos * (n_pos + 1) / 2
    return _safe_divide(u, n_pos * n_neg)


def _metrics_on_resamples(y_true: np.ndarray, proba: np.ndarray, idx: np.ndarray, names: Sequence[str],
                          positive: int | None, labels: Sequence[str] | None) -> dict[str, np.ndarray]:
    """Every metric in ``names`` for every resample (rows of ``idx``), same definitions as classification_metrics."""
    n_boot, n = idx.shape
    k = proba.shape[1]
    yb = y_true[idx]
    pb = proba.argmax(axis=1)[idx]
    flat = (np.arange(n_boot)[:, None] * k * k + yb * k + pb).ravel()
    cms = np.bincount(flat, minlength=n_boot * k * k).reshape(n_boot, k, k).astype(float)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    actual, predicted = cms.sum(axis=2), cms.sum(axis=1)
    fn, fp = actual - tp, predicted - tp
    tn = n - tp - fn - fp
    precision, recall = _safe_divide(tp, predicted), _safe_divide(tp, actual)
    f1 = _safe_divide(2 * tp, 2 * tp + fp + fn)
    far = _safe_divide(fp, fp + tn)
    per_class = {"precision": precision, "recall": recall, "f1": f1, "specificity": 1 - far,
                 "miss_rate": _safe_divide(fn, actual), "false_alarm_rate": far, "class_accuracy": recall,
                 "one_vs_rest_accuracy": (tp + tn) / n}
    auc_cache: dict[int, np.ndarray] = {}

    def auc(c: int) -> np.ndarray:
        if c not in auc_cache:
            auc_cache[c] = _rank_auc(yb == c, proba[idx, c])
        return auc_cache[c]

    out = {"accuracy": tp.sum(axis=1) / n, "precision_macro": _nanmean_rows(precision),
           "recall_macro": _nanmean_rows(recall), "f1_macro": _nanmean_rows(f1)}
    binary = k == 2 and positive is not None
    for name in names:
        if name in out:
            continue
        base, _, label = name.partition("/")
        if label:
            if labels is None or label not in labels or base not in {*per_class, "roc_auc"}:
                raise ValueError(f"cannot compute {name!r}: per-class metrics need labels= and one of "
                                 f"{sorted({*per_class, 'roc_auc'})}")
            c = list(labels).index(label)
            out[name] = auc(c) if base == "roc_auc" else per_class[base][:, c]
        elif binary and base in {"precision", "recall", "f1", "specificity", "miss_rate", "false_alarm_rate"}:
            out[name] = per_class[base][:, positive]
        elif binary and base == "roc_auc":
            out[name] = auc(positive)
        elif binary and base == "balanced_accuracy":
            out[name] = _nanmean_rows(recall)
        elif not binary and base in {"precision", "recall", "f1"}:
            out[name] = out[f"{base}_macro"]
        elif not binary and base == "specificity_macro":
            out[name] = _nanmean_rows(per_class["specificity"])
        elif not binary and base == "roc_auc":
            out[name] = np.mean([auc(c) for c in range(k)], axis=0)
        else:
            raise ValueError(f"unknown metric {name!r} for {'binary' if binary else 'multiclass'} evaluation")
    return {name: out[name] for name in names}


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_cis(y_true: np.ndarray, proba: np.ndarray, metrics: Sequence[str], *, n_boot: int = 1000,
                  seed: int = 0, stratified: bool = True, level: float = 0.95, positive: int | None = 1,
                  labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Percentile bootstrap intervals, one row per metric: metric, value (on all data), low, high.

    Names are those of :func:`classification_metrics`. Stratified resampling draws within each class, so every
    resample keeps the class counts of the data; resamples where a metric is undefined are left out of its
    percentiles.
    """
    y_true, proba = _check(y_true, proba)
    point = classification_metrics(y_true, proba, positive=positive, labels=labels)
    missing = [m for m in metrics if m not in point]
    if missing:
        raise ValueError(f"unknown metric(s) {missing}; available: {sorted(point)}")
    idx = _resample_indices(y_true, n_boot, seed, stratified)
    samples = _metrics_on_resamples(y_true, proba, idx, metrics, positive, labels)
    rows = [{"metric": m, "value": point[m], **dict(zip(("low", "high"), _interval(samples[m], level)))}
            for m in metrics]
    return pd.DataFrame(rows, columns=["metric", "value", "low", "high"])


def bootstrap_ci(y_true: np.ndarray, proba: np.ndarray, metric: str | MetricFunction, *, n_boot: int = 1000,
                 seed: int = 0, stratified: bool = True, level: float = 0.95,
                 **metric_kwargs) -> tuple[float, float, float]:
    """(point, low, high) percentile bootstrap interval of one metric.

    ``metric`` is a name from :func:`classification_metrics` (``metric_kwargs`` may give ``positive`` and
    ``labels``) or a function ``f(y_true, proba, **metric_kwargs) -> float``, evaluated once per resample.
    """
    if isinstance(metric, str):
        row = bootstrap_cis(y_true, proba, [metric], n_boot=n_boot, seed=seed, stratified=stratified,
                            level=level, **metric_kwargs).iloc[0]
        return float(row["value"]), float(row["low"]), float(row["high"])
    y_true, proba = _check(y_true, proba)
    idx = _resample_indices(y_true, n_boot, seed, stratified)
    samples = np.array([metric(y_true[i], proba[i], **metric_kwargs) for i in idx], dtype=float)
    return (float(metric(y_true, proba, **metric_kwargs)), *_interval(samples, level))


# --- repeated runs ---------------------------------------------------------------------------------------------


def across_seeds(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over repeated runs: (mean, low, high); one value gives (v, nan, nan)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("across_seeds needs at least one value")
    mean = float(values.mean())
    if values.size == 1:
        return mean, float("nan"), float("nan")
    sem = float(stats.sem(values))
    if sem == 0:
        return mean, mean, mean
    low, high = stats.t.interval(level, values.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def summarise_runs(per_run: pd.DataFrame, group_cols: Sequence[str], metric_cols: Sequence[str],
                   level: float = 0.95) -> pd.DataFrame:
    """Long table: one row per group and metric with mean, low, high (t-interval over runs) and n.

    Runs where a metric is missing (nan) do not count towards its n; a metric column absent from ``per_run``
    is an error.
    """
    absent = [c for c in [*group_cols, *metric_cols] if c not in per_run.columns]
    if absent:
        raise ValueError(f"per-run table lacks column(s) {absent}; it has {list(per_run.columns)}")
    rows = []
    for keys, group in per_run.groupby(list(group_cols), sort=True, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        for metric in metric_cols:
            values = group[metric].dropna().to_numpy(dtype=float)
            mean, low, high = across_seeds(values, level) if values.size else (np.nan, np.nan, np.nan)
            rows.append({**dict(zip(group_cols, keys)), "metric": metric, "mean": mean, "low": low, "high": high,
                         "n": int(values.size)})
    return pd.DataFrame(rows, columns=[*group_cols, "metric", "mean", "low", "high", "n"])
