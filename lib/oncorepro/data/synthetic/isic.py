"""Synthetic ISIC binary: data/{train,test}/{benign,malignant}/<n>.jpg RGB JPEGs and SHA256SUMS (paths
relative to data/), like the Kaggle 'Skin Cancer: Malignant vs. Benign' files.

Dermoscopy-like phantoms: skin-tone background with a dark dermatoscope vignette and a pigmented lesion;
benign lesions are symmetric and evenly brown, malignant ones asymmetric with an irregular border and
several colours (dark brown, black, blue-grey, red).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from .draws import item_rng
from .files import save_image, write_sha256sums
from .shapes import Outline, harmonics, smooth_noise

CLASSES = ("benign", "malignant")
MIN_PER_CLASS = 2
SPLITS = ("train", "test")
_MALIGNANT_COLOURS = np.array([(95, 60, 40), (40, 28, 25), (110, 115, 130), (150, 80, 70)], dtype=float)
_MALIGNANT_SHARE = np.log([0.45, 0.25, 0.18, 0.12])  # dark brown, black, blue-grey, red


def split_counts(n: int) -> dict[str, int]:
    """Images per split for ``n`` images of a class: about 80 % train, at least one test image."""
    test = max(1, round(0.2 * n))
    return {"train": n - test, "test": test}


def dermoscopy(rng: np.random.Generator, label: str, size: int) -> np.ndarray:
    """One (size, size, 3) uint8 dermoscopy-like image of class ``label``."""
    skin = np.array([rng.uniform(190, 230), rng.uniform(140, 175), rng.uniform(115, 150)])
    shading = 1 + 0.05 * smooth_noise(rng, (size, size), 0.15 * size)
    image = skin * shading[..., None]
    r = rng.uniform(0.18, 0.3) * size
    centre = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    if label == "benign":
        aspect = rng.uniform(1.0, 1.25)
        outline = Outline(centre[0], centre[1], r * np.sqrt(aspect), r / np.sqrt(aspect), rng.uniform(0, np.pi),
                          harmonics(rng, (4,), (0.0, 0.02)))
        colour = np.array([rng.uniform(115, 150), rng.uniform(70, 95), rng.uniform(45, 65)])
        pigment = colour * (1 + 0.04 * smooth_noise(rng, (size, size), 0.1 * size))[..., None]
        edge = 0.06 * r
    else:
        outline = Outline(centre[0], centre[1], r * rng.uniform(0.9, 1.2), r * rng.uniform(0.8, 1.1),
                          rng.uniform(0, np.pi), harmonics(rng, (1, 2, 3, 5, 7), (0.06, 0.18)))
        blotches = np.stack([smooth_noise(rng, (size, size), 0.07 * size) for _ in _MALIGNANT_COLOURS])
        weights = np.exp(2.5 * blotches + _MALIGNANT_SHARE[:, None, None])
        pigment = np.einsum("khw,kc->hwc", weights / weights.sum(axis=0), _MALIGNANT_COLOURS)
        edge = 0.02 * r
    inside = gaussian_filter(outline.mask(size, size).astype(float), max(0.5, edge))[..., None]
    image = image * (1 - inside) + pigment * inside
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    vignette = np.clip((np.hypot(xx, yy) - rng.uniform(0.45, 0.6)) / 0.12, 0, 1)[..., None]
    image = image * (1 - 0.9 * vignette) + rng.normal(0, 3, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write(folder: Path, counts: dict[str, int], size: int, seed: int) -> None:
    """data/{train,test}/{benign,malignant}/<n>.jpg with scattered numbers, and SHA256SUMS."""
    data = folder / "data"
    files = []
    for label in CLASSES:
        for split, count in split_counts(counts[label]).items():
            numbers = item_rng(seed, "isic_binary", "numbers", split, label).choice(
                np.arange(1, 4 * count + 10), size=count, replace=False)
            for number in sorted(int(n) for n in numbers):
                pixels = dermoscopy(item_rng(seed, "isic_binary", split, label, number), label, size)
                files.append(save_image(pixels, data / split / label / f"{number}.jpg", "RGB", "JPEG", quality=90))
    write_sha256sums(folder / "SHA256SUMS", data, files)
