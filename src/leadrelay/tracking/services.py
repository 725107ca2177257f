"""Tracking links and click recording.

The click id is made before anything is written (see leadrelay.core.clickid)
and the row is buffered (tracking/buffer.py), so the visitor's redirect never
waits for a database commit.
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization
from leadrelay.core.clickid import MAX_SUB_BYTES, click_id_issue
from leadrelay.core.errors import DomainError, Invalid, NotFound, PermissionDenied, Problem
from leadrelay.core.text import text_clean, texts_clean
from leadrelay.offers.macros import BUILTIN_MACROS, deeplink_allowed, landing_url_render
from leadrelay.offers.models import LandingVariant, Offer, OfferStatus
from leadrelay.offers.selectors import affiliate_may_promote
from leadrelay.offers.services import offer_access_request
from leadrelay.offers.targeting import offer_refusal
from leadrelay.tracking.buffer import click_buffer, clicks_write
from leadrelay.tracking.models import SUB_FIELDS, SUB_MAX_LENGTH, Click, Fallback, TrackingLink
from leadrelay.tracking.visitor import VisitorFacts

_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def _code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


def tracking_link_create(
    *, offer: Offer, affiliate: Organization, subs: dict[str, str] | None = None
) -> TrackingLink:
    """A new link for an affiliate that may promote the offer (public offers: access is granted)."""
    subs = {name: text_clean(value) for name, value in (subs or {}).items()}
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
    redirect_url: str | None  # None when the offer refused the click and has no fallback


class RedirectRefused(DomainError):
    """A deep link to a place the offer doesn't allow: never redirected to (400)."""

    def __init__(self) -> None:
        super().__init__(
            code="redirect_not_allowed",
            message="This link can't send visitors there.",
            field="url",
            status=400,
        )


MAX_PARAMS = 20
_PARAM_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,40}$")
DEEPLINK_PARAM = "url"


def _passed_params(params: Mapping[str, str]) -> dict[str, str]:
    """The click's own query parameters kept for macros: bounded in number, name and size."""
    kept: dict[str, str] = {}
    for name, value in params.items():
        if name in SUB_FIELDS or name == DEEPLINK_PARAM or not _PARAM_NAME_RE.match(name):
            continue
        if name in BUILTIN_MACROS or len(kept) >= MAX_PARAMS:
            continue
        kept[name] = value[:200]
    return kept


_link_cache: dict[str, tuple[float, TrackingLink | None]] = {}
_CODE_RE = re.compile(r"^[a-z0-9]{4,16}$")
_link_cache_lock = threading.Lock()


def _link_for_redirect(code: str) -> TrackingLink | None:
    """The link, its offer, the offer's fallback offer and their landing variants.

    Kept for LEADRELAY_LINK_CACHE_SECONDS per process: looking them up is most of
    a redirect's cost, and a few seconds' cache means a paused offer or a changed
    variant takes effect on redirects within that time, not at once.
    """
    if not _CODE_RE.match(code):
        return None  # not one of ours: no query, and nothing for the cache to hold
    ttl = settings.LEADRELAY_LINK_CACHE_SECONDS
    now = time.monotonic()
    if ttl > 0:
        cached = _link_cache.get(code)
        if cached is not None and cached[0] > now:
            return cached[1]
    link = (
        TrackingLink.objects.select_related("offer", "offer__fallback_offer")
        .prefetch_related("offer__landing_variants", "offer__fallback_offer__landing_variants")
        .filter(code=code, is_active=True)
        .first()
    )
    if ttl > 0 and link is not None:  # misses aren't kept: random codes can't fill it
        with _link_cache_lock:
            if len(_link_cache) > 50_000:
                _link_cache.clear()
            _link_cache[code] = (now + ttl, link)
    return link


def _landing(offer: Offer) -> tuple[str, LandingVariant | None]:
    """The landing URL for a click: a variant chosen by weight, else the offer's own."""
    variants = [v for v in offer.landing_variants.all() if v.weight > 0]
    if not variants:
        return offer.landing_url, None
    variant = random.choices(variants, weights=[v.weight for v in variants])[0]
    return variant.url, variant


@dataclass(frozen=True)
class _Route:
    offer: Offer  # the offer the click counts for
    template: str | None  # None: nowhere to send the visitor
    variant: LandingVariant | None = None
    refusal: str = ""
    fallback: str = ""


