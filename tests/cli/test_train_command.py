"""``hpo train`` and its reusable core ``train_and_report``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_pipeline import DataConfig, PreparedDataset
from hpo.cli import main
from hpo.results import train_and_report
from hpo.study import parse_assignment
from models import load_model
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=3e-4", ("lr", 3e-4)),
        ("n_layers=2", ("n_layers", 2)),
        ("batch_norm=false", ("batch_norm", False)),
        ("hidden_sizes=[512, 128]", ("hidden_sizes", [512, 128])),
        ("activation=gelu", ("activation", "gelu")),
        ('kernel="rbf"', ("kernel", "rbf")),
    ],
)
def test_set_values_are_read_as_literals(text: str, expected: tuple) -> None:
    assert parse_assignment(text) == expected


def test_set_without_equals_is_an_error() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("lr")


def test_hpo_train_writes_metrics_reports_and_a_loadable_model(
    tiny_data_config: DataConfig, tiny_dataset: PreparedDataset, tmp_path, capsys
) -> None:
    out = tmp_path / "run"
    code = main([
        "train", "--model", "classifier", "--set", "max_epochs=4", "--set", "hidden_sizes=[64]",
        "--out", str(out), "--device", "cpu", "--preset", "tiny", "--cache-dir", tiny_data_config.cache_dir,
        "--eval-split", "val", "--eval-split", "test",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "val_balanced_accuracy" in printed and "test_accuracy" in printed

    record = json.loads((out / "metrics.json").read_text())
    assert record["model"] == "classifier" and record["params"]["hidden_sizes"] == [64]
    assert record["n_steps"] == 4 and len(record["history"]) == 4
    assert record["data"]["fingerprint"] == tiny_dataset.fingerprint
    assert "torch" in record["versions"]

    report = json.loads((out / "report_test.json").read_text())
    assert np.array(report["confusion_matrix"]).sum() == len(tiny_dataset.y_test)
    assert set(report["per_tissue"]) == set(tiny_dataset.tissues)

    model = load_model(out / "model", device="cpu")
    assert model.evaluate(tiny_dataset, "test")["test_accuracy"] == pytest.approx(record["metrics"]["test_accuracy"])


def test_train_and_report_for_a_baseline_and_the_autoencoder(tiny_dataset: PreparedDataset, tmp_path) -> None:
    metrics = train_and_report("knn", {"n_neighbors": 3}, None, tmp_path / "knn", data=tiny_dataset, device="cpu").metrics
    assert set(metrics) == {"val_accuracy", "val_balanced_accuracy", "val_macro_f1"}
    assert (tmp_path / "knn" / "model" / "estimator.joblib").is_file()
    metrics = train_and_report(
        "autoencoder", {"max_epochs": 2, "latent_dim": 8}, None, tmp_path / "ae", data=tiny_dataset,
        train_split="train+val", eval_splits=("test",), device="cpu",
    ).metrics
    assert set(metrics) == {"test_reconstruction_mse", "test_loss"}
    assert not (tmp_path / "ae" / "report_test.json").exists()  # no per-tissue report for reconstruction


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "svc", "--set", "gamma_typo=1"], "takes no parameter 'gamma_typo'"),
        (["--model", "svc", "--set", "C=high"], "'C'"),
        (["--model", "perceptron"], "unknown model 'perceptron'"),
        ([], "--model"),
    ],
)
def test_bad_arguments_end_in_one_line_before_any_training(tmp_path, capsys, arguments: list, message: str) -> None:
    code = main(["train", *arguments, "--out", str(tmp_path / "x"), "--preset", "tiny",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "cache").exists()  # failed before preparing any data


def test_list_shows_every_model_and_its_defaults(capsys) -> None:
    assert main(["train", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "svc_on_embeddings" in printed and "latent_dim=512" in printed
