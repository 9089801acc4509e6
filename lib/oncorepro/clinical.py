"""BrEaST-Lesions-USG clinical spreadsheet as typed features: every column's role, its vocabulary and the
design matrices of the feature sets available at each clinical stage.

The "Data Dictionary" sheet gives one description per column but no value lists, so the vocabularies below
are the values found in all 256 rows of the TCIA sheet (version 2023-12-15), written out per column. The
sheet spells a missing value "not available" and a descriptor that does not apply (the four normal cases
have no lesion) "not applicable"; an empty cell is allowed only in the two mask-filename columns.

Stages (``ColumnRole.stage``), in clinical order:

- ``before_imaging``: what is known about the patient before the lesion is read (age, tissue composition,
  signs, symptoms);
- ``radiologist``: the BI-RADS lexicon descriptors of the lesion read from the ultrasound image (and the
  image's pixel size, an acquisition setting);
- ``after_diagnosis``: the radiologist's conclusion (BI-RADS category, interpretation) and everything set
  by or after the reference standard (verification method, histology, the class itself).

Two columns are ``kind="leaky"``: Verification and Diagnosis are set by the reference standard itself
(biopsy histology or follow-up), so they give the class away. The paper's "histological information" is
this Diagnosis column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .data.breast_lesions_usg import SHEET
from .data.registry import LoadedDataset
from .errors import DataError

KINDS = ("numeric", "ordinal", "categorical", "multi", "leaky", "id", "target")
STAGES = ("before_imaging", "radiologist", "after_diagnosis")
NOT_AVAILABLE, NOT_APPLICABLE = "not available", "not applicable"
CLASSES = ("benign", "malignant", "normal")
SEPARATOR = "&"
MARGIN_PREFIX = "not circumscribed - "
MARGIN_FEATURES = ("spiculated", "angular", "microlobulated", "indistinct")
LOADER_KEY = "case_id"  # added to each row by oncorepro.data (case001 ...); not a sheet column


@dataclass(frozen=True)
class ColumnRole:
    """What one spreadsheet column is (kind), when it becomes known (stage) and why (note)."""

    name: str
    kind: str
    stage: str
    note: str


def _role(name: str, kind: str, stage: str, note: str) -> tuple[str, ColumnRole]:
    if kind not in KINDS or stage not in STAGES:
        raise ValueError(f"bad role for {name}: kind {kind!r}, stage {stage!r}")
    return name, ColumnRole(name, kind, stage, note)


COLUMNS: dict[str, ColumnRole] = dict([
    _role("CaseID", "id", "before_imaging", "Dictionary 'Case_ID': unique identifier (1..256); never a feature."),
    _role("Image_filename", "id", "radiologist", "file name of the B-mode image (caseNNN.png); never a feature."),
    _role("Mask_tumor_filename", "id", "radiologist",
          "file name of the tumor mask; empty exactly for the 4 normal cases, so as a feature it would give "
          "the normal class away; never a feature."),
    _role("Mask_other_filename", "id", "radiologist",
          "'&'-joined masks of other suspicious lesions (7 cases); annotation file names, never a feature."),
    _role("Pixel_size", "numeric", "radiologist",
          "pixel size in cm: set by the scan depth/zoom the sonographer chose for this image; known with the "
          "image, not a clinical variable."),
    _role("Age", "numeric", "before_imaging", "age of patient in years; 'not available' (42 cases) -> NaN."),
    _role("Tissue_composition", "multi", "before_imaging",
          "'breast tissue composition assessed during examination' (BI-RADS US background echotexture, a "
          "breast-level not lesion-level property) plus 'lactating'; grouped with the patient data as the "
          "paper does."),
    _role("Signs", "multi", "before_imaging", "objective abnormalities perceived by the physician (palpable, "
                                              "skin/nipple retraction, ...)."),
    _role("Symptoms", "multi", "before_imaging", "subjective complaints and history reported by the patient."),
    _role("Shape", "categorical", "radiologist", "BI-RADS lexicon descriptor of the lesion."),
    _role("Margin", "multi", "radiologist",
          "BI-RADS margin: 'circumscribed' or 'not circumscribed - ' with one or more of spiculated, angular, "
          "microlobulated, indistinct."),
    _role("Echogenicity", "categorical", "radiologist", "BI-RADS echo pattern."),
    _role("Posterior_features", "categorical", "radiologist", "BI-RADS posterior acoustic features."),
    _role("Halo", "categorical", "radiologist", "echogenic halo around the lesion."),
    _role("Calcifications", "categorical", "radiologist", "BI-RADS calcifications."),
    _role("Skin_thickening", "categorical", "radiologist", "BI-RADS associated feature."),
    _role("Interpretation", "multi", "after_diagnosis",
          "the radiologist's differential ('Suspicion of malignancy', 'Fibroadenoma', ...): a conclusion about "
          "the class, not a description of the image."),
    _role("BIRADS", "ordinal", "after_diagnosis",
          "BI-RADS final assessment category: the radiologist's estimate of the malignancy risk (1 = normal "
          "for all 4 normal cases; 4c/5 = 81 of 95 cases malignant)."),
    _role("Verification", "leaky", "after_diagnosis",
          "how the class was established: 'confirmed by follow-up care' only for benign cases, 'not "
          "applicable' only for normal ones; set by the reference standard."),
    _role("Diagnosis", "leaky", "after_diagnosis",
          "histological type from the biopsy (the paper's 'histological information'): determines the class."),
    _role("Classification", "target", "after_diagnosis", "lesion type benign / malignant / normal: the label."),
])

# Value lists: every value in the real sheet (for multi-valued columns, every '&'-separated part).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "Tissue_composition": ("heterogeneous: predominantly fat", "heterogeneous: predominantly fibroglandular",
                           "homogeneous: fat", "homogeneous: fibroglandular", "lactating", NOT_AVAILABLE),
    "Signs": ("no", "palpable", "breast scar", "skin retraction", "nipple retraction", "redness", "warmth",
              "peau d`orange", NOT_AVAILABLE),
    "Symptoms": ("no", "family history of breast/ovarian cancer", "HRT/hormonal contraception", "nipple discharge",
                 "personal history of breast cancer", "breast injury", NOT_AVAILABLE),
    "Shape": ("oval", "round", "irregular", NOT_APPLICABLE),
    # Margin indicators: the margin features after the "not circumscribed - " prefix (see _parts).
    "Margin": ("circumscribed", *MARGIN_FEATURES, NOT_APPLICABLE),
    "Echogenicity": ("anechoic", "hypoechoic", "isoechoic", "hyperechoic", "heterogeneous", "complex cystic/solid",
                     NOT_APPLICABLE),
    "Posterior_features": ("no", "enhancement", "shadowing", "combined", NOT_APPLICABLE),
    "Halo": ("no", "yes", NOT_APPLICABLE),
    "Calcifications": ("no", "in a mass", "intraductal", "indefinable", NOT_APPLICABLE),
    "Skin_thickening": ("no", "yes"),
    "Interpretation": (
        "Suspicion of malignancy", "Fibroadenoma", "Intraductal papilloma", "Dysplasia",
        "Cyst filled with thick fluid", "Complex cyst / Non-simple cyst", "Mammary duct ectasia",
        "Duct filled with thick fluid", "Hamartoma", "Breast scar (surgery)", "Breast scar (radiotherapy)",
        "Mastitis", "Silicone implant", "Implant rupture", "Simple cyst", "Intramammary lymph node", "Hematoma",
        "Lipoma", "Adenosis", "Phyllodes tumor", "Lacteal cyst", "Fat necrosis", "Isolated calcifications",
        "Abscess", "Hemangioma", "Seroma", "Lactating adenoma", NOT_APPLICABLE),
    "BIRADS": ("1", "2", "3", "4a", "4b", "4c", "5"),
    "Verification": ("confirmed by biopsy", "confirmed by follow-up care", NOT_APPLICABLE),
    "Diagnosis": (
        "Invasive carcinoma of no special type (NST)", "Invasive lobular carcinoma", "Ductal carcinoma in situ (DCIS)",
        "Lobular carcinoma in situ (LCIS)", "Invasive micropapillary carcinoma", "Mucinous carcinoma",
        "Cribriform carcinoma", "Tubular carcinoma", "Encapsulated papillary carcinoma",
        "Invasive papillary carcinoma", "Solid papillary carcinoma in situ", "Metaplastic carcinoma",
        "Apocrine carcinoma", "Sebaceous carcinoma", "Lymphoma", "Fibroadenoma", "Benign mammary dysplasia",
        "Fibrosclerosis", "Intraductal papilloma", "Usual ductal hyperplasia (UDH)",
        "Pseudoangiomatous stromal hyperplasia (PASH)", "Phyllodes tumor", "Fibrocystic change", "Mastitis",
        "Intramammary lymph node", "Lactating adenoma", "Complex sclerosing lesion", "Hamartoma", "Fat necrosis",
        "Adenosis", "Simple cyst", "Atypical lobular hyperplasia (ALH)", "Fibroadenosis", NOT_APPLICABLE),
    "Classification": CLASSES,
}
EXCLUSIVE = frozenset({"no", NOT_AVAILABLE, NOT_APPLICABLE, "circumscribed"})  # never joined with another part
MAY_BE_EMPTY = frozenset({"Mask_tumor_filename", "Mask_other_filename"})

# Cumulative feature sets: which stages' columns each includes, and whether kind="leaky" columns are in.
FEATURE_SETS: dict[str, tuple[tuple[str, ...], bool]] = {
    "before_imaging": (("before_imaging",), False),
    "with_descriptors": (("before_imaging", "radiologist"), False),
    "with_assessment": (STAGES, False),
    "all": (STAGES, True),
}
STAGE_ALIASES = {"radiologist": "with_descriptors", "after_diagnosis": "all"}


def source_column(feature: str) -> str:
    """The spreadsheet column a parsed or design column comes from ("Signs=palpable" -> "Signs")."""
    return feature.partition("=")[0]


def _where(number: int, case: str) -> str:
    return f"row {number} ({case})"


def _unexpected(column: str, value: str, cell: str, where: str, source: str | Path) -> DataError:
    shown = repr(value) if value == cell else f"{value!r} in {cell!r}"
    return DataError(source, f"{where}, column {column!r}: unexpected value {shown}; known values: "
                             f"{', '.join(map(repr, VOCABULARY[column]))}",
                     fix="correct the cell, or add the value to oncorepro.clinical.VOCABULARY if a release of "
                         "the dataset introduces it")


def _one(column: str, cell: str, where: str, source: str | Path) -> str:
    """A single-valued cell, checked against the column's vocabulary."""
    if cell not in VOCABULARY[column]:
        raise _unexpected(column, cell, cell, where, source)
    return cell


