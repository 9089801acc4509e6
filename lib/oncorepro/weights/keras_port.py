"""Keras -> timm weight mapping, strict both ways, and the Keras parity checks built on it.

Keras variables are named ``<layer>/<variable>`` (``block2a_expand_conv/kernel``, ``bn_Conv1/moving_mean``).
Each Keras layer maps to one timm module; every Keras variable must fill exactly one timm tensor and every timm
tensor (BatchNorm's ``num_batches_tracked`` counters aside) must be filled. Layouts: conv kernels HWIO -> OIHW,
depthwise kernels HWC1 -> C1HW, BatchNorm gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/
running_var.

The parity checks run :mod:`oncorepro.keras_reference` in a TensorFlow subprocess (TensorFlow must not share a
process with torch) and compare its outputs with ours.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from oncorepro.errors import DataError
from oncorepro.paths import REPO_ROOT

KERAS_VARIABLES = {
    "kernel": "weight",
    "depthwise_kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}

# Keras EfficientNetV2 layer-name suffix -> timm sub-module, per timm block class.
_EFFICIENTNETV2_BLOCK_PARTS = {
    "ConvBnAct": {"project_conv": "conv", "project_bn": "bn1"},
    "EdgeResidual": {"expand_conv": "conv_exp", "expand_bn": "bn1", "project_conv": "conv_pwl", "project_bn": "bn2"},
    "InvertedResidual": {
        "expand_conv": "conv_pw", "expand_bn": "bn1", "dwconv2": "conv_dw", "bn": "bn2",
        "se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand", "project_conv": "conv_pwl", "project_bn": "bn3",
    },
}
_EFFICIENTNETV2_TOP = {"stem_conv": "conv_stem", "stem_bn": "bn1", "top_conv": "conv_head", "top_bn": "bn2"}

_MOBILENETV2_TOP = {
    "Conv1": "conv_stem", "bn_Conv1": "bn1",
    "expanded_conv_depthwise": "blocks.0.0.conv_dw", "expanded_conv_depthwise_BN": "blocks.0.0.bn1",
    "expanded_conv_project": "blocks.0.0.conv_pw", "expanded_conv_project_BN": "blocks.0.0.bn2",
    "Conv_1": "conv_head", "Conv_1_bn": "bn2",
}
_MOBILENETV2_BLOCK_PARTS = {
    "expand": "conv_pw", "expand_BN": "bn1", "depthwise": "conv_dw", "depthwise_BN": "bn2",
    "project": "conv_pwl", "project_BN": "bn3",
}


def to_torch_layout(array: np.ndarray, *, depthwise: bool) -> np.ndarray:
    """A Keras array in PyTorch layout: conv HWIO -> OIHW, depthwise HWC1 -> C1HW, Dense (in, out) -> (out, in)."""
    if array.ndim == 4:
        return array.transpose(2, 3, 0, 1) if depthwise else array.transpose(3, 2, 0, 1)
    if array.ndim == 2:
        return array.T
    return array


def load_keras_weights(
    model: nn.Module,
    weights: Mapping[str, np.ndarray],
    module_of_layer: Callable[[str], str | None],
    source: str | Path,
) -> None:
    """Copy Keras variables into ``model`` strictly; ``module_of_layer`` names the timm module of a Keras layer.

    Raises DataError (naming ``source``) for an unknown layer or variable, a timm tensor filled twice or never,
    or a shape mismatch; the model is left untouched in that case.
    """
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unexpected: list[str] = []
    for name, array in weights.items():
        layer, _, variable = name.rpartition("/")
        module = module_of_layer(layer)
        key = f"{module}.{KERAS_VARIABLES[variable]}" if module and variable in KERAS_VARIABLES else None
        if key not in expected:
            unexpected.append(name)
            continue
        if key in state:
            raise DataError(source, f"Keras variables {origin[key]!r} and {name!r} both map to timm tensor {key!r}")
        tensor = torch.from_numpy(np.ascontiguousarray(to_torch_layout(np.asarray(array), depthwise="conv_dw" in key)))
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise DataError(
                source,
                f"Keras variable {name!r} {tuple(np.shape(array))} does not fit timm tensor {key!r} "
                f"{tuple(expected[key].shape)}",
            )
        state[key], origin[key] = tensor.to(expected[key].dtype), name
    missing = sorted(set(expected) - set(state))
    if unexpected or missing:
        raise DataError(
            source,
            f"Keras -> timm mapping is not one-to-one: {len(missing)} timm tensors unfilled {missing[:5]}, "
            f"{len(unexpected)} Keras variables without a timm tensor {unexpected[:5]}",
        )
    counters = {k: v for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")}
    model.load_state_dict({**state, **counters}, strict=True)


def load_keras_efficientnetv2(model: nn.Module, weights: Mapping[str, np.ndarray], source: str | Path) -> None:
    """Fill a timm ``tf_efficientnetv2_*`` backbone from keras.applications EfficientNetV2 variables."""

    def module_of_layer(layer: str) -> str | None:
        if layer in _EFFICIENTNETV2_TOP:
            return _EFFICIENTNETV2_TOP[layer]
        match = re.fullmatch(r"block(\d+)([a-z])_(\w+)", layer)
        if not match:
            return None
        stage, index, part = int(match[1]) - 1, ord(match[2]) - ord("a"), match[3]
        if stage >= len(model.blocks) or index >= len(model.blocks[stage]):
            return None
        parts = _EFFICIENTNETV2_BLOCK_PARTS.get(type(model.blocks[stage][index]).__name__, {})
        return f"blocks.{stage}.{index}.{parts[part]}" if part in parts else None

    load_keras_weights(model, weights, module_of_layer, source)


def load_keras_mobilenetv2(model: nn.Module, weights: Mapping[str, np.ndarray], source: str | Path) -> None:
    """Fill a timm ``mobilenetv2_*`` backbone from keras.applications MobileNetV2 variables.

    Keras ``block_1`` .. ``block_16`` fill timm's stages 1.. in order (2, 3, 4, 3, 3, 1 blocks for MobileNetV2).
    """
    flat_blocks = [f"blocks.{s}.{i}" for s in range(1, len(model.blocks)) for i in range(len(model.blocks[s]))]

    def module_of_layer(layer: str) -> str | None:
        if layer in _MOBILENETV2_TOP:
            return _MOBILENETV2_TOP[layer]
        match = re.fullmatch(r"block_(\d+)_(\w+)", layer)
        if not match or match[2] not in _MOBILENETV2_BLOCK_PARTS or not 1 <= int(match[1]) <= len(flat_blocks):
            return None
        return f"{flat_blocks[int(match[1]) - 1]}.{_MOBILENETV2_BLOCK_PARTS[match[2]]}"

    load_keras_weights(model, weights, module_of_layer, source)


def run_keras_reference(command: str, *args: str | Path, timeout: float = 300) -> None:
    """Run ``python -m oncorepro.keras_reference <command> <args>`` on CPU in a subprocess of its own."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT / "lib"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "oncorepro.keras_reference", command, *map(str, args)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"keras_reference {command} failed ({result.returncode}):\n{result.stderr[-3000:]}")


