"""What training costs: time per setting, ours beside the paper's timing statements."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import report
from .run_tables import per_run
from .runner import RunOutcome


def training_cost(runs: Sequence[RunOutcome]) -> pd.DataFrame:
    """Per setting, means over seeds: training images, seconds to train the head, inference seconds per image
    (whole model), and the time a frozen-base tool spends end to end: one base pass per training image (timed
    as inference) plus the head's training."""
    table = per_run(runs)
    if table.empty:
        return table
    table["feature_seconds"] = table["train_images"] * table["inference_seconds_per_image"]
    table["total_seconds"] = table["feature_seconds"] + table["train_seconds"]
    columns = ["train_images", "epochs_run", "train_seconds", "feature_seconds", "total_seconds",
               "inference_seconds_per_image"]
    out = table.groupby("setting", sort=False)[columns].mean()
    out["runs"] = table.groupby("setting", sort=False).size()
    return out.round({"train_images": 0, "epochs_run": 0, "train_seconds": 2, "feature_seconds": 1,
                      "total_seconds": 1, "inference_seconds_per_image": 4})


def cost_versus_paper(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], setting: str) -> pd.DataFrame:
    """The paper's timing statements for ``setting`` (e.g. one bound for all its models) beside the slowest of
    our settings: end-to-end training seconds and inference seconds per image."""
    cost = training_cost(runs)
    chosen = [v for v in paper if v.setting == setting and v.metric in report.SECONDS_METRICS]
    if cost.empty:
        nothing = pd.DataFrame(columns=list(report.SUMMARY_COLUMNS))
        return report.format_table(report.compare(chosen, nothing), ["paper"])
    ours = pd.DataFrame([
        {"setting": setting, "metric": "train_seconds", "mean": cost["total_seconds"].max(), "low": np.nan,
         "high": np.nan, "n": int(cost["runs"].sum())},
        {"setting": setting, "metric": "inference_seconds_per_image", "mean": cost["inference_seconds_per_image"].max(),
         "low": np.nan, "high": np.nan, "n": int(cost["runs"].sum())}])
    table = report.compare(chosen, ours)
    table["ours from"] = [cost[c].idxmax() for c in
                          ("total_seconds" if m == "train_seconds" else "inference_seconds_per_image"
                           for m in table["metric"])]
    return report.format_table(table.drop(columns=["ci_low", "ci_high"]), ["paper", "ours"])
