"""Validating and normalizing a lead's fields against its offer's schema.

Each field type has one cleaner that returns the stored form of the value or
raises FieldProblem. The stored forms are what dedupe and buyers see: E.164
phones, normalized emails, ISO country codes, ISO dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email

from leadrelay.core.errors import Problem
from leadrelay.leads.postal import postal_code_normalize
from leadrelay.offers.models import FieldType, OfferField

MAX_FIELDS = 100
_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


class FieldProblem(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CleanContext:
    default_region: str
    country: str  # the lead's country field if it has one, else the offer's region


def _text(value: Any, field: OfferField) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldProblem("invalid_type", "Expected text.")
    text = " ".join(str(value).split())
    if len(text) > field.max_length:
        raise FieldProblem("too_long", f"At most {field.max_length} characters.")
    return text


def _email(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field)
    try:
        # No DNS in the request path: deliverability is a later, asynchronous concern.
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldProblem("invalid_email", str(exc)) from None
    return result.normalized


def _phone(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field)
    try:
        number = phonenumbers.parse(text, ctx.default_region)
    except phonenumbers.NumberParseException:
        raise FieldProblem("invalid_phone", "This is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldProblem("invalid_phone", "This phone number does not exist.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _plain(value: Any, field: OfferField, ctx: CleanContext) -> str:
    return _text(value, field)


def _number(value: Any, field: OfferField, ctx: CleanContext) -> int | str:
    if isinstance(value, bool):
        raise FieldProblem("invalid_number", "Expected a number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise FieldProblem("invalid_number", "Expected a number.") from None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 15:
        raise FieldProblem("invalid_number", "Expected a finite number below 10^15.")
    if number == number.to_integral_value():
        return int(number)
    return str(number.normalize())


def _choice(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field)
    if text not in field.choices:
        raise FieldProblem("invalid_choice", f"Choose one of: {', '.join(field.choices)}.")
    return text


def _date(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field)
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise FieldProblem("invalid_date", "Expected a date as YYYY-MM-DD.") from None


def _boolean(value: Any, field: OfferField, ctx: CleanContext) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FieldProblem("invalid_boolean", "Expected true or false.")


def _country(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field).upper()
    country = None
    if len(text) == 2:
        country = pycountry.countries.get(alpha_2=text)
    elif len(text) == 3:
        country = pycountry.countries.get(alpha_3=text)
    if country is None:
        raise FieldProblem("invalid_country", "Expected an ISO 3166 country code, such as US.")
    return str(country.alpha_2)


def _postal_code(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field)
    normalized = postal_code_normalize(text, ctx.country)
    if normalized is None:
        raise FieldProblem(
            "invalid_postal_code", f"This is not a postal code of {ctx.country or 'a country'}."
        )
    return normalized


def _subdivision(value: Any, field: OfferField, ctx: CleanContext) -> str:
    text = _text(value, field).upper().replace("_", "-")
    if "-" not in text and ctx.country:
        text = f"{ctx.country}-{text}"  # "CA" in the US means California
    subdivision = pycountry.subdivisions.get(code=text)
    if subdivision is None:
        raise FieldProblem("invalid_subdivision", "Expected a region code, such as US-CA.")
    if ctx.country and not text.startswith(ctx.country + "-"):
        raise FieldProblem("subdivision_country_mismatch", f"This region is not in {ctx.country}.")
    return text


_CLEANERS: dict[str, Callable[[Any, OfferField, CleanContext], Any]] = {
    FieldType.EMAIL: _email,
    FieldType.PHONE: _phone,
    FieldType.TEXT: _plain,
    FieldType.NUMBER: _number,
    FieldType.CHOICE: _choice,
    FieldType.DATE: _date,
    FieldType.BOOLEAN: _boolean,
    FieldType.COUNTRY: _country,
    FieldType.POSTAL_CODE: _postal_code,
    FieldType.SUBDIVISION: _subdivision,
}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def lead_fields_clean(
    *, schema: Iterable[OfferField], raw: Mapping[str, Any], default_region: str
) -> tuple[dict[str, Any], list[Problem]]:
    """The cleaned fields and every problem found, each with its path `fields.<key>`."""
    fields = list(schema)
    problems: list[Problem] = []
    if len(raw) > MAX_FIELDS:
        return {}, [Problem("too_many_fields", f"At most {MAX_FIELDS} fields.", "fields")]
    known = {f.key for f in fields}
    for key in raw:
        if key not in known:
            shown = str(key)[:64]
            problems.append(
                Problem("unknown_field", "This offer has no such field.", f"fields.{shown}")
            )
    cleaned: dict[str, Any] = {}
    # Countries first: postal codes and regions are checked against the lead's country.
    fields.sort(key=lambda f: f.type != FieldType.COUNTRY)
    country = default_region
    for field in fields:
        ctx = CleanContext(default_region=default_region, country=country)
        value = raw.get(field.key)
        if _is_empty(value):
            # A boolean's "no" arrives as an absent checkbox: required means "must be ticked".
            if field.required:
                problems.append(
                    Problem("required", f"{field.label} is required.", f"fields.{field.key}")
                )
            continue
        try:
            cleaned[field.key] = _CLEANERS[field.type](value, field, ctx)
        except FieldProblem as problem:
            problems.append(Problem(problem.code, problem.message, f"fields.{field.key}"))
            continue
        if field.type == FieldType.COUNTRY:
            country = cleaned[field.key]
        if field.type == FieldType.BOOLEAN and field.required and cleaned[field.key] is False:
            problems.append(
                Problem("required", f"{field.label} must be accepted.", f"fields.{field.key}")
            )
    return cleaned, problems
