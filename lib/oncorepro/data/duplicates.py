"""Duplicate audit: exact copies and near-duplicates of one scan, grouped so that no split separates them.

A pair of images is linked when

* **exact**: the decoded pixels are identical (sha256 of the RGB uint8 array and its shape), so the
  greyscale re-encoding of BUSI and the original RGB release count as the same image; or
* **near**: the pair is a candidate and its fine detail agrees once aligned. Candidates: 64-bit perceptual
  hashes of the greyscale images (``imagehash.phash``) within ``threshold`` (default 8) bits and difference
  hashes (``imagehash.dhash``) within 16 bits; or, for images of different size (cropping or resizing
  changes the size), pHash within 26 and dHash within 22 bits. Confirmation: both images are reduced by one
  common factor (median short side about 120 px) and their Gaussian blur (sigma 3 px) is subtracted, which
  keeps speckle and edges but removes the depth-dependent brightness that makes all ultrasound images
  alike; the larger image is rescaled (by 1 for a crop, by the ratio of heights or of widths for a resized
  copy and, for pairs within pHash 16 / dHash 20, by every scale in between in 2 % steps, for a copy both
  resized and cropped) and the central 60 % of either image is located in the other (``cv2.matchTemplate``,
  normalised correlation). A near link needs a best correlation >= 0.65.

Links are transitive: clusters are the connected components (union-find). Found: re-saved, resized,
brightness-shifted and annotated copies, and copies cropped up to about 5 % per side (also when resized);
not found: copies cropped much more *and* resized, rotated or flipped copies.

How the numbers were chosen (pairs looked at side by side):

* BUSI, 780 images, 303,810 pairs. pHash distances (always even) are 0: 44 pairs, 2: 94, 4: 48, 6: 24,
  8: 6, 10: 10, 12: 21, 14: 60, 16: 298, 18: 918, then thousands; all pairs at <= 8 we looked at show
  one scan (re-saved, resized about 0.83x, re-cropped, with or without calipers) or the next frame of one
  lesion, with dHash <= 14. pHash alone fails both ways: different lesions appear from 10 on (benign
  135/430, 62/80, benign 219 vs malignant 118) while differently cropped copies reach 24 (benign 140/62;
  benign 333 vs malignant 78 at 16). Plain correlation of reduced images fails too: different lesions reach
  0.93 (benign 146/96) through the shared brightness trend.
* Detail correlation of all 5,771 BUSI candidates: copies of one scan >= 0.74 (benign 229/280 lowest),
  different lesions <= 0.47 (benign 174/326), next frames of one lesion 0.36-0.71 (one patient either way).
* Breast MRI (1,480 renderings, all 540x250, reduced 2x), 4,627 candidates: pairs of different labels
  <= 0.57 (train/Sick/S_155 vs validation/Healthy/S_64), pairs from different patient folders of ``mri's/``
  <= 0.50 (P9 and P32 counted as one: they share 20 identical files); above that, neighbouring renderings
  of one patient (or pairs within validation, which has no patient folders).

Pawłowska et al. (Data in Brief 48 (2023) 109247) report many BUSI near-duplicates, including lesions filed
as both benign and malignant; the known exact cross-class pair is benign (433) == malignant (145).
Fingerprints are cached per file in ``cache_dir("hashes")`` (keyed by path, size and mtime), pair scores
per set of candidate pairs.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import cv2
import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from ..errors import DataError
from ..paths import cache_dir
from ..records import Record, read_image

DHASH_BOUND = 16  # bits of a 64-bit dHash, scaled with hash_size
CROP_PHASH = 26  # bounds for pairs of different size (possible crops), 64-bit hashes
CROP_DHASH = 22
LADDER_PHASH = 16  # pairs of different size this alike may be cropped and resized at once: scales in steps
LADDER_DHASH = 20
MIN_CORRELATION = 0.65
DETAIL_SIDE = 120  # images are reduced by a common factor so that the median short side is about this
DETAIL_SIGMA = 3.0  # Gaussian removed from the reduced images, pixels
SCALE_STEP = 0.02  # relative step of those scales
MARGIN = 0.2  # template = image without this fraction on each side
MIN_TEMPLATE = 12  # pixels (after reduction) a template needs on each side to be matched
_CACHE_VERSION = "4"


@dataclass(frozen=True)
class DuplicateCluster:
    """Records linked (transitively) as copies of one scan; ``labels[i]`` is the label of ``ids[i]``."""

    ids: tuple[str, ...]
    kind: str  # "exact": all members have identical pixels; "near": at least one link is perceptual
    labels: tuple[str, ...]
    max_distance: int  # largest pHash Hamming distance among the links of this cluster

    @property
    def cross_label(self) -> bool:
        """True when members carry different labels (the cluster cannot be given one label)."""
        return len(set(self.labels)) > 1


@dataclass
class DuplicateReport:
    """Clusters (ordered by first member in the input order) and the linked pairs behind them."""

    clusters: list[DuplicateCluster]
    method: str
    pairs: pd.DataFrame  # linked pairs: id_a, id_b, label_a, label_b, hamming (pHash), kind, dhash, correlation

    @staticmethod
    def cluster_name(index: int) -> str:
        """The group name given to cluster ``index`` of ``clusters`` (dup-0001, dup-0002, ...)."""
        return f"dup-{index + 1:04d}"

    def exact_groups(self) -> list[tuple[str, ...]]:
        """Groups of pixel-identical images (a near cluster may hold several of them, or join them)."""
        exact = self.pairs[self.pairs["kind"] == "exact"]
        order = {record_id: i for i, record_id in enumerate(dict.fromkeys([*exact["id_a"], *exact["id_b"]]))}
        names = list(order)
        components = _components(len(names), [(order[a], order[b]) for a, b in zip(exact["id_a"], exact["id_b"])])
        return [tuple(names[i] for i in members) for members in components if len(members) > 1]

    def cross_label(self) -> list[DuplicateCluster]:
        """Clusters whose members carry different labels."""
        return [cluster for cluster in self.clusters if cluster.cross_label]

    def table(self) -> pd.DataFrame:
        """One row per cluster: name, kind, size, label counts, cross-label flag, max distance, ids."""
        rows = [{"cluster": self.cluster_name(i), "kind": c.kind, "size": len(c.ids),
                 "labels": ", ".join(f"{label} {n}" for label, n in sorted(Counter(c.labels).items())),
                 "cross_label": c.cross_label, "max_distance": c.max_distance, "ids": "; ".join(c.ids)}
                for i, c in enumerate(self.clusters)]
        return pd.DataFrame(rows, columns=["cluster", "kind", "size", "labels", "cross_label", "max_distance",
                                           "ids"])

    def summary(self) -> dict[str, int]:
        """Counts for the text: clusters (exact / near / cross-label), groups of identical images, images
        in clusters, images beyond the first of each cluster, linked pairs."""
        return {"clusters": len(self.clusters),
                "exact_clusters": sum(c.kind == "exact" for c in self.clusters),
                "near_clusters": sum(c.kind == "near" for c in self.clusters),
                "cross_label_clusters": len(self.cross_label()),
                "exact_groups": len(self.exact_groups()),
                "images_in_clusters": sum(len(c.ids) for c in self.clusters),
                "redundant_images": sum(len(c.ids) - 1 for c in self.clusters),
                "pairs": len(self.pairs)}


@dataclass(frozen=True)
class _Fingerprint:
    pixels: str  # sha256 of the RGB uint8 bytes and the shape
    shape: tuple[int, int]  # height, width
    phash: np.ndarray  # packed hash bits, uint8
    dhash: np.ndarray
    reduced: np.ndarray  # greyscale uint8, reduced by the factor of the comparison


def find_duplicates(records: Sequence[Record], *, threshold: int = 8, hash_size: int = 8,
                    min_correlation: float = MIN_CORRELATION, reduce: int | None = None,
                    progress: bool | None = None) -> DuplicateReport:
    """Exact and near-duplicate clusters among ``records`` (the tests are in the module docstring).

    ``threshold``: largest pHash Hamming distance (bits of a ``hash_size``**2-bit hash) for a pair of images
    to be compared in detail; ``min_correlation``: aligned detail correlation a near pair needs;
    ``reduce``: factor the images are reduced by for that comparison (None: median short side / 120);
    ``progress``: tqdm bar (None: only on a terminal). DataError naming the file if an image is unreadable.
    """
    _require_unique_ids(records)
    ids = [record.id for record in records]
    bound = _bounds(hash_size)
    if not records:
        return DuplicateReport([], _method(threshold, hash_size, min_correlation, 1), _pairs_frame([]))
    if reduce is None:
        reduce = max(1, round(float(np.median([min(record.image_size()) for record in records])) / DETAIL_SIDE))
    prints = [_fingerprint(record.path, hash_size, reduce)
              for record in tqdm(records, desc="fingerprints", unit="img", disable=_quiet(progress))]
    ph = _hamming(np.stack([p.phash for p in prints]))
    dh = _hamming(np.stack([p.dhash for p in prints]))
    shapes = np.array([p.shape for p in prints])
    resized = (shapes[:, None, :] != shapes[None, :, :]).any(axis=-1)
    candidates = np.triu((ph <= threshold) & (dh <= bound["dhash"])
                         | resized & (ph <= bound["crop_phash"]) & (dh <= bound["crop_dhash"]), k=1)
    ladder = resized & (ph <= bound["ladder_phash"]) & (dh <= bound["ladder_dhash"])
    tried = [(int(a), int(b), bool(ladder[a, b])) for a, b in zip(*np.nonzero(candidates))]
    correlation = dict(zip([(a, b) for a, b, _ in tried], _match_scores(prints, tried, reduce)))
    by_pixels: dict[str, list[int]] = {}
    for index, fingerprint in enumerate(prints):
        by_pixels.setdefault(fingerprint.pixels, []).append(index)
    exact = {(a, b) for same in by_pixels.values() for k, a in enumerate(same) for b in same[k + 1:]}
    links = sorted(exact | {pair for pair, score in correlation.items() if score >= min_correlation})

    rows = [(ids[a], ids[b], records[a].label, records[b].label, int(ph[a, b]),
             "exact" if (a, b) in exact else "near", int(dh[a, b]), correlation.get((a, b), np.nan))
            for a, b in links]
    clusters = []
    for members in _components(len(records), links):
        if len(members) < 2:
            continue
        inside = np.zeros(len(records), dtype=bool)
        inside[members] = True
        clusters.append(DuplicateCluster(
            ids=tuple(ids[i] for i in members),
            kind="exact" if len({prints[i].pixels for i in members}) == 1 else "near",
            labels=tuple(records[i].label for i in members),
            max_distance=max(int(ph[a, b]) for a, b in links if inside[a])))
    return DuplicateReport(clusters, _method(threshold, hash_size, min_correlation, reduce), _pairs_frame(rows))


def _bounds(hash_size: int) -> dict[str, int]:
    """The Hamming bounds, chosen for 64-bit hashes, scaled to hashes of hash_size**2 bits."""
    bits = hash_size * hash_size / 64
    return {name: round(value * bits) for name, value in (
        ("dhash", DHASH_BOUND), ("crop_phash", CROP_PHASH), ("crop_dhash", CROP_DHASH),
        ("ladder_phash", LADDER_PHASH), ("ladder_dhash", LADDER_DHASH))}


def _method(threshold: int, hash_size: int, min_correlation: float, reduce: int) -> str:
    bound = _bounds(hash_size)
    return (f"exact: identical decoded RGB pixels (sha256); near: {hash_size * hash_size}-bit pHash Hamming "
            f"<= {threshold} and dHash <= {bound['dhash']} (imagehash, greyscale), or images of different "
            f"size with pHash <= {bound['crop_phash']} and dHash <= {bound['crop_dhash']} (possible crops), "
            f"confirmed by a correlation of fine detail >= {min_correlation} after alignment (images reduced "
            f"{reduce}x, Gaussian sigma {DETAIL_SIGMA:g} removed; scales 1 and the ratios of heights and of "
            f"widths, for pairs of different size within pHash {bound['ladder_phash']} and dHash "
            f"{bound['ladder_dhash']} also the scales between in {SCALE_STEP:.0%} steps; central "
            f"{1 - 2 * MARGIN:.0%} of one image located in the other with cv2.matchTemplate); clusters are "
            f"transitive (union-find)")


def _pairs_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id_a", "id_b", "label_a", "label_b", "hamming", "kind", "dhash",
                                       "correlation"])


def assign_groups(records: Sequence[Record], report: DuplicateReport) -> list[Record]:
    """Records with ``group`` set so that copies share a group: members of a cluster get its name
    (``dup-0007``); records already carrying a group (a patient) keep it unless a cluster links it to other
    records, in which case everything linked (by patient or by cluster) becomes one group named after its
    first cluster; all other records get their own id. Input order is kept."""
    _require_unique_ids(records)
    position = {record.id: i for i, record in enumerate(records)}
    edges = []
    first_of_group: dict[str, int] = {}
    for i, record in enumerate(records):
        if record.group is not None:
            edges.append((first_of_group.setdefault(record.group, i), i))
    cluster_of: dict[int, int] = {}
    for number, cluster in enumerate(report.clusters):
        present = [position[i] for i in cluster.ids if i in position]
        for member in present:
            cluster_of.setdefault(member, number)
        edges += [(present[0], other) for other in present[1:]]
    grouped = []
    for members in _components(len(records), edges):
        numbers = [cluster_of[i] for i in members if i in cluster_of]
        if numbers:
            name = report.cluster_name(min(numbers))
        else:
            name = records[members[0]].group or records[members[0]].id
        grouped += [(i, name) for i in members]
    names = dict(grouped)
    return [replace(record, group=names[i]) for i, record in enumerate(records)]


def _require_unique_ids(records: Sequence[Record]) -> None:
    counts = Counter(record.id for record in records)
    repeated = next((record for record in records if counts[record.id] > 1), None)
    if repeated is not None:
        raise DataError(repeated.path, f"record id {repeated.id!r} occurs {counts[repeated.id]} times")


def _quiet(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _fingerprint(path: Path, hash_size: int, reduce: int) -> _Fingerprint:
    """Fingerprint of one image file, read from the cache when path, size and mtime are unchanged."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{hash_size}|{reduce}|{_CACHE_VERSION}"
    cached = cache_dir("hashes") / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as stored:
                return _Fingerprint(pixels=str(stored["pixels"]), shape=tuple(int(n) for n in stored["shape"]),
                                    phash=stored["phash"], dhash=stored["dhash"], reduced=stored["reduced"])
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache entry (e.g. interrupted write): recompute and overwrite it
    rgb = read_image(path, "RGB")
    digest = hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()
    grey = Image.fromarray(rgb).convert("L")
    reduced = grey.reduce(reduce) if min(grey.size) >= reduce else grey
    fingerprint = _Fingerprint(
        pixels=digest,
        shape=(rgb.shape[0], rgb.shape[1]),
        phash=np.packbits(imagehash.phash(grey, hash_size=hash_size).hash.ravel()),
        dhash=np.packbits(imagehash.dhash(grey, hash_size=hash_size).hash.ravel()),
        reduced=np.asarray(reduced))
    _write_atomic(cached, lambda stream: np.savez(stream, pixels=digest, shape=fingerprint.shape,
                                                  phash=fingerprint.phash, dhash=fingerprint.dhash,
                                                  reduced=fingerprint.reduced))
    return fingerprint


