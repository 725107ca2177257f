"""Lead caps: at most N accepted leads per day, week or month, per offer or per affiliate.

A lead takes a place in every cap that applies to it (the offer's and its
affiliate's) or in none: the places are reserved with a guarded UPDATE
(`count = count + 1 WHERE count < limit`) inside the intake transaction, so
concurrent leads can't both take the last place, on PostgreSQL or SQLite, and
a lead that fails later gives its places back with the rollback. Periods are
the offer's local calendar (its IANA time zone): days, ISO weeks starting
Monday, months. Places are not given back when a lead is later rejected in
review: a cap counts what was accepted.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from leadrelay.accounts.models import Organization
from leadrelay.core.errors import Invalid, Problem
from leadrelay.offers.models import CapCounter, CapPeriod, LeadCap, Offer


def period_start(period: str, at: dt.datetime, tz: str) -> dt.date:
    local = at.astimezone(zoneinfo.ZoneInfo(tz)).date()
    if period == CapPeriod.DAY:
        return local
    if period == CapPeriod.WEEK:
        return local - dt.timedelta(days=local.weekday())
    return local.replace(day=1)


@dataclass(frozen=True)
class CapHit:
    cap: LeadCap

    @property
    def reason(self) -> str:
        scope = "affiliate" if self.cap.affiliate_id else "offer"
        return f"cap_reached:{scope}:{self.cap.period}"


def lead_cap_set(
    *, offer: Offer, period: str, limit: int, affiliate: Organization | None = None
) -> LeadCap:
    """Set (or change) a cap; a limit below today's count just admits no more."""
    problems = []
    if period not in CapPeriod.values:
        problems.append(Problem("invalid_period", "day, week or month.", "period"))
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        problems.append(Problem("invalid_limit", "A whole number, 0 or more.", "limit"))
    if problems:
        raise Invalid(problems)
    cap, _ = LeadCap.objects.update_or_create(
        offer=offer, affiliate=affiliate, period=period, defaults={"limit": limit}
    )
    return cap


def caps_for(offer: Offer, affiliate: Organization | None) -> list[LeadCap]:
    scope = Q(affiliate__isnull=True)
    if affiliate is not None:
        scope |= Q(affiliate=affiliate)
    return list(LeadCap.objects.filter(offer=offer).filter(scope).order_by("pk"))


def caps_reserve(*, offer: Offer, affiliate: Organization | None, at: dt.datetime) -> CapHit | None:
    """Take a place in every cap for this lead, or in none and return the cap that is full.

    Must run inside the caller's transaction: on a full cap the places already
    taken here are given back by rolling back to a savepoint.
    """
    caps = caps_for(offer, affiliate)
    if not caps:
        return None
    try:
        with transaction.atomic():
            for cap in caps:
                start = period_start(cap.period, at, offer.timezone)
                _counter_ensure(cap, start)
                taken = CapCounter.objects.filter(
                    cap=cap, period_start=start, count__lt=cap.limit
                ).update(count=F("count") + 1)
                if not taken:
                    raise _Full(cap)
    except _Full as full:
        return CapHit(full.cap)
    return None


_capped_cache: dict[int, tuple[float, bool]] = {}


def offer_capped(*, offer: Offer, at: dt.datetime) -> bool:
    """Whether an offer-wide cap is full now, for click targeting: a read, no reservation.

    Kept per process as long as redirects keep links (LEADRELAY_LINK_CACHE_SECONDS),
    so a click costs no query; the lead's own reservation is exact.
    """
    ttl = settings.LEADRELAY_LINK_CACHE_SECONDS
    now = time.monotonic()
    cached = _capped_cache.get(offer.pk)
    if ttl > 0 and cached is not None and cached[0] > now:
        return cached[1]
    capped = _offer_capped(offer, at)
    if ttl > 0:
        if len(_capped_cache) > 50_000:
            _capped_cache.clear()
        _capped_cache[offer.pk] = (now + ttl, capped)
    return capped


def _offer_capped(offer: Offer, at: dt.datetime) -> bool:
    for cap in LeadCap.objects.filter(offer=offer, affiliate__isnull=True):
        start = period_start(cap.period, at, offer.timezone)
        count = (
            CapCounter.objects.filter(cap=cap, period_start=start)
            .values_list("count", flat=True)
            .first()
        )
        if (count or 0) >= cap.limit:
            return True
    return False


class _Full(Exception):
    def __init__(self, cap: LeadCap) -> None:
        self.cap = cap


def _counter_ensure(cap: LeadCap, start: dt.date) -> None:
    if CapCounter.objects.filter(cap=cap, period_start=start).exists():
        return
    try:
        with transaction.atomic():
            CapCounter.objects.create(cap=cap, period_start=start, count=0)
    except IntegrityError:
        pass  # another lead made it first
