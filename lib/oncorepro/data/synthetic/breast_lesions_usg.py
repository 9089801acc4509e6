"""Synthetic BrEaST-Lesions-USG: the clinical-data spreadsheet (real sheet names, columns, cell types and
value vocabulary) and BrEaST-Lesions_USG-images_and_masks/caseNNN.png (RGBA), caseNNN_tumor.png,
caseNNN_otherK.png, with SHA256SUMS.

Each case's findings are drawn from class-conditional frequencies close to the real sheet's (malignant:
older, irregular, not circumscribed, halo, BI-RADS 4b-5, biopsy-confirmed carcinoma; benign: oval,
circumscribed, BI-RADS 2-4a, often follow-up only) and the ultrasound phantom is drawn from those same
findings, so image and sheet agree. Normal cases have no tumor mask and 'not applicable' descriptors.
Like the real images, some are colour-tinted and some have a transparent area outside the probe's fan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from openpyxl import Workbook
from openpyxl.styles import Font

from .draws import choose, item_rng
from .files import save_image, save_workbook, write_sha256sums
from .ultrasound import MARGIN_FEATURES, Findings, place_lesion, render, speckle, tissue

CLASSES = ("benign", "malignant", "normal")
RARE_CLASSES = ("normal",)
MIN_PER_CLASS = 1
SPREADSHEET = "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx"
IMAGES = "BrEaST-Lesions_USG-images_and_masks"
SHEET = "BrEaST-Lesions-USG clinical dat"
COLUMNS = ("CaseID", "Image_filename", "Mask_tumor_filename", "Mask_other_filename", "Pixel_size", "Age",
           "Tissue_composition", "Signs", "Symptoms", "Shape", "Margin", "Echogenicity", "Posterior_features",
           "Halo", "Calcifications", "Skin_thickening", "Interpretation", "BIRADS", "Verification", "Diagnosis",
           "Classification")
COLUMN_WIDTHS = {"A": 7.453125, "G": 24.7265625, "I": 30.0, "K": 26.6328125, "L": 32.26953125, "M": 18.54296875,
                 "Q": 72.81640625, "S": 24.1796875, "T": 43.36328125}
DATA_DICTIONARY = (
    ("Case_ID", "unique identifier"),
    ("Image_filename", "filename(s) of ultrasound b-mode image(s)"),
    ("Mask_tumor_filename", "filename(s) of binary mask overlaying a tumor"),
    ("Mask_other_filename", "filename(s) of binary mask overlaying other suspicious lesions in the image (e.g. cysts)"),
    ("Pixel_size", "pixel size of the image in centimeters (allows calculating the physical size of objects in the "
                   "image)"),
    ("Age", "age of patient"),
    ("Tissue_composition", "breast tissue composition assessed during examination"),
    ("Signs", "objective observable abnormalities perceived by physician"),
    ("Symptoms", "subjective experiences reported by patient"),
    ("Shape", "BI-RADS descriptor"),
    ("Margin", None), ("Echogenicity", None), ("Posterior_features", None), ("Halo", None),
    ("Calcifications", None), ("Skin_thickening", None),
    ("Interpretation", "image interpretation for mass differentiation"),
    ("BIRADS", "BI-RADS category"),
    ("Verification", "confirmed method for mass classification"),
    ("Diagnosis", "histological type of mass"),
    ("Classification", "lesion type (benign or malignant)"),
)
NA, NOT_APPLICABLE = "not available", "not applicable"

# Class-conditional frequencies, rounded from the real sheet (benign 154, malignant 98, normal 4 cases); the
# posterior features are made more class-typical than the real ones so that small image models can learn.
_SHAPE = {"benign": {"oval": 92, "irregular": 48, "round": 14}, "malignant": {"irregular": 92, "oval": 5, "round": 1}}
_CIRCUMSCRIBED = {"benign": 0.73, "malignant": 0.03}
_MARGIN_ODDS = {"benign": {"spiculated": 0.05, "angular": 0.15, "microlobulated": 0.25, "indistinct": 0.85},
                "malignant": {"spiculated": 0.35, "angular": 0.35, "microlobulated": 0.25, "indistinct": 0.75}}
_ECHO = {"benign": {"hypoechoic": 73, "heterogeneous": 37, "anechoic": 15, "isoechoic": 12, "hyperechoic": 9,
                    "complex cystic/solid": 8},
         "malignant": {"hypoechoic": 75, "heterogeneous": 20, "complex cystic/solid": 3}}
_POSTERIOR = {"benign": {"no": 60, "enhancement": 30, "shadowing": 8, "combined": 2},  # real: 108, 26, 18, 2
              "malignant": {"no": 25, "shadowing": 60, "enhancement": 5, "combined": 10}}  # real: 51, 32, 10, 5
_HALO = {"benign": 0.06, "malignant": 0.46}
_CALCIFICATIONS = {"benign": {"no": 145, "in a mass": 7, "intraductal": 1, "indefinable": 1},
                   "malignant": {"no": 80, "in a mass": 16, "intraductal": 1, "indefinable": 1}}
_SKIN_THICKENING = {"benign": 0.03, "malignant": 0.1, "normal": 0.0}
_BIRADS = {"benign": {2: 30, 3: 37, "4a": 43, "4b": 30, "4c": 8, 5: 6},
           "malignant": {"4a": 1, "4b": 16, "4c": 41, 5: 40}, "normal": {1: 1}}
_AGE = {"benign": (48, 15), "malignant": (61, 13), "normal": (50, 15)}
_TISSUE = {"heterogeneous: predominantly fat": 80, "heterogeneous: predominantly fibroglandular": 56, NA: 49,
           "homogeneous: fibroglandular": 46, "homogeneous: fat": 24}
_SIGNS = {"benign": {"no": 62, "palpable": 15, NA: 18, "breast scar": 2, "nipple retraction": 1,
                     "redness&warmth": 1, "palpable&breast scar": 1},
          "malignant": {"no": 45, "palpable": 30, NA: 15, "skin retraction&palpable": 4,
                        "nipple retraction&palpable": 3, "redness&warmth&palpable": 2, "peau d`orange&palpable": 1},
          "normal": {"no": 3, NA: 1}}
_SYMPTOMS = {"benign": {"no": 47, NA: 38, "HRT/hormonal contraception": 6, "family history of breast/ovarian cancer": 5,
                        "nipple discharge": 3, "breast injury": 1},
             "malignant": {"no": 40, NA: 38, "family history of breast/ovarian cancer": 10,
                           "personal history of breast cancer": 3, "HRT/hormonal contraception": 4,
                           "family history of breast/ovarian cancer&HRT/hormonal contraception": 2},
             "normal": {"no": 1, NA: 1}}
_BENIGN_DIAGNOSIS = {"Fibroadenoma": 30, "Benign mammary dysplasia": 27, "Fibrosclerosis": 11,
                     "Intraductal papilloma": 8, "Usual ductal hyperplasia (UDH)": 7,
                     "Pseudoangiomatous stromal hyperplasia (PASH)": 6, "Phyllodes tumor": 3, "Fibrocystic change": 2,
                     "Mastitis": 2, "Adenosis": 1, "Fat necrosis": 1, "Hamartoma": 1, "Lactating adenoma": 1}
_MALIGNANT_DIAGNOSIS = {"Invasive carcinoma of no special type (NST)": 59,
                        "Invasive carcinoma of no special type (NST)&Ductal carcinoma in situ (DCIS)": 7,
                        "Invasive lobular carcinoma": 12, "Ductal carcinoma in situ (DCIS)": 4, "Mucinous carcinoma": 4,
                        "Invasive micropapillary carcinoma": 4, "Cribriform carcinoma": 3, "Tubular carcinoma": 2,
                        "Invasive lobular carcinoma&Lobular carcinoma in situ (LCIS)": 1, "Metaplastic carcinoma": 1}
_BENIGN_READING = {"Fibroadenoma": 50, "Dysplasia": 20, "Intraductal papilloma": 10, "Mammary duct ectasia": 5,
                   "Hamartoma": 5, "Lipoma": 5, "Intramammary lymph node": 5}
_CYST_READING = {"Simple cyst": 3, "Complex cyst / Non-simple cyst": 4, "Cyst filled with thick fluid": 6}
_SUSPICION = "Suspicion of malignancy"


def _join(atoms: list[str]) -> str:
    """Multi-valued cell: 'Suspicion of malignancy' first, the rest sorted, joined by '&' like the sheet."""
    unique = sorted(set(atoms) - {_SUSPICION})
    return "&".join(([_SUSPICION] if _SUSPICION in atoms else []) + unique)


def _margin(rng: np.random.Generator, label: str) -> tuple[str, ...]:
    if rng.random() < _CIRCUMSCRIBED[label]:
        return ()
    odds = _MARGIN_ODDS[label]
    return tuple(feature for feature in MARGIN_FEATURES if rng.random() < odds[feature]) or ("indistinct",)


def _interpretation(rng: np.random.Generator, label: str, birads: int | str, echo: str) -> str:
    if label == "normal":
        return NOT_APPLICABLE
    suspicious = label == "malignant" or (birads not in (1, 2, 3) and rng.random() < 0.6)
    atoms = [_SUSPICION] if suspicious else []
    if echo in ("anechoic", "complex cystic/solid") and not suspicious:
        atoms.append(choose(rng, _CYST_READING))
    if not suspicious or rng.random() < 0.5:
        atoms.append(choose(rng, _BENIGN_READING))
    return _join(atoms)


def sample_case(rng: np.random.Generator, label: str) -> tuple[dict[str, object], Findings | None]:
    """The clinical fields (sheet columns Age..Classification) of one case and the findings to draw."""
    mean, sd = _AGE[label]
    age = NA if rng.random() < 0.16 else int(np.clip(round(rng.normal(mean, sd)), 18, 87))
    tissue_type = choose(rng, _TISSUE)
    if tissue_type != NA and age != NA and age < 40 and rng.random() < 0.1:
        tissue_type = "lactating&" + tissue_type
    birads = choose(rng, _BIRADS[label])
    row: dict[str, object] = {"Age": age, "Tissue_composition": tissue_type, "Signs": choose(rng, _SIGNS[label]),
                              "Symptoms": choose(rng, _SYMPTOMS[label])}
    findings = None
    if label == "normal":
        row.update({column: NOT_APPLICABLE for column in ("Shape", "Margin", "Echogenicity", "Posterior_features",
                                                          "Halo", "Calcifications")})
        row["Skin_thickening"] = "no"
    else:
        margin = _margin(rng, label)
        calcifications = choose(rng, _CALCIFICATIONS[label])
        findings = Findings(shape=choose(rng, _SHAPE[label]), margin=margin, echogenicity=choose(rng, _ECHO[label]),
                            posterior=choose(rng, _POSTERIOR[label]), halo=bool(rng.random() < _HALO[label]),
                            calcifications=calcifications != "no",
                            parallel=bool(rng.random() < (0.95 if label == "benign" else 0.5)))
        row.update({"Shape": findings.shape,
                    "Margin": "not circumscribed - " + "&".join(margin) if margin else "circumscribed",
                    "Echogenicity": findings.echogenicity, "Posterior_features": findings.posterior,
                    "Halo": "yes" if findings.halo else "no", "Calcifications": calcifications,
                    "Skin_thickening": "yes" if rng.random() < _SKIN_THICKENING[label] else "no"})
    if label == "normal":
        verification = NOT_APPLICABLE
    elif label == "benign" and birads in (2, 3) and rng.random() < 0.82:
        verification = "confirmed by follow-up care"
    else:
        verification = "confirmed by biopsy"
    diagnosis = NOT_APPLICABLE
    if verification == "confirmed by biopsy":
        diagnosis = choose(rng, _MALIGNANT_DIAGNOSIS if label == "malignant" else _BENIGN_DIAGNOSIS)
    row.update({"Interpretation": _interpretation(rng, label, birads, findings.echogenicity if findings else ""),
                "BIRADS": birads, "Verification": verification, "Diagnosis": diagnosis, "Classification": label})
    return row, findings


def _fan_alpha(height: int, width: int) -> np.ndarray:
    """Alpha plane of a convex probe's fan: opaque inside the sector, transparent outside."""
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    apex_y = -0.8 * height
    angle = np.arctan2(xx - width / 2, yy - apex_y)
    return np.where(np.abs(angle) < np.arctan2(0.55 * width, 1.8 * height), 255, 0).astype(np.uint8)


