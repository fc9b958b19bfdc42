"""The objective: a thin closure over a study spec and the prepared data (loaded once per worker).

It samples parameters from the parsed search space, builds the model through the
registry, trains it with a step callback that reports the metric to Optuna (written to
the storage in batches, :mod:`hpo.trial_writes`) and may raise :class:`optuna.TrialPruned`,
and returns the validation metric, or, for a cross-validated model (``fidelity = "folds"``),
the mean of its fold scores (what ``WilcoxonPruner`` assumes), stored with the scores as
``fold_scores``/``cv_mean``/``cv_std`` for pruned and complete trials alike. A PyTorch model's folds
(:mod:`models.torch_folds`) report every epoch as step ``fold * max_epochs + epoch`` to the
learning-curve pruners, and only the fold scores (step = fold index) to ``WilcoxonPruner``;
``fidelity = "auto"`` is resolved once per worker from the data's size (:func:`models.fidelity.choose_fidelity`). A NaN loss
prunes the trial with its reason; out-of-memory fails it with its reason (the
worker goes on). Every trial stores its metrics, steps, time, size and device as
user attributes so that the dashboard describes itself; a validation split too small to
rank configurations adds ``val_split_warning`` (:mod:`hpo.val_split`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from hpo.results import TIE_BREAK_ATTR, current_best, is_new_best
from hpo.storage import BufferedReports, StorageRetry, best_effort, is_storage_error, set_user_attrs
from hpo.study import StudySpec

if TYPE_CHECKING:
    from models import TissueModel

logger = logging.getLogger(__package__)


def build_objective(
    spec: StudySpec, data: Any, *, device: str | None = None, num_threads: int | None = None,
    retry: StorageRetry | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective for ``spec`` on the prepared data set ``data``.

    ``device`` overrides the study file's device; ``num_threads`` caps torch's CPU threads. With
    ``retry``, the trial's storage writes wait out a storage outage (:mod:`hpo.outage`) while it trains.
    """
    from hpo.run._fidelity import with_fold_count
    from hpo.study import small_cv_warning, small_val_split_warning
    from models.errors import DeviceOutOfMemory, TrainingDiverged
    from models.fidelity import AUTO, choose_fidelity, cross_validates
    from models.registry import build_model, get_spec

    spec = with_fold_count(spec, data)  # CV: at most the folds the smallest tissue allows (callers did it already)
    model_spec = get_spec(spec.model)
    device = device or spec.device
    auto_fidelity = choose_fidelity(len(data.y_train), len(data.y_val), data.n_classes)[0]
    study_fixed = {**spec.fixed, "fidelity": auto_fidelity} if spec.fixed.get("fidelity") == AUTO else spec.fixed
    val_warning = small_val_split_warning(len(data.y_val), data.n_classes, can_cross_validate=True)
    cv_warning = None
    if cross_validates(study_fixed):  # ranked by CV: the folds' own sizes matter, not the validation split's
        val_warning = None
        n_folds = len(np.unique(data.folds)) if data.folds is not None else int(study_fixed.get("fidelity_steps", 5))
        cv_warning = small_cv_warning(np.asarray(data.y_train), n_folds, data.n_classes)
    for warning in (val_warning, cv_warning):
        if warning:
            logger.warning("%s", warning)  # once per worker, not once per trial
    pca = _pca_baseline(spec, data) if model_spec.task == "reconstruction" else None
    study_notes = {key: value for key, value in (("val_split_warning", val_warning), ("cv_split_warning", cv_warning),
                                                 (PCA_BASELINE_ATTR, pca)) if value}
    study_notes["val_samples"] = len(data.y_val)  # the selection rule's noise on the validation split (hpo.results)
    noted: list[bool] = []  # whether this worker has put its study notes on the study yet
    warned_convergence: list[bool] = []  # whether this worker has said how convergence warnings are kept
    stored = retry.call if retry is not None else _call  # a storage write that waits out an outage

    def objective(trial: optuna.Trial) -> float:
        params = {**spec.fixed, **stored(spec.space.suggest, trial, spec.fixed)}  # again: suggested ones stay
        if params.get("fidelity") == AUTO:
            params["fidelity"] = auto_fidelity
        cross_validated = cross_validates(params)
        torch_folds = cross_validated and model_spec.family == "torch"
        if study_notes and not noted:  # study attributes, once per worker: the same sentence on every trial
            for key, value in study_notes.items():  # page widened it past the screen
                stored(trial.study.set_user_attr, key, value)
            noted.append(True)
        # no "model_params": the sampled ones are the trial's params, the fixed ones the study's fixed_params
        stored(set_user_attrs, trial, {"threads": _threads(num_threads)})
        progress = _Progress()
        outcome: dict[str, Any] = {}  # user attributes written in one go when the trial ends
        reports = BufferedReports(trial, retry=retry)  # epoch values reach the storage in batches (hpo.trial_writes)
        model = None
        try:
            model = build_model(spec.model, params, device=device, seed=spec.seed, num_threads=num_threads)
            on_step = _reporter(trial, reports, spec.metric, progress, outcome, retry)
            wilcoxon = torch_folds and isinstance(trial.study.pruner, optuna.pruners.WilcoxonPruner)
            if wilcoxon:
                on_step = _fold_score_reporter(on_step, model, progress)
            try:
                model.fit(data, train_split="train", on_step=on_step)
                if wilcoxon:  # the last fold's score: no fold follows to report it
                    _report_last_fold(reports, model, spec.metric)
            except TrainingDiverged as error:
                reason = f"training diverged (NaN/inf loss) at step {progress.steps + 1}: {error}"
                outcome["prune_reason"] = reason
                raise optuna.TrialPruned(reason) from None
            except DeviceOutOfMemory as error:
                outcome["fail_reason"] = f"out of memory: {error}"
                raise
            metrics = model.evaluate(data, "val")
            outcome.update(_final_metrics(model, metrics, progress, cross_validated))
            if cross_validated:  # the mean fold score, as WilcoxonPruner assumes
                value = _cv_summary(_fold_rows(model, progress, torch_folds), spec.metric).get("cv_mean")
            else:
                value = metrics.get(spec.metric)
            if value is None or not math.isfinite(value):
                reason = f"{spec.metric} is {value!r} after training" + (" on the CV folds" if cross_validated else "")
                outcome["prune_reason"] = reason
                raise optuna.TrialPruned(reason)
            if torch_folds:  # the CV mean of the folds' validation loss
                tie_break = _cv_loss(_fold_rows(model, progress, torch_folds)).get(TIE_BREAK_ATTR)
            else:
                tie_break = _tie_break(metrics, model.history_ or progress.history, cross_validated)
            if tie_break is not None:
                outcome[TIE_BREAK_ATTR] = tie_break
            outcome.update(_chance_flag(trial.number, spec.metric, float(value), data.n_classes))
            if model_spec.task == "classification" and stored(_beats_best, trial.study, value, tie_break):
                stored(_upload_confusion_matrix, trial, model, data)
            return float(value)
        finally:
            stored(reports.flush)  # before the worker tells the trial: a pruned trial's value is its last report
            outcome.update(_progress_attrs(model, progress))
            if cross_validated:  # the folds run so far, pruned or complete
                outcome.update(_cv_summary(_fold_rows(model, progress, torch_folds), spec.metric))
            if torch_folds:  # the smooth secondary: the CV mean of the folds' validation loss
                outcome.update(_cv_loss(_fold_rows(model, progress, torch_folds)))
            _note_convergence_warnings(trial.number, outcome, warned_convergence)
            stored(set_user_attrs, trial, outcome)
            if model is not None and model.family == "torch":
                stored(_upload_learning_curves, trial, model.history_ or progress.history)

    return objective


