"""Export -> retrain round trip, the look-around commands, and Optuna's CLI reading our studies."""

from __future__ import annotations

import json

import optuna
import pytest

from hpo.cli import main
from hpo.results import export_trial, read_config, retrain, write_config
from hpo.results._export import ExportError
from models.training import MIN_RETRAIN_EPOCHS
from tests.run.test_workers import sqlite_url


def test_export_holds_everything_to_retrain_and_to_trust_it(finished_study, tiny_dataset):
    url, name = finished_study
    study = optuna.load_study(study_name=name, storage=url)
    config = export_trial(study, storage_url=url)
    best = study.best_trial
    assert config["model"] == "classifier" and config["source"]["trial"] == best.number
    assert config["source"]["value"] == best.value and config["metrics"]["val_balanced_accuracy"] == best.value
    assert config["params"]["lr"] == best.params["lr"]  # tuned
    assert config["params"]["max_epochs"] == 4  # fixed
    assert config["params"]["early_stopping_patience"] == 8  # model default, written out too
    assert config["source"]["data_fingerprint"] == tiny_dataset.fingerprint
    assert config["source"]["sampler"]["name"] == "random" and config["versions"]["optuna"] == optuna.__version__
    assert config["data"]["preset"] == "tiny" and "cache_dir" not in config["data"]


@pytest.mark.parametrize("suffix", [".toml", ".json", ".yaml"])
def test_export_formats_read_back_identically(finished_study, tmp_path, suffix):
    url, name = finished_study
    config = export_trial(optuna.load_study(study_name=name, storage=url))
    back = read_config(write_config(config, tmp_path / f"best{suffix}"))
    assert back["params"] == config["params"] and back["source"]["value"] == config["source"]["value"]


def test_retrain_on_the_trials_split_reproduces_its_metric(finished_study, tmp_path, tiny_data_config):
    url, name = finished_study
    config = read_config(write_config(export_trial(optuna.load_study(study_name=name, storage=url)), tmp_path / "b.toml"))
    result = retrain(
        config, tmp_path / "again", train_split="train", eval_splits=("val",),
        num_threads=config["source"]["threads"], cache_dir=tiny_data_config.cache_dir,
    )
    metric, trial_value, value = result.reproduced
    assert metric == "val_balanced_accuracy"
    assert value == pytest.approx(trial_value, abs=1e-9)  # same data, seed and threads: identical
    assert result.fingerprint_matches


