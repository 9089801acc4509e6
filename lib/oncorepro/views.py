"""What a chapter notebook shows: tables and figures built from a study's runs, one call per cell.

Every function takes runs (``RunOutcome`` lists as ``Study.run`` returns them) and a setting label; none knows
which paper it serves. Paper values come in as ``report.PaperValue`` lists. The tables come from
:mod:`oncorepro.run_tables`, here with a single run's bootstrap interval and without curve readings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.figure import Figure

from . import plots, report, run_tables
from .data import load_dataset
from .data.splits import stratified_split
from .images import apply_roi, resize_image, resize_mask
from .report import verdict_sentence
from .run_tables import finished, in_run_order, paper_bars, versus_paper
from .runner import (DEFAULT_EXPLAINER, HEATMAP_SIZE, RunOutcome, external_dataset, heatmap_key, mask_records,
                     select_records)
from .spec import RunSpec
from .study import Study, run_precision

SCORES = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "precision_macro", "recall_macro",
          "f1_macro", "specificity_macro", "balanced_accuracy", "miss_rate", "false_alarm_rate")
TIMINGS = ("train_seconds", "inference_seconds_per_image", "eval_seconds")
PERCENT = ["paper", "ours"]


def setup() -> None:
    plots.apply_style()
    plots.show_in_notebooks()


def profile_banner(study: Study) -> None:
    """Say which profile ran, and warn that smoke numbers say nothing about the paper."""
    profile = study.profile
    text = f"**Profile `{profile.name}`**: {profile.description}; seeds {list(study.seeds)}."
    if profile.name != "full":
        text += (" *These numbers come from synthetic stand-in data and a few epochs: they test the code, "
                 "not the paper.*")
    if not study.run_missing:
        text += (" This page was executed from the results store without training: a run that has not finished "
                 "yet is listed as pending where its numbers would be, and the provenance table at the end "
                 "gives the state of every run.")
    display(Markdown(text))


def _results(runs: Sequence[RunOutcome], setting: str) -> list:
    """The results of a setting's finished runs; says so in the notebook when there are none yet."""
    results = [o.result for o in finished(runs, setting)]
    if not results:
        display(Markdown(f"*No finished run of '{setting}' in this profile yet: the figure appears once it has run.*"))
    return results


def summary(runs: Sequence[RunOutcome], evaluation: str = "test",
            metrics: Sequence[str] = SCORES + TIMINGS) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds, per setting and metric (long format); a setting with a single
    finished run shows that run's bootstrap interval instead."""
    return run_tables.summary(runs, metrics, evaluation, readings=False, single_run_ci=True)


def _pending_note(runs: Sequence[RunOutcome]) -> None:
    pending = [o for o in runs if o.result is None]
    if pending:
        names = sorted({f"{o.spec.label} (seed {o.spec.seed})" for o in pending})
        display(Markdown(f"*Pending runs, not yet executed in this profile: {', '.join(names)}.*"))


def compare(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], items: Sequence[str]) -> pd.DataFrame:
    """The paper's values of ``items`` beside our means over seeds, with intervals and verdicts."""
    _pending_note(runs)
    untimed = [v for v in paper if v.metric not in TIMINGS]  # timings depend on the device: see timings()
    table = versus_paper(runs, untimed, items, measured_only=False, readings=False, single_run_ci=True)
    display(Markdown(verdict_sentence(table)))
    return report.format_table(table.drop(columns=["relation"]), PERCENT)


def split_table(study: Study, dataset: str, classes: Sequence[str], paper: Sequence[report.PaperValue],
                setting: str) -> pd.DataFrame:
    """Class counts of the stratified 70/15/15 split (every seed gives the same counts) beside the paper's."""
    spec = study.profile.apply(RunSpec(dataset=dataset, classes=tuple(classes)))
    loaded = load_dataset(dataset, study.root(dataset))
    records, _ = select_records(loaded.records, classes)
    counts = stratified_split(records, fractions=spec.fractions, seed=study.seeds[0]).counts()
    ours = report.count_settings(counts, setting, {"all": "total", "train": "train", "val": "val", "test": "test"})
    chosen = [v for v in paper if v.item.startswith("Table") and v.setting.startswith(f"{setting} /")]
    return report.format_table(report.compare_counts(chosen, ours).drop(columns=["relation", "note"]), PERCENT)


