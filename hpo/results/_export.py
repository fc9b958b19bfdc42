"""Export the selected (or the best, or any) trial of a study as a self-contained configuration file.

By default the trial :func:`hpo.results.selected_trial` selects: the best, unless its gain over the
reference trial (the defaults) is within the noise (then the reference); ``best=True`` takes the raw best.

The file holds everything ``hpo train --config`` needs to retrain it and everything a
reader needs to trust it: the model and *all* its parameters (defaults, fixed and
tuned), the data settings and fingerprint, the seed and device, the trial's metrics,
the study, trial number, sampler and pruner, and the package versions. TOML by default;
JSON or YAML by the output file's extension or ``fmt``. A study with a reference trial (the untuned
defaults, :func:`hpo.run.open_study`) adds a ``[reference]`` table: its trial number, state, value
and all its parameters, so that ``hpo train --config`` retrains both and compares them on test.
"""

from __future__ import annotations

import datetime
import json

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.results._selection import Selection, study_selection
from hpo.results._trials import REFERENCE_ATTR, best_trial, trials_with_user_attr
from hpo.study import decode_trial_params

FORMATS = ("toml", "json", "yaml")
EXTENSIONS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
REQUIRED_SECTIONS = ("model", "params", "data")
METRIC_PREFIXES = ("val_", "train_", "cv_")
"""Numeric trial attributes exported as ``[metrics]``: validation split, last training epoch, CV mean/std."""
_NOT_DATA_CONTENT = ("cache_dir",)
"""Data settings that do not change the data (where the cache lives is per machine)."""


class ExportError(ValueError):
    """Nothing to export (no complete trial), or a config file that cannot be read back."""


