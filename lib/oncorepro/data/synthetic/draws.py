"""Seeded random draws: one generator per item, so an item's content does not depend on how many others
are written, and weighted choices from tables."""

from __future__ import annotations

import zlib
from typing import Mapping, TypeVar

import numpy as np

T = TypeVar("T")


def item_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator determined by ``seed`` and ``keys`` (e.g. dataset, class, index), stable across runs."""
    words = [seed] + [key if isinstance(key, int) else zlib.crc32(key.encode()) for key in keys]
    return np.random.default_rng(words)


def choose(rng: np.random.Generator, table: Mapping[T, float]) -> T:
    """One key of ``table`` drawn with probability proportional to its weight."""
    keys = list(table)
    weights = np.array([table[key] for key in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]
