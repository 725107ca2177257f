"""Buyers returning leads they were delivered.

A buyer returns a delivered lead with a reason code within its
`return_window_days` of the delivery. The return is accepted at once while the
buyer's accepted returns this calendar month (UTC) stay within
`auto_accept_returns_bp` of its deliveries this month; otherwise it waits for
network staff (`buyer_return_decide`).

Accepting reverses the sale (the buyer owes the price no more) and marks the
delivery returned. With `LEADRELAY_RETURNS_REVERSE_COMMISSION` (default on),
once no buyer keeps the lead, the affiliate's commission is taken back too
(leads/returns.py): the lead becomes `returned` and the affiliate's
`lead_reversed` postback fires. If the commission was paid out meanwhile it
stays paid, and the return's note says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization, User
from leadrelay.core.errors import Conflict, DomainError, NotFound
from leadrelay.distribution.models import BuyerReturn, Delivery, DeliveryStatus, ReturnStatus
from leadrelay.leads.models import LeadStatus
from leadrelay.leads.returns import lead_take_back, reason_code
from leadrelay.leads.services import lead_locked
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.services import staff_check, transaction_reverse


def _month_start(at: datetime) -> datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def buyer_return_request(
    *, lead_id: int, by: Organization, reason: str, now: datetime | None = None
) -> BuyerReturn:
    """The advertiser `by` returns a lead one of its buyers was delivered."""
    reason = reason_code(reason)
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("buyer")
            .filter(lead_id=lead_id, buyer__advertiser=by)
            .exclude(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
            .order_by("-pk")
            .first()
        )
        if delivery is None:
            raise NotFound("Lead")
        if (
            delivery.status != DeliveryStatus.DELIVERED
            or BuyerReturn.objects.filter(delivery=delivery).exists()
        ):
            raise Conflict("already_returned", "This lead was returned already.")
        delivered_at = delivery.booked_at or delivery.updated_at
        window = delivery.buyer.return_window_days
        if now > delivered_at + timedelta(days=window):
            raise Conflict(
                "return_window_closed", f"Returns are accepted for {window} days after delivery."
            )
        request = BuyerReturn.objects.create(delivery=delivery, reason=reason, created_at=now)
        month = _month_start(now)
        sent = Delivery.objects.filter(buyer=delivery.buyer, booked_at__gte=month).count()
        accepted = BuyerReturn.objects.filter(
            delivery__buyer=delivery.buyer, status=ReturnStatus.ACCEPTED, decided_at__gte=month
        ).count()
        if (accepted + 1) * 10_000 <= delivery.buyer.auto_accept_returns_bp * max(sent, 1):
            _accept(request, actor=None, at=now)
    return request


def buyer_return_decide(
    *, return_id: int, accept: bool, staff: User | None, now: datetime | None = None
) -> BuyerReturn:
    """Network staff accept or refuse a return that waits for review."""
    staff_check(staff)
    now = now or timezone.now()
    with transaction.atomic():
        request = BuyerReturn.objects.select_for_update().filter(pk=return_id).first()
        if request is None:
            raise NotFound("Return")
        if request.status != ReturnStatus.PENDING:
            raise Conflict("return_already_decided", "This return was decided already.")
        if accept:
            _accept(request, actor=staff, at=now)
        else:
            request.status, request.decided_at, request.decided_by = (
                ReturnStatus.REFUSED,
                now,
                staff,
            )
            request.save(update_fields=["status", "decided_at", "decided_by"])
    return request


def _accept(request: BuyerReturn, *, actor: User | None, at: datetime) -> None:
    delivery = (
        Delivery.objects.select_for_update().select_related("lead").get(pk=request.delivery_id)
    )
    sale = Transaction.objects.filter(
        external_id=f"sale:{delivery.lead_id}:{delivery.buyer_id}"
    ).first()
    if sale is not None:
        transaction_reverse(
            transaction_id=sale.pk,
            reason=f"returned by the buyer: {request.reason}",
            created_by=actor,
            posted_at=at,
        )
    delivery.status = DeliveryStatus.RETURNED
    delivery.save(update_fields=["status", "updated_at"])
    request.status, request.decided_at, request.decided_by = ReturnStatus.ACCEPTED, at, actor
    kept = Delivery.objects.filter(lead=delivery.lead_id, status=DeliveryStatus.DELIVERED)
    if settings.LEADRELAY_RETURNS_REVERSE_COMMISSION and not kept.exists():
        lead = lead_locked(delivery.lead_id)
        if lead.status == LeadStatus.APPROVED:
            try:
                with transaction.atomic():
                    lead_take_back(
                        lead, to=LeadStatus.RETURNED, reason=request.reason, actor=actor, at=at
                    )
            except DomainError as exc:
                request.note = f"The affiliate's commission was not taken back: {exc.message}"[:500]
    request.save(update_fields=["status", "decided_at", "decided_by", "note"])
