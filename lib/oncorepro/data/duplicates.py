"""Duplicate audit: exact copies and near-duplicates of one scan, grouped so that no split can separate them.

Two images are linked when any of these holds:

* **exact**: identical decoded pixels (sha256 of the image decoded to RGB uint8, plus its shape), so the
  greyscale re-encoding of BUSI and the original RGB release count as the same image;
* **near, by hash**: 64-bit perceptual hashes of the greyscale image (``imagehash.phash``) differ in at most
  ``threshold`` bits (default 8) *and* the difference hashes (``imagehash.dhash``) in at most 16 bits. This
  catches re-saved, resized, brightness-shifted, slightly cropped or annotated copies;
* **near, by crop**: the central 60 % of one image (both reduced 6x, same pixel scale) is found in the other
  with normalised cross-correlation >= 0.95 (``cv2.matchTemplate``, TM_CCOEFF_NORMED). This catches copies
  cropped so differently that their global hashes drift apart. Only pairs with pHash <= 26 and dHash <= 24
  bits are tried (all 144 BUSI pairs at >= 0.95 found by trying every pair lie inside those bounds).

Links are transitive: clusters are the connected components (union-find).

How the numbers were chosen (BUSI, 780 images, 303,810 pairs, looked at side by side):

* pHash distances (always even) are 0: 44 pairs, 2: 94, 4: 48, 6: 24, 8: 6, 10: 10, 12: 21, 14: 60,
  16: 298, 18: 918, then thousands. Every pair at <= 8 that we inspected is the same scan (re-saved, resized
  about 0.83x, re-cropped, with or without calipers) or the next frame of the same lesion; dHash of those
  pairs is <= 14. The first pairs of *different* lesions appear at pHash 10 (benign 135/430, dHash 22),
  12 (benign 62/80, dHash 16) and 14 (benign 219/malignant 118, dHash 16), so pHash <= 8 keeps a margin of
  two steps, and the dHash <= 16 check guards datasets whose images look alike globally.
* Crops such as benign 140/62 (pHash 24), malignant 65/66 (pHash 12, dHash 20) or benign 333/malignant 78
  (pHash 16) have template correlation >= 0.97; pairs of different patients reach at most ~0.95, hence 0.95.
  Pairs at pHash <= 8 that were resized rather than cropped score as low as 0.46 here, which is why both
  tests are used.

Pawłowska et al. (Data in Brief 48 (2023) 109247) report many BUSI near-duplicates, including lesions
filed as both benign and malignant; the known exact cross-class pair is benign (433) == malignant (145).
Fingerprints are cached per file in ``cache_dir("hashes")`` keyed by path, size and mtime.
"""

from __future__ import annotations

import hashlib
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
from tqdm.auto import tqdm

from ..errors import DataError
from ..paths import cache_dir
from ..records import Record, read_image

DHASH_CONFIRM = 16  # bits of a 64-bit dHash, scaled with hash_size
CROP_NCC = 0.95
CROP_REDUCE = 6  # both images reduced by this factor before template matching
CROP_MARGIN = 0.2  # template = image without this fraction on each side
CROP_CANDIDATE_PHASH = 26
CROP_CANDIDATE_DHASH = 24
MIN_TEMPLATE = 12  # pixels (after reduction) a template needs on each side to be matched
_CACHE_VERSION = "1"


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
    pairs: pd.DataFrame  # id_a, id_b, label_a, label_b, hamming, kind, dhash, ncc, evidence

    @staticmethod
    def cluster_name(index: int) -> str:
        """The group name given to cluster ``index`` of ``clusters`` (dup-0001, dup-0002, ...)."""
        return f"dup-{index + 1:04d}"

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
        """Counts for the text: clusters (exact / near / cross-label), images in clusters, linked pairs."""
        return {"clusters": len(self.clusters),
                "exact_clusters": sum(c.kind == "exact" for c in self.clusters),
                "near_clusters": sum(c.kind == "near" for c in self.clusters),
                "cross_label_clusters": len(self.cross_label()),
                "images_in_clusters": sum(len(c.ids) for c in self.clusters),
                "redundant_images": sum(len(c.ids) - 1 for c in self.clusters),
                "pairs": len(self.pairs)}


