"""Launch K worker processes on this machine that share one study, and watch their progress.

The launcher validates the study file, prepares the data once (workers then hit the
cache), creates the study, and starts K ``hpo worker`` processes. CPU threads are split
between workers (``OMP_NUM_THREADS`` etc. are set before the child imports torch); with
several GPUs visible, workers are pinned round-robin through ``CUDA_VISIBLE_DEVICES``.

The launcher supervises its workers until all have exited, whatever its progress polling meets: an
unreachable storage only pauses the progress lines (:mod:`hpo.outage`); on any error of its own,
SIGTERM included, it interrupts its workers (their trials are failed and re-queued) before it exits.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from hpo.results import Counts, failure_stop_message, mean_trial_seconds, top_trials
from hpo.run._admission import TrialBudget
from hpo.run._fidelity import announce_fidelity, announce_folds, with_fold_count
from hpo.run._parent import parent_environment
from hpo.run._setup import open_study
from hpo.samplers import trials_in_study
from hpo.storage import (
    EXIT_CODE,
    StorageRetry,
    check_storage_url,
    is_storage_error,
    open_storage,
    quiet_optuna_disconnect_warnings,
    redact,
    resolve_storage_url,
)
from hpo.study import StudySpec, check_study_name, format_overrides, load_study_file

logger = logging.getLogger(__package__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HPO_NUM_THREADS")
STOP_GRACE_S = 10.0
"""Seconds interrupted workers get to fail their trial cleanly before they are interrupted again (or killed)."""


@dataclass(frozen=True)
class Progress:
    """A snapshot of a study while its workers run."""

    study_name: str
    elapsed: float
    counts: Counts
    n_trials: int | None
    best_value: float | None
    best_trial: int | None
    workers_alive: int
    mean_trial_seconds: float | None = None
    """Mean duration of the finished (complete or pruned) trials so far, for an ETA."""


@dataclass(frozen=True)
class LaunchResult:
    study_name: str
    storage_url: str
    progress: Progress
    exit_codes: list[int]
    failure: str = ""
    """Why the study stopped on ``max_failed_trials`` failed trials; empty when it did not."""
    storage_problem: str = ""
    """Why the storage was unreachable when the workers ended, if it was (else empty)."""
    metric: str = "value"
    """The study's metric (``val_balanced_accuracy``), for the closing lines."""
    unfinished: str = ""
    """Why the run stopped before the study's trial budget was spent; empty when it was (:func:`unfinished_reason`)."""

    @property
    def ok(self) -> bool:
        return not self.failure and all(code == 0 for code in self.exit_codes)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def visible_gpus(device: str) -> list[str]:
    """GPU ids workers may be pinned to: none for ``cpu``, else CUDA_VISIBLE_DEVICES or the driver's GPUs.

    The launcher never imports torch (issue 21: it doubled the time to the first trial): the GPUs are
    counted as the NVIDIA driver lists them (:func:`nvidia_gpu_count`). A worker whose torch cannot use
    its pinned GPU runs on the CPU, as it would unpinned.
    """
    if device == "cpu" or device.startswith("cuda:"):
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(nvidia_gpu_count())]


NVIDIA_PROC = "/proc/driver/nvidia/gpus"


def nvidia_gpu_count() -> int:
    """The NVIDIA GPUs of this machine, without torch: the driver's ``/proc`` entries, else ``nvidia-smi -L``."""
    try:
        return len(os.listdir(NVIDIA_PROC))
    except OSError:
        pass
    import shutil

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines()) if listing.returncode == 0 else 0


THREADS_ENV = "HPO_NUM_THREADS"


