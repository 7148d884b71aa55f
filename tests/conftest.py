"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.apiserver import FakeApiServer


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    """A fresh fake Kubernetes API server over HTTP (see tests/fakes/apiserver.py)."""
    server = FakeApiServer()
    try:
        yield server
    finally:
        server.close()
