"""Synthetic stand-ins for every dataset, written in the real on-disk layout so the same loaders read them.

``write_synthetic(name, root)`` writes ``root/<name>/`` exactly as the real folder lies under the data root
(file names, image modes, archives, spreadsheets, checksum lists, known quirks); ``synthetic_data_root``
keeps a generated data root in the cache for smoke runs. The images are procedural phantoms whose classes
differ visibly (lesion shape, margin, posterior features; masses; colour variegation), so small models
learn them. Output is byte-identical for equal arguments and ``GENERATOR_VERSION``: bump the version
whenever a change alters any written byte, so cached roots are regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Iterable

from ...paths import cache_dir
from . import breast_lesions_usg, breast_mri, busi, isic, mibus
from .files import write_provenance

GENERATOR_VERSION = "1"
GENERATORS: dict[str, ModuleType] = {"busi": busi, "breast_mri": breast_mri, "isic_binary": isic,
                                     "breast_lesions_usg": breast_lesions_usg, "mibus": mibus}


def class_counts(name: str, n_per_class: int | dict[str, int]) -> dict[str, int]:
    """Images (MIBUS: videos) per class. An int applies to every class, except rare classes of the real data
    (BrEaST-Lesions-USG 'normal') which get max(1, n // 4); a dict must name every class (any case)."""
    module = _generator(name)
    if isinstance(n_per_class, dict):
        given = {str(key).lower(): int(value) for key, value in n_per_class.items()}
        expected = {label.lower(): label for label in module.CLASSES}
        if set(given) != set(expected):
            raise ValueError(f"n_per_class for {name} must name exactly the classes {', '.join(module.CLASSES)}; "
                             f"got {', '.join(map(str, n_per_class))}")
        counts = {expected[key]: value for key, value in given.items()}
    else:
        rare = getattr(module, "RARE_CLASSES", ())
        counts = {label: max(1, n_per_class // 4) if label in rare else int(n_per_class)
                  for label in module.CLASSES}
    too_few = {label: count for label, count in counts.items() if count < module.MIN_PER_CLASS}
    if too_few:
        raise ValueError(f"{name} needs at least {module.MIN_PER_CLASS} per class (it has splits to fill); "
                         f"got {too_few}")
    return {label: counts[label] for label in module.CLASSES}


def write_synthetic(name: str, root: Path, *, n_per_class: int | dict[str, int] = 12, size: int = 64,
                    seed: int = 0) -> Path:
    """Write the synthetic ``name`` dataset into ``root/<name>/`` (which must not exist yet) and return that
    folder. ``size`` is the nominal image side in pixels (sizes vary around it as in the real data)."""
    counts = class_counts(name, n_per_class)
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    folder = Path(root) / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; write synthetic data into a fresh root")
    folder.mkdir(parents=True)
    write_provenance(folder, name, {"generator version": GENERATOR_VERSION, "per class": counts,
                                    "size": size, "seed": seed})
    GENERATORS[name].write(folder, counts, size, seed)
    return folder


def synthetic_data_root(names: Iterable[str], *, n_per_class: int | dict[str, int] = 12, size: int = 64,
                        seed: int = 0) -> Path:
    """A data root in the cache (``cache_dir('synthetic')/<key>``) holding the synthetic ``names``,
    generated on first use into a temporary folder that is then renamed into place, so concurrent or
    interrupted runs never see a partial root."""
    names = sorted(set(names))
    for name in names:
        class_counts(name, n_per_class)
    settings = {"names": names, "n_per_class": n_per_class, "size": size, "seed": seed,
                "version": GENERATOR_VERSION}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    parent = cache_dir("synthetic")
    final = parent / key
    if final.is_dir():
        return final
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=parent))
    try:
        for name in names:
            write_synthetic(name, staging, n_per_class=n_per_class, size=size, seed=seed)
        os.rename(staging, final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _generator(name: str) -> ModuleType:
    try:
        return GENERATORS[name]
    except KeyError:
        raise ValueError(f"no synthetic generator for {name!r}; known: {', '.join(GENERATORS)}") from None
