from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from oncorepro.metrics import (_metrics_on_resamples, _resample_indices, across_seeds, bootstrap_ci, bootstrap_cis,
                               classification_metrics, confusion, one_vs_rest_rates, summarise_runs)

BINARY_NAMES = ["accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "miss_rate", "false_alarm_rate",
                "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro"]


def scored_binary(n: int, seed: int, positive_share: float = 0.33, separation: float = 0.35):
    """Labels and (N, 2) probabilities of an imperfect classifier."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_share).astype(int)
    score = np.clip(separation * y + (1 - separation) * rng.random(n), 0, 1)
    return y, np.column_stack([1 - score, score])


def scored_multiclass(n: int, seed: int, k: int = 3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and one-hot-ish probabilities whose argmax reproduces the confusion matrix ``cm``."""
    k = len(cm)
    y, pred = [], []
    for true in range(k):
        for predicted in range(k):
            y += [true] * int(cm[true, predicted])
            pred += [predicted] * int(cm[true, predicted])
    proba = np.full((len(y), k), 0.1 / (k - 1))
    proba[np.arange(len(y)), pred] = 0.9
    return np.array(y), proba


# --- point metrics ---------------------------------------------------------------------------------------------


def test_binary_metrics_match_sklearn():
    y, proba = scored_binary(120, seed=1)
    pred = proba.argmax(1)
    got = classification_metrics(y, proba)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["miss_rate"] == pytest.approx(1 - got["recall"])
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"))


def test_binary_metrics_from_hand_counted_confusion_matrix():
    # The BUSI test set of Haj Ali et al. (66 benign, 31 malignant) with one benign case called malignant.
    y, proba = from_confusion(np.array([[65, 1], [0, 31]]))
    got = classification_metrics(y, proba)
    assert got["accuracy"] == pytest.approx(96 / 97)
    assert got["recall"] == 1.0 and got["miss_rate"] == 0.0
    assert got["specificity"] == pytest.approx(65 / 66)
    assert got["false_alarm_rate"] == pytest.approx(1 / 66)
    assert got["precision"] == pytest.approx(31 / 32)
    assert got["f1"] == pytest.approx(62 / 63)
    # ... which reproduces every value the paper prints for this run (Tables 5 and 7, as macro averages).
    assert round(got["accuracy"], 4) == 0.9897
    assert round(got["specificity"], 4) == 0.9848
    assert round(got["recall_macro"], 4) == 0.9924
    assert round(got["precision_macro"], 4) == 0.9844
    assert round(got["f1_macro"], 4) == 0.9882


def test_positive_index_swaps_the_roles_of_the_classes():
    y, proba = scored_binary(80, seed=2)
    one, zero = classification_metrics(y, proba, positive=1), classification_metrics(y, proba, positive=0)
    assert zero["recall"] == pytest.approx(one["specificity"])
    assert zero["false_alarm_rate"] == pytest.approx(one["miss_rate"])
    assert zero["roc_auc"] == pytest.approx(one["roc_auc"])


def test_multiclass_metrics_match_sklearn():
    y, proba = scored_multiclass(150, seed=3)
    pred = proba.argmax(1)
    labels = ["normal", "benign", "malignant"]
    got = classification_metrics(y, proba, positive=None, labels=labels)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    recalls = skm.recall_score(y, pred, average=None)
    for c, label in enumerate(labels):
        assert got[f"recall/{label}"] == pytest.approx(recalls[c])
        assert got[f"roc_auc/{label}"] == pytest.approx(skm.roc_auc_score(y == c, proba[:, c]))
        assert got[f"specificity/{label}"] == pytest.approx(skm.recall_score(y != c, pred != c))
    cm = confusion(y, pred, 3)
    assert got["specificity_macro"] == pytest.approx(np.mean([1 - one_vs_rest_rates(cm, c)["false_alarm_rate"]
                                                              for c in range(3)]))


