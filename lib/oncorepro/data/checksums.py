"""Checksums of the datasets: verifying a copy against its sha256sum-style listings, a cheap fingerprint
recorded with every result, and the one-time, verified unpacking of the breast MRI archive."""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..paths import REPO_ROOT, cache_dir, resolve_data_root, sha256_of
from ..records import read_image
from .isic import images_folder
from .registry import DATASETS, dataset_info, require_folder

MRI_ARCHIVE = "breast-cancer-patients-mris.tar.xz"
MRI_SPLIT_FOLDER = "Breast Cancer Patients MRI's"
MRI_CONTENTS = "CONTENTS.sha256"
_VERIFIED_MARKER = ".oncorepro-verified"
_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<path>.+)$")


@dataclass
class VerifyReport:
    """Outcome of checking a dataset copy against one checksum listing (paths relative to ``base``)."""

    name: str
    listing: Path | None
    base: Path
    ok: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problem: str | None = None
    reasons: dict[str, str] = field(default_factory=dict)  # why a file could not be checked, by path

    @property
    def passed(self) -> bool:
        return self.problem is None and not self.mismatched and not self.missing and bool(self.ok)

    def summary(self) -> str:
        """One line per finding, for the command line (first line: the counts)."""
        lines = [f"{len(self.ok)} ok, {len(self.mismatched)} mismatched, {len(self.missing)} missing"
                 f" (listing {self.listing}, files under {self.base})"]
        if self.problem:
            lines.append(f"problem: {self.problem}")
        lines += [f"MISMATCH {path}" + (f" ({self.reasons[path]})" if path in self.reasons else "")
                  for path in self.mismatched]
        lines += [f"MISSING  {path}" for path in self.missing]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """DataError naming the first mismatching or missing file (or the listing's problem) unless passed."""
        if self.problem:
            raise DataError(self.listing or self.base, self.problem)
        if self.mismatched:
            raise DataError(self.base / self.mismatched[0],
                            f"checksum differs from {self.listing} ({len(self.mismatched)} file(s) differ)",
                            fix="download the dataset again")
        if self.missing:
            raise DataError(self.base / self.missing[0],
                            f"file listed in {self.listing} is missing ({len(self.missing)} file(s) missing)",
                            fix="download the dataset again")
        if not self.ok:
            raise DataError(self.listing or self.base, "checksum listing holds no files")


def verify_checksums(name: str, data_root: str | Path | None = None, *,
                     files: str = "SHA256SUMS") -> VerifyReport:
    """Check the dataset's files against the listing ``files`` (the dataset folder's own, else the copy in
    the repo's data/<dataset>/). Listings named PIXEL_* hash the decoded RGB pixels instead of the bytes.
    Raises nothing: problems are in the report (see ``raise_if_failed``)."""
    info = dataset_info(name)
    folder = resolve_data_root(data_root) / info.folder
    if not info.checksum_files:
        return VerifyReport(name, None, folder, problem=f"no checksums are published for {name}")
    listing = _find_listing(info.folder, folder, files)
    if listing is None:
        return VerifyReport(name, None, folder, problem=f"no checksum listing {files} in {folder} nor in "
                                                        f"{REPO_ROOT / 'data' / info.folder}")
    if files == MRI_CONTENTS and name == "breast_mri":
        base = _unpacked_mri(folder)
        if base is None:
            return VerifyReport(name, listing, folder, problem=f"{MRI_ARCHIVE} is not unpacked yet "
                                                               f"(oncorepro.data.unpack_mri unpacks it)")
    elif name == "isic_binary":
        base = images_folder(folder)
    else:
        base = folder
    return _verify_listing(name, listing, base, pixels=files.startswith("PIXEL_"))


