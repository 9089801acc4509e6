"""Heatmap explanations (Grad-CAM, SmoothGrad), their agreement with lesion masks, and the
Adebayo et al. (2018) model-parameter randomisation sanity check.

Every function leaves the caller's model as it found it: weights, train/eval mode, ``requires_grad``,
``.grad`` and hooks are restored, randomness is drawn from forked, seeded generators, and the
randomisation check works on deep copies.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from captum.attr import NoiseTunnel, Saliency
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from scipy import stats
from torch import nn

SCORES = ("energy_in_mask", "mask_area", "energy_ratio", "pointing_game", "iou_top")
Explainer = Callable[..., np.ndarray]


@contextmanager
def _inference_state(model: nn.Module) -> Iterator[None]:
    """Eval mode with frozen parameters for the duration; restores modes, requires_grad and .grad."""
    modes = [(module, module.training) for module in model.modules()]
    params = list(model.parameters())
    saved = [(p.requires_grad, p.grad) for p in params]
    model.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        for p, (requires_grad, grad) in zip(params, saved):
            p.requires_grad_(requires_grad)
            p.grad = grad


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's generators for the duration, leaving the caller's random state untouched."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _check_images(images: torch.Tensor, target_classes: Sequence[int] | None) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    if target_classes is not None and len(target_classes) != len(images):
        raise ValueError(f"{len(target_classes)} target classes for {len(images)} images")


def _chunks(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each map to [0, 1] (a constant map becomes all zeros), as pytorch_grad_cam does."""
    maps = maps - maps.min(axis=(1, 2), keepdims=True)
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0).astype(np.float32)


def predicted_classes(model: nn.Module, images: torch.Tensor, *, batch_size: int = 16) -> list[int]:
    """Arg-max class of the model's logits for every image."""
    _check_images(images, None)
    device, out = _device(model), []
    with _inference_state(model), torch.no_grad():
        for part in _chunks(len(images), batch_size):
            out += model(images[part].to(device)).argmax(1).tolist()
    return out


