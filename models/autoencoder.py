"""MLP autoencoder: genes -> latent code (512 by default) -> genes, MSE reconstruction loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from data_pipeline.dataset import PreparedDataset
from models.networks import AutoencoderNet, layer_sizes
from models.torch_model import EVAL_BATCH_SIZE, TorchModel


def encoder_sizes(params: Mapping[str, Any]) -> list[int]:
    return layer_sizes(params["n_layers"], params["hidden_dim"], params["width_decay"], params["hidden_sizes"])


def check_regularisation(params: Mapping[str, Any]) -> None:
    if not 0 <= params["dropout"] < 1:
        raise ValueError(f"dropout={params['dropout']!r} must be in [0, 1)")
    if params["input_noise"] < 0:
        raise ValueError(f"input_noise={params['input_noise']!r} must be >= 0")
    if params["latent_dim"] < 1:
        raise ValueError(f"latent_dim={params['latent_dim']!r} must be >= 1")


class AutoencoderModel(TorchModel):
    """Denoising-capable MLP autoencoder; ``embed`` returns the latent code."""

    name = "autoencoder"
    has_embedding = True

    @classmethod
    def build_network(cls, params: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
        check_regularisation(params)
        return AutoencoderNet(
            n_features,
            encoder_sizes(params),
            params["latent_dim"],
            activation=params["activation"],
            batch_norm=params["batch_norm"],
            dropout=params["dropout"],
        )

    def _before_training(self, data: PreparedDataset, train_split: str, y_train: torch.Tensor) -> None:
        """``init = "pca"``: start from the principal components of the rows it trains on (a CV fold's own rows)."""
        if self.params.get("init", "random") == "pca":
            pca_initialise(self._network(), np.asarray(data.split(train_split)[0]))

    def _batch_loss(self, X: torch.Tensor, y: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        clean = X[indices]
        noisy = clean + self.params["input_noise"] * torch.randn_like(clean) if self.params["input_noise"] else clean
        return F.mse_loss(self.network_(noisy).float(), clean)

    def _metrics(self, X: torch.Tensor, y: torch.Tensor, prefix: str) -> dict[str, float]:
        squared = torch.zeros((), device=X.device)
        for start in range(0, len(X), EVAL_BATCH_SIZE):
            batch = X[start : start + EVAL_BATCH_SIZE]
            squared += F.mse_loss(self.network_(batch).float(), batch, reduction="sum")
        mse = float(squared) / max(X.numel(), 1)
        return {f"{prefix}_reconstruction_mse": mse, f"{prefix}_loss": mse}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Reconstructions of the rows of ``X``."""
        return self._infer(self._network(), X)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Latent codes (``n_rows x latent_dim``)."""
        return self._infer(self._network().encode, X)

    def embed_split(self, data: PreparedDataset, split: str) -> np.ndarray:
        """Latent codes of every row of ``split`` (``train``, ``val``, ``test`` or ``train+val``)."""
        return self.embed(data.split(split)[0])


def pca_initialise(network: AutoencoderNet, X_train: np.ndarray) -> int:
    """Initialise ``network`` from the principal components of ``X_train`` (the rows it will train on).

    The first encoder layer's first ``k`` units become the top ``k`` components (centred by the rows' mean),
    ``k = min(units, rows - 1, genes)``. Without hidden layers (``n_layers = 0``) the decoder's output layer
    becomes their transpose plus the mean, so the network reconstructs exactly as scikit-learn's PCA with
    ``k`` components; latent units beyond ``k`` start (and stay) at zero. With hidden layers the output layer
    starts at zero weights and the mean as bias: no random directions outside the training rows' span, which
    gradient descent only ever shrinks and which add error on new rows. Returns ``k``.
    """
    from sklearn.decomposition import PCA

    X = np.asarray(X_train, dtype=np.float64)
    first = network.encoder.first_layer
    output = network.decoder[-1]
    k = max(0, min(first.out_features, X.shape[0] - 1, X.shape[1]))
    mean = X.mean(axis=0)
    components = PCA(n_components=k, svd_solver="full").fit(X).components_ if k else np.zeros((0, X.shape[1]))
    linear = first is network.encoder.latent
    as_tensor = lambda a, like: torch.as_tensor(a, dtype=like.dtype, device=like.device)
    with torch.no_grad():
        if linear:
            first.weight.zero_()
            first.bias.zero_()
        first.weight[:k] = as_tensor(components, first.weight)
        first.bias[:k] = as_tensor(-components @ mean, first.bias)
        output.weight.zero_()
        if linear:
            output.weight[:, :k] = as_tensor(components.T, output.weight)
        output.bias.copy_(as_tensor(mean, output.bias))
    return k


def pca_baseline(data: PreparedDataset, n_components: int) -> dict[str, float]:
    """PCA's reconstruction MSE, the linear baseline of an autoencoder with a ``n_components``-dim latent code.

    Fitted on the training split (capped at its rows and genes), scored on the validation and test splits in
    the same units as an autoencoder's ``*_reconstruction_mse`` (mean squared error over every value).
    """
    from sklearn.decomposition import PCA

    X_train = np.asarray(data.X_train, dtype=np.float64)
    components = max(1, min(int(n_components), X_train.shape[0] - 1, X_train.shape[1]))
    pca = PCA(n_components=components, svd_solver="full").fit(X_train)
    result: dict[str, float] = {"n_components": float(components)}
    for split in ("val", "test"):
        X = np.asarray(data.split(split)[0], dtype=np.float64)
        if len(X):
            result[f"{split}_reconstruction_mse"] = float(np.mean((pca.inverse_transform(pca.transform(X)) - X) ** 2))
    return result
