"""``fidelity = "auto"``: which fidelity a study's data makes it use, said once and kept on the study."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import optuna

from hpo.study import StudySpec

logger = logging.getLogger(__package__)

FIDELITY_CHOICE_ATTR = "fidelity_choice"
"""Study user attribute: ``{"fidelity": "folds" | "none", "reason": "..."}`` for a study with ``fidelity = "auto"``."""


def fidelity_choice(spec: StudySpec, data: Any) -> dict[str, str] | None:
    """What ``fidelity = "auto"`` becomes on ``data`` and why (None: the study fixes its fidelity)."""
    from models.fidelity import AUTO, choose_fidelity

    if spec.fixed.get("fidelity") != AUTO:
        return None
    chosen, reason = choose_fidelity(len(data.y_train), len(data.y_val), data.n_classes)
    return {"fidelity": chosen, "reason": reason}


def announce_fidelity(study: optuna.Study, spec: StudySpec, data: Any) -> dict[str, str] | None:
    """Log the choice in one line and record it as the study's ``fidelity_choice`` attribute."""
    choice = fidelity_choice(spec, data)
    if choice is None:
        return None
    folds = spec.fixed.get("fidelity_steps", 5)
    what = f"{folds}-fold CV on the training split" if choice["fidelity"] == "folds" else "the validation split"
    logger.info("fidelity auto: trials ranked by %s (%s)", what, choice["reason"])
    study.set_user_attr(FIDELITY_CHOICE_ATTR, choice)
    return choice


FOLD_CHOICE_ATTR = "fold_choice"
"""Study user attribute of a CV study: ``{"fidelity_steps": k, "requested": n, "reason": "..."}``, the fold count
the training split allows (:func:`models.fidelity.fold_count`); the study's ``fixed_params`` hold ``k``."""


def fold_choice(spec: StudySpec, data: Any) -> dict[str, Any] | None:
    """The fold count a cross-validated study uses on ``data`` and why (None: no CV with a fixed fold count, or the
    data set's own folds). ``ValueError`` (one line) when not even 2 folds fit the smallest tissue."""
    from models.fidelity import AUTO, FOLDS, choose_fidelity, fold_count, split_groups
    from models.specs import get_spec

    fidelity = spec.fixed.get("fidelity")
    if fidelity == AUTO:
        fidelity = choose_fidelity(len(data.y_train), len(data.y_val), data.n_classes)[0]
    defaults = get_spec(spec.model).defaults
    if fidelity != FOLDS or getattr(data, "folds", None) is not None or "fidelity_steps" not in defaults:
        return None
    if "fidelity_steps" in spec.space.distributions():
        return None  # searched: each trial's own count (the study-file check bounds it)
    requested = int(spec.fixed.get("fidelity_steps", defaults["fidelity_steps"]))
    k, reason = fold_count(data.y_train, requested, split_groups(data.sample_info, "train"), list(data.tissues))
    return {"fidelity_steps": k, "requested": requested, "reason": reason}


def with_fold_count(spec: StudySpec, data: Any) -> StudySpec:
    """``spec`` with ``fixed.fidelity_steps`` set to :func:`fold_choice`'s count: what the objective, the reference
    trial, the study's ``fixed_params`` (so ``hpo export`` and the retrain) and the selection rule then use."""
    choice = fold_choice(spec, data)
    if choice is None or spec.fixed.get("fidelity_steps") == choice["fidelity_steps"]:
        return spec
    return dataclasses.replace(spec, fixed={**spec.fixed, "fidelity_steps": choice["fidelity_steps"]})


def announce_folds(study: optuna.Study, spec: StudySpec, data: Any) -> dict[str, Any] | None:
    """Log the fold count in one line and record it as the study's ``fold_choice`` attribute."""
    choice = fold_choice(spec, data)
    if choice is None:
        return None
    logger.info("folds: %d-fold CV on the training split (%s)", choice["fidelity_steps"], choice["reason"])
    study.set_user_attr(FOLD_CHOICE_ATTR, choice)
    return choice
