"""Turns run specs into results: data -> split -> preprocess -> train -> evaluate -> explain -> store.

Nothing here knows which paper it serves; a chapter hands in a list of specs and gets results back.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from . import explain, metrics
from .augment import augment_parts
from .data import load_dataset
from .data.checksums import dataset_digest, verify_checksums
from .data.duplicates import assign_groups, find_duplicates
from .data.registry import dataset_info
from .data.splits import Split, grouped_split, source_split, stratified_split
from .features import extract_features, pooled_features
from .images import apply_roi, load_arrays
from .models import build_model
from .paths import cache_dir
from .profiles import Profile, get_profile
from .provenance import provenance
from .records import Record
from .results import Result, ResultStore, embedding_table
from .sampling import class_weights, smote_pixels, undersample
from .spec import RunSpec
from .train import TrainConfig, features_to_tensor, predict_proba, train

SPLITTERS = {"stratified": stratified_split, "grouped": grouped_split, "source": source_split}
BINARY_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "miss_rate", "false_alarm_rate",
                  "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro")
MULTICLASS_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "specificity_macro", "roc_auc")
SANITY_IMAGES = 4
HEATMAP_SIZE = 96


@dataclass
class RunOutcome:
    spec: RunSpec
    key: str
    result: Result | None  # None while the run is pending (not executed yet)


@functools.lru_cache(maxsize=8)
def _dataset(name: str, root: Path):
    return load_dataset(name, data_root=root)


@functools.lru_cache(maxsize=8)
def _digest(name: str, root: Path) -> str:
    return dataset_digest(name, data_root=root)


@functools.lru_cache(maxsize=16)
def _verified(name: str, root: Path) -> None:
    """Check a dataset's files against its checksum listing (once per process) before a run trains on it:
    the run key holds the listing's digest, not the files'."""
    if dataset_info(name).checksum_files:
        verify_checksums(name, root).raise_if_failed()


def spec_key(spec: RunSpec, root: Path) -> str:
    digests = "|".join(_digest(name, root) for name in (spec.dataset, *spec.external))
    return spec.key(digests)


def select_records(records: Sequence[Record], classes: Sequence[str]) -> tuple[list[Record], list[dict[str, str]]]:
    kept = [r for r in records if r.label in classes]
    excluded = [{"id": r.id, "reason": f"class '{r.label}' is not part of this run"} for r in records
                if r.label not in classes]
    return kept, excluded


MASK_ID_SEPARATOR = "|"  # a mask picture's record id: "<image id>|<mask file stem>"
EXTERNAL = "external:"  # an external test set's evaluation: "external:<dataset>"; its exclusions' ids add ":<id>"


def external_name(dataset: str, record_id: str | None = None) -> str:
    """The evaluation name of an external test set, or with ``record_id`` the exclusion id of one of its records."""
    return f"{EXTERNAL}{dataset}" if record_id is None else f"{EXTERNAL}{dataset}:{record_id}"


def external_dataset(name: str) -> tuple[str, str] | None:
    """(dataset, record id or "") of an :func:`external_name`; None for a name of the run's own dataset."""
    if not name.startswith(EXTERNAL):
        return None
    dataset, _, record_id = name.removeprefix(EXTERNAL).partition(":")
    return dataset, record_id


def mask_records(records: Sequence[Record]) -> list[Record]:
    """Every mask file as an image of its image's class and group: how a tool that only takes labelled images
    (Teachable Machine) can be given segmentation masks. A mask picture's lesion is its own white area, so it
    is also its own mask (under ROI it stays itself, and heat-in-lesion scores have a region)."""
    return [replace(r, id=f"{r.id}{MASK_ID_SEPARATOR}{path.stem}", path=path, mask_paths=(path,), boxes=None,
                    meta={"mask_of": r.id}) for r in records for path in r.mask_paths]


