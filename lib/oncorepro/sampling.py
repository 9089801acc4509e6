"""Class-balance tools on the training part: SMOTE in pixel space, undersampling, class weights."""

from __future__ import annotations

import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.under_sampling import RandomUnderSampler
from sklearn.utils.class_weight import compute_class_weight


def smote_pixels(images: np.ndarray, labels: np.ndarray, seed: int, k_neighbors: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE on images flattened to vectors (the paper's 299*299*3 = 268,203 features), back to uint8 images.

    Every minority class is raised to the majority count; synthetic images are interpolations of a minority
    image and one of its k nearest minority neighbours in pixel space, rounded to uint8.
    """
    n, *shape = images.shape
    k = min(k_neighbors, int(np.bincount(labels).min()) - 1)
    if k < 1:
        raise ValueError("SMOTE needs at least two images of every class in the training part")
    flat = images.reshape(n, -1).astype(np.float32)
    resampled, new_labels = SMOTE(k_neighbors=k, random_state=seed).fit_resample(flat, labels)
    out = np.clip(np.rint(resampled), 0, 255).astype(np.uint8).reshape(-1, *shape)
    return out, np.asarray(new_labels)


def undersample(labels: np.ndarray, seed: int, target: dict[int, int] | None = None) -> np.ndarray:
    """Indices of a random undersample: every class down to the minority count, or to ``target`` counts."""
    sampler = RandomUnderSampler(sampling_strategy=target or "auto", random_state=seed)
    sampler.fit_resample(np.arange(len(labels)).reshape(-1, 1), labels)
    return np.sort(sampler.sample_indices_)


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights (n_samples / (n_classes * count)), as scikit-learn computes them."""
    return compute_class_weight("balanced", classes=np.arange(n_classes), y=labels).astype(np.float32)
