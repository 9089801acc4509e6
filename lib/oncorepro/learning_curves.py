"""Readings of per-epoch learning curves: the numbers behind what papers say of a curve in words.

Papers describe curves in words ("test loss below 0.6 after 10 epochs", "accuracy ~0.80, stable", "a minimum of
0.45 early on"). :func:`curve_readings` turns a run's history into those numbers, named as the paper-values files
name them, ``<part>_<quantity>_<reading>`` (part ``test``, ``val`` or ``train``; quantity ``loss`` or
``accuracy``):

- ``early``: mean of the first ``EARLY_EPOCHS`` epochs;
- ``min`` / ``max``: the extreme over all epochs; ``min_epoch`` / ``max_epoch``: the first epoch reaching it;
- ``plateau``: the level the curve settles at, the median of the second half of the epochs; ``plateau_epoch``:
  the first epoch from which the rolling mean over ``SMOOTHING`` epochs stays within ``PLATEAU_BAND`` of it;
- ``final``: the last epoch's value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EARLY_EPOCHS = 3
SMOOTHING = 3
PLATEAU_BAND = {"loss": 0.05, "accuracy": 0.03}  # accuracy: about 4 images of a 117-image test set


def _readings(values: np.ndarray, epochs: np.ndarray, band: float) -> dict[str, float]:
    plateau = float(np.median(values[len(values) // 2:]))
    smooth = pd.Series(values).rolling(SMOOTHING, min_periods=1).mean().to_numpy()
    outside = np.flatnonzero(np.abs(smooth - plateau) > band)
    settled = 0 if outside.size == 0 else outside[-1] + 1
    return {"early": float(values[:EARLY_EPOCHS].mean()),
            "min": float(values.min()), "min_epoch": float(epochs[values.argmin()]),
            "max": float(values.max()), "max_epoch": float(epochs[values.argmax()]),
            "plateau": plateau,
            "plateau_epoch": float(epochs[settled]) if settled < len(values) else float(epochs[-1]),
            "final": float(values[-1])}


def curve_readings(history: pd.DataFrame) -> dict[str, float]:
    """Readings of every ``<part>_loss`` / ``<part>_accuracy`` column of a history (see the module docstring)."""
    if "epoch" not in history.columns:
        raise ValueError(f"history needs an 'epoch' column; it has {list(history.columns)}")
    ordered = history.sort_values("epoch")
    epochs = ordered["epoch"].to_numpy()
    out: dict[str, float] = {}
    for column in ordered.columns:
        part, _, quantity = column.rpartition("_")
        if not part or quantity not in PLATEAU_BAND:
            continue
        values = ordered[column].to_numpy(dtype=float)
        if len(values) == 0 or not np.isfinite(values).all():
            raise ValueError(f"history column {column!r} is empty or holds missing values")
        for reading, value in _readings(values, epochs, PLATEAU_BAND[quantity]).items():
            out[f"{column}_{reading}"] = value
    return out
