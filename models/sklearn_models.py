"""scikit-learn baselines behind the same fit/evaluate contract as the deep models.

Each model builds one estimator (or Pipeline) from its flat parameters. ``fidelity``
decides how ``fit`` reports progress, so that Optuna pruners work on them too:

- ``none``: one fit on the training split, one step.
- ``subsets``: fit on nested stratified fractions 1/n ... n/n of the training split
  (``n = fidelity_steps``), validation metrics after each; the last fit is the model.
- ``folds``: stratified k-fold CV on the training split (the data set's fold
  assignment when it has one), the held-out fold's metrics reported as ``val_*``
  after each fold; then one fit on the whole training split. Each fold fits a
  Pipeline that filters genes and standardises with the fold's training rows only
  (:meth:`fold_estimator` on :meth:`fold_features`), so the held-out fold shapes neither
  the gene choice, nor the scaling, nor the model.
"""

from __future__ import annotations

import abc
import contextlib
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import KernelPCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from data_pipeline.dataset import PreparedDataset
from data_pipeline.gene_filter import gene_filter_of
from models.base import StepCallback, TissueModel
from models.fidelity import FOLDS, cross_validates, nested_stratified_subsets, split_groups, stratified_folds
from models.metrics import TIE_BREAK_KEY, classification_metrics, estimator_tie_break_loss

ESTIMATOR_FILE = "estimator.joblib"


def _class_weight(value: str) -> str | None:
    return None if value == "none" else value


