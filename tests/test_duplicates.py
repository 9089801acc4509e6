"""Duplicate audit: exact and near copies are found, different images stay apart, groups are transitive."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from oncorepro.data import duplicates
from oncorepro.data.duplicates import DuplicateCluster, DuplicateReport, assign_groups, find_duplicates
from oncorepro.errors import DataError
from oncorepro.paths import resolve_data_root
from oncorepro.records import Record

BUSI = resolve_data_root() / "busi" / "Dataset_BUSI_with_GT"
needs_busi = pytest.mark.skipif(not BUSI.is_dir(), reason=f"BUSI not found at {BUSI}")


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """Fingerprints of throw-away files go to a cache inside tmp_path."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ONCOREPRO_CACHE", str(folder))
    return folder


def phantom(layout: int, detail: int, height: int = 420, width: int = 520) -> np.ndarray:
    """An ultrasound-like image, darker with depth: broad tissue layout (seed ``layout``) plus finer layers
    and speckle (seed ``detail``). Two phantoms sharing ``layout`` look alike at a glance."""
    def unit(x: np.ndarray) -> np.ndarray:
        return (x - x.min()) / np.ptp(x)

    broad = unit(gaussian_filter(np.random.default_rng(layout).normal(size=(height, width)), (25, 90)))
    fine = unit(gaussian_filter(np.random.default_rng(detail).normal(size=(height, width)), (3, 20)))
    grain = gaussian_filter(np.random.default_rng(detail + 1000).rayleigh(1.0, (height, width)), 1.6)
    depth = np.linspace(1.0, 0.3, height)[:, None]
    return np.clip(100 * depth * (0.3 + broad + 0.8 * fine) * grain, 0, 255).astype(np.uint8)


def altered(image: Image.Image, crop: float = 0.0, scale: float = 1.0, brightness: int = 0) -> Image.Image:
    """``image`` cropped by ``crop`` of its size on each side, resized by ``scale``, brightened."""
    w, h = image.size
    image = image.crop((round(w * crop), round(h * crop), w - round(w * crop), h - round(h * crop)))
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    return Image.fromarray(np.clip(np.asarray(image, dtype=int) + brightness, 0, 255).astype(np.uint8))


def record(path: Path, label: str = "benign", group: str | None = None) -> Record:
    return Record(dataset="test", id=path.stem, path=path, label=label, group=group)


def busi_record(name: str) -> Record:
    label = name.split(" ")[0]
    return Record(dataset="busi", id=name, path=BUSI / label / f"{name}.png", label=label)


def test_planted_copies_are_found_and_different_images_kept_apart(tmp_path, own_cache):
    original = Image.fromarray(phantom(layout=1, detail=1))
    images = {
        "original": original,
        "cropped": altered(original, crop=0.03),
        "resized": altered(original, scale=0.85),
        "brighter": altered(original, brightness=20),
        "all_three": altered(original, crop=0.02, scale=0.9, brightness=12),
        "lookalike": Image.fromarray(phantom(layout=1, detail=2)),
        "other": Image.fromarray(phantom(layout=4, detail=4)),
    }
    records = []
    for name, image in images.items():
        image.save(tmp_path / f"{name}.png")
        records.append(record(tmp_path / f"{name}.png"))
    original.convert("RGB").save(tmp_path / "rgb_copy.png")  # other colour mode, same pixels
    records.append(record(tmp_path / "rgb_copy.png"))

    report = find_duplicates(records, progress=False)

    assert [set(c.ids) for c in report.clusters] == [
        {"original", "cropped", "resized", "brighter", "all_three", "rgb_copy"}]
    assert report.clusters[0].kind == "near" and not report.clusters[0].cross_label
    assert report.exact_groups() == [("original", "rgb_copy")]
    # the lookalike is a candidate by its hashes (a different size, pHash <= 26, dHash <= 22) for the
    # resized copy; only the detail check keeps it apart
    resized, lookalike = images["resized"], images["lookalike"]
    assert imagehash.phash(resized) - imagehash.phash(lookalike) <= duplicates.CROP_PHASH
    assert imagehash.dhash(resized) - imagehash.dhash(lookalike) <= duplicates.CROP_DHASH
    assert not {"lookalike", "other"} & (set(report.pairs["id_a"]) | set(report.pairs["id_b"]))


def test_near_duplicate_cluster_lists_its_pairs_and_summary(tmp_path, own_cache):
    original = Image.fromarray(phantom(layout=4, detail=4))
    original.save(tmp_path / "a.png")
    altered(original, scale=0.8).save(tmp_path / "b.png")
    Image.fromarray(phantom(layout=5, detail=5)).save(tmp_path / "c.png")
    report = find_duplicates([record(tmp_path / "a.png"), record(tmp_path / "b.png", "malignant"),
                              record(tmp_path / "c.png")], progress=False)
    assert list(report.pairs[["id_a", "id_b", "kind"]].itertuples(index=False, name=None)) == [("a", "b", "near")]
    assert report.pairs["correlation"].iloc[0] >= duplicates.MIN_CORRELATION
    assert report.cross_label() == report.clusters
    table = report.table()
    assert table.loc[0, "cluster"] == "dup-0001" and table.loc[0, "labels"] == "benign 1, malignant 1"
    assert report.summary()["cross_label_clusters"] == 1 and report.summary()["images_in_clusters"] == 2
    assert "pHash" in report.method and "0.65" in report.method


