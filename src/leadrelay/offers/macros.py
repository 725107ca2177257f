"""Landing-URL macros: `{click_id}`, `{sub1}`…`{sub5}`, `{offer_id}`, `{affiliate_id}`.

Values are URL-encoded when substituted, so a sub id can't break out of its
query parameter or change the landing URL's host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

MACROS = frozenset({"click_id", "offer_id", "affiliate_id", "sub1", "sub2", "sub3", "sub4", "sub5"})
_MACRO_RE = re.compile(r"\{([a-z0-9_]+)\}")


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
    unknown = sorted(set(_MACRO_RE.findall(url)) - MACROS)
    if unknown:
        problems.append(f"Unknown macros: {', '.join(unknown)}.")
    return problems


def landing_url_render(template: str, values: Mapping[str, str | int | None]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in MACROS:
            return match.group(0)
        value = values.get(name)
        return quote("" if value is None else str(value), safe="")

    return _MACRO_RE.sub(substitute, template)
