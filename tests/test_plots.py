from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from sklearn.metrics import roc_auc_score

from oncorepro.plots import (RocCurveInput, bar_figure, confusion_figure, heatmap_grid_figure, line_figure, roc_figure,
                             save, training_curves_figure)

CI_PATTERN = re.compile(r"AUC \d\.\d\d \(95% CI \d\.\d\d–\d\.\d\d")


def run_scores(seed: int, n: int = 97) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.32).astype(int)
    return y, np.clip(0.4 * y + 0.6 * rng.random(n), 0, 1)


def history(seeds: int | None) -> pd.DataFrame:
    rows = []
    for seed in range(seeds or 1):
        for epoch in range(1, 23):
            rows.append({"epoch": epoch, "train_loss": 0.9 / epoch + 0.01 * seed, "val_loss": 1.0 / epoch + 0.05,
                         "train_accuracy": 1 - 0.4 / epoch, "val_accuracy": 0.97 - 0.4 / epoch + 0.01 * seed,
                         **({"seed": seed} if seeds else {})})
    return pd.DataFrame(rows)


def assert_axes_labelled(fig) -> None:
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), f"unlabelled axis in {ax.get_title()!r}"


def test_roc_legend_shows_auc_with_its_interval():
    y, score = run_scores(0)
    fig = roc_figure([RocCurveInput("BUSI", y, score), RocCurveInput("MRI", runs=[run_scores(s) for s in (1, 2, 3)])],
                     "ROC", n_boot=200)
    assert_axes_labelled(fig)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0].startswith(f"BUSI: AUC {roc_auc_score(y, score):.2f}") and CI_PATTERN.search(texts[0])
    assert CI_PATTERN.search(texts[1]) and "3 runs" in texts[1]
    assert texts[2] == "chance"
    assert len(fig.axes[0].collections) == 1  # the band around the mean of the three runs


def test_roc_input_needs_one_kind_of_data():
    with pytest.raises(ValueError, match="either"):
        RocCurveInput("x", y_true=np.array([0, 1]))
    with pytest.raises(ValueError, match="either"):
        RocCurveInput("x", np.array([0, 1]), np.array([0.2, 0.8]), runs=[run_scores(0)])


def test_confusion_cells_show_counts_and_row_rates():
    fig = confusion_figure(np.array([[65, 1], [0, 31]]), ["benign", "malignant"], "BUSI test set")
    assert_axes_labelled(fig)
    ax = fig.axes[0]
    cells = {t.get_text() for t in ax.texts}
    assert cells == {"65\n98.5%", "1\n1.5%", "0\n0.0%", "31\n100.0%"}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["benign", "malignant"]
    assert "row-normalised" in fig.axes[1].get_ylabel()


def test_confusion_with_an_empty_class_row():
    fig = confusion_figure(np.array([[5, 1, 0], [0, 0, 0], [1, 0, 3]]), ["normal", "benign", "malignant"], "t")
    assert "0\n—" in {t.get_text() for t in fig.axes[0].texts}
    with pytest.raises(ValueError, match="labels"):
        confusion_figure(np.eye(3, dtype=int), ["a", "b"], "t")


@pytest.mark.parametrize("seeds, per_seed, lines", [(None, False, 2), (3, False, 2), (3, True, 6)])
def test_training_curves_have_two_labelled_panels(seeds, per_seed, lines):
    fig = training_curves_figure(history(seeds), "EfficientNetV2-B0, BUSI", per_seed=per_seed)
    loss_ax, accuracy_ax = fig.axes
    assert_axes_labelled(fig)
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel(), accuracy_ax.get_ylabel()) == ("Epoch", "Loss", "Accuracy")
    assert len([line for line in loss_ax.get_lines() if len(line.get_xdata())]) == lines
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "val"]


def test_training_curves_reject_a_history_without_epochs():
    with pytest.raises(ValueError, match="epoch"):
        training_curves_figure(history(None).drop(columns="epoch"), "t")


