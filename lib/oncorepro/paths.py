"""Where data, caches and committed results live."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_ENV = "ONCOREPRO_DATA"
CACHE_ENV = "ONCOREPRO_CACHE"


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The folder holding one sub-folder per dataset.

    Order: the explicit argument, then $ONCOREPRO_DATA, then ../shared/data beside the repo if it exists,
    then the repo's own ``data/`` folder (which documents how to obtain each dataset).
    """
    if data_root:
        return Path(data_root).expanduser().resolve()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser().resolve()
    shared = REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return REPO_ROOT / "data"


def cache_dir(*parts: str) -> Path:
    """A folder outside the repo for derived data ($ONCOREPRO_CACHE, default ~/.cache/oncorepro)."""
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "oncorepro").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
