"""What printed rates say about the counts behind them: the test sets a paper's recall, precision and false alarm
rate can come from, beside ours."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import pandas as pd
from scipy import stats

from . import report
from .records import Record
from .run_tables import finished
from .runner import RunOutcome


def _tolerance(value: float) -> float:
    """Half a unit of the last printed digit; rates printed as percentages carry at least one decimal (0.1%)."""
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** -max(3, -exponent if isinstance(exponent, int) else 3)


def _fits(numerator: int, denominator: int, value: float) -> bool:
    """numerator / denominator can round to ``value`` (exactly half a unit away counts: 26/32 = 81.25% prints
    as 81.3% when halves round up)."""
    return denominator > 0 and abs(numerator / denominator - value) <= _tolerance(value) + 1e-12


def counts_from_rates(recall: float, precision: float, false_alarm_rate: float, *, max_positives: int = 200,
                      max_negatives: int = 600) -> pd.DataFrame:
    """Every one-vs-rest confusion (tp, fn, fp, tn) whose recall, precision and false alarm rate round to the
    printed values (within half a unit of their last digit), positives and negatives up to the bounds; smallest
    totals first. An empty table means the three printed rates cannot come from one confusion matrix."""
    rows = []
    for positives in range(1, max_positives + 1):
        for tp in sorted({math.floor(recall * positives), math.ceil(recall * positives)}):
            if not 0 < tp <= positives or not _fits(tp, positives, recall):
                continue
            centre = tp * (1 - precision) / precision if precision > 0 else math.inf
            for fp in range(max(0, math.floor(centre) - 2), math.ceil(centre) + 3):
                if not _fits(tp, tp + fp, precision):
                    continue
                candidates = (range(1, max_negatives + 1) if fp == 0 else
                              range(max(fp, math.floor(fp / max(false_alarm_rate, 1e-9)) - 3),
                                    min(max_negatives, math.ceil(fp / max(false_alarm_rate, 1e-9)) + 3) + 1))
                for negatives in candidates:
                    if _fits(fp, negatives, false_alarm_rate):
                        rows.append({"tp": tp, "fn": positives - tp, "fp": fp, "tn": negatives - fp,
                                     "positives": positives, "negatives": negatives})
                        if fp == 0:
                            break
    table = pd.DataFrame(rows, columns=["tp", "fn", "fp", "tn", "positives", "negatives"]).drop_duplicates()
    table["total"] = table["positives"] + table["negatives"]
    return table.sort_values(["total", "positives"], ignore_index=True)


def implied_test_sets(paper: Sequence[report.PaperValue], settings: Sequence[str], positive: str) -> pd.DataFrame:
    """Per setting, the smallest test set whose one-vs-rest counts for class ``positive`` give the paper's printed
    recall, precision and false alarm rate at once (metrics ``recall/<positive>`` etc.), and the exact
    (Clopper-Pearson) 95% interval of the class accuracy (recall) on that many cases of the class."""
    values = {(v.setting, v.metric): v.value for v in paper}
    rows = []
    for setting in settings:
        rates = [values.get((setting, f"{m}/{positive}")) for m in ("recall", "precision", "false_alarm_rate")]
        row: dict[str, object] = {"setting": setting}
        if None in rates:
            rows.append({**row, "consistent": "rates not printed"})
            continue
        solutions = counts_from_rates(*rates)
        if solutions.empty:
            rows.append({**row, "consistent": "no confusion matrix fits"})
            continue
        best = solutions.iloc[0]
        interval = stats.binomtest(int(best["tp"]), int(best["positives"])).proportion_ci(method="exact")
        rows.append({**row, "consistent": "yes", f"{positive} (tp+fn)": int(best["positives"]),
                     "other classes (fp+tn)": int(best["negatives"]), "test items": int(best["total"]),
                     "tp, fn, fp, tn": f"{best['tp']}, {best['fn']}, {best['fp']}, {best['tn']}",
                     f"{positive} accuracy, 95% CI": f"{best['tp'] / best['positives']:.1%} "
                                                      f"({interval.low:.1%}–{interval.high:.1%})"})
    table = pd.DataFrame(rows).set_index("setting")
    counts = [c for c in table.columns if c.endswith(")") and "CI" not in c] + ["test items"]
    return table.astype({c: "Int64" for c in counts if c in table.columns})


def test_set_sizes(runs: Sequence[RunOutcome], positive: str) -> pd.DataFrame:
    """Per setting, our test set: items of class ``positive`` and of the other classes, in the split of its first
    finished run (stratified splits give every seed the same counts; grouped ones vary a little)."""
    rows = {}
    for o in finished(runs):
        if o.spec.label in rows:
            continue
        counts = o.result.split_counts.set_index("label")["test"]
        total = int(counts.get("Total", counts.drop("Total", errors="ignore").sum()))
        rows[o.spec.label] = {f"{positive} (tp+fn)": int(counts.get(positive, 0)),
                              "other classes (fp+tn)": total - int(counts.get(positive, 0)), "test items": total}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting")


def _names(settings: Sequence[str]) -> str:
    return ", ".join(settings) if settings else "none"


def test_part_readings(implied: pd.DataFrame, records: Sequence[Record], positive: str, test_fraction: float) -> str:
    """Markdown: which test part of the dataset (``records``, each with its mask files) can hold each implied test
    set of :func:`implied_test_sets` (its smallest one), when ``test_fraction`` of each class is held out (rounded
    up, as a per-class hold-out can give): the images alone; images and mask pictures pooled; or none, when the
    implied set holds more items of the class or of the other classes than any test part, so that the printed
    rates cannot all be right. Settings whose rates the paper did not print are left out."""
    images: Counter[str] = Counter(r.label for r in records)
    files: Counter[str] = Counter()
    for r in records:
        files[r.label] += 1 + len(r.mask_paths)
    masks = files.total() - images.total()

    def part(counts: Counter[str]) -> tuple[int, int]:  # the largest test part: items of the class, of the others
        held = {label: math.ceil(test_fraction * n) for label, n in counts.items()}
        return held.get(positive, 0), sum(held.values()) - held.get(positive, 0)

    columns = [f"{positive} (tp+fn)", "other classes (fp+tn)"]
    fitted = implied[implied["consistent"] == "yes"].reindex(columns=columns)
    items, others = fitted[columns[0]], fitted[columns[1]]
    in_images = (items <= part(images)[0]) & (others <= part(images)[1])
    in_pooled = ~in_images & (items <= part(files)[0]) & (others <= part(files)[1])
    pooled = [f"{s} ({items[s]} {positive} of {items[s] + others[s]} items)" for s in fitted.index[in_pooled]]
    share = f"{test_fraction:.0%} of each class rounded up"
    return "\n".join([
        f"- **Within a test part of the images only** (at most {part(images)[0]} {positive} items of "
        f"{images[positive]} {positive} images and {sum(part(images))} items of {images.total():,} images; "
        f"{share}): {_names(list(fitted.index[in_images]))}.",
        f"- **Within a test part of images and masks pooled** (at most {part(files)[0]} {positive} items of "
        f"{files[positive]} {positive} images and masks and {sum(part(files))} items of {files.total():,} files: "
        f"{images.total():,} images and {masks:,} masks; {share}): {_names(pooled)}.",
        f"- **In no test part this dataset can hold** (more items of a class than that): "
        f"{_names(list(fitted.index[~in_images & ~in_pooled]))}.",
        f"- **No confusion matrix fits the printed rates**: "
        f"{_names(list(implied.index[implied['consistent'] == 'no confusion matrix fits']))}."])