def roc(runs: Sequence[RunOutcome], setting: str, evaluation: str = "test") -> Figure | None:
    """ROC of the positive class, mean over seeds with a band; AUC with its interval in the legend."""
    results = _results(runs, setting)
    if not results:
        return None
    curves = []
    for result in results:
        table, proba = result.evaluated(evaluation)
        positive = len(result.spec.classes) - 1
        curves.append(((table["label"] == positive).to_numpy(int), proba[:, positive]))
    name = f"{setting} ({evaluation}, {len(curves)} seeds)"
    return plots.roc_figure([plots.RocCurveInput(label=setting, runs=curves)], f"ROC: {name}")


def confusion(runs: Sequence[RunOutcome], setting: str, evaluation: str = "test") -> Figure | None:
    """Confusion matrix summed over seeds (counts and row-normalised rates)."""
    results = _results(runs, setting)
    if not results:
        return None
    total = np.sum([np.array(r.confusion[evaluation]) for r in results], axis=0)
    labels = results[0].spec.classes
    return plots.confusion_figure(total, labels, f"{setting} ({evaluation}), summed over {len(results)} seeds")


def training_curves(runs: Sequence[RunOutcome], setting: str) -> Figure | None:
    results = _results(runs, setting)
    if not results:
        return None
    history = pd.concat([r.history.assign(seed=r.spec.seed) for r in results], ignore_index=True)
    return plots.training_curves_figure(history, f"Training curves: {setting}")


def heatmaps(runs: Sequence[RunOutcome], setting: str, study: Study, evaluation: str = "test",
             method: str = DEFAULT_EXPLAINER) -> Figure | None:
    """The stored maps of ``method`` (Grad-CAM, or SmoothGrad for ``smoothgrad`` runs) of the first seed's run
    over the images the model saw."""
    results = _results(runs, setting)
    if not results:
        return None
    result = results[0]
    spec = result.spec
    dataset = (external_dataset(evaluation) or (spec.dataset,))[0]
    records = load_dataset(dataset, study.root(spec.dataset, *spec.external)).records
    by_id = {r.id: r for r in (*records, *mask_records(records))}  # mask pictures are images of some runs
    images, maps, masks, titles = [], [], [], []
    predictions = result.predictions.set_index(["evaluation", "id"])
    wanted = heatmap_key(method, evaluation, "")
    for name, heat in result.heatmaps.items():
        if not name.startswith(wanted):
            continue
        record_id = name.removeprefix(wanted)
        if record_id not in by_id:
            raise ValueError(f"heatmap {name!r} of '{setting}': no image {record_id!r} in {dataset} (an augmented "
                             "copy cannot be redrawn from the dataset)")
        record = by_id[record_id]
        image = resize_image(record.image("RGB"), HEATMAP_SIZE)
        mask = record.mask()
        mask = resize_mask(mask, HEATMAP_SIZE) if mask is not None else np.zeros(image.shape[:2], bool)
        if spec.roi and spec.roi_at_test and evaluation != "test_unmasked":  # the images as the model saw them
            image = apply_roi(image, mask)
        row = predictions.loc[(evaluation, record_id)]
        images.append(image)
        maps.append(heat.astype(np.float32) / 255)
        masks.append(mask if mask.any() else None)
        titles.append(f"{record_id}\ntrue {spec.classes[int(row['label'])]}, pred {spec.classes[int(row['pred'])]}")
    if not images:
        kept = sorted({name.split("|", 1)[0] for name in result.heatmaps})
        raise ValueError(f"'{setting}' stored no {method} maps of evaluation {evaluation!r}; it has maps of: "
                         f"{', '.join(kept) or 'none'} (<method>:<evaluation> for methods other than Grad-CAM)")
    return plots.heatmap_grid_figure(images, maps, titles, masks, ncols=4)


