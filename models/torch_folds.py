"""k-fold cross-validation of a PyTorch model on the training split (``fidelity = "folds"``).

Each fold trains a model of its own on the fold's training rows. The gene filter (the data set's
``min_gene_variance``/``top_k_genes``) and the z-scoring are refitted on those rows from
``X_train_unfiltered``, as the scikit-learn folds do, so the held-out fold shapes neither the genes
nor the scaling. Folds keep a patient's models together (:func:`models.fidelity.split_groups`).

Each fold stops early as a validation split would (``early_stopping_patience`` epochs without a better
``monitor`` on the held-out fold); its score is its held-out metrics at its best epoch by the monitor
(what early stopping keeps), and the objective value is the mean of the fold scores. The epoch a retrain
runs for is chosen on the CV curve: the mean over folds of each metric, epoch by epoch, where a fold that
stopped carries its last epoch's values forward (its metric had stopped improving). Each epoch is reported
as step ``fold * max_epochs + epoch`` (1-based epoch), so a learning-curve pruner (median, percentile,
successive halving, Hyperband) compares the same fold at the same epoch across trials (the folds do not
depend on the trial).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from data_pipeline.dataset import PreparedDataset
from data_pipeline.gene_filter import gene_filter_of
from models.base import StepCallback, TissueModel
from models.fidelity import split_groups, stratified_folds
from models.training import retrain_epoch_count, tied_best_epochs


def fold_datasets(data: PreparedDataset, n_folds: int) -> Iterator[PreparedDataset]:
    """One data set per fold: ``train`` = the fold's training rows, ``val`` = its held-out rows.

    Both are filtered and z-scored with statistics of the fold's training rows only.
    """
    if data.X_train_unfiltered is None:
        raise ValueError(
            f"fidelity='folds' refits the gene filter per fold, but data set {data.directory or data.fingerprint} "
            "has no X_train_unfiltered; prepare it again (hpo data prepare)"
        )
    X_raw = np.asarray(data.X_train_unfiltered)
    y = np.asarray(data.y_train)
    groups = split_groups(data.sample_info, "train")
    for features, fit_rows, held_rows in fold_features(X_raw, y, n_folds, data.settings, data.folds, groups):
        yield fold_dataset(data, features, X_raw, y, fit_rows, held_rows)


def fold_features(
    X_raw: np.ndarray, y: np.ndarray, n_folds: int, settings: Mapping[str, Any],
    folds: np.ndarray | None = None, groups: np.ndarray | None = None,
) -> Iterator[tuple[Pipeline, np.ndarray, np.ndarray]]:
    """Per fold: the gene filter + z-scoring fitted on the fold's training rows of ``X_raw``, and both row sets."""
    for fit_rows, held_rows in stratified_folds(y, n_folds, folds, groups):
        features = Pipeline([("filter_genes", gene_filter_of(dict(settings))), ("standardise", StandardScaler())])
        features.fit(X_raw[fit_rows])
        yield features, fit_rows, held_rows


def fold_dataset(
    data: PreparedDataset, features: Pipeline, X_raw: np.ndarray, y: np.ndarray, fit_rows: np.ndarray,
    held_rows: np.ndarray,
) -> PreparedDataset:
    """``data`` with ``train`` = the fold's rows and ``val`` = its held-out rows, both through ``features``."""
    X_fit = features.transform(X_raw[fit_rows]).astype(np.float32)
    X_held = features.transform(X_raw[held_rows]).astype(np.float32)
    return dataclasses.replace(
        data,
        X_train=X_fit, y_train=y[fit_rows], X_val=X_held, y_val=y[held_rows],
        X_test=X_held[:0], y_test=y[:0], folds=None, X_train_unfiltered=None,
        sample_ids={"train": [], "val": [], "test": []}, sample_info={},
    )


