"""Synthetic MIBUS: rawframes/{benign,malignant}/<video>/<frame:06d>.png and COCO-style
annotations/{train,test}.json with one lesion box per frame; whole videos go to train or test.

Each video is one ultrasound phantom (lesions as in the synthetic BUSI) seen through a probe that slides
slowly: the tissue shifts, the lesion moves and deforms slightly and the speckle decorrelates between frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...records import box_of
from .busi import sample_findings
from .draws import item_rng
from .files import save_image
from .ultrasound import Lesion, place_lesion, render, speckle, tissue

CLASSES = ("benign", "malignant")
MIN_PER_CLASS = 2
FRAMES_PER_VIDEO = 4
CATEGORIES = [{"id": 1, "name": "benign"}, {"id": 2, "name": "malignant"}]
_SPECKLE_MEMORY = 0.8


def held_out_videos(n: int) -> int:
    """Videos of a class that go to the test split: about a quarter, at least one."""
    return max(1, round(0.25 * n))


def write_video(folder: Path, label: str, index: int, size: int, seed: int) -> list[tuple[str, int, int, list[int]]]:
    """Write the frames of one video into ``folder``; return (file name relative to rawframes, width, height,
    box [x, y, w, h]) per frame."""
    rng = item_rng(seed, "mibus", label, index)
    height, width = size, round(size * rng.uniform(1.1, 1.4))
    drift = rng.uniform(0.005, 0.02) * width
    canvas = tissue(rng, height, width + int(np.ceil(drift * FRAMES_PER_VIDEO)) + 1)
    lesion = place_lesion(rng, sample_findings(rng, label), height, width, radius=(0.12, 0.2))
    field = speckle(rng, height, width)
    frames = []
    for frame in range(FRAMES_PER_VIDEO):
        offset = round(frame * drift)
        outline = lesion.outline.moved(-offset + rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5),
                                       scale=1 + 0.03 * np.sin(frame), turn=0.08 * frame)
        field = _SPECKLE_MEMORY * field + np.sqrt(1 - _SPECKLE_MEMORY**2) * speckle(rng, height, width)
        pixels, (mask,) = render(canvas[:, offset:offset + width], [Lesion(outline, lesion.findings,
                                                                             lesion.texture_seed)], field)
        path = save_image(pixels, folder / f"{frame:06d}.png", "RGB")
        x0, y0, x1, y1 = box_of(mask)
        frames.append((f"{label}/{folder.name}/{path.name}", width, height, [x0, y0, x1 - x0, y1 - y0]))
    return frames


def write(folder: Path, counts: dict[str, int], size: int, seed: int) -> None:
    """All videos (named v001, v002, ... across classes) and the two COCO files."""
    order = [(label, k) for label in CLASSES for k in range(counts[label])]
    permutation = item_rng(seed, "mibus", "order").permutation(len(order))
    names = {order[i]: f"v{rank + 1:03d}" for rank, i in enumerate(permutation)}
    splits: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    for label in CLASSES:
        videos = sorted(names[(label, k)] for k in range(counts[label]))
        test = set(item_rng(seed, "mibus", "split", label).permutation(videos)[:held_out_videos(len(videos))])
        for k in range(counts[label]):
            splits["test" if names[(label, k)] in test else "train"].append((names[(label, k)], label, k))
    category = {entry["name"]: entry["id"] for entry in CATEGORIES}
    image_id = annotation_id = video_id = 1
    (folder / "annotations").mkdir(parents=True)
    for split, videos in splits.items():
        coco = {"images": [], "annotations": [], "categories": CATEGORIES, "videos": []}
        for name, label, k in sorted(videos):
            coco["videos"].append({"id": video_id, "name": f"{label}/{name}"})
            for frame, (file_name, width, height, bbox) in enumerate(
                    write_video(folder / "rawframes" / label / name, label, k, size, seed)):
                coco["images"].append({"id": image_id, "file_name": file_name, "width": width, "height": height,
                                       "video_id": video_id, "frame_id": frame})
                coco["annotations"].append({"id": annotation_id, "image_id": image_id, "bbox": bbox,
                                            "area": bbox[2] * bbox[3], "category_id": category[label],
                                            "iscrowd": 0})
                image_id, annotation_id = image_id + 1, annotation_id + 1
            video_id += 1
        (folder / "annotations" / f"{split}.json").write_text(json.dumps(coco), encoding="utf-8")
