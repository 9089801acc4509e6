"""What produced a result: versions, device, code revision, threads, time."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from importlib import metadata

import torch

from . import __version__
from .paths import REPO_ROOT

PACKAGES = ("torch", "torchvision", "timm", "numpy", "scikit-learn", "imbalanced-learn", "grad-cam", "captum",
            "pandas", "pillow")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "oncorepro": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_revision() -> str:
    """The git commit of the repo, with '+dirty' when tracked files differ from it; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "lib"],
                               cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_description(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


LOADED_REVISION = code_revision()  # the code this process runs: the tree may change while a long queue trains


def provenance(device: str) -> dict[str, object]:
    return {"versions": package_versions(), "code": LOADED_REVISION, "device": device_description(device),
            "finished": now_utc()}
