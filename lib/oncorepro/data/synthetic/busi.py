"""Synthetic BUSI: Dataset_BUSI_with_GT/{benign,malignant,normal}/'<class> (N).png' with '_mask.png' files.

Mirrors the shared copy: images are mostly 8-bit greyscale PNGs, some RGB (grey-valued like the original
release, or with coloured caliper marks); masks are mode "1", normal-class masks all-zero RGB, a few benign
images have a second lesion in '_mask_1.png' (the first of those RGBA, like 'benign (4)_mask_1.png'); the
last malignant image is a byte copy of 'benign (1)' (the real release's cross-class duplicate).
Benign lesions are oval or round, circumscribed and parallel, often with posterior enhancement; malignant
ones irregular, spiculated, angular or indistinct, often taller than wide, mostly with posterior shadowing.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from ...records import read_image
from .draws import choose, item_rng
from .files import save_image, write_sha256sums
from .ultrasound import MARGIN_FEATURES, Findings, Lesion, place_lesion, render, speckle, tissue

CLASSES = ("benign", "malignant", "normal")
MIN_PER_CLASS = 1
TOP = "Dataset_BUSI_with_GT"
_MARGIN_ODDS = {"spiculated": 0.5, "angular": 0.4, "microlobulated": 0.3, "indistinct": 0.6}
CALIPER = (255, 255, 0)


def sample_findings(rng: np.random.Generator, label: str) -> Findings:
    """Class-typical BI-RADS findings (more clear-cut than real ones, so that small models can learn them)."""
    if label == "benign":
        return Findings(shape=choose(rng, {"oval": 0.75, "round": 0.25}),
                        margin=choose(rng, {(): 0.85, ("indistinct",): 0.1, ("microlobulated",): 0.05}),
                        echogenicity=choose(rng, {"hypoechoic": 0.6, "anechoic": 0.25, "isoechoic": 0.15}),
                        posterior=choose(rng, {"enhancement": 0.7, "no": 0.3}),
                        calcifications=bool(rng.random() < 0.05), parallel=bool(rng.random() < 0.95))
    margin = tuple(feature for feature in MARGIN_FEATURES if rng.random() < _MARGIN_ODDS[feature])
    return Findings(shape=choose(rng, {"irregular": 0.9, "oval": 0.1}), margin=margin or ("indistinct",),
                    echogenicity=choose(rng, {"hypoechoic": 0.6, "heterogeneous": 0.4}),
                    posterior=choose(rng, {"shadowing": 0.85, "combined": 0.1, "no": 0.05}),
                    halo=bool(rng.random() < 0.4), calcifications=bool(rng.random() < 0.3),
                    parallel=bool(rng.random() < 0.35))


def image_size(rng: np.random.Generator, size: int) -> tuple[int, int]:
    """(height, width) around ``size``, wider than tall on average like the real scans."""
    return max(16, round(size * rng.uniform(0.8, 1.05))), max(16, round(size * rng.uniform(0.9, 1.3)))


def _lesions(rng: np.random.Generator, label: str, number: int, height: int, width: int) -> list[Lesion]:
    if label == "normal":
        return []
    radius = (0.12, 0.22) if label == "benign" else (0.14, 0.24)
    lesions = [place_lesion(rng, sample_findings(rng, label), height, width, radius=radius)]
    if label == "benign" and number % 6 == 2:
        side = 0.2 if lesions[0].outline.cx > width / 2 else 0.8
        second = Findings(shape="round", echogenicity="anechoic", posterior="enhancement")
        lesions.append(place_lesion(rng, second, height, width, radius=(0.05, 0.08),
                                    centre=(side, rng.uniform(0.35, 0.6))))
    return lesions


def _add_calipers(pixels: np.ndarray, points: list[tuple[int, int]]) -> np.ndarray:
    rgb = np.repeat(pixels[..., None], 3, axis=2)
    height, width = pixels.shape
    for x, y in points:
        x, y = min(max(x, 2), width - 3), min(max(y, 2), height - 3)
        rgb[y, x - 2:x + 3] = CALIPER
        rgb[y - 2:y + 3, x] = CALIPER
    return rgb


def write_image(folder: Path, label: str, number: int, size: int, seed: int) -> list[Path]:
    """Write '<label> (number).png' and its masks into ``folder``; return the paths written."""
    rng = item_rng(seed, "busi", label, number)
    height, width = image_size(rng, size)
    lesions = _lesions(rng, label, number, height, width)
    pixels, masks = render(tissue(rng, height, width), lesions, speckle(rng, height, width))
    stem = f"{label} ({number})"
    if number % 8 == 5:  # RGB with coloured caliper marks at the lesion's ends (or anywhere on a normal scan)
        if lesions:
            outline = lesions[0].outline
            points = [(round(outline.cx + side * outline.rx), round(outline.cy)) for side in (-1, 1)]
        else:
            points = [(int(rng.integers(width)), int(rng.integers(height)))]
        written = [save_image(_add_calipers(pixels, points), folder / f"{stem}.png", "RGB")]
    else:  # greyscale like most of the shared copy, or grey-valued RGB like the original release
        written = [save_image(pixels, folder / f"{stem}.png", "RGB" if number % 8 == 1 else "L")]
    if not masks:
        written.append(save_image(np.zeros((height, width, 3), np.uint8), folder / f"{stem}_mask.png", "RGB"))
    for index, mask in enumerate(masks):
        suffix = "_mask.png" if index == 0 else f"_mask_{index}.png"
        mode = "RGBA" if index > 0 and number == 2 else "1"
        written.append(save_image(mask.astype(np.uint8) * 255, folder / f"{stem}{suffix}", mode))
    return written


def write(folder: Path, counts: dict[str, int], size: int, seed: int) -> None:
    """The whole synthetic BUSI folder, with SHA256SUMS (= ORIGINAL_SHA256SUMS) and PIXEL_SHA256SUMS."""
    top = folder / TOP
    files: list[Path] = []
    for label in CLASSES:
        (top / label).mkdir(parents=True)
        for number in range(1, counts[label] + 1):
            files += write_image(top / label, label, number, size, seed)
    last = counts["malignant"]
    if last >= 3:
        for suffix in (".png", "_mask.png"):
            shutil.copyfile(top / "benign" / f"benign (1){suffix}", top / "malignant" / f"malignant ({last}){suffix}")
    write_sha256sums(folder / "SHA256SUMS", folder, files)
    shutil.copyfile(folder / "SHA256SUMS", folder / "ORIGINAL_SHA256SUMS")
    images = [path for path in files if "_mask" not in path.name]
    write_sha256sums(folder / "PIXEL_SHA256SUMS", folder, images, digest=pixel_sha256)


def pixel_sha256(path: Path) -> str:
    """SHA-256 of the image decoded to RGB uint8, row-major (the real PIXEL_SHA256SUMS convention)."""
    return hashlib.sha256(read_image(path, "RGB").tobytes()).hexdigest()