def _beats_best(study: optuna.Study, value: float, tie_break: float | None) -> bool:
    """:func:`is_new_best` against this worker's tracked best (no query that sorts the whole study)."""
    return is_new_best(study, value, tie_break, best=current_best(study))


PCA_BASELINE_ATTR = "pca_baseline"
"""Study user attribute of an autoencoder study: PCA's reconstruction MSE on val and test (:func:`_pca_baseline`)."""


def _pca_baseline(spec: StudySpec, data: Any) -> dict[str, Any] | None:
    """PCA with the study's largest latent size (capped by the training rows), fitted on train; never raises."""
    from optuna.distributions import CategoricalDistribution

    from models.autoencoder import pca_baseline
    from models.registry import get_spec

    latent = spec.fixed.get("latent_dim", get_spec(spec.model).defaults.get("latent_dim", 0))
    distribution = spec.space.distributions().get("latent_dim")
    if isinstance(distribution, CategoricalDistribution):
        latent = max(int(choice) for choice in distribution.choices)
    elif distribution is not None:
        latent = int(distribution.high)
    try:
        baseline = pca_baseline(data, int(latent))
    except (ValueError, MemoryError, np.linalg.LinAlgError) as error:  # a baseline must never cost the study
        logger.warning("PCA baseline not computed: %s", error)
        return None
    return {"model": "PCA (fitted on the training split)", "n_components": int(baseline.pop("n_components")), **baseline}