def export_trial(
    study: optuna.Study, trial_number: int | None = None, *, storage_url: str = "", best: bool = False,
) -> dict[str, Any]:
    """The configuration of trial ``trial_number`` (default: the selected trial, :func:`selected_trial`;
    ``best``: the best by the ranking) as a plain mapping; ``source.selection`` says why when it was selected."""
    from models.specs import get_spec

    trial, selection = _pick_trial(study, trial_number, best=best)
    attrs = study.user_attrs
    model = attrs.get("model")
    if not model:
        raise ExportError(f"study {study.study_name!r} was not made by tissue-hpo (no 'model' attribute)")
    params = _model_params(trial, model, attrs)
    metrics = {
        k: v for k, v in sorted(trial.user_attrs.items())
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k.startswith(METRIC_PREFIXES) and k != "train_seconds"
    }
    data = {k: v for k, v in attrs.get("data_settings", {}).items() if v is not None and k not in _NOT_DATA_CONTENT}
    source = {
        "study": study.study_name,
        "trial": trial.number,
        "storage": storage_url,
        "metric": attrs.get("metric", "value"),
        "direction": study.direction.name.lower(),
        "value": trial.value,
        "tuned_params": sorted(trial.params),
        "sampler": attrs.get("sampler", {}),
        "pruner": attrs.get("pruner", {}),
        "data_fingerprint": attrs.get("data_fingerprint") or "",
        "study_file": attrs.get("study_file", ""),
        "steps_run": trial.user_attrs.get("steps_run", 0),
        "best_epoch": trial.user_attrs.get("best_epoch", 0),
        "retrain_epochs": trial.user_attrs.get("retrain_epochs", 0),
        "train_seconds": trial.user_attrs.get("train_seconds", 0.0),
        "threads": trial.user_attrs.get("threads", 0),
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if selection is not None:
        source["selection"] = selection.reason
        if selection.kept_reference:  # the best trial the rule passed over
            source["best_trial"] = selection.best.number
    if "fold_scores" in trial.user_attrs:  # the value is the mean of these (fidelity = "folds")
        source["fold_scores"] = list(trial.user_attrs["fold_scores"])
    # trials ranked on the validation split (no folds) carry the study's small-split warning;
    # older studies kept it on each trial
    warning = trial.user_attrs.get("val_split_warning") or attrs.get("val_split_warning")
    if warning and "fold_scores" not in trial.user_attrs:
        source["val_split_warning"] = warning
    config = {
        "model": model,
        "task": get_spec(model).task,
        "seed": int(attrs.get("seed", 0)),
        "device": str(attrs.get("device", "auto")),
        "params": params,
        "data": data,
        "metrics": metrics,
        "source": source,
        "versions": attrs.get("versions", {}),
    }
    reference = _reference_table(study, model, attrs)
    if reference is not None:
        gain = reference_gain(config | {"reference": reference})
        config["reference"] = reference if gain is None else {"gain": gain, **reference}
    return config


def _model_params(trial: FrozenTrial, model: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """All the model's parameters of ``trial``: defaults, the study's fixed ones and the trial's own."""
    from models.specs import resolve_model_params

    chosen = trial.user_attrs.get("model_params") or {  # model_params: studies made before it was dropped
        **attrs.get("fixed_params", {}), **decode_trial_params(trial.params, trial.distributions)}
    return resolve_model_params(model, chosen)




def _reference_table(study: optuna.Study, model: str, attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``[reference]`` table: the study's reference trial (the defaults), if it has one that ran."""
    ran = (TrialState.COMPLETE, TrialState.PRUNED)  # found by a query: a 10,000-trial study is not read
    reference = next((t for t in trials_with_user_attr(study, REFERENCE_ATTR, True) if t.state in ran), None)
    if reference is None:
        return None
    return {
        "trial": reference.number,
        "state": reference.state.name.lower(),
        "value": reference.value if reference.values else None,
        "best_epoch": reference.user_attrs.get("best_epoch", 0),
        "retrain_epochs": reference.user_attrs.get("retrain_epochs", 0),
        "params": _model_params(reference, model, attrs),
    }


def reference_gain(config: Mapping[str, Any]) -> float | None:
    """How much better the exported trial is than the reference (positive: better in the study's direction);
    None when there is no complete reference or it is the exported trial itself."""
    source, reference = config.get("source", {}), config.get("reference")
    if not isinstance(reference, Mapping) or reference.get("trial") == source.get("trial"):
        return None
    value, ref_value = source.get("value"), reference.get("value")
    if reference.get("state") != "complete" or value is None or ref_value is None:
        return None
    gain = float(value) - float(ref_value)
    return gain if source.get("direction", "maximize") == "maximize" else -gain


def reference_gain_text(config: Mapping[str, Any]) -> str:
    """One line: the exported trial's gain over the study's reference trial (the defaults), or why there is none."""
    from hpo.results._headline import fmt, signed

    source = config.get("source", {})
    reference = config.get("reference")
    if not isinstance(reference, Mapping):
        return "no reference trial in this study: no gain to state"
    if reference.get("trial") == source.get("trial"):
        if source.get("best_trial") is not None:
            return (f"trial {source.get('trial')} is the reference (the defaults), kept: the best, trial "
                    f"{source['best_trial']}, does not beat it by more than the noise")
        return f"trial {source.get('trial')} is the reference (the defaults): no tuned configuration beat it"
    gain = reference_gain(config)
    if gain is None:
        return f"the reference trial {reference.get('trial')} (the defaults) is {reference.get('state')}: no gain to state"
    return (f"{signed(gain)} {source.get('metric', 'value')} over the reference "
            f"(trial {reference['trial']}, the defaults: {fmt(float(reference['value']))})")


def _pick_trial(
    study: optuna.Study, trial_number: int | None, *, best: bool = False,
) -> tuple[FrozenTrial, Selection | None]:
    """The trial to export and, when the rule selected it, the :class:`Selection` (None for ``--trial``/``--best``)."""
    if trial_number is None:
        selection = None if best else study_selection(study)
        trial = best_trial(study) if selection is None else selection.trial
        if trial is None:
            raise ExportError(f"study {study.study_name!r} has no complete trial to export yet")
        return trial, selection
    for trial in study.get_trials(deepcopy=False):
        if trial.number == trial_number:
            if trial.state != TrialState.COMPLETE:
                raise ExportError(f"trial {trial_number} of {study.study_name!r} is {trial.state.name}, not COMPLETE")
            return trial, None
    raise ExportError(f"study {study.study_name!r} has no trial {trial_number}")


def write_config(config: Mapping[str, Any], path: str | Path, fmt: str | None = None) -> Path:
    """Write ``config`` as TOML, JSON or YAML (``fmt``, else by the extension, else TOML)."""
    path = Path(path)
    fmt = fmt or EXTENSIONS.get(path.suffix.lower(), "toml")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    if fmt == "toml":
        import tomli_w

        text = tomli_w.dumps(_without_none(config))
    elif fmt == "json":
        text = json.dumps(config, indent=2) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(dict(config), sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """Read an exported configuration and check its sections.

    The format comes from the extension (``.toml``, ``.json``, ``.yaml``/``.yml``); any other
    extension (``hpo export --format yaml --out best.txt``) is sniffed: TOML, then JSON, then YAML.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"{path}: no such config file") from None
    known = EXTENSIONS.get(path.suffix.lower())
    config: Any = None
    for fmt in (known,) if known else FORMATS:
        try:
            config = _parse(text, fmt)
            break
        except Exception as error:
            if known:
                raise ExportError(f"{path}: not valid {fmt.upper()}: {error}") from None
    else:
        raise ExportError(f"{path}: not valid TOML, JSON or YAML")
    if not isinstance(config, dict):
        raise ExportError(f"{path}: expected a table at the top level")
    missing = [key for key in REQUIRED_SECTIONS if key not in config]
    if missing:
        raise ExportError(f"{path}: missing {', '.join(missing)} (is this a file written by `hpo export`?)")
    if isinstance(config["data"], dict):  # exports hold absolute paths; a hand-written relative one is the file's
        from data_pipeline.config import resolve_relative_paths

        config["data"] = resolve_relative_paths(config["data"], path.absolute().parent)
    return config


def _parse(text: str, fmt: str) -> Any:
    if fmt == "json":
        return json.loads(text)
    if fmt == "yaml":
        import yaml

        return yaml.safe_load(text)
    return tomllib.loads(text)


def _without_none(value: Any) -> Any:
    """TOML has no null: drop ``None`` entries (an absent setting means its default)."""
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value if v is not None]
    return value
