"""Tables over hand-made runs: summaries over seeds, paper comparisons, seeds side by side, paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oncorepro import run_tables
from oncorepro.metrics import across_seeds
from oncorepro.report import PaperValue

LABELS = [0, 0, 1, 1, 1, 2, 2, 2, 2]  # 2 normal, 3 benign, 4 malignant
ONE_MISSED = [0, 0, 1, 1, 1, 2, 2, 2, 1]  # malignant recall 0.75


def test_settings_keep_their_own_label_when_they_share_a_stored_run(make_run):
    first = make_run("Model 5", 0, LABELS, ONE_MISSED)
    shared = make_run("Model 7", 0, LABELS, ONE_MISSED, stored_label="Model 5")
    table = run_tables.summary([first, shared], ["class_accuracy/malignant"])
    assert sorted(table["setting"]) == ["Model 5", "Model 7"]
    assert table["mean"].tolist() == [0.75, 0.75] and table["n"].tolist() == [1, 1]


def test_summary_of_a_single_run_takes_its_bootstrap_interval_only_when_asked(make_run):
    runs = [make_run("A", 0, LABELS, ONE_MISSED, ci={"test": {"accuracy": [0.6, 1.2]}})]
    plain = run_tables.summary(runs, ["accuracy", "test_loss_min"]).set_index("metric")
    assert np.isnan(plain.loc["accuracy", "low"]) and plain.loc["test_loss_min", "mean"] == 0.40
    single = run_tables.summary(runs, ["accuracy", "test_loss_min"], single_run_ci=True).set_index("metric")
    assert single.loc["accuracy", ["low", "high"]].tolist() == [0.6, 1.0]  # clipped to a score's [0, 1]
    assert np.isnan(single.loc["test_loss_min", "low"])  # a curve reading has no bootstrap interval
    assert "test_loss_min" not in set(run_tables.summary(runs, ["test_loss_min"], readings=False)["metric"])


def test_intervals_stay_inside_what_each_metric_can_take():
    long = pd.DataFrame({"setting": "A", "metric": ["accuracy", "train_seconds", "test_loss_min", "plateau_epoch"],
                         "mean": [0.9, 5.0, 0.1, 2.0], "low": [0.7, -4.0, -0.2, -3.0], "high": [1.2, 14.0, 0.4, 7.0],
                         "n": 2})
    clipped = run_tables.clip_intervals(long).set_index("metric")
    assert clipped.loc["accuracy", ["low", "high"]].tolist() == [0.7, 1.0]
    assert clipped["low"].drop("accuracy").tolist() == [0.0, 0.0, 0.0]  # no negative time, loss or epoch
    assert clipped.loc["train_seconds", "high"] == 14.0


def test_compare_matches_scores_and_curve_statements_and_maps_variants(make_run):
    runs = [make_run("Model 7 (b)", seed, LABELS, predicted) for seed, predicted in enumerate([ONE_MISSED, LABELS])]
    paper = [PaperValue("p", "Table 2", "Model 7", "recall/malignant", 0.875),
             PaperValue("p", "Table 1", "Model 7", "test_loss_min", 0.45, relation="<"),
             PaperValue("p", "Table 1", "Model 7", "segmentation_masks", 1.0),
             PaperValue("p", "Table 1", "Model 9", "recall/malignant", 0.5)]
    table = run_tables.compare(runs, paper, ["Table 1", "Table 2"], as_paper={"Model 7 (b)": "Model 7"})
    assert table["metric"].tolist() == ["recall/malignant", "test_loss_min"]  # no description, no Model 9
    recall = table.iloc[0]
    assert recall["ours"].startswith("87.5%") and recall["verdict"] == "reproduced"  # mean of 0.75 and 1.0
    assert table.iloc[1]["paper"] == "<0.45" and table.iloc[1]["verdict"] == "reproduced"
    kept = run_tables.versus_paper(runs, paper, ["Table 1"], as_paper={"Model 7 (b)": "Model 7"},
                                   measured_only=False)
    assert kept["verdict"].tolist() == ["reproduced", "not run"]  # the description stays, unjudged


def test_compare_wide_has_one_row_per_setting(make_run):
    runs = [make_run(name, 0, LABELS, ONE_MISSED) for name in ("M1", "M2")]
    paper = [PaperValue("p", "T2", name, metric, value) for name in ("M2", "M1")
             for metric, value in (("recall/malignant", 0.75), ("precision/malignant", 0.5))]
    wide = run_tables.compare(runs, paper, ["T2"], wide=True)
    assert list(wide.index) == ["M2", "M1"]
    assert list(wide.columns.get_level_values(0)) == ["recall/malignant"] * 3 + ["precision/malignant"] * 3
    assert wide.loc["M1", ("recall/malignant", "verdict")] == "close (1 run)"  # equal, but one run: no interval
    assert wide.loc["M1", ("precision/malignant", "verdict")] == "paper lower (1 run)"


def test_counts_versus_paper_reads_the_split_of_the_first_run(make_run):
    paper = [PaperValue("p", "Table 1", "BUSI / test / malignant", "count", 4),
             PaperValue("p", "Table 1", "BUSI / all / total", "count", 780)]
    table = run_tables.counts_versus_paper([make_run("A", 0, LABELS, LABELS)], "A", paper, "BUSI")
    assert table["ours"].tolist() == ["4", "12"] and table["verdict"].tolist() == ["reproduced", "paper higher"]
    assert run_tables.counts_versus_paper([], "A", paper, "BUSI")["verdict"].tolist() == ["not run"] * 2


def test_by_seed_lists_settings_in_run_order(make_run):
    runs = [make_run("B", 0, LABELS, LABELS), make_run("A", 0, LABELS, ONE_MISSED),
            make_run("A", 1, LABELS, LABELS)]
    table = run_tables.by_seed(runs, "class_accuracy/malignant")
    assert list(table.index) == ["B", "A"] and list(table.columns) == ["seed 0", "seed 1", "range"]
    assert table.loc["A"].tolist() == ["75.0%", "100.0%", "25.0%"] and table.loc["B", "seed 1"] == "—"


def test_paired_difference_pairs_seeds(make_run):
    base = [make_run("A", s, LABELS, p) for s, p in enumerate([[0, 0, 1, 1, 1, 2, 1, 1, 1],
                                                               [0, 0, 1, 1, 1, 2, 2, 1, 1],
                                                               [0, 0, 1, 1, 1, 1, 1, 1, 1]])]
    variant = [make_run("B", s, LABELS, p) for s, p in enumerate([ONE_MISSED, LABELS, [0, 0, 1, 1, 1, 2, 1, 1, 1]])]
    mean, low, high, n = run_tables.paired_difference(base + variant, "A", "B", "class_accuracy/malignant")
    expected = across_seeds([0.75 - 0.25, 1.0 - 0.5, 0.25 - 0.0])
    assert n == 3 and (mean, low, high) == pytest.approx(expected)
    sentence = run_tables.difference_sentence(base + variant, "A", "B", "class_accuracy/malignant")
    assert sentence.startswith("B minus A, class accuracy/malignant: +41.7 points") and "excludes zero" in sentence
    assert run_tables.paired_difference(base, "A", "missing", "accuracy")[3] == 0
    assert run_tables.difference_sentence(base, "A", "missing", "accuracy") == "missing vs A, accuracy: not run."


def test_evaluated_inputs_splits_images_from_mask_images(make_run):
    ids = ["b1", "b2", "m1", "m2", "m1|m1_mask", "m2|m2_mask"]
    runs = [make_run("pooled", 0, [1, 1, 2, 2, 2, 2], [1, 1, 1, 2, 2, 2], ids=ids)]
    table = run_tables.evaluated_inputs(runs, ["class_accuracy/malignant", "accuracy"])
    assert table["items"].tolist() == [6, 4, 2]
    assert table.loc[("pooled", "images"), "class_accuracy/malignant"] == "50.0%"
    assert table.loc[("pooled", "mask images"), "class_accuracy/malignant"] == "100.0%"
    assert table.loc[("pooled", "all items"), "accuracy"] == "83.3%"