def write_case(folder: Path, case_id: int, label: str, others: int, size: int, seed: int) -> tuple[dict, list[Path]]:
    """Write one case's image and masks; return its sheet row and the files written."""
    rng = item_rng(seed, "breast_lesions_usg", case_id)
    fields, findings = sample_case(rng, label)
    height, width = max(16, round(size * rng.uniform(0.75, 1.05))), max(16, round(size * rng.uniform(0.8, 1.4)))
    lesions = [] if findings is None else [place_lesion(rng, findings, height, width,
                                                        radius=(0.08, 0.18) if label == "benign" else (0.15, 0.26))]
    for index in range(others):
        side = (0.15, 0.85)[index % 2] if not lesions else (0.15 if lesions[0].outline.cx > width / 2 else 0.85)
        cyst = Findings(shape="round", echogenicity="anechoic", posterior="enhancement")
        lesions.append(place_lesion(rng, cyst, height, width, radius=(0.04, 0.06),
                                    centre=(side, (0.3, 0.55, 0.75, 0.42)[index % 4])))
    pixels, masks = render(tissue(rng, height, width, skin_thickening=fields.get("Skin_thickening") == "yes"),
                           lesions, speckle(rng, height, width))
    rgb = np.repeat(pixels[..., None].astype(float), 3, axis=2)
    if rng.random() < 0.6:
        rgb *= [rng.uniform(0.88, 0.95), rng.uniform(0.94, 0.99), rng.uniform(1.03, 1.08)]
    alpha = _fan_alpha(height, width) if case_id % 8 == 3 else np.full((height, width), 255, np.uint8)
    rgba = np.dstack([np.clip(rgb, 0, 255).astype(np.uint8) * (alpha[..., None] > 0), alpha])
    stem = f"case{case_id:03d}"
    written = [save_image(rgba, folder / f"{stem}.png", "RGBA")]
    names = [f"{stem}_tumor.png"] * (findings is not None) + [f"{stem}_other{k + 1}.png" for k in range(others)]
    for name, mask in zip(names, masks):
        plane = np.where(mask[..., None], np.uint8(255), np.uint8(0)).repeat(4, axis=2)
        written.append(save_image(plane, folder / name, "RGBA"))
    row = {"CaseID": case_id, "Image_filename": f"{stem}.png",
           "Mask_tumor_filename": f"{stem}_tumor.png" if findings is not None else None,
           "Mask_other_filename": "&".join(names[-others:]) if others else None,
           "Pixel_size": float(f"{choose(rng, {3.5: 1, 4.0: 3, 4.5: 2, 5.0: 1}) / width:.9g}"), **fields}
    return row, written


