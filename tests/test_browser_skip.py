"""The browser tests' skip message names what is missing: playwright, chromium, or both."""

from __future__ import annotations

import importlib.util

from tests.conftest import browser_missing


def test_the_skip_names_a_missing_chromium(monkeypatch, tmp_path):
    monkeypatch.setenv("HPO_CHROMIUM", str(tmp_path / "no-chromium"))
    message = browser_missing()
    assert message == f"headless browser tests: missing chromium at $HPO_CHROMIUM={tmp_path / 'no-chromium'} (no such file)"


def test_the_skip_names_a_missing_playwright_and_chromium(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "playwright" else real(name, *a))
    monkeypatch.delenv("HPO_CHROMIUM", raising=False)
    monkeypatch.setattr("os.path.exists", lambda path: False)
    message = browser_missing()
    assert message.startswith("headless browser tests: missing playwright (pip install playwright")
    assert " and chromium (apt-get install chromium; none of /usr/bin/chromium" in message


def test_nothing_missing_says_nothing(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("")
    monkeypatch.setenv("HPO_CHROMIUM", str(fake))
    if importlib.util.find_spec("playwright") is not None:
        assert browser_missing() == ""
