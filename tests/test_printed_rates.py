"""Counts behind printed rates, checked against confusion matrices worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from scipy import stats

from oncorepro import printed_rates as pr
from oncorepro.records import Record
from oncorepro.report import PaperValue


def test_counts_from_rates_recovers_a_hand_computed_confusion():
    # 27 of 32 malignant found, 5 of 86 others called malignant: recall 84.4%, precision 84.4%, FAR 5.8%
    solutions = pr.counts_from_rates(0.844, 0.844, 0.058)
    assert solutions.iloc[0][["tp", "fn", "fp", "tn"]].tolist() == [27, 5, 5, 81]
    # four printed decimals are matched to half a unit of the fourth: 26/32 = 0.8125 but not 0.8126
    assert pr.counts_from_rates(0.8125, 0.7879, 0.0814).iloc[0][["tp", "fn", "fp", "tn"]].tolist() == [26, 6, 7, 79]
    assert pr.counts_from_rates(0.8126, 0.7879, 0.0814, max_positives=40).empty


def test_rates_no_small_confusion_can_give():
    assert pr.counts_from_rates(0.333, 0.7, 0.05, max_positives=5).empty  # precision 0.7 needs tp >= 7


def test_implied_test_sets_reads_the_paper_values():
    paper = [PaperValue("p", "Table 2", "M", f"{m}/malignant", v)
             for m, v in (("recall", 0.844), ("precision", 0.844), ("false_alarm_rate", 0.058))]
    table = pr.implied_test_sets(paper, ["M", "absent"], "malignant")
    row = table.loc["M"]
    assert row["malignant (tp+fn)"] == 32 and row["other classes (fp+tn)"] == 86 and row["test items"] == 118
    interval = stats.binomtest(27, 32).proportion_ci(method="exact")
    assert row["malignant accuracy, 95% CI"] == f"84.4% ({interval.low:.1%}–{interval.high:.1%})"
    assert table.loc["absent", "consistent"] == "rates not printed"


def test_our_test_set_sizes_come_from_each_settings_first_run(make_run):
    labels = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    runs = [make_run("A", 0, labels, labels), make_run("A", 1, labels, labels), make_run("B", 0, labels, labels)]
    table = pr.test_set_sizes(runs, "malignant")
    assert list(table.index) == ["A", "B"]
    assert table.loc["A"].tolist() == [4, 5, 9]  # malignant, the other classes, all test items


def test_test_part_readings_place_each_implied_set_against_the_dataset_files():
    # 20 malignant and 40 benign images with one mask each; 15% of each class rounded up: of the images, 3 malignant
    # and 6 benign; of images and masks pooled, 6 malignant and 12 benign (18 items of 120 files)
    records = [Record("busi", f"{label} ({i})", Path(f"{label} ({i}).png"), label, (Path(f"{label} ({i})_mask.png"),))
               for label, n in (("malignant", 20), ("benign", 40)) for i in range(n)]
    implied = pd.DataFrame({"consistent": ["yes"] * 6 + ["no confusion matrix fits", "rates not printed"],
                            "malignant (tp+fn)": [3, 1, 5, 6, 30, 4, None, None],
                            "other classes (fp+tn)": [6, 7, 12, 24, 10, 2, None, None]},
                           index=pd.Index(["A", "A2", "B", "C", "D", "F", "E", "G"], name="setting"))
    implied = implied.astype({"malignant (tp+fn)": "Int64", "other classes (fp+tn)": "Int64"})  # as implied_test_sets
    lines = pr.test_part_readings(implied, records, "malignant", 0.15).splitlines()
    assert "(at most 3 malignant items of 20 malignant images and 9 items of 60 images;" in lines[0]
    assert lines[0].endswith(": A.")  # A2: 9 items in all, but 7 others where the images hold 6
    assert "at most 6 malignant items of 40 malignant images and masks and 18 items of 120 files" in lines[1]
    assert lines[1].endswith(": A2 (1 malignant of 8 items), B (5 malignant of 17 items), F (4 malignant of 6 items).")
    assert lines[2].endswith(": C, D.")  # C: 24 others where a pooled part holds 12; D: 30 malignant
    assert lines[3].endswith(": E.")  # G printed no rates: left out
    none_fit = implied.iloc[6:][["consistent"]]  # implied_test_sets gives no count columns when no setting fits
    assert pr.test_part_readings(none_fit, records, "malignant", 0.15).splitlines()[0].endswith(": none.")
