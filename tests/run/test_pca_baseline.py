"""An autoencoder study records PCA's reconstruction error, and its headline shows it next to the winner."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import tomli_w
from sklearn.decomposition import PCA

from hpo.results import compute_headline
from hpo.run import build_objective
from hpo.run._setup import open_study
from hpo.study import load_study_file


def test_an_autoencoder_study_records_the_pca_baseline_and_the_headline_shows_it(
    tmp_path, tiny_dataset, tiny_data_config, monkeypatch
):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    content = {
        "name": "ae-pca", "model": "autoencoder", "metric": "val_reconstruction_mse", "direction": "minimize",
        "n_trials": 1, "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": str(tiny_data_config.cache_dir)},
        "fixed": {"max_epochs": 2, "hidden_dim": 32, "n_layers": 1},
        "space": {"latent_dim": {"type": "categorical", "choices": [8, 16]}},
        "sampler": {"name": "random", "seed": 0},
    }
    path = tmp_path / "ae.toml"
    path.write_text(tomli_w.dumps(content))
    spec = load_study_file(path)
    study = open_study(spec, optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}"),
                       data_fingerprint=tiny_dataset.fingerprint)
    study.optimize(build_objective(spec, tiny_dataset, num_threads=1), n_trials=1)

    baseline = study.user_attrs["pca_baseline"]
    assert baseline["n_components"] == 16  # the space's largest latent size
    pca = PCA(n_components=16).fit(np.asarray(tiny_dataset.X_train, dtype=np.float64))
    for split in ("val", "test"):
        X = np.asarray(tiny_dataset.split(split)[0], dtype=np.float64)
        expected = np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2)
        assert baseline[f"{split}_reconstruction_mse"] == pytest.approx(expected, rel=1e-6)
    lines = compute_headline(study).lines()
    assert lines[2].startswith("baseline: PCA with 16 components (fitted on the training split): "
                               "val_reconstruction_mse 0.")
    assert "**Baseline:** PCA with 16 components" in compute_headline(study).markdown()
