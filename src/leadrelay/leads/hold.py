"""The hold period: an approved lead's payout is the affiliate's to be paid only after it.

On approval the payout is booked to the affiliate's pending account with the
time it becomes payable (the offer's `hold_days` later). The worker's periodic
sweep moves each due lead's payout to the available account, once per lead
(the ledger transaction `lead:<id>:released` can't be posted twice).

Each lead is released in its own transaction (core/batches.py `batch_write_each`): a
lead whose release fails (the ledger refuses it: its payout is more than the pending
account holds, say) is logged and kept as an open set-aside row (kind `lead_hold`, key
`lead:<id>`, counted in /healthz), and the leads after it are released meanwhile. The
next run tries it again (an attempt more) and resolves the row once it is released, or
once there is nothing left to release (the lead was taken back meanwhile). A database
that doesn't answer stops the run (BatchInterrupted) and sets nothing aside.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadrelay.core.batches import batch_write_each
from leadrelay.core.models import SetAsideKind
from leadrelay.core.selectors import set_aside_open_ids
from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.services import lead_hold_release_post


def leads_hold_release(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Release every approved lead whose hold has ended; returns how many. Safe to run
    anywhere, any time. A lead that fails is set aside and tried again by the next run
    (module docstring); raises BatchInterrupted when the database doesn't answer."""
    now = now or timezone.now()
    due = Lead.objects.filter(
        status=LeadStatus.APPROVED,
        payable_at__lte=now,
        released_at__isnull=True,
        affiliate__isnull=False,
    ).order_by("payable_at")
    ids = [*due.values_list("pk", flat=True)[:limit]]
    # Set aside by an earlier run, still due or not: visited so that their rows resolve.
    ids = list(dict.fromkeys([*ids, *set_aside_open_ids(kind=SetAsideKind.LEAD_HOLD)]))
    return batch_write_each(
        ids,
        write=lambda lead_id: _lead_hold_release(lead_id, now),
        kind=SetAsideKind.LEAD_HOLD,
        key=_lead_key,
        data=_lead_data,
    ).counted


@transaction.atomic
def _lead_hold_release(lead_id: int, now: datetime) -> bool:
    """Release one lead's payout; False when there is nothing to release (released by
    another worker, taken back, or not due)."""
    lead = (
        Lead.objects.select_for_update()
        .filter(
            pk=lead_id,
            status=LeadStatus.APPROVED,
            payable_at__lte=now,
            released_at__isnull=True,
        )
        .first()
    )
    affiliate = lead.affiliate if lead is not None else None
    if lead is None or affiliate is None:
        return False
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
    return True


def _lead_key(lead_id: int) -> str:
    return f"lead:{lead_id}"


def _lead_data(lead_id: int) -> dict[str, Any]:
    row = (
        Lead.objects.filter(pk=lead_id)
        .values("offer_id", "affiliate_id", "currency", "payout_minor", "payable_at")
        .first()
    )
    return {"lead_id": lead_id, **(row or {})}


def leads_hold_release_now() -> int:
    """The worker's periodic sweep (settings.LEADRELAY_PERIODIC_JOBS)."""
    return leads_hold_release()
