"""A study prefilled with N finished trials as tissue-hpo's workers leave them, quickly (no training).

Each trial carries what a real one does: parameters, a value (pruned: its last report), per-epoch
reports and history, user attributes (steps, time, metrics) and, in the study's system attributes,
its optuna-dashboard note (version and text rows): the rows whose number grows with every trial.
"""

from __future__ import annotations

import math

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.results import HISTORY_KEY
from hpo.storage import insert_study_system_attrs, study_id, study_storage, trial_id

METRIC = "val_balanced_accuracy"
EPOCHS = 8
SPACE = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "dropout": FloatDistribution(0.0, 0.5)}


def history(quality: float, epochs: int = EPOCHS) -> list[dict[str, float]]:
    return [{"epoch": e, METRIC: round(quality * (1 - math.exp(-e / 3)), 6), "val_loss": round(2 - quality * e / epochs, 6),
             "train_loss": round(2 - e / epochs, 6), "lr": 1e-3} for e in range(1, epochs + 1)]


def prefill(study: optuna.Study, n: int, *, seed: int = 0) -> None:
    """Add ``n`` finished trials (3 in 4 complete, the rest pruned) and a note for each, as workers write them."""
    import random

    rng = random.Random(seed)
    for key, value in {"metric": METRIC, "model": "classifier", "direction": "maximize"}.items():
        study.set_user_attr(key, value)
    trials = []
    for number in range(n):
        quality = rng.uniform(0.3, 0.9)
        pruned = number % 4 == 3
        rows = history(quality, 3 if pruned else EPOCHS)
        trials.append(create_trial(
            state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
            value=rows[-1][METRIC], params={"lr": rng.uniform(1e-4, 1e-1), "dropout": rng.uniform(0, 0.5)},
            distributions=SPACE, intermediate_values={r["epoch"]: r[METRIC] for r in rows},
            user_attrs={"steps_run": len(rows), "train_seconds": 1.5, "val_accuracy": quality, "threads": 1},
            system_attrs={HISTORY_KEY: rows},
        ))
    study.add_trials(trials)
    notes: dict[str, object] = {}
    for frozen in study.get_trials(deepcopy=False):
        notes[f"dashboard:{trial_id(frozen)}:note_ver"] = 1
        notes[f"dashboard:{trial_id(frozen)}:note_str:0"] = f"**Trial {frozen.number}** " + "x" * 1500
    insert_study_system_attrs(study_storage(study), study_id(study), notes)
