"""Classic classifiers trained on autoencoder embeddings.

One flat parameter set: the autoencoder's parameters prefixed ``ae_`` (e.g.
``ae_latent_dim``, ``ae_max_epochs``) plus the classifier's own. ``fit`` trains the
autoencoder on the training split first (its epochs are not reported), then the
classifier, with its fidelity steps, on the latent codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from data_pipeline.dataset import PreparedDataset
from models.autoencoder import AutoencoderModel
from models.sklearn_models import KNNModel, RandomForestModel, SklearnModel, SVCModel
from models.specs import AE_PREFIX, get_spec

AE_SUBDIRECTORY = "autoencoder"


class EmbeddingModel(SklearnModel):
    """Base: an autoencoder followed by ``classifier_class`` on its latent codes."""

    classifier_class: type[SklearnModel]
    has_embedding = True

    autoencoder_: AutoencoderModel | None = None
    """The autoencoder trained on the training split, whose latent codes the classifier sees."""

    @property
    def _classifier(self) -> SklearnModel:
        """The classic model built from the parameters without the ``ae_`` prefix (it makes the estimators)."""
        own = {key: value for key, value in self.params.items() if not key.startswith(AE_PREFIX)}
        return self.classifier_class(own, seed=self.seed, num_threads=self.num_threads)

    def _autoencoder_params(self) -> dict[str, Any]:
        return {key[len(AE_PREFIX) :]: value for key, value in self.params.items() if key.startswith(AE_PREFIX)}

    def make_estimator(self, n_rows: int) -> BaseEstimator:
        return self._classifier.make_estimator(n_rows)

    def fold_estimator(self, n_rows: int, data: PreparedDataset, train_split: str) -> BaseEstimator:
        """The classifier alone: its features are latent codes, which the final model does not scale either.

        The autoencoder is trained once on the whole training split (the prepared genes), so its
        codes of a held-out fold are not independent of that fold (unsupervised, labels unseen).
        """
        return self.make_estimator(n_rows)

    def fold_features(self, data: PreparedDataset, train_split: str, X: np.ndarray) -> np.ndarray:
        """The latent codes of the training split (the autoencoder needs the prepared genes)."""
        return X

    def _prepare(self, data: PreparedDataset, train_split: str) -> None:
        autoencoder = AutoencoderModel(
            self._autoencoder_params(), device=self.device, seed=self.seed, num_threads=self.num_threads
        )
        self.autoencoder_ = autoencoder.fit(data, train_split=train_split)
        self.n_parameters_ = autoencoder.n_parameters_
        self.device_ = autoencoder.device_

    def _features(self, X: np.ndarray) -> np.ndarray:
        return self.embed(X)

    def _autoencoder(self) -> AutoencoderModel:
        if self.autoencoder_ is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit() first")
        return self.autoencoder_

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The autoencoder's latent codes of ``X``."""
        return self._autoencoder().embed(X)

    # -- persistence hooks: the estimator, and the autoencoder in its own subfolder --------------
    def _save_state(self, directory: Path) -> dict[str, Any]:
        fields = super()._save_state(directory)
        self._autoencoder().save(directory / AE_SUBDIRECTORY)
        return fields

    def _load_state(self, directory: Path, meta: Mapping[str, Any]) -> None:
        self.autoencoder_ = AutoencoderModel.load(directory / AE_SUBDIRECTORY, device=self.device)
        self.n_parameters_ = self.autoencoder_.n_parameters_
        self.device_ = self.autoencoder_.device_
        super()._load_state(directory, meta)


def embedding_model(classifier_class: type[SklearnModel]) -> type[EmbeddingModel]:
    """The ``<name>_on_embeddings`` model class for a classic classifier (its parameters: its spec's)."""
    name = f"{classifier_class.name}_on_embeddings"
    return type(
        f"{classifier_class.__name__}OnEmbeddings",
        (EmbeddingModel,),
        {"name": name, "classifier_class": classifier_class, "__doc__": get_spec(name).description},
    )


SVCOnEmbeddings = embedding_model(SVCModel)
KNNOnEmbeddings = embedding_model(KNNModel)
RandomForestOnEmbeddings = embedding_model(RandomForestModel)
