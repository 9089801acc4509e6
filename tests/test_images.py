"""Resizing, ROI and the array cache."""

from __future__ import annotations

import numpy as np
from PIL import Image

from oncorepro.images import apply_roi, load_arrays, resize_mask
from oncorepro.records import Record


def test_roi_keeps_lesion_and_blacks_out_the_rest():
    images = np.full((2, 4, 4, 3), 200, np.uint8)
    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1:3, 1:3] = True
    out = apply_roi(images, masks)
    assert out[0, 1, 1].tolist() == [200, 200, 200] and out[0, 0, 0].tolist() == [0, 0, 0]
    assert not out[1].any()  # a normal image (empty mask) becomes black: what the paper's Table 6 measures


def test_resize_mask_stays_binary():
    mask = np.zeros((50, 70), bool)
    mask[10:30, 20:40] = True
    small = resize_mask(mask, 16)
    assert small.dtype == bool and small.shape == (16, 16) and 0.05 < small.mean() < 0.2


def test_load_arrays_caches_and_reads_greyscale(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    grey = np.tile(np.arange(60, dtype=np.uint8), (40, 1))
    Image.fromarray(grey, "L").save(tmp_path / "a.png")
    mask = np.zeros((40, 60), np.uint8)
    mask[5:20, 5:20] = 255
    Image.fromarray(mask, "L").convert("1").save(tmp_path / "a_mask.png")
    record = Record(dataset="x", id="a", path=tmp_path / "a.png", label="benign", mask_paths=(tmp_path / "a_mask.png",))
    images, masks = load_arrays([record], 20, "digest", progress=False)
    assert images.shape == (1, 20, 20, 3) and (images[0, :, :, 0] == images[0, :, :, 2]).all()
    assert masks.shape == (1, 20, 20) and 0.05 < masks.mean() < 0.2
    assert len(list((tmp_path / "cache" / "arrays").glob("*.npz"))) == 1
    again, _ = load_arrays([record], 20, "digest", progress=False)
    np.testing.assert_array_equal(images, again)
