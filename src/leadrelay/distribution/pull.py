"""Buyers who fetch their leads instead of being sent them (method `pull`).

Leads routed to a pull buyer wait as pending deliveries. Fetching them (API or
CSV) delivers them: each is marked delivered and its sale booked, in one
database transaction, the first time it is fetched. A fetch returns the
deliveries after the `after` cursor (a delivery id), oldest first, so a buyer
that lost an answer fetches again from its last cursor and gets the same
leads, booked once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization
from leadrelay.core.csvexport import csv_text
from leadrelay.core.errors import NotFound
from leadrelay.core.money import money_decimal
from leadrelay.distribution.delivery import sale_book
from leadrelay.distribution.models import Buyer, Delivery, DeliveryMethod, DeliveryStatus
from leadrelay.distribution.payload import lead_values, mapped_fields

PAGE_MAX = 500


@dataclass(frozen=True)
class PulledLead:
    delivery_id: int
    lead_id: int
    price: str
    currency: str
    delivered_at: datetime
    fields: dict[str, str]


def buyer_leads_pull(
    *, advertiser: Organization, buyer_id: int, after: int = 0, limit: int = 100
) -> list[PulledLead]:
    """The buyer's leads after the cursor; pending ones are delivered now."""
    buyer = Buyer.objects.filter(
        pk=buyer_id, advertiser=advertiser, method=DeliveryMethod.PULL
    ).first()
    if buyer is None:
        raise NotFound("Buyer")
    now = timezone.now()
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("lead", "buyer__advertiser")
            .filter(
                buyer=buyer,
                pk__gt=after,
                status__in=[DeliveryStatus.PENDING, DeliveryStatus.DELIVERED],
            )
            .order_by("pk")[: max(1, min(limit, PAGE_MAX))]
        )
        for delivery in deliveries:
            if delivery.status == DeliveryStatus.PENDING:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.attempts += 1
                sale_book(delivery, now)
                delivery.save()
    return [
        PulledLead(
            delivery_id=d.pk,
            lead_id=d.lead_id,
            price=money_decimal(d.price_minor, d.currency),
            currency=d.currency,
            delivered_at=d.booked_at or now,
            fields=mapped_fields(buyer.mapping(), lead_values(d.lead, d.price_minor, d.currency)),
        )
        for d in deliveries
    ]


def buyer_leads_csv(rows: list[PulledLead], buyer: Buyer) -> str:
    """The leads as CSV (core/csvexport.py): every cell quoted, the lead's fields (text
    from the open web) escaped against formulas, ids and the price as numbers."""
    names = list(buyer.mapping())
    return csv_text(
        ["delivery_id", "lead_id", "price", "currency", "delivered_at", *names],
        (
            [
                r.delivery_id,
                r.lead_id,
                Decimal(r.price),
                r.currency,
                r.delivered_at.isoformat(),
                *(r.fields.get(n, "") for n in names),
            ]
            for r in rows
        ),
    )
