"""Synthetic stand-in datasets: real on-disk layout (checked against the shared copies where present),
byte-reproducibility, file formats, spreadsheet fidelity, annotation consistency, learnability, the cached
data root, and reading them back through the real loaders."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from oncorepro.data import load_dataset, verify_checksums
from oncorepro.data.synthetic import GENERATORS, class_counts, synthetic_data_root, write_synthetic
from oncorepro.data.synthetic import breast_lesions_usg as usg
from oncorepro.paths import sha256_of
from oncorepro.paths import REPO_ROOT
from oncorepro.records import read_image

SHARED = REPO_ROOT.parent / "shared" / "data"
NAMES = ("busi", "breast_mri", "isic_binary", "breast_lesions_usg", "mibus")
MRI_ROOT = "Breast Cancer Patients MRI's"

# Relative paths inside each dataset folder (for breast_mri: also the archive members).
LAYOUT = {
    "busi": [r"Dataset_BUSI_with_GT/(benign|malignant|normal)/\1 \(\d+\)\.png",
             r"Dataset_BUSI_with_GT/(benign|malignant|normal)/\1 \(\d+\)_mask\.png",
             r"Dataset_BUSI_with_GT/(benign|malignant)/\1 \(\d+\)_mask_\d\.png",
             r"SHA256SUMS", r"ORIGINAL_SHA256SUMS", r"PIXEL_SHA256SUMS", r"PROVENANCE\.md"],
    "breast_mri": [r"breast-cancer-patients-mris\.tar\.xz", r"CONTENTS\.sha256", r"DUPLICATES\.txt",
                   r"SHA256SUMS", r"PROVENANCE\.md",
                   r"Breast Cancer Patients MRI's/train/Healthy/H_\d+\.jpg",
                   r"Breast Cancer Patients MRI's/train/Sick/S_\d+\.jpg",
                   r"Breast Cancer Patients MRI's/validation/(Healthy|Sick)/S_\d+\.jpg",
                   r"mri's/healthy/P\d+/H_\d+\.jpg", r"mri's/sick/P\d+/S_\d+\.jpg"],
    "isic_binary": [r"data/(train|test)/(benign|malignant)/\d+\.jpg", r"SHA256SUMS", r"PROVENANCE\.md"],
    "breast_lesions_usg": [r"BrEaST-Lesions-USG-clinical-data-Dec-15-2023\.xlsx",
                           r"BrEaST-Lesions_USG-images_and_masks/case\d{3}\.png",
                           r"BrEaST-Lesions_USG-images_and_masks/case\d{3}_tumor\.png",
                           r"BrEaST-Lesions_USG-images_and_masks/case\d{3}_other\d\.png",
                           r"SHA256SUMS", r"PROVENANCE\.md"],
    "mibus": [r"rawframes/(benign|malignant)/v\d{3}/\d{6}\.png", r"annotations/(train|test)\.json",
              r"PROVENANCE\.md"],
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """All five synthetic datasets at the smoke settings (12 per class, 64 px)."""
    folder = tmp_path_factory.mktemp("synthetic")
    for name in NAMES:
        write_synthetic(name, folder)
    return folder


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ONCOREPRO_CACHE", str(cache))
    return cache


def files_under(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def mri_members(folder: Path) -> dict[str, bytes]:
    with tarfile.open(folder / "breast-cancer-patients-mris.tar.xz") as archive:
        return {member.name: archive.extractfile(member).read() for member in archive if member.isfile()}


def sums(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line[66:]: line[:64] for line in lines}


def synthetic_paths(name: str, folder: Path) -> set[str]:
    paths = set(files_under(folder))
    return paths | set(mri_members(folder)) if name == "breast_mri" else paths


def real_paths(name: str) -> set[str]:
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    paths = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    if name == "breast_mri":
        paths |= set(sums(folder / "CONTENTS.sha256"))
    if name == "isic_binary":
        paths |= {"data/" + path for path in sums(folder / "SHA256SUMS")}
    return paths


def patterns_hit(name: str, paths: set[str]) -> set[str]:
    """The layout patterns matched; fails on a path that matches none."""
    hit = set()
    for path in paths:
        matching = [pattern for pattern in LAYOUT[name] if re.fullmatch(pattern, path)]
        assert matching, f"{name}: {path!r} matches no layout pattern"
        hit.update(matching)
    return hit


@pytest.mark.parametrize("name", NAMES)
def test_every_synthetic_file_follows_the_real_layout(root, name):
    assert patterns_hit(name, synthetic_paths(name, root / name)) == set(LAYOUT[name])


@pytest.mark.parametrize("name", ["busi", "breast_mri", "isic_binary", "breast_lesions_usg"])
def test_real_shared_files_follow_the_same_layout(name):
    assert patterns_hit(name, real_paths(name)) == set(LAYOUT[name])


def test_same_arguments_give_identical_bytes_and_another_seed_differs(root, tmp_path):
    for name in NAMES:
        again = write_synthetic(name, tmp_path / "again")
        assert files_under(again) == files_under(root / name), name
    other = write_synthetic("busi", tmp_path / "other", seed=1)
    assert files_under(other)["Dataset_BUSI_with_GT/benign/benign (3).png"] != \
        files_under(root / "busi")["Dataset_BUSI_with_GT/benign/benign (3).png"]


def test_an_image_does_not_depend_on_how_many_others_are_written(root, tmp_path):
    small = write_synthetic("busi", tmp_path, n_per_class=3)
    name = "Dataset_BUSI_with_GT/malignant/malignant (2).png"
    assert (small / name).read_bytes() == (root / "busi" / name).read_bytes()


def test_busi_modes_masks_and_quirks(root):
    top = root / "busi" / "Dataset_BUSI_with_GT"
    modes = Counter()
    for image_path in sorted(top.glob("*/* (*).png")):
        with Image.open(image_path) as image:
            modes[image.mode] += 1
            size = image.size
        masks = sorted(image_path.parent.glob(image_path.stem.replace("(", "[(]").replace(")", "[)]") + "_mask*.png"))
        assert masks, image_path
        for mask_path in masks:
            with Image.open(mask_path) as mask:
                assert mask.size == size, mask_path
                expected = {"normal": {"RGB"}}.get(image_path.parent.name, {"1", "RGBA"})
                assert mask.mode in expected, mask_path
            plane = read_image(mask_path, "L")
            assert set(np.unique(plane)) <= {0, 255}
            assert plane.any() == (image_path.parent.name != "normal"), mask_path
    assert modes["L"] > modes["RGB"] > 0
    assert (top / "benign" / "benign (2)_mask_1.png").is_file()
    assert (top / "malignant" / "malignant (12).png").read_bytes() == (top / "benign" / "benign (1).png").read_bytes()
    coloured = read_image(top / "benign" / "benign (5).png", "RGB").astype(int)
    assert (coloured[..., 0] != coloured[..., 2]).any()
    widths = {Image.open(path).size for path in top.glob("benign/benign (*).png") if "_mask" not in path.name}
    assert len(widths) > 6, "image sizes should vary"


def test_busi_lesion_masks_cover_dark_lesions(root):
    top = root / "busi" / "Dataset_BUSI_with_GT"
    for number in range(1, 12):
        pixels = read_image(top / "malignant" / f"malignant ({number}).png", "L").astype(float)
        mask = read_image(top / "malignant" / f"malignant ({number})_mask.png", "L") > 0
        assert pixels[mask].mean() < pixels[~mask].mean(), number


def test_mri_files_are_bmp_behind_jpg_names_with_the_real_quirks(root):
    folder = root / "breast_mri"
    members = mri_members(folder)
    assert sums(folder / "CONTENTS.sha256") == {name: hashlib.sha256(data).hexdigest()
                                                for name, data in members.items()}
    assert sums(folder / "SHA256SUMS") == {path: sha256_of(folder / path) for path in
                                           ("CONTENTS.sha256", "DUPLICATES.txt", "PROVENANCE.md",
                                            "breast-cancer-patients-mris.tar.xz")}
    for name, data in members.items():
        assert data[:2] == b"BM", name
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.mode, image.size) == ("BMP", "L", (round(64 * 540 / 250), 64))
    split = [name for name in members if name.startswith(MRI_ROOT)]
    assert Counter(name.split("/")[2] for name in split) == {"Healthy": 12, "Sick": 12}
    assert all(Path(name).name.startswith("S_") for name in split if "/validation/Healthy/" in name)
    copies = [name for name in members if name.startswith("mri's/")]
    train = {Path(name).name: members[name] for name in split if "/train/" in name}
    assert all(members[name] == train[Path(name).name] for name in copies)
    assert len(copies) == len(train) - 1
    duplicate = (folder / "DUPLICATES.txt").read_text().splitlines()[1]
    first, second = duplicate.split(" = ")
    assert members[f"{MRI_ROOT}/{first}"] == members[f"{MRI_ROOT}/{second}"]


def test_mri_sick_slices_hold_a_bright_mass(root):
    members = mri_members(root / "breast_mri")
    brightest = {label: [np.asarray(Image.open(io.BytesIO(data))).max() for name, data in members.items()
                         if name.startswith(f"{MRI_ROOT}/train/{label}/")] for label in ("Healthy", "Sick")}
    assert min(brightest["Sick"]) > max(brightest["Healthy"]) + 20


def test_isic_jpegs_and_checksums(root):
    folder = root / "isic_binary"
    listed = sums(folder / "SHA256SUMS")
    assert listed == {path.relative_to(folder / "data").as_posix(): sha256_of(path)
                      for path in (folder / "data").rglob("*.jpg")}
    assert Counter(path.split("/")[0] for path in listed) == {"train": 20, "test": 4}
    with Image.open(folder / "data" / next(iter(listed))) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 64))
    def colour_spread(path: Path) -> float:  # spread of red minus blue in the centre: variegated lesions
        centre = read_image(path).astype(float)[16:48, 16:48]
        return float((centre[..., 0] - centre[..., 2]).std())

    spread = {label: [colour_spread(path) for path in (folder / "data" / "train" / label).glob("*.jpg")]
              for label in ("benign", "malignant")}
    assert min(spread["malignant"]) > max(spread["benign"])


def test_breast_lesions_usg_files_match_the_sheet(root):
    folder = root / "breast_lesions_usg"
    sheet = pd.read_excel(folder / usg.SPREADSHEET, sheet_name=usg.SHEET)
    images = folder / usg.IMAGES
    named = set(sheet.Image_filename) | set(sheet.Mask_tumor_filename.dropna())
    named |= {part for cell in sheet.Mask_other_filename.dropna() for part in cell.split("&")}
    assert named == {path.name for path in images.iterdir()}
    assert (sheet.Mask_tumor_filename.isna() == (sheet.Classification == "normal")).all()
    assert sheet.Mask_other_filename.dropna().str.contains("&").any()
    alpha_cut = 0
    for row in sheet.itertuples():
        with Image.open(images / row.Image_filename) as image:
            assert image.mode == "RGBA"
            size = image.size
            alpha_cut += int(np.asarray(image)[..., 3].min() == 0)
        for mask_name in [row.Mask_tumor_filename] + str(row.Mask_other_filename).split("&"):
            if isinstance(mask_name, str) and mask_name != "nan":
                mask = np.asarray(Image.open(images / mask_name))
                assert mask.shape == (size[1], size[0], 4)
                assert set(np.unique(mask)) == {0, 255}
    assert alpha_cut > 0
    assert verify_checksums("breast_lesions_usg", root).passed


def test_breast_lesions_usg_sheet_mirrors_the_real_one(root):
    real_path = SHARED / "breast_lesions_usg" / usg.SPREADSHEET
    if not real_path.is_file():
        pytest.skip(f"{real_path} is absent")
    real = pd.read_excel(real_path, sheet_name=None)
    ours = pd.read_excel(root / "breast_lesions_usg" / usg.SPREADSHEET, sheet_name=None)
    assert list(ours) == list(real)
    data_sheet = list(real)[0]
    assert list(ours[data_sheet].columns) == list(real[data_sheet].columns)
    assert ours["Data Dictionary"].equals(real["Data Dictionary"])
    for column in ("Tissue_composition", "Signs", "Symptoms", "Shape", "Margin", "Echogenicity",
                   "Posterior_features", "Halo", "Calcifications", "Skin_thickening", "Interpretation",
                   "BIRADS", "Verification", "Diagnosis", "Classification", "Age"):
        vocabulary = {atom for value in real[data_sheet][column].dropna() for atom in str(value).split("&")}
        used = {atom for value in ours[data_sheet][column].dropna() for atom in str(value).split("&")}
        if column == "Age":
            vocabulary, used = {v for v in vocabulary if not v.isdigit()}, {v for v in used if not v.isdigit()}
        assert used <= vocabulary, (column, used - vocabulary)
    cells = openpyxl.load_workbook(root / "breast_lesions_usg" / usg.SPREADSHEET)[data_sheet]
    types = {cell.value: {row[i].data_type for row in cells.iter_rows(min_row=2)} for i, cell in enumerate(cells[1])}
    assert types["CaseID"] == {"n"} and types["Pixel_size"] == {"n"}
    assert types["BIRADS"] == {"n", "s"} and types["Age"] == {"n", "s"}


def test_breast_lesions_usg_clinical_fields_follow_the_class(tmp_path):
    folder = write_synthetic("breast_lesions_usg", tmp_path, n_per_class=40, size=32)
    sheet = pd.read_excel(folder / usg.SPREADSHEET, sheet_name=usg.SHEET)
    by_class = dict(iter(sheet.groupby("Classification")))
    assert {label: len(rows) for label, rows in by_class.items()} == {"benign": 40, "malignant": 40, "normal": 10}
    age = pd.to_numeric(sheet.Age, errors="coerce").groupby(sheet.Classification).mean()
    assert age["malignant"] > age["benign"] + 5
    assert (sheet.Age == "not available").any()
    irregular = (sheet.Shape == "irregular").groupby(sheet.Classification).mean()
    assert irregular["malignant"] > irregular["benign"] + 0.3
    circumscribed = (sheet.Margin == "circumscribed").groupby(sheet.Classification).mean()
    assert circumscribed["benign"] > circumscribed["malignant"] + 0.4
    malignant, normal = by_class["malignant"], by_class["normal"]
    assert set(malignant.BIRADS.astype(str)) <= {"4a", "4b", "4c", "5"}
    assert (malignant.Verification == "confirmed by biopsy").all()
    assert malignant.Interpretation.str.startswith("Suspicion of malignancy").all()
    assert (sheet.Diagnosis[sheet.Verification != "confirmed by biopsy"] == "not applicable").all()
    assert set(normal.BIRADS) == {1} and (normal.Shape == "not applicable").all()


def test_mibus_every_frame_has_one_box_inside_it(root):
    folder = root / "mibus"
    frames = {path.relative_to(folder / "rawframes").as_posix() for path in (folder / "rawframes").rglob("*.png")}
    seen, videos = set(), {}
    for split in ("train", "test"):
        coco = json.loads((folder / "annotations" / f"{split}.json").read_text())
        names = {category["id"]: category["name"] for category in coco["categories"]}
        images = {image["id"]: image for image in coco["images"]}
        boxes = Counter(annotation["image_id"] for annotation in coco["annotations"])
        assert set(boxes) == set(images) and set(boxes.values()) == {1}
        for annotation in coco["annotations"]:
            image = images[annotation["image_id"]]
            x, y, w, h = annotation["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= image["width"] and y + h <= image["height"]
            assert image["file_name"].split("/")[0] == names[annotation["category_id"]]
            with Image.open(folder / "rawframes" / image["file_name"]) as frame:
                assert frame.size == (image["width"], image["height"])
            videos.setdefault(image["file_name"].rsplit("/", 1)[0], set()).add(split)
        assert set(names.values()) == {"benign", "malignant"}
        assert {image["file_name"].split("/")[0] for image in images.values()} == {"benign", "malignant"}
        assert not seen & {image["file_name"] for image in images.values()}
        seen |= {image["file_name"] for image in images.values()}
    assert seen == frames
    assert all(len(splits) == 1 for splits in videos.values()) and len(videos) == 24


def test_mibus_lesion_moves_slightly_between_frames(root):
    coco = json.loads((root / "mibus" / "annotations" / "train.json").read_text())
    by_video: dict[int, list] = {}
    for image, annotation in zip(coco["images"], coco["annotations"]):
        by_video.setdefault(image["video_id"], []).append(annotation["bbox"])
    for boxes in by_video.values():
        assert len({tuple(box) for box in boxes}) > 1
        assert np.ptp(np.array(boxes)[:, 0]) <= 0.2 * 64 * 1.4


def test_busi_benign_and_malignant_are_separable_from_pixels(tmp_path):
    folder = write_synthetic("busi", tmp_path, n_per_class={"benign": 40, "malignant": 40, "normal": 1}, size=48)
    features, labels = [], []
    for label in ("benign", "malignant"):
        for path in sorted((folder / "Dataset_BUSI_with_GT" / label).glob(f"{label} (*).png")):
            if "_mask" not in path.name:
                small = Image.open(path).convert("L").resize((12, 12), Image.BILINEAR)
                features.append(np.asarray(small, dtype=float).ravel() / 255)
                labels.append(label == "malignant")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    scores = cross_val_score(model, np.array(features), np.array(labels),
                             cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert scores.mean() > 0.8, scores


@pytest.mark.parametrize(("name", "least"), [("breast_mri", 0.75), ("isic_binary", 0.8),
                                             ("breast_lesions_usg", 0.7), ("mibus", 0.8)])
def test_the_other_datasets_are_learnable_from_pixels_too(tmp_path, own_cache, name, least):
    write_synthetic(name, tmp_path, n_per_class=40, size=48)
    records = [record for record in load_dataset(name, tmp_path).records
               if record.label != "normal" and (name != "mibus" or record.id.endswith("000000"))]
    features = np.array([np.asarray(Image.fromarray(record.image("RGB")).resize((12, 12), Image.BILINEAR),
                                    dtype=float).ravel() / 255 for record in records])
    labels = np.array([record.label for record in records])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    scores = cross_val_score(model, features, labels, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert scores.mean() > least, scores


@pytest.mark.parametrize("name", NAMES)
def test_the_loaders_read_the_synthetic_datasets(root, name, own_cache):
    dataset = load_dataset(name, data_root=root)
    counts = class_counts(name, 12)
    expected = {label.lower(): count * (4 if name == "mibus" else 1) for label, count in counts.items()}
    assert dataset.by_label() == expected
    assert not dataset.exclusions
    if name in ("busi", "breast_lesions_usg"):
        lesions = [record for record in dataset.records if record.label != "normal"]
        assert all(record.mask() is not None and record.mask().any() for record in lesions)
    if name == "mibus":
        record = dataset.records[0]
        assert record.lesion_boxes() and record.group and record.source_split in ("train", "test")


def test_synthetic_data_root_is_cached_and_written_atomically(own_cache, monkeypatch):
    first = synthetic_data_root(["isic_binary", "busi"], n_per_class=2, size=24)
    assert first.parent == own_cache / "synthetic"
    assert sorted(path.name for path in first.iterdir()) == ["busi", "isic_binary"]
    stamp = (first / "busi" / "SHA256SUMS").stat().st_mtime_ns
    assert synthetic_data_root(["busi", "isic_binary"], n_per_class=2, size=24) == first
    assert (first / "busi" / "SHA256SUMS").stat().st_mtime_ns == stamp
    assert synthetic_data_root(["busi"], n_per_class=2, size=24) != first

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(GENERATORS["mibus"], "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthetic_data_root(["busi", "mibus"], n_per_class=2, size=24)
    assert sorted(path.name for path in (own_cache / "synthetic").iterdir()) == sorted(
        [first.name, synthetic_data_root(["busi"], n_per_class=2, size=24).name])


def test_bad_arguments_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="known: busi"):
        write_synthetic("BUSI", tmp_path)
    with pytest.raises(ValueError, match="benign, malignant, normal"):
        write_synthetic("busi", tmp_path, n_per_class={"benign": 3, "malignant": 3})
    with pytest.raises(ValueError, match="at least 2 per class"):
        write_synthetic("isic_binary", tmp_path, n_per_class=1)
    write_synthetic("busi", tmp_path, n_per_class=1)
    with pytest.raises(FileExistsError, match="busi"):
        write_synthetic("busi", tmp_path, n_per_class=1)
    assert class_counts("breast_mri", {"healthy": 3, "SICK": 4}) == {"Healthy": 3, "Sick": 4}