def default_target_layer(model: nn.Module, example: torch.Tensor | None = None) -> nn.Module:
    """The last convolutional feature block: the submodule whose forward call finishes last among those
    that return a 4-D feature map larger than 1x1 (nn.Identity and modules run more than once per
    forward pass excluded).

    For timm CNNs this is the module that produces ``forward_features``' output, i.e. the map that
    global pooling and ``get_classifier()`` consume: ``layer4`` (ResNet), ``bn2`` after ``conv_head``
    (EfficientNet/EfficientNetV2/MobileNetV2, Keras' "top_activation"), ``features`` (DenseNet),
    ``stages`` (ConvNeXt), ``blocks`` (MobileNetV3, whose conv_head follows pooling). For a
    plain CNN it is the last activation before pooling. The layer is found by tracing one forward pass
    of ``example`` (first image used), or of zeros sized by timm's ``pretrained_cfg['input_size']``
    (else 224x224 with the first convolution's input channels).
    """
    if example is None:
        example = torch.zeros((1, *_input_size(model)))
    submodules = [module for name, module in model.named_modules() if name]
    calls: dict[nn.Module, int] = {}
    finished: list[tuple[nn.Module, object]] = []

    def record(module: nn.Module, _inputs: object, output: object) -> None:
        calls[module] = calls.get(module, 0) + 1
        finished.append((module, output))

    handles = [module.register_forward_hook(record) for module in submodules]
    try:
        with _inference_state(model), torch.no_grad():
            model(example[:1].to(_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    for module, output in reversed(finished):
        if (isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[-2] * output.shape[-1] > 1
                and calls[module] == 1 and not isinstance(module, nn.Identity)):
            return module
    raise ValueError(f"{type(model).__name__} produces no 4-D feature map larger than 1x1 for input of shape "
                     f"{tuple(example.shape[1:])}: pass a larger input or an explicit layer")


def _input_size(model: nn.Module) -> tuple[int, int, int]:
    for module in model.modules():
        size = (getattr(module, "pretrained_cfg", None) or {}).get("input_size")
        if size:
            return tuple(size)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return (first_conv.in_channels if first_conv else 3, 224, 224)


def _check_layer(model: nn.Module, layer: nn.Module) -> None:
    if not any(module is layer for module in model.modules()):
        raise ValueError(f"layer {type(layer).__name__} is not a submodule of the model being explained "
                         "(a layer of another copy of the model?)")


def grad_cam(model: nn.Module, images: torch.Tensor, target_classes: Sequence[int] | None = None, *,
             layer: nn.Module | None = None, batch_size: int = 16) -> np.ndarray:
    """Grad-CAM (pytorch_grad_cam.GradCAM, ClassifierOutputTarget) of each image for its target class
    (predicted class when None) at ``layer`` (default_target_layer when None).

    Returns (N, H, W) float32 maps at input resolution, each min-max scaled to [0, 1].
    """
    _check_images(images, target_classes)
    layer = default_target_layer(model, images) if layer is None else layer
    _check_layer(model, layer)
    device, maps = _device(model), []
    with _inference_state(model):
        cam = GradCAM(model=model, target_layers=[layer])
        # Released in `finally` rather than with GradCAM's context manager, whose __exit__ swallows IndexError.
        try:
            for part in _chunks(len(images), batch_size):
                targets = None if target_classes is None else [
                    ClassifierOutputTarget(int(c)) for c in target_classes[part]]
                # The parameters are frozen, so the input carries the gradient to the layer.
                chunk = images[part].to(device).detach().requires_grad_(True)
                maps.append(cam(input_tensor=chunk, targets=targets))
        finally:
            cam.activations_and_grads.release()
    return np.concatenate(maps).astype(np.float32)


def smoothgrad(model: nn.Module, images: torch.Tensor, target_classes: Sequence[int] | None = None, *,
               n_samples: int = 25, noise_level: float = 0.15, seed: int = 0, batch_size: int = 16) -> np.ndarray:
    """SmoothGrad (captum NoiseTunnel over Saliency, Smilkov et al. 2017) of each image for its target
    class (predicted class when None).

    Gaussian noise has sd = noise_level * (max - min) of that image; image i draws its noise from a
    generator seeded with ``seed + i``. Captum averages |gradient| over the noisy copies; the map is the
    maximum over channels, min-max scaled to [0, 1]. Returns (N, H, W) float32.
    """
    _check_images(images, target_classes)
    targets = predicted_classes(model, images, batch_size=batch_size) if target_classes is None else target_classes
    device, maps = _device(model), []
    tunnel = NoiseTunnel(Saliency(model))
    with _inference_state(model):
        for i, (image, target) in enumerate(zip(images, targets)):
            image = image[None].to(device)
            spread = float(image.max() - image.min())
            with _seeded(device, seed + i):
                attribution = tunnel.attribute(image, nt_type="smoothgrad", nt_samples=n_samples,
                                               nt_samples_batch_size=batch_size, stdevs=noise_level * spread,
                                               target=int(target), abs=True)
            maps.append(attribution.detach().amax(dim=1).cpu().numpy())
    return _normalise(np.concatenate(maps).astype(np.float64))


def _mask_like(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    mask = mask > 0
    if mask.shape != shape:
        resized = Image.fromarray(mask.astype(np.uint8) * 255).resize(shape[::-1], Image.Resampling.NEAREST)
        mask = np.asarray(resized) > 0
    return mask


def _scores(heatmap: np.ndarray, mask: np.ndarray | None) -> tuple[dict[str, float], str]:
    """The scores of heat_in_lesion and a note saying why any of them is nan ('' when none is)."""
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H, W), got shape {heat.shape}")
    if not np.isfinite(heat).all() or (heat < 0).any():
        raise ValueError("heatmap must be finite and non-negative")
    scores = dict.fromkeys(SCORES, math.nan)
    if mask is None:
        return scores, "no mask"
    mask = _mask_like(mask, heat.shape)
    if not mask.any():
        return scores, "empty mask"
    scores["mask_area"] = float(mask.mean())
    total = heat.sum()
    if total == 0:
        return scores, "no heat"
    scores["energy_in_mask"] = float(heat[mask].sum() / total)
    scores["energy_ratio"] = scores["energy_in_mask"] / scores["mask_area"]
    scores["pointing_game"] = float(mask[heat == heat.max()].mean() > 0.5)
    k = int(mask.sum())
    top = heat >= np.partition(heat.ravel(), -k)[-k]
    scores["iou_top"] = float((top & mask).sum() / (top | mask).sum())
    return scores, ""


def heat_in_lesion(heatmap: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How well a non-negative (H, W) heatmap agrees with a lesion mask (resized to it, nearest neighbour).

    energy_in_mask: share of the total heat inside the mask; mask_area: mask share of the image (the
    chance level of energy_in_mask); energy_ratio: their quotient (> 1: heat concentrates on the lesion);
    pointing_game: 1.0 if the heat maximum lies in the mask (when several pixels share it, most of them);
    iou_top: IoU of the mask with the pixels at or above the k-th largest heat, k = mask pixel count.
    An empty mask gives all nan; an all-zero heatmap gives nan for all but mask_area.
    """
    return _scores(heatmap, mask)[0]


def explanation_scores(heatmaps: np.ndarray, masks: Sequence[np.ndarray | None], ids: Sequence[str]) -> pd.DataFrame:
    """heat_in_lesion for every image: columns id, the scores, and note (why scores are nan: "no mask",
    "empty mask", "no heat"; empty otherwise)."""
    if not len(heatmaps) == len(masks) == len(ids):
        raise ValueError(f"{len(heatmaps)} heatmaps, {len(masks)} masks and {len(ids)} ids: lengths must match")
    rows = []
    for image_id, heat, mask in zip(ids, heatmaps, masks):
        scores, note = _scores(heat, mask)
        rows.append({"id": image_id, **scores, "note": note})
    return pd.DataFrame(rows, columns=["id", *SCORES, "note"])


def classifier_head(model: nn.Module) -> nn.Module:
    """The classification head: timm's ``get_classifier()`` of the (wrapped) backbone, else the last nn.Linear."""
    for module in model.modules():
        if callable(getattr(module, "get_classifier", None)):
            head = module.get_classifier()
            if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
                return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"cannot find a classifier head with parameters in {type(model).__name__}")
    return linears[-1]


def _reinitialise(part: nn.Module) -> None:
    """Each module's own reset_parameters(); parameters owned by modules without one are redrawn
    from a normal distribution with the tensor's standard deviation (0.02 when it has none)."""
    for module in part.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
            continue
        with torch.no_grad():
            for p in module.parameters(recurse=False):
                std = float(p.std()) if p.numel() > 1 else 0.0
                p.normal_(0.0, std if std > 0 else 0.02)


def _randomised_copy(model: nn.Module, stage: str, seed: int) -> nn.Module:
    randomised = copy.deepcopy(model)
    part = classifier_head(randomised) if stage == "head" else randomised
    with _seeded(_device(randomised), seed):
        _reinitialise(part)
    return randomised


def _correlations(original: np.ndarray, randomised: np.ndarray) -> dict[str, float | str]:
    """Spearman and Pearson correlation of two maps; nan, with a note saying which, when a map is constant."""
    constant = [label for label, m in (("original", original), ("randomised", randomised)) if m.min() == m.max()]
    if constant:
        return {"spearman": math.nan, "pearson": math.nan, "note": " and ".join(constant) + " map constant"}
    a, b = original.ravel(), randomised.ravel()
    return {"spearman": float(stats.spearmanr(a, b)[0]), "pearson": float(stats.pearsonr(a, b)[0]), "note": ""}


def randomisation_check(model: nn.Module, images: torch.Tensor, target_classes: Sequence[int] | None = None, *,
                        method: Explainer = grad_cam, seed: int = 0, layer: nn.Module | None = None,
                        ids: Sequence[str] | None = None, batch_size: int = 16) -> pd.DataFrame:
    """Model-parameter randomisation test (Adebayo et al. 2018): explanations of the trained model versus
    those of deep copies whose classifier head ("head"), then all parameters ("all"), are re-initialised
    (seeded). Targets default to the trained model's predictions and stay fixed across models.

    ``method(model, images, targets, batch_size=...)`` makes the maps; ``layer`` (a module of ``model``) is
    passed on as the same-named module of each copy. The head is timm's ``get_classifier()`` or else the
    last nn.Linear (the logits layer). One row per image and stage: id, stage, spearman, pearson, note
    (why the correlations are nan: a constant map, e.g. an all-zero Grad-CAM). A faithful explanation
    depends on the weights, so its correlations are low.
    """
    _check_images(images, target_classes)
    ids = [str(i) for i in range(len(images))] if ids is None else list(ids)
    if len(ids) != len(images):
        raise ValueError(f"{len(ids)} ids for {len(images)} images")
    if target_classes is None:
        target_classes = predicted_classes(model, images, batch_size=batch_size)
    layer_name = None
    if layer is not None:
        _check_layer(model, layer)
        layer_name = next(name for name, module in model.named_modules() if module is layer)

    def explain(net: nn.Module) -> np.ndarray:
        extra = {} if layer_name is None else {"layer": net.get_submodule(layer_name)}
        return method(net, images, target_classes, batch_size=batch_size, **extra)

    original = explain(model)
    rows = []
    for stage in ("head", "all"):
        randomised = explain(_randomised_copy(model, stage, seed))
        rows += [{"id": image_id, "stage": stage, **_correlations(a, b)}
                 for image_id, a, b in zip(ids, original, randomised)]
    return pd.DataFrame(rows, columns=["id", "stage", "spearman", "pearson", "note"])
