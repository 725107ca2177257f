"""Calling URLs that users gave us (affiliate postbacks, buyer endpoints) without being
turned against our own network.

A URL is refused when it is saved and again when it is called (a row saved before a
rule tightened is caught when sent) unless its host passes two rules, read on the host
lower-cased, with IDNA's other full stops (U+3002, U+FF0E, U+FF61) as dots and trailing
dots dropped (`localhost.` is `localhost`):

- **Address rule**: the host, and every address a name resolves to, is a public
  address: not loopback, private, link-local (cloud metadata), CGNAT, multicast or
  reserved, in IPv4 or IPv6 (`ipaddress` also reads the decimal, octal and hex
  spellings of IPv4 that `getaddrinfo` accepts, since the check runs on what the
  resolver returns). An IPv6 address that carries an IPv4 one (IPv4-mapped
  `::ffff:0:0/96`, IPv4-compatible `::/96`, IPv4-translated `::ffff:0:0:0/96`, NAT64
  `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32`, whose client address is
  XOR-ed) is as public as the IPv4 it carries, whatever `is_global` says: on a NAT64
  network `64:ff9b::a9fe:a9fe` reaches 169.254.169.254, while `64:ff9b::808:808`
  (DNS64's answer for a public IPv4-only name) reaches 8.8.8.8 and is allowed. The
  NAT64 local-use prefix `64:ff9b:1::/48` puts the IPv4 where its operator's prefix
  length says (RFC 6052), which we can't know: it is refused.
- **Name rule**: a name is a public DNS name: at least two labels, a top-level label
  that begins with a letter (all-number labels are IPv4 spellings to the resolver,
  `2130706433`, `0x7f.1`), and not under a suffix that by standard or convention
  names hosts inside a network (`_PRIVATE_TLDS`: `localhost`, mDNS `.local`,
  `.internal`, `.arpa` with `.home.arpa`, `.test` (which development tools point at
  127.0.0.1), and the never-delegated home and office names RFC 6762 lists as in
  use, `.lan`, `.home`, `.corp`, `.intranet`, `.private`). Such a name resolves, if at
  all, through a local resolver to an inside address; refusing it on sight means the
  answer of whatever resolver is asked does not matter, and the form says so at once.
  Names that resolve nowhere (`.example`, `.invalid`) are left to the resolver: they
  reach nothing, and our tests use `.example` as the public name it stands for.

At call time the name is resolved once, every address is checked, and the
connection is pinned to the first one (Host header and TLS SNI keep the
name), so a DNS answer that changes between check and connect can't slip
through. Redirects are never followed; only the first `max_body` bytes of an
answer are read, within the timeout. `LEADRELAY_ALLOW_PRIVATE_URLS` lifts both
rules, for tests and development only: the name rule exists only because those
names lead inside, and a developer's stub buyer is `localhost` or `buyer.local`.

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
# IPv6 ranges that carry an IPv4 address in their last 32 bits (the others, IPv4-mapped,
# 6to4 and Teredo, `ipaddress` decodes itself).
_IPV4_IN_LAST_32_BITS = (
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible, deprecated (RFC 4291): ::a.b.c.d
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64 well-known prefix (RFC 6052)
)
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215; IPv4 anywhere in it
# Top-level labels that never reach the public internet (see the module docstring).
_PRIVATE_TLDS = frozenset(
    {"localhost", "local", "internal", "arpa", "test", "lan", "home", "corp", "intranet",
     "private"}
)  # fmt: skip
# The dots IDNA reads as label separators; the resolver turns them into ".".
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def ipv4_carried(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...] | None:
    """The IPv4 addresses an IPv6 address carries (and reaches through a translator or a
    tunnel); None when it carries none, () when it carries one where we can't read it."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo  # (server, client), the client's address un-XOR-ed
    if address in _NAT64_LOCAL_USE:
        return ()
    if any(address in network for network in _IPV4_IN_LAST_32_BITS):
        return (ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF),)
    return None


def address_is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved,
    and for an IPv6 address that carries an IPv4 address that is not public."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = ipv4_carried(address)
        if carried is not None:
            return bool(carried) and all(map(address_is_public, carried))
        return address.is_global and not address.is_multicast and not address.is_reserved
    if address in _CGNAT:
        return False
    return address.is_global and not address.is_multicast


def host_normal(host: str) -> str:
    """A host as the rules read it: lower case, IDNA dots as dots, no brackets, no
    trailing dots (`LocalHost.` is `localhost`)."""
    return host.translate(_IDNA_DOTS).strip("[]").rstrip(".").lower()


def name_is_public(name: str) -> bool:
    """Whether a host name (normalised, not an address) can be a public DNS name: two
    labels or more, none empty, the last beginning with a letter and not a private one."""
    labels = name.split(".")
    if len(labels) < 2 or not all(labels):
        return False
    return labels[-1][0].isalpha() and labels[-1] not in _PRIVATE_TLDS


def _info_address(info: tuple[Any, ...]) -> IPAddress:
    return ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])


def _literal(host: str) -> IPAddress | None:
    """The address a host names when it is one (`203.0.113.7`, `::1`), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class BlockedAddress(Exception):
    """The host is, or resolved to, an address (or is a name) we may not call."""


def _host_checked(host: str) -> IPAddress | None:
    """The rules that need no resolver, as at call time: raises BlockedAddress for an
    address that is not public or a name that is not a public DNS name; the address
    when the host is one (it needs no resolver), else None."""
    normal = host_normal(host)
    literal = _literal(normal)
    if settings.LEADRELAY_ALLOW_PRIVATE_URLS:
        return literal
    public = address_is_public(literal) if literal is not None else name_is_public(normal)
    if not public:
        raise BlockedAddress(host)
    return literal


def host_problem(host: str, field: str) -> Problem | None:
    """Why a host is refused when a URL is saved; None when it is allowed (or can't be
    resolved now: it is checked again when called)."""
    refused = Problem(
        "url_private_host",
        "The host must be a public name or address, not a local, private or metadata one.",
        field,
    )
    try:
        literal = _host_checked(host)
    except BlockedAddress:
        return refused
    if literal is not None or settings.LEADRELAY_ALLOW_PRIVATE_URLS:
        return None
    try:
        infos = socket.getaddrinfo(host_normal(host), None, type=socket.SOCK_STREAM)
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


def _checked(host: str, addresses: list[IPAddress]) -> str:
    if not addresses:
        raise socket.gaierror(f"{host} has no address")
    if not settings.LEADRELAY_ALLOW_PRIVATE_URLS and not all(map(address_is_public, addresses)):
        raise BlockedAddress(host)
    return str(addresses[0])


def pinned_address(host: str, port: int) -> str:
    """Resolve once; refuse if any address is not public (unless allowed); use the first.
    An address needs no resolver; a name the name rule refuses is not resolved."""
    if (literal := _host_checked(host)) is not None:
        return str(literal)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _checked(host, [_info_address(info) for info in infos])


async def pinned_address_async(host: str, port: int) -> str:
    if (literal := _host_checked(host)) is not None:  # no trip through the resolver's threads
        return str(literal)
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
            error=(
                "blocked_address: the host is or resolves to a local, private or metadata address"
            ),
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
        # A literal never reaches the resolver; a refused name is refused before a kept
        # connection to it could be reused.
        _host_checked(parts.hostname or "")
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
