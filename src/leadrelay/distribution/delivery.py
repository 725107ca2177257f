"""The delivery engine: a lead is routed once, then sent to its buyers, with every try kept.

`lead_distribute` routes an approved lead (routing.py) and creates its first
delivery (exclusive modes) or one per chosen buyer (shared); deliveries are
rows, and a task per delivery makes one try at a time (`delivery_attempt`):

- **delivered**: a 2xx answer that passes the buyer's response rule (a JSON
  path equal to a value, and/or a regex found in the body); the buyer's lead id
  is read when a path for it is set, and the sale is booked in the ledger in
  the same database transaction (`sale:<lead>:<buyer>`, so once);
- **rejected**: a 2xx answer the rule refuses (the buyer said no);
- **retried**: a timeout, a connection error, 5xx, 408 or 429, after a capped
  exponential delay with ±10 % jitter (`RETRY_DELAYS_SECONDS`, about 40 h in
  all), or after the buyer's `Retry-After` (capped at 8 h);
- **failed**: any other answer (other 4xx, a redirect: never followed), an
  address that is not public, or the last retry used up.

A rejected or failed exclusive delivery passes the lead to the next buyer of
its routing decision (the waterfall). Each try is a DeliveryAttempt with the
first 2 KB of the answer. A buyer whose endpoint fails `pause_after_failures`
times in a row is paused, with the reason shown to its owner.

Each request carries Standard Webhooks headers (`webhook-id`,
`webhook-timestamp`, `webhook-signature`): signed with each of the buyer's
secrets while a rotation overlaps, so a buyer verifies with the
`standardwebhooks` library. The id is the same for every try of a delivery.
"""

from __future__ import annotations

import json
import random
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from leadrelay import __version__
from leadrelay.core.errors import Conflict, NotFound
from leadrelay.core.money import money_parse
from leadrelay.core.outbound import Answer, Request, safe_call
from leadrelay.core.patterns import pattern_found
from leadrelay.core.text import text_kept
from leadrelay.distribution.models import (
    RESPONSE_KEEP,
    BidStatus,
    Buyer,
    BuyerStatus,
    Delivery,
    DeliveryAttempt,
    DeliveryMethod,
    DeliveryStatus,
    OfferRouting,
    PingBid,
    RoutingDecision,
    RoutingMode,
)
from leadrelay.distribution.payload import json_path_get, lead_values, mapped_fields
from leadrelay.distribution.pingpost import Bid, auction_run
from leadrelay.distribution.routing import Candidate, candidates_for, route
from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.services import lead_sale_post

SEND_TIMEOUT_SECONDS = 10.0
PARSE_LIMIT = 65_536  # read this much of an answer to apply the response rule
RETRY_DELAYS_SECONDS = (30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 28800)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
RETRY_JITTER = 0.1


def lead_distribute(*, lead_id: int, now: datetime | None = None) -> list[Delivery]:
    """Route an approved lead once and start its deliveries. Returns the new deliveries
    (none when it was routed before, or no buyer may have it)."""
    now = now or timezone.now()
    routing = OfferRouting.objects.filter(offer__leads=lead_id, enabled=True).first()
    if routing is not None and routing.mode == RoutingMode.PING_POST:
        return _ping_post_distribute(lead_id, routing, now)
    with transaction.atomic():
        lead = Lead.objects.select_for_update().select_related("offer").filter(pk=lead_id).first()
        if lead is None or lead.status != LeadStatus.APPROVED:
            return []
        if routing is None or RoutingDecision.objects.filter(lead=lead).exists():
            return []
        decision = route(lead, routing, now)
        chosen = decision.chosen if decision.shared else decision.chosen[:1]
        deliveries = [_delivery_start(lead, buyer_id, decision, now) for buyer_id in chosen]
    return deliveries


