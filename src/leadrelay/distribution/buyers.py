"""Buyer campaigns: set up, checked, with every problem named at once.

A buyer's request is built from its `field_map`: each of its field names maps to
a template of the lead's values, `{first_name}`, `{email}`, or the lead's own
`{lead_id}`, `{offer_id}`, `{sub1}`…`{sub5}`, `{country}`, `{price}`; a value
without braces is a static field sent as it is. Its URL is checked against the
address rules of core/outbound.py when saved and again when called.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import zoneinfo
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from email_validator import EmailNotValidError, validate_email

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.bounds import INT32_MAX, MINOR_MAX
from leadrelay.core.errors import Conflict, Invalid, NotFound, Problem
from leadrelay.core.money import currency_is_valid
from leadrelay.core.outbound import host_problem, url_shape_problems
from leadrelay.core.patterns import pattern_problem
from leadrelay.distribution.models import Buyer, BuyerCap, BuyerStatus, DeliveryMethod
from leadrelay.distribution.selectors import buyers_visible_to
from leadrelay.leads.rules import rules_problems
from leadrelay.offers.models import CapPeriod, FieldType, Offer, OfferField, Vertical
from leadrelay.offers.targeting import schedule_problems

LEAD_MACROS = frozenset(
    {"lead_id", "offer_id", "sub1", "sub2", "sub3", "sub4", "sub5", "country", "price", "ping_id"}
)
MACRO_RE = re.compile(r"\{([a-zA-Z0-9_]{1,64})\}")
_XML_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
JSON_PATH_RE = re.compile(r"^\$(\.[A-Za-z0-9_-]+|\[\d+\])+$")
URL_MAX = 2000
PING_TIMEOUT_MS = (50, 10_000)
RETURN_WINDOW_DAYS_MAX = 365
BP_MAX = 10_000
RESERVED_HEADERS = {
    "host",
    "content-length",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


class _AnyKey(set[str]):
    """The field names of a vertical no offer has yet: any name may come, so any passes."""

    def __contains__(self, key: object) -> bool:
        return True


def _field_keys(vertical: str, offers: list[Offer]) -> set[str]:
    """The lead fields a buyer may map and filter on: its offers', else its vertical's."""
    fields = (
        OfferField.objects.filter(offer__in=offers)
        if offers
        else OfferField.objects.filter(offer__vertical=vertical)
    )
    return set(fields.values_list("key", flat=True)) or _AnyKey()


def _map_problems(field_map: Any, method: str, known: set[str]) -> list[Problem]:
    if not isinstance(field_map, Mapping) or not field_map:
        return [Problem("field_map_required", "Map at least one of your fields.", "field_map")]
    problems = []
    for name, template in field_map.items():
        where = f"field_map.{name}"
        if not isinstance(name, str) or not name or len(name) > 64:
            problems.append(Problem("invalid_field_name", "1 to 64 characters.", "field_map"))
            continue
        if method == DeliveryMethod.POST_XML and not _XML_NAME_RE.match(name):
            problems.append(
                Problem("invalid_xml_name", "An XML element name: letters, digits, _ . -", where)
            )
        if not isinstance(template, str) or len(template) > 500:
            problems.append(Problem("invalid_template", "Text of up to 500 characters.", where))
            continue
        unknown = sorted(m for m in set(MACRO_RE.findall(template)) - LEAD_MACROS if m not in known)
        if unknown:
            problems.append(
                Problem(
                    "unknown_macro",
                    f"Unknown field {', '.join('{' + u + '}' for u in unknown)}.",
                    where,
                )
            )
    return problems


def _headers_problems(headers: Any) -> list[Problem]:
    if not isinstance(headers, Mapping):
        return [Problem("invalid_headers", "Header names to values.", "headers")]
    problems = []
    for name, value in headers.items():
        if (
            not isinstance(name, str)
            or not _HEADER_NAME_RE.match(name)
            or name.lower() in RESERVED_HEADERS
        ):
            problems.append(Problem("invalid_header", f"{name!r} can't be set.", "headers"))
        elif not isinstance(value, str) or len(value) > 1000 or "\r" in value or "\n" in value:
            problems.append(
                Problem("invalid_header", "Values are one line of text.", f"headers.{name}")
            )
    return problems


def _response_rule_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for key in ("accept_json_path", "lead_id_json_path", "price_json_path"):
        path = data.get(key) or ""
        if path and not JSON_PATH_RE.match(path):
            problems.append(
                Problem("invalid_json_path", "A path such as $.result.status or $.ids[0].", key)
            )
    pattern = data.get("accept_regex") or ""
    if pattern and (why := pattern_problem(str(pattern))):
        problems.append(Problem("invalid_regex", why, "accept_regex"))
    if data.get("accept_value") and not data.get("accept_json_path"):
        problems.append(
            Problem("json_path_required", "Say where the value is.", "accept_json_path")
        )
    return problems


def _secret_ok(secret: Any) -> bool:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret[6:], validate=True)
    except ValueError:
        return False
    return 24 <= len(key) <= 64


def _secrets_problems(signing_secrets: Any) -> list[Problem]:
    if not isinstance(signing_secrets, list) or len(signing_secrets) > 3:
        return [Problem("invalid_secrets", "Up to 3 secrets, newest first.", "signing_secrets")]
    if not all(map(_secret_ok, signing_secrets)):
        return [
            Problem(
                "invalid_secret",
                "A secret is whsec_ and 24 to 64 bytes in base64 (buyer_secret_new makes one).",
                "signing_secrets",
            )
        ]
    return []


def buyer_secret_new() -> str:
    """A new Standard Webhooks signing secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _email_problems(data: Mapping[str, Any]) -> list[Problem]:
    problems = []
    addresses = [a.strip() for a in str(data.get("email_to", "")).split(",") if a.strip()]
    if not addresses or len(addresses) > 10:
        problems.append(Problem("email_to_required", "1 to 10 addresses.", "email_to"))
    for address in addresses:
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            problems.append(Problem("invalid_email", f"{address}: {exc}", "email_to"))
    subject = str(data.get("email_subject", ""))
    if len(subject) > 200 or "\n" in subject or "\r" in subject:
        problems.append(Problem("invalid_subject", "One line, 200 characters.", "email_subject"))
    for key in ("accept_json_path", "accept_regex", "lead_id_json_path", "url"):
        if data.get(key):
            problems.append(Problem("not_for_email", "Email deliveries have no answer.", key))
    return problems


