"""One study worker: loads the data once, then asks, runs and tells trials until the budget is spent.

Optuna's ``study.optimize`` cannot make "exactly N finished trials across K workers"
hold (it counts per process and checks after the fact), so this loop does the
counting under a shared lock (:mod:`hpo.admission`) and otherwise uses Optuna's
machinery: ``study.ask``/``study.tell``, the storage heartbeat, ``fail_stale_trials`` and
the :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` configured in
:func:`hpo.storage.open_storage`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.admission import AdmissionLock, Counts, Decision, TrialBudget
from hpo.outage import (
    DEFAULT_OUTAGE_WINDOW_S, StorageOutage, StorageRetry, is_storage_error, quiet_optuna_disconnect_warnings, short_reason,
)
from hpo.provenance import worker_id
from hpo.storage import open_storage, redact, resolve_storage_url
from hpo.studyfile import StudySpec
from hpo.studysetup import open_study
from hpo.trial_writes import set_user_attrs

logger = logging.getLogger("hpo.worker")

WAIT_POLL_S = 1.0
WAIT_LOG_S = 60.0
"""A worker waiting for other workers' running trials logs why at once, then every this many seconds."""


@dataclass
class WorkerReport:
    """What one worker did."""

    ran: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    stop_reason: str = ""


def run_worker(
    spec: StudySpec,
    *,
    storage_url: str | None = None,
    study_name: str | None = None,
    worker_index: int | None = None,
    device: str | None = None,
    num_threads: int | None = None,
) -> WorkerReport:
    """Run trials of ``spec`` against the storage until the study's budget is spent."""
    from data_pipeline import prepare_dataset

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we log one line per trial ourselves
    quiet_optuna_disconnect_warnings()  # an outage is told in one line (hpo.outage), not with Optuna's SQL
    url = resolve_storage_url(storage_url)
    storage = open_storage(
        url,
        heartbeat_interval=spec.heartbeat.interval,
        grace_period=spec.heartbeat.grace_period,
        max_retry=spec.heartbeat.max_retry,
    )
    data = prepare_dataset(spec.data)
    name = study_name or spec.name
    study = open_study(
        spec, storage, study_name=name, sampler_seed=_worker_seed(spec.sampler.seed, worker_index),
        data_fingerprint=data.fingerprint,
    )
    device = _resolve_device(device or spec.device)
    label = f"worker {worker_index}" if worker_index is not None else f"worker {worker_id()}"
    retry = StorageRetry(spec.storage.outage_window_s, where=f"storage {redact(url)}", label=label)
    objective = _build_objective(spec, data, device, num_threads, retry)
    # Everything loaded so far (torch, optuna, sqlalchemy, the data) lives as long as the worker: move it
    # out of the collector's reach, or the gc.collect() after each trial walks ~300k objects
    # (0.15-0.5 s per trial on 2 cores; benchmarks/overhead.py).
    gc.freeze()
    budget = TrialBudget(spec.n_trials, spec.failure_cap, spec.timeout, time.monotonic())
    logger.info("%s: study %r, %s on %s, data %s", label, name, spec.model, device, data.fingerprint[:12])
    lock = AdmissionLock(url, name)
    try:
        report = trial_loop(
            study, objective, storage=storage, budget=budget, lock=lock, label=label, metric=spec.metric, retry=retry,
        )
    finally:
        lock.close()
    logger.info(
        "%s: done (%s); ran %d: %d complete, %d pruned, %d failed",
        label, report.stop_reason, report.ran, report.complete, report.pruned, report.failed,
    )
    return report


def trial_loop(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    storage: optuna.storages.BaseStorage,
    budget: TrialBudget,
    lock: AdmissionLock,
    label: str = "worker",
    metric: str = "value",
    free_memory: bool = True,
    log_trials: bool = True,
    retry: StorageRetry | None = None,
) -> WorkerReport:
    """Ask, run and tell trials of ``study`` until ``budget`` says the study is done.

    The admission decision and ``study.ask()`` happen under ``lock``; stale trials of
    dead workers are failed (and, through the storage's callback, re-enqueued) first.
    Every storage step waits out an outage of the storage through ``retry`` (:mod:`hpo.outage`);
    past its window :class:`~hpo.outage.StorageOutage` ends the loop.
    """
    retry = retry or StorageRetry(DEFAULT_OUTAGE_WINDOW_S, label=label)
    report = WorkerReport()
    last_wait_log = -math.inf
    while True:
        retry.call(_fail_stale_trials, study)
        decision, why, trial = retry.call(_admit, study, budget, lock)  # nothing is created unless ask returned
        if trial is not None and _heartbeat_interval(storage):
            retry.call(storage.record_heartbeat, trial._trial_id)  # stale detection covers it from now on
        if decision is Decision.DONE:
            report.stop_reason = why
            break
        if trial is None:
            if time.monotonic() - last_wait_log >= WAIT_LOG_S:  # a waiting worker says so, not silence
                retry.call(_log_wait, study, storage, label, why)
                last_wait_log = time.monotonic()
            time.sleep(WAIT_POLL_S)
            continue
        last_wait_log = -math.inf
        state = _run_trial(study, trial, objective, storage, label, metric, log_trials, retry=retry)
        report.ran += 1
        report.complete += state == TrialState.COMPLETE
        report.pruned += state == TrialState.PRUNED
        report.failed += state == TrialState.FAIL
        if free_memory:
            _free_memory()
    return report