def _write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a cache file through a temporary file, so a concurrent reader never sees half of it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _hamming(bits: np.ndarray) -> np.ndarray:
    """All-pairs Hamming distances of packed hashes (n, bytes) -> (n, n), in row blocks to bound memory."""
    distances = np.empty((len(bits), len(bits)), dtype=np.int32)
    for start in range(0, len(bits), 1024):
        block = bits[start:start + 1024, None, :] ^ bits[None, :, :]
        distances[start:start + 1024] = np.bitwise_count(block).sum(axis=-1)
    return distances


def _match_scores(prints: Sequence[_Fingerprint], pairs: list[tuple[int, int, bool]], reduce: int) -> list[float]:
    """``_aligned_detail`` of each (a, b, try a ladder of scales) pair, the larger image brought onto the
    smaller so that the score does not depend on the order; cached per set of pairs, keyed by the images'
    pixel digests (so the order of the records does not matter either)."""
    keys = [(*sorted((prints[a].pixels, prints[b].pixels)), ladder) for a, b, ladder in pairs]
    order = sorted(range(len(pairs)), key=keys.__getitem__)
    key = "\n".join(f"{keys[i][0]}|{keys[i][1]}|{keys[i][2]}" for i in order)
    key += f"|{reduce}|{MARGIN}|{MIN_TEMPLATE}|{DETAIL_SIGMA}|{SCALE_STEP}|{_CACHE_VERSION}"
    cached = cache_dir("hashes") / f"pairs-{hashlib.sha1(key.encode()).hexdigest()}.npy"
    scores = None
    if cached.is_file():
        try:
            scores = np.load(cached)
        except (OSError, ValueError):
            pass  # unreadable cache entry: recompute and overwrite it
    if scores is None or len(scores) != len(pairs):
        scores = np.empty(len(pairs))
        for position, i in enumerate(order):
            a, b, ladder = pairs[i]
            small, large = sorted((prints[a], prints[b]), key=lambda p: (p.shape[0] * p.shape[1], p.pixels))
            scores[position] = _aligned_detail(small.reduced, large.reduced,
                                               _scales(small.shape, large.shape, ladder))
        _write_atomic(cached, lambda stream: np.save(stream, scores))
    result = [0.0] * len(pairs)
    for position, i in enumerate(order):
        result[i] = float(scores[position])
    return result


