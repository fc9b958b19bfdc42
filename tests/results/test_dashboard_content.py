"""What the dashboard shows beside Optuna's data: study note, trial notes, the study figures (real SQLite).

Read back through optuna-dashboard's own functions (``get_note``, its note and plot readers), so the keys
written here without optuna-dashboard's ``save_*`` are the ones it reads.
"""

from __future__ import annotations

import json
import re
import time

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects
from optuna_dashboard._note import get_note_from_system_attrs

from hpo.results import (
    describe_study,
    has_study_figures,
    record_confusion_matrix,
    record_trial_history,
    refresh_after_trial,
    refresh_study_figures,
)
from hpo.results._dashboard_content import (
    CONFUSION_FIGURE_ID,
    CURVES_FIGURE_ID,
    CURVES_TRIALS,
    PRUNED_CURVES,
    has_history,
    refresh_learning_curves,
    replace_headline,
    top_confusions,
)
from hpo.storage import open_storage, set_user_attrs
from hpo.study import load_study_file
from tests.run.test_workers import tiny_study
from tests.support.prefilled import METRIC, history, prefill

METRICS = ("val_balanced_accuracy", "val_loss", "train_loss", "lr")


def _figure(study: optuna.Study, figure_id: str = CURVES_FIGURE_ID) -> dict | None:
    objects = get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id))
    return json.loads(objects[figure_id]) if figure_id in objects else None


def _trial_note(study: optuna.Study, number: int) -> str:
    trial = study.trials[number]
    return get_note_from_system_attrs(study._storage.get_study_system_attrs(study._study_id), trial._trial_id)["body"]


def _study(tmp_path, name: str = "s") -> optuna.Study:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval=None),
                                direction="maximize", study_name=name)
    study.set_user_attr("metric", METRIC)
    return study


def _finish(study: optuna.Study, quality: float, epochs: int = 3, *, prune: bool = False, reference: bool = False,
            refresh: bool = True) -> optuna.Trial:
    """A trial as the worker runs one: user attributes, per-epoch history, reports, told, then refreshed."""
    trial = study.ask()
    rows = [{"step": e, METRIC: round(quality * e / epochs, 4), "val_loss": 2 - quality * e,
             "train_loss": 2 - e, "lr": 1e-3 / e} for e in range(1, epochs + 1)]
    for row in rows:
        trial.report(row[METRIC], row["step"])
    attrs = {"steps_run": epochs, "train_seconds": 1.25, "val_accuracy": quality, "best_epoch": epochs}
    if reference:
        attrs["reference"] = True
    if prune:
        attrs["prune_reason"] = f"pruned by MedianPruner at step {epochs}: best {METRIC} so far x < median y"
    set_user_attrs(trial, attrs)
    record_trial_history(trial, rows)
    study.tell(trial, None if prune else quality, state=TrialState.PRUNED if prune else TrialState.COMPLETE)
    if refresh:
        refresh_after_trial(study, trial, metric=METRIC)
    return trial


def test_study_note_leads_with_the_headline_and_runs_this_study_again(tmp_path, tiny_data_config):
    path = tiny_study(tmp_path, tiny_data_config, name="noted", description="What this study is for")
    spec = load_study_file(path, {"n_trials": 2, "fixed.max_epochs": 2})
    url = f"sqlite:///{tmp_path / 'n.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="noted-2")
    describe_study(study, spec)
    assert study.metric_names == ["val_balanced_accuracy"]
    note = get_note(study)
    assert note.startswith("### No winner yet\n")
    head, body = note.split("\n\n---\n\n", 1)
    assert body.startswith("## What this study is for")
    assert "`fixed.max_epochs=2`" in note and "--set n_trials=2" in note
    again = note.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "--study-name noted-2" in again and f"--storage {url}" in again  # this study, not a new one
    toml = note.split("```toml\n", 1)[1].split("```", 1)[0]
    rerun = load_study_file(_write(tmp_path / "again.toml", toml))  # the effective file runs as it is
    assert rerun.n_trials == 2 and rerun.fixed["max_epochs"] == 2 and rerun.space.names == spec.space.names


def _write(path, text):
    path.write_text(text)
    return path


