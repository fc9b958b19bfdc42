"""What the dashboard shows beside Optuna's data: study note, trial notes, the learning-curve figure (real SQLite)."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from hpo.results import (
    describe_study,
    has_study_figures,
    record_confusion_matrix,
    record_trial_history,
    refresh_study_figures,
)
from hpo.results._dashboard_content import (
    CONFUSION_FIGURE_ID,
    CURVES_FIGURE_ID,
    CURVES_TRIALS,
    has_history,
    refresh_learning_curves,
)
from hpo.storage import open_storage
from hpo.study import load_study_file
from tests.run.test_workers import tiny_study

METRICS = ("val_balanced_accuracy", "val_loss", "train_loss", "lr")


def _figure(study: optuna.Study, figure_id: str = CURVES_FIGURE_ID) -> dict | None:
    objects = get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id))
    return json.loads(objects[figure_id]) if figure_id in objects else None


def _run_trial(study: optuna.Study, quality: float, epochs: int = 3) -> optuna.Trial:
    trial = study.ask()
    history = [{"step": e, "val_balanced_accuracy": quality * e / epochs, "val_loss": 2 - quality * e,
                "train_loss": 2 - e, "lr": 1e-3 / e} for e in range(1, epochs + 1)]
    record_trial_history(trial, history)
    study.tell(trial, quality)
    return trial


def test_study_note_names_the_metric_and_records_the_overrides(tmp_path, tiny_data_config):
    path = tiny_study(tmp_path, tiny_data_config, name="noted", description="What this study is for")
    spec = load_study_file(path, {"n_trials": 2, "fixed.max_epochs": 2})
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'n.db'}", heartbeat_interval=None), study_name="noted")
    describe_study(study, spec)
    assert study.metric_names == ["val_balanced_accuracy"]
    note = get_note(study)
    assert note.startswith("## What this study is for")
    assert "`fixed.max_epochs=2`" in note and "--set n_trials=2" in note
    toml = note.split("```toml\n", 1)[1].split("```", 1)[0]
    again = load_study_file(_write(tmp_path / "again.toml", toml))  # the effective file runs as it is
    assert again.n_trials == 2 and again.fixed["max_epochs"] == 2 and again.space.names == spec.space.names


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_learning_curves_show_every_metric_of_the_best_trials(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval=None), direction="maximize")
    study.set_metric_names(["val_balanced_accuracy"])
    qualities = [0.1 * n for n in range(1, CURVES_TRIALS + 2)]  # one more than the figure shows
    for quality in qualities:
        trial = _run_trial(study, quality)
        assert has_history(trial)
        assert refresh_learning_curves(study, finished_trial=trial._trial_id)
    figure = _figure(study)
    buttons = [b["label"] for b in figure["layout"]["updatemenus"][0]["buttons"]]
    assert buttons == list(METRICS)  # the study's metric first, then validation, training, the rest
    shown = {trace["legendgroup"] for trace in figure["data"]}
    assert shown == {str(n) for n in range(1, CURVES_TRIALS + 1)}  # trial 0, the worst, dropped out
    lr_button = figure["layout"]["updatemenus"][0]["buttons"][3]
    assert lr_button["args"][1]["yaxis.type"] == "log"
    assert sum(lr_button["args"][0]["visible"]) == CURVES_TRIALS  # one line per trial for the chosen metric

    worst = _run_trial(study, 0.01)  # not among the best: the figure stays as it is, nothing written
    assert not refresh_learning_curves(study, finished_trial=worst._trial_id)
    note = get_note(worst)
    assert note.splitlines()[2].split(" | ")[:2] == ["| epoch", "val_balanced_accuracy"] and "| 3 |" in note


def test_trials_without_epochs_cost_nothing(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'f.db'}", heartbeat_interval=None))
    trial = study.ask()
    study.tell(trial, 1.0)
    assert not has_history(trial)
    assert not refresh_learning_curves(study, finished_trial=trial._trial_id) and _figure(study) is None


def test_the_confusion_matrix_shown_is_the_best_trials(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'm.db'}", heartbeat_interval=None),
                                direction="maximize")
    for value, diagonal in ((0.5, 3), (0.9, 7), (0.7, 5)):  # the last one was "new best" when it ran elsewhere
        trial = study.ask()
        record_confusion_matrix(trial, [[diagonal, 1], [2, diagonal]], ["Lung", "Skin"])
        assert has_study_figures(trial)
        study.tell(trial, value)
        refresh_study_figures(study, trial)
    (heatmap,) = _figure(study, CONFUSION_FIGURE_ID)["data"]
    assert heatmap["z"] == [[7, 1], [2, 7]] and heatmap["y"] == ["Lung", "Skin"]
    assert "best trial 1 " in _figure(study, CONFUSION_FIGURE_ID)["layout"]["title"]["text"]
