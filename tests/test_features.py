"""The frozen-feature cache: reused for identical images and weights, recomputed when either changes, and equal
to the model's own pooled features."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from oncorepro.features import extract_features
from oncorepro.models import build_model
from oncorepro.paths import cache_dir
from oncorepro.train import images_to_tensor
from oncorepro.weights import resolve_weights_root
from oncorepro.weights.tfjs import TEACHABLE_MACHINE_FOLDER

TM_FOLDER = resolve_weights_root() / TEACHABLE_MACHINE_FOLDER


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def images() -> np.ndarray:
    """Six 32 px RGB images: smooth gradients with speckle, like small ultrasound crops."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 32)[None, :, None] + np.linspace(0, 40, 32)[:, None, None]
    return np.clip(ramp[None] + rng.normal(0, 20, (6, 32, 32, 3)), 0, 255).astype(np.uint8)


def _counting(model) -> list[int]:
    """Images passed through the backbone, one entry per call."""
    calls: list[int] = []
    model.backbone.register_forward_hook(lambda module, inputs, output: calls.append(int(inputs[0].shape[0])))
    return calls


def _model(seed: int = 0, **kwargs):
    return build_model("mobilenetv2_035", 3, seed=seed, input_size=32, head="teachable_machine",
                       freeze_backbone=True, **kwargs)


def _pooled(model, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval().pooled_features(images_to_tensor(images)).numpy()


def test_features_equal_the_models_pooled_features(images):
    model, info = _model()
    features = extract_features(model, images, info, batch_size=4, device="cpu")
    assert features.shape == (6, model.backbone.num_features) and features.dtype == np.float32
    np.testing.assert_allclose(features, _pooled(model, images), rtol=1e-5, atol=1e-6)


def test_identical_images_reuse_the_cache(images):
    model, info = _model()
    calls = _counting(model)
    first = extract_features(model, images, info, device="cpu")
    assert sum(calls) == 6
    again = extract_features(model, images.copy(), info, device="cpu")  # equal content, another array
    assert sum(calls) == 6, "the backbone ran again for identical images"
    np.testing.assert_array_equal(first, again)
    assert len(list(cache_dir("features").glob("*.npy"))) == 1


def test_changed_images_are_recomputed(images):
    model, info = _model()
    calls = _counting(model)
    first = extract_features(model, images, info, device="cpu")
    changed = images.copy()
    changed[2, 5, 5] = 255 - changed[2, 5, 5]
    second = extract_features(model, changed, info, device="cpu")
    assert sum(calls) > 6, "changed images were served from the cache"
    np.testing.assert_allclose(second, _pooled(model, changed), rtol=1e-5, atol=1e-6)
    assert not np.allclose(first[2], second[2])
    np.testing.assert_allclose(first[[0, 1, 3, 4, 5]], second[[0, 1, 3, 4, 5]], rtol=1e-5, atol=1e-6)
    smaller = extract_features(model, images[:, :24, :24], info, device="cpu")  # another size
    np.testing.assert_allclose(smaller, _pooled(model, images[:, :24, :24]), rtol=1e-5, atol=1e-6)


def test_other_weights_origin_is_recomputed(images):
    model, info = _model(seed=0)
    extract_features(model, images, info, device="cpu")
    other, other_info = _model(seed=1)
    assert other_info.weights_origin != info.weights_origin
    calls = _counting(other)
    features = extract_features(other, images, other_info, device="cpu")
    assert sum(calls) == 6
    # the origin is the cache's notion of "the weights": the same weights under another origin also miss
    renamed = dataclasses.replace(other_info, weights_origin=other_info.weights_origin + " (copy)")
    extract_features(other, images, renamed, device="cpu")
    assert sum(calls) == 12
    np.testing.assert_allclose(features, _pooled(other, images), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not TM_FOLDER.is_dir(), reason=f"{TM_FOLDER} absent")
def test_edited_teachable_machine_weights_are_recomputed(images, tmp_path: Path):
    """Changing one base weight in weights.bin changes the origin (it names the file's SHA-256) and the features."""
    folder = tmp_path / "weights" / TEACHABLE_MACHINE_FOLDER
    shutil.copytree(TM_FOLDER, folder)
    (folder / "weights.bin").chmod(0o644)
    original, original_info = _model(pretrained="teachable_machine", weights_root=tmp_path / "weights")
    first = extract_features(original, images, original_info, device="cpu")
    raw = np.fromfile(folder / "weights.bin", "<f4")
    raw[: 3 * 3 * 3 * 16] *= 1.5  # Conv1/kernel, the first tensor of the manifest
    raw.tofile(folder / "weights.bin")
    edited, edited_info = _model(pretrained="teachable_machine", weights_root=tmp_path / "weights")
    assert edited_info.weights_origin != original_info.weights_origin
    second = extract_features(edited, images, edited_info, device="cpu")
    np.testing.assert_allclose(second, _pooled(edited, images), rtol=1e-5, atol=1e-6)
    assert not np.allclose(first, second)
