"""``fidelity = "auto"``: which fidelity a study's data makes it use, said once and kept on the study."""

from __future__ import annotations

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
