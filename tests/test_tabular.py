"""Tabular models: the paper's grids, the split protocol, nested cross-validation without leakage, known-answer
data, and the stage comparison on the real sheet (read-only; skipped only where the folder is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import ParameterGrid

from oncorepro import clinical, tabular
from oncorepro.augment import leakage, noisy_rows, split_plan
from oncorepro.data import load_dataset
from oncorepro.data.synthetic import write_synthetic
from oncorepro.paths import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data"
FITS: list[frozenset[int]] = []


class RowRecorder(ClassifierMixin, BaseEstimator):
    """Predicts the training class frequencies; records the row ids (column 0) of every fit."""

    def __init__(self, strength: int = 0):
        self.strength = strength

    def fit(self, X, y):
        FITS.append(frozenset(np.asarray(X)[:, 0].astype(int).tolist()))
        self.classes_ = np.unique(y)
        self.prior_ = np.bincount(y, minlength=len(self.classes_)) / len(y)
        return self

    def predict_proba(self, X):
        return np.tile(self.prior_, (len(X), 1))

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@pytest.fixture(scope="module")
def real_parsed() -> pd.DataFrame:
    folder = SHARED / "breast_lesions_usg"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return clinical.parse_records(load_dataset("breast_lesions_usg", SHARED))


def test_paper_grids_are_table_1():
    grids = tabular.PAPER_GRIDS
    assert grids["Random Forest"] == {"n_estimators": [50, 100, 200], "max_depth": [10, 20, None]}
    assert grids["SVM (RBF Kernel)"] == {"C": [0.1, 1, 10], "gamma": [0.01, 0.1, 1]}
    assert grids["KNN"] == {"n_neighbors": [3, 5, 7]}
    assert grids["Gradient Boosting"]["learning_rate"] == [0.01, 0.1, 0.2]
    assert grids["MLPClassifier"] == {"hidden_layer_sizes": [(50, 50), (100,), (50, 50, 50)]}
    assert sum(len(ParameterGrid(grid)) for grid in grids.values()) == 57
    models = tabular.paper_models(seed=0)
    assert list(models) == [*grids, "Logistic Regression", "Naive Bayes"]
    assert sum(len(ParameterGrid(grid)) for _, grid in models.values()) == 61
    for estimator, grid in models.values():  # every grid point is a valid setting of its pipeline
        for point in ParameterGrid(grid):
            clone(estimator).set_params(**point)
    assert models["XGBoost"][1]["model__n_estimators"] == [50, 100, 200]
    assert models["SVM (RBF Kernel)"][1]["model__gamma"] == [0.01, 0.1, 1]
    small = tabular.paper_models(seed=0, grid="small")
    assert all(len(ParameterGrid(grid)) == 1 for _, grid in small.values())


def test_nested_cv_never_shows_the_grid_a_test_row_and_keeps_cases_together():
    rng = np.random.default_rng(0)
    cases = np.concatenate([np.repeat(np.arange(30), 2), np.arange(30, 40)])  # 30 cases with two rows
    labels = (cases % 2).astype(int)
    X = np.column_stack([np.arange(len(cases)), rng.normal(size=len(cases))])
    FITS.clear()
    models = {"recorder": (RowRecorder(), {"strength": [0, 1]})}
    table = tabular.nested_cv(X, labels, cases, seed=0, outer=5, inner=3, models=models, n_boot=50)
    folds = table.loc[0, "fold"]
    assert (folds >= 0).all() and sorted(set(folds)) == [0, 1, 2, 3, 4]
    assert all(len(set(folds[cases == case])) == 1 for case in np.unique(cases))
    per_fold = 3 * 2 + 1  # inner folds x candidates, then the refit
    assert len(FITS) == 5 * per_fold
    for index, rows in enumerate(FITS):
        fold = index // per_fold
        train = set(np.flatnonzero(folds != fold).tolist())
        assert rows <= train, f"fit {index} of fold {fold} saw test rows {sorted(rows - train)}"
        if index % per_fold == per_fold - 1:
            assert rows == train  # the refit uses the whole outer training fold
    assert table.loc[0, "n_cases"] == 40 and table.loc[0, "proba"].shape == (70, 2)


def test_known_answer_and_pure_noise():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1], 30)
    informative = np.column_stack([labels, rng.normal(size=(60, 3))])
    noise = rng.normal(size=(60, 4))
    names = ["Decision Tree", "Logistic Regression", "Naive Bayes"]
    groups = np.arange(60)
    solved = tabular.nested_cv(informative, labels, groups, seed=0, inner=3, grid="small", models=names, n_boot=200)
    assert (solved["accuracy"] == 1.0).all() and (solved["roc_auc"] == 1.0).all()
    chance = tabular.nested_cv(noise, labels, groups, seed=0, inner=3, grid="small", models=names, n_boot=200)
    assert chance["accuracy"].between(0.3, 0.7).all(), chance["accuracy"].tolist()
    assert ((chance["roc_auc_low"] < 0.5) & (chance["roc_auc_high"] > 0.5)).all()


def test_paper_protocol_on_the_synthetic_sheet(tmp_path):
    write_synthetic("breast_lesions_usg", tmp_path, n_per_class=12, size=32, seed=0)
    parsed = clinical.parse_records(load_dataset("breast_lesions_usg", tmp_path))
    X, _ = clinical.feature_matrix(parsed, "all")
    y = clinical.target(parsed)
    names = ["Decision Tree", "Naive Bayes", "KNN"]
    balanced = tabular.paper_protocol(X, y, seed=0, cv=3, grid="small", models=names)
    assert balanced["rank"].tolist() == [1, 2, 3] and balanced["accuracy"].is_monotonic_decreasing
    assert (balanced["n_test"] == 8).all()  # 3 classes x 12 after balancing, 20% test: ceil(7.2)
    assert (balanced["test_rows_from_train_cases"] > 0).all()
    assert balanced.loc[0, "proba"].shape == (8, 3) and set(balanced.loc[0, "case"]) <= set(parsed.index)
    plain = tabular.paper_protocol(X, y, seed=0, cv=3, grid="small", models=names, balance=False)
    assert (plain["n_test"] == 6).all() and (plain["test_rows_from_train_cases"] == 0).all()


def test_balancing_explains_the_papers_93_test_rows(real_parsed):
    X, _ = clinical.feature_matrix(real_parsed, "all")
    y = clinical.target(real_parsed)
    plan = split_plan(X.index, y, order="before_split", seed=0)
    features = noisy_rows(X, plan, seed=0).to_numpy()
    labels, source = plan["label"].to_numpy(), plan["source"].to_numpy()
    assert np.bincount(labels).tolist() == [154, 154, 154]
    assert np.array_equal(features[:256], X.to_numpy(), equal_nan=True)
    assert set(source[labels == 2]) == {"case045", "case061", "case209", "case213"}
    test = labels[(plan["part"] == "test").to_numpy()]
    assert len(test) == 93 and np.bincount(test).tolist() == [31, 31, 31]
    protocol = tabular.paper_protocol(X, y, seed=0, cv=3, grid="small", models=["Naive Bayes"])
    assert protocol.loc[0, "n_test"] == 93 and protocol.loc[0, "test_rows_from_train_cases"] == 46  # seed 0
    assert leakage(plan) == {"test_rows": 93, "test_cases": 65, "test_rows_from_train_cases": 46}
    # Unbalanced, the rare normal class (3 training cases) still fits, Platt-scaled SVM included.
    plain = tabular.paper_protocol(X, y, seed=0, cv=3, grid="small", balance=False, models=["SVM (RBF Kernel)"])
    assert plain.loc[0, "n_test"] == 52 and plain.loc[0, "proba"].shape == (52, 3)


def test_feature_importances_find_the_column_that_holds_the_label():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 25)
    X = pd.DataFrame({"Key=yes": labels, "Key=no": 1 - labels, "Age": rng.normal(50, 10, 50),
                      "Signs=palpable": rng.integers(0, 2, 50)}).astype(float)
    table = tabular.feature_importances(X, labels, seed=0, n_splits=3, n_repeats=3)
    assert table["column"].tolist()[0] == "Key"
    assert set(table["column"]) == {"Key", "Age", "Signs"}
    assert table.set_index("column").loc["Key", "n_features"] == 2
    assert table["impurity"].sum() == pytest.approx(1.0)
    assert table.loc[0, "permutation"] > 0.3


def test_leaky_columns_score_higher_on_the_real_sheet(real_parsed):
    table = tabular.stage_comparison(real_parsed, seed=0, stages=("before_imaging", "all"), grid="small",
                                     inner=3, models=["Logistic Regression", "Decision Tree"], n_boot=200)
    assert (table["n_cases"] == 252).all()
    assert table["excluded"].str.startswith("4 case(s) (case045, case061, case209, case213) excluded: normal scan without").all()
    wide = table.pivot(index="model", columns="stage", values=["accuracy", "roc_auc"])
    assert (wide[("accuracy", "all")] > wide[("accuracy", "before_imaging")] + 0.15).all(), wide
    assert (wide[("roc_auc", "all")] > wide[("roc_auc", "before_imaging")] + 0.15).all(), wide
    assert wide.loc["Logistic Regression", ("roc_auc", "all")] > 0.99


def test_fit_search_counts_fits_stopped_at_their_iteration_cap_instead_of_printing_them():
    import warnings

    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    short = tabular.grid_search(MLPClassifier(max_iter=3, random_state=0), {"alpha": [1e-4, 1e-2]},
                                StratifiedKFold(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes to the page
        assert tabular.fit_search(short, X, y) == 2 * 2 + 1  # 2 candidates x 2 folds + the refit
    enough = tabular.grid_search(MLPClassifier(max_iter=2000, random_state=0), {"alpha": [1e-4]},
                                 StratifiedKFold(2))
    assert tabular.fit_search(enough, X, y) == 0


def test_iteration_cap_sentence_names_the_capped_models():
    table = pd.DataFrame({"model": ["MLPClassifier", "MLPClassifier", "XGBoost"], "not_converged": [3, 2, 0]})
    assert "MLPClassifier 5" in tabular.iteration_cap_sentence(table)
    assert "XGBoost" not in tabular.iteration_cap_sentence(table)
    assert tabular.iteration_cap_sentence(table.assign(not_converged=0)).startswith("Every fit converged")
