"""Autoencoder ``init = "pca"``: a linear autoencoder starts at PCA's reconstruction, fitted on the rows it trains on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold

from data_pipeline import PreparedDataset
from models import build_model
from models.autoencoder import AutoencoderModel, pca_initialise
from models.fidelity import FOLD_SEED
from models.registry import resolve_model_params
from models.torch_folds import fold_features
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)

LINEAR = {"init": "pca", "n_layers": 0, "latent_dim": 8, "fidelity": "none"}


def reconstruct(network: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    network.eval()
    with torch.no_grad():
        return network(torch.tensor(np.asarray(X), dtype=torch.float32)).numpy()


def test_linear_network_at_step_zero_reconstructs_like_sklearn_pca(tiny_dataset: PreparedDataset) -> None:
    X = np.asarray(tiny_dataset.X_train)
    network = AutoencoderModel.build_network(resolve_model_params("autoencoder", LINEAR), X.shape[1], tiny_dataset.n_classes)
    random_start = reconstruct(network, np.asarray(tiny_dataset.X_test))
    assert pca_initialise(network, X) == 8
    pca = PCA(n_components=8, svd_solver="full").fit(X.astype(np.float64))
    X_test = np.asarray(tiny_dataset.X_test)
    expected = pca.inverse_transform(pca.transform(X_test))
    assert reconstruct(network, X_test) == pytest.approx(expected, abs=1e-4)
    assert not np.allclose(random_start, expected, atol=1e-2)
    # the latent code is PCA's scores (up to float32)
    with torch.no_grad():
        codes = network.encode(torch.tensor(X_test)).numpy()
    assert codes == pytest.approx(pca.transform(X_test), abs=1e-4)


def test_latent_wider_than_the_rows_keeps_only_their_components(tiny_dataset: PreparedDataset) -> None:
    X = np.asarray(tiny_dataset.X_train)[:6]
    network = AutoencoderModel.build_network(resolve_model_params("autoencoder", {**LINEAR, "latent_dim": 32}), X.shape[1], 2)
    assert pca_initialise(network, X) == 5  # rows - 1
    pca = PCA(n_components=5, svd_solver="full").fit(X.astype(np.float64))
    X_test = np.asarray(tiny_dataset.X_test)
    assert reconstruct(network, X_test) == pytest.approx(pca.inverse_transform(pca.transform(X_test)), abs=1e-4)
    assert network.encoder.latent.weight[5:].abs().sum() == 0


def test_training_from_pca_stays_at_pca_while_a_random_start_stays_far_above(tiny_dataset: PreparedDataset) -> None:
    model = build_model("autoencoder", {**LINEAR, "max_epochs": 5, "lr": 1e-3}, device="cpu", seed=0)
    model.fit(tiny_dataset)
    random = build_model("autoencoder", {**LINEAR, "init": "random", "max_epochs": 5, "lr": 1e-3}, device="cpu", seed=0)
    random.fit(tiny_dataset)
    X = np.asarray(tiny_dataset.X_train, dtype=np.float64)
    pca = PCA(n_components=8, svd_solver="full").fit(X)
    pca_mse = float(np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2))
    assert model.evaluate(tiny_dataset, "train")["train_reconstruction_mse"] <= pca_mse * 1.01  # Adam's jitter
    assert random.evaluate(tiny_dataset, "train")["train_reconstruction_mse"] > pca_mse * 1.1
    assert model.embed(np.asarray(tiny_dataset.X_test)).shape == (len(tiny_dataset.y_test), 8)


def test_hidden_layers_start_with_components_and_a_zero_output_layer(tiny_dataset: PreparedDataset) -> None:
    X = np.asarray(tiny_dataset.X_train)
    params = resolve_model_params("autoencoder", {**LINEAR, "n_layers": 1, "hidden_dim": 16})
    network = AutoencoderModel.build_network(params, X.shape[1], 2)
    pca_initialise(network, X)
    pca = PCA(n_components=8, svd_solver="full").fit(X.astype(np.float64))
    assert network.encoder.first_layer.weight[:8].detach().numpy() == pytest.approx(pca.components_, abs=1e-5)
    assert network.decoder[-1].weight.abs().sum() == 0
    assert network.decoder[-1].bias.detach().numpy() == pytest.approx(X.mean(axis=0), abs=1e-5)


def test_each_cv_fold_fits_its_components_on_its_own_training_rows(
    tiny_dataset: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.ndarray] = []
    real = pca_initialise
    monkeypatch.setattr("models.autoencoder.pca_initialise", lambda net, X: seen.append(np.array(X)) or real(net, X))
    model = build_model("autoencoder", {**LINEAR, "fidelity": "folds", "fidelity_steps": 3, "max_epochs": 2},
                        device="cpu", seed=0)
    model.fit(tiny_dataset)
    assert len(seen) == 3 + 1  # every fold, then the model on the whole training split
    y = np.asarray(tiny_dataset.y_train)
    X_raw = np.asarray(tiny_dataset.X_train_unfiltered)
    folds = StratifiedKFold(3, shuffle=True, random_state=FOLD_SEED).split(X_raw, y)
    for index, ((fit_rows, held_rows), (features, _, _)) in enumerate(
        zip(folds, fold_features(X_raw, y, 3, tiny_dataset.settings))
    ):
        assert seen[index] == pytest.approx(features.transform(X_raw[fit_rows]).astype(np.float32))
        assert len(seen[index]) == len(fit_rows) < len(y)
    assert seen[-1] == pytest.approx(np.asarray(tiny_dataset.X_train))
