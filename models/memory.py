"""Training-memory estimates, available before any training.

The network is built on PyTorch's ``meta`` device (shapes only, no storage), so an
estimate for an 18,000-gene model costs milliseconds and no memory. A study can
skip a configuration whose ``total_bytes`` exceeds the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models.networks import count_parameters
from models.registry import get_spec, resolve_model_params, torch_model_class

FP32_BYTES = 4
BF16_BYTES = 2


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed to train one model at its batch size (activations kept for backward)."""

    parameters: int
    weights_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    checkpoint_bytes: int
    """The best epoch's weights, kept on the device while early stopping is on."""
    activation_bytes: int
    data_bytes: int
    batch_size: int
    total_bytes: int

    @classmethod
    def of(cls, **parts: int) -> "MemoryEstimate":
        total = sum(parts[k] for k in (
            "weights_bytes", "gradient_bytes", "optimizer_bytes", "checkpoint_bytes", "activation_bytes", "data_bytes"
        ))
        return cls(**parts, total_bytes=total)


def activation_elements(network: nn.Module, n_features: int, batch_size: int) -> int:
    """Elements of every leaf module's output for one batch (what backward keeps), measured on ``meta``."""
    total = 0

    def count(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel()

    hooks = [m.register_forward_hook(count) for m in network.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            network.eval()(torch.empty(batch_size, n_features, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return total + batch_size * n_features


def estimate_memory(
    name: str, params: Mapping[str, Any] | None, n_features: int, n_classes: int, *, n_samples: int = 0
) -> MemoryEstimate:
    """Estimate training memory of model ``name`` with ``params`` (defaults fill the rest).

    ``n_samples``: rows moved to the device (training + validation), 0 to leave the data out.
    Models on embeddings are estimated by their autoencoder; other scikit-learn models
    only by a float64 copy of the data.
    """
    spec = get_spec(name)
    resolved = resolve_model_params(name, params)
    prefix = ""
    if spec.family == "sklearn":
        if not name.endswith("_on_embeddings"):
            zero = dict(
                parameters=0, weights_bytes=0, gradient_bytes=0, optimizer_bytes=0, checkpoint_bytes=0,
                activation_bytes=0,
            )
            return MemoryEstimate.of(**zero, data_bytes=n_samples * n_features * 8, batch_size=0)
        name, prefix = "autoencoder", "ae_"
        resolved = {key[len(prefix) :]: value for key, value in resolved.items() if key.startswith(prefix)}
    model_class = torch_model_class(name)
    with torch.device("meta"):
        network = model_class.build_network(resolved, n_features, n_classes)
    n_parameters = count_parameters(network)
    trainable = count_parameters(network, trainable_only=True)
    batch_size = int(resolved["batch_size"])
    activation_bytes_per = BF16_BYTES if resolved["precision"] == "bf16" else FP32_BYTES
    optimizer_states = 2 if resolved["optimizer"] == "adamw" else (1 if resolved["momentum"] > 0 else 0)
    return MemoryEstimate.of(
        parameters=n_parameters,
        weights_bytes=n_parameters * FP32_BYTES,
        gradient_bytes=trainable * FP32_BYTES,
        optimizer_bytes=optimizer_states * trainable * FP32_BYTES,
        checkpoint_bytes=n_parameters * FP32_BYTES if resolved["early_stopping_patience"] else 0,
        activation_bytes=activation_elements(network, n_features, batch_size) * activation_bytes_per,
        data_bytes=n_samples * n_features * FP32_BYTES,
        batch_size=batch_size,
    )
