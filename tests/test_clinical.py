"""The clinical-sheet parser on the real BrEaST-Lesions-USG spreadsheet (read-only; skipped only where the folder
is absent), on hand-made rows and on the synthetic sheet."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oncorepro import clinical
from oncorepro.data import load_dataset
from oncorepro.data.breast_lesions_usg import SHEET
from oncorepro.data.synthetic import class_counts, write_synthetic
from oncorepro.errors import DataError
from oncorepro.paths import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data"
LEAKY_SOURCES = ("Diagnosis", "Verification", "Interpretation", "BIRADS", "Classification")


@pytest.fixture(scope="module")
def real() -> tuple[Path, pd.DataFrame]:
    folder = SHARED / "breast_lesions_usg"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder / SHEET, clinical.parse_records(load_dataset("breast_lesions_usg", SHARED))


def row(case: int = 1, **cells: str) -> dict[str, str]:
    """A valid benign row as the loader gives it (text cells), with ``cells`` replaced."""
    base = {"CaseID": str(case), "Image_filename": f"case{case:03d}.png",
            "Mask_tumor_filename": f"case{case:03d}_tumor.png", "Mask_other_filename": "", "Pixel_size": "0.0078125",
            "Age": "57", "Tissue_composition": "heterogeneous: predominantly fat", "Signs": "no", "Symptoms": "no",
            "Shape": "oval", "Margin": "circumscribed", "Echogenicity": "hypoechoic", "Posterior_features": "no",
            "Halo": "no", "Calcifications": "no", "Skin_thickening": "no", "Interpretation": "Fibroadenoma",
            "BIRADS": "3", "Verification": "confirmed by follow-up care", "Diagnosis": "not applicable",
            "Classification": "benign", "case_id": f"case{case:03d}"}
    return {**base, **cells}


def test_every_real_column_has_a_role_and_the_dictionary_matches(real):
    sheet, _ = real
    header = pd.read_excel(sheet, sheet_name=0, nrows=0).columns
    assert list(header) == list(clinical.COLUMNS)
    descriptions = clinical.data_dictionary(sheet)
    assert set(descriptions) == set(clinical.COLUMNS)
    assert descriptions["Diagnosis"] == "histological type of mass"
    for role in clinical.COLUMNS.values():
        assert role.kind in clinical.KINDS and role.stage in clinical.STAGES and role.note


def test_real_sheet_parses_with_provenance_counts(real):
    _, parsed = real
    assert parsed.shape[0] == 256 and parsed.index[0] == "case001" and parsed.index.is_unique
    assert parsed["Age"].isna().sum() == 42
    assert parsed["Age"].min() == 18 and parsed["Age"].max() == 87
    assert parsed["BIRADS"].cat.ordered
    assert parsed["BIRADS"].value_counts().sort_index().to_dict() == {
        "1": 4, "2": 30, "3": 37, "4a": 44, "4b": 46, "4c": 49, "5": 46}
    assert parsed["Classification"].value_counts().to_dict() == {"benign": 154, "malignant": 98, "normal": 4}
    assert np.bincount(clinical.target(parsed)).tolist() == [154, 98, 4]
    # Multi-valued cells counted part by part (the sheet's '&'-joined values).
    assert parsed["Signs=palpable"].sum() == 58 and parsed["Signs=not available"].sum() == 46
    assert parsed["Margin=indistinct"].sum() == 115 and parsed["Margin=circumscribed"].sum() == 115
    assert parsed["Tissue_composition=lactating"].sum() == 7
    assert parsed["Diagnosis=Invasive carcinoma of no special type (NST)"].sum() == 66
    assert parsed.loc["case001", "Interpretation=Breast scar (radiotherapy)"] == 1


def test_real_feature_sets_keep_leaky_columns_out_of_the_early_stages(real):
    _, parsed = real
    sources = {}
    for stage in ("before_imaging", "with_descriptors", "with_assessment", "all"):
        matrix, names = clinical.feature_matrix(parsed, stage)
        assert list(matrix.columns) == names and matrix.shape[0] == 256
        assert matrix.drop(columns="Age").notna().all().all()
        sources[stage] = {clinical.source_column(name) for name in names}
    assert sources["before_imaging"] == {"Age", "Tissue_composition", "Signs", "Symptoms"}
    assert not sources["with_descriptors"] & set(LEAKY_SOURCES)
    assert {"Shape", "Margin", "Halo"} <= sources["with_descriptors"]
    assert sources["with_assessment"] - sources["with_descriptors"] == {"BIRADS", "Interpretation"}
    assert sources["all"] - sources["with_assessment"] == {"Diagnosis", "Verification"}
    assert "Classification" not in sources["all"] and "CaseID" not in sources["all"]
    assert clinical.feature_columns("radiologist") == clinical.feature_columns("with_descriptors")
    with pytest.raises(ValueError, match="unknown stage 'later'"):
        clinical.feature_matrix(parsed, "later")


def test_normal_cases_are_excluded_by_name(real):
    _, parsed = real
    kept, excluded = clinical.benign_vs_malignant(parsed)
    assert excluded["case_id"].tolist() == ["case045", "case061", "case209", "case213"]
    assert excluded["reason"].str.contains("no tumor mask").all()
    assert len(kept) == 252 and set(clinical.target(kept)) == {0, 1}


def test_feature_matrix_encodes_each_kind():
    parsed = clinical.parse_clinical([row(1), row(2, Age="not available", BIRADS="4c", Shape="irregular")])
    matrix, _ = clinical.feature_matrix(parsed, "all")
    assert matrix.loc["case001", "Age"] == 57 and math.isnan(matrix.loc["case002", "Age"])
    assert matrix["Age=not available"].tolist() == [0, 1]
    assert matrix["BIRADS"].tolist() == [2, 5]  # codes of 1 < 2 < 3 < 4a < 4b < 4c < 5
    shape = matrix[[f"Shape={value}" for value in clinical.VOCABULARY["Shape"]]]
    assert shape.sum(axis=1).tolist() == [1, 1] and matrix["Shape=irregular"].tolist() == [0, 1]


def test_multi_valued_cells_become_indicators():
    parsed = clinical.parse_clinical([row(7, Signs="redness&warmth&palpable",
                                          Margin="not circumscribed - spiculated&indistinct",
                                          Tissue_composition="lactating&homogeneous: fibroglandular")])
    signs = parsed.filter(like="Signs=").iloc[0]
    assert signs[signs == 1].index.tolist() == ["Signs=palpable", "Signs=redness", "Signs=warmth"]
    margin = parsed.filter(like="Margin=").iloc[0]
    assert margin[margin == 1].index.tolist() == ["Margin=spiculated", "Margin=indistinct"]
    tissue = parsed.filter(like="Tissue_composition=").iloc[0]
    assert tissue[tissue == 1].index.tolist() == ["Tissue_composition=homogeneous: fibroglandular",
                                                  "Tissue_composition=lactating"]
    assert parsed.filter(like="=").dtypes.eq(np.int8).all()


@pytest.mark.parametrize("cells, message", [
    ({"Age": ""}, r"<test>: row 3 \(case002\), column 'Age': empty cell"),
    ({"Shape": "ovale"}, r"row 3 \(case002\), column 'Shape': unexpected value 'ovale'; known values: 'oval', "),
    ({"Signs": "palpable&itching"}, r"row 3 \(case002\), column 'Signs': unexpected value 'itching' in "
                                    r"'palpable&itching'; known values: 'no', 'palpable'"),
    ({"Signs": "no&palpable"}, r"row 3 \(case002\), column 'Signs': 'no&palpable' joins 'no' with other values"),
    ({"Margin": "spiculated"}, r"row 3 \(case002\), column 'Margin': unexpected value 'spiculated'; expected"),
    ({"BIRADS": "4"}, r"row 3 \(case002\), column 'BIRADS': unexpected value '4'"),
    ({"Age": "57 years"}, r"row 3 \(case002\), column 'Age': unexpected value '57 years'"),
    ({"case_id": "case009"}, r"row 3: case_id 'case009' does not match CaseID 2"),
])
def test_bad_cells_name_the_row_the_column_and_the_value(cells, message):
    with pytest.raises(DataError, match=message):
        clinical.parse_clinical([row(1), row(2, **cells)], source="<test>")


def test_unknown_or_missing_columns_and_repeated_cases_are_errors():
    with pytest.raises(DataError, match=r"sheet.xlsx: unknown column 'Orientation'"):
        clinical.parse_clinical([{**row(1), "Orientation": "parallel"}], source="sheet.xlsx")
    without_halo = {key: value for key, value in row(1).items() if key != "Halo"}
    with pytest.raises(DataError, match="column 'Halo' is missing"):
        clinical.parse_clinical([without_halo])
    with pytest.raises(DataError, match=r"row 3 \(case001\): CaseID repeats row 2"):
        clinical.parse_clinical([row(1), row(1)])


def test_synthetic_sheet_parses_like_the_real_one(tmp_path):
    folder = write_synthetic("breast_lesions_usg", tmp_path, n_per_class=8, size=32, seed=3)
    parsed = clinical.parse_records(load_dataset("breast_lesions_usg", tmp_path))
    counts = class_counts("breast_lesions_usg", 8)
    assert parsed["Classification"].value_counts().to_dict() == counts
    assert set(clinical.data_dictionary(folder / SHEET)) == set(clinical.COLUMNS)
    matrix, names = clinical.feature_matrix(parsed, "before_imaging")
    assert matrix.shape == (sum(counts.values()), len(names))
    assert not {clinical.source_column(name) for name in names} & set(LEAKY_SOURCES)