def _admit(study: optuna.Study, budget: TrialBudget, lock: AdmissionLock) -> tuple[Decision, str, optuna.Trial | None]:
    """Under the study's lock: count, decide and (if the budget allows) ask for a trial."""
    with lock.hold():
        decision, why = budget.decide(Counts.of(study))
        return decision, why, _ask(study) if decision is Decision.RUN else None


def _log_wait(study: optuna.Study, storage: optuna.storages.BaseStorage, label: str, why: str) -> None:
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    shown = ", ".join(f"#{n}" for n in running[:10]) + (" ..." if len(running) > 10 else "")
    interval = _heartbeat_interval(storage)
    if interval:
        grace = getattr(storage, "grace_period", None) or 2 * interval  # Optuna's default grace
        outcome = f"a trial whose worker died is failed and re-run after {grace} s without a heartbeat"
    else:
        outcome = "this storage has no heartbeats, so a trial whose worker died is never failed automatically"
    logger.info(
        "%s: waiting: %s (running: %s); %s (a trial that never beat stays: `hpo abandon %s N`)",
        label, why, shown or "none", outcome, study.study_name,
    )


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for study.optimize; this loop beats itself (_heartbeat).
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return study.ask()


def _build_objective(
    spec: StudySpec, data: Any, device: str, num_threads: int | None, retry: StorageRetry | None = None
) -> Callable[[optuna.Trial], float]:
    from hpo.objective import build_objective

    return build_objective(spec, data, device=device, num_threads=num_threads, retry=retry)


def _run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], float],
    storage: optuna.storages.BaseStorage,
    label: str,
    metric: str,
    log_trials: bool = True,
    *,
    retry: StorageRetry | None = None,
) -> TrialState:
    retry = retry or StorageRetry(DEFAULT_OUTAGE_WINDOW_S, label=label)
    started = time.perf_counter()
    attrs = {"worker": worker_id()}
    for inherited in ("fail_reason", "prune_reason"):  # a retried trial starts with its original's attributes
        if trial.user_attrs.get(inherited):
            attrs[inherited] = ""
    retry.call(set_user_attrs, trial, attrs)
    retried = retry.call(_system_attrs_at_ask, trial, storage).get("failed_trial")
    value: float | None = None
    reason = ""
    try:
        with _heartbeat(storage, trial._trial_id, retry):
            value = objective(trial)
        state = TrialState.COMPLETE
    except optuna.TrialPruned as error:
        state, reason = TrialState.PRUNED, str(error)
    except KeyboardInterrupt:
        _fail_interrupted(study, trial, storage)
        raise
    except StorageOutage:
        raise  # past the window: the trial stays RUNNING; heartbeats fail and re-queue it once the storage is back
    except optuna.exceptions.UpdateFinishedTrialError:
        return _taken_over(label, trial)  # a write of the objective found the trial failed as stale
    except Exception as error:  # the worker goes on: one bad trial must not end the study
        if is_storage_error(error):  # a storage call the objective does not retry: not the configuration's fault
            retry.note(error)
            retry.call(_fail_and_requeue, study, trial, storage, STORAGE_OUTAGE)
            logger.warning("%s: trial %d lost the storage; failed and queued again: %s", label, trial.number, short_reason(error))
            return TrialState.FAIL
        state, reason = TrialState.FAIL, f"{type(error).__name__}: {error}"
        logger.debug("trial %d failed", trial.number, exc_info=True)
    if state is TrialState.COMPLETE and (value is None or not math.isfinite(value)):
        state, reason = TrialState.FAIL, f"objective returned {value!r}"
    try:
        if state is TrialState.FAIL and not trial.user_attrs.get("fail_reason"):
            retry.call(trial.set_user_attr, "fail_reason", reason[:2000])
        told = retry.call(_tell, study, trial, value if state is TrialState.COMPLETE else None, state)
    except optuna.exceptions.UpdateFinishedTrialError:
        told = None
    if told is not state:
        return _taken_over(label, trial)
    seconds = time.perf_counter() - started
    if log_trials or state is TrialState.FAIL:
        retry.call(_log_trial, study, trial, state, value, reason, seconds, label, metric, retried)
    return state


