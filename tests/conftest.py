"""Shared fixtures: tiny seeded data made on the spot, PostgreSQL when reachable."""

from __future__ import annotations

import os
import uuid

import pytest

from data_pipeline import DataConfig, PreparedDataset, prepare_dataset

POSTGRES_URL = os.environ.get(
    "HPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL; skips where none is reachable (fails when HPO_REQUIRE_POSTGRES=1)."""
    from hpo.storage import database_reachable

    if not database_reachable(POSTGRES_URL):
        if os.environ.get("HPO_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}")
    return POSTGRES_URL


@pytest.fixture(scope="session")
def tiny_data_config(tmp_path_factory: pytest.TempPathFactory) -> DataConfig:
    """The settings of the ``tiny`` synthetic data set, cached in a session tmp dir.

    Worker subprocesses given this config call ``prepare_dataset(config)`` and hit the cache.
    """
    cache_dir = tmp_path_factory.mktemp("data-cache")
    return DataConfig(source="synthetic", preset="tiny", cache_dir=str(cache_dir))


@pytest.fixture(scope="session")
def tiny_dataset(tiny_data_config: DataConfig) -> PreparedDataset:
    """The prepared ``tiny`` data set (~180 samples, ~370 genes, 6 tissues), memory-mapped."""
    return prepare_dataset(tiny_data_config)


@pytest.fixture
def unique_name() -> str:
    """A study name no other test (or earlier run against the shared PostgreSQL) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
