"""Relative data paths: a study file's are relative to the study file, exports hold absolute ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from data_pipeline import DataConfig
from data_pipeline.synthetic import generate_files, spec_for
from hpo.cli import main
from hpo.results import read_config
from hpo.study import load_study_file
from tests.support import data_samples as samples


def _project(root: Path, data: dict, **study: object) -> Path:
    """``root/project/studies/s.toml`` with the given [data] table; returns the study file."""
    content = {
        "name": "paths", "model": "knn", "metric": "val_balanced_accuracy", "direction": "maximize",
        "n_trials": 2, "device": "cpu", "data": data,
        "space": {"n_neighbors": {"type": "int", "low": 1, "high": 5}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, **study,
    }
    path = root / "project" / "studies" / "s.toml"
    path.parent.mkdir(parents=True)
    path.write_text(tomli_w.dumps(content))
    return path


def test_study_file_paths_are_relative_to_the_study_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _project(tmp_path, {"expression_path": "../data/e.csv", "model_path": "../data/m.csv", "cache_dir": "../cache"})
    data = tmp_path / "project" / "data"
    seen = []
    for cwd, relative in ((tmp_path / "project", "studies/s.toml"), (tmp_path, "project/studies/s.toml")):
        monkeypatch.chdir(cwd)
        seen.append(load_study_file(relative).data)
    assert seen[0] == seen[1]
    assert seen[0].expression_path == str(data / "e.csv") and seen[0].model_path == str(data / "m.csv")
    assert seen[0].cache_dir == str(tmp_path / "project" / "cache")
    # A path given on the command line is relative to where the command runs.
    assert load_study_file("project/studies/s.toml", {"data.cache_dir": "here"}).data.cache_dir == str(tmp_path / "here")


def test_data_config_holds_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPO_HOME", "runs")
    config = DataConfig(expression_path="e.csv", model_path="~/m.csv")
    assert config.expression_path == str(tmp_path / "e.csv") and config.model_path == str(Path.home() / "m.csv")
    assert config.cache_dir == str(tmp_path / "runs" / "cache")  # the same folder for every process started here
    monkeypatch.chdir("/")
    assert DataConfig.from_mapping(config.to_dict()) == config


def test_data_prepare_with_a_study_runs_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    samples.write_pair(tmp_path / "project" / "data")
    study = _project(tmp_path, {
        "expression_path": "../data/OmicsExpressionProteinCodingGenesTPMLogp1.csv", "model_path": "../data/Model.csv",
        "cache_dir": "../cache", "min_samples_per_tissue": 3, "val_fraction": 0.25, "test_fraction": 0.25,
    })
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["data", "prepare", "--study", str(Path("..") / study.relative_to(tmp_path))]) == 0
    assert f"cache: {tmp_path / 'project' / 'cache' / 'prepared'}" in capsys.readouterr().out
    assert not list((tmp_path / "elsewhere").iterdir())


def test_a_hand_written_config_is_read_relative_to_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "configs" / "best.toml"
    config.parent.mkdir()
    config.write_text('model = "knn"\n[params]\nn_neighbors = 3\n[data]\nexpression_path = "../data/e.csv"\n'
                      'model_path = "/abs/m.csv"\n')
    monkeypatch.chdir("/")
    data = read_config(config)["data"]
    assert data == {"expression_path": str(tmp_path / "data" / "e.csv"), "model_path": "/abs/m.csv"}


@pytest.mark.slow
def test_run_export_and_retrain_from_three_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    """`hpo run` in one folder, `hpo export` in another, `hpo train --config` in a third: the same files."""
    expression, model = generate_files(spec_for("tiny"), tmp_path / "project" / "data")
    study = _project(tmp_path, {"expression_path": f"../data/{expression.name}", "model_path": f"../data/{model.name}",
                                "cache_dir": "../cache"})
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    for name in ("run-here", "export-here", "train-here"):
        (tmp_path / name).mkdir()

    monkeypatch.chdir(tmp_path / "run-here")
    assert main(["run", "../project/studies/s.toml", "--storage", url, "--quiet"]) == 0
    monkeypatch.chdir(tmp_path / "export-here")
    assert main(["export", "paths", "--storage", url, "--out", "best.toml"]) == 0
    exported = read_config(tmp_path / "export-here" / "best.toml")
    assert exported["data"]["expression_path"] == str(expression)
    assert exported["data"]["model_path"] == str(model)
    assert exported["source"]["study_file"] == str(study)
    monkeypatch.chdir(tmp_path / "train-here")
    capsys.readouterr()
    assert main(["train", "--config", "../export-here/best.toml", "--out", "final"]) == 0
    printed = capsys.readouterr().out
    assert "differs from the study's" not in printed  # same data: the fingerprint matches
    record = json.loads((tmp_path / "train-here" / "final" / "metrics.json").read_text())
    assert 0.0 <= record["metrics"]["test_balanced_accuracy"] <= 1.0
    assert [p.name for p in (tmp_path / "project" / "cache" / "prepared").iterdir() if not p.name.startswith(".")]
    assert not (tmp_path / "run-here" / "cache").exists() and not (tmp_path / "project" / "studies" / "cache").exists()
