"""Before ``hpo run`` starts any worker: is the study it names finished already?

Rerunning a finished study used to start K workers (20-30 s of imports and data loading) that then
ran no trial. :func:`finished_study` answers at once, from the study file and one count, so the
command can say so and how to extend it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from hpo.results import Counts
from hpo.storage import check_storage_url, open_storage, resolve_storage_url
from hpo.study import check_study_name, load_study_file


@dataclass(frozen=True)
class Finished:
    """A study whose ``n_trials`` are all finished (complete or pruned)."""

    study_name: str
    finished: int
    n_trials: int

    def message(self) -> str:
        """``study 'demo' already has 16 finished trials (n_trials = 16); use --n-trials 32 to extend it``."""
        plural = "s" if self.finished != 1 else ""
        return (f"study {self.study_name!r} already has {self.finished} finished trial{plural} "
                f"(n_trials = {self.n_trials}); use --n-trials {max(2 * self.n_trials, self.finished + 1)} to extend it")


def finished_study(
    study_file: str | Path, overrides: Mapping[str, Any] | None = None, *, storage_url: str | None = None,
    study_name: str | None = None,
) -> Finished | None:
    """The study ``study_file`` runs, when it exists and has its ``n_trials`` finished trials; else None.

    Reads the study file (a bad one raises as ``hpo run`` would) and counts the study's trials; prepares no
    data and starts nothing.
    """
    if study_name is not None:
        check_study_name(study_name, "--study-name")
    spec = load_study_file(study_file, dict(overrides or {}))
    if spec.n_trials is None:
        return None
    name = study_name or spec.name
    storage = open_storage(check_storage_url(resolve_storage_url(storage_url)), heartbeat_interval=None)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    counts = Counts.of(study)
    return Finished(name, counts.finished, spec.n_trials) if counts.finished >= spec.n_trials else None
