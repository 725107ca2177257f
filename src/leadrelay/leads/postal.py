"""Postal codes checked and written the way each country writes them.

Patterns for the countries leads come from most; any other country gets the
generic check (letters, digits, spaces and hyphens, 2 to 10 characters).
Written by hand: the maintained libraries found cover one country each
(`zipcodes` for the US) or need network lookups.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_RULES: dict[str, _Rule] = {
    "US": (
        re.compile(r"^(\d{5})(?:[ -]?(\d{4}))?$"),
        lambda m: m[1] + (f"-{m[2]}" if m[2] else ""),
    ),
    "CA": (re.compile(r"^([A-Z]\d[A-Z]) ?(\d[A-Z]\d)$"), lambda m: f"{m[1]} {m[2]}"),
    "GB": (
        re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})$"),
        lambda m: f"{m[1]} {m[2]}",
    ),
    "NL": (re.compile(r"^(\d{4}) ?([A-Z]{2})$"), lambda m: f"{m[1]} {m[2]}"),
    "BR": (re.compile(r"^(\d{5})-?(\d{3})$"), lambda m: f"{m[1]}-{m[2]}"),
    "JP": (re.compile(r"^(\d{3})-?(\d{4})$"), lambda m: f"{m[1]}-{m[2]}"),
    "PL": (re.compile(r"^(\d{2})-?(\d{3})$"), lambda m: f"{m[1]}-{m[2]}"),
    "PT": (re.compile(r"^(\d{4})-?(\d{3})$"), lambda m: f"{m[1]}-{m[2]}"),
    "IE": (re.compile(r"^([A-Z\d]{3}) ?([A-Z\d]{4})$"), lambda m: f"{m[1]} {m[2]}"),
}
_DIGITS = {"DE": 5, "FR": 5, "IT": 5, "ES": 5, "MX": 5, "AU": 4, "AT": 4, "BE": 4, "CH": 4,
           "DK": 4, "NO": 4, "IN": 6, "SE": 5, "FI": 5}  # fmt: skip
for _country, _n in _DIGITS.items():
    _RULES[_country] = (re.compile(rf"^(\d{{{_n}}})$"), lambda m: m[1])
_GENERIC = re.compile(r"^[A-Z0-9][A-Z0-9 \-]{1,9}$")


def postal_code_normalize(value: str, country: str) -> str | None:
    """The code as `country` writes it, or None when it is not one of that country's."""
    text = " ".join(value.upper().split())
    if country == "SE":
        text = text.replace(" ", "")
    rule = _RULES.get(country)
    if rule is None:
        return text if _GENERIC.match(text) else None
    pattern, render = rule
    match = pattern.match(text)
    return render(match) if match else None
