"""Paper versus reproduction: the papers' numbers (one YAML file per paper), verdicts and printable tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .errors import DataError

PAPER_VALUES_DIR = Path(__file__).parent / "paper_values"

RELATIONS = ("=", "~", "<", ">")
CLOSE = 0.02  # "close": within 2 percentage points (or 0.02 of a loss)
COUNT_TOLERANCE = 1  # a count within 1 of the paper's is reproduced

SECONDS_METRICS = frozenset({"train_seconds", "inference_seconds_per_image", "eval_seconds"})
REFERENCE_METRICS = frozenset({
    "learning_rate", "epochs", "batch_size", "image_size_px", "split_fraction", "feature_dim", "flops",
    "age_years_min", "age_years_max", "segmentation_masks", "balanced_classes", "cpu_cores", "cpu_threads",
    "cpu_ghz", "ram_gb"})
_REFERENCE_SUFFIXES = ("_count", "_epoch")  # layer_count, parameter_count, test_loss_max_epoch, ...

_FIELDS = {"item", "setting", "metric", "value", "note", "relation"}
_REQUIRED = ("item", "setting", "metric", "value")
SUMMARY_COLUMNS = ("setting", "metric", "mean", "low", "high", "n")  # our values, as compare() takes them
SINGLE_RUN = " (1 run)"  # the mark of a verdict on a single run


@dataclass(frozen=True)
class PaperValue:
    """One number a paper reports: where (item), for what (setting, metric), and how it is stated (relation)."""

    paper: str
    item: str
    setting: str
    metric: str
    value: float
    note: str = ""
    relation: str = "="


def metric_kind(metric: str) -> str:
    """How a metric is judged and printed: "fraction", "loss", "count", "seconds" or "reference".

    The name before any "/" decides: "count"; the timing names in SECONDS_METRICS; configuration and
    description names (REFERENCE_METRICS, or ending in "_count" / "_epoch"); names containing "loss"; every
    other metric is a score stored as a fraction in [0, 1].
    """
    base = metric.split("/", 1)[0]
    if base == "count":
        return "count"
    if base in SECONDS_METRICS:
        return "seconds"
    if base in REFERENCE_METRICS or base.endswith(_REFERENCE_SUFFIXES):
        return "reference"
    if "loss" in base:
        return "loss"
    return "fraction"


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, Mapping):
        return f"must be a mapping with keys {', '.join(_REQUIRED)}, got {type(entry).__name__}"
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        return f"lacks {', '.join(missing)}"
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        return f"has unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(_FIELDS))}"
    for key in ("item", "setting", "metric", "note", "relation"):
        if key in entry and not isinstance(entry[key], str):
            return f"{key} must be text, got {entry[key]!r}"
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"value must be a finite number, got {value!r}"
    relation = entry.get("relation", "=")
    if relation not in RELATIONS:
        return f"relation must be one of {', '.join(RELATIONS)}, got {relation!r}"
    kind = metric_kind(entry["metric"])
    if kind == "fraction" and not 0 <= value <= 1:
        return f"{entry['metric']} is a score and must be a fraction in [0, 1] (98.97% -> 0.9897), got {value}"
    if kind in ("count", "seconds") and value < 0:
        return f"{entry['metric']} cannot be negative, got {value}"
    return None


def load_paper_values(path: Path | str) -> list[PaperValue]:
    """Read and check one paper's YAML file: ``paper: <name>`` and ``values:`` a list of entries.

    Each entry needs item, setting, metric (text) and value (a number); note and relation are optional.
    Scores must be fractions, relations one of RELATIONS, and (item, setting, metric) unique. Any problem
    raises DataError naming the file and the entry.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "paper values file not found") from None
    except yaml.YAMLError as error:
        raise DataError(path, f"is not valid YAML ({error})") from error
    if not isinstance(document, Mapping) or not isinstance(document.get("paper"), str) \
            or not isinstance(document.get("values"), list):
        raise DataError(path, "must be a mapping with 'paper: <name>' and 'values: [entries]'")
    values: list[PaperValue] = []
    seen: set[tuple[str, str, str]] = set()
    for number, entry in enumerate(document["values"], start=1):
        problem = _entry_problem(entry)
        label = f"entry {number}"
        if isinstance(entry, Mapping):
            label += f" ({entry.get('item')} / {entry.get('setting')} / {entry.get('metric')})"
        if problem is None:
            key = (entry["item"], entry["setting"], entry["metric"])
            problem = "repeats an earlier entry's item, setting and metric" if key in seen else None
            seen.add(key)
        if problem:
            raise DataError(path, f"{label}: {problem}", fix="correct the entry in the YAML file")
        values.append(PaperValue(paper=document["paper"], item=entry["item"], setting=entry["setting"],
                                 metric=entry["metric"], value=float(entry["value"]),
                                 note=entry.get("note", ""), relation=entry.get("relation", "=")))
    return values