def default_threads(environ: Mapping[str, str] | None = None) -> int:
    """CPU threads per worker: ``$HPO_NUM_THREADS`` when set to a positive integer, else 1.

    Measured (benchmarks/threads.py, docs/performance.md): on a 2-core machine under load a worker with
    2 threads ran small trials 7x slower than with 1 (OpenMP threads wait for each other's cores), and
    2 one-thread workers gave at least the throughput of one two-thread worker. More throughput comes
    from more workers; a quiet machine with large trials may set HPO_NUM_THREADS.
    """
    value = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def worker_environment(index: int, workers: int, gpus: Sequence[str], cores: int) -> dict[str, str]:
    """The environment of worker ``index``: its CPU threads (:func:`default_threads`) and its GPU, if any."""
    env = {**os.environ, **parent_environment()}  # the worker dies with this process (hpo.run._parent)
    threads = str(default_threads(env))
    for variable in THREAD_VARIABLES:
        env[variable] = threads
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return env


def launch(
    study_file: str | Path,
    *,
    workers: int = 1,
    overrides: Mapping[str, Any] | None = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    poll_seconds: float = 2.0,
) -> LaunchResult:
    """Run ``workers`` worker processes on ``study_file`` until the study's budget is spent."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress lines replace Optuna's own
    quiet_optuna_disconnect_warnings()
    overrides = dict(overrides or {})
    prepared = _prepare(study_file, overrides, storage_url, study_name, workers)
    spec, url, name = prepared.spec, prepared.url, prepared.name
    cores, gpus = cpu_count(), visible_gpus(spec.device)
    logger.info(
        "study %r: %d worker(s), %d thread(s) each%s", name, workers, default_threads(),
        f", GPUs {', '.join(gpus)} round-robin" if gpus else "",
    )
    command = _worker_command(study_file, prepared, overrides)
    retry = StorageRetry(spec.storage.outage_window_s, where=f"storage {redact(url)}", label="hpo run")
    processes: list[subprocess.Popen] = []
    try:
        processes = start_workers(
            [command + ["--worker-index", str(index)] for index in range(workers)],
            [worker_environment(index, workers, gpus, cores) for index in range(workers)],
        )
        last = _supervise(processes, prepared, retry, on_progress, poll_seconds)
    except KeyboardInterrupt:
        # Ctrl-C reached the workers too (same process group): give them time to fail their trial cleanly,
        # then interrupt the ones that are still running (e.g. when only the launcher was signalled).
        _stop_workers(processes, signalled=True)
        raise
    except BaseException:
        _stop_workers(processes, signalled=False)  # never leave workers unsupervised
        raise
    return _result(prepared, processes, last, retry)


WORKERS_PER_CORE = 4
"""``--workers`` may be at most this many per CPU core (or per GPU, where there are more GPUs)."""
THREADS_PER_WORKER = 8
"""Threads a worker counts against RLIMIT_NPROC (training threads, heartbeat, SQLite, the parent watch)."""


def max_workers(gpus: Sequence[str] = ()) -> tuple[int, str]:
    """The most workers ``hpo run`` starts on this machine, and why that many.

    :data:`WORKERS_PER_CORE` per CPU core (or per visible GPU, if more), and no more than the process
    limit (``ulimit -u``) allows at :data:`THREADS_PER_WORKER` threads each. More workers do not finish
    a study sooner on one machine; more machines, each running ``hpo worker``, do.
    """
    cores = cpu_count()
    units, what = (len(gpus), f"{len(gpus)} GPUs") if len(gpus) > cores else (cores, f"{cores} CPU cores")
    bound, why = WORKERS_PER_CORE * units, f"{WORKERS_PER_CORE} per unit, {what}"
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
    except (ImportError, AttributeError, ValueError, OSError):
        soft = -1
    if soft != -1 and soft // THREADS_PER_WORKER < bound and soft != getattr(resource, "RLIM_INFINITY", -1):
        bound, why = max(1, soft // THREADS_PER_WORKER), f"process limit `ulimit -u` {soft} at {THREADS_PER_WORKER} threads per worker"
    return bound, why


def check_workers(workers: int, gpus: Sequence[str] = ()) -> int:
    """``workers`` if this machine can run that many, else ``ValueError`` naming the bound and why."""
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    bound, why = max_workers(gpus)
    if workers > bound:
        raise ValueError(
            f"--workers {workers}: at most {bound} on this machine ({why}); "
            "to go further, start `hpo worker` processes on more machines against the same storage"
        )
    return workers


class WorkerStartError(OSError):
    """A worker process could not be started (the ones started before it were stopped)."""


def start_workers(commands: Sequence[Sequence[str]], environments: Sequence[Mapping[str, str]]) -> list[subprocess.Popen]:
    """Start one process per command; if one cannot start, stop and reap those already started, then raise.

    Raises :class:`WorkerStartError` (naming which worker failed and why) for an ``OSError`` of the
    system (no more processes, no memory, a missing interpreter).
    """
    processes: list[subprocess.Popen] = []
    try:
        for command, environment in zip(commands, environments, strict=True):
            processes.append(subprocess.Popen(list(command), env=dict(environment)))
    except KeyboardInterrupt:
        _stop_workers(processes, signalled=True)
        raise
    except BaseException as error:
        _stop_workers(processes, signalled=False)
        if isinstance(error, OSError):
            raise WorkerStartError(
                f"could not start worker {len(processes) + 1} of {len(commands)}: {error.strerror or error}; "
                f"stopped the {len(processes)} started"
            ) from error
        raise
    return processes


@dataclass(frozen=True)
class _Prepared:
    """A validated study file, its storage and its study, ready for workers."""

    spec: StudySpec
    url: str
    name: str
    study: optuna.Study
    trials_before: int
    """Trials the study held before this run (shifts every worker's sampler seed the same way)."""


def _prepare(
    study_file: str | Path, overrides: Mapping[str, Any], storage_url: str | None, study_name: str | None,
    workers: int = 1,
) -> _Prepared:
    """Validate, prepare the data once (the workers then find it cached) and create the study."""
    from data_pipeline import prepare_dataset

    if study_name is not None:  # the cheap checks first, before the study file and its models load
        check_study_name(study_name, "--study-name")
    url = check_storage_url(resolve_storage_url(storage_url))
    spec: StudySpec = load_study_file(study_file, overrides)
    for warning in spec.warnings:
        logger.warning("%s: %s", study_file, warning)
    name = study_name if study_name is not None else spec.name
    check_workers(workers, visible_gpus(spec.device))  # before the data is prepared and workers start
    storage = open_storage(url, heartbeat_interval=None)
    data = prepare_dataset(spec.data)
    study_file_spec, spec = spec, with_fold_count(spec, data)  # CV: the folds the smallest tissue allows
    open_study(spec, storage, study_name=name, data_fingerprint=data.fingerprint)
    study = optuna.load_study(study_name=name, storage=storage)
    announce_fidelity(study, spec, data)  # fidelity = "auto": one line, and the study keeps the choice
    announce_folds(study, study_file_spec, data)  # CV: the fold count, one line, kept on the study
    # counted once for all workers, before any starts: their sampler seeds do not depend on who opened first
    return _Prepared(spec, url, name, study, trials_in_study(storage, name))


def _worker_command(study_file: str | Path, prepared: _Prepared, overrides: Mapping[str, Any]) -> list[str]:
    command = [
        sys.executable, "-m", "hpo.cli", "worker", str(study_file), "--storage", prepared.url,
        "--study-name", prepared.name, "--trials-before", str(prepared.trials_before),
    ]
    return command + [arg for assignment in format_overrides(overrides) for arg in ("--set", assignment)]


def _supervise(
    processes: Sequence[subprocess.Popen], prepared: _Prepared, retry: StorageRetry,
    on_progress: Callable[[Progress], None] | None, poll_seconds: float,
) -> Progress:
    """Report progress every ``poll_seconds`` until every worker has exited; the last snapshot."""
    started = time.monotonic()
    last = Progress(prepared.name, 0.0, Counts(), prepared.spec.n_trials, None, None, len(processes))
    with _terminate_raises():
        while True:
            alive = sum(p.poll() is None for p in processes)
            last = _guarded_snapshot(prepared.study, prepared.spec, prepared.name, started, alive, retry) or (
                dataclasses.replace(last, elapsed=time.monotonic() - started, workers_alive=alive)
            )
            if on_progress is not None and not retry.in_outage:
                on_progress(last)
            if alive == 0:
                return last
            time.sleep(poll_seconds)


def _result(
    prepared: _Prepared, processes: Sequence[subprocess.Popen], last: Progress, retry: StorageRetry
) -> LaunchResult:
    """How the run ended: the workers' exit codes, and why the study stopped if not on its budget."""
    spec = prepared.spec
    codes = [p.returncode for p in processes]
    problem = f"{retry.where} unreachable: {retry.reason}" if retry.in_outage else ""
    if not problem and EXIT_CODE in codes:  # the storage came back after the workers' windows ran out
        problem = f"{retry.where} was unreachable for longer than the outage window ({retry.window_s:g} s)"
    failure = ""
    if not problem and TrialBudget(spec.n_trials, spec.failure_cap).stopped_on_failures(last.counts):
        failure = failure_stop_message(prepared.study, spec.failure_cap)
    unfinished = unfinished_reason(last.counts, spec.n_trials, spec.timeout, codes, problem=problem, failure=failure)
    return LaunchResult(prepared.name, prepared.url, last, codes, failure=failure, storage_problem=problem,
                        metric=spec.metric, unfinished=unfinished)


def unfinished_reason(
    counts: Counts, n_trials: int | None, timeout: float | None, exit_codes: Sequence[int], *,
    problem: str = "", failure: str = "",
) -> str:
    """Why a run whose workers all exited stopped before ``n_trials`` trials finished; empty if they did.

    A study without ``n_trials`` runs until its ``timeout``: reaching it is its end, not a stop.
    """
    if n_trials is None or counts.finished >= n_trials:
        return ""
    if problem:
        return problem
    if failure:
        return failure
    if all(code == 0 for code in exit_codes) and timeout is not None:
        return f"timeout of {timeout:g} s reached"
    bad = [code for code in exit_codes if code != 0]
    return f"worker exit codes {bad}" if bad else "the workers stopped"


def _guarded_snapshot(
    study: optuna.Study, spec: StudySpec, name: str, started: float, alive: int, retry: StorageRetry
) -> Progress | None:
    """The study's progress, or None while the storage is unreachable (noted once in ``retry``; workers go on)."""
    try:
        progress = _snapshot(study, spec, name, started, alive)
    except Exception as error:
        if not is_storage_error(error):
            raise
        retry.note(error, stop=False)  # the workers have windows of their own; the launcher watches them
        return None
    retry.succeeded()
    return progress


def _stop_workers(processes: Sequence[subprocess.Popen], *, signalled: bool) -> None:
    """Interrupt (unless ``signalled`` already, by Ctrl-C) and reap every worker; kill what will not stop."""
    if not signalled:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # the worker fails its trial and re-queues it
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if signalled:
                process.send_signal(signal.SIGINT)
            else:
                process.kill()
    for process in processes:
        process.wait()


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """Inside: SIGTERM (SLURM, ``timeout``, ``kill``) raises SystemExit(143), so the workers get stopped too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _snapshot(study: optuna.Study, spec: StudySpec, name: str, started: float, alive: int) -> Progress:
    """Counts, best and mean duration from small queries: no poll loads every trial (RDB storages)."""
    counts = Counts.of(study)
    top = top_trials(study, 1)  # by the first objective, like every surface
    best_value, best_number = (top[0].values[0], top[0].number) if top else (None, None)
    mean = mean_trial_seconds(study)
    return Progress(name, time.monotonic() - started, counts, spec.n_trials, best_value, best_number, alive, mean)