@dataclass(frozen=True)
class KerasReference:
    """Inputs and outputs of one Keras reference run (NHWC, as Keras computes)."""

    architecture: str
    images: np.ndarray  # (N, H, W, 3) pixels in [0, 255]
    features: np.ndarray  # (N, C) global average pooled
    feature_map: np.ndarray  # (N, h, w, C) last feature map
    weights: dict[str, np.ndarray]  # Keras variables by "<layer>/<variable>"
    weights_file: Path
    keras_version: str
    tensorflow_version: str


@dataclass(frozen=True)
class ParityResult:
    """Agreement between a Keras reference model and ours on the same weights and input."""

    architecture: str
    input_shape: tuple[int, ...]
    max_abs_diff: float  # pooled features
    max_abs_diff_map: float  # last feature map
    feature_max_abs: float  # scale of the Keras pooled features, for context
    keras_version: str
    tensorflow_version: str


def _random_pixels(batch: int, size: int, seed: int) -> np.ndarray:
    """A batch of uint8-valued RGB pixels as float32, NHWC."""
    return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3)).astype(np.float32)


def _read_reference(architecture: str, images: np.ndarray, output: Path, weights_file: Path) -> KerasReference:
    with np.load(output) as out, np.load(weights_file) as weights:
        return KerasReference(
            architecture=architecture, images=images, features=out["features"], feature_map=out["feature_map"],
            weights={name: weights[name] for name in weights.files}, weights_file=weights_file,
            keras_version=str(out["keras_version"]), tensorflow_version=str(out["tensorflow_version"]),
        )


def run_efficientnetv2b0_reference(
    workdir: str | Path, *, size: int = 299, batch: int = 2, seed: int = 0
) -> KerasReference:
    """keras.applications.EfficientNetV2B0(include_top=False, weights=None, include_preprocessing=True) with
    seeded random weights, on a seeded random uint8-valued batch."""
    workdir = Path(workdir)
    images = _random_pixels(batch, size, seed)
    np.savez(workdir / "images.npz", images=images)
    run_keras_reference(
        "efficientnetv2b0", "--images", workdir / "images.npz", "--output", workdir / "keras_out.npz",
        "--save-weights", workdir / "keras_weights.npz", "--seed", str(seed),
    )
    return _read_reference("EfficientNetV2B0", images, workdir / "keras_out.npz", workdir / "keras_weights.npz")


def run_mobilenetv2_reference(
    workdir: str | Path, tensors: Mapping[str, np.ndarray], *, alpha: float = 0.35, size: int = 224,
    batch: int = 2, seed: int = 0,
) -> KerasReference:
    """keras.applications.MobileNetV2(alpha, include_top=False, weights=None) filled with ``tensors`` (Keras
    names), inputs scaled x/127.5 - 1, on a seeded random uint8-valued batch."""
    workdir = Path(workdir)
    images = _random_pixels(batch, size, seed)
    np.savez(workdir / "images.npz", images=images)
    np.savez(workdir / "keras_weights.npz", **tensors)
    run_keras_reference(
        "mobilenetv2", "--images", workdir / "images.npz", "--output", workdir / "keras_out.npz",
        "--tensors", workdir / "keras_weights.npz", "--alpha", str(alpha),
    )
    return _read_reference(f"MobileNetV2 alpha={alpha}", images, workdir / "keras_out.npz",
                           workdir / "keras_weights.npz")


def compare_with_reference(model: nn.Module, reference: KerasReference) -> ParityResult:
    """Run an ``ImageClassifier`` (normalisation + backbone, in eval mode) on the reference's pixels and compare
    its pooled features and last feature map with Keras'."""
    model.eval()
    pixels = torch.from_numpy(reference.images).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        pooled = model.pooled_features(pixels).numpy()
        feature_map = model.backbone.forward_features(model.normalise(pixels)).permute(0, 2, 3, 1).numpy()
    return ParityResult(
        architecture=reference.architecture, input_shape=reference.images.shape,
        max_abs_diff=float(np.abs(pooled - reference.features).max()),
        max_abs_diff_map=float(np.abs(feature_map - reference.feature_map).max()),
        feature_max_abs=float(np.abs(reference.features).max()),
        keras_version=reference.keras_version, tensorflow_version=reference.tensorflow_version,
    )