def _delivery_start(
    lead: Lead, buyer_id: int, decision: RoutingDecision, now: datetime
) -> Delivery:
    from leadrelay.distribution.tasks import delivery_send  # tasks import this module

    buyer = Buyer.objects.get(pk=buyer_id)
    pulled = buyer.method == DeliveryMethod.PULL  # waits for the buyer to fetch it
    won: dict[str, Any] = next(
        (c for c in decision.considered if c["buyer"] == buyer_id and "bid_minor" in c), {}
    )
    delivery = Delivery.objects.create(
        lead=lead,
        buyer=buyer,
        decision=decision,
        price_minor=won.get("bid_minor", buyer.price_minor),
        ping_id=won.get("ping_id", ""),
        currency=buyer.currency,
        next_attempt_at=None if pulled else now,
        created_at=now,
    )
    if not pulled:
        transaction.on_commit(lambda: delivery_send.enqueue(delivery.pk), robust=True)
    return delivery


def auction_outcome(
    candidates: list[Candidate], bids: dict[int, Bid], missing: str = "no_ping_url"
) -> tuple[list[dict[str, Any]], list[Bid]]:
    """Each buyer with its bid or why it had none, and the winning bids, best first.
    `missing`: the reason of an eligible buyer that was not pinged."""
    winners = sorted(
        (b for b in bids.values() if b.status == BidStatus.BID),
        key=lambda b: (-(b.bid_minor or 0), b.buyer.priority, b.buyer.pk),
    )
    rank = {b.buyer.pk: i + 1 for i, b in enumerate(winners)}
    considered = []
    for c in candidates:
        row: dict[str, Any] = {
            "buyer": c.buyer.pk,
            "name": c.buyer.name,
            "price_minor": c.buyer.price_minor,
            "eligible": c.eligible,
        }
        bid = bids.get(c.buyer.pk)
        if c.reason:
            row["reason"] = c.reason
        elif bid is None:
            row["reason"] = missing
        elif bid.status == BidStatus.BID:
            row.update(
                reason=f"rank:{rank[c.buyer.pk]}", bid_minor=bid.bid_minor, ping_id=bid.ping_id
            )
        else:
            row["reason"] = f"{bid.status}"
            if bid.bid_minor is not None:
                row["bid_minor"] = bid.bid_minor
        considered.append(row)
    return considered, winners


def _ping_post_distribute(lead_id: int, routing: OfferRouting, now: datetime) -> list[Delivery]:
    """Run the auction outside any database transaction (it waits on buyers), then record it
    and post to the best bid, unless another worker routed the lead meanwhile. A lead posted
    with an inbound ping's id still in time takes that ping's bids instead (inbound.py)."""
    from leadrelay.distribution.inbound import quoted_bids  # inbound builds on this module

    lead = Lead.objects.select_related("offer").filter(pk=lead_id).first()
    if lead is None or lead.status != LeadStatus.APPROVED:
        return []
    if RoutingDecision.objects.filter(lead=lead).exists():
        return []
    candidates = candidates_for(lead, routing, now)
    pinged = [c.buyer for c in candidates if c.eligible and c.buyer.ping_url]
    quoted = quoted_bids(lead, pinged, now)
    if quoted is not None:
        bids, missing = quoted, "not_in_inbound_ping"
    else:
        bids = {bid.buyer.pk: bid for bid in auction_run(lead, pinged, routing, now)}
        missing = "no_ping_url"
    considered, winners = auction_outcome(candidates, bids, missing)
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        if RoutingDecision.objects.filter(lead=lead).exists():
            return []
        decision = RoutingDecision.objects.create(
            lead=lead,
            mode=routing.mode,
            shared=routing.shared,
            considered=considered,
            chosen=[b.buyer.pk for b in winners],
            created_at=now,
        )
        PingBid.objects.bulk_create(
            PingBid(
                decision=decision,
                buyer=bid.buyer,
                status=bid.status,
                bid_minor=bid.bid_minor,
                ping_id=bid.ping_id,
                duration_ms=bid.duration_ms,
                error=bid.error,
                response=text_kept(bid.response, RESPONSE_KEEP),
            )
            for bid in bids.values()
        )
        # Exclusive: the best bid, the others wait in line; shared: the top N at once.
        sold_to = winners[: routing.max_buyers] if routing.shared else winners[:1]
        return [_delivery_start(lead, bid.buyer.pk, decision, now) for bid in sold_to]