def make_split(spec: RunSpec, records: list[Record]) -> Split:
    """The spec's split; mask images join the pool before it ("pooled") or the training part after it ("train")."""
    if spec.split not in SPLITTERS:
        raise ValueError(f"unknown split {spec.split!r}; choose one of {', '.join(SPLITTERS)}")
    if spec.mask_images not in ("none", "train", "pooled"):
        raise ValueError(f"unknown mask_images {spec.mask_images!r}; choose none, train or pooled")
    if spec.split == "grouped":
        records = assign_groups(records, find_duplicates(records))
    if spec.mask_images == "pooled":
        records = records + mask_records(records)
    split = SPLITTERS[spec.split](records, fractions=spec.fractions, seed=spec.seed)
    if spec.mask_images == "train":
        split.train = split.train + mask_records(split.train)
    if spec.train_fraction < 1:
        labels = [r.label for r in split.train]
        split.train, _ = train_test_split(split.train, train_size=spec.train_fraction, stratify=labels,
                                          random_state=spec.seed)
    return split


def _arrays(records: Sequence[Record], spec: RunSpec, digest: str, roi: bool,
            progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, masks = load_arrays(records, spec.image_size, digest, progress=progress)
    labels = np.array([spec.classes.index(r.label) for r in records])
    return (apply_roi(images, masks) if roi else images), masks, labels


def _balance(spec: RunSpec, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if spec.sampling == "smote":
        return smote_pixels(x, y, seed=spec.seed)
    if spec.sampling == "undersample":
        target = None
        if spec.sampling_target is not None:
            target = {k: min(int(c), spec.sampling_target) for k, c in enumerate(np.bincount(y)) if c}
        keep = undersample(y, seed=spec.seed, target=target)
        return x[keep], y[keep]
    if spec.sampling not in ("none", "class_weights"):  # class weights leave the images as they are
        raise ValueError(f"unknown sampling {spec.sampling!r}; choose none, smote, undersample or class_weights")
    return x, y


def _evaluate(model, x: np.ndarray, y: np.ndarray, records: Sequence[Record], spec: RunSpec, profile: Profile,
              name: str, device: str) -> tuple[dict, dict, list, pd.DataFrame, float]:
    proba, seconds = predict_proba(model, x, batch_size=spec.batch_size * 2, device=device,
                                   precision=profile.precision)
    binary = len(spec.classes) == 2
    names = BINARY_METRICS if binary else MULTICLASS_METRICS
    values = metrics.classification_metrics(y, proba, positive=1 if binary else None, labels=list(spec.classes))
    cis = metrics.bootstrap_cis(y, proba, list(names), n_boot=profile.bootstrap, seed=spec.seed,
                                positive=1 if binary else None, labels=list(spec.classes))
    ci = {row.metric: [float(row.low), float(row.high)] for row in cis.itertuples()}
    cm = metrics.confusion(y, proba.argmax(1), len(spec.classes)).tolist()
    table = pd.DataFrame({"evaluation": name, "id": [r.id for r in records], "label": y, "pred": proba.argmax(1)})
    for k, cls in enumerate(spec.classes):
        table[f"p_{cls}"] = proba[:, k]
    return {m: float(values[m]) for m in values}, ci, cm, table, seconds


EXPLAINERS = {"Grad-CAM": explain.grad_cam, "SmoothGrad": explain.smoothgrad}
DEFAULT_EXPLAINER = "Grad-CAM"  # every run's; its rows carry no ``method`` column unless another method ran too


def heatmap_key(method: str, evaluation: str, record_id: str) -> str:
    """A stored map's key: "<evaluation>|<id>" for Grad-CAM, "<method>:<evaluation>|<id>" for other methods."""
    prefix = evaluation if method == DEFAULT_EXPLAINER else f"{method}:{evaluation}"
    return f"{prefix}|{record_id}"


def _explain(model, x: np.ndarray, y: np.ndarray, masks: np.ndarray, records: Sequence[Record], name: str,
             samples: int, methods: Sequence[str] = (DEFAULT_EXPLAINER,)
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.DataFrame]:
    """Explanations of the true class for every evaluated image, by each of ``methods`` (EXPLAINERS):
    heat-in-lesion scores for all, stored maps for a balanced sample, and (on the test part only) the
    model-randomisation sanity check on its first few images (its random weights drawn with seed 0 in every
    run, so runs differ only in their trained weights). Rows and checks carry a ``method`` column where a
    method other than Grad-CAM is asked for; map keys as :func:`heatmap_key`. The randomisation check
    recomputes the first maps of the trained model itself (for SmoothGrad another SANITY_IMAGES x 25 noisy
    passes)."""
    model = model.float().eval()
    images = torch.from_numpy(x).permute(0, 3, 1, 2).float()
    targets = list(map(int, y))
    chosen: list[int] = []
    for cls in np.unique(y):
        chosen += list(np.flatnonzero(y == cls)[: max(1, samples // len(np.unique(y)))])
    all_scores, stored, checks = [], {}, []
    for method in methods:
        maps = EXPLAINERS[method](model, images, targets)
        scores = explain.explanation_scores(maps, [m if m.any() else None for m in masks], [r.id for r in records])
        scores.insert(0, "evaluation", name)
        for i in chosen:
            small = torch.nn.functional.interpolate(torch.from_numpy(maps[i])[None, None], size=HEATMAP_SIZE,
                                                    mode="bilinear", align_corners=False)[0, 0].numpy()
            stored[heatmap_key(method, name, records[i].id)] = np.clip(np.rint(small * 255), 0, 255).astype(np.uint8)
        sanity = pd.DataFrame()
        if name == "test":
            sanity = explain.randomisation_check(model, images[:SANITY_IMAGES], targets[:SANITY_IMAGES],
                                                 method=EXPLAINERS[method], ids=[r.id for r in records[:SANITY_IMAGES]])
            sanity.insert(0, "evaluation", name)
        if list(methods) != [DEFAULT_EXPLAINER]:
            scores.insert(1, "method", method)
            if not sanity.empty:
                sanity.insert(1, "method", method)
        all_scores.append(scores)
        checks.append(sanity)
    return _concat(all_scores), stored, _concat([c for c in checks if not c.empty])


def _embed(model, parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, Sequence[Record]]], spec: RunSpec,
           device: str, precision: str) -> pd.DataFrame:
    """The trained model's pooled features of every original (unaugmented, unbalanced) image, by part; ``parts``
    as evaluations are given, (images, labels, masks, records) (:func:`oncorepro.results.embedding_table`)."""
    ids, names, vectors = [], [], []
    for part, (x, _, _, records) in parts.items():
        if len(records):
            vectors.append(pooled_features(model, x, batch_size=spec.batch_size * 2, device=device,
                                           precision=precision))
            ids += [r.id for r in records]
            names += [part] * len(records)
    return embedding_table(ids, names, np.concatenate(vectors)) if vectors else pd.DataFrame()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run_one(spec: RunSpec, profile: Profile, root: Path, key: str, device: str = "auto", progress: bool = True) -> Result:
    """Execute one spec end to end and return its result (not yet stored)."""
    began = time.perf_counter()
    if spec.smoothgrad and not spec.explain:
        raise ValueError("smoothgrad=True explains the test part beside Grad-CAM: it needs explain=True")
    if spec.embed and (spec.augment == "before_split" or spec.mask_images != "none" or spec.train_fraction < 1
                       or spec.sampling == "undersample"):
        raise ValueError("embed=True stores one embedding per case of the split, each in one part, and calls its "
                         "training cases seen by the CNN: it cannot combine with augment='before_split' (copies of "
                         "a case in several parts), mask_images (mask pictures as extra cases), train_fraction < 1 "
                         "or sampling='undersample' (training cases left out)")
    dataset = _dataset(spec.dataset, root)
    records, exclusions = select_records(dataset.records, spec.classes)
    exclusions += [{"id": str(e.path), "reason": e.reason} for e in dataset.exclusions]
    split = make_split(spec, records)
    exclusions += [{"id": rid, "reason": reason} for rid, reason in split.exclusions]
    digest = _digest(spec.dataset, root)
    train_x, train_masks, train_y = _arrays(split.train, spec, digest, spec.roi, progress)
    held_out_roi = spec.roi and spec.roi_at_test  # the paper's protocol masks validation and test images too
    val_x, val_masks, val_y = _arrays(split.val, spec, digest, held_out_roi)
    test_x, test_masks, test_y = _arrays(split.test, spec, digest, held_out_roi)
    originals = {"train": (train_x, train_y, train_masks, split.train), "val": (val_x, val_y, val_masks, split.val),
                 "test": (test_x, test_y, test_masks, split.test)}  # before augmentation and class balancing
    augmentation = None
    if spec.augment != "none":  # paired augmentation step (oncorepro.augment): balance by transformed copies
        parts = augment_parts(spec.augment, {"train": (train_x, train_masks, train_y, [r.id for r in split.train]),
                                             "val": (val_x, val_masks, val_y, [r.id for r in split.val]),
                                             "test": (test_x, test_masks, test_y, [r.id for r in split.test])},
                              seed=spec.seed, target=spec.augment_to, fractions=spec.fractions)
        by_id = {r.id: r for r in (*split.train, *split.val, *split.test)}
        for name, part in parts.items():
            setattr(split, name, [replace(by_id[s], id=row) for row, s in zip(part.rows, part.sources)])
        train_x, train_y = parts["train"].images, parts["train"].labels
        if "val" in parts:
            val_x, val_y = parts["val"].images, parts["val"].labels
        test_x, test_masks, test_y = parts["test"].images, parts["test"].masks, parts["test"].labels
        train_sources = set(parts["train"].sources)
        augmentation = {"order": spec.augment, "rows": {n: len(p.rows) for n, p in parts.items()},
                        "test_rows_from_train_cases": sum(s in train_sources for s in parts["test"].sources)}
    train_x, train_y = _balance(spec, train_x, train_y)
    monitor = "val" if len(split.val) else "test"  # no validation part: curves on the test part, as the paper's tool
    if monitor == "test" and (spec.select != "last" or spec.early_stopping is not None):
        raise ValueError("without a validation part, best-epoch selection or early stopping would choose on the "
                         "test set: use select='last' and early_stopping=None, or a validation fraction")
    monitor_xy = (val_x, val_y) if monitor == "val" else (test_x, test_y)
    model, info = build_model(spec.model, len(spec.classes), pretrained=spec.pretrained, seed=spec.seed,
                              input_size=spec.image_size, head=spec.head, freeze_backbone=spec.freeze_backbone)
    checkpoint = cache_dir("checkpoints") / f"{key}.pt"
    weights = (tuple(map(float, class_weights(train_y, len(spec.classes)))) if spec.sampling == "class_weights"
               else None)
    config = TrainConfig(optimizer=spec.optimizer, lr=spec.lr, epochs=spec.epochs, batch_size=spec.batch_size,
                         seed=spec.seed, early_stopping=spec.early_stopping, select=spec.select, device=device,
                         precision=profile.precision, checkpoint=checkpoint, progress=progress,
                         class_weights=weights)
    if spec.freeze_backbone:  # the backbone never changes: train the head on features extracted once
        encode = functools.partial(extract_features, model, info=info, device=device, precision=profile.precision)
        trained = train(model.head, (encode(train_x), train_y), (encode(monitor_xy[0]), monitor_xy[1]), config,
                        to_input=features_to_tensor)
        trained.model = model
    else:
        trained = train(model, (train_x, train_y), monitor_xy, config)
    trained.history.columns = [c.replace("val_", f"{monitor}_") for c in trained.history.columns]
    evaluations = {"test": (test_x, test_y, test_masks, split.test)}
    if held_out_roi and spec.augment != "before_split":  # augmented test copies have no unmasked original
        raw_x, _, _ = _arrays(split.test, spec, digest, roi=False)
        evaluations["test_unmasked"] = (raw_x, test_y, test_masks, split.test)
    for name in spec.external:
        external = _dataset(name, root)
        ext_records, ext_excluded = select_records(external.records, spec.classes)
        exclusions += [{"id": external_name(name, e["id"]), "reason": e["reason"]} for e in ext_excluded]
        exclusions += [{"id": external_name(name, str(e.path)), "reason": e.reason} for e in external.exclusions]
        ext_x, ext_masks, ext_y = _arrays(ext_records, spec, _digest(name, root), held_out_roi)
        evaluations[external_name(name)] = (ext_x, ext_y, ext_masks, ext_records)
    if spec.embed:  # in-sample: fusion under the paper's protocol takes the CNN's probabilities of every case
        evaluations["train"] = originals["train"]
    all_metrics, all_ci, confusions, predictions, explanations, sanity, heatmaps = {}, {}, {}, [], [], [], {}
    inference = 0.0
    for name, (x, y, masks, recs) in evaluations.items():
        values, ci, cm, table, seconds = _evaluate(trained.model, x, y, recs, spec, profile, name, device)
        all_metrics[name], all_ci[name], confusions[name] = values, ci, cm
        predictions.append(table)
        inference = seconds if name == "test" else inference
        if spec.explain and name != "train":
            methods = (DEFAULT_EXPLAINER, *(["SmoothGrad"] if spec.smoothgrad and name == "test" else []))
            scores, maps, checks = _explain(trained.model, x, y, masks, recs, name, profile.explain_samples, methods)
            explanations.append(scores)
            sanity.append(checks)
            heatmaps.update(maps)
    embeddings = _embed(trained.model, originals, spec, device, profile.precision) if spec.embed else pd.DataFrame()
    checkpoint.unlink(missing_ok=True)
    counts = split.counts().reset_index()
    timings = {"train_seconds": trained.seconds, "inference_seconds_per_image": inference,
               "epochs_run": int(trained.history["epoch"].max()), "selected_epoch": trained.selected_epoch,
               "train_images": int(len(train_x)), "wall_seconds": time.perf_counter() - began,
               "resumed_after_epoch": trained.resumed_after}  # wall_seconds: this process's share
    record = provenance(trained.device)
    record.update({"precision": trained.precision, "weights_origin": info.weights_origin,
                   "input_normalisation": info.input_normalisation, "parameters": info.parameters,
                   "data_digest": {n: _digest(n, root) for n in (spec.dataset, *spec.external)},
                   "data_root": "synthetic (generated)" if spec.data == "synthetic" else str(root),
                   "split_method": split.method})
    if weights:
        record["class_weights"] = dict(zip(spec.classes, weights))
    if augmentation:
        record["augmentation"] = augmentation
    return Result(spec=spec, key=key, metrics=all_metrics, ci=all_ci, confusion=confusions, timings=timings,
                  provenance=record, exclusions=exclusions, history=trained.history,
                  predictions=pd.concat(predictions, ignore_index=True),
                  explanations=_concat(explanations), sanity=_concat(sanity),
                  split_counts=counts, heatmaps=heatmaps, embeddings=embeddings)


def run_all(specs: Sequence[RunSpec], *, profile: str | Profile = "smoke", data_root: str | Path | None = None,
            execute: bool = True, device: str = "auto", progress: bool = True) -> list[RunOutcome]:
    """Results for every spec under a profile: stored ones are reused, missing ones run (if ``execute``)."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    store = ResultStore(profile.store_dir())
    outcomes = []
    for raw in specs:
        spec = profile.apply(raw)
        root = profile.data_root([spec.dataset, *spec.external], data_root)
        key = spec_key(spec, root)
        if store.has(key):  # the stored spec may carry another setting's label: the label is not in the key
            outcomes.append(RunOutcome(spec, key, replace(store.load(key), spec=spec)))
        elif execute:
            for name in (spec.dataset, *spec.external):
                _verified(name, root)
            torch.manual_seed(spec.seed)
            result = run_one(spec, profile, root, key, device=device, progress=progress)
            store.save(result)
            outcomes.append(RunOutcome(spec, key, replace(store.load(key), spec=spec)))
        else:
            outcomes.append(RunOutcome(spec, key, None))
    return outcomes