# Never in a ping: who the lead is. (Fields of type email or phone are personal too.)
PERSONAL_KEYS = frozenset(
    {"first_name", "last_name", "name", "full_name", "address", "address1", "address2",
     "street", "email", "phone", "birth_date", "dob", "ssn"}
)  # fmt: skip


def _ping_problems(data: Mapping[str, Any], known: set[str], offers: list[Offer]) -> list[Problem]:
    if not data.get("ping_url"):
        return []
    shape, host = url_shape_problems(str(data["ping_url"]), "ping_url", URL_MAX)
    problems = list(shape)
    if not shape and (refused := host_problem(host, "ping_url")) is not None:
        problems.append(refused)
    ping_map = data.get("ping_field_map") or {}
    if ping_map:
        problems += [
            Problem(p.code, p.message, "ping_" + (p.field or "field_map"))
            for p in _map_problems(ping_map, DeliveryMethod.POST_JSON, known)
        ]
    personal_fields = set(PERSONAL_KEYS)
    typed = OfferField.objects.filter(type__in=[FieldType.EMAIL, FieldType.PHONE])
    if offers:
        typed = typed.filter(offer__in=offers)
    personal_fields |= set(typed.values_list("key", flat=True))
    if isinstance(ping_map, Mapping):
        for name, template in ping_map.items():
            personal = sorted(set(MACRO_RE.findall(str(template))) & personal_fields)
            if personal:
                problems.append(
                    Problem(
                        "personal_field_in_ping",
                        f"A ping carries no personal data: {', '.join(personal)}.",
                        f"ping_field_map.{name}",
                    )
                )
    path = data.get("bid_json_path") or ""
    if not JSON_PATH_RE.match(path):
        problems.append(
            Problem("invalid_json_path", "Where the bid is, e.g. $.bid.", "bid_json_path")
        )
    ping_id_path = data.get("ping_id_json_path") or ""
    if ping_id_path and not JSON_PATH_RE.match(ping_id_path):
        problems.append(
            Problem("invalid_json_path", "A path such as $.ping_id.", "ping_id_json_path")
        )
    return problems