def _waterfall(delivery: Delivery, now: datetime) -> Delivery | None:
    """After an exclusive delivery ends unsold, start the next buyer of its decision."""
    decision = delivery.decision
    if decision is None or decision.shared:
        return None
    tried = set(Delivery.objects.filter(lead=delivery.lead).values_list("buyer_id", flat=True))
    for buyer_id in decision.chosen:
        if buyer_id in tried:
            continue
        if Buyer.objects.filter(pk=buyer_id, status=BuyerStatus.ACTIVE).exists():
            return _delivery_start(delivery.lead, buyer_id, decision, now)
    return None


# --- building the request ---------------------------------------------------------------


def _body(method: str, fields: Mapping[str, str]) -> tuple[bytes, str]:
    if method == DeliveryMethod.POST_JSON:
        return json.dumps(fields, ensure_ascii=False).encode(), "application/json"
    if method == DeliveryMethod.POST_FORM:
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    if method == DeliveryMethod.POST_XML:
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
        xml = f'<?xml version="1.0" encoding="UTF-8"?><lead>{inner}</lead>'
        return xml.encode(), "application/xml"
    return b"", ""


def delivery_request(delivery: Delivery, now: datetime) -> Request:
    buyer, lead = delivery.buyer, delivery.lead
    fields = mapped_fields(
        buyer.mapping(),
        lead_values(lead, delivery.price_minor, delivery.currency, delivery.ping_id),
    )
    body, content_type = _body(buyer.method, fields)
    url = buyer.url
    if buyer.method == DeliveryMethod.GET:
        url += ("&" if "?" in url else "?") + urlencode(fields)
    headers = {"User-Agent": f"leadrelay/{__version__}", **buyer.headers}
    if content_type:
        headers["Content-Type"] = content_type
    if buyer.signing_secrets:
        message_id = f"lead_{lead.pk}_buyer_{buyer.pk}"
        text = body.decode()
        headers["webhook-id"] = message_id
        headers["webhook-timestamp"] = str(int(now.timestamp()))
        headers["webhook-signature"] = " ".join(
            Webhook(secret).sign(message_id, now, text) for secret in buyer.signing_secrets
        )
    return Request("GET" if buyer.method == DeliveryMethod.GET else "POST", url, headers, body)


def _email_send(delivery: Delivery) -> Answer:
    """The lead as a plain-text email, one "field: value" line per mapped field. A refusal
    by the server (5xx) fails; a connection problem or a 4xx is tried again."""
    buyer, lead = delivery.buyer, delivery.lead
    values = lead_values(lead, delivery.price_minor, delivery.currency)
    fields = mapped_fields(buyer.mapping(), values)
    subject = mapped_fields({"s": buyer.email_subject or "New lead {lead_id}"}, values)["s"]
    message = EmailMessage(
        subject=subject.replace("\n", " ").replace("\r", " ")[:200],
        body="\n".join(f"{k}: {v}" for k, v in fields.items()) + "\n",
        to=[a.strip() for a in buyer.email_to.split(",") if a.strip()],
        headers={"X-Leadrelay-Lead": str(lead.pk)},
    )
    started = time.monotonic()
    try:
        message.send()
    except smtplib.SMTPResponseException as exc:
        ms = int((time.monotonic() - started) * 1000)
        text = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500]
        return Answer(error=text, retryable=400 <= exc.smtp_code < 500, duration_ms=ms)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = "; ".join(
            f"{address} ({code} {reply.decode(errors='replace')})"
            for address, (code, reply) in sorted(exc.recipients.items())
        )
        return Answer(error=f"SMTP recipients refused: {refused}"[:500])
    except (smtplib.SMTPException, OSError) as exc:
        ms = int((time.monotonic() - started) * 1000)
        return Answer(
            error=f"smtp: {type(exc).__name__}: {exc}"[:500], retryable=True, duration_ms=ms
        )
    return Answer(
        status_code=250,
        body="accepted by the mail server",
        duration_ms=int((time.monotonic() - started) * 1000),
    )


