"""What a dataset holds, read from the files themselves: cards, class counts, file formats and masks."""

from __future__ import annotations

from collections import Counter

import pandas as pd
from PIL import Image

from ..records import Record
from .registry import DATASETS, LoadedDataset


def dataset_cards() -> pd.DataFrame:
    """One row per registered dataset: title, modality, classes, source, licence and citation."""
    rows = [{"dataset": name, "title": info.title, "modality": info.modality,
             "classes": ", ".join(sorted(set(info.classes.values()))), "source": info.source,
             "licence": info.licence, "citation": info.citation} for name, info in DATASETS.items()]
    return pd.DataFrame(rows).set_index("dataset")


def class_counts(loaded: LoadedDataset) -> pd.DataFrame:
    """Images per class and per the dataset's own split (if it has one), with totals."""
    frame = pd.DataFrame({"label": [r.label for r in loaded.records],
                          "split": [r.source_split or "all" for r in loaded.records]})
    table = pd.crosstab(frame["label"], frame["split"], margins=True, margins_name="total")
    if list(frame["split"].unique()) == ["all"]:
        table = table.drop(columns="all")
    return table.rename_axis(index=None, columns=None)


def format_census(records: list[Record]) -> pd.DataFrame:
    """How the image files are really stored (format sniffed from the bytes, colour mode, file suffix)."""
    counts: Counter = Counter()
    for record in records:
        with Image.open(record.path) as image:
            counts[(image.format, image.mode, record.path.suffix.lower())] += 1
    rows = [{"format": f, "mode": m, "suffix": s, "images": n} for (f, m, s), n in sorted(counts.items())]
    return pd.DataFrame(rows)


def mask_census(records: list[Record]) -> pd.DataFrame:
    """Images per class by number of mask files (several masks are merged by pixel-wise maximum)."""
    frame = pd.DataFrame({"label": [r.label for r in records], "masks": [len(r.mask_paths) for r in records]})
    return pd.crosstab(frame["label"], frame["masks"]).rename_axis(index=None, columns="mask files")
