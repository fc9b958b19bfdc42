"""``fidelity = "auto"``: ``hpo run`` says which fidelity the data made it choose, and the study keeps it."""

from __future__ import annotations

import logging

import optuna
import tomli_w

from hpo.run._launcher import _prepare
from hpo.study import small_cv_warning


def write_study(tmp_path, data_config, **data):
    content = {
        "name": "auto-fidelity", "model": "classifier", "metric": "val_balanced_accuracy", "direction": "maximize",
        "n_trials": 1, "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": str(data_config.cache_dir), **data},
        "fixed": {"fidelity": "auto", "fidelity_steps": 3, "max_epochs": 2},
        "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
    }
    path = tmp_path / "auto.toml"
    path.write_text(tomli_w.dumps(content))
    return path


def test_hpo_run_says_which_fidelity_auto_chose_and_why(tmp_path, tiny_data_config, caplog, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with caplog.at_level(logging.INFO, logger="hpo.run"):
        prepared = _prepare(write_study(tmp_path, tiny_data_config), {}, url, None)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fidelity auto:")]
    assert lines == [
        ("fidelity auto: trials ranked by 3-fold CV on the training split (126 training rows, 27 validation samples "
        "over 6 tissues (4.5 per tissue); fewer than 200 training rows or 5 validation samples per tissue)"),
    ]
    study = optuna.load_study(study_name=prepared.name, storage=url)
    assert study.user_attrs["fidelity_choice"]["fidelity"] == "folds"


def test_a_large_split_keeps_the_validation_split(tmp_path, tiny_data_config, caplog, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    # the small preset (500 samples, 16 tissues) with a quarter for validation: 325 training rows, ~8 per tissue
    path = write_study(tmp_path, tiny_data_config, preset="small", val_fraction=0.25, test_fraction=0.1)
    with caplog.at_level(logging.INFO, logger="hpo.run"):
        prepared = _prepare(path, {}, url, None)
    study = optuna.load_study(study_name=prepared.name, storage=url)
    assert study.user_attrs["fidelity_choice"]["fidelity"] == "none"
    assert any(r.getMessage().startswith("fidelity auto: trials ranked by the validation split (") for r in caplog.records)


def test_cv_studies_on_few_rows_per_tissue_are_warned_once() -> None:
    y = [0] * 3 + [1] * 20 + [2] * 30
    warning = small_cv_warning(y, 5, 3)
    assert warning is not None and warning.startswith("5-fold CV on 53 training samples over 3 tissues")
    assert "2.4 to 24.0 rows per tissue" in warning
    assert small_cv_warning([0] * 40 + [1] * 40, 5, 2) is None
    assert small_cv_warning([0] * 20 + [1] * 20, 5, 2) is not None  # 40 rows: steps of 0.025
