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

from hpo.results import Counts, current_best, describes_itself, failure_stop_message, refresh_after_trial, worker_id
from hpo.run._admission import AdmissionLock, Decision, TrialBudget
from hpo.run._setup import open_study
from hpo.samplers import sampler_seed, trials_in_study
from hpo.storage import (
    DEFAULT_OUTAGE_WINDOW_S,
    SilentTrials,
    StorageOutage,
    StorageRetry,
    TrialStateCounter,
    cached_trial,
    fail_stale_trials,
    is_storage_error,
    open_storage,
    quiet_optuna_disconnect_warnings,
    redact,
    resolve_storage_url,
    set_user_attrs,
    short_reason,
    trial_id,
    warm_trial_cache,
)
from hpo.study import StudySpec, check_study_name

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
    stopped_on_failures: bool = False
    """The study stopped because ``max_failed_trials`` trials failed, not because its budget was spent."""

def run_worker(
    spec: StudySpec,
    *,
    storage_url: str | None = None,
    study_name: str | None = None,
    worker_index: int | None = None,
    device: str | None = None,
    num_threads: int | None = None,
    trials_before: int | None = None,
) -> WorkerReport:
    """Run trials of ``spec`` against the storage until the study's budget is spent.

    ``trials_before`` is how many trials the study held when this run began (``hpo run`` counts once
    for all its workers); it shifts the sampler seed (:func:`hpo.samplers.seeding.sampler_seed`) so a
    resumed study proposes new configurations. By default the worker counts when it opens the study.
    """
    from data_pipeline import prepare_dataset

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we log one line per trial ourselves
    name = check_study_name(study_name, "--study-name") if study_name is not None else spec.name
    quiet_optuna_disconnect_warnings()  # an outage is told in one line (hpo.outage), not with Optuna's SQL
    url = resolve_storage_url(storage_url)
    storage = open_storage(
        url,
        heartbeat_interval=spec.heartbeat.interval,
        grace_period=spec.heartbeat.grace_period,
        max_retry=spec.heartbeat.max_retry,
    )
    data = prepare_dataset(spec.data)
    from hpo.run._fidelity import with_fold_count

    spec = with_fold_count(spec, data)  # as the launcher did: the fold count the smallest tissue allows
    if trials_before is None:
        trials_before = trials_in_study(storage, name)
    seed = sampler_seed(spec.sampler.seed, worker_index, trials_before)
    study = open_study(spec, storage, study_name=name, sampler_seed=seed, data_fingerprint=data.fingerprint)
    device = _resolve_device(device or spec.device)
    label = f"worker {worker_index}" if worker_index is not None else f"worker {worker_id()}"
    retry = StorageRetry(spec.storage.outage_window_s, where=f"storage {redact(url)}", label=label)
    objective = _build_objective(spec, data, device, num_threads, retry)
    preload_trial_imports(spec.model)
    # Optuna's cached storage reads every trial of the study at the first ask and keeps them for the worker's
    # life: read them now (with plain queries on an RDB storage), so the freeze covers them too (a 10,000-trial
    # study: else 0.45 s per trial of gc).
    retry.call(warm_trial_cache, study)
    retry.call(study.get_trials, deepcopy=False)
    # Everything loaded so far (torch and torch._dynamo, optuna, sqlalchemy, plotly, the data) lives as long
    # as the worker: move it out of the collector's reach, or the gc.collect() after each trial walks
    # ~150-300k objects (0.05-0.5 s per trial on 2 cores; benchmarks/overhead.py).
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
    if report.stopped_on_failures:
        report.stop_reason = failure_stop_message(study, spec.failure_cap)
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
    grace = _grace_period(storage)
    silent = SilentTrials(grace, outages=lambda: retry.outages) if grace is not None else None
    counter = Counts.counter_for(study)  # admission counts read only the study's recent trials per turn
    while True:
        retry.call(_fail_stale_trials, study, silent, label)
        decision, why, trial, counts = retry.call(_admit, study, budget, lock, counter)  # nothing is created unless ask returned
        if trial is not None and _heartbeat_interval(storage):
            try:
                retry.call(storage.record_heartbeat, trial_id(trial))  # stale detection covers it from now on
            except KeyboardInterrupt:
                _fail_interrupted(study, trial, storage)
                raise
        if decision is Decision.DONE:
            report.stop_reason = why
            report.stopped_on_failures = budget.stopped_on_failures(counts)
            break
        if trial is None:
            if time.monotonic() - last_wait_log >= WAIT_LOG_S:  # a waiting worker says so, not silence
                retry.call(_log_wait, study, storage, label)
                last_wait_log = time.monotonic()
            time.sleep(WAIT_POLL_S)
            continue
        last_wait_log = -math.inf
        try:
            state = _run_trial(study, trial, objective, storage, label, metric, log_trials, retry=retry)
        except KeyboardInterrupt:  # also before the objective started: the trial asked for is not left RUNNING
            _fail_interrupted(study, trial, storage)
            raise
        report.ran += 1
        report.complete += state == TrialState.COMPLETE
        report.pruned += state == TrialState.PRUNED
        report.failed += state == TrialState.FAIL
        if state in (TrialState.COMPLETE, TrialState.PRUNED) and describes_itself(trial):  # none for test functions
            retry.call(_refresh_figures, study, trial, metric)
        if free_memory:
            _free_memory()
    return report

