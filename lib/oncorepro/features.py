"""Frozen-backbone features, extracted once per image set and cached outside the repo.

The cache key hashes the image array's bytes, the model's weight origin and architecture and the arithmetic
(float32 or bf16), so changed images (another size, ROI, a new dataset version), other weights or another
precision never reuse stale features.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from tqdm import tqdm

from .models import ImageClassifier, ModelInfo
from .paths import cache_dir
from .train import _autocast, images_to_tensor, pick_device, pick_precision


def features_key(images: np.ndarray, info: ModelInfo, precision: str = "fp32") -> str:
    digest = hashlib.sha256()
    digest.update(f"{info.name}|{info.weights_origin}|{info.input_normalisation}|{images.shape}".encode())
    if precision != "fp32":  # float32 keys stay as they were before precision was part of the key
        digest.update(f"|{precision}".encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()[:24]


def extract_features(model: ImageClassifier, images: np.ndarray, info: ModelInfo, *, batch_size: int = 64,
                     device: str = "auto", precision: str = "auto", progress: bool = False) -> np.ndarray:
    """(N, F) float32 pooled backbone features of uint8 (N, H, W, 3) images, cached by content, weights and
    arithmetic (:func:`oncorepro.train.pick_precision`)."""
    arithmetic = pick_precision(precision, pick_device(device))
    path = cache_dir("features") / f"{features_key(images, info, arithmetic)}.npy"
    if path.exists():
        return np.load(path)
    features = pooled_features(model, images, batch_size=batch_size, device=device, precision=arithmetic,
                               progress=progress)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, features)
    temporary.replace(path)
    return features


def pooled_features(model: ImageClassifier, images: np.ndarray, *, batch_size: int = 64, device: str = "auto",
                    precision: str = "auto", progress: bool = False) -> np.ndarray:
    """(N, F) float32 globally pooled backbone features of uint8 (N, H, W, 3) images, not cached."""
    target = pick_device(device)
    arithmetic = pick_precision(precision, target)
    backbone = model.to(target).eval()
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(images), batch_size), desc="features", disable=not progress, leave=False):
            batch = images_to_tensor(images[start:start + batch_size]).to(target)
            with _autocast(target, arithmetic):
                out.append(backbone.pooled_features(batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
