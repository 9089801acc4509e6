"""Run-spec keys and the results store."""

from __future__ import annotations

import numpy as np
import pandas as pd

from oncorepro.profiles import PROFILES
from oncorepro.results import Result, ResultStore
from oncorepro.spec import RunSpec

BASE = RunSpec(dataset="busi", classes=("benign", "malignant"), roi=True, sampling="smote", label="main")


def test_key_depends_on_what_decides_a_result_only():
    assert BASE.key("d1") == BASE.but(label="another name").key("d1")
    assert BASE.key("d1") != BASE.but(seed=1).key("d1")
    assert BASE.key("d1") != BASE.key("d2")  # changed data checksums miss the store
    assert BASE.key("d1") != BASE.but(epochs=21).key("d1")
    assert RunSpec.from_dict(BASE.to_dict()) == BASE


def test_profiles_are_overrides():
    smoke = PROFILES["smoke"].apply(BASE)
    assert (smoke.data, smoke.profile, smoke.image_size, smoke.epochs) == ("synthetic", "smoke", 48, 2)
    full = PROFILES["full"].apply(BASE)
    assert (full.data, full.image_size, full.epochs, full.batch_size) == ("real", 299, 22, 32)


def test_store_round_trip(tmp_path):
    result = Result(
        spec=BASE, key=BASE.key("d"), metrics={"test": {"accuracy": 0.9, "roc_auc": float("nan")}},
        ci={"test": {"accuracy": [0.8, 0.95]}}, confusion={"test": [[5, 1], [0, 4]]},
        timings={"train_seconds": 1.5}, provenance={"device": "CPU"},
        exclusions=[{"id": "normal (1)", "reason": "class 'normal' is not part of this run"}],
        history=pd.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.5]}),
        predictions=pd.DataFrame({"evaluation": ["test"], "id": ["007"], "label": [1], "pred": [1], "p_malignant": [0.8]}),
        heatmaps={"test|train/Healthy/H_1": np.full((4, 4), 200, np.uint8)})
    store = ResultStore(tmp_path)
    assert not store.has(result.key)
    store.save(result)
    loaded = store.load(result.key)
    assert store.has(result.key) and loaded.spec == BASE
    assert loaded.metrics["test"]["accuracy"] == 0.9 and np.isnan(loaded.metrics["test"]["roc_auc"])
    assert loaded.predictions["id"].tolist() == ["007"]  # ids stay strings
    np.testing.assert_array_equal(loaded.heatmaps["test|train/Healthy/H_1"], result.heatmaps["test|train/Healthy/H_1"])
    pd.testing.assert_frame_equal(loaded.history, result.history)
    store.save(result)  # saving again replaces the stored copy, and leaves no temporary folder behind
    assert store.load(result.key).metrics == loaded.metrics
    assert [p.name for p in tmp_path.iterdir()] == [result.key]
