"""Train a model outside any study and keep it: ``train_and_report``, and ``retrain`` from an exported config.

:func:`train_and_report` trains one model, evaluates the asked splits and writes ``metrics.json``,
a per-tissue report with the confusion matrix per split and the fitted model (``model/``, loadable
with ``models.load_model``). :func:`retrain` does it for a configuration written by ``hpo export``.
By default the model trains on train+val and is evaluated on the held-out test split.
Training on ``train`` and evaluating ``val`` instead reproduces the trial that was
exported: same parameters, same seed, same data (checked by fingerprint), so the
validation metric matches the trial's within :data:`REPRODUCTION_TOLERANCE`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__package__)

REPRODUCTION_TOLERANCE = 0.02
"""Largest difference, in the study metric, between a trial and its retrain on the same split.
On CPU with the trial's thread count (the default of ``hpo train --config --train-split train``)
the retrain is bit-identical for every model. Other thread counts or a GPU change the
floating-point summation order of PyTorch models, which can flip individual validation
predictions; the tolerance allows a few such flips among the full data set's ~210 validation samples."""


METRICS_FILE = "metrics.json"
MODEL_SUBDIRECTORY = "model"
REFERENCE_SUBDIRECTORY = "reference"
"""Where :func:`retrain` puts the reference configuration's retrain, inside the final model's folder."""

SCHEDULE, FOLD_AVERAGE = "schedule", "fold-average"
RETRAIN_MODES = (SCHEDULE, FOLD_AVERAGE)
"""How a retrain on train+val trains a PyTorch model: ``schedule``, one model on all rows that keeps the
trial's learning-rate schedule and stops at its chosen epoch; ``fold-average``, one model per CV fold of
train+val, each early-stopped on its held-out fold, predictions averaged (:mod:`models.fold_ensemble`)."""
FOLD_AVERAGE_TASKS: tuple[str, ...] = ()
"""Tasks whose cross-validated PyTorch trials retrain as a fold average by default: none. On the small-cohort
benchmark (benchmarks/RESULTS.md) the fold average tied for the classifier (2026-12-03: 0.785 vs 0.788 mean
test accuracy over 30 splits). It helped the random-start autoencoder (1.004 vs 1.021 MSE), but the autoencoder
now starts at PCA (2026-12-04) and one model on all of train+val (PCA of all rows) reconstructed better than
the mean of the folds' models (PCA of 4/5 of the rows each) on all 10 splits (0.935 vs 0.941 mean MSE). A trial
scored on one validation split retrains with ``schedule`` (no fold count was part of the trial)."""

StepCallback = Callable[[int, Mapping[str, float]], None]


@dataclass(frozen=True)
class TrainReport:
    """What :func:`train_and_report` trained and measured."""

    model: str
    metrics: dict[str, float]
    n_steps: int
    train_seconds: float
    device: str
    n_parameters: int
    out_dir: Path


@dataclass(frozen=True)
class RetrainResult:
    report: TrainReport
    out_dir: Path
    data_fingerprint: str
    fingerprint_matches: bool
    reproduced: tuple[str, float, float] | None
    """``(metric, trial value, retrained value)`` when the retrain evaluated the trial's split."""
    reference: TrainReport | None = None
    """The study's reference configuration (the defaults) retrained the same way, when there is one."""

    @property
    def metrics(self) -> dict[str, float]:
        return self.report.metrics


