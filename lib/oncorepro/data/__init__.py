"""The five datasets: catalogue, loaders (one Record per image, every set-aside file listed) and checksums."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..paths import resolve_data_root
from .breast_lesions_usg import load_breast_lesions_usg
from .breast_mri import load_breast_mri
from .busi import load_busi
from .checksums import VerifyReport, dataset_digest, unpack_mri, verify_checksums
from .isic import load_isic
from .mibus import load_mibus
from .registry import DATASETS, DatasetInfo, Exclusion, LoadedDataset, dataset_info, require_folder

_LOADERS: dict[str, Callable[[Path], LoadedDataset]] = {
    "busi": load_busi,
    "breast_mri": load_breast_mri,
    "isic_binary": load_isic,
    "breast_lesions_usg": load_breast_lesions_usg,
    "mibus": load_mibus,
}


def load_dataset(name: str, data_root: str | Path | None = None) -> LoadedDataset:
    """Read dataset ``name`` from ``<data root>/<info.folder>`` and check every image and mask header
    (DataError naming the file for a bad layout, an unreadable image or a mask of the wrong size).
    ``root`` of the result is the dataset folder (for breast_mri: the unpacked archive)."""
    info = dataset_info(name)
    folder = require_folder(resolve_data_root(data_root) / info.folder, info)
    dataset = _LOADERS[name](folder)
    dataset.validate()
    return dataset


__all__ = ["DATASETS", "DatasetInfo", "Exclusion", "LoadedDataset", "VerifyReport", "dataset_digest",
           "dataset_info", "load_dataset", "unpack_mri", "verify_checksums"]
