from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from oncorepro.errors import DataError
from oncorepro.report import (PAPER_VALUES_DIR, PaperValue, compare, compare_counts, count_settings, format_table,
                              judged_verdicts, load_paper, load_paper_values, metric_kind, paper_settings, paper_value,
                              verdict_sentence)

NAN = float("nan")


def ours(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["setting", "metric", "mean", "low", "high", "n"])


def value(metric: str = "accuracy", paper: float = 0.9897, relation: str = "=", setting: str = "S") -> PaperValue:
    return PaperValue(paper="p", item="Table 7", setting=setting, metric=metric, value=paper, relation=relation)


def verdict(paper_value: PaperValue, row: tuple | None = None) -> str:
    table = ours() if row is None else ours(row)
    return compare([paper_value], table)["verdict"].iloc[0]


# --- the packaged paper values ---------------------------------------------------------------------------------


def test_packaged_files_load_and_hold_the_headline_numbers():
    assert {p.stem for p in PAPER_VALUES_DIR.glob("*.yaml")} >= {"haj_ali_2026", "badoi_2025"}
    haj = {(v.item, v.setting, v.metric): v.value for v in load_paper("haj_ali_2026")}
    for item in ("Table 5", "Table 6", "Table 7"):
        assert haj[(item, "BUSI B-M + ROI + SMOTE", "accuracy")] == 0.9897
    assert haj[("Table 4", "MRI", "accuracy")] == 0.9955
    assert haj[("Section 3 text", "MRI", "train_seconds")] == 263
    assert haj[("Section 3 text", "BUSI B-M + ROI + SMOTE", "roc_auc")] == 0.9995
    assert haj[("Table 7", "BUSI B-M + ROI", "recall_macro")] == 0.9763
    badoi = {(v.item, v.setting, v.metric): v.value for v in load_paper("badoi_2025")}
    assert badoi[("Table 2", "Model 7''", "recall/malignant")] == 0.956
    assert badoi[("Section 3.3 text", "Model 7''", "recall/malignant")] == 0.935
    assert badoi[("Table 1", "Model 6'", "class_accuracy/malignant")] == 0.81


def test_haj_ali_split_counts_add_up_to_their_totals():
    counts = {v.setting: v.value for v in load_paper("haj_ali_2026") if v.metric == "count"}
    for dataset, classes in (("BUSI B-M", ("benign", "malignant")), ("MRI", ("healthy", "sick"))):
        def count(subset: str, label: str) -> float:
            return counts[f"{dataset} / {subset} / {label}"]

        for subset in ("all", "train", "val", "test"):
            assert sum(count(subset, c) for c in classes) == count(subset, "total")
        for c in (*classes, "total"):
            assert sum(count(s, c) for s in ("train", "val", "test")) == count("all", c)


def test_badoi_table_2_miss_rate_and_recall_are_complements():
    rates = defaultdict(dict)
    for v in load_paper("badoi_2025"):
        if v.item == "Table 2":
            rates[v.setting][v.metric] = v.value
    assert len(rates) == 12
    for model, row in rates.items():
        assert row["miss_rate/malignant"] + row["recall/malignant"] == pytest.approx(1, abs=1.5e-3), model


def test_paper_settings_and_values():
    paper = [PaperValue("p", "t", "Model 1", "epochs", 30), PaperValue("p", "t", "Model 1", "learning_rate", 1e-3),
             PaperValue("p", "t", "Model 2", "epochs", 50), PaperValue("p", "t", "Model 2", "learning_rate", 1e-4),
             PaperValue("p", "t", "Model 2", "segmentation_masks", 1), PaperValue("p", "t", "rule", "epochs", 8)]
    table = paper_settings(paper, ["epochs", "learning_rate", "segmentation_masks"],
                           required=["epochs", "learning_rate"])
    assert list(table.index) == ["Model 1", "Model 2"]
    assert table["epochs"].tolist() == [30, 50] and np.isnan(table.loc["Model 1", "segmentation_masks"])
    assert paper_value(paper, "Model 2", "learning_rate") == 1e-4
    with pytest.raises(KeyError, match="Model 3"):
        paper_value(paper, "Model 3", "epochs")


# --- loader errors ---------------------------------------------------------------------------------------------


GOOD = "paper: demo\nvalues:\n  - {item: Table 1, setting: S, metric: accuracy, value: 0.9}\n"


