"""Routing: which buyers may have a lead, in which order, and why the others may not.

Every active buyer of the lead's vertical (and, if it lists offers, of the
lead's offer) is considered; each is eligible or skipped with a reason:

    paused                      the buyer is paused (by its owner or after failures)
    currency                    it buys in another currency than the offer's
    filter:<codes>              its filters refuse the lead (the rule codes that failed)
    outside_schedule            closed now in its time zone
    cap_reached:<period>:leads  / cap_reached:<period>:spend
    over_budget                 prepaid + credit limit - owed - sent, not yet billed < price
    exclusive_only / shared_only  it buys the other kind of lead
    already_sent                it had this lead already

The offer's routing mode orders the eligible ones: `priority` (lowest
priority number first, then highest price), `highest_price` (then priority),
`weighted` (weighted round-robin: the buyer furthest behind its share of today's
deliveries goes first) and `shared` (every eligible buyer, highest price first,
at most `max_buyers`). The decision, with every buyer and its reason, is kept
as a RoutingDecision.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from leadrelay.distribution.models import (
    Buyer,
    BuyerStatus,
    Delivery,
    DeliveryStatus,
    OfferRouting,
    RoutingDecision,
    RoutingMode,
)
from leadrelay.leads.models import Lead
from leadrelay.leads.rules import rules_failures
from leadrelay.leads.services import lead_facts
from leadrelay.ledger.models import AccountRole
from leadrelay.ledger.selectors import balances_for
from leadrelay.offers.caps import period_start
from leadrelay.offers.targeting import schedule_is_open

# Deliveries that hold a buyer's cap and budget: sent or being sent.
LIVE = [DeliveryStatus.PENDING, DeliveryStatus.DELIVERED]


@dataclass
class Candidate:
    buyer: Buyer
    reason: str = ""

    @property
    def eligible(self) -> bool:
        return not self.reason


def _since(period: str, at: dt.datetime, tz: str) -> dt.datetime:
    day = period_start(period, at, tz)
    return dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(tz))


def _cap_reason(buyer: Buyer, at: dt.datetime) -> str:
    for cap in buyer.caps.all():
        sent = Delivery.objects.filter(
            buyer=buyer, status__in=LIVE, created_at__gte=_since(cap.period, at, buyer.timezone)
        ).aggregate(n=Count("id"), spend=Sum("price_minor"))
        if cap.max_leads is not None and sent["n"] + 1 > cap.max_leads:
            return f"cap_reached:{cap.period}:leads"
        if (
            cap.max_spend_minor is not None
            and (sent["spend"] or 0) + buyer.price_minor > cap.max_spend_minor
        ):
            return f"cap_reached:{cap.period}:spend"
    return ""


def buyer_headroom(buyer: Buyer) -> int | None:
    """What the buyer may still be sent: prepaid + credit limit - owed - sent and not yet
    billed; None when it has no limit."""
    if buyer.credit_limit_minor is None:
        return None
    balances = {
        (b.role, b.currency): b.amount_minor for b in balances_for(organization=buyer.advertiser)
    }
    prepaid = balances.get((AccountRole.ADVERTISER_PREPAID, buyer.currency), 0)
    owed = balances.get((AccountRole.ADVERTISER_RECEIVABLE, buyer.currency), 0)
    unbilled = (
        Delivery.objects.filter(
            buyer__advertiser=buyer.advertiser,
            currency=buyer.currency,
            status__in=LIVE,
            booked_at__isnull=True,
        ).aggregate(t=Sum("price_minor"))["t"]
        or 0
    )
    return prepaid + buyer.credit_limit_minor - owed - unbilled


def candidates_for(lead: Lead, routing: OfferRouting, at: dt.datetime) -> list[Candidate]:
    offer = lead.offer
    buyers = (
        Buyer.objects.filter(vertical=offer.vertical)
        .filter(Q(offers=None) | Q(offers=offer))
        .select_related("advertiser")
        .prefetch_related("caps")
        .distinct()
        .order_by("priority", "-price_minor", "pk")
    )
    already = (  # an inbound ping's lead is not stored yet (inbound.py)
        set(Delivery.objects.filter(lead=lead).values_list("buyer_id", flat=True))
        if lead.pk
        else set()
    )
    shared = routing.shared
    facts = lead_facts(lead.fields, lead.ip, lead.user_agent)
    out = []
    for buyer in buyers:
        reason = ""
        if buyer.status != BuyerStatus.ACTIVE:
            reason = "paused"
        elif buyer.currency != offer.currency:
            reason = "currency"
        elif buyer.pk in already:
            reason = "already_sent"
        elif buyer.exclusive == shared:
            reason = "exclusive_only" if buyer.exclusive else "shared_only"
        elif failures := rules_failures(buyer.filters, facts) if buyer.filters else []:
            reason = "filter:" + ",".join(failures)
        elif not schedule_is_open(buyer.schedule, buyer.timezone, at):
            reason = "outside_schedule"
        elif cap := _cap_reason(buyer, at):
            reason = cap
        else:
            headroom = buyer_headroom(buyer)
            if headroom is not None and headroom < buyer.price_minor:
                reason = "over_budget"
        out.append(Candidate(buyer, reason))
    return out


def _weighted_order(eligible: list[Candidate], at: dt.datetime) -> list[Candidate]:
    """Deficit round-robin: today's deliveries ÷ weight, lowest first; ties by priority."""
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = dict(
        Delivery.objects.filter(
            buyer__in=[c.buyer for c in eligible], created_at__gte=today, status__in=LIVE
        )
        .values_list("buyer_id")
        .annotate(n=Count("id"))
    )
    return sorted(
        eligible,
        key=lambda c: (counts.get(c.buyer.pk, 0) / c.buyer.weight, c.buyer.priority, c.buyer.pk),
    )


