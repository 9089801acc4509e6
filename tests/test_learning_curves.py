"""Curve readings, the chapter tables built from runs, and the counts behind printed rates, on hand-made runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from oncorepro import learning_curves as lc
from oncorepro.metrics import across_seeds, classification_metrics
from oncorepro.report import PaperValue
from oncorepro.results import Result
from oncorepro.runner import RunOutcome
from oncorepro.spec import RunSpec

CLASSES = ("normal", "benign", "malignant")
EPOCHS = np.arange(1, 11)
ACCURACY = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.9, 0.91, 0.9, 0.9]
LOSS = [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.41, 0.40, 0.40, 0.40]
HISTORY = pd.DataFrame({"epoch": EPOCHS, "train_loss": np.linspace(1.0, 0.1, 10),
                        "train_accuracy": np.linspace(0.6, 0.99, 10), "test_loss": LOSS,
                        "test_accuracy": ACCURACY, "seconds": 0.01})


def _predictions(labels: list[int], predicted: list[int], ids: list[str] | None = None) -> pd.DataFrame:
    proba = np.full((len(labels), 3), 0.1)
    proba[np.arange(len(labels)), predicted] = 0.8
    table = pd.DataFrame({"evaluation": "test", "id": ids or [f"img{i}" for i in range(len(labels))],
                          "label": labels, "pred": predicted})
    for k, name in enumerate(CLASSES):
        table[f"p_{name}"] = proba[:, k]
    return table


def _outcome(label: str, seed: int, labels: list[int], predicted: list[int], *, ids: list[str] | None = None,
             history: pd.DataFrame = HISTORY, stored_label: str | None = None, train_images: int = 600,
             **spec_changes) -> RunOutcome:
    """A finished run whose metrics come from real predictions; ``stored_label`` is the label its stored result
    carries (a run shared with another setting keeps the first setting's label in the store)."""
    spec = RunSpec(dataset="busi", classes=CLASSES, seed=seed, label=label, **spec_changes)
    predictions = _predictions(labels, predicted, ids)
    proba = predictions[[f"p_{c}" for c in CLASSES]].to_numpy()
    metrics = classification_metrics(np.array(labels), proba, positive=None, labels=CLASSES)
    result = Result(spec=spec.but(label=stored_label or label), key=f"{label}-{seed}", metrics={"test": metrics},
                    ci={}, confusion={}, provenance={}, history=history, predictions=predictions,
                    timings={"train_seconds": 2.0, "inference_seconds_per_image": 0.02, "train_images": train_images,
                             "epochs_run": int(history["epoch"].max())},
                    split_counts=pd.DataFrame({"label": [*CLASSES, "Total"], "train": [1, 1, 1, 3],
                                               "val": 0, "test": [2, 3, 4, 9], "total": [3, 4, 5, 12]}))
    return RunOutcome(spec, result.key, result)


# --- curve readings ---------------------------------------------------------------------------------------------


def test_curve_readings_by_hand():
    readings = lc.curve_readings(HISTORY)
    assert readings["test_loss_min"] == 0.40 and readings["test_loss_min_epoch"] == 8
    assert readings["test_loss_max"] == 1.0 and readings["test_loss_max_epoch"] == 1
    assert readings["test_loss_early"] == pytest.approx(0.8)  # mean of 1.0, 0.8, 0.6
    assert readings["test_loss_final"] == 0.40
    assert readings["test_loss_plateau"] == pytest.approx(0.40)  # median of epochs 6-10
    # 3-epoch rolling means: epoch 6 0.457 (0.057 from 0.40, outside 0.05), epoch 7 0.427 and later inside
    assert readings["test_loss_plateau_epoch"] == 7
    assert readings["test_accuracy_plateau"] == pytest.approx(0.90)
    # rolling means: epoch 6 0.85 (0.05 from 0.90, outside 0.03), epoch 7 0.883 and later inside
    assert readings["test_accuracy_plateau_epoch"] == 7
    assert readings["test_accuracy_max"] == 0.91 and readings["test_accuracy_max_epoch"] == 8
    assert readings["train_accuracy_final"] == pytest.approx(0.99)


def test_a_curve_that_keeps_rising_settles_at_its_last_epochs():
    rising = HISTORY.assign(test_loss=np.linspace(0.5, 1.4, 10))
    readings = lc.curve_readings(rising)
    assert readings["test_loss_max_epoch"] == 10 and readings["test_loss_plateau_epoch"] >= 9


def test_curve_readings_reject_bad_histories():
    with pytest.raises(ValueError, match="epoch"):
        lc.curve_readings(HISTORY.drop(columns="epoch"))
    with pytest.raises(ValueError, match="test_loss"):
        lc.curve_readings(HISTORY.assign(test_loss=np.nan))


# --- tables over runs -------------------------------------------------------------------------------------------

LABELS = [0, 0, 1, 1, 1, 2, 2, 2, 2]


def test_settings_keep_their_own_label_when_they_share_a_stored_run():
    first = _outcome("Model 5", 0, LABELS, [0, 0, 1, 1, 1, 2, 2, 2, 1])
    shared = _outcome("Model 7", 0, LABELS, [0, 0, 1, 1, 1, 2, 2, 2, 1], stored_label="Model 5")
    table = lc.summary([first, shared], ["class_accuracy/malignant"])
    assert sorted(table["setting"]) == ["Model 5", "Model 7"]
    assert table["mean"].tolist() == [0.75, 0.75] and table["n"].tolist() == [1, 1]


def test_compare_matches_scores_and_curve_statements_and_maps_variants():
    runs = [_outcome("Model 7 (b)", seed, LABELS, predicted) for seed, predicted in enumerate([[0, 0, 1, 1, 1, 2, 2, 2, 1], [0, 0, 1, 1, 1, 2, 2, 2, 2]])]
    paper = [PaperValue("p", "Table 2", "Model 7", "recall/malignant", 0.875),
             PaperValue("p", "Table 1", "Model 7", "test_loss_min", 0.45, relation="<"),
             PaperValue("p", "Table 1", "Model 7", "segmentation_masks", 1.0),
             PaperValue("p", "Table 1", "Model 9", "recall/malignant", 0.5)]
    table = lc.compare(runs, paper, ["Table 1", "Table 2"], as_paper={"Model 7 (b)": "Model 7"})
    assert table["metric"].tolist() == ["recall/malignant", "test_loss_min"]  # no description, no Model 9
    recall = table.iloc[0]
    assert recall["ours"].startswith("87.5%") and recall["verdict"] == "reproduced"  # mean of 0.75 and 1.0
    assert table.iloc[1]["paper"] == "<0.45" and table.iloc[1]["verdict"] == "reproduced"
    assert lc.verdict_counts(table) == "Of the 2 paper values judged here, 2 reproduced."


def test_paired_difference_pairs_seeds():
    base = [_outcome("A", s, LABELS, p) for s, p in enumerate([[0, 0, 1, 1, 1, 2, 1, 1, 1],
                                                                [0, 0, 1, 1, 1, 2, 2, 1, 1],
                                                                [0, 0, 1, 1, 1, 1, 1, 1, 1]])]
    variant = [_outcome("B", s, LABELS, p) for s, p in enumerate([[0, 0, 1, 1, 1, 2, 2, 2, 1],
                                                                   [0, 0, 1, 1, 1, 2, 2, 2, 2],
                                                                   [0, 0, 1, 1, 1, 2, 1, 1, 1]])]
    mean, low, high, n = lc.paired_difference(base + variant, "A", "B", "class_accuracy/malignant")
    expected = across_seeds([0.75 - 0.25, 1.0 - 0.5, 0.25 - 0.0])
    assert n == 3 and (mean, low, high) == pytest.approx(expected)
    sentence = lc.difference_sentence(base + variant, "A", "B", "class_accuracy/malignant")
    assert sentence.startswith("B minus A, class accuracy/malignant: +41.7 points") and "excludes zero" in sentence
    assert lc.paired_difference(base, "A", "missing", "accuracy")[3] == 0


def test_evaluated_inputs_splits_images_from_mask_images():
    ids = ["b1", "b2", "m1", "m2", "m1|m1_mask", "m2|m2_mask"]
    runs = [_outcome("pooled", 0, [1, 1, 2, 2, 2, 2], [1, 1, 1, 2, 2, 2], ids=ids)]
    table = lc.evaluated_inputs(runs, ["class_accuracy/malignant", "accuracy"])
    assert table["items"].tolist() == [6, 4, 2]
    assert table.loc[("pooled", "images"), "class_accuracy/malignant"] == "50.0%"
    assert table.loc[("pooled", "mask images"), "class_accuracy/malignant"] == "100.0%"
    assert table.loc[("pooled", "all items"), "accuracy"] == "83.3%"


def test_size_study_groups_configurations_and_fractions():
    runs = [_outcome(f"lr {lr} on {f}", seed, LABELS, [0, 0, 1, 1, 1, 2, 2, 2, 2 if seed else 1], lr=lr,
                     train_fraction=f, train_images=int(600 * f))
            for lr in (1e-3, 1e-4) for f in (1.0, 0.5) for seed in (0, 1)]
    table = lc.size_study(runs, "class_accuracy/malignant")
    assert len(table) == 4 and set(table["n"]) == {2}
    assert table["mean"].tolist() == pytest.approx([0.875] * 4)
    assert sorted(table["train_images"].unique()) == [300, 600]
    wide = lc.size_table(runs, "class_accuracy/malignant")
    assert list(wide.index) == ["100% (600 images)", "50% (300 images)"] and "best (by mean)" in wide.columns


def test_training_cost_adds_one_base_pass_per_training_image():
    cost = lc.training_cost([_outcome("A", 0, LABELS, LABELS, train_images=500)])
    assert cost.loc["A", "feature_seconds"] == pytest.approx(500 * 0.02)
    assert cost.loc["A", "total_seconds"] == pytest.approx(500 * 0.02 + 2.0)


# --- counts behind printed rates ---------------------------------------------------------------------------------


def test_counts_from_rates_recovers_a_hand_computed_confusion():
    # 27 of 32 malignant found, 5 of 86 others called malignant: recall 84.4%, precision 84.4%, FAR 5.8%
    solutions = lc.counts_from_rates(0.844, 0.844, 0.058)
    assert solutions.iloc[0][["tp", "fn", "fp", "tn"]].tolist() == [27, 5, 5, 81]
    # four printed decimals are matched to half a unit of the fourth: 26/32 = 0.8125 but not 0.8126
    assert lc.counts_from_rates(0.8125, 0.7879, 0.0814).iloc[0][["tp", "fn", "fp", "tn"]].tolist() == [26, 6, 7, 79]
    assert lc.counts_from_rates(0.8126, 0.7879, 0.0814, max_positives=40).empty


def test_rates_no_small_confusion_can_give():
    assert lc.counts_from_rates(0.333, 0.7, 0.05, max_positives=5).empty  # precision 0.7 needs tp >= 7


def test_implied_test_sets_reads_the_paper_values():
    paper = [PaperValue("p", "Table 2", "M", f"{m}/malignant", v)
             for m, v in (("recall", 0.844), ("precision", 0.844), ("false_alarm_rate", 0.058))]
    table = lc.implied_test_sets(paper, ["M", "absent"], "malignant")
    row = table.loc["M"]
    assert row["malignant (tp+fn)"] == 32 and row["other classes (fp+tn)"] == 86 and row["test items"] == 118
    interval = stats.binomtest(27, 32).proportion_ci(method="exact")
    assert row["malignant accuracy, 95% CI"] == f"84.4% ({interval.low:.1%}–{interval.high:.1%})"
    assert table.loc["absent", "consistent"] == "rates not printed"


def test_paper_settings_and_values():
    paper = [PaperValue("p", "t", "Model 1", "epochs", 30), PaperValue("p", "t", "Model 1", "learning_rate", 1e-3),
             PaperValue("p", "t", "Model 2", "epochs", 50), PaperValue("p", "t", "Model 2", "learning_rate", 1e-4),
             PaperValue("p", "t", "Model 2", "segmentation_masks", 1), PaperValue("p", "t", "rule", "epochs", 8)]
    table = lc.paper_settings(paper, ["epochs", "learning_rate", "segmentation_masks"],
                              required=["epochs", "learning_rate"])
    assert list(table.index) == ["Model 1", "Model 2"]
    assert table["epochs"].tolist() == [30, 50] and np.isnan(table.loc["Model 1", "segmentation_masks"])
    assert lc.paper_value(paper, "Model 2", "learning_rate") == 1e-4
    with pytest.raises(KeyError, match="Model 3"):
        lc.paper_value(paper, "Model 3", "epochs")


def test_compare_wide_has_one_row_per_setting():
    runs = [_outcome(name, 0, LABELS, [0, 0, 1, 1, 1, 2, 2, 2, 1]) for name in ("M1", "M2")]
    paper = [PaperValue("p", "T2", name, metric, value) for name in ("M2", "M1")
             for metric, value in (("recall/malignant", 0.75), ("precision/malignant", 0.5))]
    wide = lc.compare(runs, paper, ["T2"], wide=True)
    assert list(wide.index) == ["M2", "M1"]
    assert list(wide.columns.get_level_values(0)) == ["recall/malignant"] * 3 + ["precision/malignant"] * 3
    assert wide.loc["M1", ("recall/malignant", "verdict")] == "close (1 run)"  # equal, but one run: no interval
    assert wide.loc["M1", ("precision/malignant", "verdict")] == "paper lower (1 run)"