def _refresh_figures(study: optuna.Study, trial: optuna.Trial, metric: str) -> None:
    """After ``trial`` ended: its note, the study note's headline and the study page's figures.

    Not under the admission lock (no worker waits for this to start its next trial): what is rewritten
    is written in one transaction that only other workers' refreshes wait for, and its cost does not
    grow with the study (:func:`hpo.results.refresh_after_trial`).
    """
    refresh_after_trial(study, trial, metric=metric)

def _admit(
    study: optuna.Study, budget: TrialBudget, lock: AdmissionLock, counter: TrialStateCounter | None = None,
) -> tuple[Decision, str, optuna.Trial | None, Counts]:
    """Under the study's lock: count, decide and (if the budget allows) ask for a trial."""
    with lock.hold():
        counts = Counts.of(study, counter)
        decision, why = budget.decide(counts)
        return decision, why, _ask(study) if decision is Decision.RUN else None, counts

def _log_wait(study: optuna.Study, storage: optuna.storages.BaseStorage, label: str) -> None:
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    logger.info("%s", wait_message(label, running, study.study_name, _grace_period(storage)))


def _grace_period(storage: optuna.storages.BaseStorage) -> float | None:
    """Seconds without a heartbeat after which a trial counts as its dead worker's; None without heartbeats."""
    interval = _heartbeat_interval(storage)
    return (getattr(storage, "grace_period", None) or 2 * interval) if interval else None  # Optuna's default grace

def wait_message(label: str, running: list[int], study_name: str, grace: float | None) -> str:
    """``worker 1: waiting for #14, #15 (re-run if silent 30 s, or `hpo abandon STUDY N`)``.

    ``grace``: seconds without a heartbeat after which a dead worker's trial is failed and re-run (also
    one that never beat: this worker fails it after watching it that long, :class:`hpo.storage.SilentTrials`);
    ``None`` for a storage without heartbeats, where only ``hpo abandon`` frees it. The trial numbers
    are shortened (``#3-#7``, ``+4 more``) to keep the message within the trial lines' width (for study
    names up to 14 characters; a longer name makes it that much longer).
    """
    abandon = f"`hpo abandon {study_name} N`"
    if grace is not None:
        outcome = f"re-run if silent {grace:g} s, or {abandon}"
    else:
        outcome = f"no heartbeats: if stuck, {abandon}"
    if not running:  # they finished between the admission count and this look
        return f"{label}: waiting for running trials ({outcome})"
    head = f"{label}: waiting for "
    width = max(10, TRIAL_LINE_WIDTH - len(head) - len(outcome) - 3)
    return f"{head}{trial_numbers(running, width)} ({outcome})"

def trial_numbers(numbers: list[int], width: int) -> str:
    """``[3, 4, 5, 6, 9]`` -> ``#3-#6, #9``; what does not fit ``width`` characters becomes ``+K more``."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    items = [(f"#{run[0]}-#{run[-1]}" if len(run) > 2 else ", ".join(f"#{n}" for n in run), len(run)) for run in runs]
    shown, count = [], 0
    for position, (text, size) in enumerate(items):
        more = f" +{len(numbers) - count - size} more" if position < len(items) - 1 else ""
        if shown and len(", ".join([*shown, text])) + len(more) > width:
            return f"{', '.join(shown)} +{len(numbers) - count} more"
        shown.append(text)
        count += size
    return ", ".join(shown)

def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for study.optimize; this loop beats itself (_heartbeat).
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return study.ask()

def _build_objective(
    spec: StudySpec, data: Any, device: str, num_threads: int | None, retry: StorageRetry | None = None
) -> Callable[[optuna.Trial], float]:
    from hpo.run._objective import build_objective

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
        with _heartbeat(storage, trial_id(trial), retry):
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
    cached = cached_trial(trial)
    return cached.system_attrs if cached is not None else storage.get_trial(trial_id(trial)).system_attrs

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
    if storage.get_trial(trial_id(trial)).state.is_finished():
        return
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=TrialState.FAIL)
    requeue = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if requeue is not None:
        requeue(study, storage.get_trial(trial_id(trial)))

TRIAL_LINE_WIDTH = 94
"""Characters of a trial's log message: with the ``HH:MM:SS INFO hpo.worker: `` prefix, 120 in all."""