def accuracy_bars(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue], item: str,
                  metric: str = "accuracy") -> Figure | None:
    """Our mean accuracy per setting with its interval, the paper's value as a marker."""
    ours = summary(runs, metrics=[metric])
    if ours.empty:
        display(Markdown(f"*No finished run for {item} yet.*"))
        return None
    return paper_bars(ours, paper, item, metric, f"{item}: {metric} (mean over seeds, 95% CI)")


def timings(runs: Sequence[RunOutcome], paper: Sequence[report.PaperValue]) -> pd.DataFrame:
    """Training time and inference time per image, ours beside the paper's: one row per paper value and device
    with arithmetic (seeds that ran on different devices are never averaged together; the provenance table has
    each run). A paper value with no run of ours keeps one "not run" row."""
    timed = [v for v in paper if v.metric in TIMINGS]
    setups: dict[str, list[RunOutcome]] = {}
    for o in finished(runs):
        setup = " ".join(filter(None, [o.result.provenance.get("device"), run_precision(o.result.provenance)]))
        setups.setdefault(setup, []).append(o)
    unrun = report.compare(timed, summary([], metrics=TIMINGS)).assign(**{"our device": ""})
    per_setup = [report.compare(timed, summary(group, metrics=TIMINGS)).assign(**{"our device": setup})
                 for setup, group in setups.items()]
    rows = []
    for i in range(len(timed)):  # compare() keeps the paper's order: each value's measured rows, else "not run"
        rows += [t.iloc[[i]] for t in per_setup if t["n"].iloc[i] > 0] or [unrun.iloc[[i]]]
    table = pd.concat(rows, ignore_index=True) if rows else unrun
    return report.format_table(table, PERCENT).rename(columns={"n": "runs"})


def side_by_side(runs: Sequence[RunOutcome], metrics: Sequence[str], evaluation: str = "test") -> pd.DataFrame:
    """Settings as rows, metrics as columns: mean over seeds with its interval."""
    _pending_note(runs)
    long = summary(runs, evaluation, metrics)
    if long.empty:
        return long
    formatted = report.format_table(long, ["mean"])
    wide = formatted.pivot(index="setting", columns="metric", values="mean")
    wide["runs"] = long.groupby("setting")["n"].max()
    return in_run_order(wide, runs)[[*metrics, "runs"]]


def evaluations(runs: Sequence[RunOutcome], names: Sequence[str],
                metrics: Sequence[str] = ("accuracy", "roc_auc")) -> pd.DataFrame:
    """Each setting tested several ways (e.g. masked test, unmasked test, external set): mean (CI) per cell."""
    frames = []
    for name in names:
        long = summary(runs, name, metrics)
        if not long.empty:
            frames.append(report.format_table(long, ["mean"]).assign(evaluation=name))
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames).pivot(index="setting", columns=["metric", "evaluation"], values="mean")
    return in_run_order(table, runs).reindex(columns=[(m, n) for m in metrics for n in names
                                                      if (m, n) in table.columns])


def _noted(notes: pd.Series) -> pd.Series:
    """Which rows carry a note (why a score is missing); an all-empty column may have come back as NaN."""
    return notes.astype("string").fillna("") != ""


def _explanation_rows(runs: Sequence[RunOutcome], table: str) -> pd.DataFrame | None:
    """The finished runs' ``table`` ("explanations" or "sanity") with setting and seed, None if there is none
    (after a note on the pending runs). Where a run also made SmoothGrad maps, ``method`` is filled in for the
    Grad-CAM rows, which carry none."""
    _pending_note(runs)
    frames = [getattr(o.result, table).assign(setting=o.spec.label, seed=o.spec.seed) for o in finished(runs)
              if not getattr(o.result, table).empty]
    if not frames:
        if finished(runs):
            display(Markdown("*The finished runs made no explanations (their specs have `explain=False`).*"))
        return None
    rows = pd.concat(frames, ignore_index=True)
    if "method" in rows:
        rows["method"] = rows["method"].fillna(DEFAULT_EXPLAINER)
    return rows


