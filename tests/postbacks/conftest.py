"""A real tracker for postbacks to call: an HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.localhttp import LocalServer


@pytest.fixture
def tracker() -> Iterator[LocalServer]:
    server = LocalServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _local_urls_allowed(settings: Any) -> None:
    """The tracker lives on 127.0.0.1; tests that check the refusal turn this off."""
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    settings.LEADRELAY_POSTBACK_TIMEOUT_SECONDS = 2.0
