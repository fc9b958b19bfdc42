"""Notes and figures as optuna-dashboard stores them, read and written key by key (real SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading

import optuna
import pytest
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from hpo.storage import (
    insert_study_system_attrs,
    open_storage,
    study_attr_transaction,
    study_id,
    study_storage,
    study_system_attrs_with_prefix,
)

PREFIX = "dashboard:plot_data:curves:"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}"
    return request.getfixturevalue("postgres_url")


def _study(url: str, name: str) -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))


def test_a_prefix_reads_its_keys_only_and_writes_blank_what_a_shorter_value_left(url, unique_name):
    study = _study(url, unique_name)
    storage, sid = study_storage(study), study_id(study)
    assert insert_study_system_attrs(storage, sid, {f"{PREFIX}0": "ab", f"{PREFIX}1": "cd", f"{PREFIX}2": "ef",
                                                    "dashboard:plot_data:curvesX:0": "other", "dashboard:note_ver": 4,
                                                    "dashboard%_:0": "like-wildcards"})
    assert not insert_study_system_attrs(storage, sid, {f"{PREFIX}0": "again"})  # exists: nothing written
    assert study_system_attrs_with_prefix(storage, sid, PREFIX) == {f"{PREFIX}0": "ab", f"{PREFIX}1": "cd",
                                                                     f"{PREFIX}2": "ef"}
    assert study_system_attrs_with_prefix(storage, sid, "dashboard%_:") == {"dashboard%_:0": "like-wildcards"}
    with study_attr_transaction(storage, sid) as writer:
        writer.write_chunks(PREFIX, ["xy"], version_key="dashboard:note_ver")
    attrs = storage.get_study_system_attrs(sid)
    assert [attrs[f"{PREFIX}{i}"] for i in range(3)] == ["xy", "", ""]  # optuna-dashboard concatenates them all
    assert attrs["dashboard:note_ver"] == 5 and attrs["dashboard:plot_data:curvesX:0"] == "other"
    with study_attr_transaction(storage, sid) as writer:
        writer.write_chunks("dashboard:9:note_str:", ["new"], version_key="dashboard:9:note_ver")
    assert storage.get_study_system_attrs(sid)["dashboard:9:note_ver"] == 1


def test_concurrent_writers_never_leave_a_figure_half_one_and_half_the_other(url, unique_name):
    _study(url, unique_name)
    figures = [json.dumps({"data": [{"y": list(range(n))}], "layout": {}}) for n in (5, 2000, 40, 900)]
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        study = optuna.load_study(study_name=unique_name, storage=open_storage(url, heartbeat_interval=None))
        try:
            for round_ in range(12):
                text = figures[(round_ + offset) % len(figures)]
                with study_attr_transaction(study_storage(study), study_id(study)) as attrs:
                    attrs.write_chunks(PREFIX, [text[i:i + 2045] for i in range(0, len(text), 2045)])
        except BaseException as error:  # noqa: BLE001 (reported by the test thread)
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    study = optuna.load_study(study_name=unique_name, storage=open_storage(url, heartbeat_interval=None))
    stored = get_plotly_graph_objects(study_storage(study).get_study_system_attrs(study_id(study)))["curves"]
    assert stored in figures  # whole: one writer's figure, parseable
