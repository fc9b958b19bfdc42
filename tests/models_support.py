"""Shared by the tests/test_models_*.py modules (import the fixture to use it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny data gains nothing from more threads, and spinning OpenMP threads crawl on a shared 2-core machine.

    Restores the previous thread count so that other tests in the session are unaffected.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
