"""Resolve a device string (``auto|cpu|cuda|cuda:N``) once, and free accelerator memory."""

from __future__ import annotations

import gc
import re

import torch

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The :class:`torch.device` for ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str) or not _DEVICE_PATTERN.match(device):
        raise ValueError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asked for, but CUDA is not available on this machine")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    return torch.device(device)


def release_memory(device: torch.device) -> None:
    """Collect garbage and return cached accelerator memory to the driver."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
