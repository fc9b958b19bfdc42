"""The fold-average retrain of a PyTorch model: one model per CV fold of train+val, predictions averaged.

:class:`FoldEnsemble` splits the rows it trains on (``train+val`` in a retrain) into the folds a
``fidelity = "folds"`` trial uses (``fidelity_steps`` folds, stratified, a patient's models in one fold,
:data:`models.fidelity.FOLD_SEED`), refits the gene filter and the z-scoring on each fold's training rows
(:func:`models.torch_folds.fold_features`), and trains one model per fold that stops early on its held-out
fold, as in the trial. It predicts with all of them: a classifier's probabilities are the mean of the
fold models' softmax probabilities (its tissue is their argmax); an autoencoder's reconstruction is the
mean of the fold models' reconstructions, mapped back to the data set's z-scored genes.

The prepared data set keeps val and test only as its own filtered, z-scored genes, so the folds start
from those genes' log values (the data set's z-scoring inverted with ``feature_mean``/``feature_std``): a
fold's filter picks among the genes the data set's filter kept on the training split. A gene no fold
model reconstructs (a fold filter dropped it everywhere) is predicted as the training mean.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from data_pipeline.dataset import PreparedDataset
from models.base import StepCallback, TissueModel
from models.errors import NoEmbeddingError
from models.fidelity import split_groups
from models.metrics import classification_metrics, tie_break_loss
from models.persistence import read_metadata, write_metadata
from models.registry import build_model, get_spec, load_model
from models.torch_folds import best_epoch, fold_dataset, fold_features

ENSEMBLE_NAME = "fold_average"
"""``model.json``'s ``name`` of a saved ensemble (the fold models' own name is its ``model``)."""
FEATURES_FILE = "fold_features.npz"


class FoldEnsemble:
    """K fold models of the PyTorch model ``model`` and the gene filter + scaling each was trained on."""

    def __init__(
        self, model: str, params: Mapping[str, Any], *, device: str = "auto", seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.model = model
        self.params = dict(params)
        self.device = device
        self.seed = seed
        self.num_threads = num_threads
        self.models_: list[TissueModel] = []
        self.genes_: list[np.ndarray] = []
        """Per fold, the indices (into the data set's genes) its filter kept."""
        self.scale_mean_: list[np.ndarray] = []
        self.scale_std_: list[np.ndarray] = []
        self.feature_mean_: np.ndarray | None = None
        self.feature_std_: np.ndarray | None = None
        self.n_features_in_ = 0
        self.history_: list[dict[str, float]] = []
        self.fold_results_: list[dict[str, float]] = []
        self.train_seconds_ = 0.0
        self.n_steps_ = 0
        self.best_epoch_ = 0
        self.n_parameters_ = 0
        self.device_ = "cpu"

    @property
    def name(self) -> str:
        return self.model

    @property
    def task(self) -> str:
        return get_spec(self.model).task

    @property
    def n_folds(self) -> int:
        return len(self.models_)

    # -- fit ----------------------------------------------------------------------------------------
    def fit(
        self, data: PreparedDataset, *, train_split: str = "train+val", on_step: StepCallback | None = None
    ) -> FoldEnsemble:
        """One model per fold of ``train_split``, each stopping early on its held-out fold (as in the trial).

        ``on_step`` sees step ``fold * max_epochs + epoch`` with the fold's metrics, as a CV trial reports.
        """
        if get_spec(self.model).family != "torch":
            raise ValueError(f"the fold-average retrain is for PyTorch models; {self.model!r} is not one")
        if data.feature_mean is None or data.feature_std is None:
            raise ValueError(f"data set {data.directory or data.fingerprint} has no feature_mean/feature_std; "
                             "prepare it again (hpo data prepare)")
        n_folds = int(self.params.get("fidelity_steps", 5))
        if n_folds < 2:
            raise ValueError(f"the fold-average retrain needs fidelity_steps >= 2, got {n_folds}")
        X, y = data.split(train_split)
        y = np.asarray(y)
        self.feature_mean_ = np.asarray(data.feature_mean, dtype=np.float64)
        self.feature_std_ = np.asarray(data.feature_std, dtype=np.float64)
        self.n_features_in_ = data.n_features
        X_raw = self._raw(X)
        groups = split_groups(data.sample_info, train_split)
        fold_params = {**self.params, "fidelity": "none", "stop_epoch": 0}  # early stopping on the held-out fold
        max_epochs = int(fold_params.get("max_epochs", 0))
        started = time.perf_counter()
        self.models_, self.genes_, self.scale_mean_, self.scale_std_ = [], [], [], []
        self.history_, self.fold_results_ = [], []
        for fold, (features, fit_rows, held_rows) in enumerate(
            fold_features(X_raw, y, n_folds, data.settings, None, groups)
        ):
            fold_data = fold_dataset(data, features, X_raw, y, fit_rows, held_rows)
            fold_model = build_model(self.model, fold_params, device=self.device, seed=self.seed,
                                     num_threads=self.num_threads)
            history: list[dict[str, float]] = []

            def report(epoch: int, metrics: Mapping[str, float], fold: int = fold, history: list = history) -> None:
                row = {**metrics, "fold": float(fold), "epoch": float(epoch)}
                history.append(row)
                if on_step is not None:
                    on_step(fold * max_epochs + epoch, row)

            fold_model.fit(fold_data, train_split="train", on_step=report)
            chosen = best_epoch(history, fold_model.monitor, fold_model.monitor_mode)
            self.fold_results_.append({**history[chosen - 1], "best_epoch": float(chosen)} if chosen else {})
            self.history_.extend(history)
            self.models_.append(fold_model)
            self.genes_.append(np.asarray(features.named_steps["filter_genes"].genes_, dtype=np.int64))
            scaler = features.named_steps["standardise"]
            self.scale_mean_.append(np.asarray(scaler.mean_, dtype=np.float64))
            self.scale_std_.append(np.asarray(scaler.scale_, dtype=np.float64))
        self._fitted_summary(time.perf_counter() - started)
        return self

    def _fitted_summary(self, seconds: float) -> None:
        self.train_seconds_ = seconds
        self.n_steps_ = len(self.history_)
        epochs = [m.best_epoch_ for m in self.models_ if m.best_epoch_]
        self.best_epoch_ = int(round(statistics.median(epochs))) if epochs else 0
        self.n_parameters_ = sum(m.n_parameters_ for m in self.models_)
        self.device_ = self.models_[0].device_ if self.models_ else "cpu"

    # -- inference ----------------------------------------------------------------------------------
    def _raw(self, X: np.ndarray) -> np.ndarray:
        """The data set's z-scored rows back to log values (what the fold filters and scalers take)."""
        return np.asarray(X, dtype=np.float64) * self.feature_std_ + self.feature_mean_

    def fold_inputs(self, X: np.ndarray) -> list[np.ndarray]:
        """``X`` (the data set's features) as each fold model takes it: its genes, its scaling."""
        self._check_fitted()
        raw = self._raw(X)
        return [((raw[:, genes] - mean) / std).astype(np.float32)
                for genes, mean, std in zip(self.genes_, self.scale_mean_, self.scale_std_)]

    def fold_probabilities(self, X: np.ndarray) -> list[np.ndarray]:
        """Each fold model's softmax probabilities of the rows of ``X`` (classifiers)."""
        if self.task != "classification":
            raise ValueError(f"{self.model} does not classify: no probabilities")
        return [model.predict_proba(inputs) for model, inputs in zip(self.models_, self.fold_inputs(X))]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The mean over the fold models of their softmax probabilities."""
        return np.mean(self.fold_probabilities(X), axis=0)

    def fold_reconstructions(self, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each fold model's reconstruction of ``X``, in the data set's z-scored units, with its genes."""
        out = []
        for model, inputs, genes, mean, std in zip(
            self.models_, self.fold_inputs(X), self.genes_, self.scale_mean_, self.scale_std_
        ):
            raw = np.asarray(model.predict(inputs), dtype=np.float64) * std + mean
            out.append(((raw - self.feature_mean_[genes]) / self.feature_std_[genes], genes))
        return out

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """The mean of the fold models' reconstructions, gene by gene (the training mean where none has it)."""
        total = np.zeros((len(X), self.n_features_in_))
        counts = np.zeros(self.n_features_in_)
        for values, genes in self.fold_reconstructions(X):
            total[:, genes] += values
            counts[genes] += 1
        return (total / np.maximum(counts, 1)).astype(np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Tissue indices (the argmax of the mean probabilities) or the mean reconstructions."""
        if self.task == "classification":
            return self.predict_proba(X).argmax(axis=1).astype(np.int64)
        return self.reconstruct(X)

    def embed(self, X: np.ndarray) -> np.ndarray:
        raise NoEmbeddingError("a fold-average ensemble has one latent space per fold model, none of its own")

    def evaluate(self, data: PreparedDataset, split: str) -> dict[str, float]:
        """The metrics a single model reports, of the averaged predictions."""
        X, y = data.split(split)
        if self.task == "classification":
            probabilities = self.predict_proba(X)
            y = np.asarray(y, dtype=np.int64)
            metrics = classification_metrics(y, probabilities.argmax(axis=1).astype(np.int64), split)
            metrics[f"{split}_loss"] = tie_break_loss(y, proba=probabilities)  # the project's log-loss
            return metrics
        mse = float(np.mean((self.reconstruct(X).astype(np.float64) - np.asarray(X, dtype=np.float64)) ** 2))
        return {f"{split}_reconstruction_mse": mse, f"{split}_loss": mse}

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """``fold-K/`` per fold model, the folds' genes and scaling in ``fold_features.npz``, then ``model.json``."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for fold, model in enumerate(self.models_):
            model.save(directory / f"fold-{fold}")
        arrays: dict[str, np.ndarray] = {"feature_mean": self.feature_mean_, "feature_std": self.feature_std_}
        for fold in range(self.n_folds):
            arrays[f"genes_{fold}"] = self.genes_[fold]
            arrays[f"mean_{fold}"] = self.scale_mean_[fold]
            arrays[f"std_{fold}"] = self.scale_std_[fold]
        np.savez(directory / FEATURES_FILE, **arrays)
        write_metadata(
            directory, name=ENSEMBLE_NAME, params=self.params, seed=self.seed, model=self.model,
            n_folds=self.n_folds, n_features=self.n_features_in_, n_steps=self.n_steps_,
            fold_results=json.loads(json.dumps(self.fold_results_, default=float)),
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto") -> FoldEnsemble:
        """The ensemble :meth:`save` wrote into ``directory``."""
        directory = Path(directory)
        meta = read_metadata(directory)
        if meta["name"] != ENSEMBLE_NAME:
            raise ValueError(f"{directory} holds a {meta['name']!r} model, not a fold-average ensemble")
        ensemble = cls(meta["model"], meta["params"], device=device, seed=int(meta["seed"]))
        with np.load(directory / FEATURES_FILE) as arrays:
            ensemble.feature_mean_, ensemble.feature_std_ = arrays["feature_mean"], arrays["feature_std"]
            n_folds = int(meta["n_folds"])
            ensemble.genes_ = [arrays[f"genes_{k}"] for k in range(n_folds)]
            ensemble.scale_mean_ = [arrays[f"mean_{k}"] for k in range(n_folds)]
            ensemble.scale_std_ = [arrays[f"std_{k}"] for k in range(n_folds)]
        ensemble.models_ = [load_model(directory / f"fold-{k}", device=device) for k in range(n_folds)]
        ensemble.n_features_in_ = int(meta["n_features"])
        ensemble.fold_results_ = list(meta.get("fold_results", []))
        ensemble._fitted_summary(0.0)
        ensemble.n_steps_ = int(meta.get("n_steps", 0))
        return ensemble

    def _check_fitted(self) -> None:
        if not self.models_ or self.feature_mean_ is None:
            raise RuntimeError(f"fold-average {self.model} is not fitted: call fit() first")