class _Progress:
    """What the step callback saw, kept for trials that end early (pruned, failed)."""

    def __init__(self) -> None:
        self.steps = 0
        self.history: list[dict[str, float]] = []
        self.started = time.perf_counter()


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def _reporter(
    trial: optuna.Trial, reports: BufferedReports, metric: str, progress: _Progress, outcome: dict[str, Any],
    retry: StorageRetry | None = None,
) -> Callable[[int, Mapping[str, float]], None]:
    def on_step(step: int, metrics: Mapping[str, float]) -> None:
        progress.steps = step
        progress.history.append({"step": step, **{k: float(v) for k, v in metrics.items()}})
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            return
        reports.report(float(value), step)
        if _should_prune(trial, retry):
            from hpo.run._prune_reason import prune_reason

            reason = prune_reason(trial, step, metric, float(value))  # with the threshold it lost to
            if "fold" in metrics and "epoch" in metrics:  # a PyTorch model's folds: which fold, which epoch
                reason += f" (CV fold {int(metrics['fold']) + 1}, epoch {int(metrics['epoch'])})"
            outcome["prune_reason"] = reason
            raise optuna.TrialPruned(reason)

    return on_step


def _fold_score_reporter(
    report: Callable[[int, Mapping[str, float]], None], model: TissueModel, progress: _Progress
) -> Callable[[int, Mapping[str, float]], None]:
    """For ``WilcoxonPruner``: a PyTorch model's folds report their fold scores only, at step = fold index (1-based).

    Wilcoxon pairs the values of two trials by step (the fold) and assumes the objective value is their mean.
    Fold ``k``'s score is known once its training stopped: it is reported (and pruning asked) at the first
    epoch of fold ``k + 1``; the last fold's by :func:`_report_last_fold`.
    """

    def on_step(step: int, metrics: Mapping[str, float]) -> None:
        fold = int(metrics.get("fold", 0))
        results = getattr(model, "fold_results_", ())
        if metrics.get("epoch") == 1 and fold >= 1 and len(results) >= fold:
            report(fold, {**metrics, **results[fold - 1]})
        else:
            progress.steps = step
            progress.history.append({"step": step, **{k: float(v) for k, v in metrics.items()}})

    return on_step


def _report_last_fold(reports: BufferedReports, model: TissueModel, metric: str) -> None:
    results = getattr(model, "fold_results_", ())
    if results and math.isfinite(float(results[-1].get(metric, math.nan))):
        reports.report(float(results[-1][metric]), len(results))


def _fold_rows(model: TissueModel | None, progress: _Progress, torch_folds: bool) -> list[Mapping[str, float]]:
    """One row per finished fold: a PyTorch model's fold results, or the scikit-learn folds' reports."""
    if torch_folds:
        return [{**row, "fold": row.get("fold", index)} for index, row in enumerate(getattr(model, "fold_results_", ()))]
    return progress.history


def _cv_loss(rows: list[Mapping[str, float]]) -> dict[str, float]:
    """``tie_break_loss``: the mean over finished folds of their validation loss (lower is better)."""
    losses = [float(row["val_loss"]) for row in rows if math.isfinite(row.get("val_loss", math.nan))]
    return {TIE_BREAK_ATTR: float(np.mean(losses))} if losses else {}


def _should_prune(trial: optuna.Trial, retry: StorageRetry | None) -> bool:
    """``trial.should_prune()``; while the storage is unreachable the trial trains on (past the window: stops)."""
    try:
        prune = trial.should_prune()
    except Exception as error:
        if retry is None or not is_storage_error(error):
            raise
        retry.note(error)  # raises StorageOutage once the outage lasts longer than the window
        return False
    return prune  # no proof that the storage is back: a pruner may not read it at all


FINAL_STATE_PREFIX = "final_"
"""Last-epoch values that are training state, not metrics (the scheduler's ``lr``), are stored as
``final_<name>``, so no user attribute is named like a parameter."""


def _final_metrics(
    model: TissueModel, metrics: Mapping[str, float], progress: _Progress, cross_validated: bool
) -> dict[str, float]:
    """The last epoch's training metrics and the validation metrics, as user attributes.

    A cross-validated model's last step is its last fold, not the validation split: only the
    validation metrics are kept (its fold scores go to :func:`_cv_summary`).
    """
    history = model.history_ or progress.history
    last_step = history[-1] if history and not cross_validated else {}
    last = {
        key if key.startswith(("train_", "val_")) else f"{FINAL_STATE_PREFIX}{key}": value
        for key, value in last_step.items()
        if key not in ("step", TIE_BREAK_ATTR)
    }
    return {
        key: float(value)
        for key, value in {**last, **metrics}.items()
        if isinstance(value, (int, float)) and math.isfinite(value)
    }


