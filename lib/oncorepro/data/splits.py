"""Train / validation / test splits: the papers' stratified split, a duplicate-aware grouped split, and the
datasets' own splits.

``stratified_split`` reproduces the usual recipe (and Tables 1-2 of the EfficientNetV2B0 paper): scikit-learn
``train_test_split`` stratified by label, first train against the rest, then the rest split into validation
and test. Part sizes follow scikit-learn's rounding (the held-out part is rounded up), so BUSI benign +
malignant (437 + 210) gives 452 / 98 / 97 and the breast MRI (740 + 740) 1036 / 222 / 222.
``grouped_split`` keeps every group (patient, or duplicate cluster from ``duplicates.assign_groups``) inside
one part, using scikit-learn's ``StratifiedGroupKFold``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from ..errors import DataError
from ..records import Record

PARTS = ("train", "val", "test")
_SOURCE_PARTS = {"train": "train", "training": "train", "validation": "val", "val": "val", "valid": "val",
                 "test": "test", "testing": "test"}


@dataclass
class Split:
    """Three disjoint lists of records, how they were made, and the records left out with the reason."""

    train: list[Record]
    val: list[Record]
    test: list[Record]
    method: str
    seed: int
    exclusions: list[tuple[str, str]] = field(default_factory=list)  # (record id, reason)

    def part(self, name: str) -> list[Record]:
        """The records of part ``name`` ("train", "val" or "test")."""
        if name not in PARTS:
            raise KeyError(f"unknown part {name!r}; the parts are {', '.join(PARTS)}")
        return getattr(self, name)

    def counts(self) -> pd.DataFrame:
        """Images per label (rows, plus a Total row) in train / val / test and in total (Tables 1-2)."""
        labels = sorted({record.label for name in PARTS for record in self.part(name)})
        table = pd.DataFrame({name: Counter(record.label for record in self.part(name)) for name in PARTS},
                             index=labels, columns=list(PARTS)).fillna(0).astype(int)
        table["total"] = table.sum(axis=1)
        table.loc["Total"] = table.sum(axis=0)
        table.index.name = "label"
        return table


def stratified_split(records: Sequence[Record], fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
                     seed: int = 0) -> Split:
    """The papers' split: ``train_test_split`` stratified by label, train against the rest, then the rest
    into validation (rounded up, as scikit-learn rounds a held-out part) and test."""
    _check_fractions(fractions)
    records = list(records)
    labels = np.array([record.label for record in records])
    indices = np.arange(len(records))
    n_rest = _held_out(len(records), fractions[1] + fractions[2])
    train, rest = train_test_split(indices, test_size=n_rest, stratify=labels, random_state=seed)
    if fractions[1] == 0:  # no validation part (e.g. an 85/15 train/test protocol)
        test, val = rest, rest[:0]
    else:
        n_val = _held_out(len(rest), fractions[1] / (fractions[1] + fractions[2]))
        test, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
    return Split(train=[records[i] for i in train], val=[records[i] for i in val],
                 test=[records[i] for i in test], seed=seed,
                 method=(f"stratified by label (scikit-learn train_test_split, random_state={seed}): "
                         f"{_percent(fractions[0])} train, the rest split {_percent(fractions[1])} validation "
                         f"/ {_percent(fractions[2])} test"))


def grouped_split(records: Sequence[Record], fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
                  seed: int = 0) -> Split:
    """Like ``stratified_split`` but no group crosses parts: ``StratifiedGroupKFold`` deals the groups into
    k folds (k the smallest number making every fraction a whole number of folds, e.g. 20 for 70/15/15) and
    the folds are given to train, validation and test. Every record needs a ``group``; a group whose members
    carry different labels cannot be stratified (nor learnt from), so its records are excluded, each listed
    with the reason."""
    _check_fractions(fractions)
    for record in records:
        if record.group is None:
            raise DataError(record.path, f"record {record.id!r} has no group; a grouped split needs one for "
                                         "every record", fix="set groups with duplicates.assign_groups")
    members: dict[str, list[Record]] = {}
    for record in records:
        members.setdefault(record.group, []).append(record)
    exclusions = []
    kept = []
    for record in records:
        group = members[record.group]
        if len({member.label for member in group}) > 1:
            exclusions.append((record.id, f"group {record.group} mixes labels: "
                                          + ", ".join(f"{m.id} ({m.label})" for m in group)))
        else:
            kept.append(record)
    folds = _fold_counts(fractions)
    smallest = min(Counter(r.label for r in kept).values())
    if smallest < sum(folds):  # small data (smoke profile): fewer folds, each part by its share of them
        k = max(3, smallest)
        folds = tuple(int(n) for n in np.bincount(np.searchsorted(np.cumsum(fractions)[:-1], (np.arange(k) + 0.5) / k,
                                                                  side="right"), minlength=3))
    splitter = StratifiedGroupKFold(n_splits=sum(folds), shuffle=True, random_state=seed)
    fold_of = np.empty(len(kept), dtype=int)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(kept)), [r.label for r in kept],
                                                    [r.group for r in kept])):
        fold_of[held] = fold
    bounds = np.cumsum(folds)
    part_of = np.searchsorted(bounds, fold_of, side="right")
    parts = [[record for record, part in zip(kept, part_of) if part == index] for index in range(3)]
    return Split(train=parts[0], val=parts[1], test=parts[2], seed=seed, exclusions=exclusions,
                 method=(f"grouped (no group in two parts) and stratified by label: scikit-learn "
                         f"StratifiedGroupKFold(n_splits={sum(folds)}, shuffle=True, random_state={seed}), "
                         f"folds {folds[0]} / {folds[1]} / {folds[2]} to train / validation / test; "
                         f"{len(exclusions)} records of mixed-label groups excluded"))


def source_split(records: Sequence[Record], val_from: str = "train",
                 fractions: tuple[float, float, float] = (0.70, 0.15, 0.15), seed: int = 0) -> Split:
    """The dataset's own split (``Record.source_split``). ``val_from="train"``: validation is carved out of
    the source train part, stratified by label (and by group when every record has one), with the size
    ``fractions[1] / (fractions[0] + fractions[1])`` of it; the test part is the source test part, or the
    source validation part when there is no test part. ``val_from="validation"``: the source validation
    part is used as it is (the source must then also have a test part)."""
    _check_fractions(fractions)
    if val_from not in ("train", "validation"):
        raise ValueError(f"val_from must be 'train' or 'validation', not {val_from!r}")
    source: dict[str, list[Record]] = {name: [] for name in PARTS}
    for record in records:
        part = _SOURCE_PARTS.get(str(record.source_split).lower())
        if part is None:
            raise DataError(record.path, f"record {record.id!r} has source split {record.source_split!r}; "
                                         f"expected one of {', '.join(sorted(_SOURCE_PARTS))}")
        source[part].append(record)
    if not source["train"]:
        raise ValueError("no record comes from a source train part")
    exclusions: list[tuple[str, str]] = []
    if val_from == "validation":
        if not source["val"] or not source["test"]:
            raise ValueError("val_from='validation' needs source validation and test parts; found "
                             + ", ".join(f"{name}: {len(items)}" for name, items in source.items()))
        train, val, test = source["train"], source["val"], source["test"]
        how = "source train / validation / test as published"
    else:
        if source["test"]:
            test = source["test"]
            exclusions = [(r.id, "source validation part not used (val_from='train')") for r in source["val"]]
            how = "source test part as test"
        else:
            test = source["val"]
            how = "source validation part as test (the source has no test part)"
        if not test:
            raise ValueError("the source has neither a test nor a validation part to test on")
        share = fractions[1] / (fractions[0] + fractions[1])
        train, val = _carve(source["train"], share, seed)
        how += (f"; validation = {_percent(share)} of the source train part, stratified by label"
                f"{' and grouped' if all(r.group is not None for r in source['train']) else ''} "
                f"(random_state={seed})")
    return Split(train=list(train), val=list(val), test=list(test), method=how, seed=seed,
                 exclusions=exclusions)


def _carve(records: list[Record], share: float, seed: int) -> tuple[list[Record], list[Record]]:
    """(rest, carved): ``share`` of ``records`` held out, stratified by label; when every record has a
    group, whole groups: one fold of StratifiedGroupKFold(round(1 / share)), so about ``share``."""
    labels = [record.label for record in records]
    if all(record.group is not None for record in records):
        splitter = StratifiedGroupKFold(n_splits=max(2, round(1 / share)), shuffle=True, random_state=seed)
        _, held = next(splitter.split(np.zeros(len(records)), labels, [r.group for r in records]))
        chosen = set(held.tolist())
        return ([r for i, r in enumerate(records) if i not in chosen], [records[i] for i in sorted(chosen)])
    keep, carved = train_test_split(np.arange(len(records)), test_size=_held_out(len(records), share),
                                    stratify=labels, random_state=seed)
    return [records[i] for i in keep], [records[i] for i in carved]


def _check_fractions(fractions: tuple[float, ...]) -> None:
    if (len(fractions) != 3 or fractions[0] <= 0 or fractions[1] < 0 or fractions[2] <= 0
            or not math.isclose(sum(fractions), 1.0)):
        raise ValueError(f"fractions must be three numbers (train, val, test) adding up to 1, train and test "
                         f"positive, not {fractions}")


def _held_out(n: int, share: float) -> int:
    """scikit-learn's size of a held-out part (ceil(share * n)), without float noise: 0.3 * 1480 is 444,
    not 445 as ceil((1 - 0.7) * 1480) would give."""
    return math.ceil(round(share * n, 9))


def _fold_counts(fractions: tuple[float, ...]) -> tuple[int, ...]:
    """Whole numbers of folds in the ratio of ``fractions`` (0.7/0.15/0.15 -> 14/3/3), at most 100 folds."""
    ratios = [Fraction(f).limit_denominator(100) for f in fractions]
    if any(not math.isclose(float(r), f, abs_tol=1e-9) for r, f in zip(ratios, fractions)):
        raise ValueError(f"fractions {fractions} are not multiples of 1/k for any k <= 100")
    k = math.lcm(*(r.denominator for r in ratios))
    counts = tuple(int(r * k) for r in ratios)
    if sum(counts) > 100:
        raise ValueError(f"fractions {fractions} need {sum(counts)} folds; at most 100 are supported")
    return counts


def _percent(share: float) -> str:
    return f"{share:.0%}" if math.isclose(share * 100, round(share * 100)) else f"{share:.1%}"
