"""Conversions: what advertisers report after a click, by server postback or pixel.

`GET` or `POST /postback` takes the click id under any of the names other
trackers send (click_id, clickid, transaction_id, subid, cid), an event name
(`event` or `goal`, default "conversion"), an `amount` in the currency's
units ("12.50"), a `currency`, a `status` (approved, pending, rejected) and a
transaction id (`txid` or `order_id`). The advertiser proves who it is with
its postback token (`token` parameter) or an HMAC-SHA256 signature of
"<timestamp>.<raw query or body>" in `X-Leadrelay-Signature: sha256=<hex>`
with `X-Leadrelay-Timestamp` (Unix seconds, within 5 minutes).

An approved conversion on a CPA or RevShare offer is booked in the ledger
(ledger/earnings.py). Each (click, event, transaction id) is recorded once: a repeat answers as the
first did and records nothing new. A conversion later than the offer's
attribution window is recorded as rejected with that reason, not dropped.
The pixel (`/p/conversion.gif`) takes the same parameters without a token, so
its conversions are recorded as pending for the advertiser to confirm.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.clickid import ClickIdentity, ClickIdError, click_id_verify
from leadrelay.core.errors import DomainError, Invalid, NotFound, Problem
from leadrelay.core.money import currency_is_valid, money_parse
from leadrelay.ledger.earnings import conversion_book
from leadrelay.offers.models import AttributionModel, Offer
from leadrelay.tracking.models import (
    SUB_FIELDS,
    Click,
    Conversion,
    ConversionSource,
    ConversionStatus,
    Fallback,
    PostbackKey,
    TrackingLink,
)

CLICK_ID_NAMES = ("click_id", "clickid", "transaction_id", "subid", "cid")
TXID_NAMES = ("txid", "order_id")
SIGNATURE_TOLERANCE = 300
_EVENT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class Unauthenticated(DomainError):
    def __init__(self) -> None:
        super().__init__(
            code="unauthorized",
            message="Send your postback token as `token`, or sign the request.",
            status=401,
        )


@dataclass(frozen=True)
class IssuedPostbackKey:
    token: str
    hmac_secret: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def postback_key_issue(*, advertiser: Organization) -> IssuedPostbackKey:
    """New postback credentials for an advertiser, replacing any it had. Shown once."""
    if advertiser.kind != OrganizationKind.ADVERTISER:
        raise Invalid([Problem("not_an_advertiser", "Postbacks come from advertisers.", None)])
    token = "pb_" + secrets.token_urlsafe(24)
    secret = secrets.token_hex(32)
    PostbackKey.objects.update_or_create(
        advertiser=advertiser, defaults={"token_hash": _hash(token), "hmac_secret": secret}
    )
    return IssuedPostbackKey(token=token, hmac_secret=secret)


def postback_advertiser(
    *, token: str, signature: str, timestamp: str, payload: bytes, now: float | None = None
) -> Organization | None:
    """The advertiser whose token this is, or whose secret signed this payload; else None.

    A signed request names no advertiser, so each key is tried: fine for the
    few hundred advertisers of a network, and constant-time per comparison.
    """
    if token:
        found = (
            PostbackKey.objects.select_related("advertiser").filter(token_hash=_hash(token)).first()
        )
        return found.advertiser if found and found.advertiser.is_active else None
    if not signature.startswith("sha256=") or not timestamp.isdigit():
        return None
    if abs((now or time.time()) - int(timestamp)) > SIGNATURE_TOLERANCE:
        return None
    message = timestamp.encode() + b"." + payload
    for key in PostbackKey.objects.select_related("advertiser").filter(advertiser__is_active=True):
        expected = hmac.new(key.hmac_secret.encode(), message, hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature[7:], expected):
            return key.advertiser
    return None


def _first(params: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((params[n] for n in names if params.get(n)), "")


def _credited_click(identity: ClickIdentity, offer: Offer) -> tuple[ClickIdentity, Click | None]:
    """The click the offer's attribution model credits: this one, or the visitor's first."""
    if offer.attribution_model != AttributionModel.FIRST_CLICK:
        return identity, None
    click = Click.objects.filter(click_id=identity.click_id).first()
    if click is None or not click.visitor_id:
        return identity, None  # without the click row there is no visitor to follow
    window = timedelta(days=offer.attribution_window_days)
    first = (
        Click.objects.filter(
            offer=offer,
            visitor_id=click.visitor_id,
            created_at__gte=identity.issued_at - window,
            created_at__lte=identity.issued_at,
            is_bot=False,
        )
        .exclude(fallback__in=[Fallback.URL, Fallback.NONE])  # never reached the offer
        .order_by("created_at")
        .first()
    )
    if first is None or first.click_id == click.click_id:
        return identity, None
    return click_id_verify(first.click_id), first


def conversion_record(
    *,
    params: Mapping[str, str],
    source: ConversionSource,
    advertiser: Organization | None,
    now: datetime | None = None,
) -> tuple[Conversion, bool]:
    """Record a conversion once. Returns (conversion, created).

    `advertiser` is the authenticated sender (None for the pixel). Raises Invalid
    (422) for a missing or forged click id or bad amount, NotFound when the click
    is not for one of the sender's offers; nothing is recorded then.
    """
    problems = []
    raw_click_id = _first(params, CLICK_ID_NAMES)
    identity = None
    with contextlib.suppress(ClickIdError):
        identity = click_id_verify(raw_click_id) if raw_click_id else None
    if identity is None:
        problems.append(Problem("invalid_click_id", "Send the click id we issued.", "click_id"))
    event = params.get("event") or params.get("goal") or "conversion"
    if not _EVENT_RE.match(event):
        problems.append(Problem("invalid_event", "Letters, digits and _ . : - only.", "event"))
    txid = _first(params, TXID_NAMES)[:128]
    status = params.get("status", ConversionStatus.APPROVED)
    if status not in ConversionStatus.values:
        problems.append(Problem("invalid_status", "approved, pending or rejected.", "status"))
    if problems or identity is None:
        raise Invalid(problems)
    offer = Offer.objects.filter(pk=identity.offer_id).select_related("advertiser").first()
    if offer is None or (advertiser is not None and offer.advertiser_id != advertiser.pk):
        raise NotFound("Click")
    currency = (params.get("currency") or offer.currency).upper()
    amount = 0
    if not currency_is_valid(currency):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    elif params.get("amount"):
        try:
            amount = money_parse(params["amount"], currency)
        except ValueError as exc:
            problems.append(Problem("invalid_amount", f"The amount is {exc}.", "amount"))
    if problems:
        raise Invalid(problems)

    now = now or timezone.now()
    credited, _ = _credited_click(identity, offer)
    reason = ""
    # The window runs from the click the advertiser reported, whoever gets the credit.
    if now - identity.issued_at > timedelta(days=offer.attribution_window_days):
        status, reason = ConversionStatus.REJECTED, "outside_attribution_window"
    elif source == ConversionSource.PIXEL and status == ConversionStatus.APPROVED:
        status = ConversionStatus.PENDING  # anyone can load a pixel: the advertiser confirms
    link = TrackingLink.objects.filter(pk=credited.link_id).first()
    subs = {name: getattr(link, name) for name in SUB_FIELDS} if link else {}
    subs.update(credited.subs)
    kept = {k: v[:200] for k, v in list(params.items())[:30] if k not in {"token"}}
    existing = Conversion.objects.filter(click_id=identity.click_id, event=event, txid=txid)
    if (found := existing.first()) is not None:
        if found.source == ConversionSource.PIXEL and source == ConversionSource.SERVER:
            # The advertiser's server confirms (or corrects) what a pixel reported.
            found.status, found.reason, found.source = status, reason, source
            found.amount_minor, found.currency, found.params = amount, currency, kept
            found.save(
                update_fields=["status", "reason", "source", "amount_minor", "currency", "params"]
            )
            conversion_book(found, now=now)
        return found, False
    try:
        with transaction.atomic():
            conversion = Conversion.objects.create(
                click_id=identity.click_id,
                event=event,
                txid=txid,
                offer=offer,
                affiliate_id=credited.affiliate_id,
                link=link,
                credited_click_id=credited.click_id,
                clicked_at=credited.issued_at,
                amount_minor=amount,
                currency=currency,
                status=status,
                reason=reason,
                source=source,
                params=kept,
                created_at=now,
                **subs,
            )
    except IntegrityError:
        return Conversion.objects.get(click_id=identity.click_id, event=event, txid=txid), False
    conversion_book(conversion, now=now)
    return conversion, True
