"""Breast ultrasound phantoms: layered tissue under Rayleigh speckle, with lesions drawn from BI-RADS findings.

An image is built in three steps: ``tissue`` (echogenicity of skin, fat, gland and muscle layers),
``place_lesion`` (where a lesion lies and how its outline looks, from its ``Findings``) and ``render``
(lesions painted in with their posterior features, depth gain, multiplicative speckle, log compression).
Each lesion's mask is exactly the region painted as the lesion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter, gaussian_filter1d

from .shapes import Outline, harmonics, smooth_noise

MARGIN_FEATURES = ("spiculated", "angular", "microlobulated", "indistinct")
_LEVELS = {"anechoic": 0.02, "hypoechoic": 0.12, "isoechoic": 0.5, "hyperechoic": 1.1,
           "heterogeneous": 0.2, "complex cystic/solid": 0.05}
_TEXTURE = {"heterogeneous": 0.12, "isoechoic": 0.08, "hyperechoic": 0.12}
_POSTERIOR = {"no": 1.0, "shadowing": 0.25, "enhancement": 2.0}


@dataclass(frozen=True)
class Findings:
    """BI-RADS descriptors of one lesion, in the vocabulary of the BrEaST-Lesions-USG sheet.

    shape: oval | round | irregular; margin: () for circumscribed, else features from MARGIN_FEATURES;
    echogenicity: anechoic | hypoechoic | isoechoic | hyperechoic | heterogeneous | complex cystic/solid;
    posterior: no | shadowing | enhancement | combined; parallel: wider than tall.
    """

    shape: str = "oval"
    margin: tuple[str, ...] = ()
    echogenicity: str = "hypoechoic"
    posterior: str = "no"
    halo: bool = False
    calcifications: bool = False
    parallel: bool = True


@dataclass(frozen=True)
class Lesion:
    """A lesion placed in an image: its outline, its findings and the seed of its internal texture."""

    outline: Outline
    findings: Findings
    texture_seed: int


def tissue(rng: np.random.Generator, height: int, width: int, *, skin_thickening: bool = False) -> np.ndarray:
    """Echogenicity map (about 0-1.1) of skin, subcutaneous fat, fibroglandular layer and pectoral muscle;
    layer boundaries undulate and the gland and muscle are streaked along the probe."""
    depth = (np.arange(height)[:, None] + 0.5) / height

    def boundary(level: float) -> np.ndarray:
        return level + 0.04 * smooth_noise(rng, (1, width), (0, 0.15 * width))

    skin = 0.08 if skin_thickening else 0.035
    fat_end = boundary(rng.uniform(0.15, 0.3))
    gland_end = boundary(rng.uniform(0.68, 0.88))
    streaks = smooth_noise(rng, (height, width), (0.012 * height, 0.1 * width))
    lobules = smooth_noise(rng, (height, width), (0.05 * height, 0.07 * width))
    echo = np.where(depth < fat_end, 0.25 + 0.06 * lobules, 0.55 + 0.2 * streaks)
    echo = np.where(depth < skin, 1.1, echo)
    echo = np.where(depth >= gland_end, 0.35 + 0.12 * np.roll(streaks, height // 3, axis=0), echo)
    return gaussian_filter(np.clip(echo, 0.05, None), 0.6)


def speckle(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Complex Gaussian field whose modulus is Rayleigh distributed; the grain (axial x lateral, 1:2) is
    about 1x2 pixels up to 128 pixels and grows with larger images."""
    real, imag = rng.standard_normal((2, height, width))
    grain = max(1.0, min(height, width) / 128)
    sigma = (0.5 * grain, 1.0 * grain)
    return gaussian_filter(real, sigma) + 1j * gaussian_filter(imag, sigma)


