"""Shared by the tests/test_models_*.py modules (import the fixture to use it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectKBest, VarianceThreshold


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny data gains nothing from more threads, and spinning OpenMP threads crawl on a shared 2-core machine.

    Restores the previous thread count so that other tests in the session are unaffected.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def gene_filter_steps(settings: Mapping[str, Any]) -> list[BaseEstimator]:
    """A data set's gene filter in scikit-learn's own selectors, to fit per fold inside a Pipeline.

    VarianceThreshold(``min_gene_variance``), then, with ``top_k_genes``, SelectKBest by variance.
    """
    steps: list[BaseEstimator] = [VarianceThreshold(settings["min_gene_variance"])]
    if settings["top_k_genes"] is not None:
        steps.append(SelectKBest(lambda X, y: np.var(X, axis=0, dtype=np.float64), k=settings["top_k_genes"]))
    return steps