def ranked(
    lead: Lead, routing: OfferRouting, at: dt.datetime
) -> tuple[list[Candidate], list[Candidate]]:
    """Every buyer considered, and the eligible ones in the order they would be tried."""
    candidates = candidates_for(lead, routing, at)
    eligible = [c for c in candidates if c.eligible]
    if routing.mode == RoutingMode.WEIGHTED:
        ordered = _weighted_order(eligible, at)
    elif routing.mode in (RoutingMode.HIGHEST_PRICE, RoutingMode.SHARED):
        ordered = sorted(eligible, key=lambda c: (-c.buyer.price_minor, c.buyer.priority))
    else:
        ordered = eligible  # already by priority, then price
    if routing.mode == RoutingMode.SHARED:
        ordered = ordered[: routing.max_buyers]
    return candidates, ordered


def considered_rows(candidates: list[Candidate], ordered: list[Candidate]) -> list[dict[str, Any]]:
    """Every buyer considered, with its rank or why it has none (a decision's `considered`)."""
    rank = {c.buyer.pk: i + 1 for i, c in enumerate(ordered)}

    def verdict(c: Candidate) -> str:
        # Eligible buyers are tried in rank order (shared: all ranked ones at once).
        if c.reason:
            return c.reason
        return f"rank:{rank[c.buyer.pk]}" if c.buyer.pk in rank else "beyond_max_buyers"

    return [
        {
            "buyer": c.buyer.pk,
            "name": c.buyer.name,
            "price_minor": c.buyer.price_minor,
            "eligible": c.eligible,
            "reason": verdict(c),
        }
        for c in candidates
    ]


def route(lead: Lead, routing: OfferRouting, at: dt.datetime | None = None) -> RoutingDecision:
    """Decide the buyers for a lead, in order, and log why. Creates no delivery."""
    at = at or timezone.now()
    candidates, ordered = ranked(lead, routing, at)
    return RoutingDecision.objects.create(
        lead=lead,
        mode=routing.mode,
        shared=routing.shared,
        considered=considered_rows(candidates, ordered),
        chosen=[c.buyer.pk for c in ordered],
        created_at=at,
    )
