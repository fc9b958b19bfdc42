"""Counts, best trials, durations and the study list from small queries equal what loading every trial gives."""

from __future__ import annotations

import datetime
import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.results import Counts, best_trial, list_studies, mean_trial_seconds, ranked_trials, top_trials
from hpo.samplers import trials_in_study
from hpo.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

START = datetime.datetime(2026, 1, 2, 3, 4, 5)


def _mixed_study(url: str, name: str, direction: str) -> optuna.Study:
    """Every state, excused and counted failures, tied and infinite values, trials without timestamps."""
    study = optuna.create_study(study_name=name, storage=open_storage(url, heartbeat_interval=None), direction=direction)
    distributions = {"x": FloatDistribution(0.0, 1.0)}
    values = [0.5, 0.25, 0.25, 0.75, math.inf, -math.inf, 0.1, 0.9]
    for i, value in enumerate(values):
        study.add_trial(create_trial(params={"x": i / 10}, distributions=distributions, value=value))
    for i, reason in enumerate(["interrupted", "storage outage", "ValueError: boom", None, "abandoned"]):
        study.add_trial(create_trial(
            state=TrialState.FAIL, params={"x": 0.5}, distributions=distributions,
            user_attrs={"fail_reason": reason} if reason is not None else {},
        ))
    for _ in range(3):
        study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 0.1}, distributions=distributions,
                                     intermediate_values={0: 0.3}))
    for x in (0.3, 0.4, 0.5):
        study.enqueue_trial({"x": x})
    study.ask()  # RUNNING: the first two enqueued trials; the third stays WAITING
    study.ask()
    return study


def _set_durations(study: optuna.Study) -> None:
    """Known start and end times on every finished trial (create_trial stamps them with 'now')."""
    from optuna.storages._rdb import models  # test-only: write known timestamps
    from optuna.storages._rdb.storage import _create_scoped_session

    backend = getattr(study._storage, "_backend", study._storage)
    with _create_scoped_session(backend.scoped_session) as session:
        for index, trial in enumerate(session.query(models.TrialModel).filter_by(study_id=study._study_id)):
            if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
                trial.datetime_start = START + datetime.timedelta(minutes=index)
                trial.datetime_complete = trial.datetime_start + datetime.timedelta(seconds=index + 1.25)


def _check_against_all_trials(url: str, name: str, direction: str) -> None:
    study = _mixed_study(url, name, direction)
    _set_durations(study)
    fresh = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    trials = fresh.get_trials(deepcopy=False)

    counts = Counts.of(fresh)
    assert counts == Counts.of_trials(trials)
    assert counts == Counts(complete=8, pruned=3, failed=2, running=2, waiting=1)

    ranked = ranked_trials(trials, fresh.directions)
    assert [t.number for t in top_trials(fresh, 4)] == [t.number for t in ranked[:4]]
    assert best_trial(fresh).number == ranked[0].number
    assert (best_trial(fresh).number, best_trial(fresh).value) == ((7, 0.9) if direction == "maximize" else (6, 0.1))

    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    expected = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in finished) / len(finished)
    assert mean_trial_seconds(fresh) == pytest.approx(expected, abs=1e-3)
    assert trials_in_study(open_storage(url, heartbeat_interval=None), name) == len(trials) == 19


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_sqlite_counts_best_and_durations_equal_the_full_read(tmp_path, unique_name, direction) -> None:
    _check_against_all_trials(f"sqlite:///{tmp_path / 'q.db'}", unique_name, direction)


@pytest.mark.postgres
def test_postgresql_counts_best_and_durations_equal_the_full_read(postgres_url, unique_name) -> None:
    _check_against_all_trials(postgres_url, unique_name, "minimize")


