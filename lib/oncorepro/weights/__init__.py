"""Offline pretrained weights: where they live and how they are identified."""

from __future__ import annotations

import os
from pathlib import Path

from oncorepro.paths import REPO_ROOT

WEIGHTS_ENV = "ONCOREPRO_WEIGHTS"


def resolve_weights_root(weights_root: str | Path | None = None) -> Path:
    """The folder holding offline weights (one sub-folder per weight set).

    Order: the explicit argument, then $ONCOREPRO_WEIGHTS, then ../shared/weights beside the repo.
    """
    if weights_root:
        return Path(weights_root).expanduser().resolve()
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV]).expanduser().resolve()
    return REPO_ROOT.parent / "shared" / "weights"
