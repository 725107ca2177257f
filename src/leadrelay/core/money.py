"""Money is integer minor units plus an ISO 4217 currency code. No floats."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pycountry

from leadrelay.core.bounds import MINOR_MAX

# Minor-unit exponents that differ from 2 (ISO 4217). pycountry has no exponent data.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


def currency_is_valid(code: str) -> bool:
    return len(code) == 3 and code.isupper() and pycountry.currencies.get(alpha_3=code) is not None


def currency_exponent(code: str) -> int:
    return _EXPONENTS.get(code, 2)


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("amount_minor must be an int")

    def format(self) -> str:
        return money_format(self.amount_minor, self.currency)


def money_format(amount_minor: int, currency: str) -> str:
    """`1234, "USD"` → `"USD 12.34"`; exact, by integer arithmetic."""
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10**exponent)
    if exponent == 0:
        return f"{currency} {sign}{units:,}"
    return f"{currency} {sign}{units:,}.{minor:0{exponent}d}"


def money_decimal(amount_minor: int, currency: str) -> str:
    """`1800, "USD"` → `"18.00"`; `500, "JPY"` → `"500"`: a plain decimal for machines."""
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    units, minor = divmod(abs(amount_minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{units}"
    return f"{sign}{units}.{minor:0{exponent}d}"


def money_parse(text: str, currency: str) -> int:
    """`"12.50", "USD"` → `1250`. Raises ValueError (its message says why) for anything
    that is not a non-negative amount with at most the currency's decimals, of at most
    MINOR_MAX minor units (core/bounds.py)."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("not a number") from None
    # Checked before scaling: a huge exponent ("1e999999") is cheap to compare, not to scale.
    if not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 13:
        raise ValueError("out of range")
    minor = amount.scaleb(currency_exponent(currency))
    if minor > MINOR_MAX:
        raise ValueError("out of range")
    if minor != minor.to_integral_value():
        raise ValueError(f"more decimals than {currency} has")
    return int(minor)


def ratio_bp(numerator: int, denominator: int) -> int | None:
    """A rate in basis points (1/100 of a percent), rounded half up; None when undefined."""
    if denominator <= 0:
        return None
    return (numerator * 10_000 * 2 + denominator) // (denominator * 2)


def bp_format(bp: int | None) -> str:
    if bp is None:
        return "–"
    return f"{bp // 100}.{bp % 100:02d}%"