def dataset_digest(name: str, data_root: str | Path | None = None) -> str:
    """A cheap sha256 fingerprint of a dataset copy: over its checksum listings if its folder has them,
    else over the sorted (relative path, size, content sha256) of all its files (synthetic datasets)."""
    info = dataset_info(name)
    folder = require_folder(resolve_data_root(data_root) / info.folder, info)
    digest = hashlib.sha256()
    listings = [folder / f for f in info.checksum_files if (folder / f).is_file()]
    if listings:
        for path in listings:
            digest.update(f"{path.name}\0".encode() + path.read_bytes() + b"\0")
        return digest.hexdigest()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{path.stat().st_size}\0{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def unpack_mri(data_root: str | Path | None = None) -> Path:
    """The folder holding "Breast Cancer Patients MRI's/" (and "mri's/"): the dataset folder itself if the
    user extracted it there, else the archive unpacked once into the cache and verified against
    CONTENTS.sha256 (a marker file records the success)."""
    info = DATASETS["breast_mri"]
    return mri_root(resolve_data_root(data_root) / info.folder)


def mri_root(folder: Path) -> Path:
    """``unpack_mri`` for the breast_mri dataset folder ``folder``."""
    if (folder / MRI_SPLIT_FOLDER).is_dir():
        return folder
    archive = folder / MRI_ARCHIVE
    if not archive.is_file():
        info = DATASETS["breast_mri"]
        require_folder(folder, info)
        raise DataError(archive, f"archive not found, and no extracted \"{MRI_SPLIT_FOLDER}\" folder beside it",
                        fix=info.obtain)
    target = _mri_cache_target(archive)
    if (target / _VERIFIED_MARKER).is_file():
        return target
    listing = _find_listing("breast_mri", folder, MRI_CONTENTS)
    if listing is None:
        raise DataError(folder / MRI_CONTENTS, "listing needed to verify the unpacked archive is missing")
    if target.exists() and not (target / _VERIFIED_MARKER).is_file():  # not made by this function: stale
        shutil.rmtree(target)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{target.name}.part-"))
    try:
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(scratch, filter="data")  # refuses absolute paths, '..' and links leaving scratch
        report = _verify_listing("breast_mri", listing, scratch, pixels=False)
        if not report.passed:
            bad = report.mismatched + report.missing
            raise DataError(archive, f"unpacked content does not match {listing.name}: "
                                     f"{len(report.mismatched)} mismatched, {len(report.missing)} missing"
                                     + (f" (first: {bad[0]})" if bad else f" ({report.problem})"),
                            fix="download the archive again")
        (scratch / _VERIFIED_MARKER).write_text(f"{archive.name} verified against {listing}\n")
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / _VERIFIED_MARKER).is_file():  # unless a concurrent unpack finished first
                raise
    except (tarfile.TarError, lzma.LZMAError, EOFError) as error:
        raise DataError(archive, f"cannot be unpacked ({error})", fix="download the archive again") from error
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)
    return target


def _unpacked_mri(folder: Path) -> Path | None:
    if (folder / MRI_SPLIT_FOLDER).is_dir():
        return folder
    archive = folder / MRI_ARCHIVE
    if archive.is_file():
        target = _mri_cache_target(archive)
        if (target / _VERIFIED_MARKER).is_file():
            return target
    return None


def _mri_cache_target(archive: Path) -> Path:
    return cache_dir("breast_mri") / sha256_of(archive)[:16]


def _find_listing(dataset_folder: str, folder: Path, files: str) -> Path | None:
    for candidate in (folder / files, REPO_ROOT / "data" / dataset_folder / files):
        if candidate.is_file():
            return candidate
    return None


def _verify_listing(name: str, listing: Path, base: Path, *, pixels: bool) -> VerifyReport:
    report = VerifyReport(name, listing, base)
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            report.problem = f"line {number} is not '<sha256>  <path>'"
            return report
        path = base / match["path"]
        if not path.is_file():
            report.missing.append(match["path"])
            continue
        try:
            actual = _pixel_sha256(path) if pixels else sha256_of(path)
        except DataError as error:  # an undecodable image cannot match its pixel checksum: say why
            report.mismatched.append(match["path"])
            report.reasons[match["path"]] = error.problem
            continue
        (report.ok if actual == match["digest"].lower() else report.mismatched).append(match["path"])
    return report


def _pixel_sha256(path: Path) -> str:
    return hashlib.sha256(read_image(path, "RGB").tobytes()).hexdigest()
