"""TF.js Layers exports (Teachable Machine): read model.json + weights.bin, map the MobileNetV2 base into timm.

Format: model.json's ``weightsManifest`` is a list of groups, each with ``paths`` (weight files, concatenated in
order) and ``weights`` (``{name, shape, dtype}``, stored back to back in that order, little-endian). Only float32
is supported (no quantised exports).

A Teachable Machine image model is Keras MobileNetV2(alpha=0.35) truncated at ``out_relu`` (260 tensors: the
trainable ones first, the BatchNorm moving statistics last) plus a head trained on someone else's classes
(``dense_Dense3/kernel``, ``dense_Dense3/bias``, ``dense_Dense4/kernel``, stored after the trainable base tensors);
the head is ignored by name, anything else that is not part of the base is an error.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from oncorepro.errors import DataError
from oncorepro.weights import resolve_weights_root
from oncorepro.weights.keras_port import load_keras_mobilenetv2

TEACHABLE_MACHINE_FOLDER = "mobilenetv2_035_teachable_machine"
HEAD_TENSORS = ("dense_Dense3/kernel", "dense_Dense3/bias", "dense_Dense4/kernel")
BASE_TENSOR_COUNT = 260
_DTYPES = {"float32": np.dtype("<f4")}


@dataclass(frozen=True)
class TfjsWeights:
    """Tensors of a TF.js export in manifest order."""

    folder: Path
    tensors: dict[str, np.ndarray]
    weights_sha256: str  # SHA-256 of the weight files' bytes, concatenated in manifest order (= weights.bin's)
    ignored: tuple[str, ...] = ()  # tensors dropped on purpose, by name


def _read_manifest(model_json: Path) -> list[dict]:
    """The validated ``weightsManifest`` of a model.json."""
    if not model_json.is_file():
        raise DataError(model_json, "file not found", "expected a TF.js export folder with model.json and weights")
    try:
        manifest = json.loads(model_json.read_text(encoding="utf-8"))["weightsManifest"]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(model_json, f"not valid JSON ({exc})") from exc
    except (KeyError, TypeError) as exc:
        raise DataError(model_json, "no 'weightsManifest' entry") from exc
    if not isinstance(manifest, list) or not manifest:
        raise DataError(model_json, "'weightsManifest' must be a non-empty list of weight groups")
    seen: set[str] = set()
    for number, group in enumerate(manifest):
        paths, entries = (group.get("paths"), group.get("weights")) if isinstance(group, dict) else (None, None)
        if not paths or not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise DataError(model_json, f"weight group {number} has no valid 'paths' list")
        if not isinstance(entries, list):
            raise DataError(model_json, f"weight group {number} has no 'weights' list")
        for entry in entries:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name:
                raise DataError(model_json, f"weight group {number} has an entry without a name: {entry!r}")
            shape = entry.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise DataError(model_json, f"tensor {name!r} has an invalid shape {shape!r}")
            if entry.get("dtype") not in _DTYPES or "quantization" in entry:
                raise DataError(model_json, f"tensor {name!r}: only unquantised float32 is supported, "
                                            f"got dtype {entry.get('dtype')!r}")
            if name in seen:
                raise DataError(model_json, f"tensor {name!r} is listed twice")
            seen.add(name)
    return manifest


def read_tfjs_weights(folder: str | Path) -> TfjsWeights:
    """All tensors of a TF.js export folder, checked against the manifest byte for byte.

    Raises DataError naming model.json for a malformed manifest, and naming the weight file when its size does
    not match the manifest (truncated file, or shapes that do not add up) or a tensor holds non-finite values.
    """
    folder = Path(folder)
    model_json = folder / "model.json"
    manifest = _read_manifest(model_json)
    tensors: dict[str, np.ndarray] = {}
    digest = hashlib.sha256()
    for group in manifest:
        files = [folder / p for p in group["paths"]]
        for file in files:
            if not file.is_file():
                raise DataError(file, f"weight file listed in {model_json.name} not found")
        buffer = b"".join(file.read_bytes() for file in files)
        digest.update(buffer)
        where = files[0] if len(files) == 1 else folder
        sizes = [math.prod(e["shape"]) * _DTYPES[e["dtype"]].itemsize for e in group["weights"]]
        if sum(sizes) != len(buffer):
            offsets = np.cumsum([0, *sizes])
            if len(buffer) < sum(sizes):
                cut = next(i for i, end in enumerate(offsets[1:]) if end > len(buffer))
                problem = (f"truncated: {len(buffer)} bytes but {model_json.name} needs {sum(sizes)}; tensor "
                           f"{group['weights'][cut]['name']!r} (bytes {offsets[cut]}..{offsets[cut + 1]}) "
                           "runs past the end")
            else:
                problem = (f"{len(buffer) - sum(sizes)} bytes left after the last tensor "
                           f"{group['weights'][-1]['name']!r}: the shapes in {model_json.name} do not add up "
                           "to the file size")
            raise DataError(where, problem, "re-copy the export; model.json and the weight file must match")
        offset = 0
        for entry, size in zip(group["weights"], sizes):
            count = math.prod(entry["shape"])
            array = np.frombuffer(buffer, _DTYPES[entry["dtype"]], count, offset).reshape(entry["shape"])
            if not np.isfinite(array).all():
                raise DataError(where, f"tensor {entry['name']!r} holds non-finite values")
            tensors[entry["name"]] = array.astype(np.float32)  # native-endian, writable copy
            offset += size
    return TfjsWeights(folder=folder, tensors=tensors, weights_sha256=digest.hexdigest())


def read_teachable_machine_base(weights_root: str | Path | None = None) -> TfjsWeights:
    """The 260 MobileNetV2-0.35 base tensors of the Teachable Machine export, head tensors dropped by name.

    The folder is ``<weights root>/mobilenetv2_035_teachable_machine`` (see :func:`resolve_weights_root`).
    """
    folder = resolve_weights_root(weights_root) / TEACHABLE_MACHINE_FOLDER
    if not folder.is_dir():
        raise DataError(folder, "Teachable Machine weights folder not found",
                        "pass weights_root or set $ONCOREPRO_WEIGHTS to the folder holding it")
    weights = read_tfjs_weights(folder)
    base = {name: array for name, array in weights.tensors.items() if name not in HEAD_TENSORS}
    if len(base) != BASE_TENSOR_COUNT:
        raise DataError(folder / "model.json", f"expected {BASE_TENSOR_COUNT} MobileNetV2 base tensors besides the "
                                               f"head tensors {HEAD_TENSORS}, found {len(base)}")
    return replace(weights, tensors=base, ignored=tuple(n for n in HEAD_TENSORS if n in weights.tensors))


def load_teachable_machine_base(model: nn.Module, weights_root: str | Path | None = None) -> TfjsWeights:
    """Fill a timm ``mobilenetv2_035`` (pad_type='same', bn_eps=1e-3, num_classes=0) with the Teachable Machine
    base, strictly: every base tensor used once, every timm tensor filled once, shapes equal."""
    base = read_teachable_machine_base(weights_root)
    load_keras_mobilenetv2(model, base.tensors, base.folder / "model.json")
    return base
