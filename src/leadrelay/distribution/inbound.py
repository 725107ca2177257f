"""Inbound pings: an affiliate asks what a lead would earn before posting it.

`POST /api/v1/ping` carries the lead's non-personal fields (no name, email,
phone, address, birth date: refused with `personal_field_in_ping`). leadrelay
prices the lead as it would route it: a ping-post offer pings its buyers
(pingpost.py) and takes the best bid (shared: the top N added up); other modes
take the price of the first buyer that would get it (shared: the buyers it
would go to). The network keeps the offer routing's `margin_bps` of that
price; the rest is the affiliate's **quote**, valid for `ping_ttl_seconds`.

The affiliate then posts the lead (`POST /api/v1/leads` with `ping_id`) before
the quote expires, with the same values for the fields it pinged. The lead is
paid the quote when approved, whatever the offer's payout, and a ping-post
offer posts it to the bidders of the ping (their ping ids, their bids) instead
of running a second auction, when it is routed within `BIDS_GRACE` of the
quote's expiry (a lead held for review is auctioned again when approved). A
ping is used once; a lead posted late, twice, or with other values is refused
and nothing is stored.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization
from leadrelay.core.errors import Conflict, Invalid, Problem
from leadrelay.distribution.buyers import PERSONAL_KEYS
from leadrelay.distribution.delivery import auction_outcome
from leadrelay.distribution.models import BidStatus, Buyer, InboundPing, OfferRouting, RoutingMode
from leadrelay.distribution.pingpost import Bid, auction_run
from leadrelay.distribution.routing import candidates_for, considered_rows, ranked
from leadrelay.leads.models import Lead
from leadrelay.leads.services import offer_for_intake
from leadrelay.leads.validation import lead_fields_clean
from leadrelay.offers.models import FieldType, Offer, PayoutModel

TOKEN_PREFIX = "png_"
BIDS_GRACE = timedelta(seconds=60)  # the task queue's delay between the post and routing
RESPONSE_KEPT = 500


def _token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(18)


def _personal_keys(offer: Offer) -> set[str]:
    typed = offer.fields.filter(type__in=[FieldType.EMAIL, FieldType.PHONE])
    return set(PERSONAL_KEYS) | set(typed.values_list("key", flat=True))


def _bid_row(bid: Bid) -> dict[str, Any]:
    return {
        "buyer": bid.buyer.pk,
        "status": str(bid.status),
        "bid_minor": bid.bid_minor,
        "ping_id": bid.ping_id,
        "duration_ms": bid.duration_ms,
        "error": bid.error,
        "response": bid.response[:RESPONSE_KEPT],
    }


def inbound_ping(
    *,
    affiliate: Organization,
    offer_id: int,
    fields: dict[str, Any],
    ip: str | None = None,
    user_agent: str = "",
    now: datetime | None = None,
) -> InboundPing:
    """Price a lead from its non-personal fields and keep the quote. Raises NotFound /
    PermissionDenied as a lead post would, Conflict `pings_not_taken` for an offer that
    doesn't sell its leads per lead to buyers, Invalid for personal or invalid fields."""
    offer = offer_for_intake(offer_id=offer_id, affiliate=affiliate)
    routing = OfferRouting.objects.filter(offer=offer, enabled=True).first()
    if routing is None or offer.payout_model != PayoutModel.CPL:
        raise Conflict("pings_not_taken", "This offer doesn't price leads before they are posted.")
    personal = _personal_keys(offer)
    problems = [
        Problem(
            "personal_field_in_ping",
            "A ping carries no personal data: send it with the lead.",
            f"fields.{str(key)[:64]}",
        )
        for key in fields
        if key in personal
    ]
    cleaned, found = lead_fields_clean(
        schema=offer.fields.all(), raw=fields, default_region=offer.default_region
    )
    # A ping has some of the fields: only those it has must be valid.
    problems += [p for p in found if p.code != "required" and p not in problems]
    if problems:
        raise Invalid(problems)
    now = now or timezone.now()
    probe = Lead(
        offer=offer,
        affiliate=affiliate,
        fields=cleaned,
        ip=ip,
        user_agent=user_agent[:512],
        currency=offer.currency,
        created_at=now,
    )
    started = time.monotonic()
    bids: list[dict[str, Any]] = []
    if routing.mode == RoutingMode.PING_POST:
        candidates = candidates_for(probe, routing, now)
        pinged = [c.buyer for c in candidates if c.eligible and c.buyer.ping_url]
        by_buyer = {bid.buyer.pk: bid for bid in auction_run(probe, pinged, routing, now)}
        considered, winners = auction_outcome(candidates, by_buyer)
        sold = winners[: routing.max_buyers] if routing.shared else winners[:1]
        price, accepted = sum(bid.bid_minor or 0 for bid in sold), bool(sold)
        bids = [_bid_row(bid) for bid in by_buyer.values()]
    else:
        candidates, ordered = ranked(probe, routing, now)
        sold_to = ordered if routing.shared else ordered[:1]
        price, accepted = sum(c.buyer.price_minor for c in sold_to), bool(sold_to)
        considered = considered_rows(candidates, ordered)
    return InboundPing.objects.create(
        token=_token(),
        offer=offer,
        affiliate=affiliate,
        fields=cleaned,
        accepted=accepted,
        price_minor=price,
        quote_minor=price * (10_000 - routing.margin_bps) // 10_000,
        currency=offer.currency,
        margin_bps=routing.margin_bps,
        considered=considered,
        bids=bids,
        duration_ms=int((time.monotonic() - started) * 1000),
        created_at=now,
        expires_at=now + timedelta(seconds=routing.ping_ttl_seconds),
    )


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def ping_for_post(
    *, token: str, affiliate: Organization | None, offer: Offer, cleaned: dict[str, Any]
) -> tuple[InboundPing | None, list[Problem]]:
    """The caller's ping for a lead post, and what is wrong with posting this lead with it."""
    ping = None
    if affiliate is not None:
        ping = InboundPing.objects.filter(token=token, affiliate=affiliate).first()
    if ping is None:
        return None, [Problem("unknown_ping", "You have no ping with this id.", "ping_id")]
    if ping.offer_id != offer.pk:
        message = f"This ping was for offer {ping.offer_id}."
        return None, [Problem("ping_offer_mismatch", message, "ping_id")]
    return ping, [
        Problem("ping_mismatch", f"The ping said {json.dumps(value)[:100]}.", f"fields.{key}")
        for key, value in ping.fields.items()
        if not _same(cleaned.get(key), value)
    ]