def test_hpo_train_config_writes_the_final_model_and_test_metrics(finished_study, tmp_path, tiny_data_config, capsys):
    url, name = finished_study
    best = tmp_path / "best.toml"
    assert main(["export", name, "--storage", url, "--out", str(best)]) == 0
    # the tiny data set's 27 validation samples are too few to rank trials: export says so in one line
    warning = (
        "warning: validation split has 27 samples over 6 tissues: ties are likely; "
        'consider fidelity = "folds" or a larger val_fraction'
    )
    assert warning in capsys.readouterr().out.splitlines()
    assert read_config(best)["source"]["val_split_warning"] == warning.removeprefix("warning: ")
    out = tmp_path / "final"
    # the cache of the session's tiny data, as a user on another machine would point it
    text = best.read_text().replace("[data]\n", f'[data]\ncache_dir = "{tiny_data_config.cache_dir}"\n')
    best.write_text(text)
    assert main(["train", "--config", str(best), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "on train+val, evaluating test" in printed
    assert "validation split has 27 samples over 6 tissues" in printed  # retraining repeats the warning
    record = json.loads((out / "metrics.json").read_text())
    assert record["train_split"] == "train+val" and 0.0 <= record["metrics"]["test_balanced_accuracy"] <= 1.0
    report = json.loads((out / "report_test.json").read_text())
    assert "confusion_matrix" in json.dumps(report)
    assert (out / "model").is_dir() and (out / "config.toml").is_file()


def test_the_retrain_hint_of_an_export_with_any_extension_runs(finished_study, tmp_path, capsys):
    import shlex

    url, name = finished_study
    out = tmp_path / "best config.txt"  # neither the extension nor the path says how to read it
    assert main(["export", name, "--storage", url, "--format", "yaml", "--out", str(out)]) == 0
    hint = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("retrain: "))
    command = shlex.split(hint.removeprefix("retrain: "))
    assert command[:3] == ["hpo", "train", "--config"]
    assert main([*command[1:], "--out", str(tmp_path / "final")]) == 0
    assert "retraining classifier" in capsys.readouterr().out
    assert (tmp_path / "final" / "metrics.json").is_file()


def test_unknown_extensions_are_sniffed_and_garbage_is_one_line(finished_study, tmp_path):
    url, name = finished_study
    config = export_trial(optuna.load_study(study_name=name, storage=url))
    for fmt in ("toml", "json", "yaml"):
        back = read_config(write_config(config, tmp_path / f"{fmt}.cfg", fmt))
        assert back["params"] == config["params"], fmt
    (tmp_path / "garbage.cfg").write_text("[model\n: : {")
    with pytest.raises(ExportError, match="not valid TOML, JSON or YAML"):
        read_config(tmp_path / "garbage.cfg")


def test_studies_and_show_list_what_the_storage_holds(finished_study, capsys):
    url, name = finished_study
    study = optuna.load_study(study_name=name, storage=url)
    assert main(["studies", "--storage", url]) == 0
    listing = capsys.readouterr().out
    row = next(line for line in listing.splitlines() if line.startswith(name))
    assert row.split()[1:5] == ["classifier", "val_balanced_accuracy", "max", "3"]
    assert f"{study.best_value:.4f}" in row
    assert main(["show", name, "--storage", url, "-k", "2"]) == 0
    shown = capsys.readouterr().out
    assert f"best trial {study.best_trial.number}: val_balanced_accuracy = {study.best_value:.4f}" in shown
    assert "top 2:" in shown


def test_export_errors_are_one_line(tmp_path, capsys):
    url = sqlite_url(tmp_path)
    optuna.create_study(study_name="empty", storage=url).set_user_attr("model", "classifier")
    assert main(["export", "empty", "--storage", url, "--out", str(tmp_path / "x.toml")]) == 2
    assert "has no complete trial to export yet" in capsys.readouterr().err
    assert main(["show", "absent", "--storage", url]) == 2
    assert "no study 'absent'" in capsys.readouterr().err
    with pytest.raises(ExportError, match="missing params"):
        (tmp_path / "bad.toml").write_text('model = "svc"\n[data]\n')
        read_config(tmp_path / "bad.toml")


def test_retrain_on_train_and_val_runs_the_trials_retrain_epochs(finished_study, tmp_path, tiny_data_config):
    url, name = finished_study
    study = optuna.load_study(study_name=name, storage=url)
    config = export_trial(study)
    source = config["source"]
    assert 1 <= source["best_epoch"] <= config["params"]["max_epochs"] == 4  # recorded by the objective
    # the median of the tied best epochs, at least MIN_RETRAIN_EPOCHS: here the 4-epoch budget caps it
    assert source["retrain_epochs"] == study.best_trial.user_attrs["retrain_epochs"] == 4
    config["params"]["max_epochs"] = 9

    def steps(name: str, **options) -> int:
        out = tmp_path / name
        retrain(config, out, train_split="train+val", cache_dir=tiny_data_config.cache_dir, num_threads=1, **options)
        return json.loads((out / "metrics.json").read_text())["n_steps"]

    source["retrain_epochs"] = 7  # pin it, whatever the tiny study recorded
    assert steps("recorded") == 7  # no validation split left for early stopping: the trial's retrain epochs
    assert steps("budget", epochs_from_trial=False) == 9  # the whole max_epochs budget
    source["retrain_epochs"], source["best_epoch"] = 0, 2  # an export from before retrain_epochs existed
    assert steps("older-export") == MIN_RETRAIN_EPOCHS == 5  # its best epoch, raised to the floor


def test_hpo_train_config_set_max_epochs_beats_the_trials_best_epoch(finished_study, tmp_path, tiny_data_config):
    url, name = finished_study
    config = export_trial(optuna.load_study(study_name=name, storage=url))
    config["data"]["cache_dir"] = tiny_data_config.cache_dir
    config["source"]["best_epoch"] = 1
    best = write_config(config, tmp_path / "best.toml")
    out = tmp_path / "final"
    assert main(["train", "--config", str(best), "--set", "max_epochs=3", "--out", str(out), "--threads", "1"]) == 0
    assert json.loads((out / "metrics.json").read_text())["n_steps"] == 3


def test_a_config_exported_before_the_restructuring_still_retrains(tmp_path, tiny_data_config, capsys):
    """tests/results/data/export-before-issue-18.toml was written by `hpo export` before hpo/ became subpackages."""
    from pathlib import Path

    old = Path(__file__).parent / "data" / "export-before-issue-18.toml"
    config = read_config(old)
    assert config["model"] == "logistic_regression" and config["source"]["study"] == "old-export"
    result = retrain(config, tmp_path / "again", train_split="train", eval_splits=("val",),
                     num_threads=1, cache_dir=tiny_data_config.cache_dir)
    assert result.fingerprint_matches  # the same tiny data, prepared by today's pipeline
    metric, trial_value, value = result.reproduced
    assert metric == "val_balanced_accuracy" and value == pytest.approx(trial_value, abs=1e-9)
    assert main(["train", "--config", str(old), "--cache-dir", tiny_data_config.cache_dir,
                 "--out", str(tmp_path / "final")]) == 0
    printed = capsys.readouterr().out
    assert "test_balanced_accuracy" in printed
    # its study's storage file is gone: nothing recorded, and no empty database made in its place
    assert "final model: not recorded in study 'old-export': no storage file /tmp/old/optuna.db" in printed
    assert not Path("/tmp/old/optuna.db").exists()
