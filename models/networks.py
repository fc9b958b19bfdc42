"""PyTorch modules: MLP encoder, autoencoder, MLP classifier and 1-D convolutional classifier.

Pure architecture: no training, no data. Every size comes from explicit arguments
so that the same builder serves training, loading and memory estimation (on the
``meta`` device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters (``sum(p.numel())``), optionally only those that train."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def layer_sizes(n_layers: int, hidden_dim: int, width_decay: float, hidden_sizes: Sequence[int] = ()) -> list[int]:
    """Hidden layer widths: ``hidden_sizes`` when given, else ``hidden_dim * width_decay**i`` for ``n_layers`` layers."""
    if hidden_sizes:
        return [int(size) for size in hidden_sizes]
    if n_layers < 0 or hidden_dim < 1 or width_decay <= 0:
        raise ValueError(
            f"need n_layers >= 0, hidden_dim >= 1, width_decay > 0; got {n_layers}, {hidden_dim}, {width_decay}"
        )
    return [max(1, round(hidden_dim * width_decay**i)) for i in range(n_layers)]


def dense_block(in_dim: int, out_dim: int, *, activation: str, batch_norm: bool, dropout: float) -> nn.Sequential:
    """Linear -> (BatchNorm1d) -> activation -> (Dropout)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_dim))
    layers.append(ACTIVATIONS[activation]())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def mlp(in_dim: int, sizes: Sequence[int], *, activation: str, batch_norm: bool, dropout: float) -> nn.Sequential:
    blocks = []
    for size in sizes:
        blocks.append(dense_block(in_dim, size, activation=activation, batch_norm=batch_norm, dropout=dropout))
        in_dim = size
    return nn.Sequential(*blocks)


class Encoder(nn.Module):
    """Input genes -> hidden blocks -> linear latent code."""

    def __init__(
        self,
        n_features: int,
        hidden_sizes: Sequence[int],
        latent_dim: int,
        *,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.body = mlp(n_features, hidden_sizes, activation=activation, batch_norm=batch_norm, dropout=dropout)
        self.latent = nn.Linear(hidden_sizes[-1] if hidden_sizes else n_features, latent_dim)

    @property
    def first_layer(self) -> nn.Linear:
        return self.body[0][0] if len(self.body) else self.latent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent(self.body(x))


class AutoencoderNet(nn.Module):
    """Encoder -> latent -> mirrored decoder back to the genes."""

    def __init__(
        self,
        n_features: int,
        hidden_sizes: Sequence[int],
        latent_dim: int,
        *,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        options = dict(activation=activation, batch_norm=batch_norm, dropout=dropout)
        self.encoder = Encoder(n_features, hidden_sizes, latent_dim, **options)
        decoder_sizes = list(reversed(hidden_sizes))
        self.decoder = nn.Sequential(
            mlp(latent_dim, decoder_sizes, **options),
            nn.Linear(decoder_sizes[-1] if decoder_sizes else latent_dim, n_features),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ClassifierNet(nn.Module):
    """Encoder (as in the autoencoder) -> activation -> MLP head -> tissue logits."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden_sizes: Sequence[int],
        latent_dim: int,
        head_sizes: Sequence[int],
        *,
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        options = dict(activation=activation, batch_norm=batch_norm, dropout=dropout)
        self.encoder = Encoder(n_features, hidden_sizes, latent_dim, **options)
        bridge: list[nn.Module] = [nn.BatchNorm1d(latent_dim)] if batch_norm else []
        bridge.append(ACTIVATIONS[activation]())
        if dropout > 0:
            bridge.append(nn.Dropout(dropout))
        self.bridge = nn.Sequential(*bridge)
        self.head = mlp(latent_dim, head_sizes, **options)
        self.output = nn.Linear(head_sizes[-1] if head_sizes else latent_dim, n_classes)
        self.freeze_encoder = False

    @property
    def first_layer(self) -> nn.Module:
        return self.encoder.first_layer

    def set_encoder_frozen(self, frozen: bool) -> None:
        """Freeze (no gradients, BatchNorm statistics fixed) or release the encoder."""
        self.freeze_encoder = frozen
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> "ClassifierNet":
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer: what the output layer sees."""
        return self.head(self.bridge(self.encoder(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))


class ConvClassifierNet(nn.Module):
    """Genes as a 1-D sequence: Conv1d/BatchNorm/activation/MaxPool blocks, adaptive pooling, MLP head."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        conv_layers: int,
        conv_channels: int,
        channel_growth: float,
        kernel_size: int,
        pool_size: int,
        pooled_length: int,
        head_sizes: Sequence[int],
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if conv_layers < 1 or conv_channels < 1 or kernel_size < 1 or pool_size < 1 or pooled_length < 0:
            raise ValueError(
                "conv_layers, conv_channels, kernel_size, pool_size must be >= 1 and pooled_length >= 0; got "
                f"{conv_layers}, {conv_channels}, {kernel_size}, {pool_size}, {pooled_length}"
            )
        blocks: list[nn.Module] = []
        in_channels = 1
        for i in range(conv_layers):
            out_channels = max(1, round(conv_channels * channel_growth**i))
            block: list[nn.Module] = [
                nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
            ]
            if batch_norm:
                block.append(nn.BatchNorm1d(out_channels))
            block.append(ACTIVATIONS[activation]())
            if pool_size > 1:
                block.append(nn.MaxPool1d(pool_size, ceil_mode=True))
            blocks.append(nn.Sequential(*block))
            in_channels = out_channels
        self.conv = nn.Sequential(*blocks)
        # pooled_length 0 keeps every position: gene order is arbitrary, so the head must
        # still see *where* a pattern occurred; > 0 averages down to that many positions.
        length = n_features
        for _ in range(conv_layers):
            length = math.ceil(length / pool_size) if pool_size > 1 else length
        self.pool = nn.AdaptiveAvgPool1d(pooled_length) if pooled_length else nn.Identity()
        flat = in_channels * (pooled_length or length)
        self.head = mlp(flat, head_sizes, activation=activation, batch_norm=batch_norm, dropout=dropout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output = nn.Linear(head_sizes[-1] if head_sizes else flat, n_classes)

    @property
    def first_layer(self) -> nn.Module:
        return self.conv[0][0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.conv(x.unsqueeze(1)))
        return self.head(self.dropout(torch.flatten(pooled, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))
