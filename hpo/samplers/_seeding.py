"""Which seed a worker's sampler gets: distinct per worker, and new each time a study is resumed.

The rule (README, "Parallel workers on one machine")::

    sampler seed = (seed + 1000 × worker index + 1_000_003 × trials already in the study) mod 2**32

A fresh study (no trials yet) therefore gives worker ``k`` the seed ``seed + 1000 k`` and reproduces
its first trials for the same seed; a resumed study seeds its samplers differently, so they do not
propose the configurations of the first run again. (1_000_003 is prime, so a resume offset never
equals a worker offset of fewer than a million workers.)
"""

from __future__ import annotations

import os

import optuna

from hpo.storage import count_trials_by_state, rdb_queries_supported

WORKER_SEED_STRIDE = 1000
RESUME_SEED_STRIDE = 1_000_003
SEED_MODULUS = 2**32
"""numpy's ``RandomState`` (behind Optuna's samplers) takes seeds in ``[0, 2**32)``."""


def sampler_seed(seed: int | None, worker_index: int | None, trials_before: int = 0) -> int | None:
    """The seed of worker ``worker_index``'s sampler in a study that held ``trials_before`` trials.

    ``seed=None`` stays ``None`` (unseeded). Without a worker index the process id stands in for it.
    """
    if seed is None:
        return None
    offset = WORKER_SEED_STRIDE * worker_index if worker_index is not None else 7919 * os.getpid()
    return (seed + offset + RESUME_SEED_STRIDE * trials_before) % SEED_MODULUS


def trials_in_study(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """How many trials (in any state) the study holds; 0 when it does not exist yet."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    if rdb_queries_supported(storage):  # counted in the database, no trial loaded
        counts = count_trials_by_state(storage, study_id, ())
        return sum(n for state, n in counts.items() if state != "FAIL_EXCUSED")
    return len(storage.get_all_trials(study_id, deepcopy=False))
