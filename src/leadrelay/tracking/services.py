"""Tracking links and click recording.

The click id is made before anything is written (see leadrelay.core.clickid),
so the visitor's redirect never depends on the click row.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from leadrelay.accounts.models import Organization
from leadrelay.core.clickid import click_id_issue
from leadrelay.core.errors import Invalid, NotFound, PermissionDenied, Problem
from leadrelay.offers.macros import landing_url_render
from leadrelay.offers.models import Offer, OfferStatus
from leadrelay.offers.selectors import affiliate_may_promote
from leadrelay.offers.services import offer_access_request
from leadrelay.tracking.models import SUB_FIELDS, SUB_MAX_LENGTH, Click, TrackingLink

_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def _code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


def tracking_link_create(
    *, offer: Offer, affiliate: Organization, subs: dict[str, str] | None = None
) -> TrackingLink:
    """A new link for an affiliate that may promote the offer (public offers: access is granted)."""
    subs = subs or {}
    problems = [
        Problem("unknown_field", f"{key} is not a sub id (sub1…sub5).", key)
        for key in subs
        if key not in SUB_FIELDS
    ] + [
        Problem("too_long", f"At most {SUB_MAX_LENGTH} characters.", key)
        for key, value in subs.items()
        if len(value) > SUB_MAX_LENGTH
    ]
    if problems:
        raise Invalid(problems)
    if not affiliate_may_promote(offer=offer, affiliate=affiliate):
        access = offer_access_request(offer=offer, affiliate=affiliate)
        if not affiliate_may_promote(offer=offer, affiliate=affiliate):
            raise PermissionDenied(
                "offer_access_required",
                f"Your application to run this offer is {access.status}.",
            )
    for _ in range(5):
        try:
            with transaction.atomic():
                return TrackingLink.objects.create(
                    code=_code(), offer=offer, affiliate=affiliate, **subs
                )
        except IntegrityError:  # a code collision: try another
            continue
    raise RuntimeError("could not allocate a tracking link code")


@dataclass(frozen=True)
class ClickOutcome:
    click: Click
    redirect_url: str


def _clean_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def click_record(
    *,
    code: str,
    ip: str | None,
    user_agent: str = "",
    referer: str = "",
    at: datetime | None = None,
) -> ClickOutcome:
    """Record a click on link `code` and return where to send the visitor.

    `at` is for imports and demo data; it defaults to now.
    """
    link = TrackingLink.objects.select_related("offer").filter(code=code, is_active=True).first()
    if link is None or link.offer.status != OfferStatus.ACTIVE:
        raise NotFound("Link")
    identity = click_id_issue(
        link_id=link.pk, offer_id=link.offer_id, affiliate_id=link.affiliate_id, at=at
    )
    subs = {name: getattr(link, name) for name in SUB_FIELDS}
    click = Click.objects.create(
        click_id=identity.click_id,
        link=link,
        offer_id=link.offer_id,
        affiliate_id=link.affiliate_id,
        created_at=identity.issued_at,
        ip=_clean_ip(ip),
        user_agent=user_agent[:512],
        referer=referer[:1000],
        **subs,
    )
    url = landing_url_render(
        link.offer.landing_url,
        {
            "click_id": identity.click_id,
            "offer_id": link.offer_id,
            "affiliate_id": link.affiliate_id,
            **subs,
        },
    )
    return ClickOutcome(click=click, redirect_url=url)
