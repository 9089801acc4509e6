"""ISIC binary loader: {train,test}/{benign,malignant}/N.jpg, directly in the dataset folder or under data/."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..records import Record
from .registry import DATASETS, Exclusion, LoadedDataset, image_files, require_folder, sub_folders

INFO = DATASETS["isic_binary"]
SPLITS = ("train", "test")


def images_folder(folder: Path) -> Path:
    """The folder holding train/ and test/: ``folder/data`` (as in the GitHub copy) if it exists, else
    ``folder`` (as in the Kaggle download)."""
    return folder / "data" if (folder / "data").is_dir() else folder


def load_isic(folder: Path) -> LoadedDataset:
    """One record per image; label = class folder, source_split = train/test, no masks."""
    base = images_folder(folder)
    exclusions: list[Exclusion] = []
    records = []
    for split in SPLITS:
        split_folder = require_folder(base / split, INFO)
        classes = sub_folders(split_folder, list(INFO.classes), INFO, exclusions)
        for (class_name, label), class_folder in zip(INFO.classes.items(), classes):
            paths = image_files(class_folder, exclusions)
            if not paths:
                raise DataError(class_folder, "class folder holds no images", fix=INFO.obtain)
            records += [Record(dataset=INFO.name, id=f"{split}/{class_name}/{path.stem}", path=path,
                               label=label, source_split=split) for path in paths]
    return LoadedDataset(INFO.name, folder, records, exclusions)
