"""The gene filter as a scikit-learn transformer, so that each CV fold can fit it on its own rows."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from data_pipeline.preprocess import select_genes


class VarianceGeneFilter(TransformerMixin, BaseEstimator):
    """Keep the genes whose variance passes ``min_variance``, then the ``top_k`` most variable.

    The same rule as the prepared data set's filter (:func:`data_pipeline.preprocess.select_genes`),
    fitted on the rows given to ``fit`` only; labels are ignored.
    """

    def __init__(self, min_variance: float = 0.05, top_k: int | None = None) -> None:
        self.min_variance = min_variance
        self.top_k = top_k

    def fit(self, X: np.ndarray, y: Any = None) -> "VarianceGeneFilter":
        X = np.asarray(X)
        self.genes_ = select_genes(X, self.min_variance, self.top_k, source="gene filter of a CV fold")
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "genes_")
        return np.asarray(X)[:, self.genes_]


def gene_filter_of(settings: dict[str, Any]) -> VarianceGeneFilter:
    """An unfitted filter with a prepared data set's ``min_gene_variance`` and ``top_k_genes``."""
    return VarianceGeneFilter(min_variance=float(settings["min_gene_variance"]), top_k=settings.get("top_k_genes"))