def _tie_break(
    metrics: Mapping[str, float], history: list[Mapping[str, float]], cross_validated: bool
) -> float | None:
    """The trial's ``tie_break_loss``: the smooth secondary that orders trials of equal value (lower first).

    Cross-validated: the mean of the folds' ``tie_break_loss`` (each fold's step metrics carry it). Else the
    validation loss of the model as it was kept (a torch model's chosen epoch: the weights early stopping
    restored), else the last step's ``tie_break_loss`` (a scikit-learn model on the validation split).
    """
    if cross_validated:
        values = [float(row[TIE_BREAK_ATTR]) for row in history
                  if "fold" in row and math.isfinite(row.get(TIE_BREAK_ATTR, math.nan))]
        return float(np.mean(values)) if values else None
    value = metrics.get("val_loss")
    if value is None and history:
        value = history[-1].get(TIE_BREAK_ATTR)
    return float(value) if value is not None and math.isfinite(value) else None


def _note_convergence_warnings(number: int, outcome: Mapping[str, Any], warned: list[bool]) -> None:
    """One line per worker, the first time a trial's fits did not converge: the counts are user attributes."""
    count = outcome.get("convergence_warnings")
    if count and not warned:
        logger.info("trial %d: %d ConvergenceWarning(s); counted per trial as the user attribute "
                    "convergence_warnings, not logged (raise max_iter or tol to converge)", number, count)
        warned.append(True)


def _chance_flag(number: int, metric: str, value: float, n_classes: int) -> dict[str, Any]:
    """``{"at_chance": True}`` (and a log line) when a trial ended no better than guessing, else nothing."""
    from models.metrics import at_chance, chance_level

    if not at_chance(metric, value, n_classes):
        return {}
    logger.warning(
        "trial %d ended at chance: %s = %.4f, chance %.4f (%d tissues); it learned nothing within its budget",
        number, metric, value, chance_level(metric, n_classes), n_classes,
    )
    return {"at_chance": True}


def _cv_summary(history: list[Mapping[str, float]], metric: str) -> dict[str, Any]:
    """``fold_scores`` (the metric on each held-out fold run, in fold order), ``cv_mean`` and ``cv_std``.

    ``cv_std`` is the population standard deviation (``numpy.std``, as scikit-learn reports CV spreads).
    """
    scores = [float(row[metric]) for row in history if "fold" in row and math.isfinite(row.get(metric, math.nan))]
    if not scores:
        return {}
    return {"fold_scores": scores, "cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores))}


def _progress_attrs(model: TissueModel | None, progress: _Progress) -> dict[str, Any]:
    """Steps, seconds, size, best epoch and device of a trial, however it ended (``model`` None: never built)."""
    elapsed = time.perf_counter() - progress.started
    if model is None:
        return {"steps_run": progress.steps, "train_seconds": round(elapsed, 3)}
    attrs: dict[str, Any] = {
        "steps_run": int(model.n_steps_ or progress.steps),
        "train_seconds": round(float(model.train_seconds_ or elapsed), 3),
        "n_parameters": int(model.n_parameters_),
        "device": model.device_,
    }
    if model.best_epoch_:  # torch: the epoch whose weights early stopping kept
        attrs["best_epoch"] = int(model.best_epoch_)
    if model.retrain_epochs_:  # torch: epochs for a retrain on train+val (tied-best median)
        attrs["retrain_epochs"] = int(model.retrain_epochs_)
    if getattr(model, "convergence_warnings_", 0):  # scikit-learn: counted, not printed dozens of times
        attrs["convergence_warnings"] = int(model.convergence_warnings_)
    return attrs


def _upload_learning_curves(trial: optuna.Trial, history: list[Mapping[str, float]]) -> None:
    if not history:
        return
    with best_effort(f"trial {trial.number}: learning curves not uploaded", logger):  # never fails the trial
        from hpo.results import record_trial_history, upload_learning_curves

        record_trial_history(trial, history)  # the trial note's table; the worker redraws the study figure
        upload_learning_curves(trial.study, trial, history)


def _upload_confusion_matrix(trial: optuna.Trial, model: Any, data: Any) -> None:
    with best_effort(f"trial {trial.number}: confusion matrix not uploaded", logger):  # never fails the trial
        from sklearn.metrics import confusion_matrix

        from hpo.results import record_confusion_matrix, upload_confusion_matrix

        X_val, y_val = data.split("val")
        predicted = model.predict(X_val)
        confusion = confusion_matrix(y_val, predicted, labels=np.arange(data.n_classes))
        record_confusion_matrix(trial, confusion.tolist(), list(data.tissues))  # the worker draws it on the study page
        upload_confusion_matrix(trial.study, trial, confusion, list(data.tissues))


def _threads(num_threads: int | None) -> int:
    """CPU threads the trial trains with (retraining with the same count reproduces it bit for bit)."""
    if num_threads:
        return int(num_threads)
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else (os.cpu_count() or 1)