def explanation_table(runs: Sequence[RunOutcome]) -> pd.DataFrame | None:
    """Explanations against the lesion masks, per setting and evaluation (and method: a level of the index only
    when some run also made SmoothGrad maps): the mean scores over the scored images of every seed, the images
    evaluated, how many were scored, and per reason (no heat, no mask, empty mask) how many were not."""
    scores = _explanation_rows(runs, "explanations")
    if scores is None:
        return None
    columns = ["energy_in_mask", "mask_area", "energy_ratio", "pointing_game"]
    keys = ["setting", "evaluation", *(["method"] if "method" in scores else [])]
    groups = scores.groupby(keys, sort=False)
    scored = scores.dropna(subset=["energy_in_mask"])  # every score over the same images (mask_area included)
    table = scored.groupby(keys, sort=False)[columns].mean().reindex(groups.size().index)
    table["images"] = groups.size()
    table["scored"] = groups["energy_in_mask"].count()
    unscored = scores[_noted(scores["note"])]
    if not unscored.empty:  # why the others have no score: one column per reason, a count of images
        reasons = unscored.groupby([*keys, "note"]).size().unstack(fill_value=0)
        table = table.join(reasons)
        table[list(reasons.columns)] = table[list(reasons.columns)].fillna(0).astype(int)
    return table.round(3)


def randomisation_table(runs: Sequence[RunOutcome]) -> pd.DataFrame | None:
    """The model-parameter randomisation check (Adebayo et al. 2018) of the stored runs: per setting and stage
    (classifier head re-initialised, or every weight; and method, a level of the index only when some run also
    made SmoothGrad maps), the mean rank (Spearman) and linear (Pearson) correlation between the trained model's
    maps and the randomised model's, over the checked test images of every seed; a map that stays the same after
    randomisation (correlation near 1) does not depend on what was learnt."""
    checks = _explanation_rows(runs, "sanity")
    if checks is None:
        return None
    groups = checks.groupby(["setting", *(["method"] if "method" in checks else []), "stage"], sort=False)
    table = groups[["spearman", "pearson"]].mean()
    table["images"] = groups.size()
    table["constant maps"] = groups["note"].agg(lambda notes: int(_noted(notes).sum()))
    table["seeds"] = groups["seed"].nunique()
    return table.round(3)


def exclusions(runs: Sequence[RunOutcome]) -> pd.DataFrame:
    """Every record the finished runs left out, with the reason: one row per setting, dataset (the run's own or
    an external set) and reason, the records per seed (one count when every seed agrees), the seeds, and the
    first ids."""
    rows = []
    for o in finished(runs):
        for e in o.result.exclusions:
            dataset, record = external_dataset(e["id"]) or (o.spec.dataset, e["id"])
            rows.append({"setting": o.spec.label, "dataset": dataset, "seed": o.spec.seed, "reason": e["reason"],
                         "id": record})
    keys = ["setting", "dataset", "reason"]
    if not rows:
        return pd.DataFrame(columns=[*keys, "records", "seeds", "ids"])
    frame = pd.DataFrame(rows)
    per_seed = frame.groupby([*keys, "seed"], sort=False).size().rename("records").reset_index()
    table = per_seed.groupby(keys, sort=False).agg(
        records=("records", lambda n: "/".join(map(str, sorted(set(n))))),
        seeds=("seed", lambda seeds: ", ".join(map(str, sorted(seeds)))))
    table["ids"] = frame.groupby(keys, sort=False)["id"].agg(
        lambda ids: ", ".join(sorted(set(ids))[:5]) + (f" ... ({ids.nunique()} in all)" if ids.nunique() > 5 else ""))
    return table.reset_index()


def provenance(study: Study) -> pd.DataFrame:
    return study.provenance()