def test_the_headline_follows_the_trials_and_keeps_the_rest_of_the_note(tmp_path):
    study = _study(tmp_path)
    describe = "## My notes\n\nkept as written\n"
    assert replace_headline(describe, "### X") == "### X\n\n---\n\n" + describe  # a note without one gets one
    _finish(study, 0.5, reference=True)
    study_note = get_note(study)
    assert study_note.startswith("### Winner: trial 0, val_balanced_accuracy 0.5000 (the defaults)")
    _finish(study, 0.8)
    _finish(study, 0.7)
    note = get_note(study)
    assert note.startswith("### Winner: trial 1, val_balanced_accuracy 0.8000\n")
    assert "**+0.3000** over the reference (trial 0, the defaults: 0.5000)" in note
    assert "**+0.1000** over the runner-up (trial 2: 0.7000)" in note
    assert "hpo export s --storage sqlite:///" in note and "hpo train --config best.toml" in note
    # the winner's page leads with the same headline; the former winner's no longer claims it
    assert _trial_note(study, 1).startswith("#### Winner: trial 1")
    former = _trial_note(study, 0)
    assert not former.startswith("#### Winner") and former.startswith("**Trial 0: complete")
    assert "Winner then: trial 1 (0.8000)" in former


def test_trial_notes_put_the_summary_first_and_the_epochs_last(tmp_path):
    study = _study(tmp_path)
    _finish(study, 0.9, epochs=30)
    _finish(study, 0.6, epochs=30)
    _finish(study, 0.4, epochs=7, prune=True)
    second, pruned = _trial_note(study, 1), _trial_note(study, 2)
    lines = second.splitlines()
    assert lines[0] == "**Trial 1: complete, val_balanced_accuracy 0.6000, rank 2 of 2** (when it finished)"
    assert "best epoch 30 of 30 · val_accuracy 0.6 · 1.25 s" in second
    assert "`hpo export s --storage sqlite:///" in second and "--trial 1 --out trial1.toml`" in second
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| epoch | val_balanced_accuracy | val_loss | train_loss |"
    assert 2 <= len(table) - 1 <= 7 and table[-1].startswith("| 30 |")  # every k-th epoch and the last, not 30 rows
    assert lines.index(table[0]) > lines.index(next(line for line in lines if line.startswith("`hpo export")))
    assert pruned.startswith("**Trial 2: pruned at step 7**, val_balanced_accuracy 0.4000 (its last value)")
    assert "Why pruned: pruned by MedianPruner at step 7: best val_balanced_accuracy so far x < median y" in pruned
    assert "hpo export" not in pruned  # only complete trials can be exported


def test_a_trial_with_a_curve_picture_shows_it_and_links_every_epoch(tmp_path):
    from optuna.artifacts import FileSystemArtifactStore

    from hpo.results import upload_learning_curves

    study = _study(tmp_path)
    store = FileSystemArtifactStore(str(tmp_path / "artifacts"))
    (tmp_path / "artifacts").mkdir()
    trial = study.ask()
    set_user_attrs(trial, {"steps_run": 3})
    rows = history(0.8, 3)
    record_trial_history(trial, rows)
    upload_learning_curves(study, trial, rows, artifact_store=store)
    study.tell(trial, 0.8)
    refresh_after_trial(study, trial, metric=METRIC)
    note = _trial_note(study, 0)
    picture = re.search(r"!\[[^]]*\]\((/artifacts/\d+/\d+/[0-9a-f-]+)\)", note)
    csv = re.search(r"\[learning_curves\.csv\]\((/artifacts/\d+/\d+/[0-9a-f-]+)\)", note)
    assert picture and csv and picture.group(1) != csv.group(1)
    artifact_id = picture.group(1).rsplit("/", 1)[1]
    with store.open_reader(artifact_id) as svg:
        assert svg.read().startswith(b"<svg") and "| epoch |" not in note


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_learning_curves_show_the_best_trials_and_the_pruned_ones_dashed(tmp_path):
    study = _study(tmp_path)
    for quality in [0.1 * n for n in range(1, CURVES_TRIALS + 2)]:  # one more than the figure shows
        assert has_history(_finish(study, quality))
    pruned = [_finish(study, 0.05 * n, epochs=2, prune=True) for n in range(1, PRUNED_CURVES + 3)]
    figure = _figure(study)
    buttons = [b["label"] for b in figure["layout"]["updatemenus"][0]["buttons"]]
    assert buttons == list(METRICS)  # the study's metric first, then validation, training, the rest
    shown = {trace["legendgroup"] for trace in figure["data"]}
    complete = {str(n) for n in range(1, CURVES_TRIALS + 1)}  # trial 0, the worst, dropped out
    furthest = {str(t.number) for t in pruned[-PRUNED_CURVES:]}  # the pruned ones with the best last values
    assert shown == complete | furthest
    dashed = [trace for trace in figure["data"] if trace["line"]["dash"] == "dash"]
    assert {trace["legendgroup"] for trace in dashed} == furthest
    assert all(trace["marker"]["symbol"][-1] == "x" and trace["name"].endswith("(pruned)") for trace in dashed)
    lr_button = figure["layout"]["updatemenus"][0]["buttons"][3]
    assert lr_button["args"][1]["yaxis.type"] == "log"
    assert sum(lr_button["args"][0]["visible"]) == CURVES_TRIALS + PRUNED_CURVES  # a line per trial and metric

    before = _figure(study)
    worst = _finish(study, 0.01)  # not among the best: the figure stays as it is
    assert _figure(study) == before
    assert not refresh_learning_curves(study, finished_trial=worst._trial_id)