def write_spreadsheet(path: Path, rows: list[dict]) -> Path:
    """The clinical-data workbook: the data sheet (columns in the real order, blank cells for missing
    filenames) and the 'Data Dictionary' sheet."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = SHEET
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row[column] for column in COLUMNS])
    for letter, width in COLUMN_WIDTHS.items():
        sheet.column_dimensions[letter].width = width
    sheet.auto_filter.ref = f"U1:U{len(rows) + 1}"
    dictionary = workbook.create_sheet("Data Dictionary")
    dictionary.append(["type", "description"])
    for cell in dictionary[1]:
        cell.font = Font(bold=True)
    for entry in DATA_DICTIONARY:
        dictionary.append(list(entry))
    dictionary.column_dimensions["A"].width, dictionary.column_dimensions["B"].width = 26.0, 39.0
    return save_workbook(workbook, path)


def write(folder: Path, counts: dict[str, int], size: int, seed: int) -> None:
    """Cases case001.. with shuffled classes, a few with 'other' lesion masks; spreadsheet; SHA256SUMS."""
    labels = [label for label in CLASSES for _ in range(counts[label])]
    order = item_rng(seed, "breast_lesions_usg", "order")
    labels = [labels[i] for i in order.permutation(len(labels))]
    lesion_cases = [case_id for case_id, label in enumerate(labels, start=1) if label != "normal"]
    with_others = order.choice(lesion_cases, size=min(len(lesion_cases), max(1, round(0.03 * len(labels)))),
                               replace=False) if lesion_cases else []
    others = {int(case_id): 2 if rank == 0 else int(order.integers(1, 3)) for rank, case_id in enumerate(with_others)}
    images = folder / IMAGES
    images.mkdir(parents=True)
    rows, files = [], []
    for case_id, label in enumerate(labels, start=1):
        row, written = write_case(images, case_id, label, others.get(case_id, 0), size, seed)
        rows.append(row)
        files += written
    files.append(write_spreadsheet(folder / SPREADSHEET, rows))
    write_sha256sums(folder / "SHA256SUMS", folder, files)
