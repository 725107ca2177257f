"""The ranges every number and date that comes in must fall in, defined once.

A value its column can't hold fails in the database, and differently in each: SQLite
raises OverflowError beyond 2**63, PostgreSQL a DataError beyond its column's type, and
Django turns an out-of-range lookup into EmptyResultSet; a date near year 1 or 9999
overflows the first time a day is added to it. Each is a 500. So the edges check first:
the API's schemas use the types here (pydantic `Field(ge=…, le=…)`, which the OpenAPI
document shows as minimum and maximum, for people and fuzzers), the pages' forms and
the services behind them compare with the same constants, and ids in URLs go through
`IdConverter`, so an id no row can have is a 404.

The ranges are the columns' (ids are `BigAutoField`s; counts `PositiveIntegerField`s)
unless a business bound is tighter: an amount of money is at most `MINOR_MAX` minor
units, so that sums of many stay far below 2**63; days are from 2000 to 2100.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from pydantic import Field

ID_MAX = 2**63 - 1  # BigAutoField, BigIntegerField
INT32_MAX = 2**31 - 1  # IntegerField, PositiveIntegerField
MINOR_MAX = 10**12  # ten billion dollars in cents: a million such sums still fit in 2**63
DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)
DAY_MESSAGE = f"A day from {DATE_MIN} to {DATE_MAX}."
DATETIME_MIN = dt.datetime.combine(DATE_MIN, dt.time.min, tzinfo=dt.UTC)
DATETIME_END = dt.datetime.combine(DATE_MAX + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)

# An id of a row: path, query and body ids alike.
Id = Annotated[int, Field(ge=1, le=ID_MAX)]
# An amount of money in minor units that can't be negative (prices, payouts, limits).
MinorUnits = Annotated[int, Field(ge=0, le=MINOR_MAX)]
# A whole number of at least one that a PositiveIntegerField holds (priorities, weights).
PositiveCount = Annotated[int, Field(ge=1, le=INT32_MAX)]
# A day. JSON Schema has no bounds for a date string: formatMinimum and formatMaximum are
# the keywords validators that know them use (ajv-formats), and the description says it.
Day = Annotated[
    dt.date,
    Field(
        ge=DATE_MIN,
        le=DATE_MAX,
        description=DAY_MESSAGE,
        json_schema_extra={
            "formatMinimum": DATE_MIN.isoformat(),
            "formatMaximum": DATE_MAX.isoformat(),
        },
    ),
]
# An instant within those days (a time without an offset is compared as UTC).
Instant = Annotated[
    dt.datetime,
    Field(
        ge=DATETIME_MIN,
        lt=DATETIME_END,
        description=f"A time from {DATE_MIN} to {DATE_MAX}.",
        json_schema_extra={
            "formatMinimum": DATETIME_MIN.isoformat(),
            "formatExclusiveMaximum": DATETIME_END.isoformat(),
        },
    ),
]


def id_parse(text: object) -> int | None:
    """An id typed or posted as text (`"42"`), or None when it is not one any row can have
    (not ASCII digits, 0, beyond int64). Never raises."""
    value = str(text)
    if not (0 < len(value) <= 19 and value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 1 <= number <= ID_MAX else None


class IdConverter:
    """`<id:name>` in a URL: 1 to 19 digits, up to 2**63 - 1. Anything else does not match,
    so the page is a 404 before a view looks anything up (Django's `<int:…>` takes any
    length, and a 20-digit id overflows the lookup)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = id_parse(value)
        if number is None:
            raise ValueError(value)  # Django's "no match"
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def day_validators() -> list[MinValueValidator | MaxValueValidator]:
    return [MinValueValidator(DATE_MIN, DAY_MESSAGE), MaxValueValidator(DATE_MAX, DAY_MESSAGE)]


class DayField(forms.DateField):
    """A form's day, from DATE_MIN to DATE_MAX, picked with the browser's date input."""

    def __init__(self, **kwargs: object) -> None:
        attrs = {"type": "date", "min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()}
        kwargs.setdefault("widget", forms.DateInput(attrs=attrs))
        kwargs.setdefault("validators", day_validators())
        super().__init__(**kwargs)  # type: ignore[arg-type]


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """Rows picked by id from a list. An id no row can have is refused as one not offered,
    before the `pk__in` lookup it would overflow (SQLite raises; Django's own check only
    catches the single-row lookups)."""

    def clean(self, value: Any) -> Any:
        for pk in value if isinstance(value, list | tuple) else ():
            if id_parse(pk) is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        return super().clean(value)
