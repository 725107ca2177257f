"""Calls to user-given URLs: addresses refused in every spelling, pinning, no redirects,
bounded bodies and time, and the async variant used for fan-out."""

import asyncio
import ipaddress
import socket
import ssl

import pytest
from django.utils import timezone

from leadrelay.core.outbound import (
    BlockedAddress,
    PinnedResolver,
    Request,
    address_is_public,
    host_problem,
    pinned_address,
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


# IPv6 addresses that carry an IPv4 address reach it (through a NAT64 gateway, a 6to4 or
# Teredo relay, a dual stack): each is as public as the IPv4 it carries, not as
# `ipaddress.is_global` says.
CARRYING_INSIDE = [
    "::127.0.0.1",  # IPv4-compatible, the deprecated ::a.b.c.d
    "::ffff:0:a9fe:a9fe",  # IPv4-translated (SIIT) → 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 → 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 → 169.254.169.254, the cloud metadata
    "64:ff9b:1::808:808",  # NAT64 local use: where the IPv4 sits is the operator's choice
    "2002:7f00:1::",  # 6to4 → 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 → 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1 (XOR-ed)
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45 (documentation)
]
CARRYING_PUBLIC = [
    "64:ff9b::808:808",  # NAT64 → 8.8.8.8: DNS64's answer for an IPv4-only public name
    "2002:808:808::1",  # 6to4 → 8.8.8.8
    "::ffff:8.8.8.8",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
]
# Refused by name, whatever a resolver answers for them.
PRIVATE_NAMES = [
    "localhost.",
    "LocalHost..",
    "api.localhost.",
    "api\u3002localhost",  # an IDNA full stop is a dot to the resolver
    "intranet",  # one label: the resolver's search domains decide
    "printer.local",
    "metadata.google.internal",
    "router.home.arpa",
    "nas.lan",
    "buyer.test",
    "0x7f.1",  # an IPv4 spelling to the resolver
]


def _host(host):
    return f"[{host}]" if ":" in host else host


@pytest.fixture
def public_dns(monkeypatch):
    """A resolver (outside the project) that answers 93.184.215.14, or what `answers` says,
    for every name; the asyncio loop's resolver calls it too."""
    answers = {}

    def getaddrinfo(host, port, *args, **kwargs):
        address = answers.get(host, "93.184.215.14")
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 0, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _call_async(url):
    async def run():
        async with pinned_session(ssl.create_default_context()) as session:
            return await safe_call_async(
                session, Request("GET", url), timeout=1, max_body=100, now=timezone.now()
            )

    return asyncio.run(run())


def _resolve(host):
    async def run():
        return await PinnedResolver().resolve(host, 8080)

    return asyncio.run(run())


@pytest.mark.parametrize("address", CARRYING_INSIDE)
def test_an_ipv6_address_carrying_an_inside_ipv4_is_refused_when_saved_and_called(
    settings, server, address
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    assert not address_is_public(ipaddress.ip_address(address))
    problems, host = url_shape_problems(f"http://[{address}]/pb", "url", 2000)
    assert problems == []
    problem = host_problem(host, "url")
    assert (problem.code, problem.field) == ("url_private_host", "url")

    port = server.server.server_address[1]
    url = f"http://[{address}]:{port}/"
    answer = safe_call(Request("GET", url), timeout=1, max_body=100, now=timezone.now())
    assert answer.error == (
        "blocked_address: the host is or resolves to a local, private or metadata address"
    )
    assert not answer.retryable
    assert _call_async(url).error.startswith("blocked_address")
    with pytest.raises(BlockedAddress):
        _resolve(address)
    assert server.requests == []


@pytest.mark.parametrize("address", CARRYING_PUBLIC)
def test_an_ipv6_address_carrying_a_public_ipv4_is_allowed(settings, address):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    assert address_is_public(ipaddress.ip_address(address))
    _, host = url_shape_problems(f"https://[{address}]/pb", "url", 2000)
    assert host_problem(host, "url") is None
    pinned = str(ipaddress.ip_address(address))
    assert pinned_address(address, 443) == pinned  # no resolver asked
    (result,) = _resolve(address)
    assert (result["host"], result["family"]) == (pinned, socket.AF_INET6)


def test_reserved_ipv6_outside_global_unicast_is_not_public():
    assert not address_is_public(ipaddress.ip_address("::1:0:0:0"))
    assert not address_is_public(ipaddress.ip_address("4000::1"))


@pytest.mark.parametrize("name", PRIVATE_NAMES)
def test_a_name_that_is_not_a_public_dns_name_is_refused_when_saved_and_called(
    settings, public_dns, name
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    problems, host = url_shape_problems(f"https://{name}/pb", "url", 2000)
    assert problems == []
    problem = host_problem(host, "url")
    assert (problem.code, problem.field) == ("url_private_host", "url")

    # The resolver says public, so the address rule alone would let these through.
    url = f"http://{name}:9/"
    answer = safe_call(Request("GET", url), timeout=1, max_body=100, now=timezone.now())
    assert answer.error.startswith("blocked_address") and not answer.retryable
    assert _call_async(url).error.startswith("blocked_address")
    with pytest.raises(BlockedAddress):
        _resolve(name)
    with pytest.raises(BlockedAddress):
        pinned_address(name, 443)


@pytest.mark.parametrize(
    "name", ["buyer.example.com", "Buyer.Example.COM.", "xn--e1afmkfd.xn--p1ai", "postback.example"]
)
def test_a_public_name_is_allowed_and_pinned_to_its_address(settings, public_dns, name):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    _, host = url_shape_problems(f"https://{name}/pb", "url", 2000)
    assert host_problem(host, "url") is None
    assert pinned_address(name, 443) == "93.184.215.14"
    (result,) = _resolve(name)
    assert (result["hostname"], result["host"]) == (name, "93.184.215.14")


def test_a_public_name_that_resolves_to_a_nat64_metadata_address_is_refused(settings, public_dns):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    public_dns["buyer.example.com"] = "64:ff9b::a9fe:a9fe"
    problem = host_problem("buyer.example.com", "url")
    assert problem is not None and problem.code == "url_private_host"
    with pytest.raises(BlockedAddress):
        pinned_address("buyer.example.com", 443)
    with pytest.raises(BlockedAddress):
        _resolve("buyer.example.com")


def test_the_private_switch_lifts_the_name_rule_too(settings, public_dns):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    for name in ("localhost.", "printer.local", "intranet"):
        assert host_problem(name, "url") is None
        assert pinned_address(name, 80) == "93.184.215.14"
    assert host_problem("64:ff9b::a9fe:a9fe", "url") is None