def _taken_over(label: str, trial: optuna.Trial) -> TrialState:
    """The trial was finished by others: failed as stale (and re-queued) while this worker could not beat."""
    logger.warning(
        "%s: trial %d was failed meanwhile as stale (no heartbeat while the storage was unreachable); its result "
        "is dropped, a retry re-runs its configuration", label, trial.number,
    )
    return TrialState.FAIL


def _tell(study: optuna.Study, trial: optuna.Trial, value: float | None, state: TrialState) -> TrialState:
    """``study.tell``, safe to repeat after a lost connection; the trial's state afterwards.

    A trial already finished is left as it is: a repeated tell whose first try reached the database,
    or a trial other workers failed as stale while this worker could not beat.
    """
    return study.tell(trial, value, state=state, skip_if_finished=True).state


def _system_attrs_at_ask(trial: optuna.Trial, storage: optuna.storages.BaseStorage) -> dict[str, Any]:
    """The trial's system attributes as ``study.ask`` loaded them (a retry's ``failed_trial`` is set at enqueue)."""
    cached = getattr(trial, "_cached_frozen_trial", None)
    return cached.system_attrs if cached is not None else storage.get_trial(trial._trial_id).system_attrs


INTERRUPTED = "interrupted"
STORAGE_OUTAGE = "storage outage"


def _fail_interrupted(study: optuna.Study, trial: optuna.Trial, storage: optuna.storages.BaseStorage) -> None:
    """Ctrl-C / SIGINT: fail the trial and queue the same configuration again, so a resumed study re-runs it.

    Interrupted trials do not count toward ``max_failed_trials``. With the storage unreachable the
    trial stays RUNNING (Ctrl-C does not wait for it); heartbeats fail and re-queue it later.
    """
    try:
        _fail_and_requeue(study, trial, storage, INTERRUPTED)
    except Exception as error:
        if not is_storage_error(error):
            raise
        logger.warning(
            "trial %d left RUNNING, storage unreachable (%s): heartbeats fail and re-queue it once it is back",
            trial.number, short_reason(error),
        )


def _fail_and_requeue(study: optuna.Study, trial: optuna.Trial, storage: optuna.storages.BaseStorage, reason: str) -> None:
    """Fail the trial with ``fail_reason = reason`` (a reason in NOT_FAILURES is not counted) and queue a copy.

    A trial finished already (failed as stale, and re-queued then) is left as it is.
    """
    if storage.get_trial(trial._trial_id).state.is_finished():
        return
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=TrialState.FAIL)
    requeue = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if requeue is not None:
        requeue(study, storage.get_trial(trial._trial_id))


def _log_trial(
    study: optuna.Study, trial: optuna.Trial, state: TrialState, value: float | None, reason: str,
    seconds: float, label: str, metric: str, retried: int | None,
) -> None:
    params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    again = f" (retry of trial {retried})" if retried is not None else ""
    if state is TrialState.COMPLETE:
        try:
            best_trial = study.best_trial  # one query for value and number, not two
            best = f"best {best_trial.value:.4f} (trial {best_trial.number})"
        except ValueError:
            best = ""
        logger.info("%s: trial %d%s complete %s=%.4f in %.1fs; %s [%s]", label, trial.number, again, metric, value, seconds, best, params)
    elif state is TrialState.PRUNED:
        logger.info("%s: trial %d%s pruned in %.1fs: %s [%s]", label, trial.number, again, seconds, reason, params)
    else:
        logger.warning("%s: trial %d%s failed in %.1fs: %s [%s]", label, trial.number, again, seconds, reason, params)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@contextlib.contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, trial_id: int, retry: StorageRetry | None = None) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (what ``study.optimize`` does).

    A beat that finds the storage unreachable is reported to ``retry`` (one line per outage), never raised.
    """
    interval = _heartbeat_interval(storage)
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception as error:  # a hiccup of the database must not kill the trial
                if retry is not None and is_storage_error(error):
                    retry.note(error, stop=False)
                else:
                    logger.warning("heartbeat of trial id %d not recorded: %s", trial_id, error)
            else:
                if retry is not None:
                    retry.succeeded()

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if getter is not None else None


def _fail_stale_trials(study: optuna.Study) -> None:
    """Fail trials whose worker stopped beating; the storage's retry callback re-enqueues them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _worker_seed(seed: int | None, worker_index: int | None) -> int | None:
    """Distinct sampler seeds per worker, so parallel workers do not draw the same points."""
    if seed is None:
        return None
    if worker_index is None:
        import os

        return (seed + os.getpid() * 7919) % (2**31)
    return seed + 1000 * worker_index


def _resolve_device(device: str) -> str:
    """Resolve ``auto`` once per worker; torch is imported only here, after thread env is set."""
    try:
        from models.device import resolve_device
    except ImportError:
        return device
    return str(resolve_device(device))


def _free_memory() -> None:
    """Between trials: drop garbage and cached accelerator memory so long workers do not grow."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
