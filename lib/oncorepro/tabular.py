"""Classifiers of the clinical spreadsheet (Aboulmira et al. 2025, Section III-F.1 and IV-B): the paper's
grid-searched models, its split protocol, and the nested, case-grouped cross-validation that replaces it.

Every model is a pipeline: median imputation (Age has 42 missing values; the paper says missing values were
imputed but not how) -> standardisation for the scale-sensitive models (SVM, KNN, MLP, logistic regression;
the paper does not say) -> the classifier. Fitting the imputer and scaler inside the pipeline keeps them
within each training fold. Single-threaded throughout (``n_jobs=1``): the machines running this are small.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.ensemble import (AdaBoostClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
                              RandomForestClassifier)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from xgboost import XGBClassifier

from .augment import NOISE, leakage, noisy_rows, split_plan
from .clinical import benign_vs_malignant, exclusion_note, feature_matrix, source_column, target
from .metrics import bootstrap_cis, classification_metrics

# Table 1 of the paper, transcribed: the GridSearchCV grid of each of its nine classifiers.
PAPER_GRIDS: dict[str, dict[str, list[Any]]] = {
    "Random Forest": {"n_estimators": [50, 100, 200], "max_depth": [10, 20, None]},
    "SVM (RBF Kernel)": {"C": [0.1, 1, 10], "gamma": [0.01, 0.1, 1]},
    "KNN": {"n_neighbors": [3, 5, 7]},
    "Decision Tree": {"max_depth": [10, 20, None]},
    "AdaBoost": {"n_estimators": [50, 100, 200]},
    "Gradient Boosting": {"n_estimators": [50, 100, 200], "learning_rate": [0.01, 0.1, 0.2]},
    "XGBoost": {"n_estimators": [50, 100, 200], "learning_rate": [0.01, 0.1, 0.2]},
    "Extra Trees": {"n_estimators": [50, 100, 200], "max_depth": [10, 20, None]},
    "MLPClassifier": {"hidden_layer_sizes": [(50, 50), (100,), (50, 50, 50)]},
}
# Models the Section IV-B text reports without a grid (its "SVC" is Table 1's SVM with the RBF kernel).
# Ours: logistic regression over the SVM's C values; Gaussian naive Bayes has no hyperparameter to tune.
TEXT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "Logistic Regression": {"C": [0.1, 1, 10]},
    "Naive Bayes": {},
}
# One candidate per model, for smoke runs on synthetic data (seconds, not minutes).
SMALL_GRIDS: dict[str, dict[str, list[Any]]] = {
    "Random Forest": {"n_estimators": [50], "max_depth": [None]},
    "SVM (RBF Kernel)": {"C": [1], "gamma": [0.1]},
    "KNN": {"n_neighbors": [5]},
    "Decision Tree": {"max_depth": [None]},
    "AdaBoost": {"n_estimators": [50]},
    "Gradient Boosting": {"n_estimators": [50], "learning_rate": [0.1]},
    "XGBoost": {"n_estimators": [50], "learning_rate": [0.1]},
    "Extra Trees": {"n_estimators": [50], "max_depth": [None]},
    "MLPClassifier": {"hidden_layer_sizes": [(50,)]},
    "Logistic Regression": {"C": [1]},
    "Naive Bayes": {},
}
SCALED = frozenset({"SVM (RBF Kernel)", "KNN", "MLPClassifier", "Logistic Regression"})
Models = Mapping[str, tuple[BaseEstimator, Mapping[str, list[Any]]]]


class PlattSVC(ClassifierMixin, BaseEstimator):
    """RBF-kernel SVC with Platt-scaled probabilities, as ``SVC(probability=True)`` gave them before scikit-learn
    1.9 deprecated it: ``CalibratedClassifierCV(SVC(), ensemble=False)`` over min(5, smallest class count)
    stratified folds, so the rare normal class (4 cases) still fits."""

    def __init__(self, C: float = 1.0, gamma: float | str = "scale", random_state: int | None = None):
        self.C = C
        self.gamma = gamma
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> PlattSVC:
        folds = int(min(5, np.unique(y, return_counts=True)[1].min()))
        if folds < 2:
            raise ValueError("Platt scaling needs at least 2 training cases of every class")
        svc = SVC(kernel="rbf", C=self.C, gamma=self.gamma, random_state=self.random_state)
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        self.calibrated_ = CalibratedClassifierCV(svc, ensemble=False, cv=cv).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.calibrated_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.calibrated_.predict(X)


def _classifier(name: str, seed: int) -> BaseEstimator:
    """The paper's classifier with scikit-learn / XGBoost defaults (the paper names no other setting)."""
    if name == "Random Forest":
        return RandomForestClassifier(random_state=seed, n_jobs=1)
    if name == "SVM (RBF Kernel)":
        return PlattSVC(random_state=seed)
    if name == "KNN":
        return KNeighborsClassifier()
    if name == "Decision Tree":
        return DecisionTreeClassifier(random_state=seed)
    if name == "AdaBoost":
        return AdaBoostClassifier(random_state=seed)
    if name == "Gradient Boosting":
        return GradientBoostingClassifier(random_state=seed)
    if name == "XGBoost":
        return XGBClassifier(random_state=seed, n_jobs=1, tree_method="hist", verbosity=0)
    if name == "Extra Trees":
        return ExtraTreesClassifier(random_state=seed, n_jobs=1)
    if name == "MLPClassifier":
        return MLPClassifier(max_iter=1000, random_state=seed)  # default 200 iterations stop short here
    if name == "Logistic Regression":
        return LogisticRegression(max_iter=1000)
    if name == "Naive Bayes":
        return GaussianNB()
    raise ValueError(f"unknown model {name!r}; known: {', '.join(SMALL_GRIDS)}")


