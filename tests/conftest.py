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


VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_executable() -> str | None:
    """``$HPO_CHROMIUM`` if set (even when missing: it is then named), else the first Chromium installed."""
    return os.environ.get("HPO_CHROMIUM") or next((path for path in CHROMIUM_CANDIDATES if os.path.exists(path)), None)


def browser_missing() -> str:
    """What the browser tests lack, named ("" when nothing): playwright, chromium, or both."""
    import importlib.util

    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install playwright, or make setup: it is in the dev extra)")
    executable = chromium_executable()
    if executable is None:
        missing.append(f"chromium (apt-get install chromium; none of {', '.join(CHROMIUM_CANDIDATES)} exists, "
                       "or point $HPO_CHROMIUM at one)")
    elif not os.path.exists(executable):
        missing.append(f"chromium at $HPO_CHROMIUM={executable} (no such file)")
    return ("headless browser tests: missing " + " and ".join(missing)) if missing else ""


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (Debian's chromium; Playwright downloads nothing).

    Skips where no Chromium or Playwright is installed; fails instead when HPO_REQUIRE_BROWSER=1 (CI).
    """
    message = browser_missing()
    if message:
        if os.environ.get("HPO_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser page the size of a laptop screen (1280x800: the "first screen"), closed after the test."""
    context = browser.new_context(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    try:
        yield context.new_page()
    finally:
        context.close()
