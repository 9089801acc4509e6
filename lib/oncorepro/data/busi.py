"""BUSI loader: Dataset_BUSI_with_GT/<class>/'<class> (N).png' with one or more lesion masks per image."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..records import Record
from .registry import DATASETS, Exclusion, LoadedDataset, image_files, require_folder, sub_folders

INFO = DATASETS["busi"]
TOP_FOLDER = "Dataset_BUSI_with_GT"
_NAME = re.compile(r"^(?P<cls>[a-z]+) \((?P<number>\d+)\)(?P<mask>_mask(?:_(?P<extra>\d+))?)?\.png$")


def load_busi(folder: Path) -> LoadedDataset:
    """One record per image, label = class folder, mask_paths = '_mask.png' then '_mask_K.png' by K."""
    top = require_folder(folder / TOP_FOLDER, INFO)
    exclusions: list[Exclusion] = []
    sub_folders(top, list(INFO.classes), INFO, exclusions)
    records: list[Record] = []
    for class_name, label in INFO.classes.items():
        records += _class_records(top / class_name, class_name, label, exclusions)
    return LoadedDataset(INFO.name, folder, records, exclusions)


def _class_records(folder: Path, class_name: str, label: str, exclusions: list[Exclusion]) -> list[Record]:
    images: dict[int, Path] = {}
    masks: dict[int, list[tuple[int, Path]]] = {}
    for path in image_files(folder, exclusions):
        match = _NAME.match(path.name)
        if match is None:
            raise DataError(path, f"unexpected file name; expected '{class_name} (N).png' or "
                                  f"'{class_name} (N)_mask.png' / '_mask_K.png'")
        if match["cls"] != class_name:
            raise DataError(path, f"file of class {match['cls']!r} inside the {class_name}/ folder")
        number = int(match["number"])
        if match["mask"]:
            masks.setdefault(number, []).append((int(match["extra"] or -1), path))
        else:
            images[number] = path
    if not images:
        raise DataError(folder, "class folder holds no images", fix=INFO.obtain)
    for number, mask_list in sorted(masks.items()):
        if number not in images:
            raise DataError(mask_list[0][1], f"orphan mask: its image '{class_name} ({number}).png' is missing")
    records = []
    for number, path in sorted(images.items()):
        mask_list = sorted(masks.get(number, []))
        if not mask_list or mask_list[0][0] != -1:
            raise DataError(path, f"image has no mask '{path.stem}_mask.png'")
        records.append(Record(dataset=INFO.name, id=path.stem, path=path, label=label,
                              mask_paths=tuple(mask for _, mask in mask_list)))
    return records