def test_undefined_values_are_nan_without_exceptions_or_warnings():
    y = np.array([0, 0, 1, 1, 0])
    never_positive = np.column_stack([np.full(5, 0.8), np.full(5, 0.2)])
    one_class = np.zeros(5, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = classification_metrics(y, never_positive)
        assert np.isnan(got["precision"]) and got["recall"] == 0.0
        assert np.isnan(classification_metrics(one_class, never_positive)["roc_auc"])
        multi = classification_metrics(np.array([0, 0, 1]), np.eye(3)[[0, 0, 1]], positive=None, labels=list("abc"))
        assert np.isnan(multi["recall/c"]) and np.isnan(multi["roc_auc"])


def test_bad_input_is_rejected_with_a_message():
    with pytest.raises(ValueError, match="rows"):
        classification_metrics(np.array([0, 1]), np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="0..1"):
        classification_metrics(np.array([0, 2]), np.full((2, 2), 0.5))


# --- Bădoi Table 2 definitions ---------------------------------------------------------------------------------


def test_one_vs_rest_rates_on_a_hand_built_three_class_matrix():
    # rows true, columns predicted: normal, benign, malignant (118 test images as in Bădoi's 15% split)
    cm = np.array([[18, 2, 0],
                   [3, 55, 8],
                   [1, 3, 28]])
    malignant = one_vs_rest_rates(cm, 2)
    # TP = 28; FN = 1 + 3 = 4; FP = 0 + 8 = 8; TN = 118 - 28 - 4 - 8 = 78 (benign called normal counts as TN)
    assert malignant["recall"] == pytest.approx(28 / 32)
    assert malignant["miss_rate"] == pytest.approx(4 / 32)
    assert malignant["false_alarm_rate"] == pytest.approx(8 / 86)
    assert malignant["precision"] == pytest.approx(28 / 36)
    assert malignant["class_accuracy"] == pytest.approx(28 / 32)
    assert malignant["one_vs_rest_accuracy"] == pytest.approx((28 + 78) / 118)
    benign = one_vs_rest_rates(cm, 1)  # TP 55, FN 11, FP 5, TN 47
    assert benign["recall"] == pytest.approx(55 / 66)
    assert benign["false_alarm_rate"] == pytest.approx(5 / 52)
    assert benign["precision"] == pytest.approx(55 / 60)


def test_one_vs_rest_rates_reproduce_badoi_model_4():
    # 32 malignant and 86 other test cases: 26 found, 7 false alarms -> Table 2 row "Model 4"
    cm = np.array([[15, 5, 0],
                   [4, 55, 7],
                   [2, 4, 26]])
    rates = one_vs_rest_rates(cm, 2)
    assert round(100 * rates["miss_rate"], 2) == 18.75
    assert round(100 * rates["recall"], 2) == 81.25
    assert round(100 * rates["false_alarm_rate"], 2) == 8.14
    assert round(100 * rates["precision"], 2) == 78.79


def test_multiclass_per_class_entries_follow_one_vs_rest_rates():
    y, proba = scored_multiclass(90, seed=4)
    got = classification_metrics(y, proba, positive=None, labels=["normal", "benign", "malignant"])
    rates = one_vs_rest_rates(confusion(y, proba.argmax(1), 3), 2)
    for name, value in rates.items():
        assert got[f"{name}/malignant"] == pytest.approx(value)


def test_confusion_counts_rows_true_columns_predicted():
    cm = confusion(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 4)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 0] = 1
    expected[2, 2] = 2
    np.testing.assert_array_equal(cm, expected)


# --- bootstrap -------------------------------------------------------------------------------------------------


def test_vectorised_resample_metrics_equal_sklearn_on_every_resample():
    y, proba = scored_binary(40, seed=5, positive_share=0.15)
    idx = _resample_indices(y, 60, seed=0, stratified=False)  # some resamples lose the positives
    fast = _metrics_on_resamples(y, proba, idx, BINARY_NAMES, positive=1, labels=None)
    labels = ["normal", "benign", "malignant"]
    ym, pm = scored_multiclass(45, seed=6)
    names_m = ["accuracy", "precision", "recall", "f1", "roc_auc", "specificity_macro", "recall/malignant",
               "false_alarm_rate/benign", "class_accuracy/normal", "roc_auc/benign", "one_vs_rest_accuracy/malignant"]
    idx_m = _resample_indices(ym, 30, seed=0, stratified=False)
    fast_m = _metrics_on_resamples(ym, pm, idx_m, names_m, positive=None, labels=labels)
    for b in range(idx.shape[0]):
        slow = classification_metrics(y[idx[b]], proba[idx[b]])
        for name in BINARY_NAMES:
            np.testing.assert_allclose(fast[name][b], slow[name], err_msg=f"{name}, resample {b}")
    for b in range(idx_m.shape[0]):
        slow = classification_metrics(ym[idx_m[b]], pm[idx_m[b]], positive=None, labels=labels)
        for name in names_m:
            np.testing.assert_allclose(fast_m[name][b], slow[name], err_msg=f"{name}, resample {b}")


