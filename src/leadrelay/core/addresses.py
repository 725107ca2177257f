"""Who sent a request: the client's address, read safely behind trusted proxies.

The client IP is REMOTE_ADDR unless the request came through a configured
trusted proxy (`LEADRELAY_TRUSTED_PROXIES`, CIDRs); then X-Forwarded-For is
read from the right, skipping trusted proxies, so a client can't choose its
own IP by sending the header. It lives in core because the first thing a
request meets, its address's rate limit (core/ratelimit.py), needs it.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest


@lru_cache(maxsize=1)
def _trusted_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = getattr(settings, "LEADRELAY_TRUSTED_PROXIES", [])
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in raw)


def _is_trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(ip in network for network in _trusted_networks())


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The visitor's IP: REMOTE_ADDR, or the forwarded address if REMOTE_ADDR is a trusted proxy."""
    remote = _parse_ip(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return None
    if not _is_trusted(remote):
        return str(remote)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    # The rightmost hops were added by our proxies; the left end is whatever the client sent.
    for hop in reversed([h for h in forwarded.split(",") if h.strip()][-20:]):
        ip = _parse_ip(hop)
        if ip is None:
            break
        if not _is_trusted(ip):
            return str(ip)
    return str(remote)