@pytest.mark.parametrize("entry, problem", [
    ("{item: Table 7, setting: S, metric: accuracy, value: '98.97%'}", "finite number"),
    ("{item: Table 7, setting: S, metric: accuracy, value: 98.97}", "fraction"),
    ("{item: Table 7, setting: S, value: 0.9}", "lacks metric"),
    ("{item: Table 7, setting: S, metric: accuracy, value: 0.9, source: p.3}", "unknown key"),
    ("{item: Table 7, setting: S, metric: accuracy, value: 0.9, relation: '<='}", "relation"),
    ("{item: Table 1, setting: S, metric: accuracy, value: 0.8}", "repeats"),
    ("{item: Table 7, setting: S, metric: count, value: -3}", "negative"),
    ("just text", "mapping"),
])
def test_malformed_entry_names_the_file_and_the_entry(tmp_path, entry, problem):
    path = tmp_path / "demo.yaml"
    path.write_text(GOOD + f"  - {entry}\n")
    with pytest.raises(DataError, match=problem) as caught:
        load_paper_values(path)
    message = str(caught.value)
    assert str(path) in message and "entry 2" in message


def test_unreadable_files_are_reported_with_their_path(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("paper: x\nvalues: [ {item: 1\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load_paper_values(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- 1\n- 2\n")
    with pytest.raises(DataError, match="wrong.yaml.*'paper: <name>'"):
        load_paper_values(wrong)
    with pytest.raises(DataError, match="not found"):
        load_paper_values(tmp_path / "absent.yaml")


def test_loaded_values_carry_defaults(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(GOOD + "  - {item: Text, setting: S, metric: train_seconds, value: 263, relation: '~',"
                           " note: 4 min 23 s}\n")
    first, second = load_paper_values(path)
    assert first == PaperValue("demo", "Table 1", "S", "accuracy", 0.9)
    assert (second.relation, second.note, second.value) == ("~", "4 min 23 s", 263.0)


# --- verdicts --------------------------------------------------------------------------------------------------


def test_verdict_not_run_without_our_value():
    assert verdict(value()) == "not run"
    assert verdict(value(), ("S", "accuracy", NAN, NAN, NAN, 0)) == "not run"


def test_verdict_reproduced_inside_our_interval():
    assert verdict(value(paper=0.9897), ("S", "accuracy", 0.95, 0.92, 0.99, 5)) == "reproduced"


def test_verdict_close_within_two_points_outside_the_interval():
    assert verdict(value(paper=0.9897), ("S", "accuracy", 0.975, 0.97, 0.98, 5)) == "close"


def test_verdict_paper_higher_or_lower():
    assert verdict(value(paper=0.9897), ("S", "accuracy", 0.90, 0.88, 0.92, 5)) == "paper higher"
    assert verdict(value(paper=0.866), ("S", "accuracy", 0.95, 0.93, 0.97, 5)) == "paper lower"


def test_verdict_marks_single_runs_and_uses_their_bootstrap_interval():
    assert verdict(value(paper=0.9897), ("S", "accuracy", 0.95, 0.91, 0.99, 1)) == "reproduced (1 run)"
    assert verdict(value(paper=0.9897), ("S", "accuracy", 0.98, NAN, NAN, 1)) == "close (1 run)"
    assert verdict(value(paper=0.9897), ("S", "accuracy", 0.90, NAN, NAN, 1)) == "paper higher (1 run)"


def test_verdict_for_counts_allows_one_off():
    assert verdict(value("count", 31), ("S", "count", 32, NAN, NAN, 1)) == "reproduced (1 run)"
    assert verdict(value("count", 647), ("S", "count", 780, 780, 780, 3)) == "paper lower"
    assert verdict(value("count", 1578), ("S", "count", 780, 780, 780, 3)) == "paper higher"


def test_verdict_for_timings_and_configuration_is_reference_only():
    assert verdict(value("train_seconds", 121.36), ("S", "train_seconds", 900.0, 850.0, 950.0, 3)) == "reference only"
    assert verdict(value("learning_rate", 1e-4), ("S", "learning_rate", 1e-3, NAN, NAN, 2)) == "reference only"


def test_verdict_for_bounds():
    below = value("test_loss_min", 0.2, relation="<")
    assert verdict(below, ("S", "test_loss_min", 0.15, 0.1, 0.2, 3)) == "reproduced"
    assert verdict(below, ("S", "test_loss_min", 0.21, 0.18, 0.24, 3)) == "close"
    assert verdict(below, ("S", "test_loss_min", 0.45, 0.4, 0.5, 3)) == "paper lower"
    above = value("test_accuracy_early", 0.8, relation=">")
    assert verdict(above, ("S", "test_accuracy_early", 0.7, 0.65, 0.75, 3)) == "paper higher"
    assert verdict(above, ("S", "test_accuracy_early", 0.85, 0.8, 0.9, 3)) == "reproduced"


def test_compare_keeps_paper_order_and_rejects_ambiguous_input():
    paper = [value(setting="A"), value("f1_macro", 0.9882, setting="A"), value(setting="B")]
    table = compare(paper, ours(("A", "accuracy", 0.97, 0.95, 0.99, 3), ("B", "accuracy", 0.5, 0.4, 0.6, 3)))
    assert list(table["verdict"]) == ["reproduced", "not run", "paper higher"]
    assert list(table.columns) == ["item", "setting", "metric", "paper", "relation", "ours", "ci_low", "ci_high", "n",
                                   "verdict", "note"]
    with pytest.raises(ValueError, match="several rows"):
        compare(paper, ours(("A", "accuracy", 0.9, 0.8, 1.0, 3), ("A", "accuracy", 0.8, 0.7, 0.9, 3)))
    with pytest.raises(ValueError, match="lacks"):
        compare(paper, pd.DataFrame({"setting": ["A"], "metric": ["accuracy"]}))


def test_verdict_sentences_count_verdicts_without_the_single_run_mark():
    table = pd.DataFrame({"verdict": ["reproduced", "not run", "paper higher (1 run)", "reference only",
                                      "reproduced (1 run)"]})
    assert verdict_sentence(table) == ("**Verdict** over the 5 paper values above: 2 reproduced, 1 not run, "
                                       "1 paper higher, 1 reference only.")
    assert judged_verdicts(table) == "Of the 3 paper values judged here, 2 reproduced, 1 paper higher; 1 not run."
    assert judged_verdicts(table.iloc[[3]]).startswith("No paper value of this table could be judged")
    assert verdict_sentence(table.iloc[:0]) == "*No paper value to compare here.*"


def test_counts_compare_as_exact_numbers():
    counts = pd.DataFrame({"train": [10, 20, 30], "test": [2, 4, 6], "total": [12, 24, 36]},
                          index=pd.Index(["Benign", "Malignant", "Total"], name="label"))
    ours = count_settings(counts, "BUSI", {"all": "total", "test": "test"})
    assert list(ours) == ["BUSI / all / benign", "BUSI / test / benign", "BUSI / all / malignant",
                          "BUSI / test / malignant", "BUSI / all / total", "BUSI / test / total"]
    paper = [value("count", 23, setting="BUSI / all / malignant"), value("count", 40, setting="BUSI / all / total"),
             value("accuracy", 0.9, setting="BUSI / all / total"), value("count", 5, setting="elsewhere")]
    table = compare_counts(paper, ours)
    assert table["verdict"].tolist() == ["reproduced", "paper higher", "not run"]  # the accuracy is no count
    assert list(table.columns) == ["item", "setting", "metric", "paper", "relation", "ours", "verdict", "note"]


# --- formatting ------------------------------------------------------------------------------------------------


def test_metric_kind():
    assert metric_kind("recall/malignant") == "fraction"
    assert metric_kind("count") == "count"
    assert metric_kind("eval_seconds") == "seconds"
    assert metric_kind("test_loss_max_epoch") == "reference"
    assert metric_kind("parameter_count") == "reference"
    assert metric_kind("test_loss_final") == "loss"


def test_format_table_prints_percentages_with_intervals_and_units():
    paper = [value(paper=0.9897, setting="A"), value("count", 31, setting="A"),
             value("train_seconds", 121.36, setting="A"), value("test_loss_min", 0.2, relation="<", setting="A"),
             value("precision", 0.9, setting="B")]
    table = compare(paper, ours(("A", "accuracy", 0.979, 0.961, 0.992, 5), ("A", "count", 31, NAN, NAN, 1),
                                ("A", "train_seconds", 300.5, 290.0, 310.0, 5),
                                ("A", "test_loss_min", 0.153, NAN, NAN, 1)))
    text = format_table(table, ["paper", "ours"])
    assert "ci_low" not in text.columns and "relation" not in text.columns
    assert list(text["ours"]) == ["97.9% (96.1–99.2)", "31", "300.50 s (290.00–310.00)", "0.15", "—"]
    assert list(text["paper"]) == ["98.97%", "31", "121.36 s", "<0.20", "90.0%"]
    assert list(text["n"]) == ["5", "1", "5", "1", "0"]
    assert all(isinstance(cell, str) for cell in text.drop(columns=["note"]).to_numpy().ravel())


def test_format_table_on_a_summary_without_metric_column():
    summary = pd.DataFrame({"setting": ["ROI"], "mean": [0.9412], "low": [0.9], "high": [0.97], "n": [5]})
    text = format_table(summary, ["mean"], digits=2)
    assert text.loc[0, "mean"] == "94.12% (90.00–97.00)" and list(text.columns) == ["setting", "mean", "n"]
    assert np.isclose(summary.loc[0, "mean"], 0.9412)  # the input is left as it was
