"""Paired augmentation: balanced copies with their source recorded, seeded transforms that move image and mask
together, noisy clinical rows, and the two orders (paper: augment then split; leakage-free: split then augment)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oncorepro.augment import augment_parts, balance_plan, leakage, noisy_rows, split_plan, transform_images

CASES = [f"case{i:03d}" for i in range(40)]
LABELS = np.array([0] * 24 + [1] * 12 + [2] * 4)  # BrEaST-like: benign, malignant, a rare normal class


def test_balance_plan_fills_every_class_with_copies_of_its_own_cases():
    plan = balance_plan(CASES, LABELS, seed=0)
    assert plan.groupby("label").size().tolist() == [24, 24, 24]
    assert plan["row"].is_unique
    source_label = dict(zip(CASES, LABELS))
    assert (plan["source"].map(source_label) == plan["label"]).all()
    copies = plan[plan["copy"] > 0]
    assert len(copies) == 32 and copies["transform"].isin(["rotate", "flip", "zoom", "shear"]).all()
    assert plan.equals(balance_plan(CASES, LABELS, seed=0))


def test_paper_order_puts_copies_of_training_cases_in_the_test_part():
    plan = split_plan(CASES, LABELS, order="before_split", seed=0)
    counted = leakage(plan)
    assert counted["test_rows"] == round(0.2 * 72 + 0.4)  # 72 balanced rows, 20% test
    assert counted["test_rows_from_train_cases"] > 0
    normal_test = plan[(plan["part"] == "test") & (plan["label"] == 2)]
    assert len(normal_test) == 5 and normal_test["source"].nunique() < 5  # 5 test rows from at most 4 cases


def test_leakage_free_order_keeps_every_case_in_one_part_and_tests_originals_only():
    plan = split_plan(CASES, LABELS, order="train_only", seed=0)
    assert leakage(plan)["test_rows_from_train_cases"] == 0
    parts_per_case = plan.groupby("source")["part"].nunique()
    assert (parts_per_case == 1).all()
    test = plan[plan["part"] == "test"]
    assert (test["copy"] == 0).all() and len(test) == 8
    assert plan[plan["part"] == "train"].groupby("label").size().nunique() == 1  # balanced training part


def test_noisy_rows_change_copies_only_and_keep_missing_values():
    table = pd.DataFrame({"age": np.linspace(30, 70, 40), "birads": np.r_[np.nan, np.arange(39.0) % 5]},
                         index=pd.Index(CASES, name="case_id"))
    plan = balance_plan(CASES, LABELS, seed=1)
    rows = noisy_rows(table, plan, seed=1)
    originals = plan.loc[plan["copy"] == 0, "row"]
    pd.testing.assert_frame_equal(rows.loc[originals], table.loc[originals])
    copies = plan[plan["copy"] > 0]
    shift = rows.loc[copies["row"], "age"].to_numpy() - table.loc[copies["source"], "age"].to_numpy()
    assert np.all(shift != 0) and np.all(np.abs(shift) < 5 * 0.05 * table["age"].std(ddof=0))
    case000 = copies.index[copies["source"] == "case000"]
    assert rows.loc[plan.loc[case000, "row"], "birads"].isna().all()
    pd.testing.assert_frame_equal(rows, noisy_rows(table, plan, seed=1))
    with pytest.raises(ValueError, match="without a clinical row"):
        noisy_rows(table.iloc[1:], plan, seed=1)


def test_transforms_move_mask_with_image_and_are_seeded():
    images = np.zeros((3, 32, 32, 3), np.uint8)
    images[:, 8:16, 2:10] = 200  # a bright lesion left of centre
    masks = images[..., 0] > 0
    out, out_masks = transform_images(images, masks, ["flip", "rotate", ""], seed=3)
    assert np.array_equal(out[0], images[0, :, ::-1]) and np.array_equal(out_masks[0], masks[0, :, ::-1])
    assert np.array_equal(out[2], images[2]) and np.array_equal(out_masks[2], masks[2])
    assert not np.array_equal(out[1], images[1])
    assert np.all(out[1][..., 0][out_masks[1]] > 0)  # the rotated mask still lies on the rotated lesion
    again, _ = transform_images(images, masks, ["flip", "rotate", ""], seed=3)
    assert np.array_equal(out, again)
    with pytest.raises(ValueError, match="unknown transform"):
        transform_images(images[:1], masks[:1], ["blur"], seed=0)


def test_runner_step_balances_train_only_or_resplits_augmented_rows():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8)
    masks = np.ones((40, 16, 16), bool)
    where = {"train": np.r_[0:17, 24:32, 36:38], "val": np.r_[17:20, 32:34, 38], "test": np.r_[20:24, 34:36, 39]}
    parts = {name: (images[i], masks[i], LABELS[i], [CASES[k] for k in i]) for name, i in where.items()}
    clean = augment_parts("train_only", parts, seed=0)
    assert np.bincount(clean["train"].labels).tolist() == [17, 17, 17]
    assert clean["test"].rows == parts["test"][3] and not set(clean["test"].sources) & set(clean["train"].sources)
    paper = augment_parts("before_split", parts, seed=0)
    assert sum(len(p.rows) for p in paper.values()) == 72
    assert set(paper["test"].sources) & set(paper["train"].sources)  # the paper's leak


def test_augment_fields_enter_the_run_key_only_when_used():
    from oncorepro.spec import RunSpec

    base = RunSpec(dataset="breast_lesions_usg", classes=("benign", "malignant", "normal"))
    assert "augment" not in base.key_fields() and "augment_to" not in base.key_fields()
    assert base.but(augment="none").key("d") == base.key("d")  # stored results of other chapters keep their keys
    assert base.but(augment="train_only").key("d") != base.key("d")
    assert base.but(augment="before_split", augment_to=154).key_fields()["augment_to"] == 154
    assert RunSpec.from_dict(base.but(augment="train_only").to_dict()).augment == "train_only"