def retrain(
    config: Mapping[str, Any],
    out_dir: str | Path,
    *,
    train_split: str = "train+val",
    eval_splits: Sequence[str] = ("test",),
    device: str | None = None,
    num_threads: int | None = None,
    cache_dir: str | None = None,
    epochs_from_trial: bool = True,
    on_step: StepCallback | None = None,
    reference: bool = True,
    mode: str | None = None,
) -> RetrainResult:
    """Train ``config`` (read with :func:`hpo.export.read_config`) and write the results to ``out_dir``.

    Training on train+val leaves no validation split for early stopping, so a torch model then stops
    at ``source.retrain_epochs`` (the median of the trial's tied best epochs; older exports:
    ``source.best_epoch``), never before :data:`models.training.MIN_RETRAIN_EPOCHS`, with its learning-rate
    schedule laid out over the trial's ``max_epochs`` as in the trial (``stop_epoch``), unless
    ``epochs_from_trial`` is False (then it runs ``max_epochs``). With ``reference`` and a ``[reference]``
    table (the study's defaults), that configuration is retrained the same way into ``out_dir/reference``
    (on train+val only: retraining on ``train`` reproduces the trial, which needs no comparison).
    A scikit-learn model fits once (no CV folds on train+val) with the trial's thread count (BLAS bounded)
    unless ``num_threads`` says otherwise.
    ``on_step(step, metrics)`` sees every training step of both (default: one log line each).
    With ``mode = "fold-average"`` (PyTorch models on train+val only) each of the two is instead the
    average of one model per CV fold of train+val (:class:`models.fold_ensemble.FoldEnsemble`); None:
    :func:`resolve_retrain_mode`'s default.
    """
    from data_pipeline import DataConfig, prepare_dataset
    from models import get_spec

    mode = resolve_retrain_mode(config["model"], mode, train_split, cross_validated_trial(config))

    settings = dict(config["data"])
    if cache_dir is not None:
        settings["cache_dir"] = cache_dir
    data_config = DataConfig.from_mapping(settings, where="config [data]")
    data = prepare_dataset(data_config)
    expected = config.get("source", {}).get("data_fingerprint", "")
    matches = not expected or expected == data.fingerprint
    if not matches:
        logger.warning(
            "data fingerprint %s differs from the study's %s: the input files or settings changed",
            data.fingerprint[:12], expected[:12],
        )
    out_dir = Path(out_dir)
    source = config.get("source", {})
    if num_threads is None and get_spec(config["model"]).family == "sklearn":
        num_threads = int(source.get("threads") or 1)  # BLAS bounded as in the trial, not every core of a busy host
    common = {
        "train_split": train_split, "eval_splits": tuple(eval_splits), "device": device or config.get("device", "auto"),
        "seed": int(config.get("seed", 0)), "num_threads": num_threads, "data": data, "on_step": on_step,
    }
    params = retrain_params(config["params"], source, train_split, epochs_from_trial, mode)
    report = train_and_report(config["model"], params, data_config, out_dir, **common,
                              model=_retrain_model(config["model"], params, mode, common))
    reference_report = None
    table = config.get("reference")
    if reference and "val" in train_split and isinstance(table, Mapping) and isinstance(table.get("params"), Mapping):
        if table.get("trial") == source.get("trial"):  # the defaults won: the final model is the reference
            reference_report = report
        else:
            logger.info("retraining the reference configuration (trial %s, the defaults) the same way",
                        table.get("trial"))
            reference_params = retrain_params(table["params"], table, train_split, epochs_from_trial, mode)
            reference_report = train_and_report(
                config["model"], reference_params, data_config, out_dir / REFERENCE_SUBDIRECTORY, **common,
                model=_retrain_model(config["model"], reference_params, mode, common))
    metrics = report.metrics
    reproduced = None
    metric = source.get("metric")
    # the trial's own validation-split score: its value, unless the value is a CV mean (fidelity = "folds")
    value = config.get("metrics", {}).get(metric, source.get("value"))
    if train_split == "train" and metric in metrics and value is not None:
        reproduced = (metric, float(value), float(metrics[metric]))
    return RetrainResult(report, out_dir, data.fingerprint, matches, reproduced, reference_report)


def resolve_retrain_mode(model_name: str, mode: str | None, train_split: str, cross_validated: bool = False) -> str:
    """``mode``, checked (ValueError, one line, unless it applies: ``fold-average`` needs a PyTorch model on
    train+val); None: ``fold-average`` for a ``cross_validated`` PyTorch trial of a task in
    :data:`FOLD_AVERAGE_TASKS` on train+val, else ``schedule`` (one model)."""
    from models import get_spec

    if mode is None:
        spec = get_spec(model_name)
        applies = spec.family == "torch" and train_split == "train+val" and cross_validated
        return FOLD_AVERAGE if applies and spec.task in FOLD_AVERAGE_TASKS else SCHEDULE
    if mode not in RETRAIN_MODES:
        raise ValueError(f"unknown retrain mode {mode!r}; expected one of {', '.join(RETRAIN_MODES)}")
    if mode == FOLD_AVERAGE:
        if get_spec(model_name).family != "torch":
            raise ValueError(f"--retrain-mode {FOLD_AVERAGE} is for PyTorch models; {model_name!r} is a "
                             f"{get_spec(model_name).family} model (use {SCHEDULE})")
        if train_split != "train+val":
            raise ValueError(f"--retrain-mode {FOLD_AVERAGE} trains on the folds of train+val; "
                             f"not with --train-split {train_split}")
    return mode


def cross_validated_trial(config: Mapping[str, Any]) -> bool:
    """Whether the exported trial was scored by k-fold CV (``fidelity = "folds"``, or ``auto`` choosing it)."""
    return bool(config.get("source", {}).get("fold_scores"))


def _retrain_model(model_name: str, params: Mapping[str, Any], mode: str, common: Mapping[str, Any]) -> Any:
    """The model a ``fold-average`` retrain fits (None: ``train_and_report`` builds the single model)."""
    if mode != FOLD_AVERAGE:
        return None
    from models.fold_ensemble import FoldEnsemble
    from models.registry import resolve_model_params

    return FoldEnsemble(model_name, resolve_model_params(model_name, params), device=common["device"],
                        seed=common["seed"], num_threads=common["num_threads"])