def place_lesion(rng: np.random.Generator, findings: Findings, height: int, width: int, *,
                 radius: tuple[float, float] = (0.12, 0.2), centre: tuple[float, float] | None = None) -> Lesion:
    """A lesion drawn from ``findings``: mean radius a fraction ``radius`` of the shorter image side,
    centre (x, y) given as fractions of the image or drawn near the middle of the gland."""
    r = rng.uniform(*radius) * min(height, width)
    aspect = {"oval": rng.uniform(1.3, 1.8), "round": rng.uniform(1.0, 1.1)}.get(findings.shape,
                                                                              rng.uniform(0.95, 1.35))
    rx, ry = r * np.sqrt(aspect), r / np.sqrt(aspect)
    if not findings.parallel:
        rx, ry = ry, rx
    waves = harmonics(rng, (2,), (0.0, 0.03))
    spikes = []
    if findings.shape == "irregular":
        waves += harmonics(rng, (3, 4, 5), (0.06, 0.14))
    if "microlobulated" in findings.margin:
        waves += harmonics(rng, (int(rng.integers(9, 14)),), (0.05, 0.08))
    if "angular" in findings.margin:
        spikes.append((int(rng.integers(3, 6)), rng.uniform(0.2, 0.3), rng.uniform(0, 2 * np.pi), 3.0))
    if "spiculated" in findings.margin:
        spikes.append((int(rng.integers(9, 15)), rng.uniform(0.35, 0.55), rng.uniform(0, 2 * np.pi), 12.0))
    fx, fy = centre if centre is not None else (rng.uniform(0.35, 0.65), rng.uniform(0.38, 0.58))
    outline = Outline(cx=fx * width, cy=fy * height, rx=rx, ry=ry, tilt=rng.uniform(-0.25, 0.25),
                      harmonics=waves, spikes=tuple(spikes))
    return Lesion(outline, findings, texture_seed=int(rng.integers(2**31)))


def _paint(echo: np.ndarray, lesion: Lesion) -> np.ndarray:
    """Paint ``lesion`` into ``echo`` in place; return its mask."""
    mask = lesion.outline.mask(*echo.shape)
    if not mask.any():
        return mask
    findings, r = lesion.findings, min(lesion.outline.rx, lesion.outline.ry)
    texture_rng = np.random.default_rng(lesion.texture_seed)
    texture = smooth_noise(texture_rng, echo.shape, max(0.7, 0.2 * r))
    level = _LEVELS[findings.echogenicity] + _TEXTURE.get(findings.echogenicity, 0.03) * texture
    if findings.echogenicity == "complex cystic/solid":
        level = np.where(texture > 0.7, 0.7, level)
    edge = gaussian_filter(mask.astype(float), 0.1 * r if "indistinct" in findings.margin else 0.5)
    echo *= 1 - edge
    echo += np.clip(level, 0.02, None) * edge
    if findings.halo:
        ring = binary_dilation(mask, iterations=max(1, round(0.15 * r))) & ~mask
        echo[ring] = np.maximum(echo[ring], 1.1)
    if findings.calcifications:
        ys, xs = np.nonzero(mask)
        picks = texture_rng.choice(len(xs), size=min(len(xs), 5), replace=False)
        echo[ys[picks], xs[picks]] = 2.5
    _posterior(echo, mask, lesion)
    return mask


def _posterior(echo: np.ndarray, mask: np.ndarray, lesion: Lesion) -> None:
    """Darken (shadowing) or brighten (enhancement) the columns below the lesion, in place."""
    kind = lesion.findings.posterior
    if kind == "no":
        return
    height, width = echo.shape
    outline = lesion.outline
    columns = mask.any(axis=0)
    bottom = np.where(columns, height - 1 - np.argmax(mask[::-1], axis=0), outline.cy + outline.ry)
    profile = gaussian_filter1d(columns.astype(float), max(0.5, 0.15 * outline.rx))
    profile /= profile.max()
    factor = np.full(width, _POSTERIOR.get(kind, 1.0))
    if kind == "combined":
        factor = np.where(np.arange(width) < outline.cx, _POSTERIOR["shadowing"], _POSTERIOR["enhancement"])
    depth = np.arange(height)[:, None]
    below = np.clip((depth - gaussian_filter1d(bottom, 1.0)) / (0.08 * height), 0, 1)
    echo *= 1 + (factor - 1) * profile * below


def render(echo: np.ndarray, lesions: list[Lesion], field: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The B-mode image (uint8) of ``echo`` with ``lesions`` painted in order under the speckle ``field``,
    and one boolean mask per lesion."""
    echo = echo.copy()
    masks = [_paint(echo, lesion) for lesion in lesions]
    height = echo.shape[0]
    depth = (np.arange(height)[:, None] + 0.5) / height
    gain = (0.55 + 0.45 * np.sin(np.pi * np.clip(0.15 + depth, 0, 1))) * np.exp(-0.5 * depth)
    amplitude = gaussian_filter(np.abs(field), 0.4)
    signal = echo * gain * amplitude / amplitude.mean()
    pixels = 255 * np.clip(np.log1p(4 * signal) / np.log1p(4 * 2.5), 0, 1)
    return pixels.astype(np.uint8), masks
