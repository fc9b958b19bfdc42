"""Tissue classifiers: encoder + MLP head, and the 1-D convolutional variant.

Cross-entropy with optional class weights and label smoothing, optional L1 on the
first layer; the MLP classifier may start from a trained autoencoder's encoder
(``encoder_from`` a saved autoencoder directory, or ``pretrain_epochs`` of
autoencoder training on the training split), frozen or fine-tuned.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from data_pipeline.dataset import PreparedDataset
from models.autoencoder import AutoencoderModel, check_regularisation, encoder_sizes
from models.metrics import classification_metrics
from models.networks import ClassifierNet, ConvClassifierNet
from models.persistence import read_metadata
from models.specs import ENCODER_KEYS, TRAINING_DEFAULTS
from models.torch_model import EVAL_BATCH_SIZE, TorchModel


def balanced_class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``n / (n_classes * count)`` per class, 0 for classes absent from ``y`` (as scikit-learn's 'balanced')."""
    counts = torch.bincount(y, minlength=n_classes).float()
    weights = len(y) / (n_classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


class ClassifierModel(TorchModel):
    """Encoder + MLP head trained with cross-entropy; ``embed`` returns the penultimate layer."""

    name = "classifier"
    has_embedding = True

    class_weights_: torch.Tensor | None = None
    """Per-class loss weights (``class_weight = "balanced"``), from the training rows."""

    @property
    def monitor(self) -> str:
        return self.params["monitor"]

    @property
    def monitor_mode(self) -> str:  # type: ignore[override]
        return "min" if self.params["monitor"] == "val_loss" else "max"

    @classmethod
    def build_network(cls, params: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
        check_regularisation(params)
        return ClassifierNet(
            n_features,
            n_classes,
            encoder_sizes(params),
            params["latent_dim"],
            [params["head_dim"]] * params["head_layers"],
            activation=params["activation"],
            batch_norm=params["batch_norm"],
            dropout=params["dropout"],
        )

    # -- starting from an autoencoder ----------------------------------------------------------
    def _resolve_architecture(self) -> dict[str, Any]:
        architecture = dict(self.params)
        if self.params["encoder_from"]:
            if self.params["pretrain_epochs"]:
                raise ValueError("set either encoder_from or pretrain_epochs, not both")
            meta = read_metadata(Path(self.params["encoder_from"]))
            if meta["name"] != "autoencoder":
                raise ValueError(f"encoder_from={self.params['encoder_from']!r} holds a {meta['name']!r}, not an autoencoder")
            if meta["n_features"] != self.n_features_in_:
                raise ValueError(
                    f"encoder_from autoencoder takes {meta['n_features']} genes, the data set has {self.n_features_in_}"
                )
            architecture.update({key: meta["architecture"][key] for key in ENCODER_KEYS if key != "input_noise"})
        return architecture

    def _pretrained_encoder(self, data: PreparedDataset, train_split: str) -> nn.Module | None:
        if self.params["encoder_from"]:
            return AutoencoderModel.load(self.params["encoder_from"], device="cpu")._network().encoder
        if self.params["pretrain_epochs"] > 0:
            ae_params = {**AutoencoderModel.DEFAULTS, **{k: self.params[k] for k in ENCODER_KEYS}, "init": "random"}
            ae_params.update({k: self.params[k] for k in TRAINING_DEFAULTS}, max_epochs=self.params["pretrain_epochs"],
                             stop_epoch=0)
            autoencoder = AutoencoderModel(ae_params, device=self.device_, seed=self.seed)
            return autoencoder.fit(data, train_split=train_split)._network().encoder
        return None

    def _before_training(self, data: PreparedDataset, train_split: str, y_train: torch.Tensor) -> None:
        network = self._network()
        if isinstance(network, ClassifierNet):
            encoder = self._pretrained_encoder(data, train_split)
            if encoder is not None:
                network.encoder.load_state_dict(encoder.state_dict())
            # without a trained encoder, a frozen one is a fixed random projection
            network.set_encoder_frozen(self.params["freeze_encoder"])
        self.class_weights_ = (
            balanced_class_weights(y_train, self.n_classes_) if self.params["class_weight"] == "balanced" else None
        )

    # -- loss and metrics ---------------------------------------------------------------------
    def _batch_loss(self, X: torch.Tensor, y: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        inputs = X[indices]
        if self.params["input_noise"]:
            inputs = inputs + self.params["input_noise"] * torch.randn_like(inputs)
        logits = self.network_(inputs).float()
        loss = F.cross_entropy(
            logits, y[indices], weight=self.class_weights_, label_smoothing=self.params["label_smoothing"]
        )
        if self.params["l1_penalty"]:
            loss = loss + self.params["l1_penalty"] * self.network_.first_layer.weight.abs().sum()
        return loss

    def _logits(self, X: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.network_(X[s : s + EVAL_BATCH_SIZE]).float() for s in range(0, len(X), EVAL_BATCH_SIZE)])

    def _metrics(self, X: torch.Tensor, y: torch.Tensor, prefix: str) -> dict[str, float]:
        logits = self._logits(X)
        metrics = classification_metrics(y.cpu().numpy(), logits.argmax(1).cpu().numpy(), prefix)
        metrics[f"{prefix}_loss"] = float(F.cross_entropy(logits, y))
        return metrics

    # -- inference ----------------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._infer(lambda batch: torch.softmax(self._network()(batch).float(), dim=1), X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Tissue index for each row."""
        return self._infer(self._network(), X).argmax(axis=1).astype(np.int64)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Penultimate-layer activations (what the output layer sees)."""
        return self._infer(self._network().features, X)


class ConvClassifierModel(ClassifierModel):
    """Genes read as a 1-D sequence through Conv1d/pool blocks, then an MLP head."""

    name = "conv_classifier"

    @classmethod
    def build_network(cls, params: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
        if not 0 <= params["dropout"] < 1:
            raise ValueError(f"dropout={params['dropout']!r} must be in [0, 1)")
        return ConvClassifierNet(
            n_features,
            n_classes,
            conv_layers=params["conv_layers"],
            conv_channels=params["conv_channels"],
            channel_growth=params["channel_growth"],
            kernel_size=params["kernel_size"],
            pool_size=params["pool_size"],
            pooled_length=params["pooled_length"],
            head_sizes=[params["head_dim"]] * params["head_layers"],
            activation=params["activation"],
            batch_norm=params["batch_norm"],
            dropout=params["dropout"],
        )

    def _resolve_architecture(self) -> dict[str, Any]:
        return dict(self.params)

    def _before_training(self, data: PreparedDataset, train_split: str, y_train: torch.Tensor) -> None:
        self.class_weights_ = (
            balanced_class_weights(y_train, self.n_classes_) if self.params["class_weight"] == "balanced" else None
        )