def _parts(column: str, cell: str, where: str, source: str | Path) -> list[str]:
    """The '&'-separated values of a multi-valued cell, checked against the column's vocabulary. Margin is
    'circumscribed', 'not applicable' or 'not circumscribed - ' followed by '&'-joined margin features."""
    text, known = cell, VOCABULARY[column]
    if column == "Margin" and cell not in EXCLUSIVE:
        if not cell.startswith(MARGIN_PREFIX):
            raise DataError(source, f"{where}, column 'Margin': unexpected value {cell!r}; expected "
                                    f"'circumscribed', 'not applicable' or {MARGIN_PREFIX!r} followed by "
                                    f"'&'-joined features of {', '.join(MARGIN_FEATURES)}")
        text, known = cell[len(MARGIN_PREFIX):], MARGIN_FEATURES
    parts = [part.strip() for part in text.split(SEPARATOR)]
    for part in parts:
        if part not in known:
            raise _unexpected(column, part, cell, where, source)
    if len(parts) > 1 and EXCLUSIVE.intersection(parts):
        raise DataError(source, f"{where}, column {column!r}: {cell!r} joins "
                                f"{sorted(EXCLUSIVE.intersection(parts))[0]!r} with other values")
    if len(set(parts)) != len(parts):
        raise DataError(source, f"{where}, column {column!r}: {cell!r} repeats a value")
    return parts


