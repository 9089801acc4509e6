"""Breast MRI loader: "Breast Cancer Patients MRI's/{train,validation}/{Healthy,Sick}/[HS]_N.jpg".

The files are BMP despite their .jpg names; images are decoded by content (Pillow sniffs the format).
Train images also copied into "mri's/{healthy,sick}/P<n>/" get ``meta["patient_folder"]`` (same name and
same bytes); these patient folders are unreliable (duplicates span two patients), so ``group`` stays None.
"""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

from ..errors import DataError
from ..records import Record
from .checksums import MRI_SPLIT_FOLDER, mri_root
from .registry import DATASETS, Exclusion, LoadedDataset, image_files, require_folder, sub_folders

INFO = DATASETS["breast_mri"]
SPLITS = ("train", "validation")
PATIENT_FOLDER = "mri's"
_NAME = re.compile(r"^(?P<prefix>[HS])_(?P<number>\d+)\.jpg$")


def load_breast_mri(folder: Path) -> LoadedDataset:
    """One record per image of the split layout; ``meta["name_anomaly"]`` marks an H_/S_ prefix that
    disagrees with the class folder (all of validation/Healthy is named S_N)."""
    root = mri_root(folder)
    patients = _patient_copies(root / PATIENT_FOLDER)
    exclusions: list[Exclusion] = []
    records = []
    split_root = require_folder(root / MRI_SPLIT_FOLDER, INFO)
    for split, split_folder in zip(SPLITS, sub_folders(split_root, SPLITS, INFO, exclusions, kind="split")):
        classes = sub_folders(split_folder, list(INFO.classes), INFO, exclusions)
        for (class_name, label), class_folder in zip(INFO.classes.items(), classes):
            paths = image_files(class_folder, exclusions)
            if not paths:
                raise DataError(class_folder, "class folder holds no images", fix=INFO.obtain)
            for path in paths:
                match = _NAME.match(path.name)
                if match is None:
                    raise DataError(path, "unexpected file name; expected H_N.jpg or S_N.jpg")
                meta: dict[str, object] = {"name_anomaly": match["prefix"] != class_name[0]}
                if split == "train" and patients:
                    meta["patient_folder"] = _patient_of(path, patients.get((label, path.name), []))
                records.append(Record(dataset=INFO.name, id=f"{split}/{class_name}/{path.stem}", path=path,
                                      label=label, source_split=split, meta=meta))
    return LoadedDataset(INFO.name, root, records, exclusions)


def _patient_copies(folder: Path) -> dict[tuple[str, str], list[Path]]:
    """(label, file name) -> copies in the per-patient folders; empty if the folder is absent."""
    copies: dict[tuple[str, str], list[Path]] = {}
    if not folder.is_dir():
        return copies
    for path in sorted(folder.glob("*/P*/*")):
        copies.setdefault((path.parent.parent.name.lower(), path.name), []).append(path)
    return copies


def _patient_of(image: Path, copies: list[Path]) -> str | None:
    """'<class>/P<n>' of the one per-patient copy with identical bytes, None if there is none or several."""
    same = [copy for copy in copies if filecmp.cmp(image, copy, shallow=False)]
    return f"{same[0].parent.parent.name}/{same[0].parent.name}" if len(same) == 1 else None