AMOUNT_MESSAGE = f"Whole minor units, 0 to {MINOR_MAX}."


def _whole(value: Any, low: int, high: int) -> bool:
    """A whole number (not a bool) from low to high: what the column and the rule take."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def buyer_problems(data: Mapping[str, Any], offers: list[Offer]) -> list[Problem]:
    """Everything wrong with a buyer's settings."""
    problems: list[Problem] = []
    if not str(data.get("name", "")).strip():
        problems.append(Problem("required", "Name the campaign.", "name"))
    if data.get("vertical") not in Vertical.values:
        problems.append(Problem("invalid_choice", "Use one of the verticals.", "vertical"))
    method = data.get("method", DeliveryMethod.POST_JSON)
    if method not in DeliveryMethod.values:
        problems.append(Problem("invalid_choice", "Use one of the methods.", "method"))
    price = data.get("price_minor")
    if not _whole(price, 0, MINOR_MAX):
        problems.append(Problem("invalid_amount", AMOUNT_MESSAGE, "price_minor"))
    if not currency_is_valid(str(data.get("currency", ""))):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    for key in ("priority", "weight", "pause_after_failures"):
        if not _whole(data.get(key, 1), 1, INT32_MAX):
            problems.append(Problem("out_of_range", f"A whole number from 1 to {INT32_MAX}.", key))
    for key, top in (
        ("return_window_days", RETURN_WINDOW_DAYS_MAX),
        ("auto_accept_returns_bp", BP_MAX),
    ):
        if not _whole(data.get(key, 0), 0, top):
            problems.append(Problem("out_of_range", f"A whole number from 0 to {top}.", key))
    # Stored with or without a ping URL, so checked either way.
    low, high = PING_TIMEOUT_MS
    if not _whole(data.get("ping_timeout_ms", 1000), low, high):
        problems.append(Problem("out_of_range", f"{low} to {high} ms.", "ping_timeout_ms"))
    credit = data.get("credit_limit_minor")
    if credit is not None and not _whole(credit, 0, MINOR_MAX):
        problems.append(Problem("invalid_amount", AMOUNT_MESSAGE, "credit_limit_minor"))
    try:
        zoneinfo.ZoneInfo(str(data.get("timezone", "UTC")))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(Problem("invalid_timezone", "An IANA time zone.", "timezone"))
    problems += [
        Problem("invalid_schedule", text, "schedule")
        for text in schedule_problems(data.get("schedule") or {})
    ]
    known = _field_keys(str(data.get("vertical", "")), offers)
    filters = data.get("filters") or {}
    if filters:
        problems += [
            Problem(p.code, p.message, f"filters.{p.field}" if p.field else "filters")
            for p in rules_problems(filters, known)
        ]
    if method == DeliveryMethod.EMAIL:
        problems += _email_problems(data)
    elif method == DeliveryMethod.PULL:
        for key in ("url", "email_to", "accept_json_path", "accept_regex", "lead_id_json_path"):
            if data.get(key):
                problems.append(Problem("not_for_pull", "A pull buyer fetches its leads.", key))
    else:
        shape, host = url_shape_problems(str(data.get("url", "")), "url", URL_MAX)
        problems += shape
        if not shape and (refused := host_problem(host, "url")) is not None:
            problems.append(refused)
    problems += _map_problems(data.get("field_map"), str(method), known)
    problems += _ping_problems(data, known, offers)
    problems += _headers_problems(data.get("headers") or {})
    problems += _response_rule_problems(data)
    problems += _secrets_problems(data.get("signing_secrets") or [])
    return problems


