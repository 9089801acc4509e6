"""MIBUS loader (assumed layout, see the registry): rawframes/{benign,malignant}/<video>/<frame>.png with
COCO box annotations in annotations/{train,test}.json; one record per annotated frame, grouped by video."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..records import Box, Record, header_size
from .registry import DATASETS, Exclusion, LoadedDataset, image_files, require_folder

INFO = DATASETS["mibus"]
SPLITS = ("train", "test")


def load_mibus(folder: Path) -> LoadedDataset:
    """Records: label = class folder, group = '<class>/<video>', source_split = the JSON file listing the
    frame, boxes = its COCO boxes as (x0, y0, x1, y1) (floor/ceil to whole pixels). Frames on disk that
    no JSON lists, or listed without any box, are excluded with their reason."""
    frames_root = require_folder(folder / "rawframes", INFO)
    exclusions: list[Exclusion] = []
    frames = _frames_on_disk(frames_root, exclusions)
    listed: dict[str, tuple[str, dict[str, Any], list[Box]]] = {}
    video_split: dict[str, str] = {}
    for split in SPLITS:
        annotation_file = folder / "annotations" / f"{split}.json"
        for file_name, (image, boxes) in _read_coco(annotation_file).items():
            if file_name in listed:
                raise DataError(annotation_file, f"frame {file_name} is also listed in {listed[file_name][0]}.json")
            if file_name not in frames:
                raise DataError(frames_root / file_name, f"frame listed in {annotation_file.name} is missing")
            video = str(Path(file_name).parent.as_posix())
            if video_split.setdefault(video, split) != split:
                raise DataError(annotation_file, f"video {video} has frames in both {video_split[video]}.json and "
                                                 f"{split}.json (frames of one video must share a split)")
            size = header_size(frames[file_name])
            if size != (image.get("width", size[0]), image.get("height", size[1])):
                raise DataError(frames[file_name], f"frame is {size[0]}x{size[1]} but {annotation_file.name} says "
                                                   f"{image.get('width')}x{image.get('height')}")
            outside = [box for box in boxes if box[2] > size[0] or box[3] > size[1]]
            if outside:
                raise DataError(annotation_file, f"box {outside[0]} of frame {file_name} lies outside its "
                                                 f"{size[0]}x{size[1]} pixels")
            listed[file_name] = (split, image, boxes)
    records = []
    for file_name, path in sorted(frames.items()):
        if file_name not in listed:
            exclusions.append(Exclusion(path, "frame has no entry in annotations/train.json or test.json"))
            continue
        split, image, boxes = listed[file_name]
        if not boxes:
            exclusions.append(Exclusion(path, f"frame has no box in annotations/{split}.json"))
            continue
        class_name, video = Path(file_name).parts[:2]
        records.append(Record(dataset=INFO.name, id=str(Path(file_name).with_suffix("").as_posix()), path=path,
                              label=INFO.classes[class_name], group=f"{class_name}/{video}", source_split=split,
                              boxes=tuple(boxes), meta={"video": video, "frame": path.stem,
                                                        "coco_image_id": image["id"]}))
    return LoadedDataset(INFO.name, folder, records, exclusions)


def _frames_on_disk(frames_root: Path, exclusions: list[Exclusion]) -> dict[str, Path]:
    """'<class>/<video>/<frame>.png' -> path for every frame under rawframes/."""
    frames: dict[str, Path] = {}
    for class_name in INFO.classes:
        class_folder = require_folder(frames_root / class_name, INFO)
        videos = sorted(p for p in class_folder.iterdir() if p.is_dir())
        exclusions += [Exclusion(p, "not a video folder") for p in sorted(class_folder.iterdir()) if not p.is_dir()]
        if not videos:
            raise DataError(class_folder, "class folder holds no video folders", fix=INFO.obtain)
        for video in videos:
            for path in image_files(video, exclusions):
                frames[f"{class_name}/{video.name}/{path.name}"] = path
    return frames


def _read_coco(path: Path) -> dict[str, tuple[dict[str, Any], list[Box]]]:
    """file_name -> (COCO image entry, its boxes as (x0, y0, x1, y1))."""
    if not path.is_file():
        raise DataError(path, "annotation file not found", fix=INFO.obtain)
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
        images = {image["id"]: image for image in coco["images"]}
        by_name = {image["file_name"]: (image, []) for image in images.values()}
        if not len(coco["images"]) == len(images) == len(by_name):
            raise DataError(path, "two entries of images[] share an id or a file_name")
        for annotation in coco["annotations"]:
            if annotation["image_id"] not in images:
                raise DataError(path, f"annotation {annotation.get('id')} refers to unknown image_id "
                                      f"{annotation['image_id']}")
            by_name[images[annotation["image_id"]]["file_name"]][1].append(_box(path, annotation))
    except DataError:
        raise
    except json.JSONDecodeError as error:
        raise DataError(path, f"is not valid JSON ({error})") from error
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(path, f"is not COCO-style: missing or malformed field {error}") from error
    return by_name


def _box(path: Path, annotation: dict[str, Any]) -> Box:
    x, y, width, height = (float(value) for value in annotation["bbox"])
    if width <= 0 or height <= 0 or x < 0 or y < 0:
        raise DataError(path, f"annotation {annotation.get('id')} has an invalid bbox {annotation['bbox']}")
    return math.floor(x), math.floor(y), math.ceil(x + width), math.ceil(y + height)
