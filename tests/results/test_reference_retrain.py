"""Export and retrain with the reference trial: the [reference] table, the gain line, both retrained and recorded."""

from __future__ import annotations

import json

import optuna
import pytest

from hpo.cli import main
from hpo.results import FINAL_MODEL_ATTR, export_trial, read_config, reference_gain_text, retrain_params, write_config
from hpo.study import load_study_file
from models import build_model
from tests.run.test_workers import sqlite_url
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)


def test_export_carries_the_reference_and_states_the_gain(finished_study):
    url, name = finished_study
    study = optuna.load_study(study_name=name, storage=url)
    reference = study.trials[0]
    assert reference.user_attrs["reference"] is True
    exported = next(t.number for t in study.trials if t.number != 0 and t.state.name == "COMPLETE")
    config = export_trial(study, exported)
    table = config["reference"]
    assert table["trial"] == 0 and table["state"] == "complete" and table["value"] == reference.value
    assert table["params"]["lr"] == pytest.approx(3e-3) and table["params"]["max_epochs"] == 4
    gain = study.trials[exported].value - reference.value
    assert table["gain"] == pytest.approx(gain)  # recorded in the file too
    assert reference_gain_text(config) == (
        f"{'+' if gain >= 0 else '-'}{abs(gain):.4f} val_balanced_accuracy over the reference "
        f"(trial 0, the defaults: {reference.value:.4f})")
    assert reference_gain_text(export_trial(study, 0)).startswith("trial 0 is the reference (the defaults)")
    assert reference_gain_text({"source": {}}) == "no reference trial in this study: no gain to state"


@pytest.mark.slow
def test_hpo_train_config_retrains_both_and_records_the_reference_metrics(
    finished_study, tmp_path, tiny_data_config, capsys
):
    url, name = finished_study
    best = tmp_path / "best.toml"
    study = optuna.load_study(study_name=name, storage=url)
    tuned = next(t.number for t in study.trials if t.number != 0 and t.state.name == "COMPLETE")
    assert main(["export", name, "--storage", url, "--trial", str(tuned), "--out", str(best)]) == 0
    assert "over the reference (trial 0, the defaults" in capsys.readouterr().out
    config = read_config(best)
    config["data"]["cache_dir"] = tiny_data_config.cache_dir
    write_config(config, best)
    out = tmp_path / "final"
    assert main(["train", "--config", str(best), "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert json.loads((out / "reference" / "metrics.json").read_text())["params"]["lr"] == pytest.approx(3e-3)
    assert "defaults" in printed and "test_balanced_accuracy" in printed
    assert f"final model: recorded in study {name!r}" in printed
    record = optuna.load_study(study_name=name, storage=url).user_attrs[FINAL_MODEL_ATTR]
    assert record["trial"] == tuned and set(record["reference_metrics"]) >= {"test_accuracy", "test_balanced_accuracy"}
    assert main(["show", name, "--storage", url]) == 0
    shown = capsys.readouterr().out
    assert "the defaults: test_accuracy" in shown  # hpo show's test line names both

    assert main(["train", "--config", str(best), "--out", str(tmp_path / "alone"), "--threads", "1",
                 "--no-reference"]) == 0
    assert not (tmp_path / "alone" / "reference").exists()


def test_the_retrain_keeps_the_trials_learning_rate_at_every_epoch(tiny_dataset):
    params = {"max_epochs": 12, "early_stopping_patience": 0, "lr": 0.01, "scheduler": "cosine",
              "hidden_dim": 32, "latent_dim": 16}
    trial = build_model("classifier", params, device="cpu").fit(tiny_dataset)
    retrained_params = retrain_params(trial.params, {"retrain_epochs": 6}, "train+val")
    assert retrained_params["stop_epoch"] == 6 and retrained_params["max_epochs"] == 12
    retrained = build_model("classifier", retrained_params, device="cpu").fit(tiny_dataset, train_split="train+val")
    assert len(retrained.history_) == 6
    trial_lr = [row["lr"] for row in trial.history_[:6]]
    assert [row["lr"] for row in retrained.history_] == pytest.approx(trial_lr, rel=1e-12)
    assert trial_lr[-1] > 0.5 * params["lr"]  # halfway through the trial's schedule, not squeezed to its end


@pytest.mark.slow
def test_the_dashboard_note_and_the_report_state_the_gain_over_the_reference(finished_study, tmp_path):
    from optuna_dashboard import get_note

    url, name = finished_study
    study = optuna.load_study(study_name=name, storage=url)
    expected = ("over the reference (trial 0, the defaults", "the reference trial (the defaults) won")
    assert any(text in get_note(study) for text in expected)  # the workers wrote the study note
    assert main(["report", name, "--storage", url, "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert any(text in page for text in expected)


def test_a_cv_logistic_regression_retrains_with_one_fit_and_the_trials_threads(tmp_path, tiny_dataset, tiny_data_config):
    import tomli_w

    from hpo.results import retrain
    from hpo.run import build_objective
    from hpo.run._setup import open_study

    content = {
        "name": "lr", "model": "logistic_regression", "metric": "val_balanced_accuracy", "direction": "maximize",
        "n_trials": 2, "device": "cpu", "data": {"preset": "tiny", "cache_dir": str(tiny_data_config.cache_dir)},
        "fixed": {"fidelity": "folds", "fidelity_steps": 3, "max_iter": 200},
        "space": {"C": {"type": "float", "low": 1.0, "high": 10.0, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"},
    }
    path = tmp_path / "lr.toml"
    path.write_text(tomli_w.dumps(content))
    spec = load_study_file(path)
    study = open_study(spec, optuna.storages.RDBStorage(sqlite_url(tmp_path)), data_fingerprint=tiny_dataset.fingerprint)
    study.optimize(build_objective(spec, tiny_dataset, num_threads=1), n_trials=2)
    config = export_trial(study, 1)
    assert config["reference"]["params"]["C"] == 1.0  # the default 0.1, clipped into [1, 10]
    result = retrain(config, tmp_path / "final", cache_dir=tiny_data_config.cache_dir)
    for folder in (tmp_path / "final", tmp_path / "final" / "reference"):
        record = json.loads((folder / "metrics.json").read_text())
        assert record["n_steps"] == 1 and record["params"]["fidelity"] == "none"  # no throw-away CV fits
        assert record["threads"] == 1  # the trial's thread count bounds BLAS
    assert result.reference is not None and "test_balanced_accuracy" in result.reference.metrics
