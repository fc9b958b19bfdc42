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
