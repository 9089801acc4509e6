"""TF.js reader and the Teachable Machine MobileNetV2-0.35 base, on the real export in ../shared/weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from oncorepro.errors import DataError
from oncorepro.models import build_model
from oncorepro.weights import resolve_weights_root
from oncorepro.weights.keras_port import load_keras_mobilenetv2
from oncorepro.weights.tfjs import (
    BASE_TENSOR_COUNT, HEAD_TENSORS, TEACHABLE_MACHINE_FOLDER, read_teachable_machine_base, read_tfjs_weights,
)

TM_FOLDER = resolve_weights_root() / TEACHABLE_MACHINE_FOLDER
pytestmark = pytest.mark.skipif(not TM_FOLDER.is_dir(), reason=f"{TM_FOLDER} absent")


@pytest.fixture
def tm_copy(tmp_path: Path) -> Path:
    """A writable copy of the export, laid out as a weights root."""
    folder = tmp_path / TEACHABLE_MACHINE_FOLDER
    shutil.copytree(TM_FOLDER, folder)
    for file in folder.iterdir():
        file.chmod(0o644)
    return folder


def _manifest_entries() -> list[dict]:
    manifest = json.loads((TM_FOLDER / "model.json").read_text())["weightsManifest"]
    return [entry for group in manifest for entry in group["weights"]]


def test_reads_tensors_in_manifest_order() -> None:
    weights = read_tfjs_weights(TM_FOLDER)
    entries = _manifest_entries()
    assert list(weights.tensors) == [e["name"] for e in entries] and len(entries) == 263
    assert all(list(weights.tensors[e["name"]].shape) == e["shape"] for e in entries)
    raw = np.fromfile(TM_FOLDER / "weights.bin", "<f4")
    assert np.array_equal(weights.tensors["Conv1/kernel"].ravel(), raw[: 3 * 3 * 3 * 16])
    assert np.array_equal(weights.tensors["Conv_1_bn/moving_variance"], raw[-1280:])
    assert weights.weights_sha256 == hashlib.sha256((TM_FOLDER / "weights.bin").read_bytes()).hexdigest()


def test_base_keeps_260_tensors_and_drops_head_by_name() -> None:
    base = read_teachable_machine_base()
    assert len(base.tensors) == BASE_TENSOR_COUNT == 260
    assert base.ignored == HEAD_TENSORS
    assert not any(name.startswith("dense_") for name in base.tensors)
    assert sum(a.size for a in base.tensors.values()) == 410_208  # PROVENANCE.md


def _fingerprint(array: np.ndarray) -> tuple[int, bytes]:
    """Layout-independent identity of a tensor: its size and sorted values."""
    return array.size, np.sort(array.ravel()).tobytes()


def test_every_base_tensor_fills_exactly_one_timm_tensor() -> None:
    base = read_teachable_machine_base()
    model, _ = build_model("mobilenetv2_035", 3, pretrained="teachable_machine")
    timm_state = {k: v.numpy() for k, v in model.backbone.state_dict().items() if "num_batches" not in k}
    assert Counter(map(_fingerprint, timm_state.values())) == Counter(map(_fingerprint, base.tensors.values()))
    assert np.array_equal(timm_state["conv_stem.weight"], base.tensors["Conv1/kernel"].transpose(3, 2, 0, 1))
    assert np.array_equal(timm_state["blocks.6.0.conv_dw.weight"],
                          base.tensors["block_16_depthwise/depthwise_kernel"].transpose(2, 3, 0, 1))
    assert np.array_equal(timm_state["bn2.running_var"], base.tensors["Conv_1_bn/moving_variance"])


def test_mapping_rejects_leftover_and_missing_tensors() -> None:
    base = read_teachable_machine_base()
    model, _ = build_model("mobilenetv2_035", 3)
    extra = dict(base.tensors, **{"block_17_expand/kernel": np.zeros((1, 1, 112, 672), np.float32)})
    with pytest.raises(DataError, match="block_17_expand/kernel"):
        load_keras_mobilenetv2(model.backbone, extra, "model.json")
    missing = {k: v for k, v in base.tensors.items() if k != "block_5_project_BN/moving_mean"}
    with pytest.raises(DataError, match=r"1 timm tensors unfilled \['blocks.2.2.bn3.running_mean'\]"):
        load_keras_mobilenetv2(model.backbone, missing, "model.json")
    wrong = dict(base.tensors, **{"Conv1/kernel": np.zeros((3, 3, 3, 8), np.float32)})
    with pytest.raises(DataError, match="Conv1/kernel.*does not fit"):
        load_keras_mobilenetv2(model.backbone, wrong, "model.json")


def test_truncated_weights_bin(tm_copy: Path) -> None:
    data = (tm_copy / "weights.bin").read_bytes()
    (tm_copy / "weights.bin").write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"weights\.bin: truncated.*'Conv_1_bn/moving_variance'") as error:
        read_tfjs_weights(tm_copy)
    assert error.value.path == tm_copy / "weights.bin"


def test_extra_bytes_in_weights_bin(tm_copy: Path) -> None:
    with open(tm_copy / "weights.bin", "ab") as handle:
        handle.write(b"\0" * 8)
    with pytest.raises(DataError, match=r"weights\.bin: 8 bytes left.*do not add up"):
        read_tfjs_weights(tm_copy)


def test_manifest_shapes_that_do_not_add_up(tm_copy: Path) -> None:
    model_json = json.loads((tm_copy / "model.json").read_text())
    model_json["weightsManifest"][0]["weights"][0]["shape"] = [3, 3, 3, 17]
    (tm_copy / "model.json").write_text(json.dumps(model_json))
    with pytest.raises(DataError, match=r"weights\.bin: truncated.*needs"):
        read_tfjs_weights(tm_copy)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("{not json", "not valid JSON"), ('{"modelTopology": {}}', "no 'weightsManifest'"),
     ('{"weightsManifest": [{"paths": ["weights.bin"], "weights": [{"name": "a", "shape": [2], '
      '"dtype": "int8"}]}]}', "only unquantised float32")],
)
def test_corrupt_model_json(tm_copy: Path, text: str, problem: str) -> None:
    (tm_copy / "model.json").write_text(text)
    with pytest.raises(DataError, match=problem) as error:
        read_tfjs_weights(tm_copy)
    assert error.value.path == tm_copy / "model.json"


def test_non_finite_values_name_the_tensor(tm_copy: Path) -> None:
    data = bytearray((tm_copy / "weights.bin").read_bytes())
    data[0:4] = np.array([np.nan], "<f4").tobytes()
    (tm_copy / "weights.bin").write_bytes(bytes(data))
    with pytest.raises(DataError, match="'Conv1/kernel' holds non-finite"):
        read_tfjs_weights(tm_copy)


def test_missing_folder_and_weights_root_order(tm_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="Teachable Machine weights folder not found"):
        read_teachable_machine_base(tmp_path / "nowhere")
    monkeypatch.setenv("ONCOREPRO_WEIGHTS", str(tmp_path / "nowhere"))
    assert read_teachable_machine_base(tm_copy.parent).folder == tm_copy  # the argument wins over the variable
    (tm_copy / "weights.bin").write_bytes(b"")
    monkeypatch.setenv("ONCOREPRO_WEIGHTS", str(tm_copy.parent))
    with pytest.raises(DataError, match="truncated"):  # the variable wins over ../shared/weights
        build_model("mobilenetv2_035", 2, pretrained="teachable_machine")


def test_features_are_finite_deterministic_and_informative() -> None:
    images = torch.randint(0, 256, (2, 3, 224, 224), generator=torch.Generator().manual_seed(0)).float()
    features = []
    for _ in range(2):
        model, _ = build_model("mobilenetv2_035", 3, pretrained="teachable_machine")
        with torch.no_grad():
            features.append(model.eval().pooled_features(images))
    assert features[0].shape == (2, 1280) and torch.isfinite(features[0]).all()
    assert torch.equal(features[0], features[1])
    assert features[0].min() >= 0 and features[0].max() <= 6  # ReLU6 at out_relu, then averaged
    assert (features[0][0] - features[0][1]).abs().max() > 0.1
