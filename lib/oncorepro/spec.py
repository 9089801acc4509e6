"""The run spec: everything that decides a result. Its hash keys the results store."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

SPEC_VERSION = 1  # bump when the meaning of a field or the pipeline behind it changes: old results then miss


@dataclass(frozen=True)
class RunSpec:
    """One training-and-evaluation run. Field defaults follow chapter 1's paper (EfficientNetV2-B0, 299 px, Nadam
    1e-4, 22 epochs, batch 32, 70/15/15 split); a setting names its own ROI, sampling and external sets."""

    dataset: str
    classes: tuple[str, ...]
    model: str = "tf_efficientnetv2_b0"
    pretrained: str | bool = False
    head: str = "linear"  # linear (GAP + Dense) | teachable_machine (Dense(100, relu) + Dense(K, no bias))
    freeze_backbone: bool = False  # train the head only, on features extracted once
    image_size: int = 299
    roi: bool = False  # multiply each training image by its lesion mask
    roi_at_test: bool = True  # the test (and validation) images get their mask too: the paper's protocol
    sampling: str = "none"  # none | smote | undersample | class_weights (loss weights), training part only
    sampling_target: int | None = None  # undersample: cap per class (None: down to the smallest class)
    mask_images: str = "none"  # none | train (mask files added as training images of their class) | pooled
    train_fraction: float = 1.0  # stratified subset of the training part (dataset-size studies)
    split: str = "stratified"  # stratified | grouped | source
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    optimizer: str = "nadam"
    lr: float = 1e-4
    epochs: int = 22
    batch_size: int = 32
    early_stopping: int | None = None  # patience in epochs on validation loss; None trains all epochs
    select: str = "last"  # evaluate the last epoch's weights (Keras fit) or "best_val"
    explain: bool = True  # Grad-CAM scores and stored heatmaps of every held-out evaluation; randomisation check on test
    external: tuple[str, ...] = ()  # other datasets the trained model is also tested on (same class names)
    seed: int = 0  # seeds the split, sampling, initialisation and batch order
    data: str = "real"  # real | synthetic
    profile: str = "full"
    label: str = ""  # the setting's name in tables ("BUSI, ROI, SMOTE"); not part of the key
    # Fields added later: they enter the key only when not at their default, so earlier results keep their keys.
    augment: str = "none"  # none | before_split (paired augmentation, then split) | train_only (oncorepro.augment)
    augment_to: int | None = None  # augment: rows per class after balancing (None: the largest class's count)
    embed: bool = False  # store the CNN's pooled features of every original case, and its in-sample "train" scores
    smoothgrad: bool = False  # also SmoothGrad (captum) on the test part: scores, maps and the randomisation check

    def key_fields(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields.pop("label")
        for name, default in LATE_FIELDS.items():
            if fields[name] == default:
                fields.pop(name)
        return fields

    def key(self, data_digest: str) -> str:
        """Hash of the spec, the data's checksum digest and the spec version: the results-store key."""
        payload = json.dumps({"spec": self.key_fields(), "data": data_digest, "version": SPEC_VERSION},
                             sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunSpec:
        values = dict(values)
        values["classes"] = tuple(values["classes"])
        values["fractions"] = tuple(values["fractions"])
        values["external"] = tuple(values.get("external", ()))
        return cls(**values)

    def but(self, **changes: Any) -> RunSpec:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


# field -> default: a late field at its default is left out of the key
LATE_FIELDS: dict[str, Any] = {"augment": "none", "augment_to": None, "embed": False, "smoothgrad": False}
