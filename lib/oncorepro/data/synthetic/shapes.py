"""Geometry shared by the phantoms: lesion outlines (ellipses with boundary harmonics and spikes) and
smoothed noise fields."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class Outline:
    """A closed outline in pixel coordinates: an ellipse (centre, semi-axes, tilt in radians) whose radius at
    polar angle t is multiplied by 1 + sum a cos(k t + p) over ``harmonics`` (k, a, p) + sum
    a max(0, cos(k t + p))**s over ``spikes`` (k, a, p, s)."""

    cx: float
    cy: float
    rx: float
    ry: float
    tilt: float = 0.0
    harmonics: tuple[tuple[int, float, float], ...] = ()
    spikes: tuple[tuple[int, float, float, float], ...] = ()

    def mask(self, height: int, width: int) -> np.ndarray:
        """Boolean (height, width) array of the pixels whose centres lie inside the outline."""
        yy, xx = np.mgrid[0:height, 0:width] + 0.5
        dx, dy = xx - self.cx, yy - self.cy
        cos, sin = np.cos(self.tilt), np.sin(self.tilt)
        u, v = (dx * cos + dy * sin) / self.rx, (-dx * sin + dy * cos) / self.ry
        angle = np.arctan2(v, u)
        bound = np.ones_like(angle)
        for k, amplitude, phase in self.harmonics:
            bound += amplitude * np.cos(k * angle + phase)
        for k, amplitude, phase, sharpness in self.spikes:
            bound += amplitude * np.maximum(0.0, np.cos(k * angle + phase)) ** sharpness
        return np.hypot(u, v) < bound

    def moved(self, dx: float, dy: float, scale: float = 1.0, turn: float = 0.0) -> Outline:
        """The outline shifted by (dx, dy) pixels, scaled about its centre and its harmonics rotated by
        ``turn`` radians (a slight deformation)."""
        return replace(self, cx=self.cx + dx, cy=self.cy + dy, rx=self.rx * scale, ry=self.ry * scale,
                       harmonics=tuple((k, a, p + turn) for k, a, p in self.harmonics))


def harmonics(rng: np.random.Generator, orders: tuple[int, ...], amplitude: tuple[float, float]
              ) -> tuple[tuple[int, float, float], ...]:
    """Boundary harmonics of the given orders with amplitudes drawn from ``amplitude`` and random phases."""
    return tuple((k, float(rng.uniform(*amplitude)), float(rng.uniform(0, 2 * np.pi))) for k in orders)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to zero mean and unit standard deviation."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)
