"""Bad dataset copies (written to tmp_path) give a DataError naming the offending file or folder."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from oncorepro.data import load_dataset, unpack_mri, verify_checksums
from oncorepro.errors import DataError


def write_png(path: Path, size: tuple[int, int] = (8, 6), mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0]), np.uint8)
    pixels[1:3, 2:4] = 255
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def make_busi(root: Path, per_class: int = 2) -> Path:
    """A valid miniature BUSI copy; returns its Dataset_BUSI_with_GT folder."""
    top = root / "busi" / "Dataset_BUSI_with_GT"
    for class_name in ("benign", "malignant", "normal"):
        for number in range(1, per_class + 1):
            write_png(top / class_name / f"{class_name} ({number}).png")
            write_png(top / class_name / f"{class_name} ({number})_mask.png", mode="1")
    return top


def test_valid_miniature_busi_loads(tmp_path):
    top = make_busi(tmp_path)
    write_png(top / "benign" / "benign (2)_mask_1.png", mode="1")
    (top / "normal" / "Thumbs.db").write_bytes(b"junk")
    dataset = load_dataset("busi", tmp_path)
    assert dataset.by_label() == {"benign": 2, "malignant": 2, "normal": 2}
    assert len({r.id: r for r in dataset.records}["benign (2)"].mask_paths) == 2
    assert [(e.path.name, e.reason) for e in dataset.exclusions] == [("Thumbs.db", "not an image file")]


@pytest.mark.parametrize("damage, offender, problem", [
    ("garbage", "benign (1).png", "cannot be read as an image"),
    ("mask_size", "malignant (2)_mask.png", "mask is 9x6 but its image malignant (2).png is 8x6"),
    ("missing_mask", "normal (1).png", "image has no mask 'normal (1)_mask.png'"),
    ("orphan_mask", "benign (7)_mask.png", "orphan mask"),
    ("orphan_extra_mask", "malignant (9)_mask_1.png", "orphan mask"),
    ("empty_class", "normal", "class folder holds no images"),
    ("no_top_folder", "Dataset_BUSI_with_GT", "folder not found"),
    ("wrong_class_name", "benign", "class folder missing; unexpected folders there: Benign"),
    ("unexpected_image_name", "scan 3.png", "unexpected file name"),
    ("other_class_file", "malignant (5).png", "file of class 'malignant' inside the benign/ folder"),
    ("sub_folder", "images", "unexpected folder inside benign/"),
])
def test_bad_busi_copies_name_the_offending_file(tmp_path, damage, offender, problem):
    top = make_busi(tmp_path)
    if damage == "garbage":
        (top / "benign" / "benign (1).png").write_bytes(b"this is not a PNG file")
    elif damage == "mask_size":
        write_png(top / "malignant" / "malignant (2)_mask.png", size=(9, 6), mode="1")
    elif damage == "missing_mask":
        (top / "normal" / "normal (1)_mask.png").unlink()
    elif damage == "orphan_mask":
        write_png(top / "benign" / "benign (7)_mask.png", mode="1")
    elif damage == "orphan_extra_mask":
        write_png(top / "malignant" / "malignant (9)_mask_1.png", mode="1")
    elif damage == "empty_class":
        for path in (top / "normal").iterdir():
            path.unlink()
    elif damage == "no_top_folder":
        top.rename(top.parent / "BUSI")
    elif damage == "wrong_class_name":
        (top / "benign").rename(top / "Benign")
    elif damage == "unexpected_image_name":
        write_png(top / "benign" / "scan 3.png")
    elif damage == "other_class_file":
        write_png(top / "benign" / "malignant (5).png")
    elif damage == "sub_folder":
        (top / "benign" / "images").mkdir()
    with pytest.raises(DataError) as caught:
        load_dataset("busi", tmp_path)
    assert caught.value.path.name == offender
    assert f"{offender}: {problem}" in str(caught.value)


def write_listing(folder: Path, name: str = "SHA256SUMS") -> Path:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
             for p in sorted(folder.rglob("*.png"))]
    listing = folder / name
    listing.write_text("\n".join(lines) + "\n")
    return listing


def test_wrong_checksum_is_reported_and_raised_with_the_file_name(tmp_path):
    top = make_busi(tmp_path, per_class=1)
    write_listing(tmp_path / "busi")
    assert verify_checksums("busi", tmp_path).passed
    write_png(top / "malignant" / "malignant (1).png", size=(8, 7))
    (top / "normal" / "normal (1)_mask.png").unlink()
    report = verify_checksums("busi", tmp_path)
    assert not report.passed
    assert report.mismatched == ["Dataset_BUSI_with_GT/malignant/malignant (1).png"]
    assert report.missing == ["Dataset_BUSI_with_GT/normal/normal (1)_mask.png"]
    assert "MISMATCH Dataset_BUSI_with_GT/malignant/malignant (1).png" in report.summary()
    with pytest.raises(DataError, match=r"malignant \(1\)\.png: checksum differs"):
        report.raise_if_failed()


def test_malformed_listing_is_a_problem_not_a_crash(tmp_path):
    make_busi(tmp_path, per_class=1)
    (tmp_path / "busi" / "SHA256SUMS").write_text("not a checksum line\n")
    report = verify_checksums("busi", tmp_path)
    assert report.problem == "line 1 is not '<sha256>  <path>'"
    with pytest.raises(DataError, match="SHA256SUMS: line 1"):
        report.raise_if_failed()


SHEET = "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx"
IMAGES = "BrEaST-Lesions_USG-images_and_masks"


def make_breast_lesions(root: Path, drop_column: str | None = None) -> Path:
    folder = root / "breast_lesions_usg"
    rows = [
        {"CaseID": 1, "Image_filename": "case001.png", "Mask_tumor_filename": "case001_tumor.png",
         "Mask_other_filename": "case001_other1.png&case001_other2.png", "Age": "not available",
         "Classification": "benign"},
        {"CaseID": 2, "Image_filename": "case002.png", "Mask_tumor_filename": None, "Mask_other_filename": None,
         "Age": 61, "Classification": "normal"},
    ]
    for name in ("case001.png", "case001_tumor.png", "case001_other1.png", "case001_other2.png", "case002.png"):
        write_png(folder / IMAGES / name, mode="RGBA")
    frame = pd.DataFrame(rows)
    if drop_column:
        frame = frame.drop(columns=drop_column)
    frame.to_excel(folder / SHEET, index=False)
    return folder


def test_valid_miniature_breast_lesions_loads_with_raw_cells(tmp_path):
    make_breast_lesions(tmp_path)
    records = {r.id: r for r in load_dataset("breast_lesions_usg", tmp_path).records}
    assert [p.name for p in records["case001"].mask_paths] == [
        "case001_tumor.png", "case001_other1.png", "case001_other2.png"]
    assert records["case002"].mask_paths == () and records["case002"].label == "normal"
    assert records["case001"].meta["Age"] == "not available" and records["case002"].meta["Age"] == "61"
    assert records["case002"].meta["Mask_tumor_filename"] == ""


def test_breast_lesions_sheet_missing_a_column(tmp_path):
    make_breast_lesions(tmp_path, drop_column="Classification")
    with pytest.raises(DataError, match=f"{SHEET}: required column 'Classification' is missing"):
        load_dataset("breast_lesions_usg", tmp_path)


def test_breast_lesions_file_named_in_sheet_missing(tmp_path):
    folder = make_breast_lesions(tmp_path)
    (folder / IMAGES / "case001_other2.png").unlink()
    with pytest.raises(DataError, match=r"case001_other2\.png: file named in .* row 2 is missing"):
        load_dataset("breast_lesions_usg", tmp_path)


def test_breast_lesions_png_not_in_sheet(tmp_path):
    folder = make_breast_lesions(tmp_path)
    write_png(folder / IMAGES / "case003.png")
    with pytest.raises(DataError, match=r"case003\.png: PNG not referenced"):
        load_dataset("breast_lesions_usg", tmp_path)


@pytest.mark.parametrize("classification, problem", [
    ("suspicious", r"row 3: Classification 'suspicious'"),
    ("malignant", r"row 3: a malignant case without Mask_tumor_filename")])  # the row of a normal scan: no mask
def test_breast_lesions_bad_classification(tmp_path, classification, problem):
    folder = make_breast_lesions(tmp_path)
    frame = pd.read_excel(folder / SHEET)
    frame.loc[1, "Classification"] = classification
    frame.to_excel(folder / SHEET, index=False)
    with pytest.raises(DataError, match=problem):
        load_dataset("breast_lesions_usg", tmp_path)


def test_isic_without_images_says_how_to_obtain_them(tmp_path):
    (tmp_path / "isic_binary").mkdir()
    (tmp_path / "isic_binary" / "SHA256SUMS").write_text("")
    with pytest.raises(DataError, match=r"isic_binary/train: folder not found .*kaggle.*elena-cabrera"):
        load_dataset("isic_binary", tmp_path)


def make_mri_folders(root: Path) -> Path:
    """A valid miniature extracted MRI copy; returns its split folder."""
    top = root / "breast_mri" / "Breast Cancer Patients MRI's"
    for split in ("train", "validation"):
        for class_name in ("Healthy", "Sick"):
            write_png(top / split / class_name / f"{class_name[0]}_1.jpg")
    return top


@pytest.mark.parametrize("extra, problem", [
    ("test", r"test: unexpected folder; Breast Cancer Patients MRI's/ holds only the split folders train, validation"),
    ("train/Unknown", r"Unknown: unexpected folder; train/ holds only the class folders Healthy, Sick")])
def test_mri_unexpected_folders_are_named(tmp_path, extra, problem):
    top = make_mri_folders(tmp_path)
    assert len(load_dataset("breast_mri", tmp_path).records) == 4
    write_png(top / extra / "H_9.jpg")
    with pytest.raises(DataError, match=problem):
        load_dataset("breast_mri", tmp_path)


def test_isic_unexpected_class_folder_is_named(tmp_path):
    base = tmp_path / "isic_binary" / "data"
    for split in ("train", "test"):
        for class_name in ("benign", "malignant"):
            write_png(base / split / class_name / "1.jpg")
    (base / "train" / "notes.txt").write_text("x")
    loaded = load_dataset("isic_binary", tmp_path)
    assert len(loaded.records) == 4 and [e.reason for e in loaded.exclusions] == ["not a class folder"]
    write_png(base / "test" / "unknown" / "2.jpg")
    with pytest.raises(DataError,
                       match=r"unknown: unexpected folder; test/ holds only the class folders benign, malignant"):
        load_dataset("isic_binary", tmp_path)


def test_missing_dataset_folder_names_it(tmp_path):
    with pytest.raises(DataError, match=r"breast_lesions_usg: folder not found"):
        load_dataset("breast_lesions_usg", tmp_path)


def make_mri_archive(folder: Path, members: dict[str, bytes], contents: dict[str, bytes]) -> Path:
    """An archive of ``members`` and a CONTENTS.sha256 listing ``contents``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "breast-cancer-patients-mris.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (folder / "CONTENTS.sha256").write_text("".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                                                    for n, d in contents.items()))
    return archive


