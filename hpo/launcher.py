"""Launch K worker processes on this machine that share one study, and watch their progress.

The launcher validates the study file, prepares the data once (workers then hit the
cache), creates the study, and starts K ``hpo worker`` processes. CPU threads are split
between workers (``OMP_NUM_THREADS`` etc. are set before the child imports torch); with
several GPUs visible, workers are pinned round-robin through ``CUDA_VISIBLE_DEVICES``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from hpo.admission import Counts
from hpo.overrides import format_overrides
from hpo.storage import open_storage, resolve_storage_url
from hpo.studyfile import StudySpec, load_study_file
from hpo.studysetup import open_study

logger = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HPO_NUM_THREADS")


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
    overrides = dict(overrides or {})
    spec: StudySpec = load_study_file(study_file, overrides)
    for warning in spec.warnings:
        logger.warning("%s: %s", study_file, warning)
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
    started = time.monotonic()
    last: Progress | None = None
    try:
        while True:
            alive = sum(p.poll() is None for p in processes)
            last = _snapshot(study, spec, name, started, alive)
            if on_progress is not None:
                on_progress(last)
            if alive == 0:
                break
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        # Ctrl-C reached the workers too (same process group): give them time to fail their trial cleanly,
        # then interrupt the ones that are still running (e.g. when only the launcher was signalled).
        deadline = time.monotonic() + 10
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait()
        raise
    return LaunchResult(name, url, last, [p.returncode for p in processes])


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
