"""Paired augmentation for class balance (Aboulmira et al. 2025, Section III-C): every added row is a copy of
one case, its image transformed and its clinical row given Gaussian noise, recorded with the case it derives
from so that leakage across a split can be counted.

Two orders:

- ``before_split`` (the paper's, as its numbers imply): balance all cases, then split the rows; a test row can
  be a copy of a training case (the paper's 31 "normal" test images come from 4 normal scans);
- ``train_only`` (leakage-free): split the cases first, then balance the training part only; the test part
  holds original cases only.

Image transforms (``TRANSFORMS``; the paper lists rotations, flipping, zooming and shear without settings, the
settings are ours), torchvision.transforms.v2 on uint8 (H, W, 3) arrays, applied to the image and its lesion
mask together so the mask stays on the lesion:

- ``rotate``: RandomRotation(+-20 degrees);
- ``flip``: RandomHorizontalFlip(p=1);
- ``zoom``: RandomAffine(scale 1.1-1.3);
- ``shear``: RandomAffine(shear +-15 degrees).

Each copy gets one transform, drawn uniformly under the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torchvision import tv_tensors
from torchvision.transforms import v2

ORDERS = ("none", "before_split", "train_only")
TRANSFORMS: dict[str, v2.Transform] = {
    "rotate": v2.RandomRotation(20),
    "flip": v2.RandomHorizontalFlip(p=1.0),
    "zoom": v2.RandomAffine(degrees=0, scale=(1.1, 1.3)),
    "shear": v2.RandomAffine(degrees=0, shear=15),
}
NOISE = 0.05  # Gaussian noise sd as a fraction of each column's sd (the paper gives no scale)


def balance_plan(cases: Sequence[str], labels: Sequence[int], *, seed: int, target: int | None = None,
                 transforms: Sequence[str] = tuple(TRANSFORMS)) -> pd.DataFrame:
    """Rows that fill every class up to ``target`` (default: the largest class's count) with copies of its
    own cases, drawn with replacement. One row per output row: row (its name: the case, or "<case>|aug<k>"),
    source (the case it derives from), label, copy (0 original, k > 0 the k-th copy), transform ("" for
    originals)."""
    cases, labels = np.asarray(cases, dtype=object), np.asarray(labels)
    if len(cases) != len(labels):
        raise ValueError(f"{len(cases)} cases for {len(labels)} labels")
    if len(set(cases)) != len(cases):
        raise ValueError("cases must be unique: one row per case")
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown or not transforms:
        raise ValueError(f"unknown transform(s) {unknown}; choose from {', '.join(TRANSFORMS)}")
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    goal = int(counts.max() if target is None else target)
    rows = [{"row": c, "source": c, "label": int(y), "copy": 0, "transform": ""} for c, y in zip(cases, labels)]
    made: dict[str, int] = {}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        for pick in rng.choice(members, size=max(0, goal - len(members)), replace=True):
            case = cases[pick]
            made[case] = made.get(case, 0) + 1
            rows.append({"row": f"{case}|aug{made[case]}", "source": case, "label": int(label),
                         "copy": made[case], "transform": str(rng.choice(list(transforms)))})
    return pd.DataFrame(rows)


def split_plan(cases: Sequence[str], labels: Sequence[int], *, order: str, seed: int, test_size: float = 0.2,
               target: int | None = None) -> pd.DataFrame:
    """:func:`balance_plan` rows with a ``part`` column ("train" / "test"), in the given order: "none" (split
    the cases, no copies), "before_split" (balance, then a stratified split of all rows) or "train_only"
    (stratified split of the cases, then balance the training part)."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    labels = np.asarray(labels)
    if order == "before_split":
        plan = balance_plan(cases, labels, seed=seed, target=target)
        train, _ = train_test_split(np.arange(len(plan)), test_size=test_size, stratify=plan["label"],
                                    random_state=seed)
        plan["part"] = np.where(np.isin(np.arange(len(plan)), train), "train", "test")
        return plan
    train, test = train_test_split(np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed)
    cases = np.asarray(cases, dtype=object)
    if order == "none":
        plan = balance_plan(cases, labels, seed=seed, target=0)
    else:
        plan = balance_plan(cases[train], labels[train], seed=seed, target=target)
        plan = pd.concat([plan, balance_plan(cases[test], labels[test], seed=seed, target=0)], ignore_index=True)
    plan["part"] = np.where(plan["source"].isin(set(cases[train])), "train", "test")
    return plan


def leakage(plan: pd.DataFrame) -> dict[str, int]:
    """How many test rows derive from a case that also has a row in the training part, and from how many
    distinct cases the test rows come."""
    train_cases = set(plan.loc[plan["part"] == "train", "source"])
    test = plan[plan["part"] == "test"]
    return {"test_rows": len(test), "test_cases": int(test["source"].nunique()),
            "test_rows_from_train_cases": int(test["source"].isin(train_cases).sum())}


def noisy_rows(table: pd.DataFrame, plan: pd.DataFrame, *, seed: int, noise: float = NOISE) -> pd.DataFrame:
    """The clinical rows of ``plan`` (index: plan's row names): each copy is its source case's row plus
    Gaussian noise of ``noise`` x the column's standard deviation over the original cases; originals unchanged;
    missing values stay missing."""
    missing = sorted(set(plan["source"]) - set(table.index))
    if missing:
        raise ValueError(f"plan names cases without a clinical row: {missing[:5]}")
    values = table.loc[plan["source"]].to_numpy(dtype=float, copy=True)
    scale = noise * np.nan_to_num(np.nanstd(table.to_numpy(dtype=float), axis=0))
    copies = plan["copy"].to_numpy() > 0
    rng = np.random.default_rng(seed)
    values[copies] += rng.normal(size=(int(copies.sum()), values.shape[1])) * scale
    return pd.DataFrame(values, index=pd.Index(plan["row"], name=table.index.name), columns=table.columns)


def transform_images(images: np.ndarray, masks: np.ndarray | None, transforms: Sequence[str], *,
                     seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one named transform per image (uint8 (N, H, W, 3); "" leaves it unchanged) with its mask (bool
    (N, H, W) or None), seeded per call; the global torch RNG is left as it was."""
    if len(images) != len(transforms):
        raise ValueError(f"{len(images)} images for {len(transforms)} transforms")
    out_images = images.copy()
    out_masks = None if masks is None else masks.copy()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, name in enumerate(transforms):
            if not name:
                continue
            if name not in TRANSFORMS:
                raise ValueError(f"unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")
            image = tv_tensors.Image(torch.from_numpy(images[i]).permute(2, 0, 1))
            mask = tv_tensors.Mask(torch.from_numpy(masks[i])[None]) if masks is not None else None
            result = TRANSFORMS[name](image, mask) if mask is not None else (TRANSFORMS[name](image), None)
            out_images[i] = result[0].permute(1, 2, 0).numpy()
            if out_masks is not None:
                out_masks[i] = result[1][0].numpy()
    return out_images, out_masks


@dataclass
class AugmentedPart:
    """One part of an augmented split for the image runner: arrays, labels and the row names (copies are
    named "<case>|aug<k>"), with the source case of each row."""

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    rows: list[str]
    sources: list[str]


def augment_parts(order: str, parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]], *,
                  seed: int, target: int | None = None,
                  fractions: tuple[float, ...] = (0.7, 0.15, 0.15)) -> dict[str, AugmentedPart]:
    """The runner's augmentation step on already split and preprocessed parts {"train"|"val"|"test": (images,
    masks, labels, case ids)}: "train_only" balances the training part; "before_split" pools all parts,
    balances them and re-splits the rows stratified by class in ``fractions`` (the paper's order)."""
    if order not in ORDERS[1:]:
        raise ValueError(f"unknown augmentation order {order!r}; choose before_split or train_only")
    names = [n for n in ("train", "val", "test") if n in parts and len(parts[n][2])]
    if order == "train_only":
        out = {n: AugmentedPart(*parts[n][:3], list(parts[n][3]), list(parts[n][3])) for n in parts}
        out["train"] = _materialise(*parts["train"], seed=seed, target=target)
        return out
    pooled = [np.concatenate([parts[n][i] for n in names]) for i in range(3)]
    pooled_ids = [case for n in names for case in parts[n][3]]
    everything = _materialise(*pooled, pooled_ids, seed=seed, target=target)
    index = np.arange(len(everything.labels))
    val_share, test_share = fractions[1], fractions[2]
    rest, test = train_test_split(index, test_size=test_share, stratify=everything.labels, random_state=seed)
    chosen = {"test": test}
    if "val" in names and val_share > 0:
        train, val = train_test_split(rest, test_size=val_share / (1 - test_share),
                                      stratify=everything.labels[rest], random_state=seed)
        chosen.update(train=train, val=val)
    else:
        chosen["train"] = rest
    return {n: AugmentedPart(everything.images[i], everything.masks[i], everything.labels[i],
                             [everything.rows[k] for k in i], [everything.sources[k] for k in i])
            for n, i in chosen.items()}


def _materialise(images: np.ndarray, masks: np.ndarray, labels: np.ndarray, cases: Sequence[str], *, seed: int,
                 target: int | None) -> AugmentedPart:
    plan = balance_plan(list(cases), labels, seed=seed, target=target)
    position = {case: i for i, case in enumerate(cases)}
    take = plan["source"].map(position).to_numpy()
    new_images, new_masks = transform_images(images[take], masks[take], list(plan["transform"]), seed=seed)
    return AugmentedPart(new_images, new_masks, plan["label"].to_numpy(), list(plan["row"]), list(plan["source"]))