def load_paper(name: str) -> list[PaperValue]:
    """The packaged values of one paper, e.g. ``load_paper("haj_ali_2026")``."""
    return load_paper_values(PAPER_VALUES_DIR / f"{name}.yaml")


def paper_value(paper: Sequence[PaperValue], setting: str, metric: str) -> float:
    """One value of the paper, by setting and metric."""
    found = [v.value for v in paper if v.setting == setting and v.metric == metric]
    if not found:
        raise KeyError(f"the paper values hold no {metric!r} for setting {setting!r}")
    return found[0]


def paper_settings(paper: Sequence[PaperValue], metrics: Sequence[str],
                   required: Sequence[str] | None = None) -> pd.DataFrame:
    """The paper's configuration values as a table: one row per setting that states every ``required`` metric
    (default: all of ``metrics``), in the order the paper-values file lists them; absent values are nan."""
    required = list(metrics if required is None else required)
    values: dict[str, dict[str, float]] = {}
    for v in paper:
        if v.metric in metrics:
            values.setdefault(v.setting, {})[v.metric] = v.value
    rows = {name: row for name, row in values.items() if all(m in row for m in required)}
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(metrics)).rename_axis("setting")
    for column in table.columns:  # whole numbers print as such (epochs 30, not 30.0)
        if table[column].notna().all() and (table[column] % 1 == 0).all():
            table[column] = table[column].astype(int)
    return table


def _verdict(value: PaperValue, mean: float, low: float, high: float, n: int) -> str:
    if mean is None or pd.isna(mean):
        return "not run"
    kind = metric_kind(value.metric)
    p = value.value
    tolerance = COUNT_TOLERANCE if kind == "count" else CLOSE
    if kind in ("seconds", "reference"):
        verdict = "reference only"
    elif value.relation == "<":
        verdict = ("reproduced" if mean < p else "close" if mean - p <= tolerance + 1e-9 else "paper lower")
    elif value.relation == ">":
        verdict = ("reproduced" if mean > p else "close" if p - mean <= tolerance + 1e-9 else "paper higher")
    elif kind == "count":
        verdict = ("reproduced" if abs(p - mean) <= COUNT_TOLERANCE + 1e-9
                   else "paper higher" if p > mean else "paper lower")
    elif not pd.isna(low) and not pd.isna(high) and low - 1e-12 <= p <= high + 1e-12:
        verdict = "reproduced"
    elif abs(p - mean) <= CLOSE + 1e-9:
        verdict = "close"
    else:
        verdict = "paper higher" if p > mean else "paper lower"
    return verdict + SINGLE_RUN if n == 1 else verdict


