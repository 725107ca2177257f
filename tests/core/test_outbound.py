"""Calls to user-given URLs: addresses refused in every spelling, pinning, no redirects,
bounded bodies and time, and the async variant used for fan-out."""

import asyncio
import ipaddress
import ssl

import pytest
from django.utils import timezone

from leadrelay.core.outbound import (
    BlockedAddress,
    PinnedResolver,
    Request,
    address_is_public,
    host_problem,
    pinned_session,
    safe_call,
    safe_call_async,
    url_shape_problems,
)
from tests.localhttp import LocalServer


@pytest.fixture
def server():
    local = LocalServer().start()
    yield local
    local.stop()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_local_private_and_metadata_addresses_are_not_public(address):
    assert not address_is_public(ipaddress.ip_address(address))


def test_public_addresses_are(settings):
    assert address_is_public(ipaddress.ip_address("93.184.216.34"))
    assert address_is_public(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "metadata.google.internal", "[::1]", "2130706433", "0x7f.1"]
)
def test_hosts_that_reach_inside_are_refused_when_saved(settings, host):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    _, parsed = url_shape_problems(f"http://{host}/x", "url", 2000)
    problem = host_problem(parsed, "url")
    assert problem is not None and problem.code == "url_private_host"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/", "url_scheme"),
        ("https://user:pw@example.com/", "url_credentials"),
        ("https://exa mple.com/", "url_invalid"),
        ("https://{host}/", "url_host"),
        ("", "required"),
    ],
)
def test_url_shapes_that_are_refused(url, code):
    problems, _ = url_shape_problems(url, "url", 2000)
    assert code in {p.code for p in problems}


def test_a_call_to_a_loopback_address_is_blocked_at_call_time(settings, server):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    answer = safe_call(Request("GET", server.url), timeout=2, max_body=100, now=timezone.now())
    assert answer.error.startswith("blocked_address") and not answer.retryable
    assert server.requests == []


def test_redirects_are_not_followed_and_bodies_are_cut(settings, server):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    server.answer(302, b"", Location="http://169.254.169.254/")
    answer = safe_call(Request("GET", server.url), timeout=2, max_body=100, now=timezone.now())
    assert answer.status_code == 302 and "redirects are not followed" in answer.error
    assert len(server.requests) == 1
    server.answer(200, b"x" * 100_000)
    answer = safe_call(
        Request("POST", server.url, content=b"{}"), timeout=2, max_body=2048, now=timezone.now()
    )
    assert answer.ok and len(answer.body) == 2048
    assert server.requests[-1].method == "POST" and server.requests[-1].body == b"{}"


def test_slow_answers_time_out_and_may_be_retried(settings, server):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    server.answer(200, b"late", delay=1.5)
    answer = safe_call(Request("GET", server.url), timeout=0.3, max_body=100, now=timezone.now())
    assert answer.error.startswith("timeout") and answer.retryable


def test_the_async_call_fans_out_with_each_its_own_outcome(settings, server):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    server.answer(200, b'{"bid": 12.5}', **{"Content-Type": "application/json"})

    async def run():
        async with pinned_session(ssl.create_default_context()) as client:
            now = timezone.now()
            return await asyncio.gather(
                safe_call_async(
                    client, Request("GET", server.url + "/a"), timeout=1, max_body=100, now=now
                ),
                safe_call_async(
                    client, Request("GET", "http://256.1.1.1/"), timeout=1, max_body=100, now=now
                ),
            )

    ok, bad = asyncio.run(run())
    assert ok.ok and ok.body == '{"bid": 12.5}'
    assert bad.error and not bad.ok


def test_the_async_call_refuses_local_names_and_addresses_before_connecting(settings, server):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    port = server.server.server_address[1]

    async def run(url):
        async with pinned_session(ssl.create_default_context()) as session:
            return await safe_call_async(
                session, Request("GET", url), timeout=1, max_body=100, now=timezone.now()
            )

    for url in (f"http://localhost:{port}/", f"http://127.0.0.1:{port}/", f"http://[::1]:{port}/"):
        answer = asyncio.run(run(url))
        assert answer.error.startswith("blocked_address"), url
        assert not answer.retryable
    assert server.requests == []


def test_the_resolver_pins_each_new_connection_to_the_checked_address(settings):
    async def resolve(host):
        return await PinnedResolver().resolve(host, 8080)

    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    with pytest.raises(BlockedAddress):
        asyncio.run(resolve("localhost"))
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    (result,) = asyncio.run(resolve("localhost"))
    assert result["hostname"] == "localhost" and result["port"] == 8080
    assert result["host"] in {"127.0.0.1", "::1"}


def test_the_async_call_follows_no_redirect_and_keeps_only_the_start(settings, server):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    server.answer(302, b"", Location="http://169.254.169.254/latest/meta-data/")
    server.answer(200, b"x" * 100_000)

    async def run():
        async with pinned_session(ssl.create_default_context()) as session:
            now = timezone.now()
            moved = await safe_call_async(
                session, Request("GET", server.url), timeout=2, max_body=100, now=now
            )
            big = await safe_call_async(
                session, Request("GET", server.url), timeout=2, max_body=100, now=now
            )
            return moved, big

    moved, big = asyncio.run(run())
    assert moved.error == "HTTP 302: redirects are not followed; use the final URL"
    assert big.ok and big.body == "x" * 100
    assert len(server.requests) == 2
