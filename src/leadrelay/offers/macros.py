"""Landing-URL macros and deep links.

Built-in macros: `{click_id}`, `{offer_id}`, `{affiliate_id}`, `{sub1}`…`{sub5}`,
`{country}`, `{device}`. Any other `{name}` takes the value of the click's
query parameter `name` (pass-through), or nothing. Values are URL-encoded when
substituted, so a visitor's parameter can't break out of its query parameter;
macros are not allowed in the host, so no value can change where a link goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlsplit

BUILTIN_MACROS = frozenset(
    {
        "click_id", "offer_id", "affiliate_id", "sub1", "sub2", "sub3", "sub4", "sub5",
        "country", "device",
    }
)  # fmt: skip
_MACRO_RE = re.compile(r"\{([a-zA-Z0-9_]{1,40})\}")
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE
)


def landing_url_problems(url: str) -> list[str]:
    """What is wrong with a landing URL template, as human sentences; empty if fine."""
    problems = []
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        problems.append("The landing URL must start with http:// or https://.")
    if not parts.hostname or "{" in (parts.netloc or ""):
        problems.append("The landing URL needs a fixed host name (no macros in the host).")
    if parts.username or parts.password:
        problems.append("The landing URL must not carry a user name or password.")
    if re.search(r"\{(?![a-zA-Z0-9_]{1,40}\})", url):
        problems.append("A macro is a name of letters, digits and _ in braces, like {sub1}.")
    return problems


def landing_url_render(template: str, values: Mapping[str, str | int | None]) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return quote("" if value is None else str(value), safe="")

    return _MACRO_RE.sub(substitute, template)


def deeplink_domains_problems(domains: Sequence[str]) -> list[str]:
    return [
        f"{domain!r} is not a domain name like shop.example.com."
        for domain in domains
        if not isinstance(domain, str) or not _DOMAIN_RE.match(domain)
    ]


def deeplink_allowed(url: str, domains: Sequence[str]) -> bool:
    """True when `url` is http(s), carries no credentials and its host is on the allow-list."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        port_ok = parts.port is None or parts.port in (80, 443)
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or parts.username or parts.password or not port_ok:
        return False
    if not _DOMAIN_RE.match(host):
        return False  # a host name, nothing else: no backslashes, escapes or addresses
    return any(host == d or host.endswith("." + d) for d in (x.lower() for x in domains))
