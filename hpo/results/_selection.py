"""Which trial to export: the best, unless it beats the reference (the defaults) by no more than the noise.

The rule (a one-standard-error rule against the reference trial): take the best trial of
:func:`hpo.results.ranked_trials`; if the study has a complete reference trial (user attribute
``reference``, the registry defaults) and the best trial's gain over it, in the study's direction, is not
larger than the noise, select the reference instead. The noise is

- cross-validated trials (both have ``fold_scores`` of the same length k >= :data:`MIN_FOLDS_FOR_SE`, 3): one
  standard error of the paired per-fold differences, ``std(best - reference, ddof=1) / sqrt(k)``;
- cross-validated trials with k = 2 paired folds: the SE of two differences estimates nothing (two equal
  differences give 0, and any gain passes), so the noise is the larger of that SE and one validation sample
  (below); with no validation size (not an accuracy-type metric), the defaults are kept;
- otherwise, for an accuracy-type metric (its name holds ``accuracy``) with the validation split's size
  known (study attribute ``val_samples``): one validation sample, ``1 / val_samples``;
- otherwise none can be stated and the best trial is selected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo.results._trials import REFERENCE_ATTR, ranked_trials, top_trials, trials_with_user_attr

VAL_SAMPLES_ATTR = "val_samples"
"""Study user attribute: how many samples the validation split holds (the objective records it)."""


@dataclass(frozen=True)
class Selection:
    """The selected trial, the best one, the reference, and the numbers behind the choice."""

    trial: FrozenTrial | None
    reason: str
    best: FrozenTrial | None = None
    reference: FrozenTrial | None = None
    gain: float | None = None
    """The best trial's gain over the reference (positive: better in the study's direction)."""
    noise: float | None = None
    noise_kind: str = ""
    """``fold`` (1 SE of the paired fold differences) or ``validation`` (one validation sample)."""

    @property
    def kept_reference(self) -> bool:
        """The rule kept the defaults although a tuned trial ranked best."""
        return (self.trial is not None and self.best is not None and self.reference is not None
                and self.trial.number == self.reference.number != self.best.number)


def fmt(value: float) -> str:
    """A gain or a noise: 4 decimals (the headline's :func:`hpo.results.fmt` for such values)."""
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"


def signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + fmt(abs(value))


MIN_RELATIVE_GAIN = 0.01
"""A gain smaller than this share of the reference's value never replaces the defaults, however consistent
across folds: on the small-cohort benchmark autoencoder gains of 0.1-0.4 % of the MSE beat 1 SE of the
paired fold differences and then retrained worse on test (benchmarks/RESULTS.md, "Small cohorts")."""

TIE_TOLERANCE = 1e-9
"""Relative margin by which a gain must exceed the noise: a gain equal to it (one validation sample exactly, or
a standard error equal to the gain, as floating-point rounding leaves them) keeps the defaults, rather than
letting the last bit of a subtraction decide (it did in 2 small-cohort benchmark studies)."""


MIN_FOLDS_FOR_SE = 3
"""Fewest paired folds whose standard error is taken as the noise alone. With 2, the SE is half the gap between
the two differences: on the small-cohort benchmark (8 tissues, 2-fold SVC) it was 2.8e-17 on one split, where
both folds gained the same +0.229 balanced accuracy (benchmarks/RESULTS.md, 2026-12-03 and 2026-12-04)."""


def paired_folds(best: FrozenTrial, reference: FrozenTrial) -> int:
    """How many paired fold scores the two trials have (0 when they have none, or not as many)."""
    a, b = best.user_attrs.get("fold_scores"), reference.user_attrs.get("fold_scores")
    if not isinstance(a, (list, tuple)) or not isinstance(b, (list, tuple)) or len(a) != len(b):
        return 0
    return len(a)


def fold_noise(best: FrozenTrial, reference: FrozenTrial) -> float | None:
    """One standard error of the paired per-fold differences, when both trials have k >= 2 fold scores
    (:func:`select` takes it alone only from :data:`MIN_FOLDS_FOR_SE` folds)."""
    a, b = best.user_attrs.get("fold_scores"), reference.user_attrs.get("fold_scores")
    if paired_folds(best, reference) < 2:
        return None
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not np.all(np.isfinite(differences)):
        return None
    return float(np.std(differences, ddof=1) / math.sqrt(len(differences)))


def validation_noise(metric: str, val_samples: Any) -> float | None:
    """The value of one validation sample (``1 / val_samples``) for an accuracy-type metric, else None."""
    if "accuracy" not in metric or not isinstance(val_samples, int) or isinstance(val_samples, bool) or val_samples < 1:
        return None
    return 1.0 / val_samples


def select(
    best: FrozenTrial | None,
    reference: FrozenTrial | None,
    direction: StudyDirection,
    *,
    metric: str = "value",
    val_samples: int | None = None,
) -> Selection:
    """Apply the rule to an already ranked ``best`` trial and the study's ``reference`` trial (if any)."""
    if best is None:
        return Selection(None, "no complete trial")
    if reference is None:
        return Selection(best, f"trial {best.number}: the best (no reference trial)", best)
    if reference.number == best.number:
        return Selection(best, f"trial {best.number} (the defaults): the best", best, reference)
    if reference.state != TrialState.COMPLETE or not reference.values or not math.isfinite(reference.values[0]):
        state = reference.state.name.lower()
        return Selection(best, f"trial {best.number}: the best (the reference trial {reference.number} is {state})",
                         best, reference)
    difference = best.values[0] - reference.values[0]
    gain = difference if direction == StudyDirection.MAXIMIZE else -difference
    noise, kind = fold_noise(best, reference), "fold"
    k = paired_folds(best, reference)
    if noise is not None and k < MIN_FOLDS_FOR_SE:  # two folds: their SE is no estimate of the noise
        one_sample = validation_noise(metric, val_samples)
        if one_sample is None:
            return Selection(reference, f"trial {reference.number} (the defaults): trial {best.number}'s gain "
                                        f"{signed(gain)} is over only {k} CV folds (no noise estimate below "
                                        f"{MIN_FOLDS_FOR_SE}) and {metric} has no per-sample noise",
                             best, reference, gain, None, "fold")
        if one_sample > noise:
            noise, kind = one_sample, "validation"
    if noise is None:
        noise, kind = validation_noise(metric, val_samples), "validation"
    if noise is None:
        return Selection(best, f"trial {best.number}: the best, {signed(gain)} over the defaults (trial "
                               f"{reference.number}; no noise estimate: no fold scores, no validation size)",
                         best, reference, gain)
    size = "1 SE" if kind == "fold" else f"one of {val_samples} validation samples"
    if 0 < k < MIN_FOLDS_FOR_SE:
        size += f"; only {k} CV folds, fewer than {MIN_FOLDS_FOR_SE} for an SE alone"
    floor = MIN_RELATIVE_GAIN * abs(reference.values[0])
    if noise < floor and gain <= floor:  # consistent across folds, but too small to matter
        return Selection(reference, f"trial {reference.number} (the defaults): trial {best.number}'s gain "
                                    f"{signed(gain)} is under {MIN_RELATIVE_GAIN:.0%} of the defaults' value "
                                    f"({fmt(floor)}; {kind} noise: {size} {fmt(noise)})",
                         best, reference, gain, floor, kind)
    if gain > noise + TIE_TOLERANCE * max(abs(noise), abs(reference.values[0]), 1e-12):
        return Selection(best, f"trial {best.number}: its gain {signed(gain)} over the defaults (trial "
                               f"{reference.number}) exceeds the {kind} noise ({size} {fmt(noise)})",
                         best, reference, gain, noise, kind)
    return Selection(reference, f"trial {reference.number} (the defaults): trial {best.number}'s gain {signed(gain)} "
                                f"is within the {kind} noise ({size} {fmt(noise)})",
                     best, reference, gain, noise, kind)


def selection_of(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection], user_attrs: Mapping[str, Any] | None = None,
) -> Selection:
    """:func:`select` over ``trials`` (the best by :func:`ranked_trials`, the reference by its attribute);
    ``user_attrs``: the study's (its ``metric`` and ``val_samples``)."""
    attrs = user_attrs or {}
    ranked = ranked_trials(trials, directions)
    reference = next((t for t in trials if t.user_attrs.get(REFERENCE_ATTR) is True), None)
    val_samples = attrs.get(VAL_SAMPLES_ATTR)
    return select(ranked[0] if ranked else None, reference, directions[0], metric=str(attrs.get("metric") or "value"),
                  val_samples=val_samples if isinstance(val_samples, int) else None)


def study_selection(study: optuna.Study) -> Selection:
    """:func:`selection_of` a single-objective study (a multi-objective one: nothing selected)."""
    if len(study.directions) != 1:
        return Selection(None, "a multi-objective study has no single best trial")
    attrs = study.user_attrs
    top = top_trials(study, 1)  # small queries on an RDB storage: no other trial is loaded
    reference = next(iter(trials_with_user_attr(study, REFERENCE_ATTR, True)), None)
    val_samples = attrs.get(VAL_SAMPLES_ATTR)
    return select(top[0] if top else None, reference, study.directions[0], metric=str(attrs.get("metric") or "value"),
                  val_samples=val_samples if isinstance(val_samples, int) else None)


def selected_trial(
    study_or_trials: optuna.Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection] | None = None,
    user_attrs: Mapping[str, Any] | None = None,
) -> tuple[FrozenTrial | None, str]:
    """The trial to export and why: a study, or its trials with their ``directions`` (default: maximize)."""
    if isinstance(study_or_trials, optuna.Study):
        selection = study_selection(study_or_trials)
    else:
        selection = selection_of(study_or_trials, directions or [StudyDirection.MAXIMIZE], user_attrs)
    return selection.trial, selection.reason
