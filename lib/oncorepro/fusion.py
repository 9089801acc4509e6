"""Fusion of the clinical spreadsheet with the ultrasound images (Aboulmira et al. 2025, Section V) over
case-aligned tables (index: case id), each under two protocols:

- ``paper``: the classes balanced with noisy copies before an 80/20 stratified split, GridSearchCV on the
  training part (:func:`oncorepro.tabular.paper_protocol`); test metrics with bootstrap 95% CIs; the number of
  test rows that are copies of training cases is reported;
- ``leakage_free``: nested cross-validation grouped by case (:func:`oncorepro.tabular.nested_cv`): no case in
  two folds, no copies, every case predicted once by a model that never saw it. Where one block comes from a
  trained CNN (intermediate fusion), its embeddings of the CNN's own training cases are in-sample, so the
  leakage-free reading is instead the CNN run's own split (:func:`split_fusion`): fit on its training cases,
  test on its held-out cases.

Strategies:

- early (:func:`feature_fusion` with EARLY_MODELS): raw clinical features concatenated with image features;
- intermediate (:func:`feature_fusion` / :func:`split_fusion` with INTERMEDIATE_MODELS): clinical features
  concatenated with CNN embeddings (:func:`run_embeddings`);
- late (:func:`late_fusion`): the modality models' class probabilities combined by their mean
  ("Aggregation"), by majority vote ("Voting") or by a Gradient Boosting stacker. The CNN's probabilities
  exist out-of-sample for its held-out cases only (:func:`run_probabilities`): the leakage-free reading uses
  those; the paper's takes every case, in-sample for the CNN's training cases.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from matplotlib.figure import Figure

from . import plots, report
from .images import apply_roi, load_arrays
from .metrics import bootstrap_cis, confusion
from .records import Record
from .augment import NOISE, leakage, noisy_rows
from .clinical import exclusion_note
from .tabular import fit_search, grid_search, nested_cv, paper_protocol, select_models

PROTOCOLS = ("paper", "leakage_free")
EARLY_MODELS = ("Extra Trees", "AdaBoost")  # Section V-A (ExtraTrees) and Table 4 (AdaBoost)
INTERMEDIATE_MODELS = ("Logistic Regression", "XGBoost")  # Section V-B
LATE_RULES = ("Aggregation", "Voting", "Gradient Boosting")  # Table 4 "Aggregation"; Section V-C stacker
BINARY_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "f1", "recall", "specificity")
MULTICLASS_METRICS = ("accuracy", "roc_auc", "f1", "recall", "precision")
ARRAYS = ("y_true", "proba", "case")


def align(blocks: Mapping[str, pd.DataFrame], labels: pd.Series) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Join feature blocks on their case index (columns prefixed "<block>:"), keeping the cases that every
    block and ``labels`` have. Returns the joined matrix, its labels and the left-out cases with the reason."""
    cases = pd.Index(labels.index)
    for frame in blocks.values():
        cases = cases.intersection(frame.index, sort=False)
    joined = pd.concat([frame.loc[cases].add_prefix(f"{name}:") for name, frame in blocks.items()], axis=1)
    reasons = []
    for case in labels.index.difference(cases, sort=False):
        absent = [name for name, frame in blocks.items() if case not in frame.index]
        reasons.append({"case": case, "reason": f"no row in {', '.join(absent)}"})
    return joined, labels.loc[cases], pd.DataFrame(reasons, columns=["case", "reason"])


def with_cis(table: pd.DataFrame, *, seed: int, n_boot: int = 1000) -> pd.DataFrame:
    """A result table with arrays y_true and proba per row (e.g. :func:`oncorepro.tabular.paper_protocol`'s),
    its metrics recomputed with 95% bootstrap intervals (``<metric>_low``/``<metric>_high``)."""
    extra = pd.DataFrame([_with_cis(y, p, seed=seed, n_boot=n_boot) for y, p in zip(table["y_true"], table["proba"])],
                         index=table.index)
    return pd.concat([table.drop(columns=[c for c in extra.columns if c in table.columns]), extra], axis=1)


