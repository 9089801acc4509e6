"""Splits: the paper's stratified counts (Tables 1-2), grouped splits that keep groups whole, source splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from oncorepro.data.duplicates import assign_groups, find_duplicates
from oncorepro.data.splits import PARTS, Split, grouped_split, source_split, stratified_split
from oncorepro.errors import DataError
from oncorepro.paths import resolve_data_root
from oncorepro.records import Record

DATA = resolve_data_root()
BUSI = DATA / "busi" / "Dataset_BUSI_with_GT"
MRI_LISTING = DATA / "breast_mri" / "CONTENTS.sha256"
needs_busi = pytest.mark.skipif(not BUSI.is_dir(), reason=f"BUSI not found at {BUSI}")
needs_mri = pytest.mark.skipif(not MRI_LISTING.is_file(), reason=f"breast MRI listing not found at {MRI_LISTING}")


def busi_records(labels: tuple[str, ...] = ("benign", "malignant")) -> list[Record]:
    return [Record(dataset="busi", id=path.stem, path=path, label=label)
            for label in labels for path in sorted((BUSI / label).glob(f"{label} (*).png"))
            if "_mask" not in path.name]


def mri_records() -> list[Record]:
    """The 1,480 images of the split layout, read from the archive's listing (no need to unpack it)."""
    records = []
    for line in MRI_LISTING.read_text().splitlines():
        name = line.split("  ", 1)[1]
        parts = Path(name).parts
        if parts[0] == "Breast Cancer Patients MRI's":
            split, folder = parts[1], parts[2]
            records.append(Record(dataset="breast_mri", id=f"{split}/{folder}/{Path(name).stem}",
                                  path=MRI_LISTING.parent / name, label=folder.lower(), source_split=split))
    return records


def planted(n_groups: int = 120, seed: int = 7) -> list[Record]:
    """Records in groups of 1-5 (labels about 2:1), plus one group that mixes labels."""
    rng = np.random.default_rng(seed)
    records = []
    for g in range(n_groups):
        label = "benign" if rng.random() < 2 / 3 else "malignant"
        for k in range(int(rng.integers(1, 6))):
            records.append(Record(dataset="t", id=f"g{g}-{k}", path=Path(f"g{g}-{k}.png"), label=label,
                                  group=f"patient-{g}"))
    records += [Record(dataset="t", id="mixed-b", path=Path("mixed-b.png"), label="benign", group="mixed"),
                Record(dataset="t", id="mixed-m", path=Path("mixed-m.png"), label="malignant", group="mixed")]
    return records


def ids(split: Split, part: str) -> set[str]:
    return {record.id for record in split.part(part)}


def assert_disjoint_and_complete(split: Split, records: list[Record]) -> None:
    seen = [record.id for part in PARTS for record in split.part(part)]
    assert len(seen) == len(set(seen))
    assert set(seen) | {record_id for record_id, _ in split.exclusions} == {r.id for r in records}


@needs_busi
def test_stratified_split_reproduces_table_1_on_busi():
    records = busi_records()
    assert Counter(r.label for r in records) == {"benign": 437, "malignant": 210}
    splits = [stratified_split(records, seed=seed) for seed in (0, 1, 2)]
    for split in splits:
        counts = split.counts()
        assert counts.loc["benign", ["train", "val", "test"]].tolist() == [305, 66, 66]
        assert counts.loc["malignant", ["train", "val", "test"]].tolist() == [147, 32, 31]
        assert counts.loc["Total"].tolist() == [452, 98, 97, 647]
        assert_disjoint_and_complete(split, records)
        assert split.exclusions == []
    assert ids(splits[0], "test") != ids(splits[1], "test")  # seeds change membership, not counts
    assert ids(stratified_split(records, seed=0), "test") == ids(splits[0], "test")


@needs_mri
def test_stratified_split_reproduces_table_2_on_pooled_mri():
    records = mri_records()
    assert Counter(r.label for r in records) == {"healthy": 740, "sick": 740}
    counts = stratified_split(records, seed=3).counts()
    assert counts.loc["healthy"].tolist() == [518, 111, 111, 740]
    assert counts.loc["sick"].tolist() == [518, 111, 111, 740]
    assert counts.loc["Total"].tolist() == [1036, 222, 222, 1480]


@needs_mri
def test_source_split_keeps_mri_validation_apart_and_carves_validation_from_train():
    records = mri_records()
    split = source_split(records, seed=0)
    assert {r.source_split for r in split.test} == {"validation"} and len(split.test) == 80
    assert {r.source_split for r in split.train + split.val} == {"train"}
    assert len(split.val) == 248 and len(split.train) == 1152  # 15/85 of 1400, rounded up as scikit-learn does
    assert Counter(r.label for r in split.val) == {"healthy": 124, "sick": 124}
    assert_disjoint_and_complete(split, records)
    with pytest.raises(ValueError, match="needs source validation and test"):
        source_split(records, val_from="validation")


def test_source_split_uses_a_source_test_part_and_lists_unused_validation():
    records = [Record(dataset="t", id=f"{part}-{i}", path=Path(f"{part}-{i}.png"), label="ab"[i % 2],
                      source_split=part) for part, n in (("train", 40), ("test", 10), ("validation", 4))
               for i in range(n)]
    split = source_split(records, fractions=(0.8, 0.1, 0.1), seed=1)
    assert ids(split, "test") == {f"test-{i}" for i in range(10)}
    assert len(split.val) == 5 and len(split.train) == 35
    unused = "source validation part not used (val_from='train')"
    assert split.exclusions == [(f"validation-{i}", unused) for i in range(4)]
    assert_disjoint_and_complete(split, records)
    unknown = [Record(dataset="t", id="x", path=Path("odd.png"), label="a", source_split="holdout")]
    with pytest.raises(DataError, match="odd.png"):
        source_split(unknown)


