"""Create (or load) the Optuna study a study file describes, with self-describing attributes."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpo.results import REFERENCE_ATTR, describe_study, name_objective, package_versions
from hpo.samplers import build_pruner, build_sampler
from hpo.study import StudySpec, format_overrides

logger = logging.getLogger(__package__)


def open_study(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    *,
    study_name: str | None = None,
    sampler_seed: int | None = None,
    data_fingerprint: str | None = None,
) -> optuna.Study:
    """Create the study if it does not exist (many workers may race here), else load it.

    ``sampler_seed`` replaces the study file's seed (workers offset it so that parallel
    workers do not draw the same points). Study user attributes (model, metric, direction,
    data settings and fingerprint, the study file and its overrides, package versions), the
    metric's name and the study note (:func:`hpo.dashboard_content.describe_study`) are written
    once, by whoever creates the study; a study created from a different model is refused. The
    creator also enqueues the reference trial (:func:`enqueue_reference`) unless the study file says
    ``reference = false``.
    """
    name = study_name or spec.name
    seed = spec.sampler.seed if sampler_seed is None else sampler_seed
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=spec.direction,
        sampler=build_sampler(spec.sampler.name, spec.sampler.options, seed),
        pruner=build_pruner(spec.pruner.name, spec.pruner.options),
        load_if_exists=True,
    )
    if study.direction.name.lower() != spec.direction:
        raise ValueError(
            f"study {name!r} exists with direction {study.direction.name.lower()}, "
            f"but {spec.path} asks for {spec.direction}; use another study name (--study-name)"
        )
    existing_model = study.user_attrs.get("model")
    if existing_model is not None and existing_model != spec.model:
        raise ValueError(
            f"study {name!r} exists for model {existing_model!r}, but {spec.path} tunes {spec.model!r}; "
            "use another study name (--study-name)"
        )
    if existing_model is None:
        for key, value in study_attributes(spec, data_fingerprint).items():
            study.set_user_attr(key, value)
        describe_study(study, spec)  # the metric's name in the dashboard, and the study note
        if spec.reference:
            enqueue_reference(study, spec)
    else:
        name_objective(study, spec.metric)  # a study made before objectives were named
    return study


def study_attributes(spec: StudySpec, data_fingerprint: str | None) -> dict[str, Any]:
    """The user attributes that make a study self-describing in the dashboard and exports."""
    return {
        "model": spec.model,
        "metric": spec.metric,
        "direction": spec.direction,
        "n_trials": spec.n_trials,
        "fixed_params": spec.fixed,
        "sampler": {"name": spec.sampler.name, "seed": spec.sampler.seed, **spec.sampler.options},
        "pruner": {"name": spec.pruner.name, **spec.pruner.options},
        "device": spec.device,
        "seed": spec.seed,
        "data_settings": spec.data.to_dict() if hasattr(spec.data, "to_dict") else dict(spec.data_settings),
        "data_fingerprint": data_fingerprint,
        "study_file": os.path.abspath(spec.path) if spec.path and Path(spec.path).is_file() else spec.path,
        "study_file_text": spec.text,
        "study_overrides": format_overrides(spec.overrides),
        "description": spec.description,
        "versions": package_versions(),
    }


REFERENCE_CLAIM = "hpo:reference_enqueued"
"""Study system attribute: the reference trial was enqueued (whoever inserted it first did it)."""


def reference_params(spec: StudySpec) -> dict[str, Any]:
    """The values the study's space takes untuned: the model's registry defaults, clipped into the space.

    A numeric default is clipped into ``[low, high]`` (and onto the ``step`` grid); a categorical one is
    the equal choice, else the nearest numeric one, else the first. Parameters inactive under the
    defaults (``when``) are left out, and so are those without a usable default (the sampler draws them).
    Values are Optuna's (categorical list choices JSON-encoded), ready for ``study.enqueue_trial``.
    """
    from models.specs import get_spec

    defaults = get_spec(spec.model).defaults
    known: dict[str, Any] = dict(spec.fixed)
    chosen: dict[str, Any] = {}
    for parameter in spec.space:
        if not parameter.active(known) or parameter.name not in defaults:
            continue
        value = _into(parameter.distribution, defaults[parameter.name], parameter.json_choices)
        if value is None:
            continue
        chosen[parameter.name] = value
        known[parameter.name] = parameter.decode(value)
    return chosen


def _into(distribution: BaseDistribution, default: Any, json_choices: bool) -> Any:
    """``default`` as a value of ``distribution`` (clipped, rounded or the nearest choice); None: none fits."""
    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        decoded = [json.loads(c) if json_choices and isinstance(c, str) else c for c in choices]
        for choice, value in zip(choices, decoded):
            if value == default and type(value) is type(default):
                return choice
        numeric = [(abs(float(v) - float(default)), c) for c, v in zip(choices, decoded) if _is_number(v)]
        if numeric and _is_number(default):
            return min(numeric, key=lambda pair: pair[0])[1]
        return choices[0]
    if not _is_number(default) or not math.isfinite(float(default)):
        return None
    assert isinstance(distribution, (FloatDistribution, IntDistribution))
    low, high, step = distribution.low, distribution.high, distribution.step
    value = min(max(float(default), low), high)
    if step is not None:
        value = min(low + round((value - low) / step) * step, low + math.floor((high - low) / step + 1e-9) * step)
    return round(value) if isinstance(distribution, IntDistribution) else float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def enqueue_reference(study: optuna.Study, spec: StudySpec) -> int | None:
    """Enqueue the reference trial (:func:`reference_params`, user attribute ``reference = True``) once.

    Does nothing when the study already has one. Workers creating the same study at once claim it
    with one insert of the study system attribute :data:`REFERENCE_CLAIM` (unique per study in an RDB
    storage: one insert wins); where a storage cannot refuse a second insert (journal files) and two
    copies were enqueued, the later one, still waiting, is abandoned (failed with ``fail_reason``
    "abandoned", which counts as no failure). Returns the reference trial's number (None: this call
    enqueued none).
    """
    from hpo.storage import insert_study_system_attrs, study_id, study_storage

    if _reference_trials(study):
        return None
    if not insert_study_system_attrs(study_storage(study), study_id(study), {REFERENCE_CLAIM: True}):
        return None  # another worker claimed it
    study.enqueue_trial(reference_params(spec), user_attrs={REFERENCE_ATTR: True}, skip_if_exists=False)
    references = _reference_trials(study)
    first, mine = references[0], references[-1]
    if mine.number != first.number and mine.state == TrialState.WAITING:
        _abandon_duplicate(study, mine)
        return None
    logger.info("study %r: trial %d is the reference (the %s defaults)", study.study_name, mine.number, spec.model)
    return mine.number


def _reference_trials(study: optuna.Study) -> list[Any]:
    trials = study.get_trials(deepcopy=False)
    return sorted((t for t in trials if t.user_attrs.get(REFERENCE_ATTR) is True), key=lambda t: t.number)


def _abandon_duplicate(study: optuna.Study, trial: Any) -> None:
    from hpo.storage import study_storage, trial_id

    storage = study_storage(study)
    try:
        storage.set_trial_user_attr(trial_id(trial), "fail_reason", "abandoned")
        storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
    except Exception:  # another worker took it meanwhile: two reference trials, the first one counts
        logger.debug("duplicate reference trial %d not abandoned", trial.number, exc_info=True)