def _with_cis(y_true: np.ndarray, proba: np.ndarray, *, seed: int, n_boot: int) -> dict[str, float]:
    binary = proba.shape[1] == 2
    wanted = BINARY_METRICS if binary else MULTICLASS_METRICS
    cis = bootstrap_cis(y_true, proba, list(wanted), n_boot=n_boot, seed=seed, positive=1 if binary else None)
    row: dict[str, float] = {}
    for entry in cis.itertuples(index=False):
        row.update({entry.metric: entry.value, f"{entry.metric}_low": entry.low, f"{entry.metric}_high": entry.high})
    return row


def feature_fusion(blocks: Mapping[str, pd.DataFrame], labels: pd.Series, *, protocol: str, seed: int,
                   models: Sequence[str], grid: str = "paper", n_boot: int = 1000, outer: int = 5,
                   inner: int = 3) -> pd.DataFrame:
    """Early or intermediate fusion: the blocks joined by case (:func:`align`), each of ``models`` (names of
    :func:`oncorepro.tabular.paper_models`) under ``protocol``. One row per model: protocol, model,
    n_features, n_cases, n_test, test_rows_from_train_cases, each metric with ``_low``/``_high`` (95%
    bootstrap CI), and the arrays y_true, proba, case (the source case of each evaluated row)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    X, y, left_out = align(blocks, labels)
    y = np.asarray(y, dtype=np.int64)
    rows = []
    if protocol == "paper":
        table = paper_protocol(X, y, seed=seed, grid=grid, models=list(models))
        for entry in table.itertuples(index=False):
            rows.append({"model": entry.model, "n_test": entry.n_test,
                         "test_rows_from_train_cases": entry.test_rows_from_train_cases,
                         "not_converged": entry.not_converged,
                         **_with_cis(entry.y_true, entry.proba, seed=seed, n_boot=n_boot),
                         "y_true": entry.y_true, "proba": entry.proba, "case": entry.case})
    else:
        table = nested_cv(X, y, X.index.to_numpy(), seed=seed, outer=outer, inner=inner, grid=grid,
                          models=list(models), n_boot=n_boot)
        for entry in table.to_dict("records"):
            rows.append({"model": entry["model"], "n_test": len(entry["y_true"]), "test_rows_from_train_cases": 0,
                         "not_converged": entry["not_converged"],
                         **_with_cis(entry["y_true"], entry["proba"], seed=seed, n_boot=n_boot),
                         **{name: entry[name] for name in ARRAYS}})
    out = pd.DataFrame(rows)
    out.insert(0, "protocol", protocol)
    out.insert(2, "n_features", X.shape[1])
    out.insert(3, "n_cases", len(X))
    out["n_excluded"], out["excluded"] = len(left_out), exclusion_note(left_out, "case")
    return out


def evaluate_plan(table: pd.DataFrame, plan: pd.DataFrame, *, seed: int, models: Sequence[str],
                  grid: str = "paper", cv: int = 5, n_boot: int = 1000, noise: float = NOISE) -> pd.DataFrame:
    """Tabular models on an augmentation plan (:func:`oncorepro.augment.split_plan`): its rows materialised
    (:func:`oncorepro.augment.noisy_rows`), GridSearchCV on the training rows with folds grouped by source
    case, test metrics with bootstrap CIs and the plan's leakage count. One row per model, as
    :func:`feature_fusion`."""
    rows_X = noisy_rows(table, plan, seed=seed, noise=noise)
    train, test = (plan["part"] == "train").to_numpy(), (plan["part"] == "test").to_numpy()
    X, y, groups = rows_X.to_numpy(float), plan["label"].to_numpy(np.int64), plan["source"].to_numpy()
    counted = leakage(plan)
    out = []
    for name, (estimator, params) in select_models(list(models), seed, grid).items():
        search = grid_search(estimator, params, StratifiedGroupKFold(cv, shuffle=True, random_state=seed))
        not_converged = fit_search(search, X[train], y[train], groups[train])
        proba = search.predict_proba(X[test])
        out.append({"model": name, "n_cases": int(plan["source"].nunique()), "n_test": counted["test_rows"],
                    "not_converged": not_converged,
                    "test_rows_from_train_cases": counted["test_rows_from_train_cases"],
                    **_with_cis(y[test], proba, seed=seed, n_boot=n_boot),
                    "y_true": y[test], "proba": proba, "case": groups[test]})
    return pd.DataFrame(out)


def run_table(outcomes: Sequence, evaluation: str = "test") -> pd.DataFrame:
    """Finished image runs as result rows (model: "<label>, seed <s>"; arrays y_true, proba, case) for
    :func:`roc_figure`; pending runs are left out."""
    rows = []
    for outcome in outcomes:
        if outcome.result is None:
            continue
        table, proba = outcome.result.evaluated(evaluation)
        rows.append({"model": f"{outcome.spec.label}, seed {outcome.spec.seed}", "y_true": table["label"].to_numpy(),
                     "proba": proba, "case": table["id"].to_numpy()})
    return pd.DataFrame(rows, columns=["model", "y_true", "proba", "case"])


def _vote(probas: Sequence[np.ndarray]) -> np.ndarray:
    """Majority vote of the modalities' argmax as class shares; ties broken by the mean probability."""
    k = probas[0].shape[1]
    votes = sum(np.eye(k)[p.argmax(1)] for p in probas)
    return (votes + 1e-6 * np.mean(probas, axis=0)) / (len(probas) + 1e-6)


