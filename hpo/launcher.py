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

from hpo.admission import Counts
from hpo.outage import EXIT_CODE, StorageRetry, is_storage_error, quiet_optuna_disconnect_warnings
from hpo.overrides import format_overrides
from hpo.storage import open_storage, redact, resolve_storage_url
from hpo.studyfile import StudySpec, load_study_file
from hpo.studysetup import open_study

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class LaunchResult:
    study_name: str
    storage_url: str
    progress: Progress
    exit_codes: list[int]
    storage_problem: str = ""
    """Why the storage was unreachable when the workers ended, if it was (else empty)."""

    @property
    def ok(self) -> bool:
        return all(code == 0 for code in self.exit_codes)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def visible_gpus(device: str) -> list[str]:
    """GPU ids workers may be pinned to: none for ``cpu``, else CUDA_VISIBLE_DEVICES or all CUDA devices."""
    if device == "cpu" or device.startswith("cuda:"):
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except ImportError:
        return []


def worker_environment(index: int, workers: int, gpus: Sequence[str], cores: int) -> dict[str, str]:
    """The environment of worker ``index``: its share of the CPU threads and its GPU, if any."""
    env = dict(os.environ)
    threads = str(max(1, cores // max(1, workers)))
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
    from data_pipeline import prepare_dataset

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress lines replace Optuna's own
    quiet_optuna_disconnect_warnings()
    overrides = dict(overrides or {})
    spec: StudySpec = load_study_file(study_file, overrides)
    url = resolve_storage_url(storage_url)
    name = study_name or spec.name
    storage = open_storage(url, heartbeat_interval=None)
    data = prepare_dataset(spec.data)  # once here, so that the workers find it cached
    open_study(spec, storage, study_name=name, data_fingerprint=data.fingerprint)
    study = optuna.load_study(study_name=name, storage=storage)

    cores, gpus = cpu_count(), visible_gpus(spec.device)
    command = [sys.executable, "-m", "hpo.commands.worker", str(study_file), "--storage", url, "--study-name", name]
    command += [arg for assignment in format_overrides(overrides) for arg in ("--set", assignment)]
    logger.info(
        "study %r: %d worker(s), %d thread(s) each%s", name, workers, max(1, cores // workers),
        f", GPUs {', '.join(gpus)} round-robin" if gpus else "",
    )
    processes = [
        subprocess.Popen(command + ["--worker-index", str(i)], env=worker_environment(i, workers, gpus, cores))
        for i in range(workers)
    ]
    retry = StorageRetry(spec.storage.outage_window_s, where=f"storage {redact(url)}", label="hpo run")
    started = time.monotonic()
    last = Progress(name, 0.0, Counts(), spec.n_trials, None, None, len(processes))
    try:
        with _terminate_raises():
            while True:
                alive = sum(p.poll() is None for p in processes)
                last = _guarded_snapshot(study, spec, name, started, alive, retry) or dataclasses.replace(
                    last, elapsed=time.monotonic() - started, workers_alive=alive
                )
                if on_progress is not None and not retry.in_outage:
                    on_progress(last)
                if alive == 0:
                    break
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        # Ctrl-C reached the workers too (same process group): give them time to fail their trial cleanly,
        # then interrupt the ones that are still running (e.g. when only the launcher was signalled).
        _stop_workers(processes, signalled=True)
        raise
    except BaseException:
        _stop_workers(processes, signalled=False)  # never leave workers unsupervised
        raise
    codes = [p.returncode for p in processes]
    problem = f"{retry.where} unreachable: {retry.reason}" if retry.in_outage else ""
    if not problem and EXIT_CODE in codes:  # the storage came back after the workers' windows ran out
        problem = f"{retry.where} was unreachable for longer than the outage window ({retry.window_s:g} s)"
    return LaunchResult(name, url, last, codes, problem)


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
    counts = Counts.of(study)
    try:
        best = study.best_trial
        best_value, best_number = best.value, best.number
    except ValueError:
        best_value = best_number = None
    return Progress(name, time.monotonic() - started, counts, spec.n_trials, best_value, best_number, alive)


def format_progress(progress: Progress) -> str:
    """One line: ``[00:42] study: 5 complete, 3 pruned, 0 failed, 2 running (8/12); best 0.8123 (trial 4)``."""
    minutes, seconds = divmod(int(progress.elapsed), 60)
    c = progress.counts
    target = f" ({c.finished}/{progress.n_trials})" if progress.n_trials else ""
    best = (
        f"; best {progress.best_value:.4f} (trial {progress.best_trial})"
        if progress.best_value is not None else "; no complete trial yet"
    )
    return (
        f"[{minutes:02d}:{seconds:02d}] {progress.study_name}: {c.complete} complete, {c.pruned} pruned, "
        f"{c.failed} failed, {c.running} running{target}{best}; {progress.workers_alive} worker(s) alive"
    )
