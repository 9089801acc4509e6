"""Training cost of hand-made runs, and its comparison with a paper's timing bound."""

from __future__ import annotations

import pytest

from oncorepro import training_cost
from oncorepro.report import PaperValue

LABELS = [0, 0, 1, 1, 1, 2, 2, 2, 2]


def test_training_cost_adds_one_base_pass_per_training_image(make_run):
    cost = training_cost.training_cost([make_run("A", 0, LABELS, LABELS, train_images=500)])
    assert cost.loc["A", "feature_seconds"] == pytest.approx(500 * 0.02)
    assert cost.loc["A", "total_seconds"] == pytest.approx(500 * 0.02 + 2.0)
    assert cost.loc["A", "runs"] == 1 and cost.loc["A", "epochs_run"] == 10


def test_cost_versus_paper_takes_the_slowest_setting(make_run):
    runs = [make_run("small", 0, LABELS, LABELS, train_images=100), make_run("large", 0, LABELS, LABELS)]
    paper = [PaperValue("p", "Text", "all models", "train_seconds", 60, relation="<")]
    table = training_cost.cost_versus_paper(runs, paper, "all models")
    row = table.iloc[0]
    assert row["ours from"] == "large" and row["ours"] == "14.00 s" and row["paper"] == "<60.00 s"
    assert row["verdict"] == "reference only"
    assert training_cost.cost_versus_paper([], paper, "all models")["verdict"].tolist() == ["not run"]