def _log_trial(
    study: optuna.Study, trial: optuna.Trial, state: TrialState, value: float | None, reason: str,
    seconds: float, label: str, metric: str, retried: int | None,
) -> None:
    """One short line per finished trial (all parameters and the full reason at debug level)."""
    again = f" (retry of #{retried})" if retried is not None else ""
    head = f"{label}: trial {trial.number}{again}"
    if state is TrialState.COMPLETE:
        best = getattr(current_best(study), "number", None) == trial.number  # flat per trial: the tracker
        line, level = f"{head} complete {value:.4f} in {seconds:.1f}s{', new best' if best else ''}", logging.INFO
    elif state is TrialState.PRUNED:
        line, level = f"{head} pruned in {seconds:.1f}s", logging.INFO
    else:
        line, level = f"{head} failed in {seconds:.1f}s: {_cut(reason, 50)}", logging.WARNING
    logger.log(level, "%s", _with_params(line, trial.params))
    if state is TrialState.PRUNED and reason:  # in full, on a line of its own: the threshold it lost to
        logger.info("%s: trial %d %s", label, trial.number, " ".join(reason.split()))
    logger.debug("%s: trial %d %s=%s: %s [%s]", label, trial.number, metric, value, reason,
                 ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()))

def _with_params(line: str, params: dict[str, Any]) -> str:
    """``line [lr=0.003 dropout=0.2 ...]`` with as many (abbreviated) parameters as fit the width."""
    budget = TRIAL_LINE_WIDTH - len(line) - 3
    shown: list[str] = []
    for position, (name, value) in enumerate(params.items()):
        item = f"{_abbreviate(name)}={_short(value, 3)}"
        rest = position < len(params) - 1
        if len(" ".join([*shown, item])) + (4 if rest else 0) > budget:
            shown.append("...")
            break
        shown.append(item)
    text = " ".join(shown)
    return f"{line} [{text}]" if shown and len(text) <= max(budget, 1) else line

def _abbreviate(name: str) -> str:
    """``weight_decay`` -> ``wei_dec``: names over 10 characters keep 3 letters of each part."""
    return name if len(name) <= 10 else "_".join(part[:3] for part in name.split("_"))

def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."

def _short(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

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

def _fail_stale_trials(study: optuna.Study, silent: SilentTrials | None = None, label: str = "worker") -> None:
    """Fail trials whose worker stopped beating (or, seen by ``silent``, never beat); the retry callback re-enqueues them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        numbers = fail_stale_trials(study, silent)
    if numbers:
        logger.warning(
            "%s: failed %s of dead worker(s) (no heartbeat within the grace period); queued again",
            label, trial_numbers(numbers, 40),
        )

TORCH_TRIAL_IMPORTS = ("torch._dynamo",)
"""What a PyTorch trial imports on its first optimizer step (torch._dynamo: ~120k objects, with sympy)."""


def preload_trial_imports(model: str) -> list[str]:
    """Import now what the first trial of ``model`` would import lazily, so that ``gc.freeze()`` covers it:
    torch._dynamo for a PyTorch model, and plotly's figure classes (loaded on first use) for the
    classification figures. Returns the modules imported; one that is missing is skipped.
    """
    import importlib

    try:
        from models.specs import get_spec

        model_spec = get_spec(model)
    except (ImportError, ValueError):
        return []
    loaded = []
    for name in TORCH_TRIAL_IMPORTS if model_spec.family == "torch" else ():
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
            loaded.append(name)
    if model_spec.task == "classification":
        with contextlib.suppress(ImportError):
            from hpo.results import confusion_matrix_figure

            confusion_matrix_figure({"tissues": ["a", "b"], "matrix": [[1, 0], [0, 1]]}, title="")  # loads plotly's classes
            loaded.append("plotly")
    return loaded


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
