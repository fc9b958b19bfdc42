"""The demo's steps as a library function: prepare -> a short study with K workers -> export -> retrain -> test.

:func:`run_demo` does the work and tells a :class:`DemoObserver` what happens (steps, the study's
progress, each retraining epoch with an ETA); ``hpo demo`` is an observer that prints. The final
model's test metrics are recorded in the study (:func:`hpo.results.record_final_model`), so the
study's headline (``hpo show``, the dashboard's study note, ``hpo report``) shows them, and they come
with a baseline: every test sample called the most frequent tissue of the training data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from hpo.results import (
    Headline,
    RetrainResult,
    compute_headline,
    copy_config,
    export_trial,
    record_final_model,
    retrain,
    write_config,
)
from hpo.run._launcher import LaunchResult, Progress, launch
from hpo.storage import open_storage, redact, run_directory
from hpo.study import load_study_file

STEPS = 5


class DemoObserver:
    """What :func:`run_demo` reports while it works; every method does nothing unless overridden."""

    def step(self, number: int, total: int, title: str) -> None:
        """Step ``number`` of ``total`` begins."""

    def data_ready(self, data: Any, seconds: float) -> None:
        """The prepared data set (train/val/test sizes, genes, tissues)."""

    def study_progress(self, progress: Progress) -> None:
        """A snapshot of the study while its workers run (``hpo run``'s ``on_progress``)."""

    def exported(self, config: Mapping[str, Any], path: Path) -> None:
        """The selected trial's configuration (:func:`hpo.results.selected_trial`) was written to ``path``."""

    def retrain_planned(self, epochs: int | None, split: str) -> None:
        """The final model trains for ``epochs`` epochs (None: as the model decides) on ``split``."""

    def retrain_epoch(self, progress: RetrainProgress) -> None:
        """One more epoch of the final model (or, after it, of the reference configuration)."""


@dataclass(frozen=True)
class RetrainProgress:
    """Where a retrain is: ``epoch`` of ``total`` (None: unknown), seconds per epoch, the time left."""

    model: str
    """``final`` (the winner's configuration) or ``reference`` (the defaults, retrained the same way)."""
    epoch: int
    total: int | None
    seconds_per_epoch: float
    elapsed: float

    @property
    def eta(self) -> float | None:
        if self.total is None:
            return None
        return max(0, self.total - self.epoch) * self.seconds_per_epoch


@dataclass
class DemoResult:
    study_name: str
    storage_url: str
    launch: LaunchResult
    out_dir: Path
    config_path: Path | None = None
    final: RetrainResult | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    """Test metrics of calling every sample the most frequent tissue of train+val (:attr:`baseline_tissue`)."""
    baseline_tissue: str = ""
    headline: Headline | None = None
    recorded: str = ""
    """Whether the final model's metrics were recorded in the study (one line)."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.launch.ok and self.final is not None


def run_demo(
    study_file: str | Path,
    *,
    workers: int = 2,
    overrides: Mapping[str, Any] | None = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    observer: DemoObserver | None = None,
    poll_seconds: float = 2.0,
) -> DemoResult:
    """Run the demo on ``study_file``: a new study ``{name}-{time}`` (or ``study_name``), its winner retrained.

    Everything lands in ``$HPO_HOME/demo/<study>``: ``best.toml`` and ``final/`` (the final model, its
    metrics and per-tissue test report). A study that stops on failures is returned without a final model.
    """
    from data_pipeline import prepare_dataset

    observer = observer or DemoObserver()
    started = time.monotonic()
    spec = load_study_file(study_file, dict(overrides or {}))
    name = study_name or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = run_directory() / "demo" / name

    observer.step(1, STEPS, f"preparing data ({spec.data.source}, preset {spec.data.preset}, "
                            f"top {spec.data.top_k_genes} genes)")
    data = prepare_dataset(spec.data)
    observer.data_ready(data, time.monotonic() - started)

    observer.step(2, STEPS, f"study {name}: {spec.n_trials} {spec.model} trials, {workers} workers, "
                            f"{spec.sampler.name} sampler, {spec.pruner.name} pruner")
    launched = launch(study_file, workers=workers, overrides=overrides, storage_url=storage_url, study_name=name,
                      on_progress=observer.study_progress, poll_seconds=poll_seconds)
    result = DemoResult(name, launched.storage_url, launched, out)
    if not launched.ok:
        result.seconds = time.monotonic() - started
        return result

    observer.step(3, STEPS, "exporting the selected configuration")
    study = optuna.load_study(study_name=name, storage=open_storage(launched.storage_url, heartbeat_interval=None))
    config = export_trial(study, storage_url=redact(launched.storage_url))
    result.config_path = write_config(config, out / "best.toml")
    observer.exported(config, result.config_path)

    observer.step(4, STEPS, "retraining it on train+val")
    planned = planned_epochs(config)
    observer.retrain_planned(planned, "train+val")
    table = config.get("reference") or {}
    tracker = _EpochTracker(observer, planned, planned_epochs({"params": table.get("params", {}), "source": table}))
    result.final = retrain(config, out / "final", train_split="train+val", eval_splits=("test",), on_step=tracker)
    copy_config(result.config_path, out / "final")
    result.recorded = record_final_model(config, result.final, study=study)

    observer.step(5, STEPS, "held-out test metrics of the final model")
    result.baseline_tissue, result.baseline = majority_baseline(data)
    named = redact(launched.storage_url) if storage_url is not None else None  # the user named one: so do the commands
    result.headline = compute_headline(study, storage=named)
    result.seconds = time.monotonic() - started
    return result


def planned_epochs(config: Mapping[str, Any]) -> int | None:
    """How many epochs a train+val retrain of ``config`` runs (what :func:`hpo.results.retrain` decides)."""
    from models.training import retrain_epoch_count

    params, source = config.get("params", {}), config.get("source", {})
    trial_epochs = int(source.get("retrain_epochs") or source.get("best_epoch") or 0)
    if "max_epochs" not in params:
        return None
    if not trial_epochs:
        return int(params["max_epochs"])
    return retrain_epoch_count(trial_epochs, int(params["max_epochs"]))


class _EpochTracker:
    """The retrain's ``on_step``: epochs, seconds per epoch and the time left, to the observer.

    Steps that start again from 1 are the next model: the reference configuration, retrained after the
    final one for ``reference_planned`` epochs (None: unknown).
    """

    RECENT = 5
    """Epochs the time per epoch is averaged over (the first is slower: lazy imports, warm-up)."""

    def __init__(self, observer: DemoObserver, planned: int | None, reference_planned: int | None = None) -> None:
        self._observer = observer
        self._planned = planned
        self._reference_planned = reference_planned
        self._model = "final"
        self._last = 0
        self._started = time.monotonic()
        self._ends: list[float] = [self._started]

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        now = time.monotonic()
        if step <= self._last:  # a second model began
            self._model, self._planned, self._started, self._ends = "reference", self._reference_planned, now, [now]
        self._last = step
        self._ends.append(now)
        recent = self._ends[-(self.RECENT + 1):]
        per_epoch = (recent[-1] - recent[0]) / (len(recent) - 1)
        total = max(self._planned, step) if self._planned is not None else None
        self._observer.retrain_epoch(RetrainProgress(self._model, step, total, per_epoch, now - self._started))


def majority_baseline(data: Any) -> tuple[str, dict[str, float]]:
    """The test metrics of calling every test sample the most frequent tissue of train+val (a floor, not a model)."""
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    _, fitted_on = data.split("train+val")
    _, truth = data.split("test")
    majority = int(np.bincount(np.asarray(fitted_on, dtype=int)).argmax())
    predicted = np.full_like(np.asarray(truth), majority)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": it is meant to
        return str(data.tissues[majority]), {
            "test_accuracy": float(accuracy_score(truth, predicted)),
            "test_balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
            "test_macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        }

