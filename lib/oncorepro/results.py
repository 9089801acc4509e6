"""The result of a run and the store that keeps results keyed by run-spec hash (small enough to commit)."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .spec import RunSpec

TABLES = ("history", "predictions", "explanations", "sanity", "split_counts")


@dataclass
class Result:
    """What one run produced.

    ``metrics`` maps an evaluation name ("test", "test_unmasked", "external:<dataset>", and for ``embed=True``
    runs "train": the training cases in-sample) to metric values;
    ``ci`` maps the same names to {metric: [low, high]} bootstrap 95% intervals. ``predictions`` holds one row
    per evaluated image (evaluation, id, label, pred, p_<class>...). ``explanations`` (heat-in-lesion scores per
    image) and ``sanity`` (the model-randomisation check) are Grad-CAM's, with a ``method`` column where the run
    also made SmoothGrad maps (``smoothgrad=True``; rows of the evaluations without SmoothGrad then have none).
    ``heatmaps`` holds a few stored maps, keyed "<evaluation>|<id>" (Grad-CAM) or "<method>:<evaluation>|<id>"
    (:func:`oncorepro.runner.heatmap_key`).
    ``embeddings`` (runs with ``embed=True``) holds the trained CNN's pooled features of every original image:
    id, part (train/val/test), emb_0 ... (stored as float16).
    """

    spec: RunSpec
    key: str
    metrics: dict[str, dict[str, float]]
    ci: dict[str, dict[str, list[float]]]
    confusion: dict[str, list[list[int]]]
    timings: dict[str, float]
    provenance: dict[str, Any]
    exclusions: list[dict[str, str]] = field(default_factory=list)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    explanations: pd.DataFrame = field(default_factory=pd.DataFrame)
    sanity: pd.DataFrame = field(default_factory=pd.DataFrame)  # model-randomisation check
    split_counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # key -> uint8 (h, w) map
    embeddings: pd.DataFrame = field(default_factory=pd.DataFrame)

    def metric(self, name: str, evaluation: str = "test") -> float:
        """One metric value of one evaluation."""
        return self.metrics[evaluation][name]

    def evaluated(self, evaluation: str = "test") -> tuple[pd.DataFrame, np.ndarray]:
        """The prediction rows of one evaluation and their class probabilities (n x K, in the spec's class order)."""
        table = self.predictions[self.predictions["evaluation"] == evaluation]
        return table, table[[f"p_{name}" for name in self.spec.classes]].to_numpy(float)


def embedding_table(ids: Sequence[str], parts: Sequence[str], vectors: np.ndarray) -> pd.DataFrame:
    """The ``Result.embeddings`` layout: id, part, emb_0 ... emb_{F-1}."""
    table = pd.DataFrame(vectors, columns=[f"emb_{k}" for k in range(vectors.shape[1])])
    table.insert(0, "part", list(parts))
    table.insert(0, "id", list(ids))
    return table


class ResultStore:
    """A folder of results, one sub-folder per run key: result.json, CSV tables, heatmaps.npz, embeddings.npz."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def has(self, key: str) -> bool:
        return (self.path(key) / "result.json").exists()

    def save(self, result: Result) -> Path:
        folder = self.path(result.key)
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{result.key}.", dir=self.root))  # unique per writer
        document = {
            "spec": result.spec.to_dict(), "key": result.key, "metrics": result.metrics, "ci": result.ci,
            "confusion": result.confusion, "timings": result.timings, "provenance": result.provenance,
            "exclusions": result.exclusions,
        }
        (temporary / "result.json").write_text(json.dumps(document, indent=1, sort_keys=True, default=_plain))
        for name in TABLES:
            table: pd.DataFrame = getattr(result, name)
            if not table.empty:
                table.to_csv(temporary / f"{name}.csv", index=False, float_format="%.6g")
        if result.heatmaps:
            np.savez_compressed(temporary / "heatmaps.npz", ids=np.array(list(result.heatmaps)),
                                maps=np.stack(list(result.heatmaps.values())))
        if not result.embeddings.empty:
            vectors = result.embeddings.drop(columns=["id", "part"]).to_numpy(np.float16)
            if not np.isfinite(vectors).all():
                raise ValueError(f"run {result.key}: embeddings beyond float16's range (|x| > 65504) cannot be stored")
            np.savez_compressed(temporary / "embeddings.npz", ids=result.embeddings["id"].to_numpy(str),
                                parts=result.embeddings["part"].to_numpy(str), vectors=vectors)
        if folder.exists():  # replace an older copy only once the new one is complete
            retired = Path(tempfile.mkdtemp(prefix=f".{result.key}.old.", dir=self.root))
            folder.rename(retired / "result")
            temporary.rename(folder)
            shutil.rmtree(retired)
        else:
            temporary.rename(folder)
        return folder

    def load(self, key: str) -> Result:
        folder = self.path(key)
        document = json.loads((folder / "result.json").read_text())
        tables = {name: pd.read_csv(folder / f"{name}.csv", dtype={"id": str, "label": str} if name == "split_counts"
                                    else {"id": str}) if (folder / f"{name}.csv").exists()
                  else pd.DataFrame() for name in TABLES}
        heatmaps = {}
        if (folder / "heatmaps.npz").exists():
            with np.load(folder / "heatmaps.npz") as stored:
                heatmaps = dict(zip(stored["ids"].tolist(), stored["maps"]))
        embeddings = pd.DataFrame()
        if (folder / "embeddings.npz").exists():
            with np.load(folder / "embeddings.npz") as stored:
                embeddings = embedding_table(stored["ids"].tolist(), stored["parts"].tolist(),
                                             stored["vectors"].astype(np.float32))
        return Result(spec=RunSpec.from_dict(document["spec"]), key=document["key"], metrics=document["metrics"],
                      ci=document["ci"], confusion=document["confusion"], timings=document["timings"],
                      provenance=document["provenance"], exclusions=document["exclusions"], heatmaps=heatmaps,
                      embeddings=embeddings, **tables)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in result.json")
