"""A chapter's session: its parameters, and every run it asked for, repeated over its seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from .profiles import Profile, get_profile
from .runner import RunOutcome, run_all
from .spec import RunSpec


@dataclass
class Study:
    """Runs specs over the chapter's seeds under one profile and remembers them for the provenance table."""

    profile: str | Profile = "smoke"
    data_root: str | Path | None = None
    seeds: Sequence[int] | None = None
    device: str = "auto"
    run_missing: bool = True
    progress: bool = False
    runs: list[RunOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.profile = get_profile(self.profile) if isinstance(self.profile, str) else self.profile
        self.seeds = tuple(self.seeds) if self.seeds is not None else self.profile.seeds

    def root(self, *datasets: str) -> Path:
        """Where this study reads ``datasets`` from (real data root, or the profile's synthetic stand-ins)."""
        return self.profile.data_root(datasets, self.data_root)

    def run(self, *specs: RunSpec, seeds: Sequence[int] | None = None) -> list[RunOutcome]:
        """Every spec once per seed (the study's, or ``seeds``); finished runs come from the store, missing ones
        run if ``run_missing``."""
        seeds = self.seeds if seeds is None else tuple(seeds)
        if not seeds:
            raise ValueError("no seeds to run: give at least one")
        expanded = [spec.but(seed=seed) for spec in specs for seed in seeds]
        outcomes = run_all(expanded, profile=self.profile, data_root=self.data_root, execute=self.run_missing,
                           device=self.device, progress=self.progress)
        for outcome in outcomes:  # one row per (run, setting label); a finished run replaces its pending row
            self.runs = [r for r in self.runs if (r.key, r.spec.label) != (outcome.key, outcome.spec.label)]
            self.runs.append(outcome)
        return outcomes

    def provenance(self) -> pd.DataFrame:
        """One row per run: what it ran on and from, and how long it took."""
        rows = []
        for outcome in self.runs:
            result = outcome.result
            row = {"setting": outcome.spec.label, "seed": outcome.spec.seed, "key": outcome.key,
                   "status": "done" if result else "pending"}
            if result:
                p = result.provenance
                row.update({"data": outcome.spec.data, "image size": outcome.spec.image_size,
                            "epochs": result.timings.get("epochs_run"),
                            "train images": result.timings.get("train_images"), "weights": p.get("weights_origin"),
                            "device": p.get("device"), "precision": run_precision(p), "code": p.get("code"),
                            "torch": p.get("versions", {}).get("torch"),
                            "train s": round(result.timings.get("train_seconds", float("nan")), 1),
                            "wall s": round(result.timings.get("wall_seconds", float("nan")), 1),
                            "resumed": _resumed(result.timings),
                            "data sha256": ", ".join(f"{k}:{v[:12]}" for k, v in p.get("data_digest", {}).items())})
            rows.append(row)
        return pd.DataFrame(rows)


def _resumed(timings: dict) -> str:
    """After which epoch a run was taken over from its checkpoint ("wall s" is then the last process's share
    only); runs stored before this was recorded show it by a wall time below their summed epoch times."""
    if "resumed_after_epoch" in timings:
        return f"after epoch {timings['resumed_after_epoch']}" if timings["resumed_after_epoch"] else ""
    if timings.get("wall_seconds", 0) < timings.get("train_seconds", 0):
        return "yes (epoch not recorded)"
    return ""


def run_precision(provenance: dict) -> str:
    """The run's arithmetic; runs stored before it was recorded used bf16 on a GPU and float32 on a CPU."""
    return provenance.get("precision") or ("bf16" if "cuda" in str(provenance.get("device", "")).lower() else "fp32")