def retrain_params(
    params: Mapping[str, Any], trial: Mapping[str, Any], train_split: str, epochs_from_trial: bool = True,
    mode: str = SCHEDULE,
) -> dict[str, Any]:
    """``params`` for a retrain on ``train_split``: on train+val a torch model stops at the trial's chosen epoch.

    ``trial`` holds the trial's ``retrain_epochs`` (or ``best_epoch``: older exports). The schedule keeps
    the trial's ``max_epochs`` (the cosine ``T_max``), so at every epoch the learning rate is the trial's;
    only ``stop_epoch`` is set. The epoch count is not scaled by the larger training set: every epoch
    already takes proportionally more optimiser steps (train+val is ~1.2x train in the default splits),
    and the epoch, not the step, is what the schedule and the chosen epoch were measured in.
    """
    from models.fidelity import cross_validates
    from models.training import MIN_RETRAIN_EPOCHS, retrain_epoch_count

    params = dict(params)
    if mode == FOLD_AVERAGE:  # the trial's folds, each model early-stopped on its held-out fold: no stop_epoch
        return params
    if cross_validates(params) and "val" in train_split:
        # the fold scores ranked the trials; on train+val they rank nothing: one fit, no throw-away CV fits
        params["fidelity"] = "none"
    trial_epochs = int(trial.get("retrain_epochs") or trial.get("best_epoch") or 0)
    if epochs_from_trial and "val" in train_split and trial_epochs and "max_epochs" in params:
        params["stop_epoch"] = retrain_epoch_count(trial_epochs, int(params["max_epochs"]))
        logger.info(
            "training on %s for %d of the trial's %d epochs (same learning-rate schedule): the median of the "
            "trial's tied best epochs, at least %d (no validation split left for early stopping)",
            train_split, params["stop_epoch"], params["max_epochs"], MIN_RETRAIN_EPOCHS,
        )
    return params


def copy_config(config_path: str | Path, out_dir: str | Path) -> None:
    """Keep the exported config next to the model it produced."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_path, Path(out_dir) / f"config{Path(config_path).suffix or '.toml'}")


def train_and_report(
    model_name: str,
    params: Mapping[str, Any],
    data_config: Any,
    out_dir: Path,
    *,
    train_split: str = "train",
    eval_splits: Sequence[str] = ("val",),
    device: str = "auto",
    seed: int = 0,
    num_threads: int | None = None,
    data: Any = None,
    on_step: StepCallback | None = None,
    model: Any = None,
) -> TrainReport:
    """Train ``model_name`` with ``params`` on ``train_split``, evaluate ``eval_splits``, write and print the results.

    ``data`` may pass an already prepared data set (else ``prepare_dataset(data_config)``).
    Writes ``out_dir/metrics.json`` (metrics, parameters, history, data fingerprint,
    package versions), ``out_dir/report_<split>.json`` for classifiers (per-tissue
    precision/recall/F1/support and the confusion matrix) and ``out_dir/model/``.
    ``model`` may pass an unfitted model to use instead (a fold-average ensemble); ``params`` then only
    name it in the record. ``on_step(step, metrics)`` sees every training step (default: one log line each). Returns the
    metrics (``{"val_accuracy": ..., "val_macro_f1": ...}``) with the run's size, time and device.
    """
    from data_pipeline import prepare_dataset
    from hpo.results._provenance import package_versions
    from models import build_model, get_spec
    from models.metrics import classification_report

    spec = get_spec(model_name)
    if model is None:
        model = build_model(model_name, params, device=device, seed=seed, num_threads=num_threads)
    data = data if data is not None else prepare_dataset(data_config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def log_step(step: int, step_metrics: Mapping[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in step_metrics.items() if isinstance(v, float))
        logger.info("%s step %d: %s", model_name, step, shown)

    started = time.perf_counter()
    model.fit(data, train_split=train_split, on_step=on_step or log_step)
    metrics: dict[str, float] = {}
    for split in eval_splits:
        metrics.update(model.evaluate(data, split))
        if spec.task == "classification":
            X, y = data.split(split)
            report = classification_report(y, model.predict(X), data.tissues)
            (out_dir / f"report_{split}.json").write_text(json.dumps(report, indent=2))
    model.save(out_dir / MODEL_SUBDIRECTORY)

    record = {
        "model": model_name,
        "params": model.params,
        "seed": seed,
        "device": model.device_,
        "threads": num_threads,
        "train_split": train_split,
        "eval_splits": list(eval_splits),
        "metrics": metrics,
        "train_seconds": model.train_seconds_,
        "wall_seconds": time.perf_counter() - started,
        "n_steps": model.n_steps_,
        "best_epoch": model.best_epoch_,
        "n_parameters": model.n_parameters_,
        **({"retrain_mode": FOLD_AVERAGE, "fold_results": model.fold_results_}
           if getattr(model, "n_folds", 0) else {}),
        "history": model.history_,
        "data": {
            "fingerprint": data.fingerprint,
            "settings": data.settings,
            "n_features": data.n_features,
            "n_classes": data.n_classes,
            "tissues": list(data.tissues),
        },
        "versions": package_versions(),
    }
    (out_dir / METRICS_FILE).write_text(json.dumps(record, indent=2, default=_jsonable))
    return TrainReport(model_name, metrics, model.n_steps_, model.train_seconds_, model.device_, model.n_parameters_, out_dir)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