# --- reading the answer -----------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str = ""
    buyer_lead_id: str = ""
    price_minor: int | None = None  # what the buyer says it pays, when it says


def response_verdict(buyer: Buyer, body: str) -> Verdict:
    """Whether a 2xx answer means the buyer took the lead, by its response rule."""
    document: Any = None
    if buyer.accept_json_path or buyer.lead_id_json_path or buyer.price_json_path:
        try:
            document = json.loads(body)
        except ValueError:
            if buyer.accept_json_path:
                return Verdict(False, "response_not_json")
    if buyer.accept_json_path:
        found = json_path_get(document, buyer.accept_json_path)
        expected = buyer.accept_value
        if found is None or (expected and str(found).lower() != expected.lower()):
            return Verdict(False, f"{buyer.accept_json_path} is {json.dumps(found)[:100]}")
    if buyer.accept_regex:
        found = pattern_found(buyer.accept_regex, body)
        if not found:
            return Verdict(
                False, "accept_regex_not_found" if found is False else "accept_regex_invalid"
            )
    lead_id = ""
    if buyer.lead_id_json_path:
        value = json_path_get(document, buyer.lead_id_json_path)
        lead_id = "" if value is None else text_kept(str(value), 200)
    price = None
    if buyer.price_json_path:
        raw = json_path_get(document, buyer.price_json_path)
        try:  # an unreadable price leaves the agreed one
            price = money_parse(str(Decimal(str(raw))), buyer.currency)
        except (ValueError, InvalidOperation):
            price = None
    return Verdict(True, buyer_lead_id=lead_id, price_minor=price)


# --- one try ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptOutcome:
    attempted: bool
    status: str
    retry_at: datetime | None = None


def _retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    cap = RETRY_DELAYS_SECONDS[-1]
    if retry_after is not None:
        return timedelta(seconds=min(max(retry_after, 1.0), cap))
    base = RETRY_DELAYS_SECONDS[min(attempts, len(RETRY_DELAYS_SECONDS)) - 1]
    return timedelta(seconds=base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER))


def _claim(delivery_id: int, now: datetime) -> Delivery | None:
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("buyer", "lead", "decision")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        if delivery.buyer.method == DeliveryMethod.PULL:
            return None  # waits for the buyer to fetch it (pull.py)
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
            return None  # not due, or another worker is sending it
        # Longer than one try (10 s): a worker killed mid-try leaves it due again after this.
        delivery.next_attempt_at = now + timedelta(
            seconds=settings.LEADRELAY_DELIVERY_CLAIM_SECONDS
        )
        delivery.save(update_fields=["next_attempt_at", "updated_at"])
    return delivery


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """Make one try of a pending, due delivery and record it; call outside a transaction.
    A delivery that is settled, not due, or being tried elsewhere is left alone."""
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return AttemptOutcome(attempted=False, status="skipped")
    buyer = delivery.buyer
    if buyer.status != BuyerStatus.ACTIVE:
        answer = Answer(error=f"buyer paused: {buyer.paused_reason or 'by its owner'}")
    elif buyer.method == DeliveryMethod.EMAIL:
        answer = _email_send(delivery)
    else:
        answer = safe_call(
            delivery_request(delivery, now),
            timeout=SEND_TIMEOUT_SECONDS,
            max_body=PARSE_LIMIT,
            now=now,
        )
    verdict = response_verdict(buyer, answer.body) if answer.ok else None
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("buyer__advertiser", "lead", "decision")
            .get(pk=delivery_id)
        )
        buyer = Buyer.objects.select_for_update().get(pk=delivery.buyer_id)
        delivery.attempts += 1
        retry_at = None
        if delivery.status != DeliveryStatus.PENDING:
            outcome = "late"  # settled by another worker after our claim ran out
        elif verdict is not None and verdict.accepted:
            outcome = delivery.status = DeliveryStatus.DELIVERED
            delivery.buyer_lead_id = verdict.buyer_lead_id
            if verdict.price_minor is not None:
                delivery.price_minor = verdict.price_minor
            delivery.last_error = ""
            sale_book(delivery, now)
        elif verdict is not None:
            outcome = delivery.status = DeliveryStatus.REJECTED
            delivery.last_error = text_kept(verdict.reason, 500)
        elif answer.retryable and delivery.attempts < MAX_ATTEMPTS:
            outcome = "retry"
            retry_at = timezone.now() + _retry_delay(delivery.attempts, answer.retry_after)
            delivery.last_error = text_kept(answer.error, 500)
        else:
            outcome = delivery.status = DeliveryStatus.FAILED
            prefix = f"gave up after {delivery.attempts} attempts; " if answer.retryable else ""
            delivery.last_error = text_kept(prefix + answer.error, 500)
        delivery.next_attempt_at = retry_at
        delivery.save()
        DeliveryAttempt.objects.create(
            delivery=delivery,
            started_at=now,
            duration_ms=answer.duration_ms,
            status_code=answer.status_code,
            error=text_kept(answer.error or (verdict.reason if verdict else ""), 500),
            response=text_kept(answer.body, RESPONSE_KEEP),
            outcome=outcome,
        )
        _track_endpoint(buyer, answer, verdict)
        if delivery.status in (DeliveryStatus.REJECTED, DeliveryStatus.FAILED):
            _waterfall(delivery, timezone.now())
    return AttemptOutcome(attempted=True, status=delivery.status, retry_at=retry_at)


