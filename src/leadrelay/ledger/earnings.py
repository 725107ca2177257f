"""Booking what clicks and conversions earn (CPL leads are booked by leads.services).

**CPC**: clicks are booked by the hour, in batches, by the worker's periodic
job. For each CPC offer, each closed hour's unique, non-bot clicks that reached
the offer are counted per affiliate and posted as one transaction
(`clicks:<offer>:<affiliate>:<hour>`), so a job run twice, or two workers,
book each hour once. An hour is closed once it ended more than the click
buffer's flush interval plus a minute ago. Click earnings are not held.
Each offer is booked on its own (core/batches.py, one offer a chunk): an offer whose
booking fails (its price times its clicks beyond a 64-bit amount, say) is logged and
counted as an open set-aside row (kind "cpc", key `offer:<id>`) and booked on a later
run once it can be; the offers after it are booked meanwhile. Its set-aside row is
resolved when it books. Not per hour: the next run starts after an offer's last hour
booked, so an hour failing for one affiliate while a later one books would be skipped.
A database that doesn't answer stops the run (BatchInterrupted); nothing is counted.

**CPA / RevShare**: an approved conversion on a CPA offer books the offer's
revenue and the affiliate's payout (its override if it has one); on a RevShare
offer, `revenue_bps` and `payout_bps` of the amount the advertiser reported, in
the conversion's currency (rounded down to a minor unit). Booked once per
conversion (`conversion:<id>`); with a hold the payout waits in pending like a
lead's. A booked conversion the advertiser later rejects is reversed.
The worker's job releases held conversion payouts one conversion at a time, each in
its own transaction (`conversion:<id>:released`, once): one whose release fails (the
ledger refuses it) is set aside (kind "conversion_hold", key `conversion:<id>`),
tried again by every later run and resolved once released or once nothing is left to
release (the conversion was rejected and reversed meanwhile); the others are released.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from leadrelay.accounts.models import Organization
from leadrelay.core.batches import batch_write_each
from leadrelay.core.models import SetAsideKind
from leadrelay.core.selectors import set_aside_open_ids
from leadrelay.ledger.models import Transaction, TransactionKind
from leadrelay.ledger.services import (
    earning_postings,
    hold_release_post,
    transaction_post,
    transaction_reverse,
)
from leadrelay.offers.models import Offer, PayoutModel
from leadrelay.offers.services import offer_payout_for
from leadrelay.tracking.models import Click, Conversion, ConversionStatus, Fallback

BPS = 10_000


def conversion_amounts(conversion: Conversion, offer: Offer) -> tuple[int, int]:
    """(revenue, payout) in minor units of the conversion's currency; (0, 0) if not booked."""
    if offer.payout_model == PayoutModel.CPA:
        if conversion.currency != offer.currency:
            return 0, 0
        payout = offer_payout_for(offer=offer, affiliate=conversion.affiliate)
        return offer.revenue_minor, payout
    if offer.payout_model == PayoutModel.REVSHARE:
        return (
            conversion.amount_minor * offer.revenue_bps // BPS,
            conversion.amount_minor * offer.payout_bps // BPS,
        )
    return 0, 0


def conversion_book(conversion: Conversion, *, now: datetime | None = None) -> None:
    """Bring the ledger in line with the conversion's status: book it when approved, reverse
    the booking when it is no longer approved. Safe to call any number of times."""
    now = now or timezone.now()
    with transaction.atomic():
        conversion = (
            Conversion.objects.select_for_update(of=("self",))
            .select_related("offer__advertiser", "affiliate")
            .get(pk=conversion.pk)
        )
        booked = Transaction.objects.filter(external_id=f"conversion:{conversion.pk}").first()
        if conversion.status != ConversionStatus.APPROVED:
            if booked is not None and not Transaction.objects.filter(reverses=booked).exists():
                released = Transaction.objects.filter(
                    external_id=f"conversion:{conversion.pk}:released"
                ).first()
                reason = f"conversion {conversion.status}"
                if released is not None:
                    transaction_reverse(transaction_id=released.pk, reason=reason)
                transaction_reverse(transaction_id=booked.pk, reason=reason)
            return
        if booked is not None:
            return  # booked once; a reversed booking stays reversed
        offer = conversion.offer
        revenue, payout = conversion_amounts(conversion, offer)
        if not (revenue or payout):
            return
        in_hold = offer.hold_days > 0 and payout > 0
        transaction_post(
            external_id=f"conversion:{conversion.pk}",
            kind=TransactionKind.CONVERSION,
            postings=earning_postings(
                advertiser=offer.advertiser,
                affiliate=conversion.affiliate,
                currency=conversion.currency,
                revenue_minor=revenue,
                payout_minor=payout,
                in_hold=in_hold,
            ),
            memo=f"Conversion {conversion.pk} ({conversion.event}) on {offer.name}",
            offer_id=offer.pk,
            affiliate_id=conversion.affiliate_id,
            posted_at=now,
        )
        conversion.revenue_minor, conversion.payout_minor = revenue, payout
        conversion.booked_at = now
        conversion.payable_at = now + timedelta(days=offer.hold_days) if in_hold else None
        conversion.save(update_fields=["revenue_minor", "payout_minor", "booked_at", "payable_at"])


