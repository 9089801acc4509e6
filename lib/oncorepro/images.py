"""Image preprocessing: resize, lesion-mask ROI, and a cache of the resulting arrays outside the repo."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from .paths import cache_dir
from .records import Record

RESIZE = Image.Resampling.BILINEAR


def resize_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to (size, size, 3) with bilinear filtering (aspect not kept, as the paper)."""
    return np.asarray(Image.fromarray(pixels).resize((size, size), RESIZE))


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Resize a bool mask with nearest-neighbour sampling so it stays binary."""
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((size, size), Image.Resampling.NEAREST)) > 127


def apply_roi(pixels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Multiply images (..., H, W, 3) by their bool lesion masks (..., H, W): the papers' ROI step.

    An empty mask (a normal image) gives a black image, which is what the paper's Table 6 measures.
    """
    return pixels * masks[..., None].astype(pixels.dtype)


PREPROCESS_VERSION = 1  # bump when resizing or mask merging changes: cached arrays then miss


def _cache_key(records: Sequence[Record], size: int, data_digest: str) -> str:
    payload = json.dumps([PREPROCESS_VERSION, data_digest, size,
                          [(r.dataset, r.id, str(r.path), [str(p) for p in r.mask_paths]) for r in records]])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def load_arrays(records: Sequence[Record], size: int, data_digest: str,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Resized RGB images (N, size, size, 3) uint8 and merged masks (N, size, size) bool, cached on disk.

    Records without masks get an all-False mask. The cache key covers the dataset digest, the image size and
    every record's id and path, so changed data or a different selection never reuses stale arrays.
    """
    path = cache_dir("arrays") / f"{_cache_key(records, size, data_digest)}.npz"
    if path.exists():
        with np.load(path) as stored:
            return stored["images"], stored["masks"]
    images = np.empty((len(records), size, size, 3), np.uint8)
    masks = np.zeros((len(records), size, size), bool)
    for i, record in enumerate(tqdm(records, desc=f"images @{size}px", disable=not progress, leave=False)):
        images[i] = resize_image(record.image("RGB"), size)
        mask = record.mask()
        if mask is not None:
            masks[i] = resize_mask(mask, size)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, images=images, masks=masks)
    temporary.replace(path)
    return images, masks
