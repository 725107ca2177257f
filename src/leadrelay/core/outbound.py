"""Calling URLs that users gave us (affiliate postbacks, buyer endpoints) without being
turned against our own network.

A URL is refused when it is saved and again when it is called if its host is
or resolves to a loopback, private, link-local (cloud metadata), CGNAT,
multicast or reserved address, in IPv4, IPv6 or IPv4-mapped IPv6 form
(`ipaddress` also reads the decimal, octal and hex spellings of IPv4 that
`getaddrinfo` accepts, since the check runs on what the resolver returns).
At call time the name is resolved once, every address is checked, and the
connection is pinned to the first one (Host header and TLS SNI keep the
name), so a DNS answer that changes between check and connect can't slip
through. Redirects are never followed; only the first `max_body` bytes of an
answer are read, within the timeout. `LEADRELAY_ALLOW_PRIVATE_URLS` lifts the
address rule for tests and development only.

Two transports. `safe_call` (postbacks, deliveries: one call at a time) uses
httpx with the URL's host replaced by the checked address. `safe_call_async`
(ping-post fan-out: thousands of pings a second from one process) uses an
aiohttp session that lives as long as the process and keeps connections
alive between auctions; there the check sits in the session's resolver
(`PinnedResolver`), so a new connection goes to the one address that was
checked, the URL keeps its name (Host, SNI and the certificate check are the
name's), and a kept connection is only reused for the same host name and
port. aiohttp spends about half the CPU per ping of httpx (measured in
bench/pingpost.py, see docs/architecture.md).

No library does this check-and-pin for httpx, hence this module.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

from leadrelay.core.errors import Problem

# The CGNAT range is not "private" to every Python version; name it so it is refused.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return False
    return address.is_global and not address.is_multicast


def _info_address(info: tuple[Any, ...]) -> IPAddress:
    return ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])


def _literal(host: str) -> IPAddress | None:
    """The address a host names when it is one (`203.0.113.7`, `::1`), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def host_problem(host: str, field: str) -> Problem | None:
    """Why a host is refused when a URL is saved; None when it is allowed (or can't be
    resolved now: it is checked again when called)."""
    if settings.LEADRELAY_ALLOW_PRIVATE_URLS:
        return None
    refused = Problem(
        "url_private_host",
        "The host must be a public address, not a local, private or metadata one.",
        field,
    )
    literal = _literal(host)
    if literal is not None:
        return None if address_is_public(literal) else refused
    if host == "localhost" or host.endswith((".localhost", ".internal")):
        return refused
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    if any(not address_is_public(_info_address(info)) for info in infos):
        return refused
    return None


def url_shape_problems(url: str, field: str, max_length: int) -> tuple[list[Problem], str]:
    """Scheme, length, characters, credentials: what is wrong with a URL's shape, and its
    host (empty when there is none). The host's address is checked by `host_problem`."""
    if not url:
        return [Problem("required", "Enter the URL to call.", field)], ""
    if len(url) > max_length:
        return [
            Problem("url_too_long", f"The URL is longer than {max_length} characters.", field)
        ], ""
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return [
            Problem("url_invalid", "The URL must not contain spaces or control characters.", field)
        ], ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return [Problem("url_invalid", "This is not a URL (check the host and port).", field)], ""
    problems = []
    if parts.scheme not in {"http", "https"}:
        problems.append(
            Problem("url_scheme", "The URL must start with http:// or https://.", field)
        )
    if not host or "{" in parts.netloc or "}" in parts.netloc:
        problems.append(
            Problem("url_host", "The URL needs a fixed host name (no macros in the host).", field)
        )
    if parts.username is not None or parts.password is not None:
        problems.append(
            Problem("url_credentials", "The URL must not carry a user name or password.", field)
        )
    if port == 0:
        problems.append(Problem("url_invalid", "Port 0 is not a port.", field))
    return problems, host


class BlockedAddress(Exception):
    """The host resolved to an address we may not call."""


def _checked(host: str, addresses: list[IPAddress]) -> str:
    if not addresses:
        raise socket.gaierror(f"{host} has no address")
    if not settings.LEADRELAY_ALLOW_PRIVATE_URLS and not all(map(address_is_public, addresses)):
        raise BlockedAddress(host)
    return str(addresses[0])


def pinned_address(host: str, port: int) -> str:
    """Resolve once; refuse if any address is not public (unless allowed); use the first.
    An address needs no resolver."""
    if (literal := _literal(host)) is not None:
        return _checked(host, [literal])
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _checked(host, [_info_address(info) for info in infos])