def compare(paper: Sequence[PaperValue], ours: pd.DataFrame) -> pd.DataFrame:
    """One row per paper value with our mean, interval, run count and a verdict.

    ``ours`` has columns setting, metric, mean, low, high, n (e.g. from ``metrics.summarise_runs``; for a single
    run, low/high may hold its bootstrap interval). Rows are matched on (setting, metric). Verdict rules, in order:

    - "not run": no row of ours (or its mean is nan).
    - "reference only": timings (SECONDS_METRICS) and configuration/description values: a difference of
      hardware or a stated setting is not a result to reproduce.
    - a bound ("<" or ">"): "reproduced" if our mean satisfies it, "close" if it misses by at most 0.02 (1 for
      counts), otherwise "paper lower" (for "<") or "paper higher" (for ">").
    - counts: "reproduced" if within 1 of the paper's, else "paper higher" / "paper lower".
    - scores and losses ("=" or "~"): "reproduced" if the paper's value lies within our interval [low, high];
      "close" if |paper - ours| <= 0.02 (two percentage points) but outside the interval (or no interval);
      otherwise "paper higher" or "paper lower".

    With n == 1 the verdict carries " (1 run)". Output columns: item, setting, metric, paper, relation, ours,
    ci_low, ci_high, n, verdict, note.
    """
    missing = [c for c in SUMMARY_COLUMNS if c not in ours.columns]
    if missing:
        raise ValueError(f"ours lacks column(s) {missing}; it needs {list(SUMMARY_COLUMNS)}")
    repeated = ours[ours.duplicated(["setting", "metric"], keep=False)]
    if not repeated.empty:
        pairs = sorted(set(zip(repeated["setting"], repeated["metric"])))
        raise ValueError(f"ours has several rows for (setting, metric) {pairs}; summarise runs first")
    index = {(row.setting, row.metric): row for row in ours.itertuples(index=False)}
    rows = []
    for value in paper:
        row = index.get((value.setting, value.metric))
        mean, low, high, n = ((row.mean, row.low, row.high, int(row.n)) if row is not None
                              else (float("nan"), float("nan"), float("nan"), 0))
        rows.append({"item": value.item, "setting": value.setting, "metric": value.metric, "paper": value.value,
                     "relation": value.relation, "ours": mean, "ci_low": low, "ci_high": high, "n": n,
                     "verdict": _verdict(value, mean, low, high, n), "note": value.note})
    return pd.DataFrame(rows, columns=["item", "setting", "metric", "paper", "relation", "ours", "ci_low",
                                       "ci_high", "n", "verdict", "note"])


def verdicts(table: pd.DataFrame) -> pd.Series:
    """The verdicts of a :func:`compare` table without their single-run mark."""
    return table["verdict"].str.replace(SINGLE_RUN, "", regex=False)


def verdict_sentence(table: pd.DataFrame) -> str:
    """One line counting every verdict of a comparison table, e.g. "Verdict: 2 of 5 paper values reproduced..."."""
    if table.empty:
        return "*No paper value to compare here.*"
    parts = [f"{n} {verdict}" for verdict, n in verdicts(table).value_counts().items()]
    return f"**Verdict** over the {len(table)} paper values above: " + ", ".join(parts) + "."


def judged_verdicts(table: pd.DataFrame) -> str:
    """One sentence counting the judged verdicts of a comparison table: reference-only rows apart, runs not
    made yet counted at the end."""
    found = verdicts(table)
    judged = found[~found.isin(["reference only", "not run"])]
    if judged.empty:
        return "No paper value of this table could be judged (nothing run yet, or reference values only)."
    counts = judged.value_counts()
    order = ["reproduced", "close", "paper higher", "paper lower"]
    parts = [f"{counts[v]} {v}" for v in order if v in counts]
    text = f"Of the {len(judged)} paper values judged here, {', '.join(parts)}"
    return text + (f"; {int((found == 'not run').sum())} not run." if (found == "not run").any() else ".")


def count_settings(counts: pd.DataFrame, name: str, parts: Mapping[str, str]) -> dict[str, float]:
    """A split's class counts under the settings the paper-values files give counts,
    ``"<name> / <part> / <class in lower case>"``; ``counts`` has one row per class, ``parts`` maps each part
    to its column (e.g. ``{"all": "total", "test": "test"}``)."""
    return {f"{name} / {part} / {str(label).lower()}": counts.loc[label, column]
            for label in counts.index for part, column in parts.items()}


