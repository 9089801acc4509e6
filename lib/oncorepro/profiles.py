"""Profiles are data: a small table of overrides applied to every run spec of a chapter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .data.synthetic import synthetic_data_root
from .paths import REPO_ROOT, cache_dir, resolve_data_root
from .spec import RunSpec
from .train import PRECISIONS

GRIDS = ("small", "paper")


@dataclass(frozen=True)
class Profile:
    """How a chapter runs: which data, at what scale, and where its results are kept.

    A run's key holds the profile's name and its spec overrides, not ``explain_samples`` or ``bootstrap``: a
    profile that should evaluate finished runs differently needs a new name, or its stored runs are reused as they are.
    """

    name: str
    description: str
    spec_overrides: dict[str, Any]
    seeds: tuple[int, ...] = (0, 1, 2)
    synthetic_per_class: int | None = None  # synthetic images per class; None = real data
    synthetic_size: int = 64
    explain_samples: int = 8  # images per run whose heatmaps are stored
    bootstrap: int = 1000
    grid: str = "small"  # hyperparameter and model grids: "small" (one candidate each) or "paper" (as published)
    precision: str = "auto"  # training/inference arithmetic (oncorepro.train.pick_precision); not in the run key
    committed: bool = False  # results are committed with the book (else kept in the cache)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"profile {self.name!r}: unknown precision {self.precision!r}; known: {', '.join(PRECISIONS)}")
        if self.grid not in GRIDS:
            raise ValueError(f"profile {self.name!r}: unknown grid {self.grid!r}; known: {', '.join(GRIDS)}")
        data = "real" if self.synthetic_per_class is None else "synthetic"
        if self.spec_overrides.get("data") != data:
            raise ValueError(f"profile {self.name!r}: spec override data={self.spec_overrides.get('data')!r} but "
                             f"synthetic_per_class={self.synthetic_per_class!r} means {data!r} data")

    def apply(self, spec: RunSpec) -> RunSpec:
        """The spec with this profile's overrides; an image size override never enlarges a spec."""
        overrides = dict(self.spec_overrides)
        if "image_size" in overrides:
            overrides["image_size"] = min(overrides["image_size"], spec.image_size)
        return spec.but(profile=self.name, **overrides)

    def data_root(self, datasets: Iterable[str], data_root: str | Path | None = None) -> Path:
        """The resolved real data root, or this profile's synthetic stand-ins of ``datasets`` (cached)."""
        if self.synthetic_per_class is None:
            return resolve_data_root(data_root)
        return synthetic_data_root(datasets, n_per_class=self.synthetic_per_class, size=self.synthetic_size, seed=0)

    def store_dir(self) -> Path:
        return REPO_ROOT / "book" / "results" if self.committed else cache_dir("results", self.name)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="synthetic data in each dataset's real layout, 48 px images, 2 epochs, CPU, seconds",
        spec_overrides={"data": "synthetic", "image_size": 48, "epochs": 2, "batch_size": 16},
        seeds=(0, 1),
        synthetic_per_class=14,
        synthetic_size=64,
        explain_samples=4,
        bootstrap=200,
    ),
    "full": Profile(
        name="full",
        description=("real data at the paper's resolution, epochs and batch size, repeated seeds, bf16 mixed "
                     "precision (the provenance table gives each run's device and arithmetic: the first runs on "
                     "a CPU used float32)"),
        spec_overrides={"data": "real"},
        seeds=(0, 1, 2),
        grid="paper",
        precision="bf16",
        committed=True,
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
