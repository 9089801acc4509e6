"""Fusion on tiny synthetic tables where the right answer is known: which block carries the class, what the mean
and the vote of given probabilities are, that no case is in two folds, and how many test rows the paper's order
leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oncorepro.fusion import (align, evaluate_plan, feature_fusion, late_fusion, out_of_fold_probabilities,
                              raw_pixel_features, run_embeddings, run_probabilities, seen_by_cnn, split_fusion,
                              summary)
from oncorepro.records import Record

N = 60
CASES = pd.Index([f"case{i:03d}" for i in range(N)], name="case_id")
Y = pd.Series(np.r_[np.zeros(36, int), np.ones(24, int)], index=CASES)  # benign-heavy, like the real set


def _blocks(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    clinical = pd.DataFrame(rng.normal(size=(N, 3)), index=CASES, columns=["age", "shape", "margin"])  # noise
    image = pd.DataFrame({"signal": Y.to_numpy() * 2.0 + rng.normal(scale=0.3, size=N),
                          "noise": rng.normal(size=N)}, index=CASES)
    return clinical, image


def test_align_keeps_shared_cases_and_lists_the_rest():
    clinical, image = _blocks()
    joined, labels, excluded = align({"clinical": clinical, "image": image.iloc[2:]}, Y)
    assert len(joined) == N - 2 and list(joined.columns[:1]) == ["clinical:age"]
    assert excluded["case"].tolist() == ["case000", "case001"]
    assert excluded["reason"].str.contains("image").all()
    assert labels.index.equals(joined.index)


def test_early_fusion_finds_the_image_signal_without_leakage():
    clinical, image = _blocks()
    fused = feature_fusion({"clinical": clinical, "image": image}, Y, protocol="leakage_free", seed=0,
                           models=["Extra Trees"], grid="small", n_boot=100)
    alone = feature_fusion({"clinical": clinical}, Y, protocol="leakage_free", seed=0, models=["Extra Trees"],
                           grid="small", n_boot=100)
    assert fused.loc[0, "roc_auc"] > 0.95 and fused.loc[0, "roc_auc_low"] > 0.85
    assert alone.loc[0, "roc_auc_low"] < 0.5 < alone.loc[0, "roc_auc_high"]  # noise alone: chance
    assert sorted(fused.loc[0, "case"]) == sorted(CASES)  # every case predicted exactly once
    assert fused.loc[0, "test_rows_from_train_cases"] == 0 and fused.loc[0, "n_features"] == 5


def test_paper_protocol_counts_test_rows_copied_from_training_cases():
    clinical, image = _blocks()
    fused = feature_fusion({"clinical": clinical, "image": image}, Y, protocol="paper", seed=0,
                           models=["AdaBoost"], grid="small", n_boot=100)
    row = fused.iloc[0]
    assert row["n_test"] == 15  # 72 balanced rows (36 + 36), 20% test
    assert row["test_rows_from_train_cases"] > 0  # noisy copies of training cases in the test part
    assert row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"]


def test_late_aggregation_and_voting_give_the_mean_and_the_majority():
    clinical = pd.DataFrame([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]], index=CASES[:4])
    image = pd.DataFrame([[0.6, 0.4], [0.3, 0.7], [0.45, 0.55], [0.2, 0.8]], index=CASES[:4])
    third = pd.DataFrame([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9], [0.4, 0.6]], index=CASES[:4])
    labels = pd.Series([0, 1, 1, 0], index=CASES[:4])
    table = late_fusion({"clinical": clinical, "image": image, "third": third}, labels, protocol="leakage_free",
                        seed=0, rules=["Aggregation", "Voting"], n_boot=20)
    mean = table.loc[table["model"] == "Aggregation", "proba"].iloc[0]
    assert np.allclose(mean, (clinical.to_numpy() + image.to_numpy() + third.to_numpy()) / 3)
    vote = table.loc[table["model"] == "Voting", "proba"].iloc[0]
    assert vote.argmax(1).tolist() == [0, 1, 1, 1]  # case 3: clinical says 0, image and third say 1
    assert np.allclose(vote[0], [1, 0], atol=1e-5)


def test_late_stacker_learns_which_modality_to_trust():
    rng = np.random.default_rng(1)
    truth = Y.to_numpy()
    informative = np.clip(truth * 0.6 + 0.2 + rng.normal(scale=0.05, size=N), 0, 1)
    useless = rng.uniform(size=N)
    probas = {"image": pd.DataFrame({"p0": 1 - informative, "p1": informative}, index=CASES),
              "clinical": pd.DataFrame({"p0": 1 - useless, "p1": useless}, index=CASES)}
    free = late_fusion(probas, Y, protocol="leakage_free", seed=0, rules=["Gradient Boosting"], n_boot=100)
    assert free.loc[0, "roc_auc"] > 0.95 and sorted(free.loc[0, "case"]) == sorted(CASES)
    paper = late_fusion(probas, Y, protocol="paper", seed=0, rules=["Gradient Boosting", "Aggregation"], n_boot=100)
    assert paper["n_test"].tolist() == [12, 12] and list(paper.loc[0, "case"]) == list(paper.loc[1, "case"])
    with pytest.raises(ValueError, match="unknown rule"):
        late_fusion(probas, Y, protocol="paper", seed=0, rules=["Stacking"])


def test_out_of_fold_probabilities_and_pending_image_runs():
    row = {"proba": np.array([[0.2, 0.8], [0.7, 0.3]]), "case": np.array(["case001", "case002"])}
    frame = out_of_fold_probabilities(row)
    assert frame.loc["case002", "p0"] == 0.7
    pending = type("Outcome", (), {"result": None})()
    assert run_probabilities([pending], ("benign", "malignant")) is None


def _png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_raw_pixel_features_merge_masks_by_maximum_and_zero_the_rest(tmp_path):
    image = np.full((64, 64, 3), 120, np.uint8)
    first = np.zeros((64, 64), np.uint8)
    first[:16, :16] = 255
    second = np.zeros((64, 64), np.uint8)
    second[48:, 48:] = 255
    record = Record("test", "case001", _png(tmp_path / "case001.png", image), "benign",
                    mask_paths=(_png(tmp_path / "m1.png", first), _png(tmp_path / "m2.png", second)))
    features = raw_pixel_features([record], f"test-{tmp_path.name}", size=64, pixels=4)
    grid = features.loc["case001"].to_numpy().reshape(4, 4)
    assert grid[0, 0] == pytest.approx(120) and grid[3, 3] == pytest.approx(120)  # both lesions kept
    assert grid[0, 3] == 0 and grid[1, 1] == 0 and grid.sum() == pytest.approx(240)  # everything else black


def test_evaluate_plan_reports_the_leak_of_the_paper_order_only():
    from oncorepro.augment import split_plan

    clinical, image = _blocks()
    table = clinical.join(image)
    labels = Y.to_numpy()
    paper = evaluate_plan(table, split_plan(CASES, labels, order="before_split", seed=0), seed=0,
                          models=["Decision Tree"], grid="small", n_boot=50)
    clean = evaluate_plan(table, split_plan(CASES, labels, order="train_only", seed=0), seed=0,
                          models=["Decision Tree"], grid="small", n_boot=50)
    assert paper.loc[0, "test_rows_from_train_cases"] > 0 and paper.loc[0, "n_test"] == 15
    assert clean.loc[0, "test_rows_from_train_cases"] == 0 and clean.loc[0, "n_test"] == 12
    assert clean.loc[0, "roc_auc"] > 0.9  # the image column carries the class


def test_run_embeddings_read_the_stored_embeddings_or_report_none():
    embeddings = pd.DataFrame({"id": ["case001", "case002"], "part": ["train", "test"], "emb_0": [1.0, 3.0],
                               "emb_1": [2.0, 4.0]})
    predictions = pd.DataFrame({"evaluation": ["test", "train"], "id": ["case002", "case001"], "label": [1, 0],
                                "p_benign": [0.2, 0.9], "p_malignant": [0.8, 0.1]})
    done = type("Outcome", (), {"key": "k", "result": type("Result", (), {"embeddings": embeddings,
                                                                          "predictions": predictions})()})()
    table = run_embeddings(done)
    assert table.loc["case002"].tolist() == ["test", 3.0, 4.0] and table.index.name == "case_id"
    held_out = run_probabilities([done], ("benign", "malignant"))
    assert held_out.index.tolist() == ["case002"] and held_out.loc["case002", "p_malignant"] == 0.8
    every = run_probabilities([done], ("benign", "malignant"), ("train", "test"))
    assert every.loc["case001"].tolist() == [0.9, 0.1] and len(every) == 2
    older = type("Outcome", (), {"key": "old", "result": type("Result", (), {
        "predictions": predictions[predictions["evaluation"] == "test"].assign(p_malignant=0.6)})()})()
    assert run_probabilities([done, older], ("benign", "malignant")).loc["case002", "p_malignant"] == 0.7  # mean
    with pytest.raises(ValueError, match=r"run old stored no predictions for \['train'\].*embed=True"):
        run_probabilities([done, older], ("benign", "malignant"), ("train", "test"))
    unmasked = pd.concat([predictions, predictions.iloc[:1].assign(evaluation="test_unmasked")], ignore_index=True)
    both = type("Outcome", (), {"key": "k2", "result": type("Result", (), {"predictions": unmasked})()})()
    with pytest.raises(ValueError, match=r"case\(s\) \['case002'\] predicted in more than one"):
        run_probabilities([both], ("benign", "malignant"), ("test", "test_unmasked"))
    bare = type("Result", (), {"embeddings": pd.DataFrame()})()
    assert run_embeddings(type("Outcome", (), {"result": bare})()) is None
    assert run_embeddings(type("Outcome", (), {"result": None})()) is None


def test_split_fusion_fits_on_training_cases_and_scores_the_held_out_ones():
    clinical, image = _blocks()
    parts = pd.Series(np.where(np.arange(N) % 5 == 0, "test", "train"), index=CASES)
    fused = split_fusion({"clinical": clinical, "image": image}, Y, parts, seed=0,
                         models=["Logistic Regression"], grid="small", n_boot=100)
    row = fused.iloc[0]
    assert row["protocol"] == "leakage_free" and row["n_test"] == 12 and row["n_cases"] == N
    assert sorted(row["case"]) == sorted(CASES[::5])  # exactly the held-out cases are scored
    assert row["roc_auc"] > 0.95  # the image column carries the class
    noise_only = split_fusion({"clinical": clinical}, Y, parts, seed=0, models=["Logistic Regression"],
                              grid="small", n_boot=100)
    assert noise_only.loc[0, "roc_auc"] < 0.8
    with pytest.raises(ValueError, match="cases without a part"):
        split_fusion({"clinical": clinical}, Y, parts.iloc[1:], seed=0, models=["Logistic Regression"], grid="small")


def test_fusion_names_the_cases_a_block_lacks_and_refuses_unknown_parts():
    clinical, image = _blocks()
    parts = pd.Series(np.where(np.arange(N) % 5 == 0, "test", "train"), index=CASES)
    fused = split_fusion({"clinical": clinical, "image": image.iloc[3:]}, Y, parts, seed=0,
                         models=["Logistic Regression"], grid="small", n_boot=50)
    assert fused.loc[0, "n_excluded"] == 3 and fused.loc[0, "n_cases"] == N - 3
    assert fused.loc[0, "excluded"] == "3 case(s) (case000, case001, case002) excluded: no row in image"
    assert summary([fused]).loc[0, "n_excluded"] == 3
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['tst'\]"):
        split_fusion({"clinical": clinical}, Y, parts.replace("test", "tst"), seed=0,
                     models=["Logistic Regression"], grid="small")


def test_seen_by_cnn_counts_the_evaluated_rows_of_cases_the_cnn_trained_on():
    probas = {"clinical": pd.DataFrame({"p0": [0.9, 0.2, 0.6, 0.3], "p1": [0.1, 0.8, 0.4, 0.7]}, index=CASES[:4]),
              "image": pd.DataFrame({"p0": [0.8, 0.4, 0.7, 0.1], "p1": [0.2, 0.6, 0.3, 0.9]}, index=CASES[:4])}
    labels = pd.Series([0, 1, 0, 1], index=CASES[:4])
    table = seen_by_cnn(late_fusion(probas, labels, protocol="leakage_free", seed=0, rules=["Aggregation"], n_boot=20),
                        trained_on=[CASES[0], CASES[3], "not-a-case"])
    assert table.loc[0, "test_rows_seen_by_cnn"] == 2 and table.loc[0, "n_test"] == 4
    assert summary([table]).loc[0, "test_rows_seen_by_cnn"] == 2
    scores = pd.DataFrame({"p0": np.linspace(0.1, 0.9, N), "p1": np.linspace(0.9, 0.1, N)}, index=CASES)
    paper = seen_by_cnn(late_fusion({"clinical": scores, "image": scores}, Y, protocol="paper", seed=0,
                                    rules=["Aggregation"], n_boot=20),
                        trained_on=CASES[:30])  # only the evaluated (test) cases count, not every aligned case
    tested = set(paper.loc[0, "case"])
    assert paper.loc[0, "n_test"] == 12 and paper.loc[0, "test_rows_seen_by_cnn"] == len(tested & set(CASES[:30]))
    assert 0 < paper.loc[0, "test_rows_seen_by_cnn"] < 12


def test_fusions_over_a_pending_cnn_run_wait_for_it():
    from oncorepro import fusion_runs
    from oncorepro.runner import RunOutcome
    from oncorepro.spec import RunSpec

    pending = RunOutcome(RunSpec(dataset="breast_lesions_usg", classes=("benign", "malignant"), embed=True), "k", None)
    labels = pd.Series([0, 1], index=["case001", "case002"])
    clinical = pd.DataFrame({"Age": [40.0, 60.0]}, index=labels.index)
    assert fusion_runs.late_fusions(pending, clinical, labels, seed=0, grid="small", n_boot=10) is None
    assert fusion_runs.intermediate_fusions(pending, clinical, labels, seed=0, grid="small", n_boot=10) is None


def test_early_fusions_run_both_protocols_and_the_before_imaging_set(monkeypatch):
    from oncorepro import fusion_runs
    from oncorepro.report import PaperValue

    clinical, image = _blocks()
    tables, before = fusion_runs.early_fusions(clinical, clinical[["age"]], image, Y, seed=0, grid="small", n_boot=50)
    assert [t["protocol"].iloc[0] for t in tables] == ["paper", "leakage_free"]
    assert set(tables[1]["model"]) == {"Extra Trees", "AdaBoost"} and (tables[1]["roc_auc"] > 0.9).all()
    assert (before["protocol"] == "leakage_free, before imaging only").all() and (before["n_features"] == 3).all()
    shown = []
    monkeypatch.setattr(fusion_runs, "display", shown.append)
    paper = [PaperValue(paper="p", item="Table 4", setting="fusion / early / AdaBoost", metric="roc_auc", value=0.99),
             PaperValue(paper="p", item="Table 4", setting="fusion / late / Aggregation", metric="roc_auc", value=0.99)]
    fusion_runs.table4(paper, {"early": tables, "late": None})
    verdicts = [table for table in shown if isinstance(table, pd.DataFrame)]
    assert len(verdicts) == 2 and all(t["verdict"].str.startswith("not run").sum() == 1 for t in verdicts)
