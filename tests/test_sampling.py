"""SMOTE in pixel space, undersampling, class weights."""

from __future__ import annotations

import numpy as np
import pytest

from oncorepro.sampling import class_weights, smote_pixels, undersample


def _images(counts: dict[int, int], size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, k) for k, n in counts.items()])
    images = rng.integers(0, 256, (len(labels), size, size, 3), dtype=np.uint8)
    return images, labels


def test_smote_raises_minority_to_majority_like_the_paper():
    # Table 1 of the paper: 305 benign and 147 malignant training images become 610.
    images, labels = _images({0: 305, 1: 147}, size=6)
    out, new = smote_pixels(images, labels, seed=0)
    assert out.shape == (610, 6, 6, 3) and out.dtype == np.uint8
    assert np.bincount(new).tolist() == [305, 305]
    # the originals are kept as they were, the synthetic ones lie between minority images
    np.testing.assert_array_equal(out[: len(images)], images)
    synthetic = out[len(images):].reshape(158, -1).astype(float)
    minority = images[labels == 1].reshape(147, -1).astype(float)
    assert synthetic.min() >= minority.min() and synthetic.max() <= minority.max()


def test_smote_is_deterministic_and_seed_dependent():
    images, labels = _images({0: 20, 1: 8})
    a, _ = smote_pixels(images, labels, seed=1)
    b, _ = smote_pixels(images, labels, seed=1)
    c, _ = smote_pixels(images, labels, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_smote_needs_two_minority_images():
    images, labels = _images({0: 5, 1: 1})
    with pytest.raises(ValueError, match="at least two"):
        smote_pixels(images, labels, seed=0)


def test_undersample_and_class_weights():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 5)
    keep = undersample(labels, seed=0)
    assert np.bincount(labels[keep]).tolist() == [5, 5, 5]
    keep = undersample(labels, seed=0, target={0: 12, 1: 10, 2: 5})
    assert np.bincount(labels[keep]).tolist() == [12, 10, 5]
    weights = class_weights(labels, 3)
    np.testing.assert_allclose(weights, [45 / 90, 45 / 30, 45 / 15])
