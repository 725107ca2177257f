"""The hold period: an approved lead's payout is the affiliate's to be paid only after it.

On approval the payout is booked to the affiliate's pending account with the
time it becomes payable (the offer's `hold_days` later). The worker's periodic
sweep moves each due lead's payout to the available account, once per lead
(the ledger transaction `lead:<id>:released` can't be posted twice).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.services import lead_hold_release_post


def leads_hold_release(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Release every approved lead whose hold has ended. Safe to run anywhere, any time."""
    now = now or timezone.now()
    due = list(
        Lead.objects.filter(
            status=LeadStatus.APPROVED,
            payable_at__lte=now,
            released_at__isnull=True,
            affiliate__isnull=False,
        )
        .order_by("payable_at")
        .values_list("pk", flat=True)[:limit]
    )
    released = 0
    for lead_id in due:
        with transaction.atomic():
            lead = (
                Lead.objects.select_for_update()
                .filter(pk=lead_id, released_at__isnull=True)
                .first()
            )
            affiliate = lead.affiliate if lead is not None else None
            if lead is None or affiliate is None:
                continue
            lead_hold_release_post(
                lead_id=lead.pk,
                affiliate=affiliate,
                currency=lead.currency,
                payout_minor=lead.payout_minor,
                offer_id=lead.offer_id,
                posted_at=lead.payable_at,
            )
            lead.released_at = now
            lead.save(update_fields=["released_at"])
            released += 1
    return released


def leads_hold_release_now() -> int:
    """The worker's periodic sweep (settings.LEADRELAY_PERIODIC_JOBS)."""
    return leads_hold_release()