def test_heatmap_grid_overlays_and_outlines_lesions():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (60, 80), dtype=np.uint8), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8),
              rng.random((60, 80, 3))]
    heatmaps = [rng.random((7, 7)) for _ in images]
    mask = np.zeros((60, 80), dtype=bool)
    mask[20:40, 30:50] = True
    fig = heatmap_grid_figure(images, heatmaps, ["benign 1", "malignant 2", "benign 3"], [mask, None, mask], ncols=2)
    titles = [ax.get_title() for ax in fig.axes]
    assert {"benign 1", "malignant 2", "benign 3"} <= set(titles) and titles.count("heatmap") == 3
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_title() != "heatmap"}
    assert by_title["benign 1"].collections and not by_title["malignant 2"].collections  # mask contour or none
    assert fig.axes[-1].get_ylabel() == "Heatmap value (0–1)"


def test_heatmap_grid_rejects_inconsistent_input():
    image, heat = np.zeros((8, 8)), np.full((4, 4), 0.5)
    with pytest.raises(ValueError, match="heatmap 0"):
        heatmap_grid_figure([image], [heat * 3], ["x"])
    with pytest.raises(ValueError, match="2 titles"):
        heatmap_grid_figure([image], [heat], ["x", "y"])


def comparison_table() -> pd.DataFrame:
    return pd.DataFrame({"setting": ["ROI", "ROI", "no ROI", "no ROI"], "metric": ["accuracy", "f1_macro"] * 2,
                         "mean": [0.95, 0.94, 0.85, 0.84], "low": [0.92, 0.90, 0.80, 0.80],
                         "high": [0.98, 0.97, 0.90, 0.88], "paper": [0.9897, 0.9882, 0.866, np.nan]})


def test_bar_figure_draws_our_intervals_and_paper_markers():
    fig = bar_figure(comparison_table(), "setting", "mean", "metric", "BUSI", "low", "high", "paper", percent=True,
                     ylabel="Score")
    ax = fig.axes[0]
    assert_axes_labelled(fig)
    assert ax.get_ylabel() == "Score"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(legend) == {"accuracy", "f1_macro", "paper"}
    paper_points = np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    assert sorted(paper_points[:, 1]) == pytest.approx([0.866, 0.9882, 0.9897])
    assert len(ax.patches) == 4
    with pytest.raises(ValueError, match="several rows"):
        bar_figure(pd.concat([comparison_table()] * 2), "setting", "mean", "metric", "t")


def test_line_figure_for_a_dataset_size_study():
    sizes = [158, 316, 497, 633]
    df = pd.DataFrame({"images": sizes * 2, "learning_rate": ["0.0001"] * 4 + ["0.001"] * 4,
                       "mean": [0.6, 0.7, 0.78, 0.8, 0.55, 0.6, 0.7, 0.75],
                       "paper": [np.nan, np.nan, np.nan, 0.84, np.nan, np.nan, np.nan, 0.81]})
    df["low"], df["high"] = df["mean"] - 0.05, df["mean"] + 0.05
    fig = line_figure(df, "images", "mean", "learning_rate", "Size study", "low", "high", "paper",
                      xlabel="Training images", ylabel="Malignant recall")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Training images", "Malignant recall")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0.0001", "0.001", "paper"]
    assert list(ax.get_lines()[0].get_xdata()) == sizes


def test_saved_png_is_byte_identical_and_free_of_metadata(tmp_path):
    def build():
        return confusion_figure(np.array([[65, 1], [0, 31]]), ["benign", "malignant"], "BUSI")

    fig = build()
    first, second = save(fig, tmp_path / "a.png"), save(fig, tmp_path / "sub" / "b.png")
    third = save(build(), tmp_path / "c.png")
    data = first.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data == second.read_bytes() == third.read_bytes()
    assert b"matplotlib" not in data.lower() and b"Software" not in data


def test_figures_stay_out_of_pyplot():
    plt.close("all")
    confusion_figure(np.eye(2, dtype=int), ["a", "b"], "t")
    training_curves_figure(history(None), "t")
    assert plt.get_fignums() == []