def _number(column: str, cell: str, where: str, source: str | Path) -> float:
    if column == "Age" and cell == NOT_AVAILABLE:
        return float("nan")
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    low, high = (0.0, 120.0) if column == "Age" else (0.0, 1.0)
    if not low < value <= high:
        allowed = "an age in years or 'not available'" if column == "Age" else "a pixel size in cm (0-1]"
        raise DataError(source, f"{where}, column {column!r}: unexpected value {cell!r}; expected {allowed}")
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_clinical(rows: Sequence[Mapping[str, Any]], *, source: str | Path = "<sheet>") -> pd.DataFrame:
    """One typed row per case, indexed by case_id ("case001"), from the sheet's rows as text cells.

    Columns: Age and Pixel_size as float (Age "not available" -> NaN); BIRADS as an ordered Categorical;
    Shape, Echogenicity, Posterior_features, Halo, Calcifications, Skin_thickening and Classification as
    Categoricals over their vocabulary; every multi-valued and leaky column as one 0/1 indicator column
    "<column>=<value>" per vocabulary value (Margin "not circumscribed - angular&indistinct" sets
    Margin=angular and Margin=indistinct). Id columns are checked (CaseID a unique positive integer,
    Image_filename present) and not kept. Raises DataError naming ``source``, the row (spreadsheet row number,
    header = row 1, and case) and the column for an unknown or missing column, an empty cell or a value
    outside the vocabulary.
    """
    if not rows:
        raise DataError(source, "the clinical sheet has no rows")
    header = list(rows[0])
    unknown = [c for c in header if c not in COLUMNS and c != LOADER_KEY]
    if unknown:
        raise DataError(source, f"unknown column {unknown[0]!r}: it has no role in oncorepro.clinical.COLUMNS",
                        fix="add a ColumnRole for it, saying what it is and when it becomes known")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(source, f"column {missing[0]!r} is missing (columns: {', '.join(header)})")
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        if list(row) != header:
            raise DataError(source, f"row {number}: columns differ from the first row's")
        cells = {column: _text(value) for column, value in row.items()}
        case = _case_id(cells, number, source)
        where = _where(number, case)
        if case in seen:
            raise DataError(source, f"{where}: CaseID repeats row {seen[case]}")
        seen[case] = number
        parsed: dict[str, Any] = {LOADER_KEY: case}
        for column, role in COLUMNS.items():
            cell = cells[column]
            if not cell:
                if column in MAY_BE_EMPTY:
                    continue
                hint = " (the sheet writes a missing value as 'not available')" if column == "Age" else ""
                raise DataError(source, f"{where}, column {column!r}: empty cell{hint}",
                                fix="use the TCIA sheet; a re-saved copy blanked Age in 42 rows"
                                if column == "Age" else None)
            if role.kind == "numeric":
                parsed[column] = _number(column, cell, where, source)
            elif role.kind in ("ordinal", "categorical", "target"):
                parsed[column] = _one(column, cell, where, source)
            elif role.kind in ("multi", "leaky"):
                present = set(_parts(column, cell, where, source))
                parsed.update({f"{column}={value}": int(value in present) for value in VOCABULARY[column]})
        records.append(parsed)
    frame = pd.DataFrame.from_records(records).set_index(LOADER_KEY)
    for column, role in COLUMNS.items():
        if role.kind in ("ordinal", "categorical", "target"):
            frame[column] = pd.Categorical(frame[column], categories=VOCABULARY[column],
                                           ordered=role.kind == "ordinal")
        elif role.kind in ("multi", "leaky"):
            names = [f"{column}={value}" for value in VOCABULARY[column]]
            frame[names] = frame[names].astype(np.int8)
    return frame


