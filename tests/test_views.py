"""Notebook views on hand-made results: summaries over seeds, paper comparisons, pending runs."""

from __future__ import annotations

import pandas as pd

from oncorepro import views
from oncorepro.report import PaperValue
from oncorepro.results import Result
from oncorepro.runner import RunOutcome
from oncorepro.spec import RunSpec

SPEC = RunSpec(dataset="busi", classes=("benign", "malignant"), label="main")


def _outcome(seed: int, accuracy: float | None) -> RunOutcome:
    spec = SPEC.but(seed=seed)
    if accuracy is None:
        return RunOutcome(spec, f"k{seed}", None)
    result = Result(spec=spec, key=f"k{seed}", metrics={"test": {"accuracy": accuracy, "roc_auc": 0.9}}, ci={},
                    confusion={"test": [[5, 1], [1, 5]]}, timings={"train_seconds": 10.0 + seed}, provenance={},
                    exclusions=[{"id": "normal (1)", "reason": "class 'normal' is not part of this run"},
                                {"id": "normal (2)", "reason": "class 'normal' is not part of this run"},
                                {"id": "external:other:case9", "reason": "class 'normal' is not part of this run"}]
                    + [{"id": f"x{seed}", "reason": "group mixes labels"}] * (seed == 1),
                    explanations=pd.DataFrame({"evaluation": ["test"] * 3, "id": ["a", "b", "c"],
                                               "energy_in_mask": [0.5, None, None], "mask_area": [0.1, None, 0.2],
                                               "energy_ratio": [5.0, None, None], "pointing_game": [1.0, None, None],
                                               "note": ["", "no mask", "no heat"]}),
                    sanity=pd.DataFrame({"evaluation": "test", "id": ["a", "a", "b", "b"],
                                         "stage": ["head", "all", "head", "all"],
                                         "spearman": [0.9, 0.1, 0.7, None], "pearson": [0.8, 0.2, 0.6, None],
                                         "note": ["", "", "", "randomised map constant"]}))
    return RunOutcome(spec, result.key, result)


def test_summary_is_a_mean_with_a_clipped_interval_over_seeds():
    runs = [_outcome(0, 0.80), _outcome(1, 0.90), _outcome(2, 1.00)]
    row = views.summary(runs).set_index("metric").loc["accuracy"]
    assert row["mean"] == 0.9 and row["n"] == 3
    assert 0 <= row["low"] < 0.9 and row["high"] == 1.0  # the t-interval is clipped to the [0, 1] of a score


def test_compare_gives_verdicts_and_counts_pending_runs():
    paper = [PaperValue(paper="p", item="Table 5", setting="main", metric="accuracy", value=0.9),
             PaperValue(paper="p", item="Table 5", setting="main", metric="f1_macro", value=0.9),
             PaperValue(paper="p", item="Table 5", setting="main", metric="train_seconds", value=120.0)]
    runs = [_outcome(0, 0.85), _outcome(1, 0.95), _outcome(2, None)]
    table = views.compare(runs, paper, ["Table 5"])
    assert list(table["metric"]) == ["accuracy", "f1_macro"]  # timings only in views.timings
    assert table["verdict"].tolist() == ["reproduced", "not run"]
    assert table["paper"].tolist() == ["90.0%", "90.0%"]


def test_explanation_table_scores_what_it_can_and_counts_the_rest_by_reason():
    table = views.explanation_table([_outcome(0, 0.9), _outcome(1, 0.9)])
    row = table.loc[("main", "test")]
    assert row["images"] == 6 and row["scored"] == 2 and row["energy_ratio"] == 5.0
    assert row["mask_area"] == 0.1  # over the scored images only, as every other score
    assert row["no mask"] == 2 and row["no heat"] == 2 and table["no heat"].dtype.kind == "i"


def test_exclusions_lists_each_reason_with_its_records_and_seeds():
    table = views.exclusions([_outcome(0, 0.9), _outcome(1, 0.9), _outcome(2, None)]).set_index(["dataset", "reason"])
    normal = table.loc[("busi", "class 'normal' is not part of this run")]
    assert (normal["records"], normal["seeds"], normal["ids"]) == ("2", "0, 1", "normal (1), normal (2)")
    external = table.loc[("other", "class 'normal' is not part of this run")]
    assert (external["records"], external["ids"]) == ("1", "case9")
    assert table.loc[("busi", "group mixes labels"), "seeds"] == "1"


def test_randomisation_table_averages_each_stage_over_images_and_seeds():
    table = views.randomisation_table([_outcome(0, 0.9), _outcome(1, 0.9), _outcome(2, None)])
    head, full = table.loc[("main", "head")], table.loc[("main", "all")]
    assert head["spearman"] == 0.8 and head["images"] == 4 and head["seeds"] == 2 and head["constant maps"] == 0
    assert full["spearman"] == 0.1 and full["constant maps"] == 2  # the constant maps have no correlation


def test_explanation_tables_of_pending_runs_only_say_so():
    assert views.explanation_table([_outcome(2, None)]) is None
    assert views.randomisation_table([_outcome(2, None)]) is None


def test_provenance_says_which_runs_were_resumed_from_a_checkpoint():
    from oncorepro.study import _resumed

    assert _resumed({"train_seconds": 900.0, "wall_seconds": 950.0, "resumed_after_epoch": 0}) == ""
    assert _resumed({"train_seconds": 900.0, "wall_seconds": 200.0, "resumed_after_epoch": 17}) == "after epoch 17"
    assert _resumed({"train_seconds": 900.0, "wall_seconds": 200.0}) == "yes (epoch not recorded)"  # stored before
    assert _resumed({"train_seconds": 900.0, "wall_seconds": 950.0}) == ""


def test_timings_keep_each_device_apart_and_list_an_unrun_paper_value_once():
    paper = [PaperValue(paper="p", item="Table 6", setting="main", metric="train_seconds", value=120.0, relation="~"),
             PaperValue(paper="p", item="Table 6", setting="other", metric="train_seconds", value=60.0)]
    runs = [_outcome(0, 0.9), _outcome(1, 0.9), _outcome(2, 0.9), _outcome(3, None)]
    for outcome, device in zip(runs, ["CPU", "CPU", "GPU"]):
        outcome.result.provenance.update(device=device, precision="bf16")
    table = views.timings(runs, paper).set_index("our device")
    assert table.loc["CPU bf16", "ours"].startswith("10.50 s (")
    assert table.loc["CPU bf16", "runs"] == "2"  # seeds 0 and 1
    assert table.loc["GPU bf16", "ours"] == "12.00 s" and table.loc["GPU bf16", "runs"] == "1"
    assert table.loc["", "setting"] == "other" and table.loc["", "verdict"] == "not run"
    assert list(table["setting"]) == ["main", "main", "other"] and table["paper"].iloc[0] == "~120.00 s"
