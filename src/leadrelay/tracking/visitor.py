"""What a click tells about its visitor: IP, country, device, OS, browser, bot or not.

The client IP is read by core/addresses.py (trusted proxies). User agents are
parsed by `ua-parser`, crawlers recognised by the `crawler-user-agents` pattern
list, countries looked up in an offline database (see geo.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache

import crawleruseragents
import ua_parser
from django.http import HttpRequest

from leadrelay.core.addresses import client_ip
from leadrelay.core.text import text_clean
from leadrelay.tracking.geo import country_for_ip

VISITOR_COOKIE = "lr_vid"
USER_AGENT_MAX = 512
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Tizen", "Symbian OS"}


@dataclass(frozen=True)
class Device:
    kind: str  # desktop, mobile, tablet, bot, unknown
    os: str
    browser: str
    is_bot: bool


@dataclass(frozen=True)
class VisitorFacts:
    ip: str | None
    user_agent: str
    referer: str
    visitor_id: str  # the first-party cookie's value; a new one on a first visit
    country: str
    device: Device

    @property
    def ip_ua_hash(self) -> str:
        """Who the visitor is when no cookie says so: a hash of IP and user agent."""
        return hashlib.sha256(f"{self.ip}|{self.user_agent}".encode()).hexdigest()[:32]


@lru_cache(maxsize=16384)
def device_for(user_agent: str) -> Device:
    """Device kind, OS and browser of a user agent; crawlers are kind "bot"."""
    if not user_agent:
        return Device("unknown", "", "", False)
    if crawleruseragents.is_crawler(user_agent):
        return Device("bot", "", "", True)
    parsed = ua_parser.parse(user_agent)
    os_family = parsed.os.family if parsed.os else ""
    browser = parsed.user_agent.family if parsed.user_agent else ""
    family = parsed.device.family if parsed.device else ""
    if family == "Spider":
        return Device("bot", os_family, browser, True)
    if (
        "iPad" in family
        or "Tablet" in user_agent
        or (os_family == "Android" and "Mobile" not in user_agent)
    ):
        kind = "tablet"
    elif os_family in _MOBILE_OS or "Mobile" in user_agent:
        kind = "mobile"
    elif os_family in {"Other", ""} and browser in {"Other", ""}:
        kind = "unknown"
    else:
        kind = "desktop"
    return Device(kind, os_family[:40], browser[:40], False)


def visitor_facts(request: HttpRequest) -> VisitorFacts:
    """The facts of this request; a visitor without our cookie gets a new visitor id."""
    ip = client_ip(request)
    # Headers kept as tracking data: cleaned, never refused (core/text.py).
    user_agent = text_clean(request.headers.get("User-Agent", ""))[:USER_AGENT_MAX]
    cookie = request.COOKIES.get(VISITOR_COOKIE, "")
    if not (cookie.isalnum() and len(cookie) == 32):
        cookie = secrets.token_hex(16)
    return VisitorFacts(
        ip=ip,
        user_agent=user_agent,
        referer=text_clean(request.headers.get("Referer", ""))[:1000],
        visitor_id=cookie,
        country=country_for_ip(ip),
        device=device_for(user_agent),
    )