def paper_models(seed: int = 0, grid: str = "paper") -> dict[str, tuple[Pipeline, dict[str, list[Any]]]]:
    """{name: (pipeline, param_grid)} for the 11 classifiers: Table 1's nine with exactly its grids (``grid=
    "paper"``, 61 candidates in all) plus logistic regression and naive Bayes from the text (TEXT_GRIDS), or
    one candidate each (``grid="small"``). Grid keys carry the pipeline prefix ("model__n_estimators")."""
    if grid not in ("paper", "small"):
        raise ValueError(f"grid must be 'paper' or 'small', got {grid!r}")
    grids = {**PAPER_GRIDS, **TEXT_GRIDS} if grid == "paper" else SMALL_GRIDS
    models = {}
    for name, params in grids.items():
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if name in SCALED:
            steps.append(("scale", StandardScaler()))
        steps.append(("model", _classifier(name, seed)))
        models[name] = (Pipeline(steps), {f"model__{key}": list(values) for key, values in params.items()})
    return models


def select_models(models: Models | Sequence[str] | None, seed: int, grid: str) -> Models:
    """A mapping of models as given, or the named (default: all) paper models."""
    if isinstance(models, Mapping):
        return models
    if isinstance(models, str):
        raise TypeError("models must be a sequence of names or a mapping, not one string")
    available = paper_models(seed, grid)
    names = list(available) if models is None else list(models)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(available)}")
    return {name: available[name] for name in names}


