"""Taking back an approved lead: the advertiser's return, or a reversal by network staff.

A **return** is the advertiser sending back a lead it bought, with a reason
code, within the offer's `return_window_days` of approval. A **reversal** is
network staff taking back any approved lead, with a reason, at any time.

Either way the lead's ledger transactions are reversed, each by a linked
transaction (ledger.services.transaction_reverse): the hold release first if
the payout had left hold, then the approval. The advertiser owes the revenue no
more and the affiliate loses the payout; if the affiliate's available balance
no longer holds it (paid out meanwhile), the reversal is refused with
`insufficient_balance` and nothing changes: post a manual adjustment instead.
The affiliate's `lead_reversed` postback fires.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.core.errors import Conflict, Invalid, NotFound, Problem
from leadrelay.leads.models import Lead, LeadStatus, LeadStatusChange
from leadrelay.leads.services import lead_locked
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.services import staff_check, transaction_reverse
from leadrelay.postbacks.models import PostbackEvent
from leadrelay.postbacks.services import affiliate_postbacks_enqueue
from leadrelay.reporting.rollups import lead_counted

_REASON_RE = re.compile(r"^[a-z0-9_]{1,64}$")


def reason_code(reason: str) -> str:
    """A return's reason as a code (`bad_phone`), lower-cased; Invalid if it isn't one."""
    code = reason.strip().lower()
    if not _REASON_RE.match(code):
        raise Invalid(
            [
                Problem(
                    "invalid_reason",
                    "A reason code: lower-case letters, digits and _ (e.g. bad_phone).",
                    "reason",
                )
            ]
        )
    return code


def lead_take_back(
    lead: Lead, *, to: LeadStatus, reason: str, actor: User | None, at: datetime
) -> None:
    """Reverse an approved lead's bookings and mark it `to`; the caller holds its lock."""
    lead.status = to
    lead.returned_at = at
    lead.return_reason = reason
    lead.save(update_fields=["status", "returned_at", "return_reason"])
    LeadStatusChange.objects.create(
        lead=lead, from_status=LeadStatus.APPROVED, to_status=to, reasons=[reason], actor=actor
    )
    lead_counted(lead, LeadStatus.APPROVED)  # counts before money: rollups' lock order
    for suffix in ("released", "approved"):
        booked = Transaction.objects.filter(external_id=f"lead:{lead.pk}:{suffix}").first()
        if booked is not None:
            transaction_reverse(
                transaction_id=booked.pk,
                reason=f"{to.label.lower()}: {reason}",
                created_by=actor,
                posted_at=at,
            )
    affiliate_postbacks_enqueue(lead=lead, event=PostbackEvent.LEAD_REVERSED)


def _locked_approved(lead_id: int) -> Lead:
    lead = lead_locked(lead_id)
    if lead.status != LeadStatus.APPROVED:
        raise Conflict(
            "lead_not_approved",
            f"Only approved leads can be taken back; this one is {lead.get_status_display()}.",
        )
    return lead


def lead_return(
    *,
    lead_id: int,
    by: Organization,
    reason: str,
    actor: User | None = None,
    now: datetime | None = None,
) -> Lead:
    """The advertiser (`by`, or the network on its behalf) returns an approved lead."""
    reason = reason_code(reason)
    now = now or timezone.now()
    with transaction.atomic():
        lead = _locked_approved(lead_id)
        if by.kind == OrganizationKind.AFFILIATE or (
            by.kind == OrganizationKind.ADVERTISER and lead.offer.advertiser_id != by.pk
        ):
            raise NotFound("Lead")
        window = lead.offer.return_window_days
        if window == 0:
            raise Conflict("returns_not_accepted", "This offer does not accept returns.")
        assert lead.decided_at is not None
        if now > lead.decided_at + timedelta(days=window):
            raise Conflict(
                "return_window_closed",
                f"Returns are accepted for {window} days after approval.",
            )
        lead_take_back(lead, to=LeadStatus.RETURNED, reason=reason, actor=actor, at=now)
    return lead


def lead_reverse(
    *, lead_id: int, reason: str, staff: User | None, now: datetime | None = None
) -> Lead:
    """Network staff reverse an approved lead, at any time, saying why."""
    if not reason.strip():
        raise Invalid([Problem("reason_required", "Say why it is reversed.", "reason")])
    staff_check(staff)
    with transaction.atomic():
        lead = _locked_approved(lead_id)
        lead_take_back(
            lead,
            to=LeadStatus.REVERSED,
            reason=reason.strip()[:64],
            actor=staff,
            at=now or timezone.now(),
        )
    return lead
