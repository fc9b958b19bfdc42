"""Per-trial pictures and tables in Optuna's artifact store, shown by optuna-dashboard.

Call these from an objective while the trial runs:

- :func:`upload_learning_curves` — ``learning_curves.svg`` (shown beside the trial, and the picture
  in its note) and ``learning_curves.csv`` (every epoch's metrics: the per-epoch data, one click from
  the trial's note). No more files per trial: optuna-dashboard lays a trial's artifacts out in one row,
  and a fifth (with the best trial's two confusion-matrix files) widens the page past 1280 px;
- :func:`upload_confusion_matrix` — ``confusion_matrix.svg`` (heat map) and
  ``confusion_matrix.json`` (counts and tissue labels), typically when
  :func:`is_new_best` says the trial beats every completed one.

Both cost a few milliseconds (``benchmarks/artifacts.py``) and never raise: a failed upload
is logged as a warning and the trial goes on.

Optuna only attaches artifacts to trials that are still running. For a finished trial
(a :class:`~optuna.trial.FrozenTrial`, e.g. a study's best trial after the fact) the
artifact is recorded in the study under optuna-dashboard's per-trial key
(``dashboard:artifacts:<trial_id>:<artifact_id>``), which the dashboard lists beside that trial.
"""

from __future__ import annotations

import csv
import json
import logging
import mimetypes
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.artifacts import upload_artifact
from optuna.trial import FrozenTrial, Trial

from hpo.results._svg_charts import confusion_matrix_svg, learning_curves_svg
from hpo.storage import artifact_store as default_artifact_store
from hpo.storage import study_id, study_storage, trial_id

logger = logging.getLogger(__package__)

DASHBOARD_TRIAL_ARTIFACT_PREFIX = "dashboard:artifacts:"
"""optuna-dashboard's study-level key for artifacts of a trial (works for finished trials)."""

LEARNING_CURVES_SVG = "learning_curves.svg"
LEARNING_CURVES_CSV = "learning_curves.csv"
CONFUSION_MATRIX_SVG = "confusion_matrix.svg"
CONFUSION_MATRIX_JSON = "confusion_matrix.json"


def upload_learning_curves(
    study: optuna.Study,
    trial: Trial | FrozenTrial,
    history: Sequence[Mapping[str, float]],
    *,
    artifact_store: Any | None = None,
) -> None:
    """Upload the trial's per-epoch metrics as an SVG chart and a CSV table; never raises."""
    try:
        if not history:
            logger.debug("trial %s: no history, no learning curves uploaded", trial.number)
            return
        columns = ["epoch"] + list(
            dict.fromkeys(name for row in history for name in row if name not in ("epoch", "step"))
        )
        rows = [
            {"epoch": row.get("epoch", row.get("step", index + 1)), **{k: row.get(k, "") for k in columns[1:]}}
            for index, row in enumerate(history)
        ]
        svg = learning_curves_svg(history, title=f"{study.study_name}: trial {trial.number}")
        with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as folder:
            svg_path = Path(folder) / LEARNING_CURVES_SVG
            svg_path.write_text(svg, encoding="utf-8")
            csv_path = Path(folder) / LEARNING_CURVES_CSV
            with csv_path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)
            _upload_files(study, trial, [svg_path, csv_path], artifact_store)
    except Exception as error:  # an artifact must never cost a trial
        logger.warning("trial %s: learning curves not uploaded: %s", trial.number, error)


def upload_confusion_matrix(
    study: optuna.Study,
    trial: Trial | FrozenTrial,
    confusion: Sequence[Sequence[int]] | np.ndarray,
    tissues: list[str],
    *,
    artifact_store: Any | None = None,
) -> None:
    """Upload a confusion matrix (rows true, columns predicted) as an SVG heat map and JSON; never raises."""
    try:
        counts = np.asarray(confusion, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(tissues):
            raise ValueError(
                f"confusion matrix of shape {counts.shape} does not match {len(tissues)} tissues"
            )
        svg = confusion_matrix_svg(counts, tissues, title=f"{study.study_name}: trial {trial.number}")
        payload = {"tissues": list(tissues), "matrix": counts.tolist(), "rows": "true", "columns": "predicted"}
        with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as folder:
            svg_path = Path(folder) / CONFUSION_MATRIX_SVG
            svg_path.write_text(svg, encoding="utf-8")
            json_path = Path(folder) / CONFUSION_MATRIX_JSON
            json_path.write_text(json.dumps(payload), encoding="utf-8")
            _upload_files(study, trial, [svg_path, json_path], artifact_store)
    except Exception as error:  # an artifact must never cost a trial
        logger.warning("trial %s: confusion matrix not uploaded: %s", trial.number, error)


def _upload_files(
    study: optuna.Study, trial: Trial | FrozenTrial, paths: Sequence[Path], artifact_store: Any | None
) -> None:
    store = artifact_store if artifact_store is not None else default_artifact_store()
    running = isinstance(trial, Trial) or trial.state == optuna.trial.TrialState.RUNNING
    for path in paths:
        if running:
            upload_artifact(
                artifact_store=store, file_path=str(path), study_or_trial=trial, storage=study_storage(study)
            )
        else:
            _upload_for_finished_trial(study, trial, path, store)


def _upload_for_finished_trial(study: optuna.Study, trial: FrozenTrial, path: Path, store: Any) -> None:
    """Store the file and list it under optuna-dashboard's study-level key for this trial."""
    artifact_id = str(uuid.uuid4())
    mimetype, encoding = mimetypes.guess_type(path.name)
    meta = {
        "artifact_id": artifact_id,
        "filename": path.name,
        "mimetype": mimetype or "application/octet-stream",
        "encoding": encoding,
    }
    with path.open("rb") as handle:
        store.write(artifact_id, handle)
    key = f"{DASHBOARD_TRIAL_ARTIFACT_PREFIX}{trial_id(trial)}:{artifact_id}"
    study_storage(study).set_study_system_attr(study_id(study), key, json.dumps(meta))


def trial_artifact_names(study: optuna.Study, trial: FrozenTrial) -> list[str]:
    """File names of the artifacts attached to ``trial`` (by Optuna or under the dashboard's key)."""
    names = [meta.filename for meta in optuna.artifacts.get_all_artifact_meta(trial, storage=study_storage(study))]
    prefix = f"{DASHBOARD_TRIAL_ARTIFACT_PREFIX}{trial_id(trial)}:"
    names += [
        json.loads(value)["filename"]
        for key, value in study_storage(study).get_study_system_attrs(study_id(study)).items()
        if key.startswith(prefix)
    ]
    return names
