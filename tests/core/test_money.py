import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.core.money import Money, bp_format, currency_is_valid, money_format, ratio_bp


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1234, "USD", "USD 12.34"),
        (-5, "EUR", "EUR -0.05"),
        (123456789, "USD", "USD 1,234,567.89"),
        (1500, "JPY", "JPY 1,500"),
        (1234, "KWD", "KWD 1.234"),
        (0, "USD", "USD 0.00"),
    ],
)
def test_money_format(amount: int, currency: str, text: str) -> None:
    assert money_format(amount, currency) == text


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        Money(12.5, "USD")  # type: ignore[arg-type]


def test_currency_codes() -> None:
    assert currency_is_valid("USD")
    assert not currency_is_valid("usd")
    assert not currency_is_valid("XXY")


def test_rates_in_basis_points() -> None:
    assert ratio_bp(1, 3) == 3333
    assert ratio_bp(2, 3) == 6667
    assert ratio_bp(0, 0) is None
    assert bp_format(3333) == "33.33%"
    assert bp_format(None) == "–"


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_ratio_is_the_rounded_exact_fraction(n: int, d: int) -> None:
    exact_times_2 = n * 20000
    bp = ratio_bp(n, d)
    assert bp is not None
    # |bp - n*10000/d| <= 1/2, computed without floats
    assert abs(bp * 2 * d - exact_times_2) <= d
