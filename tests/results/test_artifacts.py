"""Per-trial artifacts: learning curves and confusion matrices in a real SQLite storage."""

from __future__ import annotations

import csv
import io
import json
import logging
import xml.etree.ElementTree as ElementTree

import numpy as np
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore

from hpo.results import is_new_best, upload_confusion_matrix, upload_learning_curves
from hpo.results._artifacts import trial_artifact_names
from hpo.storage import open_storage

HISTORY = [
    {"train_loss": 2.0, "val_loss": 2.2, "val_balanced_accuracy": 0.10},
    {"train_loss": 1.5, "val_loss": 1.9, "val_balanced_accuracy": 0.35},
    {"train_loss": 1.1, "val_loss": float("nan"), "val_balanced_accuracy": 0.55},
]
TISSUES = ["Bone", "Breast", "Lung"]
CONFUSION = [[5, 1, 0], [0, 4, 2], [1, 0, 7]]


@pytest.fixture
def study(tmp_path, monkeypatch) -> optuna.Study:
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "runs"))
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name="artifacts", direction="maximize")
    study.set_user_attr("metric", "val_balanced_accuracy")  # as study files record it
    return study


@pytest.fixture
def store(tmp_path) -> FileSystemArtifactStore:
    (tmp_path / "store").mkdir()
    return FileSystemArtifactStore(str(tmp_path / "store"))


def _read(store: FileSystemArtifactStore, study: optuna.Study, trial, filename: str) -> bytes:
    metas = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
    (meta,) = [m for m in metas if m.filename == filename]
    with store.open_reader(meta.artifact_id) as reader:
        return reader.read()


def test_running_trial_gets_curves_and_confusion(study, store):
    trial = study.ask()
    upload_learning_curves(study, trial, HISTORY, artifact_store=store)
    upload_confusion_matrix(study, trial, np.array(CONFUSION), TISSUES, artifact_store=store)
    study.tell(trial, 0.55)
    frozen = study.trials[0]

    assert sorted(trial_artifact_names(study, frozen)) == [
        "confusion_matrix.json", "confusion_matrix.svg", "learning_curves.csv", "learning_curves.svg",
    ]  # four at most: optuna-dashboard lays them out in one row (a fifth widened the trial page)
    rows = list(csv.DictReader(io.StringIO(_read(store, study, frozen, "learning_curves.csv").decode())))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["val_balanced_accuracy"]) == pytest.approx(0.35)

    svg = _read(store, study, frozen, "learning_curves.svg").decode()
    root = ElementTree.fromstring(svg)  # well-formed XML
    assert int(root.get("width")) <= 920 and int(root.get("height")) <= 300  # it fits the trial's note
    polylines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(polylines) == 3  # one line per metric
    val_loss = [p for p in polylines if p.find("{http://www.w3.org/2000/svg}title").text == "val_loss"][0]
    assert len(val_loss.get("points").split()) == 2  # the NaN epoch is skipped, not drawn

    matrix = json.loads(_read(store, study, frozen, "confusion_matrix.json"))
    assert matrix["tissues"] == TISSUES and matrix["matrix"] == CONFUSION
    heat = _read(store, study, frozen, "confusion_matrix.svg").decode()
    ElementTree.fromstring(heat)
    assert "true Lung, predicted Lung: 7" in heat
    assert "20 samples, accuracy 0.800" in heat  # 16 of 20 on the diagonal


def test_finished_trial_artifacts_are_listed_beside_it(study, store):
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    best = study.best_trial
    upload_confusion_matrix(study, best, CONFUSION, TISSUES, artifact_store=store)
    assert sorted(trial_artifact_names(study, best)) == ["confusion_matrix.json", "confusion_matrix.svg"]
    other = [t for t in study.trials if t.number != best.number][0]
    assert trial_artifact_names(study, other) == []


def test_default_store_is_the_projects(study, tmp_path):
    trial = study.ask()
    upload_learning_curves(study, trial, HISTORY)
    assert len(list((tmp_path / "runs" / "artifacts").iterdir())) == 2


def test_failures_warn_and_never_raise(study, store, caplog):
    trial = study.ask()
    with caplog.at_level(logging.WARNING, logger="hpo.results"):
        upload_confusion_matrix(study, trial, [[1, 2], [3, 4]], TISSUES, artifact_store=store)
        upload_learning_curves(study, trial, HISTORY, artifact_store=object())  # not a store
    assert "does not match 3 tissues" in caplog.text
    assert "learning curves not uploaded" in caplog.text
    study.tell(trial, 0.1)  # the trial itself is unharmed
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_is_new_best_follows_direction(study):
    assert is_new_best(study, 0.3)  # nothing completed yet
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert is_new_best(study, 0.6) and not is_new_best(study, 0.4)
    assert not is_new_best(study, float("nan"))


def test_learning_rate_gets_its_own_panel():
    from hpo.results._svg_charts import learning_curves_svg

    history = [{**row, "lr": 1e-3 / epoch} for epoch, row in enumerate(HISTORY, start=1)]
    root = ElementTree.fromstring(learning_curves_svg(history))
    titles = [t.text for t in root.findall("{http://www.w3.org/2000/svg}text")]
    assert {"loss", "metrics", "learning rate"} <= set(titles)
    assert "lr (last 0.000333)" in titles
