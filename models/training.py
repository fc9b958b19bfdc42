"""One training loop for every PyTorch model.

Data lives on the device as tensors; mini-batches are drawn by index. The loop
owns the optimiser, learning-rate schedule, gradient clipping, optional bf16
autocast, the NaN/inf guard, early stopping on a validation metric and the
per-epoch callback (which may raise; the exception propagates unchanged).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.base import StepCallback
from models.errors import TrainingDiverged
from models.specs import TrainingSettings

logger = logging.getLogger(__name__)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked, nothing otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(parameters: list[nn.Parameter], settings: TrainingSettings) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum), fused where PyTorch supports it (an order faster on CPU)."""
    fused = {"fused": True} if all(p.device.type in ("cpu", "cuda") for p in parameters) else {}
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay,
            nesterov=settings.momentum > 0, **fused,
        )
    return torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay, **fused)


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainingSettings) -> Any:
    if settings.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.max_epochs)
    if settings.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=settings.step_size, gamma=settings.gamma)
    if settings.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=settings.gamma, patience=settings.plateau_patience
        )
    return None


TIE_BREAK_MONITOR = "val_loss"
"""What breaks a tie of the monitored metric between epochs (:func:`train_epochs`)."""

MIN_RETRAIN_EPOCHS = 5
"""Fewest epochs a retrain without a validation split runs (capped at ``max_epochs``)."""


def tied_best_epochs(
    history: Sequence[Mapping[str, float]], monitor: str, mode: str = "min", min_delta: float = 0.0
) -> list[int]:
    """The 1-based epochs whose ``monitor`` value is within ``min_delta`` of the best one."""
    values = [
        (epoch, row[monitor]) for epoch, row in enumerate(history, start=1) if math.isfinite(row.get(monitor, math.nan))
    ]
    if not values:
        return []
    sign = 1.0 if mode == "min" else -1.0
    best = min(sign * value for _, value in values)
    return [epoch for epoch, value in values if sign * value <= best + min_delta]


def retrain_epoch_count(epochs: int | Sequence[int], max_epochs: int) -> int:
    """Epochs to retrain for where no validation split is left to stop early.

    ``epochs`` is the trial's tied best epochs (or one epoch). Their median (the later one of
    the middle two) is taken: a saturated metric, e.g. a validation accuracy of 1.0 on a few
    samples, ties many epochs, and early stopping kept the first of them. The result is never
    below :data:`MIN_RETRAIN_EPOCHS` and never above ``max_epochs``.
    """
    tied = sorted([epochs] if isinstance(epochs, int) else epochs)
    chosen = tied[len(tied) // 2] if tied else 0
    return max(1, min(max_epochs, max(chosen, MIN_RETRAIN_EPOCHS)))


@dataclass
class TrainingOutcome:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False


def train_epochs(
    network: nn.Module,
    *,
    n_train: int,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    validate: Callable[[], dict[str, float]] | None,
    settings: TrainingSettings,
    device: torch.device,
    generator: torch.Generator,
    monitor: str = "val_loss",
    monitor_mode: str = "min",
    early_stopping: bool = True,
    on_step: StepCallback | None = None,
    history: list[dict[str, float]] | None = None,
) -> TrainingOutcome:
    """Train ``network`` in place; restore the best-epoch weights when early stopping is on.

    The loop runs ``settings.max_epochs`` epochs, or stops after ``settings.stop_epoch`` with the
    learning-rate schedule still laid out over ``max_epochs`` (as in the trial the epoch was chosen in).

    ``batch_loss(indices)`` returns the mean loss of the training rows ``indices``
    (a tensor on ``device``); ``validate()`` returns the validation metrics (it runs
    in eval mode under ``torch.no_grad``, without autocast); each epoch's metrics are appended to ``history``
    (a new list when not given) as soon as they exist. Raises :class:`TrainingDiverged` when
    the training loss or the monitored metric is NaN or infinite.

    An epoch improves on the best when ``monitor`` beats it by more than ``min_delta``, or, for a monitor
    other than ``val_loss``, when it ties the best and lowers ``val_loss`` (:data:`TIE_BREAK_MONITOR`): a
    flat accuracy on a few validation samples neither stops a model that is still learning after
    ``early_stopping_patience`` epochs nor picks the first of many tied epochs.
    """
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, settings)
    scheduler = make_scheduler(optimizer, settings)
    sign = 1.0 if monitor_mode == "min" else -1.0
    best_value = math.inf
    best_tie = math.inf  # val_loss of the best epoch, when the monitor is another metric
    best_state: dict[str, torch.Tensor] | None = None
    stale_epochs = 0
    outcome = TrainingOutcome(history=history if history is not None else [])
    # BatchNorm cannot train on a batch of one row: a trailing single row is skipped.
    min_batch = 2 if n_train >= 2 else 1

    last_epoch = min(settings.stop_epoch, settings.max_epochs) if settings.stop_epoch else settings.max_epochs
    for epoch in range(1, last_epoch + 1):
        network.train()
        order = torch.randperm(n_train, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        rows = 0
        for start in range(0, n_train, settings.batch_size):
            indices = order[start : start + settings.batch_size]
            if indices.numel() < min_batch:
                continue
            with autocast(device, settings.precision):
                loss = batch_loss(indices)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
            optimizer.step()
            loss_sum += loss.detach().float() * indices.numel()
            rows += indices.numel()
        train_loss = float(loss_sum) / max(rows, 1)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"training loss became {train_loss} at epoch {epoch} (lr={settings.lr:g}, "
                f"optimizer={settings.optimizer})"
            )
        metrics: dict[str, float] = {}
        if validate is not None:
            network.eval()
            with torch.no_grad():  # full precision, exactly as evaluate() measures it
                metrics = dict(validate())
        metrics["train_loss"] = train_loss
        metrics["lr"] = float(optimizer.param_groups[0]["lr"])
        value = metrics.get(monitor, train_loss if monitor_mode == "min" else -train_loss)
        if not math.isfinite(value):
            raise TrainingDiverged(f"{monitor} became {value} at epoch {epoch} (lr={settings.lr:g})")
        outcome.history.append(metrics)

        tie = metrics.get(TIE_BREAK_MONITOR, math.inf) if monitor != TIE_BREAK_MONITOR else math.inf
        tie = tie if math.isfinite(tie) else math.inf
        improved = sign * value < best_value - settings.min_delta
        if not improved and sign * value <= best_value and tie < best_tie:  # a tie, broken by the smooth loss
            improved = True
        if improved:
            best_value, best_tie = min(sign * value, best_value), tie
            outcome.best_epoch = epoch
            stale_epochs = 0
            if early_stopping:
                best_state = copy.deepcopy(network.state_dict())
        else:
            stale_epochs += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(sign * value)
        elif scheduler is not None:
            scheduler.step()

        if on_step is not None:
            on_step(epoch, metrics)
        if early_stopping and settings.early_stopping_patience and stale_epochs >= settings.early_stopping_patience:
            logger.debug("early stop at epoch %d (best %d)", epoch, outcome.best_epoch)
            outcome.stopped_early = True
            break

    if early_stopping and best_state is not None:
        network.load_state_dict(best_state)
    return outcome