def best_epoch(rows: list[Mapping[str, float]], monitor: str, mode: str) -> int:
    """The first 1-based epoch of ``rows`` whose ``monitor`` is best (0 when none is finite)."""
    values = [(row.get(monitor, math.nan), epoch) for epoch, row in enumerate(rows, start=1)]
    finite = [(value if mode == "min" else -value, epoch) for value, epoch in values if math.isfinite(value)]
    return min(finite)[1] if finite else 0


def cv_curve(fold_histories: list[list[Mapping[str, float]]]) -> list[dict[str, float]]:
    """Epoch by epoch, the mean over folds of every metric every fold has (``epoch`` 1-based).

    A fold that stopped early counts with its last epoch's values for the epochs it did not run.
    """
    histories = [history for history in fold_histories if history]
    n_epochs = max((len(history) for history in histories), default=0)
    curve = []
    for index in range(n_epochs):
        rows = [history[min(index, len(history) - 1)] for history in histories]
        keys = [key for key in rows[0] if all(key in row for row in rows) and key not in ("fold", "epoch")]
        curve.append({"epoch": float(index + 1), **{key: float(np.mean([row[key] for row in rows])) for key in keys}})
    return curve


def fit_folds(model: TissueModel, data: PreparedDataset, on_step: StepCallback | None) -> None:
    """Cross-validate the PyTorch ``model``'s parameters on ``data``'s training split, then fit ``model`` on all of it.

    Fills ``model.fold_results_`` fold by fold (a pruned trial keeps the folds it finished), then
    ``model.cv_curve_``; the fitted network is the one trained on the whole training split (early
    stopping on the validation split, not reported), and ``best_epoch_``/``retrain_epochs_`` come from
    the CV curve. ``history_`` ends as the CV curve.
    """
    params = model.params
    max_epochs = int(params["max_epochs"])
    fold_params = {**params, "fidelity": "none"}
    results: list[dict[str, float]] = []
    histories: list[list[Mapping[str, float]]] = []
    raw: list[dict[str, float]] = []
    model.fold_results_ = results
    model.history_ = raw
    monitor, mode = model.monitor, model.monitor_mode
    seconds = 0.0
    for fold, fold_data in enumerate(fold_datasets(data, int(params["fidelity_steps"]))):
        fold_model = type(model)(fold_params, device=model.device, seed=model.seed, num_threads=model.num_threads)
        history: list[dict[str, float]] = []

        def report(epoch: int, metrics: Mapping[str, float], fold: int = fold, history: list = history) -> None:
            row = {**metrics, "fold": float(fold), "epoch": float(epoch)}
            history.append(row)
            raw.append(row)
            if on_step is not None:
                on_step(fold * max_epochs + epoch, row)

        fold_model.fit(fold_data, train_split="train", on_step=report)
        chosen = best_epoch(history, monitor, mode)  # what early stopping kept
        results.append({**history[chosen - 1], "best_epoch": float(chosen)})
        seconds += fold_model.train_seconds_
        histories.append(history)
    final = type(model)({**params, "fidelity": "none"}, device=model.device, seed=model.seed, num_threads=model.num_threads)
    final.fit(data, train_split="train")
    for key, value in vars(final).items():
        if key.endswith("_") and not key.startswith("_"):
            setattr(model, key, value)
    curve = cv_curve(histories)
    model.fold_results_ = results
    model.cv_curve_ = curve
    model.history_ = curve
    model.n_steps_ = len(raw)
    model.train_seconds_ = seconds + final.train_seconds_
    model.best_epoch_ = best_epoch(curve, monitor, mode)
    tied = tied_best_epochs(curve, monitor, mode, float(params["min_delta"]))
    model.retrain_epochs_ = retrain_epoch_count(tied or model.best_epoch_, max_epochs)


def fold_scores(results: list[Mapping[str, Any]], metric: str) -> list[float]:
    """``metric`` of every finished fold, in fold order (NaN-free)."""
    return [float(row[metric]) for row in results if math.isfinite(float(row.get(metric, math.nan)))]