def late_fusion(probas: Mapping[str, pd.DataFrame], labels: pd.Series, *, protocol: str, seed: int,
                rules: Sequence[str] = LATE_RULES, test_size: float = 0.2, folds: int = 5,
                n_boot: int = 1000) -> pd.DataFrame:
    """Late fusion of per-case class probabilities (one frame per modality, columns in class order, index
    case; out-of-sample for its cases under ``leakage_free``) aligned by case.

    Aggregation (mean) and Voting need no training. The Gradient Boosting stacker is trained on the
    concatenated probabilities: under ``paper``, a stratified ``test_size`` split of the cases (the rules are
    scored on the same test cases, as the paper's 51-case matrix); under ``leakage_free``, out-of-fold over
    ``folds`` (at most the smallest class's count) StratifiedGroupKFold folds by case (the rules are scored on
    all cases). One row per rule, as :func:`feature_fusion`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    unknown = [rule for rule in rules if rule not in LATE_RULES]
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; choose from {', '.join(LATE_RULES)}")
    X, y, left_out = align(probas, labels)
    y = np.asarray(y, dtype=np.int64)
    parts = [X[[c for c in X.columns if c.startswith(f"{name}:")]].to_numpy(float) for name in probas]
    cases = X.index.to_numpy()
    evaluated = np.arange(len(y))
    if protocol == "paper":
        train, evaluated = train_test_split(evaluated, test_size=test_size, stratify=y, random_state=seed)
    rows = []
    for rule in rules:
        if rule == "Aggregation":
            proba = np.mean(parts, axis=0)[evaluated]
        elif rule == "Voting":
            proba = _vote(parts)[evaluated]
        else:
            stacked = np.hstack(parts)
            stacker = GradientBoostingClassifier(random_state=seed)
            if protocol == "paper":
                proba = stacker.fit(stacked[train], y[train]).predict_proba(stacked[evaluated])
            else:
                proba = np.zeros((len(y), parts[0].shape[1]))
                splitter = StratifiedGroupKFold(min(folds, int(np.bincount(y).min())), shuffle=True,
                                                random_state=seed)
                for fit_rows, test_rows in splitter.split(stacked, y, cases):
                    proba[test_rows] = stacker.fit(stacked[fit_rows], y[fit_rows]).predict_proba(stacked[test_rows])
        truth = y[evaluated]
        rows.append({"protocol": protocol, "model": rule, "n_features": len(X.columns), "n_cases": len(X),
                     "n_excluded": len(left_out), "excluded": exclusion_note(left_out, "case"),
                     "n_test": len(evaluated), "test_rows_from_train_cases": 0,
                     **_with_cis(truth, proba, seed=seed, n_boot=n_boot),
                     "y_true": truth, "proba": proba, "case": cases[evaluated]})
    return pd.DataFrame(rows)


def out_of_fold_probabilities(row: Mapping[str, object]) -> pd.DataFrame:
    """A :func:`oncorepro.tabular.nested_cv` (or :func:`feature_fusion`) row's out-of-sample probabilities as a
    case-indexed frame (one column per class), the input :func:`late_fusion` takes."""
    proba = np.asarray(row["proba"])
    return pd.DataFrame(proba, index=pd.Index(row["case"], name="case_id"),
                        columns=[f"p{k}" for k in range(proba.shape[1])])


def run_probabilities(outcomes: Sequence, classes: Sequence[str],
                      evaluations: Sequence[str] = ("test",)) -> pd.DataFrame | None:
    """The stored predictions of finished image runs (``RunOutcome`` list) on ``evaluations`` (held-out
    "test"; "train", in-sample, is stored by ``embed=True`` runs; each case in at most one of them per run) as
    a case-indexed frame of class probabilities (mean over runs predicting the same case), or None while any
    run is pending."""
    if not outcomes or any(outcome.result is None for outcome in outcomes):
        return None
    frames = []
    for outcome in outcomes:
        table = outcome.result.predictions
        missing = set(evaluations) - set(table["evaluation"])
        if missing:
            raise ValueError(f"run {outcome.key} stored no predictions for {sorted(missing)}: 'train' is stored by "
                             f"embed=True runs (an embed run stored before they were: delete it and run it again)")
        table = table[table["evaluation"].isin(evaluations)]
        twice = table["id"][table["id"].duplicated()]
        if len(twice):
            raise ValueError(f"run {outcome.key}: case(s) {sorted(set(twice))[:5]} predicted in more than one of "
                             f"{list(evaluations)}; choose evaluations that do not share cases")
        frames.append(table)
    frame = pd.concat(frames, ignore_index=True)
    columns = [f"p_{name}" for name in classes]
    return frame.groupby("id")[columns].mean().rename_axis("case_id")


def run_embeddings(outcome) -> pd.DataFrame | None:
    """A finished image run's stored CNN embeddings (spec ``embed=True``) as a case-indexed frame: column
    ``part`` (train/val/test of that run's split) and emb_0 ...; None while the run is pending or when it
    stored none."""
    if outcome.result is None or outcome.result.embeddings.empty:
        return None
    return outcome.result.embeddings.set_index("id").rename_axis("case_id")


def seen_by_cnn(table: pd.DataFrame, trained_on: Iterable[str]) -> pd.DataFrame:
    """A fusion table with ``test_rows_seen_by_cnn``: per row, how many evaluated rows come from the cases the
    CNN trained on (``trained_on``), whose embeddings or probabilities are in-sample."""
    seen = set(trained_on)
    return table.assign(test_rows_seen_by_cnn=[sum(case in seen for case in cases) for cases in table["case"]])


def split_fusion(blocks: Mapping[str, pd.DataFrame], labels: pd.Series, parts: pd.Series, *, seed: int,
                 models: Sequence[str], grid: str = "paper", cv: int = 5, n_boot: int = 1000) -> pd.DataFrame:
    """Feature fusion on a given split of the cases (``parts``: case -> train/val/test, e.g. the CNN run's
    own): GridSearchCV (stratified ``cv`` folds) on the train and val cases, metrics with bootstrap CIs on the
    test cases. The leakage-free protocol for blocks that come from a model trained on the training cases.
    One row per model, as :func:`feature_fusion`."""
    X, y, left_out = align(blocks, labels)
    y = np.asarray(y, dtype=np.int64)
    part = parts.reindex(X.index)
    if part.isna().any():
        raise ValueError(f"cases without a part: {list(X.index[part.isna()])[:5]}")
    unknown = set(part) - {"train", "val", "test"}
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; parts are train, val and test")
    test = (part == "test").to_numpy()
    if not test.any() or test.all():
        raise ValueError("split_fusion needs both training and test cases")
    features = X.to_numpy(float)
    rows = []
    for name, (estimator, params) in select_models(list(models), seed, grid).items():
        search = grid_search(estimator, params, StratifiedKFold(cv, shuffle=True, random_state=seed))
        not_converged = fit_search(search, features[~test], y[~test])
        proba = search.predict_proba(features[test])
        rows.append({"protocol": "leakage_free", "model": name, "n_features": X.shape[1], "n_cases": len(X),
                     "n_excluded": len(left_out), "excluded": exclusion_note(left_out, "case"),
                     "not_converged": not_converged,
                     "n_test": int(test.sum()), "test_rows_from_train_cases": 0,
                     **_with_cis(y[test], proba, seed=seed, n_boot=n_boot),
                     "y_true": y[test], "proba": proba, "case": X.index.to_numpy()[test]})
    return pd.DataFrame(rows)


def raw_pixel_features(records: Sequence[Record], data_digest: str, *, size: int = 256, pixels: int = 32,
                       roi: bool = True) -> pd.DataFrame:
    """Image features that need no training, for early fusion: each image resized to ``size`` (cached
    arrays of :func:`oncorepro.images.load_arrays`), multiplied by its merged lesion mask (``roi``), converted
    to grey (mean of R, G, B) and block-averaged to ``pixels`` x ``pixels`` raw intensities. Index: record id."""
    if size % pixels:
        raise ValueError(f"size {size} must be a multiple of pixels {pixels}")
    images, masks = load_arrays(records, size, data_digest, progress=False)
    if roi:
        images = apply_roi(images, masks)
    grey = images.astype(np.float32).mean(axis=3)
    block = size // pixels
    small = grey.reshape(len(grey), pixels, block, pixels, block).mean(axis=(2, 4))
    columns = [f"px{r:02d}_{c:02d}" for r in range(pixels) for c in range(pixels)]
    return pd.DataFrame(small.reshape(len(small), -1), index=pd.Index([r.id for r in records], name="case_id"),
                        columns=columns)


def summary(tables: Sequence[pd.DataFrame], metrics: Sequence[str] = ("accuracy", "roc_auc", "f1")) -> pd.DataFrame:
    """Fusion result rows without their arrays, with "value [low, high]" cells: the Table 4 view (n_excluded
    counts the cases a block lacked; the rows' ``excluded`` column names them with the reason)."""
    frame = pd.concat(tables, ignore_index=True)
    names = ("stage", "order", "fusion", "protocol", "model", "n_cases", "n_excluded", "n_test",
             "test_rows_from_train_cases", "test_rows_seen_by_cnn", "not_converged")
    out = frame[[c for c in names if c in frame.columns]].copy()
    for metric in metrics:
        out[metric] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                       zip(frame[metric], frame[f"{metric}_low"], frame[f"{metric}_high"])]
    return out


# --- the chapter's comparison with the paper and its figures ----------------------------------------------------


def compare_with_paper(paper: Sequence[report.PaperValue], tables: Mapping[str, pd.DataFrame],
                       items: Sequence[str], metrics: Sequence[str] = ("accuracy", "roc_auc", "f1")) -> pd.DataFrame:
    """The paper's values of ``items`` beside ours: each table's rows become settings "<prefix><model>" (the
    YAML's names, e.g. prefix "fusion / early / "), one run each with its bootstrap interval."""
    ours = [{"setting": f"{prefix}{row['model']}", "metric": metric, "mean": row[metric],
             "low": row[f"{metric}_low"], "high": row[f"{metric}_high"], "n": 1}
            for prefix, table in tables.items() if table is not None for _, row in table.iterrows()
            for metric in metrics if f"{metric}_low" in row]
    ours_frame = pd.DataFrame(ours, columns=["setting", "metric", "mean", "low", "high", "n"])
    chosen = [v for v in paper if v.item in items and v.metric in metrics]
    return report.compare(chosen, ours_frame)


def roc_figure(tables: Sequence[pd.DataFrame], title: str, *, positive: int = 1, seed: int = 0,
               n_boot: int = 1000) -> Figure:
    """ROC of class ``positive`` against the rest for every row (model) of the tables, AUC with its bootstrap
    interval in the legend; rows are labelled "<protocol>: <model>" when a table has a protocol column."""
    curves = []
    for table in tables:
        for _, row in table.iterrows():
            label = f"{row['protocol']}: {row['model']}" if "protocol" in row else str(row["model"])
            curves.append(plots.RocCurveInput(label=label, y_true=(np.asarray(row["y_true"]) == positive).astype(int),
                                              score=np.asarray(row["proba"])[:, positive]))
    return plots.roc_figure(curves, title, n_boot=n_boot, seed=seed)


def confusion_figure(table: pd.DataFrame, model: str, labels: Sequence[str], title: str) -> Figure:
    """Confusion matrix (counts and row shares) of one model's evaluated rows."""
    row = table.loc[table["model"] == model].iloc[0]
    proba = np.asarray(row["proba"])
    return plots.confusion_figure(confusion(np.asarray(row["y_true"]), proba.argmax(1), proba.shape[1]), labels,
                                  title)