class SklearnModel(TissueModel):
    """Base of the scikit-learn models: subclasses define ``make_estimator``."""

    estimator_: BaseEstimator | None = None
    """The estimator fitted on the whole training split."""
    convergence_warnings_: int = 0
    """ConvergenceWarnings the last ``fit`` raised (all its fits: folds, subsets, the final one), counted
    instead of printed: a study would print dozens of identical lines."""

    @abc.abstractmethod
    def make_estimator(self, n_rows: int) -> BaseEstimator:
        """A fresh, unfitted estimator for a training set of ``n_rows`` rows."""

    def fold_estimator(self, n_rows: int, data: PreparedDataset, train_split: str) -> BaseEstimator:
        """What one CV fold fits on :meth:`fold_features`: the gene filter, a StandardScaler, the estimator.

        On the training split the features are the genes before filtering, and the filter (the data
        set's ``min_gene_variance``/``top_k_genes``) and the scaler are fitted on the fold's training
        rows. A retrain on ``train+val`` (whose fold scores rank nothing) cross-validates the
        prepared genes, refitting only the scaler.
        """
        steps = [("standardise", StandardScaler()), ("model", self.make_estimator(n_rows))]
        if train_split == "train":
            steps.insert(0, ("filter_genes", gene_filter_of(data.settings)))
        return Pipeline(steps)

    def fold_features(self, data: PreparedDataset, train_split: str, X: np.ndarray) -> np.ndarray:
        """The rows CV folds are cut from: on ``train``, the training split before the gene filter."""
        if train_split != "train":
            return X
        if data.X_train_unfiltered is None:
            raise ValueError(
                f"fidelity='folds' refits the gene filter per fold, but data set {data.directory or data.fingerprint} "
                "has no X_train_unfiltered; prepare it again (hpo data prepare)"
            )
        return np.asarray(data.X_train_unfiltered)

    @property
    def cross_validated(self) -> bool:
        """Whether ``fit`` reports k-fold CV scores (``fidelity = "folds"``)."""
        return cross_validates(self.params)

    # hooks for models that learn a representation first (see EmbeddingModel)
    def _prepare(self, data: PreparedDataset, train_split: str) -> None:
        """Learn whatever the features need before the classifier (nothing here)."""

    def _features(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)

    def _threads(self) -> contextlib.AbstractContextManager:
        return threadpool_limits(self.num_threads) if self.num_threads else contextlib.nullcontext()

    def fit(
        self, data: PreparedDataset, *, train_split: str = "train", on_step: StepCallback | None = None
    ) -> "SklearnModel":
        started = time.perf_counter()
        history: list[dict[str, float]] = []
        self.history_ = history
        with self._threads(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self._prepare(data, train_split)
            X_raw, y = data.split(train_split)
            X = self._features(X_raw)
            y = np.asarray(y)
            X_val = self._features(data.split("val")[0])
            y_val = np.asarray(data.split("val")[1])
            fidelity, steps = self.params["fidelity"], self.params["fidelity_steps"]

            def report(step: int, estimator: BaseEstimator, X_held: np.ndarray, y_held: np.ndarray, **extra: float) -> None:
                metrics = {**classification_metrics(y_held, estimator.predict(X_held), "val"), **extra,
                           TIE_BREAK_KEY: estimator_tie_break_loss(estimator, X_held, y_held)}
                history.append(metrics)
                if on_step is not None:
                    on_step(step, metrics)

            if fidelity == "subsets":
                for step, rows in enumerate(nested_stratified_subsets(y, steps, self.seed), start=1):
                    estimator = self.make_estimator(len(rows)).fit(X[rows], y[rows])
                    report(step, estimator, X_val, y_val, train_fraction=len(rows) / len(y))
                self.estimator_ = estimator
            else:
                if fidelity == FOLDS:
                    folds = data.folds if train_split == "train" else None
                    X_folds = self.fold_features(data, train_split, X)
                    groups = split_groups(data.sample_info, train_split)  # a patient's models in one fold
                    for step, (fit_rows, held_rows) in enumerate(stratified_folds(y, steps, folds, groups), start=1):
                        estimator = self.fold_estimator(len(fit_rows), data, train_split)
                        estimator.fit(X_folds[fit_rows], y[fit_rows])
                        report(step, estimator, X_folds[held_rows], y[held_rows], fold=float(step - 1))
                self.estimator_ = self.make_estimator(len(y)).fit(X, y)
                if fidelity == "none":
                    report(1, self.estimator_, X_val, y_val)
        self.convergence_warnings_ = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        for other in caught:  # everything else as it would have been shown
            if not issubclass(other.category, ConvergenceWarning):
                warnings.showwarning(other.message, other.category, other.filename, other.lineno)
        self.n_steps_ = len(history)
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _estimator(self) -> BaseEstimator:
        if self.estimator_ is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit() first")
        return self.estimator_

    def predict(self, X: np.ndarray) -> np.ndarray:
        with self._threads():
            return np.asarray(self._estimator().predict(self._features(X)), dtype=np.int64)

    def evaluate(self, data: PreparedDataset, split: str) -> dict[str, float]:
        X, y = data.split(split)
        return classification_metrics(np.asarray(y), self.predict(X), split)

    # -- persistence hooks ---------------------------------------------------------------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        """The fitted estimator as ``estimator.joblib`` (a joblib pickle); ``model.json`` needs nothing more."""
        joblib.dump(self._estimator(), directory / ESTIMATOR_FILE)
        return {}

    def _load_state(self, directory: Path, meta: Mapping[str, Any]) -> None:
        self.estimator_ = joblib.load(directory / ESTIMATOR_FILE)


def _svc(params: Mapping[str, Any], seed: int, prefix: str = "") -> SVC:
    C = params[prefix + "C"]
    if params[prefix + "kernel"] == "linear" and params.get(prefix + "linear_C"):
        C = params[prefix + "linear_C"]  # the linear kernel's own C (see SVCModel)
    return SVC(
        kernel=params[prefix + "kernel"],
        C=C,
        gamma=params[prefix + "gamma"],
        degree=params[prefix + "degree"],
        class_weight=_class_weight(params["class_weight"]),
        cache_size=500,
        random_state=seed,
    )


class SVCModel(SklearnModel):
    """Support-vector classifier (kernel, C, gamma, class_weight).

    ``linear_C`` (0: ``C``) is the linear kernel's C. The RBF and polynomial kernels with ``gamma = "scale"``
    are normalised by the number of genes, the linear one is not: on standardised genes a row's squared norm
    is about the number of genes, so a linear SVC separates a small training set with dual coefficients
    of ~1e-4 and every C above that gives the same model. A study searches the two on their own ranges.
    """

    name = "svc"

    def make_estimator(self, n_rows: int) -> BaseEstimator:
        return _svc(self.params, self.seed)


class RandomForestModel(SklearnModel):
    """Random forest (max_depth 0 = unlimited; max_features a name or a fraction)."""

    name = "random_forest"

    def make_estimator(self, n_rows: int) -> BaseEstimator:
        return RandomForestClassifier(
            n_estimators=self.params["n_estimators"],
            max_depth=self.params["max_depth"] or None,
            max_features=self.params["max_features"],
            min_samples_leaf=self.params["min_samples_leaf"],
            class_weight=_class_weight(self.params["class_weight"]),
            n_jobs=self.num_threads or 1,
            random_state=self.seed,
        )


class KNNModel(SklearnModel):
    """k-nearest neighbours (n_neighbors is capped at the training rows)."""

    name = "knn"

    def make_estimator(self, n_rows: int) -> BaseEstimator:
        return KNeighborsClassifier(
            n_neighbors=max(1, min(self.params["n_neighbors"], n_rows)),
            weights=self.params["weights"],
            metric=self.params["metric"],
            n_jobs=self.num_threads or 1,
        )


class LogisticRegressionModel(SklearnModel):
    """Multinomial logistic regression (solver auto: lbfgs for l1_ratio = 0, saga otherwise)."""

    name = "logistic_regression"

    def make_estimator(self, n_rows: int) -> BaseEstimator:
        l1_ratio = self.params["l1_ratio"]
        solver = self.params["solver"]
        if solver == "auto":
            solver = "lbfgs" if l1_ratio == 0 else "saga"
        elif solver == "lbfgs" and l1_ratio > 0:
            raise ValueError(f"solver='lbfgs' fits only the L2 penalty (l1_ratio=0), got l1_ratio={l1_ratio}; use saga")
        return LogisticRegression(
            C=self.params["C"],
            l1_ratio=l1_ratio,
            solver=solver,
            max_iter=self.params["max_iter"],
            tol=self.params["tol"],
            class_weight=_class_weight(self.params["class_weight"]),
            random_state=self.seed,
        )


class KernelPCASVCModel(SklearnModel):
    """KernelPCA then SVC, one Pipeline (the projection is fitted on training rows only)."""

    name = "kpca_svc"

    def make_estimator(self, n_rows: int) -> BaseEstimator:
        return Pipeline(
            [
                (
                    "kpca",
                    KernelPCA(
                        n_components=max(1, min(self.params["kpca_n_components"], n_rows)),
                        kernel=self.params["kpca_kernel"],
                        gamma=self.params["kpca_gamma"] or None,
                        random_state=self.seed,
                    ),
                ),
                ("svc", _svc(self.params, self.seed, prefix="svc_")),
            ]
        )