def bmp_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 6), value, np.uint8)).save(buffer, format="BMP")
    return buffer.getvalue()


def mri_members() -> dict[str, bytes]:
    split = "Breast Cancer Patients MRI's"
    return {f"{split}/train/Healthy/H_1.jpg": bmp_bytes(1), f"{split}/train/Sick/S_1.jpg": bmp_bytes(2),
            f"{split}/validation/Healthy/S_9.jpg": bmp_bytes(3), f"{split}/validation/Sick/S_9.jpg": bmp_bytes(4)}


def test_mri_archive_is_unpacked_verified_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    members = mri_members()
    make_mri_archive(tmp_path / "breast_mri", members, members)
    unpacked = unpack_mri(tmp_path)
    assert unpacked.is_relative_to(tmp_path / "cache" / "breast_mri")
    assert sorted(p.name for p in (tmp_path / "cache" / "breast_mri").iterdir()) == [unpacked.name]
    assert unpack_mri(tmp_path) == unpacked
    dataset = load_dataset("breast_mri", tmp_path)
    assert dataset.by_label() == {"healthy": 2, "sick": 2}
    assert verify_checksums("breast_mri", tmp_path, files="CONTENTS.sha256").passed


def test_mri_archive_not_matching_its_listing_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    members = mri_members()
    expected = {**members, "Breast Cancer Patients MRI's/train/Sick/S_1.jpg": bmp_bytes(99)}
    make_mri_archive(tmp_path / "breast_mri", members, expected)
    with pytest.raises(DataError, match=r"breast-cancer-patients-mris\.tar\.xz: unpacked content does not match "
                                        r"CONTENTS\.sha256: 1 mismatched, 0 missing \(first: .*S_1\.jpg\)"):
        unpack_mri(tmp_path)
    assert list((tmp_path / "cache" / "breast_mri").iterdir()) == []


