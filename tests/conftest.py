"""Hand-made finished runs of a three-class study, for the tests of the tables built on a study's runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from oncorepro.metrics import classification_metrics
from oncorepro.results import Result
from oncorepro.runner import RunOutcome
from oncorepro.spec import RunSpec

CLASSES = ("normal", "benign", "malignant")


@pytest.fixture
def curve_history() -> pd.DataFrame:
    """Ten epochs: the test loss falls to a 0.40 plateau, the test accuracy rises to 0.90 (0.91 at epoch 8)."""
    return pd.DataFrame({"epoch": np.arange(1, 11), "train_loss": np.linspace(1.0, 0.1, 10),
                         "train_accuracy": np.linspace(0.6, 0.99, 10),
                         "test_loss": [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.41, 0.40, 0.40, 0.40],
                         "test_accuracy": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.9, 0.91, 0.9, 0.9], "seconds": 0.01})


def _predictions(labels: list[int], predicted: list[int], ids: list[str] | None) -> pd.DataFrame:
    proba = np.full((len(labels), len(CLASSES)), 0.1)
    proba[np.arange(len(labels)), predicted] = 0.8
    table = pd.DataFrame({"evaluation": "test", "id": ids or [f"img{i}" for i in range(len(labels))],
                          "label": labels, "pred": predicted})
    for k, name in enumerate(CLASSES):
        table[f"p_{name}"] = proba[:, k]
    return table


@pytest.fixture
def make_run(curve_history: pd.DataFrame) -> Callable[..., RunOutcome]:
    """A factory of finished runs whose metrics come from real predictions (class indices ``labels`` predicted
    as ``predicted``); ``stored_label`` is the label its stored result carries (a run shared with another setting
    keeps the first setting's label in the store). Test split: 2 normal, 3 benign, 4 malignant."""

    def make(label: str, seed: int, labels: list[int], predicted: list[int], *, ids: list[str] | None = None,
             history: pd.DataFrame = curve_history, stored_label: str | None = None, train_images: int = 600,
             ci: dict[str, dict[str, list[float]]] | None = None, **spec_changes) -> RunOutcome:
        spec = RunSpec(dataset="busi", classes=CLASSES, seed=seed, label=label, **spec_changes)
        predictions = _predictions(labels, predicted, ids)
        proba = predictions[[f"p_{c}" for c in CLASSES]].to_numpy()
        metrics = classification_metrics(np.array(labels), proba, positive=None, labels=CLASSES)
        result = Result(spec=spec.but(label=stored_label or label), key=f"{label}-{seed}", metrics={"test": metrics},
                        ci=ci or {}, confusion={}, provenance={}, history=history, predictions=predictions,
                        timings={"train_seconds": 2.0, "inference_seconds_per_image": 0.02,
                                 "train_images": train_images, "epochs_run": int(history["epoch"].max())},
                        split_counts=pd.DataFrame({"label": [*CLASSES, "Total"], "train": [1, 1, 1, 3],
                                                   "val": 0, "test": [2, 3, 4, 9], "total": [3, 4, 5, 12]}))
        return RunOutcome(spec, result.key, result)

    return make