def _arrays(X: pd.DataFrame | np.ndarray, y: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features as float, labels checked to be 0..K-1 with every class present, and row names."""
    names = np.asarray(X.index if isinstance(X, pd.DataFrame) else np.arange(len(X)))
    features = np.asarray(X, dtype=float)
    labels = np.asarray(y)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"X has shape {features.shape} but y has {len(labels)} labels")
    if not np.issubdtype(labels.dtype, np.integer) or not np.array_equal(np.unique(labels),
                                                                          np.arange(labels.max() + 1)):
        raise ValueError(f"y must hold class indices 0..K-1, each present; got {sorted(set(labels.tolist()))}")
    return features, labels.astype(np.int64), names


def _metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return classification_metrics(y_true, proba, positive=1 if proba.shape[1] == 2 else None)


def grid_search(estimator: BaseEstimator, grid: Mapping[str, list[Any]], cv: Any) -> GridSearchCV:
    """The study's GridSearchCV: accuracy scoring, one job, refit on the whole training part, errors raised."""
    return GridSearchCV(clone(estimator), dict(grid), cv=cv, scoring="accuracy", n_jobs=1, refit=True,
                        error_score="raise")


def fit_search(search: GridSearchCV, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> int:
    """Fit a grid search and return how many ConvergenceWarnings its fits raised (a fit stopped at its
    iteration cap, e.g. the MLP at 1000 iterations), so tables report them instead of the page printing them.
    Other warnings are passed on, once per distinct message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X, y, groups=groups)
    others = {(w.category, str(w.message)): w for w in caught if not issubclass(w.category, ConvergenceWarning)}
    for warning in others.values():
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def paper_protocol(X: pd.DataFrame | np.ndarray, y: Sequence[int], *, seed: int, cv: int = 5,
                   grid: str = "paper", test_size: float = 0.2, balance: bool = True, noise: float = NOISE,
                   models: Models | Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's protocol: (optionally) balance the classes with noisy copies of their own rows, drawn with
    replacement up to the largest class (:func:`oncorepro.augment.split_plan`, order "before_split", and
    :func:`oncorepro.augment.noisy_rows`), hold out a stratified ``test_size`` split of all rows, tune each model
    by GridSearchCV (``cv``-fold stratified K-fold, accuracy) on the rest, refit, and score the test split.
    Table 2 is the top three by test accuracy.

    Our reading, from the paper's numbers: its three-class set balanced to 154 cases per class (462 rows)
    gives a 20% test split of ceil(92.4) = 93 rows, and 0.989247 = 92/93, 0.978495 = 91/93 (Table 2), and the
    image confusion matrix holds 31 + 31 + 31 = 93 test cases; so the balancing came before the split, and a
    test row can be a noisy copy of a training case. ``test_rows_from_train_cases`` counts those rows.

    One row per model, ranked by test accuracy (ties by AUC): model, rank, best_params, cv_accuracy (mean
    inner-CV accuracy of the chosen candidate), the test metrics of :func:`oncorepro.metrics.
    classification_metrics` (accuracy, f1, roc_auc, precision, recall, ...; macro averages for 3 classes),
    n_train, n_test, test_rows_from_train_cases, and arrays for figures: y_true, proba (n_test x K), case
    (the source row of each test row).
    """
    features, labels, names = _arrays(X, y)
    plan = split_plan(names, labels, order="before_split" if balance else "none", seed=seed, test_size=test_size)
    features = noisy_rows(pd.DataFrame(features, index=names), plan, seed=seed, noise=noise).to_numpy(float)
    labels, sources = plan["label"].to_numpy(np.int64), plan["source"].to_numpy()
    train, test = (plan["part"] == "train").to_numpy(), (plan["part"] == "test").to_numpy()
    counted = leakage(plan)
    rows = []
    for name, (estimator, params) in select_models(models, seed, grid).items():
        search = grid_search(estimator, params, StratifiedKFold(cv, shuffle=True, random_state=seed))
        not_converged = fit_search(search, features[train], labels[train])
        proba = search.predict_proba(features[test])
        rows.append({"model": name, "best_params": search.best_params_, "cv_accuracy": search.best_score_,
                     "not_converged": not_converged,
                     **_metrics(labels[test], proba), "n_train": int(train.sum()), "n_test": counted["test_rows"],
                     "test_rows_from_train_cases": counted["test_rows_from_train_cases"],
                     "y_true": labels[test], "proba": proba, "case": sources[test]})
    table = pd.DataFrame(rows).sort_values(["accuracy", "roc_auc"], ascending=False, kind="stable")
    table.insert(1, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def nested_cv(X: pd.DataFrame | np.ndarray, y: Sequence[int], groups: Sequence[Any], *, seed: int,
              outer: int = 5, inner: int = 5, grid: str = "paper", models: Models | Sequence[str] | None = None,
              n_boot: int = 1000) -> pd.DataFrame:
    """Out-of-fold predictions from nested cross-validation: ``outer`` StratifiedGroupKFold folds (a group,
    i.e. a case / patient, never in two folds); in each, GridSearchCV with an ``inner`` StratifiedGroupKFold
    over the outer training fold only, refit on it, predict the held-out fold. The grid never sees a test row.

    One row per model: model, n_cases, for each metric its value on the pooled out-of-fold predictions with a
    stratified percentile bootstrap interval (``<metric>``, ``<metric>_low``, ``<metric>_high``; binary:
    accuracy, balanced_accuracy, roc_auc, f1, recall, specificity with class 1 positive; otherwise accuracy,
    roc_auc (macro one-vs-rest), f1, recall, precision (macro)), best_params (one dict per outer fold), and
    arrays: fold, y_true, proba (N x K), case (row names).

    Cost with the paper grid (61 candidates): outer x (inner + 1) x 61 fits per model set; on the 252 lesion
    cases, 5 x 5 took about 2 minutes on a shared 2-core CPU.
    """
    features, labels, names = _arrays(X, y)
    groups = np.asarray(groups)
    if len(groups) != len(labels):
        raise ValueError(f"{len(groups)} groups for {len(labels)} rows")
    k = labels.max() + 1
    binary = k == 2
    wanted = (["accuracy", "balanced_accuracy", "roc_auc", "f1", "recall", "specificity"] if binary
              else ["accuracy", "roc_auc", "f1", "recall", "precision"])
    folds = np.full(len(labels), -1)
    splits = list(StratifiedGroupKFold(outer, shuffle=True, random_state=seed).split(features, labels, groups))
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    rows = []
    for name, (estimator, params) in select_models(models, seed, grid).items():
        proba = np.zeros((len(labels), k))
        chosen, not_converged = [], 0
        for train, test in splits:
            search = grid_search(estimator, params, StratifiedGroupKFold(inner, shuffle=True, random_state=seed))
            not_converged += fit_search(search, features[train], labels[train], groups[train])
            proba[test] = search.predict_proba(features[test])
            chosen.append(search.best_params_)
        cis = bootstrap_cis(labels, proba, wanted, n_boot=n_boot, seed=seed, positive=1 if binary else None)
        row: dict[str, Any] = {"model": name, "n_cases": len(np.unique(groups))}
        for entry in cis.itertuples(index=False):
            row.update({entry.metric: entry.value, f"{entry.metric}_low": entry.low,
                        f"{entry.metric}_high": entry.high})
        rows.append({**row, "not_converged": not_converged, "best_params": chosen, "fold": folds.copy(),
                     "y_true": labels, "proba": proba, "case": names})
    return pd.DataFrame(rows)


def _score(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC (macro one-vs-rest for more than two classes) of a fitted model's probabilities."""
    return _metrics(y, model.predict_proba(X))["roc_auc"]


def feature_importances(X: pd.DataFrame, y: Sequence[int], *, seed: int, n_splits: int = 5,
                        n_repeats: int = 5) -> pd.DataFrame:
    """Which spreadsheet columns carry the answer, from a random forest (200 trees, median imputation) in
    ``n_splits`` stratified folds.

    - ``impurity``: mean decrease in impurity summed over the design columns of each spreadsheet column
      (additive, so the sum is that column's share), averaged over folds;
    - ``permutation``: drop in held-out ROC AUC when all design columns of one spreadsheet column are
      permuted together (one-hot blocks must move as a block; scikit-learn's permutation_importance permutes
      single columns), mean and standard deviation over folds x ``n_repeats``.

    Correlated columns share credit: permuting Diagnosis alone costs little while Verification and BI-RADS
    still hold the same information, so read both measures. One row per spreadsheet column, sorted by
    permutation importance; n_features counts its design columns.
    """
    features, labels, _ = _arrays(X, y)
    columns = np.array([source_column(str(name)) for name in X.columns])
    blocks = {column: np.flatnonzero(columns == column) for column in dict.fromkeys(columns)}
    rng = np.random.default_rng(seed)
    impurity = {column: [] for column in blocks}
    drops: dict[str, list[float]] = {column: [] for column in blocks}
    model = Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                      ("model", RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1))])
    for train, test in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(features, labels):
        fitted = clone(model).fit(features[train], labels[train])
        weights = fitted.named_steps["model"].feature_importances_
        held_out, truth = features[test], labels[test]
        base = _score(fitted, held_out, truth)
        for column, index in blocks.items():
            impurity[column].append(float(weights[index].sum()))
            for _ in range(n_repeats):
                shuffled = held_out.copy()
                shuffled[:, index] = held_out[rng.permutation(len(test))][:, index]
                drops[column].append(base - _score(fitted, shuffled, truth))
    table = pd.DataFrame({"column": list(blocks), "n_features": [len(index) for index in blocks.values()],
                          "impurity": [np.mean(impurity[c]) for c in blocks],
                          "permutation": [np.mean(drops[c]) for c in blocks],
                          "permutation_std": [np.std(drops[c]) for c in blocks]})
    return table.sort_values(["permutation", "impurity"], ascending=False, kind="stable").reset_index(drop=True)


STAGE_COMPARISON = ("before_imaging", "with_descriptors", "with_assessment", "all")


def stage_comparison(parsed: pd.DataFrame, *, seed: int, stages: Sequence[str] = STAGE_COMPARISON,
                     grid: str = "paper", outer: int = 5, inner: int = 3,
                     models: Models | Sequence[str] | None = None, n_boot: int = 1000) -> pd.DataFrame:
    """The same models under :func:`nested_cv` on the feature sets of ``stages`` (see
    :func:`oncorepro.clinical.feature_columns`): (a) before_imaging, (b) with_descriptors, with_assessment
    (b + BI-RADS category and interpretation) and (c) all (+ verification and histology, as the paper).

    Benign (0) vs malignant (1): the 4 normal cases are excluded (:func:`oncorepro.clinical.
    benign_vs_malignant`); the ``excluded`` column lists them with the reason. One row per stage and model:
    stage, model, n_features, n_cases, the nested_cv metrics with their intervals, excluded.

    ``inner`` defaults to 3 (nested_cv: 5) to keep four feature sets x 11 models with the full paper grid at
    6-8 minutes on a shared 2-core CPU; the grid itself is not reduced.
    """
    kept, excluded = benign_vs_malignant(parsed)
    note = exclusion_note(excluded)
    labels = target(kept)
    tables = []
    for stage in stages:
        X, names = feature_matrix(kept, stage)
        table = nested_cv(X, labels, kept.index.to_numpy(), seed=seed, outer=outer, inner=inner, grid=grid,
                          models=models, n_boot=n_boot)
        table = table.drop(columns=["fold", "y_true", "proba", "case", "best_params"])
        table.insert(0, "stage", stage)
        table.insert(2, "n_features", len(names))
        table["excluded"] = note
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def iteration_cap_sentence(table: pd.DataFrame) -> str:
    """One line saying which models had fits stop at their iteration cap (column ``not_converged``)."""
    capped = table[table["not_converged"] > 0]
    if capped.empty:
        return "Every fit converged within its iteration cap."
    counts = capped.groupby("model")["not_converged"].sum()
    listed = ", ".join(f"{model} {n}" for model, n in counts.items())
    return (f"Fits that stopped at their iteration cap (scikit-learn's ConvergenceWarning; MLP 1000, logistic "
            f"regression 1000 iterations), counted over all grid-search fits: {listed}.")