def _case_id(cells: Mapping[str, str], number: int, source: str | Path) -> str:
    try:
        case_number = int(cells["CaseID"])
    except ValueError:
        raise DataError(source, f"row {number}, column 'CaseID': {cells['CaseID']!r} is not a positive "
                                f"integer") from None
    if case_number < 1:
        raise DataError(source, f"row {number}, column 'CaseID': {case_number} is not a positive integer")
    case = f"case{case_number:03d}"
    if LOADER_KEY in cells and cells[LOADER_KEY] != case:
        raise DataError(source, f"row {number}: case_id {cells[LOADER_KEY]!r} does not match CaseID "
                                f"{cells['CaseID']}")
    return case


def parse_records(dataset: LoadedDataset) -> pd.DataFrame:
    """:func:`parse_clinical` of a loaded BrEaST-Lesions-USG dataset (``oncorepro.data.load_dataset``):
    its records' ``meta`` rows, errors naming the dataset's spreadsheet."""
    return parse_clinical([record.meta for record in dataset.records], source=Path(dataset.root) / SHEET)


def data_dictionary(path: str | Path) -> dict[str, str]:
    """The "Data Dictionary" sheet as {column: description}, checked against COLUMNS: every entry must be a
    column with a role and every column must have an entry (the sheet spells CaseID "Case_ID"; blank
    descriptions of the BI-RADS descriptor rows are returned as "")."""
    path = Path(path)
    try:
        sheet = pd.read_excel(path, sheet_name="Data Dictionary", dtype=str, keep_default_na=False)
    except (ValueError, OSError, KeyError) as error:
        raise DataError(path, f"has no readable 'Data Dictionary' sheet ({error})") from error
    if list(sheet.columns[:2]) != ["type", "description"]:
        raise DataError(path, f"'Data Dictionary' header is {list(sheet.columns)}, expected type, description")
    entries = {("CaseID" if name == "Case_ID" else name): description
               for name, description in zip(sheet["type"], sheet["description"])}
    unknown = [name for name in entries if name not in COLUMNS]
    if unknown:
        raise DataError(path, f"'Data Dictionary' names column {unknown[0]!r}, which has no role in "
                              f"oncorepro.clinical.COLUMNS")
    absent = [name for name in COLUMNS if name not in entries]
    if absent:
        raise DataError(path, f"'Data Dictionary' has no entry for column {absent[0]!r}")
    return entries