def test_mri_archive_with_path_traversal_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    evil = {"../escaped.txt": b"outside"}
    make_mri_archive(tmp_path / "breast_mri", evil, evil)
    with pytest.raises(DataError, match=r"tar\.xz: cannot be unpacked"):
        unpack_mri(tmp_path)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert list((tmp_path / "cache" / "breast_mri").iterdir()) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_mri_archive_is_refused(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    members = {**mri_members(), "noise.bin": np.random.default_rng(0).bytes(200_000)}
    archive = make_mri_archive(tmp_path / "breast_mri", members, members)
    data = archive.read_bytes()
    archive.write_bytes(b"not an xz archive" if damage == "garbage" else data[:len(data) // 2])
    with pytest.raises(DataError, match=r"tar\.xz: cannot be unpacked"):
        unpack_mri(tmp_path)
    assert list((tmp_path / "cache" / "breast_mri").iterdir()) == []


def test_mri_without_archive_or_extracted_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "breast_mri").mkdir()
    with pytest.raises(DataError, match=r"breast-cancer-patients-mris\.tar\.xz: archive not found"):
        load_dataset("breast_mri", tmp_path)


def make_mibus(root: Path) -> Path:
    folder = root / "mibus"
    for name in ("benign/v1/000000.png", "malignant/v2/000000.png"):
        write_png(folder / "rawframes" / name, size=(20, 10))
    for split, name in (("train", "benign/v1/000000.png"), ("test", "malignant/v2/000000.png")):
        write_coco(folder, split, [name])
    return folder


def write_coco(folder: Path, split: str, names: list[str], bbox: list[float] | None = None,
               width: int = 20) -> None:
    coco = {"images": [{"id": i, "file_name": n, "width": width, "height": 10} for i, n in enumerate(names)],
            "annotations": [{"id": i, "image_id": i, "bbox": bbox or [1, 1, 3, 3], "category_id": 1}
                            for i in range(len(names))],
            "categories": [{"id": 1, "name": "lesion"}]}
    (folder / "annotations").mkdir(exist_ok=True)
    (folder / "annotations" / f"{split}.json").write_text(json.dumps(coco))


@pytest.mark.parametrize("damage, message", [
    ("frame_missing", r"benign/v1/000001\.png: frame listed in train\.json is missing"),
    ("video_in_both_splits", r"test\.json: video benign/v1 has frames in both train\.json and test\.json"),
    ("not_json", r"train\.json: is not valid JSON"),
    ("no_test_file", r"test\.json: annotation file not found"),
    ("wrong_width", r"benign/v1/000000\.png: frame is 20x10 but train\.json says 30x10"),
    ("box_outside", r"train\.json: box \(15, 1, 25, 4\) of frame benign/v1/000000\.png lies outside"),
])
def test_bad_mibus_annotations(tmp_path, damage, message):
    folder = make_mibus(tmp_path)
    if damage == "frame_missing":
        write_coco(folder, "train", ["benign/v1/000000.png", "benign/v1/000001.png"])
    elif damage == "video_in_both_splits":
        write_png(folder / "rawframes" / "benign/v1/000001.png", size=(20, 10))
        write_coco(folder, "test", ["malignant/v2/000000.png", "benign/v1/000001.png"])
    elif damage == "not_json":
        (folder / "annotations" / "train.json").write_text("{images: ")
    elif damage == "no_test_file":
        (folder / "annotations" / "test.json").unlink()
    elif damage == "wrong_width":
        write_coco(folder, "train", ["benign/v1/000000.png"], width=30)
    elif damage == "box_outside":
        write_coco(folder, "train", ["benign/v1/000000.png"], bbox=[15, 1, 10, 3])
    with pytest.raises(DataError, match=message):
        load_dataset("mibus", tmp_path)


def test_undecodable_image_fails_its_pixel_checksum_with_the_reason(tmp_path):
    top = make_busi(tmp_path, per_class=1)
    image = top / "benign" / "benign (1).png"
    (tmp_path / "busi" / "PIXEL_SHA256SUMS").write_text(
        f"{'0' * 64}  Dataset_BUSI_with_GT/benign/benign (1).png\n")
    image.write_bytes(b"not a png")
    report = verify_checksums("busi", tmp_path, files="PIXEL_SHA256SUMS")
    assert report.mismatched == ["Dataset_BUSI_with_GT/benign/benign (1).png"]
    assert "cannot be decoded" in report.summary()