def sale_book(delivery: Delivery, at: datetime) -> None:
    """Book the sale with the delivery's status, in the same database transaction."""
    if delivery.price_minor > 0:
        lead_sale_post(
            lead_id=delivery.lead_id,
            buyer_id=delivery.buyer_id,
            offer_id=delivery.lead.offer_id,
            affiliate_id=delivery.lead.affiliate_id,
            buyer_advertiser=delivery.buyer.advertiser,
            currency=delivery.currency,
            price_minor=delivery.price_minor,
            posted_at=at,
        )
    delivery.booked_at = at


def _track_endpoint(buyer: Buyer, answer: Answer, verdict: Verdict | None) -> None:
    """Count the endpoint's failures in a row; pause it when there are too many. A buyer
    that answers (even no) is working."""
    if buyer.status != BuyerStatus.ACTIVE:
        return
    if verdict is not None:
        buyer.consecutive_failures = 0
    else:
        buyer.consecutive_failures += 1
        if buyer.consecutive_failures >= buyer.pause_after_failures:
            buyer.status = BuyerStatus.PAUSED
            buyer.paused_reason = text_kept(
                f"Paused after {buyer.consecutive_failures} failed deliveries in a row; "
                f"last: {answer.error}",
                500,
            )
    buyer.save(update_fields=["consecutive_failures", "status", "paused_reason", "updated_at"])


def delivery_resend(*, delivery_id: int, now: datetime | None = None) -> Delivery:
    """Send a rejected or failed delivery again, by hand. Refused (`already_sold`) when an
    exclusive lead was delivered to another buyer meanwhile."""
    from leadrelay.distribution.tasks import delivery_send

    now = now or timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound("Delivery")
        if delivery.status not in (DeliveryStatus.REJECTED, DeliveryStatus.FAILED):
            raise Conflict("not_resendable", "Only rejected or failed deliveries are re-sent.")
        exclusive = delivery.decision is None or not delivery.decision.shared
        sold = Delivery.objects.filter(
            lead=delivery.lead_id, status__in=[DeliveryStatus.DELIVERED, DeliveryStatus.PENDING]
        ).exclude(pk=delivery.pk)
        if exclusive and sold.exists():
            raise Conflict("already_sold", "This lead went to another buyer since.")
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now
        delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
        transaction.on_commit(lambda: delivery_send.enqueue(delivery.pk), robust=True)
    return delivery


def deliveries_resume(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Queue due pending deliveries: after a worker died mid-try or a queue lost a task."""
    from leadrelay.distribution.tasks import delivery_send

    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in ids:
        delivery_send.enqueue(delivery_id)
    return len(ids)


def deliveries_resume_now() -> int:
    """The worker's periodic sweep (settings.LEADRELAY_PERIODIC_JOBS)."""
    return deliveries_resume()
