"""Create (or load) the Optuna study a study file describes, with self-describing attributes."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import optuna

from hpo.results import describe_study, name_objective, package_versions
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
    once, by whoever creates the study; a study created from a different model is refused.
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