def _feature_set(stage: str) -> tuple[tuple[str, ...], bool]:
    name = STAGE_ALIASES.get(stage, stage)
    if name not in FEATURE_SETS:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join([*FEATURE_SETS, *STAGE_ALIASES])}")
    return FEATURE_SETS[name]


def feature_columns(stage: str = "all") -> list[str]:
    """The spreadsheet columns a feature set uses (cumulative: "before_imaging" (a); "with_descriptors" =
    (a) + lesion descriptors (b), alias "radiologist"; "with_assessment" = everything but the two leaky
    reference-standard columns, i.e. (a) + (b) + BI-RADS category and interpretation; "all" = every
    non-id, non-target column, leaky ones included (what the paper did), alias "after_diagnosis")."""
    stages, leaky = _feature_set(stage)
    return [name for name, role in COLUMNS.items()
            if role.stage in stages and role.kind not in ("id", "target") and (leaky or role.kind != "leaky")]


def feature_matrix(parsed: pd.DataFrame, stage: str = "all") -> tuple[pd.DataFrame, list[str]]:
    """Numeric design matrix (float, index case_id) of the columns available at ``stage`` (see
    :func:`feature_columns`) and its column names.

    Age (NaN kept for a pipeline's imputer) with an "Age=not available" indicator; Pixel_size; BIRADS as its
    ordinal code 0..6 (1 < 2 < 3 < 4a < 4b < 4c < 5); categoricals one-hot over their full vocabulary
    ("Shape=oval", ...); multi-valued and leaky columns as their indicators. Every name is "<column>" or
    "<column>=<value>", so :func:`source_column` maps it back to the spreadsheet.
    """
    blocks: list[pd.DataFrame] = []
    for column in feature_columns(stage):
        kind = COLUMNS[column].kind
        if kind == "numeric":
            values = parsed[column].astype(float)
            block = values.to_frame()
            if column == "Age":
                block[f"{column}={NOT_AVAILABLE}"] = values.isna().astype(float)
        elif kind == "ordinal":
            block = parsed[column].cat.codes.astype(float).to_frame(column)
        elif kind == "categorical":
            block = pd.DataFrame({f"{column}={value}": (parsed[column] == value).astype(float)
                                  for value in VOCABULARY[column]}, index=parsed.index)
        else:
            block = parsed[[f"{column}={value}" for value in VOCABULARY[column]]].astype(float)
        blocks.append(block)
    matrix = pd.concat(blocks, axis=1)
    return matrix, list(matrix.columns)


def target(parsed: pd.DataFrame) -> np.ndarray:
    """Class indices of Classification in CLASSES order: benign 0, malignant 1, normal 2."""
    return parsed["Classification"].cat.codes.to_numpy(dtype=np.int64)


def benign_vs_malignant(parsed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cases labelled benign or malignant, and the excluded ones (case_id, classification, reason).

    The 4 normal cases (045, 061, 209, 213) are images without a lesion: no tumor mask, every lesion
    descriptor 'not applicable', BI-RADS 1. A lesion classifier has nothing to classify in them, and with
    4 cases their class cannot be stratified over 5 folds nor given a meaningful per-class estimate.
    """
    normal = parsed["Classification"] == "normal"
    excluded = pd.DataFrame({"case_id": parsed.index[normal], "classification": "normal",
                             "reason": "normal scan without a lesion (no tumor mask, descriptors 'not "
                                       "applicable', BI-RADS 1): outside a benign-vs-malignant lesion task"})
    return parsed[~normal].copy(), excluded


def exclusion_note(excluded: pd.DataFrame, case: str = "case_id") -> str:
    """Excluded cases (columns ``case`` and ``reason``) named and counted per reason ("" when none)."""
    return "; ".join(f"{len(cases)} case(s) ({', '.join(map(str, cases))}) excluded: {reason}"
                     for reason, cases in excluded.groupby("reason", sort=False)[case])
