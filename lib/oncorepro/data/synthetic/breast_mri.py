"""Synthetic 'Breast Cancer Patients MRI's': breast-cancer-patients-mris.tar.xz holding
"Breast Cancer Patients MRI's/{train,validation}/{Healthy,Sick}/[HS]_<n>.jpg" (BMP bytes, mode L, despite
the name) and "mri's/{healthy,sick}/P<k>/" per-patient copies of the train images, beside CONTENTS.sha256,
DUPLICATES.txt and SHA256SUMS, like the shared folder.

Real quirks kept: validation/Healthy files are named S_<n>; train numbers have gaps; one byte-identical
pair in train/Healthy; one train image has no per-patient copy. Images are axial slices with the 540:250
aspect: chest wall on top, two breasts (half-ellipses) below on a dark background, fibroglandular texture,
dark nipples; 'Sick' slices hold a bright enhancing irregular mass. Slices of one patient share anatomy.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from .draws import item_rng
from .files import save_image, write_sha256sums, write_tar_xz
from .shapes import Outline, harmonics, smooth_noise

CLASSES = ("Healthy", "Sick")
MIN_PER_CLASS = 2
ARCHIVE = "breast-cancer-patients-mris.tar.xz"
SPLIT_ROOT = "Breast Cancer Patients MRI's"
PATIENT_ROOT = "mri's"
ASPECT = 540 / 250


def split_counts(n: int) -> dict[str, int]:
    """Images per split for ``n`` images of a class: about 15 % validation, at least one."""
    validation = max(1, round(0.15 * n))
    return {"train": n - validation, "validation": validation}


def mri_slice(anatomy: np.random.Generator, rng: np.random.Generator, sick: bool, height: int, width: int
              ) -> np.ndarray:
    """One slice (uint8, height x width): ``anatomy`` draws the patient's build (call it with a generator
    seeded per patient), ``rng`` the slice's own variation and mass."""
    chest = anatomy.uniform(0.3, 0.42) * height
    breasts = [(anatomy.uniform(0.24, 0.31) * width, anatomy.uniform(0.17, 0.22) * width),
               (anatomy.uniform(0.69, 0.76) * width, anatomy.uniform(0.17, 0.22) * width)]
    depth = anatomy.uniform(0.45, 0.55) * height * rng.uniform(0.85, 1.05)
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    body = (yy < chest) & (xx > 0.04 * width) & (xx < 0.96 * width)
    nipples = np.zeros_like(body)
    for cx, rx in breasts:
        body |= (((xx - cx) / rx) ** 2 + ((yy - chest) / depth) ** 2 < 1) & (yy >= chest)
        nipples |= np.hypot(xx - cx, yy - (chest + 0.93 * depth)) < max(1.0, 0.012 * width)
    glands = smooth_noise(rng, (height, width), (0.02 * height, 0.015 * width)) > 0.5
    intensity = np.where(body, 0.55 + 0.04 * smooth_noise(rng, (height, width), 0.05 * height), 0.02)
    intensity = np.where(body & glands & (yy > chest), 0.75, intensity)
    intensity = np.where(nipples & body, 0.15, intensity)
    if sick:
        cx, rx = breasts[int(rng.integers(2))]
        r = rng.uniform(0.07, 0.11) * height
        mass = Outline(cx + rng.uniform(-0.4, 0.4) * rx, chest + rng.uniform(0.25, 0.6) * depth,
                       r, r * rng.uniform(0.8, 1.2), rng.uniform(0, np.pi),
                       harmonics(rng, (3, 4, 6), (0.08, 0.2))).mask(height, width)
        intensity = np.where(mass & body, 1.0, intensity)
    intensity = gaussian_filter(intensity, 0.6) + rng.normal(0, 0.015, intensity.shape)
    return (255 * np.clip(intensity, 0, 1)).astype(np.uint8)


def _class_images(stage: Path, label: str, count: int, height: int, width: int, seed: int) -> dict:
    """Write one class's images under ``stage``; return train and validation paths, the patient of each
    train image and the duplicate pairs written."""
    split = split_counts(count)
    prefix = label[0]
    rng = item_rng(seed, "breast_mri", "numbers", label)
    train_numbers = sorted(int(n) for n in rng.choice(np.arange(1, int(split["train"] * 8 / 7) + 2),
                                                      size=split["train"], replace=False))
    validation_numbers = sorted(int(n) for n in rng.choice(np.arange(1, 3 * split["validation"] + 8),
                                                           size=split["validation"], replace=False))
    sick = label == "Sick"
    result = {"train": [], "validation": [], "patients": [], "duplicates": []}
    patient, left = 0, 0
    for index, number in enumerate(train_numbers):
        if left == 0:
            patient, left = patient + 1, int(rng.integers(3, 6))
        left -= 1
        path = stage / SPLIT_ROOT / "train" / label / f"{prefix}_{number}.jpg"
        if not sick and index == 1 and split["train"] >= 4:
            shutil.copyfile(result["train"][0], path)
            result["duplicates"].append((result["train"][0], path))
        else:
            save_image(mri_slice(item_rng(seed, "breast_mri", label, "patient", patient),
                                 item_rng(seed, "breast_mri", label, "train", number), sick, height, width),
                       path, "L", "BMP")
        result["train"].append(path)
        result["patients"].append(patient)
    for number in validation_numbers:
        anatomy = item_rng(seed, "breast_mri", label, "validation patient", number)
        pixels = mri_slice(anatomy, item_rng(seed, "breast_mri", label, "validation", number), sick, height, width)
        result["validation"].append(save_image(pixels, stage / SPLIT_ROOT / "validation" / label / f"S_{number}.jpg",
                                               "L", "BMP"))
    return result


def write(folder: Path, counts: dict[str, int], size: int, seed: int) -> None:
    """The archive, CONTENTS.sha256, DUPLICATES.txt and SHA256SUMS (which also covers PROVENANCE.md)."""
    height, width = size, round(size * ASPECT)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        stage = Path(tmp)
        members, duplicates = [], []
        for label in CLASSES:
            written = _class_images(stage, label, counts[label], height, width, seed)
            members += written["train"] + written["validation"]
            duplicates += written["duplicates"]
            pairs = list(zip(written["train"], written["patients"]))
            if label == "Healthy" and len(pairs) >= 3:
                pairs = pairs[:-1]
            for path, patient in pairs:
                copy = stage / PATIENT_ROOT / label.lower() / f"P{patient}" / path.name
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, copy)
                members.append(copy)
        write_tar_xz(folder / ARCHIVE, stage, members)
        write_sha256sums(folder / "CONTENTS.sha256", stage, members)
        base = stage / SPLIT_ROOT
        lines = [f"{a.relative_to(base).as_posix()} = {b.relative_to(base).as_posix()}" for a, b in duplicates]
    header = (f'# Byte-identical (sha256) groups in "{SPLIT_ROOT}/" ({len(lines)} groups, {len(lines)} redundant '
              "files; none spans classes or splits)")
    (folder / "DUPLICATES.txt").write_text("\n".join([header, *lines, "", f"# {PATIENT_ROOT}/ (per-patient folders): "
                                                      "0 groups of byte-identical files span two patient folders"])
                                           + "\n", encoding="utf-8")
    listed = [folder / name for name in (ARCHIVE, "CONTENTS.sha256", "DUPLICATES.txt", "PROVENANCE.md")]
    write_sha256sums(folder / "SHA256SUMS", folder, [path for path in listed if path.exists()])
