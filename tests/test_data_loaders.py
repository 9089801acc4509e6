"""Dataset loaders on the real shared data (read-only; skipped only where a dataset folder is absent) and on
small layouts written to tmp_path."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oncorepro.data import DATASETS, dataset_digest, dataset_info, load_dataset, unpack_mri, verify_checksums
from oncorepro.records import header_size
from oncorepro.paths import REPO_ROOT

SHARED = REPO_ROOT.parent / "shared" / "data"


def shared(name: str) -> Path:
    folder = SHARED / DATASETS[name].folder
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return SHARED


def write_image(path: Path, size: tuple[int, int] = (8, 6), mode: str = "L", value: int = 0,
                image_format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0]), value, np.uint8)
    pixels[1, 2] = 200
    Image.fromarray(pixels).convert(mode).save(path, format=image_format)
    return path


def test_registry_lists_the_five_datasets_and_names_them_on_a_typo():
    assert set(DATASETS) == {"busi", "breast_mri", "isic_binary", "breast_lesions_usg", "mibus"}
    assert dataset_info("mibus").citation.startswith("Lin Z")
    assert "Curr. Oncol. 31 (2024) 5057" in dataset_info("mibus").citation
    with pytest.raises(KeyError, match="busi, breast_mri, isic_binary, breast_lesions_usg, mibus"):
        dataset_info("BUSI")


def test_busi_real_counts_masks_and_speed():
    root = shared("busi")
    start = time.perf_counter()
    dataset = load_dataset("busi", root)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"loading BUSI took {elapsed:.1f} s"
    assert dataset.by_label() == {"benign": 437, "malignant": 210, "normal": 133}
    assert sum(len(record.mask_paths) - 1 for record in dataset.records) == 18
    by_id = {record.id: record for record in dataset.records}
    assert len(by_id) == 780
    assert [path.name for path in by_id["benign (195)"].mask_paths] == [
        "benign (195)_mask.png", "benign (195)_mask_1.png", "benign (195)_mask_2.png"]
    assert [path.name for path in by_id["malignant (53)"].mask_paths] == [
        "malignant (53)_mask.png", "malignant (53)_mask_1.png"]
    for record in dataset.records:
        assert all(header_size(mask) == header_size(record.path) for mask in record.mask_paths)
    assert dataset.exclusions == []


def test_busi_accepts_greyscale_and_rgb_files_with_identical_pixels(tmp_path):
    root = shared("busi")
    source = root / "busi" / "Dataset_BUSI_with_GT"
    target = tmp_path / "busi" / "Dataset_BUSI_with_GT"
    stems = {"benign": ["benign (1)", "benign (2)"], "malignant": ["malignant (1)"], "normal": ["normal (1)"]}
    for class_name, names in stems.items():
        (target / class_name).mkdir(parents=True)
        for stem in names:
            for path in (source / class_name).glob(f"{stem}*.png"):
                if path.stem == stem or path.stem.startswith(f"{stem}_mask"):
                    shutil.copy(path, target / class_name / path.name)
    converted = target / "benign" / "benign (1).png"
    assert Image.open(converted).mode == "L"  # the shared copy is the greyscale re-encoding
    Image.open(converted).convert("RGB").save(converted)
    assert Image.open(converted).mode == "RGB"

    copied = {record.id: record for record in load_dataset("busi", tmp_path).records}
    original = {record.id: record for record in load_dataset("busi", root).records}
    assert set(copied) == {"benign (1)", "benign (2)", "malignant (1)", "normal (1)"}
    for record_id, record in copied.items():
        assert np.array_equal(record.image("RGB"), original[record_id].image("RGB"))
        assert record.image("RGB").shape[2] == 3

    pixel_lines = [line for line in (root / "busi" / "PIXEL_SHA256SUMS").read_text().splitlines()
                   if any(f"/{stem}.png" in line for names in stems.values() for stem in names)]
    (tmp_path / "busi" / "PIXEL_SHA256SUMS").write_text("\n".join(pixel_lines) + "\n")
    report = verify_checksums("busi", tmp_path, files="PIXEL_SHA256SUMS")
    assert report.passed and len(report.ok) == 4


@pytest.fixture(scope="module")
def mri_unpacked(tmp_path_factory):
    root = shared("breast_mri")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ONCOREPRO_CACHE", str(cache))
        start = time.perf_counter()
        unpacked = unpack_mri(root)
        first = time.perf_counter() - start
        yield root, unpacked, first
    shutil.rmtree(cache)  # 392 MB unpacked: do not leave it to pytest's retention of old tmp folders


@pytest.mark.slow
def test_breast_mri_unpacks_once_into_the_cache(mri_unpacked):
    root, unpacked, first = mri_unpacked
    assert not unpacked.is_relative_to(REPO_ROOT) and not unpacked.is_relative_to(SHARED)
    marker = next(unpacked.glob(".*verified"))
    stamp = marker.stat().st_mtime_ns
    start = time.perf_counter()
    assert unpack_mri(root) == unpacked
    assert time.perf_counter() - start < first / 4
    assert marker.stat().st_mtime_ns == stamp
    assert verify_checksums("breast_mri", root, files="CONTENTS.sha256").passed


@pytest.mark.slow
def test_breast_mri_records_are_bmp_named_jpg_with_flagged_names(mri_unpacked):
    root, unpacked, _ = mri_unpacked
    dataset = load_dataset("breast_mri", root)
    assert dataset.root == unpacked
    assert Counter((r.source_split, r.label) for r in dataset.records) == {
        ("train", "healthy"): 700, ("train", "sick"): 700, ("validation", "healthy"): 40, ("validation", "sick"): 40}
    for record in dataset.records:
        assert record.path.suffix == ".jpg"
        with Image.open(record.path) as image:
            assert (image.format, image.mode, image.size) == ("BMP", "L", (540, 250))
    anomalous = {r.id for r in dataset.records if r.meta["name_anomaly"]}
    assert len(anomalous) == 40 and all(i.startswith("validation/Healthy/S_") for i in anomalous)
    train = [r for r in dataset.records if r.source_split == "train"]
    assert [r.id for r in train if r.meta["patient_folder"] is None] == ["train/Healthy/H_213"]
    by_id = {r.id: r for r in dataset.records}
    assert by_id["train/Healthy/H_150"].meta["patient_folder"] == "healthy/P9"
    assert "patient_folder" not in by_id["validation/Sick/S_12"].meta
    assert all(r.group is None for r in dataset.records)
    assert by_id["train/Sick/S_1"].image("L").shape == (250, 540)


def test_breast_mri_uses_a_folder_extracted_by_the_user(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    split = tmp_path / "breast_mri" / "Breast Cancer Patients MRI's"
    for name, value in (("train/Healthy/H_1.jpg", 10), ("train/Healthy/H_2.jpg", 20), ("train/Sick/S_1.jpg", 30),
                        ("validation/Healthy/S_5.jpg", 40), ("validation/Sick/S_5.jpg", 50)):
        write_image(split / name, value=value, image_format="BMP")
    patients = tmp_path / "breast_mri" / "mri's"
    (patients / "healthy" / "P1").mkdir(parents=True)
    shutil.copy(split / "train/Healthy/H_1.jpg", patients / "healthy" / "P1" / "H_1.jpg")
    write_image(patients / "healthy" / "P2" / "H_2.jpg", value=99, image_format="BMP")  # same name, other bytes
    dataset = load_dataset("breast_mri", tmp_path)
    by_id = {r.id: r for r in dataset.records}
    assert dataset.root == tmp_path / "breast_mri"
    assert by_id["train/Healthy/H_1"].meta == {"name_anomaly": False, "patient_folder": "healthy/P1"}
    assert by_id["train/Healthy/H_2"].meta["patient_folder"] is None
    assert by_id["validation/Healthy/S_5"].meta["name_anomaly"] is True
    assert by_id["validation/Sick/S_5"].meta["name_anomaly"] is False
    assert not (tmp_path / "cache").exists()


def test_breast_lesions_usg_real_counts_masks_and_raw_rows():
    root = shared("breast_lesions_usg")
    dataset = load_dataset("breast_lesions_usg", root)
    assert len(dataset.records) == 256
    assert dataset.by_label() == {"benign": 154, "malignant": 98, "normal": 4}
    assert sum(len(r.mask_paths) for r in dataset.records) == 266
    by_id = {r.id: r for r in dataset.records}
    assert [p.name for p in by_id["case022"].mask_paths] == [
        "case022_tumor.png", "case022_other1.png", "case022_other2.png"]
    assert len(by_id["case140"].mask_paths) == 5
    assert sorted(r.id for r in dataset.records if not r.mask_paths) == ["case045", "case061", "case209", "case213"]
    case = by_id["case022"]
    assert case.group == case.meta["case_id"] == "case022"
    assert case.meta["CaseID"] == "22" and case.meta["BIRADS"] == "4b" and case.meta["Mask_other_filename"] == (
        "case022_other1.png&case022_other2.png")
    assert sum(r.meta["Age"] == "not available" for r in dataset.records) == 42
    assert Counter(r.meta["BIRADS"] for r in dataset.records)["4a"] == 44


def make_isic(folder: Path, per_class: int = 2) -> None:
    for split in ("train", "test"):
        for class_name in ("benign", "malignant"):
            for number in range(1, per_class + 1):
                write_image(folder / split / class_name / f"{number}.jpg", mode="RGB", value=number)


@pytest.mark.parametrize("under_data", [True, False])
def test_isic_reads_both_layouts_and_lists_stray_files(tmp_path, under_data):
    base = tmp_path / "isic_binary" / ("data" if under_data else "")
    make_isic(base)
    (base / "train" / "benign" / ".DS_Store").write_bytes(b"\0junk")
    dataset = load_dataset("isic_binary", tmp_path)
    assert Counter((r.source_split, r.label) for r in dataset.records) == {
        ("train", "benign"): 2, ("train", "malignant"): 2, ("test", "benign"): 2, ("test", "malignant"): 2}
    assert {r.id for r in dataset.records} >= {"train/benign/1", "test/malignant/2"}
    assert all(r.mask_paths == () for r in dataset.records)
    assert [(e.path.name, e.reason) for e in dataset.exclusions] == [(".DS_Store", "not an image file")]


def test_isic_real_files_verify_when_present():
    root = shared("isic_binary")
    report = verify_checksums("isic_binary", root)
    if report.missing and not report.ok:
        pytest.skip("the ISIC images are not in the shared folder (checksums only)")
    report.raise_if_failed()
    assert load_dataset("isic_binary", root).by_label() == {"benign": 1800, "malignant": 1497}


def make_mibus(root: Path) -> Path:
    """Two benign videos (train) and one malignant video (test); benign/v2/000002.png has no entry."""
    folder = root / "mibus"
    frames = {"benign/v1/000000.png": "train", "benign/v1/000001.png": "train", "benign/v2/000000.png": "train",
              "malignant/v7/000000.png": "test", "malignant/v7/000001.png": "test"}
    for name in [*frames, "benign/v2/000002.png"]:
        write_image(folder / "rawframes" / name, size=(20, 10))
    for split in ("train", "test"):
        names = [name for name, s in frames.items() if s == split]
        coco = {"images": [{"id": i, "file_name": n, "width": 20, "height": 10} for i, n in enumerate(names)],
                "annotations": [{"id": i, "image_id": i, "bbox": [2, 3, 4.5, 5], "category_id": 1}
                                for i in range(len(names))],
                "categories": [{"id": 1, "name": "lesion"}]}
        (folder / "annotations").mkdir(exist_ok=True)
        (folder / "annotations" / f"{split}.json").write_text(json.dumps(coco))
    return folder


def test_mibus_frames_grouped_by_video_with_boxes(tmp_path):
    make_mibus(tmp_path)
    dataset = load_dataset("mibus", tmp_path)
    by_id = {r.id: r for r in dataset.records}
    assert sorted(by_id) == ["benign/v1/000000", "benign/v1/000001", "benign/v2/000000",
                             "malignant/v7/000000", "malignant/v7/000001"]
    assert by_id["benign/v1/000001"].group == "benign/v1" and by_id["benign/v1/000001"].source_split == "train"
    assert by_id["malignant/v7/000000"].label == "malignant" and by_id["malignant/v7/000000"].source_split == "test"
    assert by_id["benign/v2/000000"].lesion_boxes() == ((2, 3, 7, 8),)
    assert [(e.path.relative_to(tmp_path).as_posix(), e.reason) for e in dataset.exclusions] == [
        ("mibus/rawframes/benign/v2/000002.png", "frame has no entry in annotations/train.json or test.json")]


def test_dataset_digest_fingerprints_listing_or_content(tmp_path):
    make_isic(tmp_path / "isic_binary", per_class=1)
    first = dataset_digest("isic_binary", tmp_path)
    assert dataset_digest("isic_binary", tmp_path) == first
    write_image(tmp_path / "isic_binary" / "test" / "benign" / "1.jpg", mode="RGB", value=77)
    changed = dataset_digest("isic_binary", tmp_path)
    assert changed != first
    (tmp_path / "isic_binary" / "SHA256SUMS").write_text("0" * 64 + "  train/benign/1.jpg\n")
    listed = dataset_digest("isic_binary", tmp_path)
    write_image(tmp_path / "isic_binary" / "test" / "benign" / "1.jpg", mode="RGB", value=78)
    assert dataset_digest("isic_binary", tmp_path) == listed != changed
