"""The objective ``overhead.py`` and ``parallel.py`` run two ways: through ``hpo run``, and in plain Optuna.

Both ways train the same model (the classifier) on the same prepared data set with the same fixed
parameters, draw the one tuned parameter (``dropout``, in a narrow range, so every trial does the same
work) with Optuna's random sampler, no pruner, 1 CPU thread per process, on an SQLite file. Every run is
a fresh process (or processes), timed from its start to its end: start-up included, as users run it.

* :func:`hpo_run`: ``python -m hpo.cli run STUDY --workers K`` (K workers, as shipped).
* :func:`plain_optuna`: K processes of ``optuna.create_study(..., load_if_exists=True).optimize(objective,
  n_trials=...)`` sharing one SQLite storage (Optuna's documented multi-process pattern), the objective
  being ``build_model(...).fit(data)`` and ``evaluate(data, "val")``: no framework around it.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._perf import ROOT, UNIT_TRIAL_PARAMS

PRESETS: dict[str, dict[str, Any]] = {
    # the unit trial of issue 8: full preset, 5,000 genes, the classifier pinned mid-range
    "full": {"data": {"preset": "full", "top_k_genes": 5000}, "fixed": dict(UNIT_TRIAL_PARAMS)},
    # a quick stand-in: small preset, 2,000 genes, a 256-unit network
    "small": {"data": {"preset": "small", "top_k_genes": 2000},
              "fixed": {**UNIT_TRIAL_PARAMS, "hidden_dim": 256, "latent_dim": 64}},
}
METRIC = "val_balanced_accuracy"

PLAIN = """
import sys, time
import optuna
from data_pipeline import DataConfig, prepare_dataset
from models.registry import build_model
config, fixed, url, name, n_trials = eval(sys.argv[1])
optuna.logging.set_verbosity(optuna.logging.WARNING)
data = prepare_dataset(DataConfig(**config))
def objective(trial):
    params = {**fixed, "dropout": trial.suggest_float("dropout", 0.29, 0.31)}
    model = build_model("classifier", params, device="cpu", seed=0, num_threads=1)
    model.fit(data)
    return model.evaluate(data, "val")["%s"]
study = optuna.create_study(study_name=name, storage=url, direction="maximize", load_if_exists=True,
                            sampler=optuna.samplers.RandomSampler(seed=int(sys.argv[2])))
study.optimize(objective, n_trials=n_trials)
""" % METRIC


@dataclass(frozen=True)
class Run:
    """One timed run: wall seconds from the first process's start to the last one's end."""

    wall_s: float
    trials: int
    startup_s: float
    """From the start to the first trial's start (the storage's timestamps)."""
    median_trial_s: float


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HPO_NUM_THREADS", None)  # hpo run's own default: 1 thread per worker
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[variable] = "1"
    return env


def data_settings(preset: str, epochs: int, cache_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    chosen = PRESETS[preset]
    data = {**chosen["data"], "cache_dir": str(cache_dir)}
    fixed = {**chosen["fixed"], "max_epochs": epochs, "early_stopping_patience": 0}
    fixed.pop("dropout", None)
    return data, fixed


def study_file(folder: Path, name: str, n_trials: int, data: dict[str, Any], fixed: dict[str, Any]) -> Path:
    import tomli_w

    content = {
        "name": name, "model": "classifier", "metric": METRIC, "direction": "maximize", "n_trials": n_trials,
        "device": "cpu", "data": data, "fixed": fixed,
        "space": {"dropout": {"type": "float", "low": 0.29, "high": 0.31}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"},
    }
    path = folder / f"{name}.toml"
    path.write_text(tomli_w.dumps(content), encoding="utf-8")
    return path


def _summary(url: str, name: str, started: datetime.datetime, wall: float) -> Run:
    import optuna

    trials = optuna.load_study(study_name=name, storage=url).get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    durations = sorted((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    first = min(t.datetime_start for t in trials)
    return Run(wall, len(trials), (first - started).total_seconds(), durations[len(durations) // 2])


def hpo_run(folder: Path, name: str, n_trials: int, workers: int, data: dict[str, Any],
            fixed: dict[str, Any]) -> Run:
    """``python -m hpo.cli run`` with ``workers`` workers, timed whole."""
    url = f"sqlite:///{folder / f'{name}.db'}"
    path = study_file(folder, name, n_trials, data, fixed)
    started_at, started = datetime.datetime.now(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "hpo.cli", "run", str(path), "--workers", str(workers), "--storage", url],
                   env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _summary(url, name, started_at, time.perf_counter() - started)


def plain_optuna(folder: Path, name: str, n_trials: int, processes: int, data: dict[str, Any],
                 fixed: dict[str, Any]) -> Run:
    """``processes`` plain-Optuna processes sharing one SQLite study, ``n_trials`` in all, timed whole."""
    url = f"sqlite:///{folder / f'{name}.db'}"
    import optuna

    optuna.create_study(study_name=name, storage=url, direction="maximize")  # before the processes race
    shares = [n_trials // processes + (i < n_trials % processes) for i in range(processes)]
    started_at, started = datetime.datetime.now(), time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", PLAIN, repr((data, fixed, url, name, share)), str(i)],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for i, share in enumerate(shares)]
    for process in running:
        _, error = process.communicate()
        if process.returncode:
            raise SystemExit(f"plain Optuna process failed: {error.decode()[-2000:]}")
    return _summary(url, name, started_at, time.perf_counter() - started)


def prepare(data: dict[str, Any]) -> None:
    """Prepare and cache the data set once, outside every timed run."""
    from data_pipeline import DataConfig, prepare_dataset

    prepare_dataset(DataConfig(**data))
