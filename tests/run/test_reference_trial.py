"""The reference trial: the model's defaults, clipped into the space, enqueued once as trial 0 (real SQLite)."""

from __future__ import annotations

import threading

import optuna
import pytest
from optuna.trial import TrialState

from hpo.results import compute_headline
from hpo.run import open_study, run_worker
from hpo.run._setup import reference_params
from hpo.storage import open_storage
from hpo.study import load_study_file
from tests.run.test_workers import sqlite_url, tiny_study

SPACE = {
    "lr": {"type": "float", "low": 1e-2, "high": 3e-2, "log": True},  # default 3e-3: below, clipped to 1e-2
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.25},  # default 0.3: onto the grid, 0.25
    "head_dim": {"type": "categorical", "choices": [32, 256]},  # default 64: the nearest, 32
    "activation": {"type": "categorical", "choices": ["gelu", "relu"]},  # default relu: itself
    "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},  # adamw: not sampled
    "head_layers": {"type": "int", "low": 2, "high": 3},  # default 1: 2
}


def test_reference_params_are_the_defaults_clipped_into_the_space(tmp_path, tiny_data_config):
    spec = load_study_file(tiny_study(tmp_path, tiny_data_config, space=SPACE))
    assert reference_params(spec) == {
        "lr": 1e-2, "dropout": 0.25, "head_dim": 32, "activation": "relu", "optimizer": "adamw", "head_layers": 2,
    }


def _storage(tmp_path):
    return open_storage(sqlite_url(tmp_path), heartbeat_interval=None)


def _references(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.user_attrs.get("reference") is True]


def test_workers_opening_a_new_study_at_once_enqueue_one_reference(tmp_path, tiny_data_config):
    spec = load_study_file(tiny_study(tmp_path, tiny_data_config, name="race"))
    storage = _storage(tmp_path)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            open_study(spec, storage)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    study = open_study(spec, storage)  # and once more, later: still one
    waiting = [t for t in _references(study) if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and waiting[0].number == 0
    assert waiting[0].system_attrs["fixed_params"] == {"lr": 3e-3, "dropout": 0.3}


def test_reference_false_enqueues_nothing(tmp_path, tiny_data_config):
    spec = load_study_file(tiny_study(tmp_path, tiny_data_config, name="none", reference=False))
    assert spec.reference is False
    assert open_study(spec, _storage(tmp_path)).get_trials() == []


def test_reference_must_be_a_boolean(tmp_path, tiny_data_config):
    with pytest.raises(ValueError, match="reference: expected true or false"):
        load_study_file(tiny_study(tmp_path, tiny_data_config, name="bad", reference="no"))


@pytest.mark.slow
def test_the_reference_runs_first_and_the_headline_states_the_gain(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    spec = load_study_file(tiny_study(tmp_path, tiny_data_config, name="ref", n_trials=3))
    run_worker(spec, storage_url=url, num_threads=1)
    study = optuna.load_study(study_name="ref", storage=open_storage(url, heartbeat_interval=None))
    trial = study.trials[0]
    assert trial.user_attrs["reference"] is True and trial.state == TrialState.COMPLETE
    assert trial.params == {"lr": 3e-3, "dropout": 0.3}
    head = compute_headline(study)
    assert head.reference is not None and head.reference.number == 0
    gains = head.gains_text()
    assert "over the reference (trial 0, the defaults" in gains or "the reference trial (the defaults) won" in gains