def _scales(shape_a: tuple[int, int], shape_b: tuple[int, int], ladder: bool) -> list[float]:
    """Scales that may bring image b onto image a, limited to 0.5-2: 1 (a crop) and the ratios of heights
    and of widths (a resized copy, perhaps cropped along the other axis); with ``ladder`` (a pair alike
    enough to be resized and cropped on both axes) also every scale between them in SCALE_STEP steps."""
    ratios = [1.0, shape_a[0] / shape_b[0], shape_a[1] / shape_b[1]]
    if ladder:
        low, high = min(ratios), max(ratios)
        steps = math.ceil(math.log(high / low) / math.log1p(SCALE_STEP))
        ratios += list(np.geomspace(low, high, steps + 1)) if steps else []
    return sorted({float(r) for r in ratios if 0.5 <= r <= 2})


def _aligned_detail(a: np.ndarray, b: np.ndarray, scales: Sequence[float]) -> float:
    """Correlation of fine detail (image minus its Gaussian blur) once the two reduced images are aligned:
    ``b`` is rescaled by each of ``scales`` and the central part of either image is located in the other
    (cv2.matchTemplate, TM_CCOEFF_NORMED); the best score, NaN when no template fits."""
    scores = []
    detail_a = _detail(a)
    for scale in scales:
        size = (max(1, round(b.shape[1] * scale)), max(1, round(b.shape[0] * scale)))
        detail_b = _detail(b if scale == 1 else cv2.resize(b, size, interpolation=cv2.INTER_AREA))
        for image, template in ((detail_b, _central(detail_a)), (detail_a, _central(detail_b))):
            if (min(template.shape) >= MIN_TEMPLATE and template.shape[0] <= image.shape[0]
                    and template.shape[1] <= image.shape[1] and np.ptp(template) > 0):
                scores.append(float(cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED).max()))
    return max(scores) if scores else float("nan")


def _detail(image: np.ndarray) -> np.ndarray:
    """The image minus its Gaussian blur: speckle and edges without the depth-dependent brightness trend."""
    image = image.astype(np.float32)
    return image - cv2.GaussianBlur(image, (0, 0), DETAIL_SIGMA)


def _central(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    dy, dx = round(h * MARGIN), round(w * MARGIN)
    return image[dy:h - dy, dx:w - dx]


def _components(n: int, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Connected components of 0..n-1 (union-find), each sorted, ordered by their smallest member."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return sorted(members.values(), key=lambda group: group[0])