def test_fingerprints_come_from_the_cache_until_the_file_changes(tmp_path, own_cache, monkeypatch):
    Image.fromarray(phantom(layout=6, detail=6)).save(tmp_path / "a.png")
    Image.fromarray(phantom(layout=6, detail=6)).save(tmp_path / "b.png")
    records = [record(tmp_path / "a.png"), record(tmp_path / "b.png")]
    first = find_duplicates(records, progress=False)
    decoded = []
    monkeypatch.setattr(duplicates, "read_image", lambda path, mode: decoded.append(path) or
                        np.zeros((1, 1, 3), np.uint8))
    again = find_duplicates(records, progress=False)
    assert decoded == [] and again.pairs.equals(first.pairs) and again.clusters == first.clusters
    Image.fromarray(phantom(layout=7, detail=7)).save(tmp_path / "b.png")
    find_duplicates(records, progress=False)
    assert decoded == [tmp_path / "b.png"]


def test_unreadable_image_and_repeated_ids_raise_data_error(tmp_path, own_cache):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        find_duplicates([record(tmp_path / "broken.png")], progress=False)
    Image.fromarray(phantom(layout=8, detail=8)).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="occurs 2 times"):
        find_duplicates([record(tmp_path / "a.png"), record(tmp_path / "a.png")], progress=False)


def _cluster(*ids: str) -> DuplicateCluster:
    return DuplicateCluster(ids=ids, kind="near", labels=("benign",) * len(ids), max_distance=2)


def test_assign_groups_is_transitive(tmp_path):
    records = [record(tmp_path / f"{name}.png") for name in "ABCD"]
    report = DuplicateReport(clusters=[_cluster("A", "B"), _cluster("B", "C")], method="by hand",
                             pairs=duplicates._pairs_frame([]))
    groups = [r.group for r in assign_groups(records, report)]
    assert groups == ["dup-0001", "dup-0001", "dup-0001", "D"]


def test_assign_groups_merges_patients_linked_by_a_cluster(tmp_path):
    records = [record(tmp_path / "a.png", group="P1"), record(tmp_path / "b.png", group="P1"),
               record(tmp_path / "c.png", group="P2"), record(tmp_path / "d.png", group="P3"),
               record(tmp_path / "e.png"), record(tmp_path / "f.png", group="P2")]
    report = DuplicateReport(clusters=[_cluster("b", "c"), _cluster("x", "y")], method="by hand",
                             pairs=duplicates._pairs_frame([]))
    grouped = assign_groups(records, report)
    assert [r.group for r in grouped] == ["dup-0001", "dup-0001", "dup-0001", "P3", "e", "dup-0001"]
    assert [r.id for r in grouped] == [r.id for r in records] and records[0].group == "P1"


@needs_busi
def test_busi_exact_cross_class_pair_is_flagged(own_cache):
    records = [busi_record(name) for name in ("benign (433)", "malignant (145)", "benign (1)", "malignant (1)")]
    report = find_duplicates(records, progress=False)
    assert [c.ids for c in report.clusters] == [("benign (433)", "malignant (145)")]
    cluster = report.clusters[0]
    assert cluster.kind == "exact" and cluster.labels == ("benign", "malignant") and cluster.max_distance == 0
    assert report.cross_label() == [cluster]


@needs_busi
def test_busi_planted_copy_is_found(tmp_path, own_cache):
    altered(Image.open(BUSI / "benign" / "benign (1).png").convert("L"), crop=0.03, scale=0.9,
            brightness=15).save(tmp_path / "copy of benign 1.png")
    records = [busi_record("benign (1)"), record(tmp_path / "copy of benign 1.png"),
               busi_record("benign (2)"), busi_record("benign (3)")]
    report = find_duplicates(records, progress=False)
    assert [c.ids for c in report.clusters] == [("benign (1)", "copy of benign 1")]


@pytest.fixture(scope="module")
def busi_report() -> tuple[list[Record], DuplicateReport]:
    records = [busi_record(path.stem) for label in ("benign", "malignant", "normal")
               for path in sorted((BUSI / label).glob(f"{label} (*).png")) if "_mask" not in path.name]
    return records, find_duplicates(records, progress=False)


@needs_busi
@pytest.mark.slow
def test_busi_audit_numbers(busi_report):
    """The numbers the book prints (see the module docstring of oncorepro.data.duplicates)."""
    records, report = busi_report
    assert len(records) == 780
    assert report.exact_groups() == [("benign (433)", "malignant (145)")]
    summary = report.summary()
    assert (summary["clusters"], summary["images_in_clusters"], summary["cross_label_clusters"]) == (150, 339, 8)
    crossing = {frozenset(c.ids) for c in report.cross_label()}
    assert {frozenset({"benign (433)", "malignant (145)"}), frozenset({"benign (399)", "malignant (93)"}),
            frozenset({"benign (333)", "malignant (77)", "malignant (78)"})} <= crossing
    # known copies of one scan: resized (217/268), cropped (140/62), cropped axilla view (malignant 11/113)
    for pair in (("benign (217)", "benign (268)"), ("benign (62)", "benign (140)"),
                 ("malignant (11)", "malignant (113)")):
        assert any(set(pair) <= set(c.ids) for c in report.clusters), pair
    # different lesions that look alike at a glance stay apart
    for pair in (("benign (135)", "benign (430)"), ("benign (62)", "benign (80)"),
                 ("benign (146)", "benign (96)"), ("benign (174)", "benign (326)")):
        assert not any(set(pair) <= set(c.ids) for c in report.clusters), pair