EDITABLE = (
    "name", "vertical", "filters", "price_minor", "currency", "priority", "weight",
    "exclusive", "schedule", "timezone", "credit_limit_minor", "method", "url", "field_map",
    "headers", "accept_json_path", "accept_value", "accept_regex", "lead_id_json_path",
    "signing_secrets", "pause_after_failures", "return_window_days", "auto_accept_returns_bp",
    "email_to", "email_subject", "price_json_path", "ping_url", "ping_field_map", "bid_json_path",
    "ping_id_json_path", "ping_timeout_ms",
)  # fmt: skip


def _unknown_refused(data: Mapping[str, Any]) -> None:
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise TypeError(f"unknown buyer settings: {', '.join(unknown)}")


def _buyer_checked(
    advertiser: Organization, data: dict[str, Any], offers: list[Offer]
) -> dict[str, Any]:
    """The settings as stored (maps as ordered pairs), or Invalid with every problem."""
    problems = buyer_problems(data, offers)
    if advertiser.kind != OrganizationKind.ADVERTISER:
        problems.append(Problem("not_an_advertiser", "Buyers belong to advertisers.", None))
    if any(o.vertical != data.get("vertical") for o in offers):
        problems.append(Problem("offer_vertical", "Offers of the buyer's vertical.", "offers"))
    if problems:
        raise Invalid(problems)
    return {
        **data,
        "field_map": [[name, template] for name, template in data["field_map"].items()],
        "ping_field_map": [[k, v] for k, v in (data.get("ping_field_map") or {}).items()],
    }


def buyer_create(
    *, advertiser: Organization, offers: list[Offer] | None = None, **data: Any
) -> Buyer:
    """A new buyer campaign for an advertiser. Raises Invalid with every problem."""
    offers = offers or []
    _unknown_refused(data)
    data = {"currency": "USD", "method": DeliveryMethod.POST_JSON, **data}
    buyer = Buyer.objects.create(advertiser=advertiser, **_buyer_checked(advertiser, data, offers))
    if offers:
        buyer.offers.set(offers)
    return buyer


def buyer_settings(buyer: Buyer) -> dict[str, Any]:
    """A buyer's editable settings as buyer_create takes them (maps as ordered dicts)."""
    data = {key: getattr(buyer, key) for key in EDITABLE}
    data["field_map"], data["ping_field_map"] = buyer.mapping(), buyer.ping_mapping()
    return data


def _buyer_locked(buyer: Buyer, by: Organization) -> Buyer:
    """The buyer's row, locked, if `by` may change it (its advertiser or the network)."""
    locked = (
        buyers_visible_to(organization=by)
        .select_for_update(of=("self",))
        .filter(pk=buyer.pk)
        .first()
    )
    if locked is None:
        raise NotFound("Buyer")
    return locked


def buyer_update(
    *, buyer: Buyer, by: Organization, offers: list[Offer] | None = None, **changes: Any
) -> Buyer:
    """Change some of a buyer's settings (`offers`: None keeps them). The result is checked
    as a whole, as at creation, and every problem is reported at once (Invalid); nothing is
    saved unless all pass. Returns the updated buyer."""
    _unknown_refused(changes)
    with transaction.atomic():
        locked = _buyer_locked(buyer, by)
        chosen = list(locked.offers.all()) if offers is None else offers
        stored = _buyer_checked(locked.advertiser, {**buyer_settings(locked), **changes}, chosen)
        for key in changes:
            setattr(locked, key, stored[key])
        locked.save(update_fields=[*changes, "updated_at"])
        if offers is not None:
            locked.offers.set(offers)
    return locked