def test_grouped_split_keeps_groups_whole_and_labels_balanced():
    records = planted()
    split = grouped_split(records, seed=0)
    part_of_group: dict[str, set[str]] = {}
    for part in PARTS:
        for record in split.part(part):
            part_of_group.setdefault(record.group, set()).add(part)
    assert all(len(parts) == 1 for parts in part_of_group.values())
    assert split.exclusions == [("mixed-b", "group mixed mixes labels: mixed-b (benign), mixed-m (malignant)"),
                                ("mixed-m", "group mixed mixes labels: mixed-b (benign), mixed-m (malignant)")]
    assert_disjoint_and_complete(split, records)
    counts = split.counts()
    total = counts.loc["Total", "total"]
    for part, share in zip(PARTS, (0.70, 0.15, 0.15)):
        assert abs(counts.loc["Total", part] / total - share) < 0.05
        overall = counts.loc["benign", "total"] / total
        assert abs(counts.loc["benign", part] / counts.loc["Total", part] - overall) < 0.05
    again = grouped_split(records, seed=0)
    assert all(ids(again, part) == ids(split, part) for part in PARTS)
    assert ids(grouped_split(records, seed=1), "test") != ids(split, "test")


def test_grouped_split_needs_groups_and_valid_fractions():
    records = [Record(dataset="t", id="a", path=Path("a.png"), label="x")]
    with pytest.raises(DataError, match="a.png.*no group"):
        grouped_split(records)
    with pytest.raises(ValueError, match="adding up to 1"):
        stratified_split(records, fractions=(0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match="multiples of 1/k"):
        grouped_split(planted(), fractions=(0.7, 0.1999, 0.1001))
    with pytest.raises(KeyError, match="unknown part"):
        stratified_split(planted(), seed=0).part("validation")


@needs_busi
@pytest.mark.slow
def test_grouped_split_on_busi_with_duplicate_groups():
    everything = busi_records(("benign", "malignant", "normal"))
    report = find_duplicates(everything, progress=False)
    records = assign_groups(busi_records(), report)
    split = grouped_split(records, seed=0)
    part_of_group: dict[str, set[str]] = {}
    for part in PARTS:
        for record in split.part(part):
            part_of_group.setdefault(record.group, set()).add(part)
    assert all(len(parts) == 1 for parts in part_of_group.values())
    excluded = dict(split.exclusions)
    assert "benign (433)" in excluded and "malignant (145)" in excluded
    assert "mixes labels" in excluded["benign (433)"]
    mixed = {i for c in report.cross_label() if {"benign", "malignant"} <= set(c.labels) for i in c.ids}
    assert set(excluded) == mixed & {r.id for r in records}
    counts = split.counts()
    assert counts.loc["Total", "total"] == 647 - len(excluded)
    for part in PARTS:
        share = counts.loc["malignant", part] / counts.loc["Total", part]
        assert abs(share - 210 / 647) < 0.03


def test_source_split_carves_whole_groups_when_records_have_them():
    records = [Record(dataset="t", id=f"train-{i}", path=Path(f"train-{i}.png"), label="ab"[(i // 3) % 2],
                      group=f"patient-{i // 3}", source_split="train") for i in range(90)]
    records += [Record(dataset="t", id=f"test-{i}", path=Path(f"test-{i}.png"), label="ab"[i % 2],
                       group=f"other-{i}", source_split="test") for i in range(10)]
    split = source_split(records, seed=2)
    train_groups, val_groups = {r.group for r in split.train}, {r.group for r in split.val}
    assert not train_groups & val_groups
    assert 12 <= len(split.val) <= 21  # about 15/85 of 90, in whole groups of 3
    groups_per_label = Counter({r.group: r.label for r in split.val}.values())
    assert abs(groups_per_label["a"] - groups_per_label["b"]) <= 1  # balanced up to one group
    assert "grouped" in split.method
    assert_disjoint_and_complete(split, records)


def test_train_test_protocol_without_validation():
    records = [r for r in planted() if r.group != "mixed"]
    split = stratified_split(records, fractions=(0.85, 0.0, 0.15), seed=1)
    assert split.val == [] and len(split.test) == int(np.ceil(0.15 * len(records) - 1e-9))
    grouped = grouped_split(records, fractions=(0.85, 0.0, 0.15), seed=1)
    assert grouped.val == [] and grouped.test
    assert not {r.group for r in grouped.train} & {r.group for r in grouped.test}


def test_grouped_split_on_small_data_uses_fewer_folds():
    # 12 single-image groups per class: fewer than the 20 folds of a 70/15/15 split
    records = [Record(dataset="t", id=f"{label}{i}", path=Path(f"{label}{i}.png"), label=label, group=f"{label}{i}")
               for label in ("benign", "malignant") for i in range(12)]
    split = grouped_split(records, seed=0)
    assert_disjoint_and_complete(split, records)
    assert len(split.train) > len(split.val) > 0 and len(split.test) > 0
    for part in PARTS:
        assert {r.label for r in split.part(part)} == {"benign", "malignant"}