def test_the_study_list_matches_optunas_summaries(tmp_path, unique_name) -> None:
    url = f"sqlite:///{tmp_path / 'list.db'}"
    storage = open_storage(url, heartbeat_interval=None)
    _mixed_study(url, unique_name, "minimize")
    empty = optuna.create_study(study_name=f"{unique_name}-empty", storage=storage)
    empty.set_user_attr("model", "svm")
    rows = list_studies(storage)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    assert [r.name for r in rows] == [s.study_name for s in summaries]
    for row, summary in zip(rows, summaries):
        started = summary.datetime_start.strftime("%Y-%m-%d %H:%M") if summary.datetime_start else ""
        assert row.started == started
    assert (rows[0].counts, rows[0].best_value, rows[0].best_trial) == (Counts(8, 3, 2, 2, 1), 0.1, 6)
    assert rows[1].model == "svm" and rows[1].counts == Counts() and rows[1].best_trial is None


def test_an_in_memory_study_counts_from_its_trials() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "interrupted"}))
    assert Counts.of(study) == Counts(complete=3)
    assert best_trial(study).value == study.best_value
    assert mean_trial_seconds(study) is not None


def test_hpo_show_prints_the_headline_of_the_full_read(tmp_path, unique_name, capsys) -> None:
    from hpo.cli import main
    from hpo.results import REFERENCE_ATTR, compute_headline

    url = f"sqlite:///{tmp_path / 'show.db'}"
    study = _mixed_study(url, unique_name, "maximize")
    study.set_user_attr("metric", "accuracy")
    reference = study.ask()
    reference.set_user_attr(REFERENCE_ATTR, True)
    study.tell(reference, 0.3)
    expected = compute_headline(study, storage=url).lines()
    assert main(["show", unique_name, "--storage", url, "-k", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1 : 1 + len(expected)] == expected
    assert any("reference" in line for line in expected)


def test_a_read_only_view_hands_out_the_trials_themselves_with_their_numbers() -> None:
    from hpo.storage import read_only_view

    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    picked = study.trials[3:]
    view = read_only_view(picked, study.directions)
    assert [t.number for t in view.trials] == [3, 4, 5]
    assert view.trials[0] is picked[0] and view.get_trials(deepcopy=True)[1] is picked[1]
    assert view.best_trial.number == max(picked, key=lambda t: t.value).number
    assert optuna.visualization.plot_optimization_history(read_only_view(study.trials, study.directions)).data


def _same_trials(url: str, name: str) -> None:
    from hpo.results import all_trials

    study = _mixed_study(url, name, "minimize")
    study.set_user_attr("metric", "loss")
    running = study.ask()
    running.set_user_attr("nested", {"a": [1, 2.5, None]})
    running.storage.set_trial_system_attr(running._trial_id, "hpo:history", [{"epoch": 1}])
    running.report(float("inf"), 3)
    running.report(0.25, 1)
    fresh = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    assert all_trials(fresh) == fresh.get_trials(deepcopy=False)


def test_the_plain_query_read_equals_optunas_read_on_sqlite(tmp_path, unique_name) -> None:
    _same_trials(f"sqlite:///{tmp_path / 'read.db'}", unique_name)


@pytest.mark.postgres
def test_the_plain_query_read_equals_optunas_read_on_postgresql(postgres_url, unique_name) -> None:
    _same_trials(postgres_url, unique_name)


def test_a_warmed_trial_cache_reads_like_optunas_and_follows_later_changes(tmp_path, unique_name) -> None:
    from hpo.storage import warm_trial_cache

    url = f"sqlite:///{tmp_path / 'warm.db'}"
    writer = _mixed_study(url, unique_name, "minimize")
    running = writer.ask()
    worker = optuna.load_study(study_name=unique_name, storage=open_storage(url, heartbeat_interval=None))
    assert warm_trial_cache(worker) and not warm_trial_cache(worker)  # once: afterwards Optuna's own reads
    writer.tell(running, 0.05)  # unfinished when warmed: read again
    writer.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)  # created since
    fresh = optuna.load_study(study_name=unique_name, storage=open_storage(url, heartbeat_interval=None))
    assert worker.get_trials(deepcopy=False) == fresh.get_trials(deepcopy=False)
    assert worker.get_trials(deepcopy=False)[running.number].value == 0.05