def buyer_status_set(*, buyer: Buyer, by: Organization, status: str) -> Buyer:
    """Its owner pauses a buyer (it is sent nothing until resumed) or resumes it; resuming
    forgets why it was paused and its run of failures."""
    if status not in BuyerStatus.values:
        raise Invalid([Problem("invalid_choice", "active or paused.", "status")])
    with transaction.atomic():
        locked = _buyer_locked(buyer, by)
        if locked.status != status:
            # A blank reason reads "paused by its owner"; a resumed buyer starts afresh.
            locked.status, locked.paused_reason, locked.consecutive_failures = (
                status,
                "",
                0 if status == BuyerStatus.ACTIVE else locked.consecutive_failures,
            )
            locked.save(
                update_fields=["status", "paused_reason", "consecutive_failures", "updated_at"]
            )
    return locked


SECRETS_MAX = 3


def buyer_secret_fingerprint(secret: str) -> str:
    """What names a secret on a page without showing it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def buyer_secret_add(*, buyer: Buyer, by: Organization) -> str:
    """Start a rotation: a new secret signs from now on, next to the old ones, so the buyer
    can switch its verifier without a failed delivery. Returns the new secret (show it once)."""
    with transaction.atomic():
        locked = _buyer_locked(buyer, by)
        if len(locked.signing_secrets) >= SECRETS_MAX:
            raise Conflict(
                "too_many_secrets",
                f"At most {SECRETS_MAX} secrets: remove an old one first.",
                "signing_secrets",
            )
        secret = buyer_secret_new()
        locked.signing_secrets = [secret, *locked.signing_secrets]
        locked.save(update_fields=["signing_secrets", "updated_at"])
    return secret


def buyer_secret_remove(*, buyer: Buyer, by: Organization, fingerprint: str) -> Buyer:
    """End a rotation: the secret named by its fingerprint signs no more. A buyer's only
    secret stays (add its successor first), so a signed buyer never goes unsigned."""
    with transaction.atomic():
        locked = _buyer_locked(buyer, by)
        kept = [s for s in locked.signing_secrets if buyer_secret_fingerprint(s) != fingerprint]
        if len(kept) == len(locked.signing_secrets):
            raise NotFound("Secret")
        if not kept:
            raise Conflict(
                "last_secret", "This is the only secret: add a new one first.", "signing_secrets"
            )
        locked.signing_secrets = kept
        locked.save(update_fields=["signing_secrets", "updated_at"])
    return locked


def buyer_cap_set(
    *, buyer: Buyer, period: str, max_leads: int | None = None, max_spend_minor: int | None = None
) -> BuyerCap:
    """At most `max_leads` and/or `max_spend_minor` per day, week or month (replaces the
    period's cap)."""
    problems = []
    if period not in CapPeriod.values:
        problems.append(Problem("invalid_choice", "day, week or month.", "period"))
    for key, value, top in (
        ("max_leads", max_leads, INT32_MAX),
        ("max_spend_minor", max_spend_minor, MINOR_MAX),
    ):
        if value is not None and not _whole(value, 0, top):
            problems.append(Problem("out_of_range", f"A whole number from 0 to {top}.", key))
    if max_leads is None and max_spend_minor is None:
        problems.append(Problem("required", "Cap leads, spend or both.", None))
    if problems:
        raise Invalid(problems)
    cap, _ = BuyerCap.objects.update_or_create(
        buyer=buyer,
        period=period,
        defaults={"max_leads": max_leads, "max_spend_minor": max_spend_minor},
    )
    return cap


def buyer_cap_remove(*, buyer: Buyer, period: str) -> None:
    """No cap for this period any more."""
    BuyerCap.objects.filter(buyer=buyer, period=period).delete()
