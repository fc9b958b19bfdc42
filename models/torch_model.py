"""What every PyTorch model shares: device, seeding, fit via the training loop, batched inference, weights on disk."""

from __future__ import annotations

import abc
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from data_pipeline.dataset import PreparedDataset
from models.base import StepCallback, TissueModel
from models.device import release_memory, resolve_device
from models.errors import DeviceOutOfMemory
from models.fidelity import FOLDS, resolved_fidelity
from models.networks import count_parameters
from models.training import TrainingSettings, retrain_epoch_count, tied_best_epochs, train_epochs

logger = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 1024
WEIGHTS_FILE = "weights.pt"


def as_tensor(array: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One copy of a (possibly read-only, memory-mapped) array onto ``device``."""
    return torch.tensor(np.asarray(array), dtype=dtype, device=device)


def batched(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    return torch.cat([fn(X[start : start + batch_size]) for start in range(0, len(X), batch_size)])


def _is_allocation_failure(error: RuntimeError) -> bool:
    """CPU allocators report exhaustion as a RuntimeError ("can't allocate memory")."""
    return "can't allocate memory" in str(error) or "out of memory" in str(error).lower()


class TorchModel(TissueModel):
    """Base of the PyTorch models; subclasses define the network, the batch loss and the metrics."""

    monitor_mode: ClassVar[str] = "min"

    network_: nn.Module | None = None
    architecture_: Mapping[str, Any] = MappingProxyType({})
    """The parameters the network was built from (a classifier's encoder may come from a saved autoencoder)."""
    n_features_in_: int = 0
    n_classes_: int = 0
    fold_results_: Sequence[Mapping[str, float]] = ()
    """``fidelity = "folds"``: each finished fold's held-out metrics at its best epoch (:mod:`models.torch_folds`)."""
    cv_curve_: Sequence[Mapping[str, float]] = ()
    """``fidelity = "folds"``: the mean over folds of each metric, epoch by epoch."""

    # -- what subclasses define -------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def build_network(cls, params: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
        """The untrained network for ``params`` and the data's shape (also on the ``meta`` device)."""

    @abc.abstractmethod
    def _batch_loss(self, X: torch.Tensor, y: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Mean loss of the training rows ``indices``."""

    @abc.abstractmethod
    def _metrics(self, X: torch.Tensor, y: torch.Tensor, prefix: str) -> dict[str, float]:
        """Metrics of the rows ``X``, ``y``, keyed ``{prefix}_...``."""

    def _before_training(self, data: PreparedDataset, train_split: str, y_train: torch.Tensor) -> None:
        """Hook: pretraining, class weights (runs after the network is on the device)."""

    @property
    def monitor(self) -> str:
        return "val_loss"

    # -- fit / evaluate ------------------------------------------------------------------------
    def fit(
        self, data: PreparedDataset, *, train_split: str = "train", on_step: StepCallback | None = None
    ) -> "TorchModel":
        """Train on ``train_split``; validation metrics come from the ``val`` split every epoch.

        With ``train_split="train+val"`` the validation rows are part of training, so
        early stopping is off and the loop runs ``max_epochs`` epochs. On any exception
        (NaN loss, out of memory, or one raised by ``on_step``) the network and its
        device tensors are released before the exception propagates.
        """
        if self.cross_validates_on(data, train_split):
            return self._fit_folds(data, on_step)
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        device = resolve_device(self.device)
        self.device_ = str(device)
        settings = TrainingSettings.from_params(self.params)
        X, y = data.split(train_split)
        X_val, y_val = data.split("val")
        tensors: dict[str, torch.Tensor] = {}
        history: list[dict[str, float]] = []
        self.history_ = history  # filled epoch by epoch: a trial stopped early keeps what it saw
        started = time.perf_counter()
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=fork_devices):
                torch.manual_seed(self.seed)
                tensors["X"] = as_tensor(X, device)
                tensors["y"] = as_tensor(y, device, torch.long)
                tensors["X_val"] = as_tensor(X_val, device)
                tensors["y_val"] = as_tensor(y_val, device, torch.long)
                self.n_features_in_, self.n_classes_ = data.n_features, data.n_classes
                self.architecture_ = self._resolve_architecture()
                self.network_ = self.build_network(self.architecture_, data.n_features, data.n_classes).to(device)
                self._before_training(data, train_split, tensors["y"])
                self.n_parameters_ = count_parameters(self.network_)
                generator = torch.Generator().manual_seed(self.seed)
                outcome = train_epochs(
                    self.network_,
                    n_train=len(tensors["X"]),
                    batch_loss=lambda idx: self._batch_loss(tensors["X"], tensors["y"], idx),
                    validate=lambda: self._metrics(tensors["X_val"], tensors["y_val"], "val"),
                    settings=settings,
                    device=device,
                    generator=generator,
                    monitor=self.monitor,
                    monitor_mode=self.monitor_mode,
                    early_stopping="val" not in train_split,
                    on_step=on_step,
                    history=history,
                )
        except torch.cuda.OutOfMemoryError as error:
            self._release(tensors, device, error)
            raise DeviceOutOfMemory(
                f"{self.name}: out of memory on {device} (batch_size={settings.batch_size}); "
                f"memory was released: {str(error).splitlines()[0]}"
            ) from None
        except (MemoryError, RuntimeError) as error:
            self._release(tensors, device, error)
            if isinstance(error, RuntimeError) and not _is_allocation_failure(error):
                raise
            raise DeviceOutOfMemory(
                f"{self.name}: out of host memory on {device} (batch_size={settings.batch_size}); "
                f"memory was released: {str(error).splitlines()[0] if str(error) else 'MemoryError'}"
            ) from None
        except BaseException as error:
            self._release(tensors, device, error)
            raise
        tensors.clear()
        self.network_.eval()
        self.n_steps_ = len(outcome.history)
        self.best_epoch_ = outcome.best_epoch
        if "val" not in train_split:  # early stopping was on: how long a retrain without it should run
            tied = tied_best_epochs(outcome.history, self.monitor, self.monitor_mode, settings.min_delta)
            self.retrain_epochs_ = retrain_epoch_count(tied or outcome.best_epoch, settings.max_epochs)
        self.train_seconds_ = time.perf_counter() - started
        logger.debug("%s: %d epochs in %.2fs on %s", self.name, self.n_steps_, self.train_seconds_, device)
        return self

    # -- cross-validation (fidelity = "folds"): models.torch_folds ----------------------------------
    def cross_validates_on(self, data: PreparedDataset, train_split: str) -> bool:
        """Whether :meth:`fit` cross-validates: ``fidelity`` is ``folds`` (or ``auto`` choosing it) on ``train``."""
        if train_split != "train" or "fidelity" not in self.params:
            return False
        return resolved_fidelity(self.params, len(data.y_train), len(data.y_val), data.n_classes) == FOLDS

    def _fit_folds(self, data: PreparedDataset, on_step: StepCallback | None) -> TorchModel:
        """k-fold CV on the training split, then one fit on all of it (:func:`models.torch_folds.fit_folds`)."""
        from models.torch_folds import fit_folds

        fit_folds(self, data, on_step)
        return self

    def _release(self, tensors: dict[str, torch.Tensor], device: torch.device, error: BaseException) -> None:
        """Drop every reference to the network, optimiser and data, then return the memory.

        The traceback keeps the frames of the training loop alive, and with them the
        optimiser state and the network; clearing their locals lets the memory go now,
        not whenever the caller drops the exception.
        """
        tensors.clear()
        self.network_ = None
        traceback.clear_frames(error.__traceback__)
        release_memory(device)

    def _resolve_architecture(self) -> dict[str, Any]:
        """The parameters the network is built from (a classifier may take them from a saved encoder)."""
        return dict(self.params)

    def _network(self) -> nn.Module:
        if self.network_ is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit() first")
        return self.network_

    def _device(self) -> torch.device:
        return next(self._network().parameters()).device

    def evaluate(self, data: PreparedDataset, split: str) -> dict[str, float]:
        X, y = data.split(split)
        device = self._device()
        network = self._network()
        network.eval()
        with torch.no_grad():
            return self._metrics(as_tensor(X, device), as_tensor(y, device, torch.long), split)

    def _infer(self, fn: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray) -> np.ndarray:
        network = self._network()
        network.eval()
        with torch.no_grad():
            return batched(fn, as_tensor(X, self._device())).float().cpu().numpy()

    # -- persistence hooks ---------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        """``weights.pt``; ``model.json`` records the architecture and the data's shape to rebuild the network."""
        torch.save(self._network().state_dict(), directory / WEIGHTS_FILE)
        return {
            "architecture": dict(self.architecture_),
            "n_features": self.n_features_in_,
            "n_classes": self.n_classes_,
        }

    def _load_state(self, directory: Path, meta: Mapping[str, Any]) -> None:
        device = resolve_device(self.device)
        network = self.build_network(meta["architecture"], meta["n_features"], meta["n_classes"])
        network.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        self.network_ = network.to(device).eval()
        self.architecture_ = dict(meta["architecture"])
        self.n_features_in_, self.n_classes_ = int(meta["n_features"]), int(meta["n_classes"])
        self.n_parameters_ = count_parameters(network)
        self.device_ = str(device)