def test_trials_of_other_objectives_cost_nothing(tmp_path):
    study = _study(tmp_path)
    trial = study.ask()
    study.tell(trial, 1.0)
    refresh_after_trial(study, trial, metric=METRIC)
    assert not has_history(trial) and _figure(study) is None
    assert "dashboard:note_ver" not in study._storage.get_study_system_attrs(study._study_id)


def test_the_confusion_matrix_shown_is_the_best_trials_by_share_of_the_row(tmp_path):
    study = _study(tmp_path)
    for value, diagonal in ((0.5, 3), (0.9, 7), (0.7, 5)):  # the last one was "new best" when it ran elsewhere
        trial = study.ask()
        set_user_attrs(trial, {"steps_run": 1})
        record_confusion_matrix(trial, [[diagonal, 1], [2, diagonal]], ["Lung", "Skin"])
        assert has_study_figures(trial)
        study.tell(trial, value)
        refresh_study_figures(study, trial)
    figure = _figure(study, CONFUSION_FIGURE_ID)
    (heatmap,) = figure["data"]
    assert heatmap["z"] == [[7 / 8, 1 / 8], [2 / 9, 7 / 9]] and heatmap["customdata"] == [[7, 1], [2, 7]]
    assert heatmap["y"] == ["Lung", "Skin"] and (heatmap["zmin"], heatmap["zmax"]) == (0, 1)
    assert figure["layout"]["yaxis"]["dtick"] == 1  # every label, however many tissues
    assert "best trial 1 " in figure["layout"]["title"]["text"]


def test_top_confusions_are_the_largest_off_diagonal_cells():
    confusion = {"tissues": ["A", "B", "C"], "matrix": [[5, 3, 0], [1, 9, 0], [4, 0, 2]]}
    assert top_confusions(confusion, 2) == [("C", "A", 4, 6), ("A", "B", 3, 8)]
    assert top_confusions({"tissues": ["A"], "matrix": [[3]]}) == []


@pytest.mark.slow
def test_the_cost_per_trial_does_not_grow_with_the_study(tmp_path):
    """Issue 21: the same storage statements, none reading every study system attribute, at 20 and at 200 trials."""
    measured = {}
    for size in (20, 200):
        storage = open_storage(f"sqlite:///{tmp_path / f'{size}.db'}", heartbeat_interval=None)
        study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
        prefill(study, size)
        study = optuna.load_study(study_name="s", storage=storage)  # a worker's study: it read the trials once
        study.get_trials(deepcopy=False)
        statements: list[str] = []
        listen = lambda conn, cursor, statement, *rest: statements.append(" ".join(statement.split()))
        sqlalchemy.event.listen(storage.engine, "before_cursor_execute", listen)
        full_reads = []
        original = storage.get_study_system_attrs
        storage.get_study_system_attrs = lambda *a: full_reads.append(a) or original(*a)
        counts, seconds = [], []
        try:
            for quality in (0.95, 0.5, 0.97, 0.2):  # new bests (figure, notes rewritten) and also-rans
                trial = _finish(study, quality, epochs=8, refresh=False)
                statements.clear()
                started = time.perf_counter()
                refresh_after_trial(study, trial, metric=METRIC)
                seconds.append(time.perf_counter() - started)
                counts.append(len(statements))
                unbounded = [s for s in statements if "FROM study_system_attributes" in s and "key" not in s.split("WHERE", 1)[-1]]
                assert not unbounded, unbounded
        finally:
            sqlalchemy.event.remove(storage.engine, "before_cursor_execute", listen)
            storage.get_study_system_attrs = original
        assert not full_reads  # optuna-dashboard's save_note / study.metric_names would read them all
        assert get_note(study).startswith("### Winner: trial ")  # and the work was done
        measured[size] = (counts, sorted(seconds)[len(seconds) // 2])
    assert measured[20][0] == measured[200][0], measured
    assert measured[200][1] < 5 * measured[20][1] + 0.05, measured  # timing: generous for a loaded machine


def test_a_trial_at_chance_says_so_on_its_note_and_shows_its_tie_break(tmp_path):
    study = _study(tmp_path)
    _finish(study, 0.9)
    trial = study.ask()
    set_user_attrs(trial, {"steps_run": 3, "at_chance": True, "tie_break_loss": 2.0794})
    study.tell(trial, 0.125)
    refresh_after_trial(study, trial, metric=METRIC)
    note = _trial_note(study, 1)
    assert "**At chance:** it ended no better than guessing" in note and "tie-break loss 2.079" in note
    assert "At chance" not in _trial_note(study, 0)
