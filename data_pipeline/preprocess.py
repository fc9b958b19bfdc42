"""Filter, split and normalise: every statistic is fitted on the training split only.

When Model.csv has ``PatientID`` and a patient has several models (replicate lines, a primary and its
metastasis), every split and fold keeps that patient's models together: a twin in training would let the
model recognise its sibling in test.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from data_pipeline.config import DataConfig
from data_pipeline.errors import DataError
from data_pipeline.loader import LabelledData, count_and_first

GROUP_COLUMN = "PatientID"
"""Model.csv column naming each model's patient: a patient's models stay in one split and one fold."""

log = logging.getLogger(__name__)

LOGGED_MAX = 50.0
"""log2(TPM+1) never exceeds ~20; raw TPM/counts routinely exceed this."""


@dataclass(frozen=True)
class ProcessedArrays:
    """Everything the cache stores, before it is written."""

    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    """Row indices into the labelled data for each split."""
    tissues: list[str]
    gene_index: np.ndarray
    """Indices of the kept genes among the input genes (input order)."""
    feature_mean: np.ndarray
    feature_std: np.ndarray
    X_train_unfiltered: np.ndarray
    """Training rows, log-transformed, not z-scored, every gene that varies on the training split.

    What a CV fold refits the gene filter on (a gene constant on the split passes no fold's filter).
    """
    folds: np.ndarray | None
    log_applied: bool
    tissue_counts_input: dict[str, int]
    dropped_tissues: dict[str, int]


def select_tissues(labels: list[str], min_samples: int, *, source: str, label_column: str) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of samples whose tissue has at least ``min_samples``; the dropped tissues' counts."""
    counts = Counter(labels)
    dropped = {t: n for t, n in sorted(counts.items()) if n < min_samples}
    kept = sorted(set(counts) - set(dropped))
    if dropped:
        log.info("dropped %d tissue(s) with fewer than %d samples: %s", len(dropped), min_samples,
                 ", ".join(f"{t} ({n})" for t, n in dropped.items()))
    if len(kept) < 2:
        raise DataError(
            f"{source}: label column {label_column!r} leaves {len(kept)} tissue(s) with at least "
            f"{min_samples} samples; at least two are needed to classify; {_min_samples_hint(counts)}"
        )
    mask = np.array([label not in dropped for label in labels])
    return mask, dropped


def _min_samples_hint(counts: Counter[str]) -> str:
    """What would keep two tissues: a lower min_samples_per_tissue (>= 3), or nothing but more data."""
    sizes = sorted(counts.values(), reverse=True)
    largest = ", ".join(f"{t} ({n})" for t, n in counts.most_common(3)) or "none"
    if len(sizes) >= 2 and sizes[1] >= 3:
        return (f"min_samples_per_tissue = {sizes[1]} (--min-samples-per-tissue {sizes[1]}, "
                f"study file [data] min_samples_per_tissue) would keep {sum(n >= sizes[1] for n in sizes)}; "
                f"largest tissues: {largest}")
    return f"largest tissues: {largest}; a tissue needs >= 3 labelled samples (one per split)"


def needs_log(values: np.ndarray, mode: str) -> bool:
    """Whether to apply log2(x+1): ``auto`` decides from the value range."""
    if mode == "yes":
        return True
    if mode == "no":
        return False
    return bool(np.nanmax(values) > LOGGED_MAX)


def check_negative_values(data: LabelledData, log_applied: bool, mode: str, *, source: str) -> None:
    """Negative values cannot be log2(x+1)-transformed: an error then; otherwise say they are kept.

    With the log applied they stop the run (TPM and counts are never negative; clipping them to 0
    would silently change the data). Without it (``log_transform="no"``, or ``auto`` on values
    that look logged, e.g. z-scores or log2(TPM)) they are z-scored as they are, and one line says so.
    """
    if data.values.size == 0 or float(data.values.min()) >= 0:
        return
    n_negative, row, col = count_and_first(data.values < 0)
    where = str(data.expression_path or source)
    example = (f"{n_negative} negative expression value(s), e.g. {float(data.values[row, col]):g} at ModelID "
               f"{data.model_ids[row]!r}, gene {data.gene_names[col]!r}")
    if log_applied:
        reason = ("log_transform='yes'" if mode == "yes" else
                  f"log_transform='auto' applies it because the maximum {float(np.max(data.values)):g} > {LOGGED_MAX:g}")
        raise DataError(
            f"{where}: {example}; log2(x+1) needs values >= 0 ({reason}); if the values are already "
            "log-scaled, set log_transform = \"no\" (--log-transform no)"
        )
    level = logging.INFO if mode == "no" else logging.WARNING
    log.log(level, "%s: %s: taken as already log-scaled (no log2 applied); z-scored as they are", where, example)


def patient_groups(data: LabelledData, rows: np.ndarray) -> np.ndarray | None:
    """The patient (``PatientID``) of each of ``rows``, or None when no patient has two of them.

    A row without a patient is a group of its own.
    """
    if GROUP_COLUMN not in data.metadata.columns:
        return None
    values = data.metadata[GROUP_COLUMN].to_numpy(dtype=object)[rows]
    groups = np.array(
        [str(v) if v is not None and str(v) not in ("", "nan") else f"<row {i}>" for i, v in enumerate(values)],
        dtype=object,
    )
    return groups if len(set(groups)) < len(groups) else None


def grouped_split(
    y: np.ndarray, groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int, *, source: str
) -> dict[str, np.ndarray]:
    """Like :func:`stratified_split`, but every patient's rows in one split (StratifiedGroupKFold).

    The test split is one fold of ``round(1 / test_fraction)``, the validation split one fold of the rest
    (``round((1 - test_fraction) / val_fraction)``): the fractions are met as closely as whole patients allow,
    and each split keeps the tissue mix as well as it can.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    def hold_out(rows: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        n_splits = max(2, round(1.0 / fraction))
        n_groups = len(set(groups[rows]))
        if n_groups < n_splits:
            raise DataError(f"{source}: cannot split {rows.size} samples of {n_groups} patients into "
                            f"{n_splits} groups (val_fraction={val_fraction}, test_fraction={test_fraction})")
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            kept, held = next(splitter.split(rows, y[rows], groups[rows]))
        return rows[kept], rows[held]

    rest, test = hold_out(np.arange(y.size), test_fraction)
    train, val = hold_out(rest, val_fraction / (1.0 - test_fraction))
    missing = sorted(set(np.unique(y)) - set(np.unique(y[train])))
    if missing:
        log.warning("%s: keeping patients together left %d tissue(s) without a training sample", source, len(missing))
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def stratified_split(
    y: np.ndarray, val_fraction: float, test_fraction: float, seed: int, *, source: str,
    groups: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Sorted row indices for train/val/test, each stratified by ``y`` (scikit-learn).

    With ``groups`` (a patient per row), no patient spans two splits (:func:`grouped_split`).
    """
    from sklearn.model_selection import train_test_split

    if groups is not None:
        return grouped_split(y, groups, val_fraction, test_fraction, seed, source=source)
    indices = np.arange(y.size)
    try:
        rest, test = train_test_split(indices, test_size=test_fraction, stratify=y, random_state=seed)
        train, val = train_test_split(
            rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y[rest], random_state=seed
        )
    except ValueError as error:
        raise DataError(f"{source}: cannot split {y.size} samples in {np.unique(y).size} tissues "
                        f"with val_fraction={val_fraction}, test_fraction={test_fraction}: {error}") from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def select_genes(X_train: np.ndarray, min_variance: float, top_k: int | None, *, source: str) -> np.ndarray:
    """Indices (input order) of genes whose training variance passes ``min_variance``, top-k by variance."""
    variance = X_train.var(axis=0, dtype=np.float64)
    passing = np.flatnonzero(variance >= min_variance) if min_variance > 0 else np.flatnonzero(variance > 0)
    if passing.size == 0:
        raise DataError(f"{source}: no gene has training-split variance >= {min_variance}")
    if top_k is not None and passing.size > top_k:
        order = np.argsort(-variance[passing], kind="stable")[:top_k]
        passing = np.sort(passing[order])
    return passing


def fold_assignment(
    y_train: np.ndarray, n_folds: int, seed: int, *, source: str, groups: np.ndarray | None = None
) -> np.ndarray:
    """Stratified k-fold index (0..n_folds-1) for each training row; with ``groups``, a patient in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    smallest = int(np.bincount(y_train).min())
    if smallest < n_folds:
        raise DataError(f"{source}: n_folds={n_folds} but a tissue has only {smallest} training samples")
    folds = np.empty(y_train.size, dtype=np.int64)
    if groups is not None:
        if len(set(groups)) < n_folds:
            raise DataError(f"{source}: n_folds={n_folds} but the training split has {len(set(groups))} patients")
        splits = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(
            np.zeros(y_train.size), y_train, groups
        )
    else:
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(y_train.size), y_train)
    for fold, (_, held_out) in enumerate(splits):
        folds[held_out] = fold
    return folds


def preprocess(data: LabelledData, config: DataConfig, *, source: str) -> ProcessedArrays:
    """Drop rare tissues, split, log-transform if needed, filter genes and z-score (train-fitted)."""
    counts_input = dict(sorted(Counter(data.labels).items()))
    mask, dropped = select_tissues(
        data.labels, config.min_samples_per_tissue, source=source, label_column=config.label_column
    )
    rows_kept = np.flatnonzero(mask)
    labels = [data.labels[i] for i in rows_kept]
    tissues = sorted(set(labels))
    index_of = {t: i for i, t in enumerate(tissues)}
    y = np.array([index_of[t] for t in labels], dtype=np.int64)

    groups = patient_groups(data, rows_kept)
    split_rows = stratified_split(
        y, config.val_fraction, config.test_fraction, config.split_seed, source=source, groups=groups
    )
    log_applied = needs_log(data.values, config.log_transform)
    check_negative_values(data, log_applied, config.log_transform, source=source)

    def features(rows: np.ndarray) -> np.ndarray:
        block = data.values[rows_kept[rows]]
        if log_applied:
            block = np.log2(block + 1.0, dtype=np.float32)  # check_negative_values: no value < 0
        return block.astype(np.float32, copy=False)

    X_train_all = features(split_rows["train"])
    gene_index = select_genes(X_train_all, config.min_gene_variance, config.top_k_genes, source=source)
    X_train = X_train_all[:, gene_index]
    varying = select_genes(X_train_all, 0.0, None, source=source)
    mean = X_train.mean(axis=0, dtype=np.float64)
    std = X_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    log.debug("kept %d of %d genes", gene_index.size, data.values.shape[1])

    X: dict[str, np.ndarray] = {}
    for name, rows in split_rows.items():
        block = X_train if name == "train" else features(rows)[:, gene_index]
        X[name] = ((block - mean) / std).astype(np.float32)
    y_split = {name: y[rows] for name, rows in split_rows.items()}
    folds = (
        fold_assignment(y_split["train"], config.n_folds, config.split_seed, source=source,
                        groups=None if groups is None else groups[split_rows["train"]])
        if config.n_folds
        else None
    )
    return ProcessedArrays(
        X=X,
        y=y_split,
        rows={name: rows_kept[rows] for name, rows in split_rows.items()},
        tissues=tissues,
        gene_index=gene_index,
        feature_mean=mean.astype(np.float32),
        feature_std=std.astype(np.float32),
        X_train_unfiltered=X_train_all[:, varying],
        folds=folds,
        log_applied=log_applied,
        tissue_counts_input=counts_input,
        dropped_tissues=dropped,
    )