async def pinned_address_async(host: str, port: int) -> str:
    if (literal := _literal(host)) is not None:  # no trip through the resolver's threads
        return _checked(host, [literal])
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _checked(host, [_info_address(info) for info in infos])


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver for `pinned_session`: each new connection resolves the name once,
    is refused when any address is not public, and goes to the first address."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = await pinned_address_async(host, port)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def pinned_session(tls: ssl.SSLContext, max_connections: int = 4096) -> aiohttp.ClientSession:
    """A session for `safe_call_async`; create it inside the event loop that will use it.
    No cached DNS (each new connection is checked anew), no proxies or cookies from
    anywhere, no compression (a small compressed answer can't unpack into a huge one)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            resolver=PinnedResolver(),
            use_dns_cache=False,
            ssl=tls,
            limit=max_connections,
            keepalive_timeout=15,
        ),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("Accept-Encoding",),
    )


@dataclass(frozen=True)
class Answer:
    """What a call got: a status and the start of the body, or an error; never raised."""

    status_code: int | None = None
    error: str = ""
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    retryable: bool = False
    retry_after: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


RETRYABLE_STATUS = frozenset({408, 429})


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


def _prepare(request: Request, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    target = httpx.URL(request.url)
    extensions = (
        {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    )
    headers = {**request.headers, "Host": target.netloc.decode("ascii")}
    return target.copy_with(host=address), headers, extensions


def _port(target: httpx.URL) -> int:
    return target.port or (443 if target.scheme == "https" else 80)


def _finish(
    code: int, body: bytes, headers: Mapping[str, str], now: datetime, max_body: int, ms: int
) -> Answer:
    # Not final: a character cut in half at the limit is dropped, not shown as garbage.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(body[:max_body])
    kept = {k.lower(): v for k, v in headers.items() if k.lower() in {"content-type"}}
    if 200 <= code < 300:
        return Answer(status_code=code, body=text, headers=kept, duration_ms=ms)
    retryable = code in RETRYABLE_STATUS or code >= 500
    error = f"HTTP {code}"
    if 300 <= code < 400:
        error += ": redirects are not followed; use the final URL"
    return Answer(
        status_code=code,
        error=error,
        body=text,
        headers=kept,
        retryable=retryable,
        retry_after=retry_after_seconds(headers.get("Retry-After"), now) if retryable else None,
        duration_ms=ms,
    )


def _failure(exc: BaseException, timeout: float, ms: int) -> Answer:
    if isinstance(exc, BlockedAddress):
        return Answer(
            error="blocked_address: the host resolves to a local, private or metadata address",
            duration_ms=ms,
        )
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return Answer(
            error=f"timeout: no answer within {timeout:g} s", retryable=True, duration_ms=ms
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Answer(error=f"dns: {exc.os_error}", retryable=True, duration_ms=ms)
    if isinstance(exc, httpx.TransportError | aiohttp.ClientConnectionError):
        return Answer(
            error=f"connection: {type(exc).__name__}: {exc}", retryable=True, duration_ms=ms
        )
    if isinstance(exc, OSError):
        return Answer(error=f"dns: {exc}", retryable=True, duration_ms=ms)
    if isinstance(exc, httpx.InvalidURL | aiohttp.InvalidURL | ValueError | UnicodeError):
        return Answer(error=f"invalid_url: {exc}", duration_ms=ms)
    return Answer(error=f"http: {type(exc).__name__}: {exc}", duration_ms=ms)


def safe_call(request: Request, *, timeout: float, max_body: int, now: datetime) -> Answer:
    """One call, pinned to the checked address, no redirects; never raises for network
    trouble, and the whole call (connect, send, read) ends within `timeout`."""
    started = time.monotonic()
    try:
        target = httpx.URL(request.url)
        address = pinned_address(target.host, _port(target))
        url, headers, extensions = _prepare(request, address)
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                request.method, url, headers=headers, content=request.content, extensions=extensions
            ) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                # Only the start is kept; a slow endless body doesn't hold the worker.
                if len(body) >= max_body or time.monotonic() - started > timeout:
                    break
    except (
        BlockedAddress,
        httpx.HTTPError,
        httpx.InvalidURL,
        OSError,
        ValueError,
        UnicodeError,
    ) as exc:
        return _failure(exc, timeout, int((time.monotonic() - started) * 1000))
    ms = int((time.monotonic() - started) * 1000)
    return _finish(response.status_code, body, response.headers, now, max_body, ms)


async def safe_call_async(
    session: aiohttp.ClientSession,
    request: Request,
    *,
    timeout: float,
    max_body: int,
    now: datetime,
) -> Answer:
    """`safe_call` on a shared `pinned_session`, for fanning out to many buyers at once; the
    whole call (connect, send, read) ends within `timeout`."""
    started = time.monotonic()

    async def call() -> tuple[int, bytes, Any]:
        parts = urlsplit(request.url)
        if parts.scheme not in {"http", "https"}:
            raise ValueError(f"scheme {parts.scheme!r} is not http(s)")
        if (literal := _literal((parts.hostname or "").strip("[]"))) is not None:
            _checked(parts.hostname or "", [literal])  # a literal never reaches the resolver
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.content,
            allow_redirects=False,
        ) as response:
            body = b""
            while len(body) < max_body:
                chunk = await response.content.readany()
                if not chunk:
                    break
                body += chunk
            if not response.content.at_eof():
                response.close()  # the rest is never read: this connection can't be reused
            return response.status, body, response.headers

    try:
        code, body, headers = await asyncio.wait_for(call(), timeout)
    except (
        BlockedAddress,
        aiohttp.ClientError,
        OSError,
        ValueError,
        UnicodeError,
    ) as exc:
        return _failure(exc, timeout, int((time.monotonic() - started) * 1000))
    ms = int((time.monotonic() - started) * 1000)
    return _finish(code, body, headers, now, max_body, ms)
