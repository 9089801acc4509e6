"""Chapter 5's three fusions (Aboulmira et al. 2025, Section V), each under both protocols, from the clinical
tables and the stored benign-vs-malignant CNN run: one call per notebook cell. The building blocks (protocols,
models, alignment by case) are in :mod:`oncorepro.fusion`."""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd
from IPython.display import Markdown, display

from . import fusion, report, tabular
from .runner import RunOutcome

TABLE4_ITEMS = ("Table 4", "Section V-A text", "Section V-B text", "Section V-C text")
CLINICAL_LATE_MODEL = "XGBoost"  # the clinical side of late fusion (Table 2's best model)


def early_fusions(clinical: pd.DataFrame, before_imaging: pd.DataFrame, image: pd.DataFrame, labels: pd.Series, *,
                  seed: int, grid: str, n_boot: int) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Early fusion (``fusion.EARLY_MODELS``) of all clinical columns with the ``image`` features, one table per
    protocol; and, leakage-free, of the columns known before imaging with the same image features (protocol
    "leakage_free, before imaging only")."""
    tables = [fusion.feature_fusion({"clinical": clinical, "image": image}, labels, protocol=protocol, seed=seed,
                                    models=fusion.EARLY_MODELS, grid=grid, n_boot=n_boot)
              for protocol in fusion.PROTOCOLS]
    before = fusion.feature_fusion({"clinical": before_imaging, "image": image}, labels, protocol="leakage_free",
                                   seed=seed, models=fusion.EARLY_MODELS, grid=grid, n_boot=n_boot)
    return tables, before.assign(protocol="leakage_free, before imaging only")


def _cnn_training_cases(run: RunOutcome, embeddings: pd.DataFrame | None) -> list[str]:
    """The cases the CNN trained on, from its stored embeddings (``fusion.run_embeddings``)."""
    if embeddings is None:
        raise ValueError(f"run {run.key} ('{run.spec.label}') stored no embeddings: the fusions need an embed=True run")
    return list(embeddings.index[embeddings["part"] == "train"])


def late_fusions(cnn_run: RunOutcome, clinical: pd.DataFrame, labels: pd.Series, *, seed: int, grid: str,
                 n_boot: int) -> list[pd.DataFrame] | None:
    """Late fusion (``fusion.late_fusion``), one table per protocol, of the CNN run's probabilities with the
    out-of-fold probabilities of XGBoost on the clinical columns (nested CV by case). Under ``paper`` the CNN's
    probabilities of every case (in-sample for its training cases), under ``leakage_free`` of its held-out test
    cases only; ``test_rows_seen_by_cnn`` counts in-sample test rows. None while the run is pending."""
    held_out = fusion.run_probabilities([cnn_run], cnn_run.spec.classes)
    if held_out is None:
        return None
    image = {"paper": fusion.run_probabilities([cnn_run], cnn_run.spec.classes, ("train", "test")),
             "leakage_free": held_out}  # before the nested CV: a run without in-sample predictions fails at once
    trained_on = _cnn_training_cases(cnn_run, fusion.run_embeddings(cnn_run))
    clinical_oof = fusion.out_of_fold_probabilities(tabular.nested_cv(
        clinical, labels, labels.index, seed=seed, inner=3, grid=grid, models=[CLINICAL_LATE_MODEL],
        n_boot=n_boot).iloc[0])
    return [fusion.seen_by_cnn(fusion.late_fusion({"clinical": clinical_oof, "image": image[protocol]}, labels,
                                                  protocol=protocol, seed=seed, n_boot=n_boot), trained_on)
            for protocol in fusion.PROTOCOLS]


def intermediate_fusions(cnn_run: RunOutcome, clinical: pd.DataFrame, labels: pd.Series, *, seed: int, grid: str,
                         n_boot: int) -> list[pd.DataFrame] | None:
    """Intermediate fusion (``fusion.INTERMEDIATE_MODELS``) of the clinical columns with the CNN run's
    embeddings: under ``paper`` through the noisy-copy 80/20 protocol (embeddings of the CNN's training cases
    are in-sample), under ``leakage_free`` fitted on the CNN's training (and validation) cases and tested on its
    held-out test cases (``fusion.split_fusion``). One table per protocol with ``test_rows_seen_by_cnn``; None
    while pending."""
    embeddings = fusion.run_embeddings(cnn_run)
    if embeddings is None:
        return None
    blocks = {"clinical": clinical, "image": embeddings.drop(columns="part")}
    tables = (fusion.feature_fusion(blocks, labels, protocol="paper", seed=seed, models=fusion.INTERMEDIATE_MODELS,
                                    grid=grid, n_boot=n_boot),
              fusion.split_fusion(blocks, labels, embeddings["part"], seed=seed, models=fusion.INTERMEDIATE_MODELS,
                                  grid=grid, n_boot=n_boot))
    trained_on = _cnn_training_cases(cnn_run, embeddings)
    return [fusion.seen_by_cnn(table, trained_on) for table in tables]


def table4(paper: Sequence[report.PaperValue], fusions: Mapping[str, Sequence[pd.DataFrame] | None]) -> None:
    """Table 4 and the Section V numbers beside ours, once per protocol, with a verdict sentence; ``fusions``
    maps a strategy ("early", "intermediate", "late") to its tables in ``fusion.PROTOCOLS`` order (None while
    pending)."""
    for k, protocol in enumerate(fusion.PROTOCOLS):
        tables = {f"fusion / {strategy} / ": found[k] if found else None for strategy, found in fusions.items()}
        compared = fusion.compare_with_paper(paper, tables, list(TABLE4_ITEMS))
        display(Markdown(f"**Table 4, {protocol} protocol.** " + report.verdict_sentence(compared)))
        display(report.format_table(compared.drop(columns=["relation", "n", "note"]), ["paper", "ours"]))
