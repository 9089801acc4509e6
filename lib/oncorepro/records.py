"""The record: one image of a dataset, the same shape for every dataset; pixels and masks load lazily."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DataError

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


def read_image(path: Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image file (format sniffed from its bytes, not its name) into a uint8 array of ``mode``."""
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image.convert(mode))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(path, f"cannot be decoded as an image ({error})") from error


def box_of(mask: np.ndarray) -> Box | None:
    """The tight bounding box of a binary mask's foreground, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def header_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image read from its header; DataError if the file is missing or no image."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(path, f"cannot be read as an image ({error})") from error


@dataclass(frozen=True)
class Record:
    """One image: where it is, its class, its lesion masks and the group it must share a split with."""

    dataset: str
    id: str
    path: Path
    label: str
    mask_paths: tuple[Path, ...] = ()
    group: str | None = None
    source_split: str | None = None
    boxes: tuple[Box, ...] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def image(self, mode: str = "RGB") -> np.ndarray:
        """The pixels as uint8 (H, W, 3) for RGB or (H, W) for L; greyscale files are expanded to RGB."""
        return read_image(self.path, mode)

    def image_size(self) -> tuple[int, int]:
        """(width, height) read from the header only."""
        return header_size(self.path)

    def mask(self) -> np.ndarray | None:
        """All lesion masks merged by pixel-wise maximum into one bool (H, W) array; None if there are none."""
        if not self.mask_paths:
            return None
        size = self.image_size()
        merged = None
        for path in self.mask_paths:
            plane = read_image(path, "L")
            if (plane.shape[1], plane.shape[0]) != size:
                raise DataError(path, f"mask is {plane.shape[1]}x{plane.shape[0]} but its image "
                                      f"{self.path.name} is {size[0]}x{size[1]}")
            merged = plane if merged is None else np.maximum(merged, plane)
        return merged > 0

    def lesion_boxes(self) -> tuple[Box, ...]:
        """Annotated boxes if the dataset has them, else one box per non-empty mask file."""
        if self.boxes is not None:
            return self.boxes
        found = []
        for path in self.mask_paths:
            box = box_of(read_image(path, "L") > 0)
            if box is not None:
                found.append(box)
        return tuple(found)
