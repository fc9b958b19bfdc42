"""Shared fixtures: tiny seeded data made on the spot, PostgreSQL when reachable, a private PostgreSQL to stop."""

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
def _private_postgres_cluster():
    """One private PostgreSQL cluster per session (initdb takes ~1 s); see :mod:`tests.support.pg_server`."""
    from tests.support.pg_server import PrivateServer, postgres_bin_dir

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        message = "no PostgreSQL server binaries (initdb, pg_ctl) for a private test server"
        if os.environ.get("HPO_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = PrivateServer(bin_dir)
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def private_postgres(_private_postgres_cluster):
    """A private PostgreSQL server, running, that the test may stop and start (never the shared one)."""
    _private_postgres_cluster.start()
    try:
        yield _private_postgres_cluster
    finally:
        _private_postgres_cluster.start()  # the next test finds it running, whatever this one did


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


CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (Debian's chromium; Playwright downloads nothing).

    Skips where no Chromium or Playwright is installed; fails instead when HPO_REQUIRE_BROWSER=1 (CI).
    """
    executable = os.environ.get("HPO_CHROMIUM") or next(
        (path for path in CHROMIUM_CANDIDATES if os.path.exists(path)), None
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        message = "headless browser tests need playwright (pip) and chromium (apt-get install chromium)"
        if os.environ.get("HPO_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh 1280x900 browser page, closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
