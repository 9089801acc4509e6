"""Explanations on a toy model whose right answer is known: a small CNN trained to detect a bright
square at a random (recorded) position in noise, so its heat belongs on the square."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import timm
import torch
from torch import nn

from oncorepro import explain

SIZE, SIDE = 32, 6


class Scale(nn.Module):
    """Pixels in [0, 255] to [-1, 1], like the library's model wrappers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 127.5 - 1


def squares(n: int, seed: int, positive: bool | None = None) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Noise images; class 1 carries a bright SIDE x SIDE square whose mask is returned."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 120, size=(n, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, 2, n) if positive is None else np.full(n, int(positive))
    masks = np.zeros((n, SIZE, SIZE), bool)
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, SIZE - SIDE, 2)
        x[i, :, r:r + SIDE, c:c + SIDE] = 255
        masks[i, r:r + SIDE, c:c + SIDE] = True
    return torch.from_numpy(x), y, masks


def tiny_cnn() -> nn.Sequential:
    return nn.Sequential(Scale(), nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))


@pytest.fixture(scope="module")
def toy() -> nn.Sequential:
    torch.manual_seed(0)
    model = tiny_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(60):
        x, y, _ = squares(32, seed=step)
        loss = nn.functional.cross_entropy(model(x), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, y, _ = squares(200, seed=999)
    with torch.no_grad():
        assert (model(x).argmax(1).numpy() == y).mean() > 0.95, "toy model failed to learn the square"
    return model


@pytest.fixture(scope="module")
def positives() -> tuple[torch.Tensor, np.ndarray]:
    x, _, masks = squares(12, seed=123, positive=True)
    return x, masks


def snapshot(model: nn.Module) -> dict:
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "modes": [m.training for m in model.modules()],
            "requires_grad": [p.requires_grad for p in model.parameters()],
            "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()]}


def assert_untouched(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    assert all(torch.equal(before["state"][k], after["state"][k]) for k in before["state"])
    assert before["modes"] == after["modes"]
    assert before["requires_grad"] == after["requires_grad"]
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(before["grads"], after["grads"]))
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks


# --- heat_in_lesion / explanation_scores: exact numbers on hand-made maps -------------------------------

def block(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    out = np.zeros(shape)
    out[rows, cols] = 1
    return out


def test_heat_exactly_on_lesion_scores_perfectly():
    mask = block((100, 100), slice(20, 30), slice(40, 50)).astype(bool)
    scores = explain.heat_in_lesion(mask.astype(float), mask)
    assert scores == pytest.approx({"energy_in_mask": 1.0, "mask_area": 0.01, "energy_ratio": 100.0,
                                    "pointing_game": 1.0, "iou_top": 1.0})


def test_heat_beside_lesion_and_uniform_heat():
    mask = block((100, 100), slice(20, 30), slice(40, 50))
    beside = explain.heat_in_lesion(block((100, 100), slice(60, 70), slice(0, 10)), mask)
    assert beside == pytest.approx({"energy_in_mask": 0.0, "mask_area": 0.01, "energy_ratio": 0.0,
                                    "pointing_game": 0.0, "iou_top": 0.0})
    # Uniform heat is chance level; all pixels tie for the top, so the top region is the whole image.
    uniform = explain.heat_in_lesion(np.ones((100, 100)), mask)
    assert uniform == pytest.approx({"energy_in_mask": 0.01, "mask_area": 0.01, "energy_ratio": 1.0,
                                     "pointing_game": 0.0, "iou_top": 0.01})


def test_half_the_heat_in_lesion():
    mask = block((10, 10), slice(0, 2), slice(0, 5))  # 10 pixels
    heat = np.zeros((10, 10))
    heat[0, 0:5] = 2.0  # inside, 10 units, holds the maximum
    heat[9, 0:5] = 1.0  # outside, 5 units
    heat[8, 0:5] = 1.0  # outside, 5 units
    scores = explain.heat_in_lesion(heat, mask)
    assert scores["energy_in_mask"] == pytest.approx(0.5)
    assert scores["energy_ratio"] == pytest.approx(5.0)
    assert scores["pointing_game"] == 1.0
    # top-10 heat: 5 pixels of 2.0 plus the 10 tied pixels of 1.0 -> 15 pixels, 5 in the mask of 10
    assert scores["iou_top"] == pytest.approx(5 / 20)


def test_pointing_game_with_a_tied_maximum_follows_most_of_its_pixels():
    mask = block((10, 10), slice(2, 5), slice(0, 10))
    heat = block((10, 10), slice(1, 5), slice(0, 10))  # maximum on rows 1-4: row 1 outside, rows 2-4 inside
    assert explain.heat_in_lesion(heat, mask)["pointing_game"] == 1.0
    assert explain.heat_in_lesion(heat, block((10, 10), slice(0, 2), slice(0, 10)))["pointing_game"] == 0.0


def test_mask_is_resized_to_the_heatmap_with_nearest_neighbour():
    small_mask = block((50, 50), slice(10, 15), slice(20, 25)).astype(np.uint8) * 255
    heat = block((100, 100), slice(20, 30), slice(40, 50))
    assert explain.heat_in_lesion(heat, small_mask) == pytest.approx(
        {"energy_in_mask": 1.0, "mask_area": 0.01, "energy_ratio": 100.0, "pointing_game": 1.0, "iou_top": 1.0})


def test_empty_mask_and_zero_heat_give_nan_without_error():
    heat = block((20, 20), slice(0, 5), slice(0, 5))
    assert all(math.isnan(v) for v in explain.heat_in_lesion(heat, np.zeros((20, 20), bool)).values())
    no_heat = explain.heat_in_lesion(np.zeros((20, 20)), heat)
    assert no_heat["mask_area"] == pytest.approx(25 / 400)
    assert all(math.isnan(no_heat[k]) for k in explain.SCORES if k != "mask_area")


def test_bad_heatmaps_and_masks_are_rejected():
    mask = np.ones((8, 8), bool)
    with pytest.raises(ValueError, match="non-negative"):
        explain.heat_in_lesion(-np.ones((8, 8)), mask)
    with pytest.raises(ValueError, match="2-D"):
        explain.heat_in_lesion(np.ones((1, 8, 8)), mask)
    with pytest.raises(ValueError, match="mask must be 2-D"):
        explain.heat_in_lesion(np.ones((8, 8)), np.ones((8, 8, 3)))


def test_explanation_scores_one_row_per_image_with_reasons_for_nan():
    mask = block((20, 20), slice(0, 5), slice(0, 5))
    heatmaps = np.stack([mask, mask, mask, np.zeros((20, 20))])
    table = explain.explanation_scores(heatmaps, [mask, None, np.zeros((20, 20)), mask], ["a", "b", "c", "d"])
    assert list(table.columns) == ["id", *explain.SCORES, "note"]
    assert list(table["id"]) == ["a", "b", "c", "d"]
    assert list(table["note"]) == ["", "no mask", "empty mask", "no heat"]
    assert table.loc[0, "energy_ratio"] == pytest.approx(16.0)
    assert table.loc[[1, 2], list(explain.SCORES)].isna().all().all()
    with pytest.raises(ValueError, match="lengths must match"):
        explain.explanation_scores(heatmaps, [mask], ["a"])


# --- Grad-CAM and SmoothGrad on the toy model ----------------------------------------------------------

def test_grad_cam_concentrates_on_the_square(toy, positives):
    images, masks = positives
    maps = explain.grad_cam(toy, images, [1] * len(images))
    assert maps.shape == (len(images), SIZE, SIZE) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1 and np.allclose(maps.max(axis=(1, 2)), 1, atol=1e-5)
    table = explain.explanation_scores(maps, list(masks), [str(i) for i in range(len(images))])
    assert table["energy_ratio"].median() > 2 and table["energy_ratio"].min() > 1
    assert table["pointing_game"].mean() >= 0.75


def test_grad_cam_matches_a_hand_computed_reference(toy, positives):
    images = positives[0][:3]
    layer = toy[6]  # last ReLU: the default layer of this CNN
    assert explain.default_target_layer(toy, images) is layer
    seen = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.update(out=out))
    try:
        logits = toy(images)
    finally:
        handle.remove()
    grads = torch.autograd.grad(logits[:, 0].sum(), seen["out"])[0]
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * seen["out"]).sum(1, keepdim=True))
    cam = nn.functional.interpolate(cam, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
    cam = cam - cam.amin(dim=(1, 2), keepdim=True)
    cam = (cam / cam.amax(dim=(1, 2), keepdim=True)).detach().numpy()
    np.testing.assert_allclose(explain.grad_cam(toy, images, [0, 0, 0]), cam, atol=1e-4)


def test_grad_cam_defaults_to_predicted_class_and_ignores_chunking(toy):
    images, _, _ = squares(10, seed=7)
    predicted = explain.predicted_classes(toy, images)
    assert len(set(predicted)) == 2
    by_default = explain.grad_cam(toy, images)
    np.testing.assert_array_equal(by_default, explain.grad_cam(toy, images, predicted))
    np.testing.assert_allclose(by_default, explain.grad_cam(toy, images, predicted, batch_size=3), atol=1e-6)
    other = [1 - c for c in predicted]
    assert not np.allclose(by_default, explain.grad_cam(toy, images, other))


def test_smoothgrad_concentrates_on_the_square_and_is_seeded(toy, positives):
    images, masks = positives
    maps = explain.smoothgrad(toy, images, [1] * len(images), n_samples=10)
    assert maps.shape == (len(images), SIZE, SIZE) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    table = explain.explanation_scores(maps, list(masks), [str(i) for i in range(len(images))])
    assert table["energy_ratio"].median() > 2 and table["energy_ratio"].min() > 1
    assert table["pointing_game"].mean() >= 0.75
    torch.manual_seed(5)
    expected_draw = torch.rand(3)
    torch.manual_seed(5)
    again = explain.smoothgrad(toy, images[:2], [1, 1], n_samples=10, batch_size=4)
    assert torch.equal(torch.rand(3), expected_draw), "smoothgrad disturbed the caller's random state"
    np.testing.assert_allclose(again, maps[:2], atol=1e-6)
    assert not np.allclose(explain.smoothgrad(toy, images[:2], [1, 1], n_samples=10, seed=1), maps[:2])


class Thirds(nn.Module):
    """Linear model: logit k is the mean brightness of the k-th vertical third of the image."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(3, 12, 12))
        for k in range(3):
            self.weight.data[k, :, 4 * k:4 * k + 4] = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.mean(1, keepdim=True) * self.weight).sum(dim=(2, 3))


def test_smoothgrad_of_a_linear_model_is_its_weight_map_for_the_target_class():
    model = Thirds()
    images = torch.rand(2, 3, 12, 12) * 50
    images[0, :, :, 8:] += 200  # brightest in the last third: predicted class 2
    maps = explain.smoothgrad(model, images, [2, 0], n_samples=5)
    np.testing.assert_allclose(maps, model.weight.detach().numpy()[[2, 0]], atol=1e-6)
    assert explain.predicted_classes(model, images)[0] == 2
    np.testing.assert_allclose(explain.smoothgrad(model, images[:1], n_samples=5)[0], maps[0], atol=1e-6)


def test_callers_model_and_images_are_left_as_found(toy, positives):
    images = positives[0][:4]
    toy.train()
    toy[1].weight.grad = torch.full_like(toy[1].weight, 0.5)
    toy[4].bias.requires_grad_(False)
    before = snapshot(toy)
    try:
        explain.default_target_layer(toy)
        explain.grad_cam(toy, images, [1, 1, 0, 0], batch_size=3)
        explain.smoothgrad(toy, images, None, n_samples=4)
        explain.randomisation_check(toy, images, [1, 1, 0, 0])
        assert_untouched(toy, before)
        assert not images.requires_grad
    finally:
        toy.eval()
        toy[1].weight.grad = None
        toy[4].bias.requires_grad_(True)


def test_bad_arguments_are_rejected(toy, positives):
    images = positives[0][:2]
    with pytest.raises(ValueError, match="target classes"):
        explain.grad_cam(toy, images, [1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        explain.grad_cam(toy, images[0], [1])
    with pytest.raises(ValueError, match="not a submodule"):
        explain.grad_cam(toy, images, [1, 1], layer=tiny_cnn()[6])
    with pytest.raises(IndexError):  # not swallowed by pytorch_grad_cam's context manager
        explain.grad_cam(toy, images, [1, 5])


# --- randomisation sanity check -------------------------------------------------------------------------

@pytest.mark.parametrize("method", [explain.grad_cam, explain.smoothgrad], ids=["grad_cam", "smoothgrad"])
def test_randomised_weights_change_the_explanation(toy, positives, method):
    images = positives[0][:6]
    table = explain.randomisation_check(toy, images, [1] * 6, method=method, ids=list("abcdef"))
    assert list(table.columns) == ["id", "stage", "spearman", "pearson", "note"]
    assert sorted(table["stage"].unique()) == ["all", "head"] and len(table) == 12
    assert table.groupby("stage")["id"].apply(list).to_dict() == {"all": list("abcdef"), "head": list("abcdef")}
    fully = table[table["stage"] == "all"]
    assert fully["spearman"].notna().all() and (fully["note"] == "").all()
    assert fully["spearman"].median() < 0.5 and fully["pearson"].median() < 0.5
    again = explain.randomisation_check(toy, images, [1] * 6, method=method, ids=list("abcdef"))
    np.testing.assert_allclose(table[["spearman", "pearson"]], again[["spearman", "pearson"]])


def test_randomisation_check_reports_constant_maps_instead_of_correlating_them(toy, positives):
    images = positives[0][:2]

    def blank_when_randomised(model, images, targets, batch_size):
        maps = explain.grad_cam(model, images, targets, batch_size=batch_size)
        return maps if model is toy else np.zeros_like(maps)

    table = explain.randomisation_check(toy, images, [1, 1], method=blank_when_randomised)
    assert table[["spearman", "pearson"]].isna().all().all()
    assert set(table["note"]) == {"randomised map constant"}


def test_randomisation_check_maps_an_explicit_layer_onto_the_copies(toy, positives):
    images = positives[0][:3]
    early = explain.randomisation_check(toy, images, [1, 1, 1], layer=toy[3])
    default = explain.randomisation_check(toy, images, [1, 1, 1])
    assert not np.allclose(early["spearman"], default["spearman"])
    with pytest.raises(ValueError, match="not a submodule"):
        explain.randomisation_check(toy, images, [1, 1, 1], layer=tiny_cnn()[3])


# --- default target layer on timm backbones -------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [("resnet18", "backbone.layer4"), ("efficientnet_b0", "backbone.bn2"),
                                            ("mobilenetv2_035", "backbone.bn2"),
                                            ("tf_efficientnetv2_b0", "backbone.bn2")])
def test_default_target_layer_is_the_last_feature_map_of_timm_models(name, expected):
    torch.manual_seed(0)
    backbone = timm.create_model(name, pretrained=False, num_classes=2)
    model = nn.Sequential(OrderedDict(normalize=Scale(), backbone=backbone)).eval()
    example = torch.rand(1, 3, 64, 64) * 255
    layer = explain.default_target_layer(model, example)
    assert layer is model.get_submodule(expected)
    seen = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.update(shape=tuple(out.shape)))
    try:
        with torch.no_grad():
            features = backbone.forward_features(example / 127.5 - 1)
    finally:
        handle.remove()
    assert seen["shape"] == tuple(features.shape) == (1, backbone.num_features, 2, 2)


def test_default_target_layer_traces_timm_input_size_without_example_and_grad_cam_runs():
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(normalize=Scale(), backbone=timm.create_model("mobilenetv2_035", num_classes=3)))
    assert explain.default_target_layer(model) is model.backbone.bn2
    maps = explain.grad_cam(model, torch.rand(2, 3, 64, 48) * 255, [0, 2])
    assert maps.shape == (2, 64, 48) and maps.min() >= 0 and maps.max() <= 1
    assert explain.classifier_head(model) is model.backbone.get_classifier()


def test_default_target_layer_needs_a_spatial_feature_map():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="larger than 1x1"):
        explain.default_target_layer(model, torch.zeros(1, 3, 3, 3))