def ping_take(ping: InboundPing, now: datetime) -> InboundPing:
    """Inside the intake's transaction, before the lead is stored: the ping, locked, if it
    may still be used. Raises Conflict `ping_used`, `ping_expired` or `ping_not_accepted`."""
    locked = InboundPing.objects.select_for_update().get(pk=ping.pk)
    if locked.used_at is not None:
        raise Conflict("ping_used", "A lead was posted with this ping already.")
    if locked.expires_at <= now:
        raise Conflict(
            "ping_expired",
            f"The quote expired at {locked.expires_at.isoformat()}: ping again.",
        )
    if not locked.accepted:
        raise Conflict(
            "ping_not_accepted",
            "No buyer wanted this lead when it was pinged: ping again, or post without ping_id.",
        )
    return locked


def ping_use(ping: InboundPing, lead: Lead, now: datetime) -> None:
    assert transaction.get_connection().in_atomic_block
    ping.lead = lead
    ping.used_at = now
    ping.save(update_fields=["lead", "used_at"])


def quoted_bids(lead: Lead, buyers: list[Buyer], now: datetime) -> dict[int, Bid] | None:
    """The bids of the inbound ping the lead was posted with, for the buyers that may still
    have it; None when it had no ping or its bids are too old (then it is auctioned)."""
    ping = InboundPing.objects.filter(lead=lead).first()
    if ping is None or not ping.bids or now > ping.expires_at + BIDS_GRACE:
        return None
    by_pk = {buyer.pk: buyer for buyer in buyers}
    return {
        row["buyer"]: Bid(
            buyer=by_pk[row["buyer"]],
            status=BidStatus(row["status"]),
            bid_minor=row["bid_minor"],
            ping_id=row["ping_id"],
            duration_ms=row["duration_ms"],
            error=row["error"],
            response=row["response"],
        )
        for row in ping.bids
        if row["buyer"] in by_pk
    }
