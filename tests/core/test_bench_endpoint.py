"""bench/echo exists only where LEADRELAY_BENCH_ENDPOINTS turns it on."""

import importlib.util
import sys
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

import leadrelay.urls

BENCH_URLCONF = "tests.core.urls_with_bench_endpoints"


@pytest.fixture
def bench_urlconf() -> Iterator[str]:
    """leadrelay/urls.py imported afresh, as a server started with the setting on does."""
    spec = importlib.util.spec_from_file_location(BENCH_URLCONF, leadrelay.urls.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with override_settings(LEADRELAY_BENCH_ENDPOINTS=True):
        spec.loader.exec_module(module)
    sys.modules[BENCH_URLCONF] = module
    yield BENCH_URLCONF
    del sys.modules[BENCH_URLCONF]


def test_bench_echo_is_not_routed_by_default(db) -> None:
    response = Client().post("/bench/echo", data={"a": 1}, content_type="application/json")
    assert response.status_code == 404


def test_bench_echo_answers_201_when_turned_on(db, bench_urlconf: str) -> None:
    with override_settings(ROOT_URLCONF=bench_urlconf):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/bench/echo", data={"a": 1}, content_type="application/json")
        assert response.status_code == 201
        assert response.json() == {"ok": True}
        assert client.get("/bench/echo").status_code == 405
