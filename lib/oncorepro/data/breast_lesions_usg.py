"""BrEaST-Lesions-USG loader: the clinical spreadsheet names each case's image and masks and its class."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..records import Record
from .registry import DATASETS, Exclusion, LoadedDataset, image_files, require_folder

INFO = DATASETS["breast_lesions_usg"]
SHEET = "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx"
IMAGE_FOLDER = "BrEaST-Lesions_USG-images_and_masks"
REQUIRED_COLUMNS = ("CaseID", "Image_filename", "Mask_tumor_filename", "Mask_other_filename", "Classification")


def load_breast_lesions_usg(folder: Path) -> LoadedDataset:
    """One record per spreadsheet row: label = Classification, mask_paths = tumor mask then the other
    masks ('&'-separated), group = meta["case_id"] = 'caseNNN'; meta also holds the row's raw cells
    (text as in the sheet, empty cells as '')."""
    sheet = folder / SHEET
    if not sheet.is_file():
        require_folder(folder, INFO)
        raise DataError(sheet, "clinical spreadsheet not found", fix=INFO.obtain)
    image_folder = require_folder(folder / IMAGE_FOLDER, INFO)
    rows = _read_rows(sheet)
    exclusions: list[Exclusion] = []
    on_disk = {path.name: path for path in image_files(image_folder, exclusions)}
    referenced: set[str] = set()
    records = []
    for number, row in enumerate(rows, start=2):  # spreadsheet row number (row 1 is the header)
        names = [row["Image_filename"], row["Mask_tumor_filename"],
                 *row["Mask_other_filename"].split("&")]
        names = [name.strip() for name in names if name.strip()]
        if not row["Image_filename"].strip():
            raise DataError(sheet, f"row {number}: Image_filename is empty")
        for name in names:
            if name in referenced:
                raise DataError(image_folder / name, f"named twice in {SHEET} (again in row {number})")
            if name not in on_disk:
                raise DataError(image_folder / name, f"file named in {SHEET} row {number} is missing")
            referenced.add(name)
        label = INFO.classes.get(row["Classification"].strip())
        if label is None:
            raise DataError(sheet, f"row {number}: Classification {row['Classification']!r} is not one of "
                                   f"{', '.join(INFO.classes)}")
        if label != "normal" and not row["Mask_tumor_filename"].strip():
            raise DataError(sheet, f"row {number}: a {label} case without Mask_tumor_filename (only normal scans "
                                   "have no lesion mask; under ROI the image would be blacked out)")
        try:
            case_id = f"case{int(row['CaseID']):03d}"
        except ValueError:
            raise DataError(sheet, f"row {number}: CaseID {row['CaseID']!r} is not a number") from None
        image = on_disk[names[0]]
        records.append(Record(dataset=INFO.name, id=image.stem, path=image, label=label,
                              mask_paths=tuple(on_disk[name] for name in names[1:]), group=case_id,
                              meta={**row, "case_id": case_id}))
    orphans = sorted(set(on_disk) - referenced)
    if orphans:
        raise DataError(image_folder / orphans[0], f"PNG not referenced by {SHEET} "
                                                   f"({len(orphans)} such file(s))")
    return LoadedDataset(INFO.name, folder, records, exclusions)


def _read_rows(sheet: Path) -> list[dict[str, str]]:
    """The first worksheet as text cells, checking the required columns."""
    try:
        frame = pd.read_excel(sheet, sheet_name=0, dtype=str, keep_default_na=False)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise DataError(sheet, f"cannot be read as a spreadsheet ({error})") from error
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            raise DataError(sheet, f"required column {column!r} is missing from the first worksheet "
                                   f"(columns: {', '.join(map(str, frame.columns))})")
    if frame.empty:
        raise DataError(sheet, "the first worksheet has no rows")
    return frame.to_dict(orient="records")
