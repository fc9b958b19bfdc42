"""Fixtures shared by the export and retrain tests: a private run directory and one finished study per module."""

from __future__ import annotations

import pytest

from hpo.run import run_worker
from hpo.study import load_study_file
from tests.run.test_workers import sqlite_url, tiny_study


@pytest.fixture(autouse=True, scope="module")
def _private_run_directory(tmp_path_factory):
    """Artifacts, locks and default stores of these tests go to a temporary run directory (workers inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPO_HOME", str(tmp_path_factory.mktemp("hpo-home")))
        yield


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, tiny_dataset, tiny_data_config):
    """A 3-trial classifier study on tiny data in a SQLite file, trial 0 the reference: (url, name)."""
    folder = tmp_path_factory.mktemp("finished-study")
    url = sqlite_url(folder)
    path = tiny_study(folder, tiny_data_config, name="finished", n_trials=3)
    run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    return url, "finished"