def conversions_hold_release(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Move held conversion payouts to available once their hold is over; returns how
    many. A conversion that fails is set aside and tried again by the next run (module
    docstring); raises BatchInterrupted when the database doesn't answer."""
    now = now or timezone.now()
    due = Conversion.objects.filter(
        status=ConversionStatus.APPROVED, payable_at__lte=now, released_at__isnull=True
    ).order_by("payable_at")
    ids = [*due.values_list("pk", flat=True)[:limit]]
    # Set aside by an earlier run, still due or not: visited so that their rows resolve.
    ids = list(dict.fromkeys([*ids, *set_aside_open_ids(kind=SetAsideKind.CONVERSION_HOLD)]))
    return batch_write_each(
        ids,
        write=lambda conversion_id: _conversion_hold_release(conversion_id, now),
        kind=SetAsideKind.CONVERSION_HOLD,
        key=_conversion_key,
        data=_conversion_data,
    ).counted


@transaction.atomic
def _conversion_hold_release(conversion_id: int, now: datetime) -> bool:
    """Release one conversion's payout; False when there is nothing to release (released
    by another worker, no longer approved and so reversed, or not due)."""
    conversion = (
        Conversion.objects.select_for_update(of=("self",))
        .select_related("affiliate")
        .filter(
            pk=conversion_id,
            status=ConversionStatus.APPROVED,
            payable_at__lte=now,
            released_at__isnull=True,
        )
        .first()
    )
    if conversion is None or conversion.payable_at is None:
        return False
    hold_release_post(
        external_id=f"conversion:{conversion.pk}:released",
        affiliate=conversion.affiliate,
        currency=conversion.currency,
        payout_minor=conversion.payout_minor,
        memo=f"Conversion {conversion.pk}: hold over",
        offer_id=conversion.offer_id,
        posted_at=conversion.payable_at,
    )
    conversion.released_at = now
    conversion.save(update_fields=["released_at"])
    return True


def _conversion_key(conversion_id: int) -> str:
    return f"conversion:{conversion_id}"


def _conversion_data(conversion_id: int) -> dict[str, Any]:
    row = (
        Conversion.objects.filter(pk=conversion_id)
        .values("offer_id", "affiliate_id", "currency", "payout_minor", "payable_at")
        .first()
    )
    return {"conversion_id": conversion_id, **(row or {})}


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def billable_clicks() -> QuerySet[Click]:
    """Clicks a CPC offer pays for: unique, not bots, and they reached the offer."""
    return Click.objects.filter(is_bot=False, is_unique=True).exclude(
        fallback__in=[Fallback.URL, Fallback.NONE]
    )


def clicks_book(*, now: datetime | None = None) -> int:
    """Book every closed hour of CPC clicks not booked yet. Returns transactions posted.

    An offer that fails to book is set aside for this run and tried again on the next
    (module docstring); raises BatchInterrupted when the database doesn't answer."""
    now = now or timezone.now()
    settle = timedelta(seconds=settings.LEADRELAY_CLICK_FLUSH_SECONDS + 60)
    cutoff = _hour(now - settle)  # hours before this one are closed
    offers = [
        offer
        for offer in Offer.objects.filter(payout_model=PayoutModel.CPC)
        .select_related("advertiser")
        .order_by("pk")
        if offer.revenue_minor or offer.payout_minor
    ]
    return batch_write_each(
        offers,
        write=lambda offer: _offer_clicks_book(offer, cutoff),
        kind=SetAsideKind.CPC,
        key=_cpc_key,
        data=lambda offer: {"offer_id": offer.pk, "offer": offer.name, "closed_before": cutoff},
    ).counted


def _cpc_key(offer: Offer) -> str:
    return f"offer:{offer.pk}"


@transaction.atomic
def _offer_clicks_book(offer: Offer, cutoff: datetime) -> int:
    """One offer's unbooked hours, all at once: the next run starts after the last hour
    booked, so an hour is booked for every affiliate or for none."""
    last = Transaction.objects.filter(kind=TransactionKind.CLICKS, offer=offer).aggregate(
        m=Max("posted_at")
    )["m"]
    clicks = billable_clicks().filter(offer=offer, created_at__lt=cutoff)
    if last is not None:
        clicks = clicks.filter(created_at__gte=last + timedelta(hours=1))
    groups = (
        clicks.annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "affiliate_id")
        .annotate(n=Count("id"))
        .order_by("hour", "affiliate_id")
    )
    affiliates: dict[int, Organization] = {}
    posted = 0
    for group in groups:
        affiliate = affiliates.get(group["affiliate_id"]) or Organization.objects.get(
            pk=group["affiliate_id"]
        )
        affiliates[affiliate.pk] = affiliate
        n, hour = group["n"], group["hour"]
        payout = offer_payout_for(offer=offer, affiliate=affiliate)
        _, created = transaction_post(
            external_id=f"clicks:{offer.pk}:{affiliate.pk}:{hour:%Y-%m-%dT%H}",
            kind=TransactionKind.CLICKS,
            postings=earning_postings(
                advertiser=offer.advertiser,
                affiliate=affiliate,
                currency=offer.currency,
                revenue_minor=n * offer.revenue_minor,
                payout_minor=n * payout,
                in_hold=False,
            ),
            memo=f"{n} clicks on {offer.name}, {hour:%Y-%m-%d %H}:00 UTC",
            offer_id=offer.pk,
            affiliate_id=affiliate.pk,
            quantity=n,
            posted_at=hour,
        )
        posted += created
    return posted


def earnings_book_now() -> int:
    """The worker's periodic job (settings.LEADRELAY_PERIODIC_JOBS)."""
    return clicks_book() + conversions_hold_release()