@dataclass(frozen=True)
class _Fingerprint:
    pixels: str  # sha256 of the RGB uint8 bytes and the shape
    phash: np.ndarray  # packed hash bits, uint8
    dhash: np.ndarray
    reduced: np.ndarray  # greyscale uint8 reduced CROP_REDUCE x


def find_duplicates(records: Sequence[Record], *, threshold: int = 8, hash_size: int = 8,
                    crop_ncc: float | None = CROP_NCC, progress: bool | None = None) -> DuplicateReport:
    """Exact and near-duplicate clusters among ``records`` (see the module docstring for the tests).

    ``threshold``: largest pHash Hamming distance (bits of a ``hash_size``**2-bit hash) for a near link;
    ``crop_ncc``: correlation needed for a crop link, None to skip the crop test; ``progress``: tqdm bar
    (None: only on a terminal). Raises DataError naming the file if an image cannot be decoded.
    """
    ids = [record.id for record in records]
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        first = next(r for r in records if r.id == repeated[0])
        raise DataError(first.path, f"record id {repeated[0]!r} occurs {Counter(ids)[repeated[0]]} times")
    scale = hash_size * hash_size / 64
    dhash_limit = round(DHASH_CONFIRM * scale)
    prints = [_fingerprint(record.path, hash_size)
              for record in tqdm(records, desc="fingerprints", unit="img", disable=_quiet(progress))]
    ph = _hamming(np.stack([p.phash for p in prints])) if prints else np.zeros((0, 0), int)
    dh = _hamming(np.stack([p.dhash for p in prints])) if prints else np.zeros((0, 0), int)
    upper = np.triu(np.ones_like(ph, dtype=bool), k=1)

    links: dict[tuple[int, int], str] = {}
    by_pixels: dict[str, list[int]] = {}
    for index, fingerprint in enumerate(prints):
        by_pixels.setdefault(fingerprint.pixels, []).append(index)
    for members in by_pixels.values():
        for other in members[1:]:
            links[(members[0], other)] = "pixels"
    for a, b in zip(*np.nonzero(upper & (ph <= threshold) & (dh <= dhash_limit))):
        links.setdefault((int(a), int(b)), "hash")
    ncc: dict[tuple[int, int], float] = {}
    if crop_ncc is not None:
        candidates = upper & (ph <= round(CROP_CANDIDATE_PHASH * scale)) & (dh <= round(CROP_CANDIDATE_DHASH * scale))
        tried = [(int(a), int(b)) for a, b in zip(*np.nonzero(candidates))]
        ncc = dict(zip(tried, _crop_scores(prints, tried)))
        links.update({pair: "crop" for pair, score in ncc.items() if score >= crop_ncc and pair not in links})

    pairs = pd.DataFrame(
        [{"id_a": ids[a], "id_b": ids[b], "label_a": records[a].label, "label_b": records[b].label,
          "hamming": int(ph[a, b]), "kind": "exact" if evidence == "pixels" else "near",
          "dhash": int(dh[a, b]), "ncc": ncc.get((a, b), np.nan), "evidence": evidence}
         for (a, b), evidence in sorted(links.items())],
        columns=["id_a", "id_b", "label_a", "label_b", "hamming", "kind", "dhash", "ncc", "evidence"])
    components = _components(len(records), list(links))
    clusters = []
    for members in components:
        if len(members) < 2:
            continue
        inside = set(members)
        distances = [int(ph[a, b]) for a, b in links if a in inside]
        exact = len({prints[i].pixels for i in members}) == 1
        clusters.append(DuplicateCluster(ids=tuple(ids[i] for i in members), kind="exact" if exact else "near",
                                         labels=tuple(records[i].label for i in members),
                                         max_distance=max(distances)))
    method = (f"exact: sha256 of decoded RGB pixels; near: pHash ({hash_size * hash_size}-bit imagehash.phash "
              f"on greyscale) Hamming <= {threshold} confirmed by dHash <= {dhash_limit}")
    if crop_ncc is not None:
        method += (f", or a crop: central {1 - 2 * CROP_MARGIN:.0%} of one image found in the other at 1/"
                   f"{CROP_REDUCE} scale with normalised cross-correlation >= {crop_ncc} (cv2.matchTemplate; "
                   f"tried for pHash <= {round(CROP_CANDIDATE_PHASH * scale)} and dHash <= "
                   f"{round(CROP_CANDIDATE_DHASH * scale)})")
    return DuplicateReport(clusters=clusters, method=method + "; clusters are transitive", pairs=pairs)


