"""The dataset-size study on hand-made runs of two configurations on two training subsets."""

from __future__ import annotations

import pytest

from oncorepro import dataset_size
from oncorepro.report import PaperValue

LABELS = [0, 0, 1, 1, 1, 2, 2, 2, 2]


@pytest.fixture
def size_runs(make_run):
    """Seed 0 misses one of four malignant cases, seed 1 none; 600 training images in all, 300 in the half."""
    return [make_run(f"lr {lr} on {f}", seed, LABELS, [0, 0, 1, 1, 1, 2, 2, 2, 2 if seed else 1], lr=lr,
                     train_fraction=f, train_images=int(600 * f))
            for lr in (1e-3, 1e-4) for f in (1.0, 0.5) for seed in (0, 1)]


def test_size_study_groups_configurations_and_fractions(size_runs):
    table = dataset_size.size_study(size_runs, "class_accuracy/malignant")
    assert table["configuration"].tolist() == [f"lr {lr}, batch 32, 22 epochs" for lr in ("0.0001", "0.001")
                                               for _ in range(2)]
    assert table["train_fraction"].tolist() == [0.5, 1.0, 0.5, 1.0] and set(table["n"]) == {2}
    assert table["mean"].tolist() == pytest.approx([0.875] * 4)
    assert table["high"].max() == 1.0  # the t-interval of two seeds, clipped to a score's [0, 1]
    assert table["train_images"].tolist() == [300, 600, 300, 600]
    wide = dataset_size.size_table(size_runs, "class_accuracy/malignant")
    assert list(wide.index) == ["100% (600 images)", "50% (300 images)"] and "best (by mean)" in wide.columns
    assert dataset_size.size_study([], "accuracy").empty


def test_subsets_versus_paper_names_the_subsets_by_percent(size_runs):
    paper = [PaperValue("p", "Table 3", "BUSI 50% subset / all / total", "count", 390),
             PaperValue("p", "Table 3", "BUSI 100% subset / all / total", "count", 600)]
    table = dataset_size.subsets_versus_paper(size_runs, paper, "BUSI {percent}% subset / all / total")
    assert table["ours"].tolist() == ["300", "600"]
    assert table["verdict"].tolist() == ["paper higher", "reproduced"]
