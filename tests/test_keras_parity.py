"""Our models compute what keras.applications computes: same weights, same pixels, same features.

Keras runs in a TensorFlow subprocess (oncorepro.keras_reference); the comparison runs here with torch.
Negative controls show the check can fail: with PyTorch's symmetric padding, PyTorch's BN epsilon 1e-5 or another
input normalisation, the same weights give different features.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import timm
import torch

from oncorepro.errors import DataError
from oncorepro.models import KERAS_TF, ImageClassifier, InputNormalisation, build_model
from oncorepro.weights import resolve_weights_root
from oncorepro.weights.keras_port import (
    KerasReference, compare_with_reference, load_keras_efficientnetv2, load_keras_mobilenetv2,
    run_efficientnetv2b0_reference, run_mobilenetv2_reference,
)
from oncorepro.weights.tfjs import TEACHABLE_MACHINE_FOLDER, read_teachable_machine_base

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow not installed"),
]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def effnet_reference(tmp_path_factory: pytest.TempPathFactory) -> KerasReference:
    return run_efficientnetv2b0_reference(tmp_path_factory.mktemp("effnetv2"), size=299, batch=2, seed=0)


@pytest.fixture(scope="module")
def mobilenet_reference(tmp_path_factory: pytest.TempPathFactory) -> KerasReference:
    if not (resolve_weights_root() / TEACHABLE_MACHINE_FOLDER).is_dir():
        pytest.skip("Teachable Machine weights absent")
    base = read_teachable_machine_base()
    return run_mobilenetv2_reference(tmp_path_factory.mktemp("mobilenetv2"), base.tensors, size=224, batch=2, seed=0)


def test_efficientnetv2_b0_matches_keras(effnet_reference: KerasReference) -> None:
    reference = effnet_reference
    assert reference.features.shape == (2, 1280) and reference.feature_map.shape == (2, 10, 10, 1280)
    assert np.abs(reference.features[0] - reference.features[1]).max() > 1e-2  # inputs matter
    model, _ = build_model("tf_efficientnetv2_b0", 2, input_size=299)
    load_keras_efficientnetv2(model.backbone, reference.weights, reference.weights_file)
    result = compare_with_reference(model, reference)
    assert result.max_abs_diff < TOLERANCE and result.max_abs_diff_map < TOLERANCE
    assert result.feature_max_abs > 0.5


@pytest.mark.parametrize("variant", [{"pad_type": ""}, {"bn_eps": 1e-5}], ids=["symmetric-padding", "bn-eps-1e-5"])
def test_efficientnetv2_parity_detects_pytorch_defaults(effnet_reference: KerasReference, variant: dict) -> None:
    model, _ = build_model("tf_efficientnetv2_b0", 2, input_size=299)
    model.backbone = timm.create_model("tf_efficientnetv2_b0", num_classes=0, **variant)
    load_keras_efficientnetv2(model.backbone, effnet_reference.weights, effnet_reference.weights_file)
    assert compare_with_reference(model, effnet_reference).max_abs_diff > 10 * TOLERANCE


def test_efficientnetv2_parity_detects_other_normalisation(effnet_reference: KerasReference) -> None:
    model, _ = build_model("tf_efficientnetv2_b0", 2, input_size=299)
    load_keras_efficientnetv2(model.backbone, effnet_reference.weights, effnet_reference.weights_file)
    model.normalise = InputNormalisation(KERAS_TF)
    assert compare_with_reference(model, effnet_reference).max_abs_diff > 10 * TOLERANCE


def test_efficientnetv2_mapping_is_strict(effnet_reference: KerasReference) -> None:
    weights, source = effnet_reference.weights, effnet_reference.weights_file
    model, _ = build_model("tf_efficientnetv2_b0", 2)
    assert len(weights) == len([k for k in model.backbone.state_dict() if "num_batches" not in k])
    without = {k: v for k, v in weights.items() if k != "block4a_se_reduce/bias"}
    with pytest.raises(DataError, match=r"unfilled \['blocks.3.0.se.conv_reduce.bias'\]"):
        load_keras_efficientnetv2(model.backbone, without, source)
    with pytest.raises(DataError, match="block7a_expand_conv/kernel"):
        load_keras_efficientnetv2(model.backbone, {**weights, "block7a_expand_conv/kernel": np.zeros(1)}, source)


def test_teachable_machine_mobilenetv2_matches_keras(mobilenet_reference: KerasReference) -> None:
    reference = mobilenet_reference
    assert reference.features.shape == (2, 1280) and reference.feature_map.shape == (2, 7, 7, 1280)
    model, _ = build_model("mobilenetv2_035", 2, pretrained="teachable_machine", input_size=224)
    result = compare_with_reference(model, reference)
    assert result.max_abs_diff < TOLERANCE and result.max_abs_diff_map < TOLERANCE
    assert result.feature_max_abs > 0.5


@pytest.mark.parametrize("variant", [{"pad_type": ""}, {"bn_eps": 1e-5}], ids=["symmetric-padding", "bn-eps-1e-5"])
def test_mobilenetv2_parity_detects_pytorch_defaults(mobilenet_reference: KerasReference, variant: dict) -> None:
    backbone = timm.create_model("mobilenetv2_035", num_classes=0, **{"pad_type": "same", "bn_eps": 1e-3, **variant})
    load_keras_mobilenetv2(backbone, mobilenet_reference.weights, mobilenet_reference.weights_file)
    model = ImageClassifier(InputNormalisation(KERAS_TF), backbone, head=torch.nn.Identity())
    assert compare_with_reference(model, mobilenet_reference).max_abs_diff > 10 * TOLERANCE