def _route(link: TrackingLink, visitor: VisitorFacts, at: datetime) -> _Route:
    """Where this click goes: the link's offer, or its fallback offer or URL when refused."""
    offer = link.offer
    refusal = offer_refusal(offer=offer, country=visitor.country, device=visitor.device.kind, at=at)
    if refusal is None:
        template, variant = _landing(offer)
        return _Route(offer, template, variant)
    backup = offer.fallback_offer
    if (
        backup is not None
        and backup.pk != offer.pk
        and offer_refusal(offer=backup, country=visitor.country, device=visitor.device.kind, at=at)
        is None
    ):
        template, variant = _landing(backup)
        return _Route(backup, template, variant, refusal, Fallback.OFFER)
    if offer.fallback_url:
        return _Route(offer, offer.fallback_url, None, refusal, Fallback.URL)
    return _Route(offer, None, None, refusal, Fallback.NONE)


def click_record(
    *,
    code: str,
    visitor: VisitorFacts,
    params: Mapping[str, str] | None = None,
    at: datetime | None = None,
    write_now: bool = False,
) -> ClickOutcome:
    """Record a click on link `code` and return where to send the visitor.

    `params` are the click URL's query parameters: sub1…sub5 override the link's
    own sub ids for this click, `url` asks for a deep link (allowed only to the
    offer's deep-link domains, else RedirectRefused), and the rest are passed to
    the landing URL's macros. A click the offer refuses (targeting, schedule,
    paused) goes to its fallback offer or URL and is recorded with the reason;
    with neither, `redirect_url` is None. The row is buffered
    (tracking/buffer.py) unless `write_now`; `at` is for imports and demo data.
    The query string is tracking data: kept without what can't be stored (core/text.py).
    """
    params = texts_clean(params) if params else {}
    link = _link_for_redirect(code)
    if link is None or link.offer.status == OfferStatus.ARCHIVED:
        raise NotFound("Link")
    at = at or timezone.now()
    route = _route(link, visitor, at)
    offer = route.offer
    subs = {name: getattr(link, name) for name in SUB_FIELDS}
    for name in SUB_FIELDS:
        if params.get(name):
            # Bounded in bytes, as the click id carries them: the lead sees what the click saw.
            clipped = params[name].encode()[:MAX_SUB_BYTES].decode("utf-8", "ignore")
            subs[name] = clipped[:SUB_MAX_LENGTH]
    template = route.template
    deeplink = params.get(DEEPLINK_PARAM, "")
    if deeplink and not route.refusal:
        if "{" in urlsplit(deeplink).netloc or not deeplink_allowed(
            deeplink, offer.deeplink_domains
        ):
            raise RedirectRefused()
        template = deeplink
    identity = click_id_issue(
        link_id=link.pk,
        offer_id=offer.pk,
        affiliate_id=link.affiliate_id,
        at=at,
        # Only per-click values ride in the id; the link's own are found from link_id.
        subs={k: v for k, v in subs.items() if v != getattr(link, k)},
    )
    passed = _passed_params(params)
    click = Click(
        click_id=identity.click_id,
        link=link,
        offer_id=offer.pk,
        affiliate_id=link.affiliate_id,
        created_at=identity.issued_at,
        ip=visitor.ip,
        user_agent=visitor.user_agent,
        referer=visitor.referer,
        visitor_id=visitor.visitor_id,
        ip_ua_hash=visitor.ip_ua_hash,
        country=visitor.country,
        device=visitor.device.kind,
        os=visitor.device.os,
        browser=visitor.device.browser,
        is_bot=visitor.device.is_bot,
        params=passed,
        landing_variant=route.variant if template is route.template else None,
        refusal=route.refusal,
        fallback=route.fallback,
        fallback_from=link.offer if route.fallback == Fallback.OFFER else None,
        **subs,
    )
    if write_now:
        clicks_write([click])
    else:
        click_buffer.add(click)
    if template is None:
        return ClickOutcome(click=click, redirect_url=None)
    url = landing_url_render(
        template,
        {
            **passed,
            **subs,
            "click_id": identity.click_id,
            "offer_id": offer.pk,
            "affiliate_id": link.affiliate_id,
            "country": visitor.country,
            "device": visitor.device.kind,
        },
    )
    return ClickOutcome(click=click, redirect_url=url)