def assign_groups(records: Sequence[Record], report: DuplicateReport) -> list[Record]:
    """Records with ``group`` set so that copies share a group: members of a cluster get its name
    (``dup-0007``); records already carrying a group (a patient) keep it unless a cluster links it to other
    records, in which case everything linked (by patient or by cluster) becomes one group named after its
    first cluster; all other records get their own id. Input order is kept."""
    position = {record.id: i for i, record in enumerate(records)}
    if len(position) != len(records):
        seen: set[str] = set()
        for record in records:
            if record.id in seen:
                raise DataError(record.path, f"record id {record.id!r} occurs twice")
            seen.add(record.id)
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


def _quiet(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _fingerprint(path: Path, hash_size: int) -> _Fingerprint:
    """Fingerprint of one image file, read from the cache when path, size and mtime are unchanged."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{hash_size}|{CROP_REDUCE}|{_CACHE_VERSION}"
    cached = cache_dir("hashes") / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as stored:
                return _Fingerprint(pixels=str(stored["pixels"]), phash=stored["phash"], dhash=stored["dhash"],
                                    reduced=stored["reduced"])
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache entry (e.g. interrupted write): recompute and overwrite it
    rgb = read_image(path, "RGB")
    digest = hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()
    grey = Image.fromarray(rgb).convert("L")
    reduced = grey.reduce(CROP_REDUCE) if min(grey.size) >= CROP_REDUCE else grey
    fingerprint = _Fingerprint(
        pixels=digest,
        phash=np.packbits(imagehash.phash(grey, hash_size=hash_size).hash.ravel()),
        dhash=np.packbits(imagehash.dhash(grey, hash_size=hash_size).hash.ravel()),
        reduced=np.asarray(reduced))
    _write_atomic(cached, lambda stream: np.savez(stream, pixels=digest, phash=fingerprint.phash,
                                                  dhash=fingerprint.dhash, reduced=fingerprint.reduced))
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


def _crop_scores(prints: Sequence[_Fingerprint], pairs: list[tuple[int, int]]) -> list[float]:
    """``_crop_correlation`` of each pair; cached per set of pairs (keyed by the images' pixel digests)."""
    key = "\n".join(f"{prints[a].pixels}|{prints[b].pixels}" for a, b in pairs)
    key += f"|{CROP_REDUCE}|{CROP_MARGIN}|{MIN_TEMPLATE}|{_CACHE_VERSION}"
    cached = cache_dir("hashes") / f"crop-{hashlib.sha1(key.encode()).hexdigest()}.npy"
    if cached.is_file():
        try:
            scores = np.load(cached)
            if len(scores) == len(pairs):
                return [float(score) for score in scores]
        except (OSError, ValueError):
            pass  # unreadable cache entry: recompute and overwrite it
    templates = [_template(p.reduced) for p in prints]
    scores = [_crop_correlation(prints[a].reduced, templates[a], prints[b].reduced, templates[b])
              for a, b in pairs]
    _write_atomic(cached, lambda stream: np.save(stream, np.asarray(scores, dtype=np.float64)))
    return scores


def _template(image: np.ndarray) -> np.ndarray | None:
    """The central part of a reduced image, or None if it is too small or flat to be matched."""
    h, w = image.shape
    dy, dx = round(h * CROP_MARGIN), round(w * CROP_MARGIN)
    template = image[dy:h - dy, dx:w - dx]
    return template if min(template.shape) >= MIN_TEMPLATE and np.ptp(template) > 0 else None


def _crop_correlation(a: np.ndarray, template_a: np.ndarray | None, b: np.ndarray,
                      template_b: np.ndarray | None) -> float:
    """Best normalised cross-correlation of the central part of either image found inside the other
    (NaN when neither template fits)."""
    scores = [float(cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED).max())
              for image, template in ((b, template_a), (a, template_b))
              if template is not None and template.shape[0] <= image.shape[0]
              and template.shape[1] <= image.shape[1]]
    return max(scores) if scores else float("nan")


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