def test_stratified_resamples_keep_every_class_count():
    y = np.array([0] * 40 + [1] * 3 + [2] * 7)
    idx = _resample_indices(y, 500, seed=1, stratified=True)
    for c, count in zip(range(3), (40, 3, 7)):
        assert ((y[idx] == c).sum(axis=1) == count).all()


def test_bootstrap_interval_contains_the_point_estimate_and_narrows_with_more_data():
    widths = []
    for n in (60, 600):
        y, proba = scored_binary(n, seed=7)
        table = bootstrap_cis(y, proba, ["accuracy", "roc_auc", "recall"], n_boot=400, seed=0)
        assert (table["low"] <= table["value"]).all() and (table["value"] <= table["high"]).all()
        widths.append((table["high"] - table["low"]).to_numpy())
    assert (widths[1] < widths[0]).all()


def test_bootstrap_is_deterministic_for_a_seed():
    y, proba = scored_binary(100, seed=8)
    first = bootstrap_ci(y, proba, "f1", n_boot=300, seed=3)
    assert bootstrap_ci(y, proba, "f1", n_boot=300, seed=3) == first
    assert bootstrap_ci(y, proba, "f1", n_boot=300, seed=4) != first


def test_bootstrap_with_a_function_uses_the_same_resamples_as_with_a_name():
    y, proba = scored_binary(70, seed=9)
    by_name = bootstrap_ci(y, proba, "accuracy", n_boot=200, seed=2)
    by_function = bootstrap_ci(y, proba, lambda t, p: skm.accuracy_score(t, p.argmax(1)), n_boot=200, seed=2)
    assert by_function == pytest.approx(by_name)


def test_stratified_bootstrap_of_auc_is_defined_with_two_positives():
    y = np.array([1, 1] + [0] * 38)
    score = np.linspace(0.9, 0.1, 40)
    proba = np.column_stack([1 - score, score])
    point, low, high = bootstrap_ci(y, proba, "roc_auc", n_boot=300, seed=0, stratified=True)
    assert point == 1.0 and low == 1.0 and high == 1.0


def test_bootstrap_cis_of_ten_metrics_is_fast():
    y, proba = scored_binary(100, seed=10)
    names = BINARY_NAMES[:10]
    start = time.perf_counter()
    table = bootstrap_cis(y, proba, names, n_boot=1000, seed=0)
    assert time.perf_counter() - start < 2.0
    assert list(table["metric"]) == names and table[["low", "high"]].notna().all().all()


def test_bootstrap_rejects_unknown_metric_names():
    y, proba = scored_binary(30, seed=11)
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_cis(y, proba, ["accuracy", "auroc"])


# --- repeated runs ---------------------------------------------------------------------------------------------


def test_across_seeds_matches_scipy_t_interval():
    values = [0.91, 0.94, 0.89, 0.95, 0.92]
    mean, low, high = across_seeds(values)
    expected = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx(expected)
    assert across_seeds(values, level=0.9)[2] < high


def test_across_seeds_with_one_value_or_identical_values():
    mean, low, high = across_seeds([0.93])
    assert mean == 0.93 and np.isnan(low) and np.isnan(high)
    assert across_seeds([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)


def test_summarise_runs_gives_one_row_per_group_and_metric():
    per_run = pd.DataFrame({"setting": ["ROI"] * 3 + ["no ROI"] * 2, "seed": [0, 1, 2, 0, 1],
                            "accuracy": [0.9, 0.92, 0.94, 0.8, np.nan], "f1": [0.88, 0.9, 0.91, 0.79, 0.81]})
    table = summarise_runs(per_run, ["setting"], ["accuracy", "f1"])
    assert list(table.columns) == ["setting", "metric", "mean", "low", "high", "n"]
    roi = table[(table.setting == "ROI") & (table.metric == "accuracy")].iloc[0]
    assert (roi["mean"], roi["low"], roi["high"]) == pytest.approx(across_seeds([0.9, 0.92, 0.94]))
    assert roi["n"] == 3
    no_roi = table[(table.setting == "no ROI") & (table.metric == "accuracy")].iloc[0]
    assert no_roi["n"] == 1 and no_roi["mean"] == 0.8 and np.isnan(no_roi["low"])
    with pytest.raises(ValueError, match="auc"):
        summarise_runs(per_run, ["setting"], ["auc"])