def compare_counts(paper: Sequence[PaperValue], ours: Mapping[str, float]) -> pd.DataFrame:
    """The paper's counts among ``paper`` beside ours, one exact number per setting: the :func:`compare` table
    without interval and run-count columns, verdicts without the single-run mark."""
    rows = pd.DataFrame([{"setting": setting, "metric": "count", "mean": count, "low": np.nan, "high": np.nan, "n": 1}
                         for setting, count in ours.items()], columns=list(SUMMARY_COLUMNS))
    table = compare([v for v in paper if v.metric == "count"], rows)
    table["verdict"] = verdicts(table)
    return table.drop(columns=["ci_low", "ci_high", "n"])


# --- printing --------------------------------------------------------------------------------------------------

_CI_COLUMNS = {"ours": ("ci_low", "ci_high"), "mean": ("low", "high"), "value": ("low", "high")}
_MISSING = "—"


def _number(value: Any, kind: str, percent: bool, digits: int, exact: bool = False) -> str:
    """One cell; ``exact`` keeps up to two more decimals where the value has them (transcribed paper numbers)."""
    if value is None or pd.isna(value):
        return _MISSING
    if kind == "count":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    if kind == "seconds":
        return f"{value:.3g} s" if abs(value) < 1 else f"{value:.2f} s"
    if kind == "reference":
        return np.format_float_positional(value, precision=4, fractional=False, trim="-")
    suffix = ""
    if kind == "fraction" and percent:
        value, suffix = 100 * value, "%"
    elif kind == "fraction":
        digits += 2
    else:  # loss
        digits = 2
    if exact:
        digits = next((d for d in range(digits, digits + 3) if abs(round(value, d) - value) < 1e-9), digits + 2)
    return f"{value:.{digits}f}{suffix}"


def _bare(text: str) -> str:
    return text[:-1] if text.endswith("%") else text.removesuffix(" s")


def format_table(df: pd.DataFrame, percent_cols: Sequence[str], *, digits: int = 1) -> pd.DataFrame:
    """A copy of ``df`` as strings for notebooks and the book (plain HTML, no Styler).

    Columns in ``percent_cols`` print scores as percentages ("97.9%"); when a ``metric`` column is present,
    each row prints by its metric's kind instead (counts as integers, timings in seconds, losses and
    configuration values as numbers). A value column with an interval beside it (ours + ci_low/ci_high,
    mean or value + low/high) prints as "97.9% (96.1–99.2)" and the interval columns are dropped. A
    ``relation`` column is folded into ``paper`` ("<60.0%", "~0.40"), which keeps the decimals the paper printed
    (up to ``digits`` + 2). Missing values print as "—".
    """
    out = df.copy()
    kinds = (df["metric"].map(metric_kind) if "metric" in df.columns
             else pd.Series("fraction", index=df.index))
    drop: list[str] = []
    for column in df.columns:
        if column in drop or not pd.api.types.is_numeric_dtype(df[column]):
            continue
        percent = column in percent_cols
        if column == "n":
            out[column] = [_MISSING if pd.isna(v) else f"{v:.0f}" for v in df[column]]
            continue
        texts = [_number(v, k, percent, digits, exact=column == "paper") for v, k in zip(df[column], kinds)]
        interval = _CI_COLUMNS.get(column)
        if interval and all(c in df.columns for c in interval):
            low_col, high_col = interval
            for i, (low, high, kind) in enumerate(zip(df[low_col], df[high_col], kinds)):
                if not pd.isna(low) and not pd.isna(high) and texts[i] != _MISSING:
                    low_text = _bare(_number(low, kind, percent, digits))
                    high_text = _bare(_number(high, kind, percent, digits))
                    texts[i] += f" ({low_text}–{high_text})"
            drop += [low_col, high_col]
        out[column] = texts
    if "relation" in df.columns and "paper" in df.columns:
        out["paper"] = [text if rel == "=" else f"{rel}{text}" for text, rel in zip(out["paper"], df["relation"])]
        drop.append("relation")
    return out.drop(columns=drop)
