"""End to end on synthetic data: spec -> split -> preprocess -> train -> evaluate -> explain -> store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from oncorepro.data import load_dataset
from oncorepro.data.synthetic import synthetic_data_root
from oncorepro.profiles import Profile
from oncorepro.records import Record, read_image
from oncorepro.runner import _embed, external_dataset, external_name, make_split, mask_records, run_all
from oncorepro.spec import RunSpec

TINY = Profile(name="test", description="tiny", spec_overrides={"data": "synthetic", "image_size": 32, "epochs": 1,
                                                                    "batch_size": 8},
               seeds=(0,), synthetic_per_class=10, synthetic_size=48, explain_samples=2, bootstrap=50)
BUSI = RunSpec(dataset="busi", classes=("benign", "malignant"), roi=True, sampling="smote", label="busi tiny")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOREPRO_CACHE", str(tmp_path / "cache"))


def test_run_stores_a_complete_result_and_reuses_it():
    first = run_all([BUSI], profile=TINY, progress=False)[0].result
    assert set(first.metrics) == {"test", "test_unmasked"}  # ROI runs are also tested without masks
    test = first.metrics["test"]
    assert 0 <= test["accuracy"] <= 1 and "recall_macro" in test
    low, high = first.ci["test"]["accuracy"]
    assert low <= test["accuracy"] <= high
    assert first.history["epoch"].tolist() == [1] and "val_loss" in first.history
    # SMOTE: the training part is balanced
    counts = first.split_counts.set_index("label")
    assert first.timings["train_images"] == 2 * counts.loc[["benign", "malignant"], "train"].max()
    # every normal image is listed as excluded, with its reason
    assert sum("normal" in e["reason"] for e in first.exclusions) == 10
    assert len(first.predictions) == 2 * counts.loc["Total", "test"]
    assert set(first.explanations["evaluation"]) == {"test", "test_unmasked"}
    assert first.heatmaps and all(m.dtype == np.uint8 for m in first.heatmaps.values())
    assert first.provenance["weights_origin"].startswith("random") and first.provenance["data_digest"]["busi"]
    again = run_all([BUSI], profile=TINY, execute=False)[0]
    assert again.result is not None and again.key == first.key
    assert again.result.metrics == first.metrics


def test_pending_runs_are_reported_not_executed():
    outcome = run_all([BUSI.but(seed=5)], profile=TINY, execute=False)[0]
    assert outcome.result is None and len(outcome.key) == 16


def test_a_study_runs_its_seeds_or_the_seeds_a_call_names():
    from oncorepro.study import Study

    study = Study(profile=TINY, seeds=(0, 1, 2), run_missing=False)
    assert [o.spec.seed for o in study.run(BUSI)] == [0, 1, 2]
    assert [o.spec.seed for o in study.run(BUSI.but(label="once"), seeds=(0,))] == [0]
    assert {(o.spec.label, o.spec.seed) for o in study.runs} == {("busi tiny", 0), ("busi tiny", 1), ("busi tiny", 2),
                                                                 ("once", 0)}
    with pytest.raises(ValueError, match="no seeds"):
        study.run(BUSI, seeds=())


def test_frozen_teachable_machine_head_on_features():
    spec = RunSpec(dataset="busi", classes=("normal", "benign", "malignant"), model="mobilenetv2_035",
                   pretrained="teachable_machine", head="teachable_machine", freeze_backbone=True,
                   optimizer="adam", lr=1e-3, fractions=(0.85, 0.0, 0.15), label="tm")
    result = run_all([spec], profile=TINY, progress=False)[0].result
    assert "test_loss" in result.history  # no validation part: curves on the test part
    assert "Teachable Machine" in result.provenance["weights_origin"]
    assert {"accuracy", "recall_macro"} <= set(result.metrics["test"])


def test_mask_images_join_training_or_the_pool():
    root = synthetic_data_root(["busi"], n_per_class=10, size=48)
    records = load_dataset("busi", root).records
    base = RunSpec(dataset="busi", classes=("normal", "benign", "malignant"), fractions=(0.85, 0.0, 0.15))
    masks = mask_records(records)
    assert len(masks) == sum(len(r.mask_paths) for r in records)
    assert all(m.label == records[0].label for m in masks if m.meta["mask_of"] == records[0].id)
    assert all(m.mask_paths == (m.path,) for m in masks)
    assert np.array_equal(masks[0].mask(), read_image(masks[0].path, "L") > 0)  # its lesion is its white area
    train_only = make_split(base.but(mask_images="train"), records)
    assert not any("|" in r.id for r in train_only.test)
    assert sum("|" in r.id for r in train_only.train) == sum(len(r.mask_paths) for r in train_only.train if "|" not in r.id)
    pooled = make_split(base.but(mask_images="pooled"), records)
    assert any("|" in r.id for r in pooled.test)  # the leak a random split of the pooled folder makes


def test_no_validation_part_refuses_selection_on_the_test_set():
    spec = BUSI.but(fractions=(0.85, 0.0, 0.15), select="best_val", label="bad")
    with pytest.raises(ValueError, match="test set"):
        run_all([spec], profile=TINY, progress=False)


def test_roi_at_test_false_tests_on_unmasked_images():
    result = run_all([BUSI.but(roi_at_test=False)], profile=TINY, progress=False)[0].result
    assert set(result.metrics) == {"test"}  # the test part itself is unmasked: no separate unmasked evaluation


def test_embed_stores_the_trained_cnn_features_of_every_original_case():
    spec = BUSI.but(embed=True)
    result = run_all([spec], profile=TINY, progress=False)[0].result
    counts = result.split_counts.set_index("label").loc["Total"]
    table = result.embeddings
    assert table.groupby("part").size().to_dict() == {p: int(counts[p]) for p in ("train", "val", "test")}
    assert table["id"].is_unique and table.shape[1] == 2 + 1280  # EfficientNetV2-B0 pools 1280 channels
    predicted = result.predictions.groupby("evaluation")["id"].apply(set)
    assert predicted["test"] == set(table.loc[table["part"] == "test", "id"])
    assert predicted["train"] == set(table.loc[table["part"] == "train", "id"])  # in-sample, for paper-protocol fusion
    train_rows = result.predictions[result.predictions["evaluation"] == "train"]
    assert result.metrics["train"]["accuracy"] == pytest.approx((train_rows["pred"] == train_rows["label"]).mean())
    assert set(result.explanations["evaluation"]) == {"test", "test_unmasked"}  # no Grad-CAM over the training cases
    assert result.provenance["precision"] == "fp32"  # the profile's "auto" on a CPU
    stored = run_all([spec], profile=TINY, execute=False)[0].result.embeddings  # float16 on disk
    np.testing.assert_allclose(stored.filter(like="emb_").to_numpy(), table.filter(like="emb_").to_numpy(),
                               rtol=1e-2, atol=1e-3)
    assert run_all([BUSI], profile=TINY, execute=False)[0].key != run_all([spec], profile=TINY, execute=False)[0].key


def test_embed_refuses_copies_of_a_case_in_several_parts():
    with pytest.raises(ValueError, match="embed=True stores one embedding per case"):
        run_all([BUSI.but(embed=True, augment="before_split")], profile=TINY, progress=False)
    with pytest.raises(ValueError, match="sampling='undersample'"):
        run_all([BUSI.but(embed=True, sampling="undersample")], profile=TINY, progress=False)


def test_a_bf16_profile_trains_in_bf16_and_says_so():
    bf16 = replace(TINY, name="test-bf16", precision="bf16")
    result = run_all([BUSI.but(explain=False)], profile=bf16, progress=False)[0].result
    assert result.provenance["precision"] == "bf16" and np.isfinite(result.history["train_loss"]).all()
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        replace(TINY, precision="fp16")


def test_embed_rows_belong_to_their_ids():
    class MeanPixel(torch.nn.Module):  # "features": each image's mean pixel value
        def pooled_features(self, x):
            return x.mean(dim=(1, 2, 3))[:, None]

    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)])
    recs = [Record(dataset="busi", id=name, path=Path(name), label="benign") for name in ("a", "b", "c")]
    labels, masks = np.array([0, 1, 0]), np.zeros((3, 4, 4), bool)  # evaluation-shaped parts; _embed reads x and ids
    table = _embed(MeanPixel(), {"train": (images[:2], labels[:2], masks[:2], recs[:2]),
                                 "val": (images[:0], labels[:0], masks[:0], []),
                                 "test": (images[2:], labels[2:], masks[2:], recs[2:])}, BUSI, "cpu", "fp32")
    assert table[["id", "part"]].values.tolist() == [["a", "train"], ["b", "train"], ["c", "test"]]
    assert table["emb_0"].tolist() == [10.0, 20.0, 30.0]


def test_external_set_lists_its_exclusions_and_follows_roi_at_test(monkeypatch):
    import oncorepro.runner as runner

    masked_calls, original = [], runner._arrays

    def recording(records, spec, digest, roi, progress=False):
        masked_calls.append((records[0].dataset, roi))
        return original(records, spec, digest, roi)

    monkeypatch.setattr(runner, "_arrays", recording)
    spec = BUSI.but(external=("breast_lesions_usg",), roi_at_test=False, label="external")
    result = run_all([spec], profile=TINY, progress=False)[0].result
    assert "external:breast_lesions_usg" in result.metrics
    assert ("breast_lesions_usg", False) in masked_calls and ("busi", True) in masked_calls  # train masked only
    external = [e for e in result.exclusions if e["id"].startswith("external:breast_lesions_usg:")]
    root = TINY.data_root(["busi", "breast_lesions_usg"])
    normals = [r.id for r in load_dataset("breast_lesions_usg", root).records if r.label == "normal"]
    assert normals and sorted(e["id"].rsplit(":", 1)[1] for e in external) == sorted(normals)
    assert all(e["reason"] == "class 'normal' is not part of this run" for e in external)


def test_a_run_on_data_that_fails_its_checksums_is_refused(tmp_path):
    import shutil

    from oncorepro.errors import DataError

    source = TINY.data_root(["busi"]) / "busi"
    shutil.copytree(source, tmp_path / "busi")
    image = sorted((tmp_path / "busi").rglob("benign (1).png"))[0]
    image.write_bytes(image.read_bytes()[:-8] + b"tampered")
    real = Profile(name="test-real", description="tiny, real layout", seeds=(0,), bootstrap=20, explain_samples=2,
                   spec_overrides={"data": "real", "image_size": 32, "epochs": 1, "batch_size": 8})
    with pytest.raises(DataError, match=r"benign \(1\)\.png: checksum differs"):
        run_all([BUSI.but(label="tampered")], profile=real, data_root=tmp_path, progress=False)


def test_heatmap_grids_redraw_mask_pictures_and_external_images():
    from matplotlib.figure import Figure

    from oncorepro import views
    from oncorepro.study import Study

    study = Study(profile=TINY)
    spec = BUSI.but(mask_images="pooled", external=("breast_lesions_usg",), label="pooled")
    runs = study.run(spec)
    keys = list(runs[0].result.heatmaps)
    assert any(key.startswith("external:") for key in keys)
    assert any(key.startswith("test|") and key.count("|") == 2 for key in keys)  # a mask picture: "test|<id>|<stem>"
    assert isinstance(views.heatmaps(runs, "pooled", study), Figure)
    assert isinstance(views.heatmaps(runs, "pooled", study, evaluation="external:breast_lesions_usg"), Figure)


def test_class_weights_weigh_the_loss_and_are_recorded():
    result = run_all([BUSI.but(sampling="class_weights", roi=False, label="weighted")], profile=TINY,
                     progress=False)[0].result
    counts = result.split_counts.set_index("label").loc[["benign", "malignant"], "train"]
    weights = result.provenance["class_weights"]
    assert result.timings["train_images"] == counts.sum()  # no image is added or removed
    assert weights["benign"] == pytest.approx(counts.sum() / (2 * counts["benign"]))
    assert weights["malignant"] == pytest.approx(counts.sum() / (2 * counts["malignant"]))
    with pytest.raises(ValueError, match="choose none, smote, undersample or class_weights"):
        run_all([BUSI.but(sampling="oversample", label="bad")], profile=TINY, progress=False)


def test_smoothgrad_runs_beside_grad_cam_on_the_test_part_and_is_shown_per_method():
    from matplotlib.figure import Figure

    from oncorepro import views
    from oncorepro.study import Study

    study = Study(profile=TINY)
    plain, both = study.run(BUSI.but(label="plain"), BUSI.but(smoothgrad=True, label="both"))
    assert plain.key != both.key and "method" not in plain.result.explanations
    explained = both.result.explanations
    assert set(explained.loc[explained["evaluation"] == "test", "method"]) == {"Grad-CAM", "SmoothGrad"}
    assert explained.loc[explained["evaluation"] == "test_unmasked", "method"].isna().all()  # Grad-CAM only
    grad_cam = explained[(explained["evaluation"] == "test") & (explained["method"] == "Grad-CAM")]
    assert grad_cam.drop(columns="method").reset_index(drop=True).equals(
        plain.result.explanations[plain.result.explanations["evaluation"] == "test"].reset_index(drop=True))
    assert set(both.result.sanity["method"]) == {"Grad-CAM", "SmoothGrad"}
    grad_cam_checks = both.result.sanity[both.result.sanity["method"] == "Grad-CAM"].drop(columns="method")
    assert grad_cam_checks.reset_index(drop=True).equals(plain.result.sanity.reset_index(drop=True))
    assert {k: v.tobytes() for k, v in both.result.heatmaps.items() if not k.startswith("SmoothGrad:")} == {
        k: v.tobytes() for k, v in plain.result.heatmaps.items()}  # Grad-CAM's maps as without SmoothGrad
    assert any(key.startswith("SmoothGrad:test|") for key in both.result.heatmaps)
    table = views.explanation_table([plain, both])
    assert ("both", "test", "SmoothGrad") in table.index and ("plain", "test", "Grad-CAM") in table.index
    assert ("both", "test_unmasked", "Grad-CAM") in table.index
    checks = views.randomisation_table([both])
    assert {m for _, m, _ in checks.index} == {"Grad-CAM", "SmoothGrad"}
    assert isinstance(views.heatmaps([both], "both", study, method="SmoothGrad"), Figure)
    with pytest.raises(ValueError, match=r"stored no SmoothGrad maps of evaluation 'test_unmasked'.*SmoothGrad:test"):
        views.heatmaps([both], "both", study, evaluation="test_unmasked", method="SmoothGrad")
    with pytest.raises(ValueError, match="needs explain=True"):
        run_all([BUSI.but(smoothgrad=True, explain=False, label="nothing to explain")], profile=TINY, progress=False)


def test_external_names_read_back_as_dataset_and_record():
    assert external_dataset(external_name("breast_lesions_usg")) == ("breast_lesions_usg", "")
    record = "/data/case 1:a.png"  # an excluded file's path may hold the separator itself
    assert external_dataset(external_name("breast_lesions_usg", record)) == ("breast_lesions_usg", record)
    assert external_dataset("test_unmasked") is None and external_dataset("benign (1)") is None
