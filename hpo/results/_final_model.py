"""Make the final model findable from its study: its test metrics recorded as a study attribute.

After ``hpo train --config best.toml`` (or ``hpo demo``) retrained an exported configuration,
:func:`record_final_model` writes the held-out test metrics of the final model (and of the
reference configuration, the defaults, when it was retrained too) into the study it came from,
as the study user attribute :data:`~hpo.results._headline.FINAL_MODEL_ATTR`; the headline of
every surface (``hpo show``, the study note, ``hpo report``) then shows them.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna

from hpo.results._headline import FINAL_MODEL_ATTR
from hpo.storage import open_storage, resolve_storage_url

logger = logging.getLogger(__package__)


def final_model_record(config: Mapping[str, Any], result: Any, *, train_split: str = "train+val") -> dict[str, Any] | None:
    """The study attribute for a retrain ``result`` of ``config``; None when it measured no test metric."""
    metrics = {k: float(v) for k, v in result.metrics.items() if k.startswith("test_")}
    if not metrics:
        return None
    record: dict[str, Any] = {
        "trial": config.get("source", {}).get("trial"),
        "train_split": train_split,
        "metrics": metrics,
        "path": str(result.out_dir),
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    reference = getattr(result, "reference", None)
    if reference is not None:
        record["reference_metrics"] = {k: float(v) for k, v in reference.metrics.items() if k.startswith("test_")}
    return record


def record_final_model(
    config: Mapping[str, Any], result: Any, *, train_split: str = "train+val", storage_url: str | None = None,
    study: optuna.Study | None = None,
) -> str:
    """Record ``result`` (a :class:`~hpo.results.RetrainResult` of the exported ``config``) in its study.

    The study is ``study``, else the one ``config["source"]`` names, in ``storage_url`` (else the storage
    the export names, unless its password was redacted, else the default storage). Only a retrain that
    measured test metrics is recorded. Returns one line saying what was recorded, or why not; never raises.
    """
    from hpo.results._dashboard_content import refresh_study_note

    record = final_model_record(config, result, train_split=train_split)
    source = config.get("source", {})
    name = study.study_name if study is not None else source.get("study")
    if record is None:
        return "not recorded in the study: no test metrics (evaluate --eval-split test)"
    if not name:
        return "not recorded in a study: the config names none"
    try:
        if study is None:
            exported = str(source.get("storage") or "")
            url = resolve_storage_url(storage_url or (exported if exported and "***" not in exported else None))
            missing = _missing_sqlite_file(url)
            if missing:  # opening it would create an empty database there
                return f"not recorded in study {name!r}: no storage file {missing}"
            study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
        study.set_user_attr(FINAL_MODEL_ATTR, record)
    except Exception as error:  # the model is trained and saved: a study out of reach must not fail the retrain
        logger.debug("final model not recorded", exc_info=True)
        return f"not recorded in study {name!r}: {type(error).__name__}: {error}"
    refresh_study_note(study)
    return f"recorded in study {name!r}"


def _missing_sqlite_file(url: str) -> str:
    """The path of a SQLite storage file that does not exist, else ""."""
    if not url.startswith("sqlite:///"):
        return ""
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return path if path and path != ":memory:" and not Path(path).exists() else ""


def retrain_step_logger(model_name: str, train_split: str) -> Callable[[int, Mapping[str, float]], None]:
    """An ``on_step`` for :func:`hpo.results.retrain` that logs one line per epoch.

    Training on train+val, the validation rows are training data: their ``val_`` metrics are logged
    apart, as in-sample, never as if they measured anything held out.
    """
    in_sample = "val" in train_split.split("+") and train_split != "val"

    def log_step(step: int, metrics: Mapping[str, float]) -> None:
        values = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        held_in = {k: v for k, v in values.items() if in_sample and k.startswith("val_")}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k not in held_in)
        if held_in:
            shown += ("; in-sample (val is training data here): "
                      + ", ".join(f"{k.removeprefix('val_')}={v:.4g}" for k, v in held_in.items()))
        logger.info("%s step %d: %s", model_name, step, shown)

    return log_step
