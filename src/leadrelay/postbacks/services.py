"""Outbound affiliate postbacks: set up, fire on lead events, send with retries.

The mechanism: `affiliate_postbacks_enqueue` runs inside the transaction that
changes the lead and stores one `PostbackDelivery` per matching postback, with
the URL rendered then; after commit a task per delivery calls
`postback_delivery_attempt`, which makes one HTTP try, logs it as a
`PostbackAttempt` and decides: sent, failed, or try again later on a capped
backoff (about a day in all).

Two rules keep the calls safe. The host is fixed when the URL is saved (macros
can't change where a call goes), and core/outbound.py refuses local, private
and metadata addresses both when the URL is saved and when it is sent, pinning
the connection to the address it checked.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from leadrelay import __version__
from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import Invalid, NotFound, PermissionDenied, Problem
from leadrelay.core.money import money_decimal
from leadrelay.core.outbound import (
    Answer,
    Request,
    host_problem,
    safe_call,
    url_shape_problems,
)
from leadrelay.core.text import text_kept
from leadrelay.leads.models import Lead
from leadrelay.offers.macros import landing_url_render
from leadrelay.offers.models import Offer
from leadrelay.offers.selectors import affiliate_may_promote
from leadrelay.postbacks.models import (
    RESPONSE_EXCERPT_MAX,
    URL_MAX_LENGTH,
    AffiliatePostback,
    DeliveryStatus,
    PostbackAttempt,
    PostbackDelivery,
    PostbackEvent,
)
from leadrelay.postbacks.tasks import postback_deliver

POSTBACK_MACROS = frozenset(
    {
        "sub1", "sub2", "sub3", "sub4", "sub5", "click_id", "lead_id", "offer_id",
        "payout", "currency", "status",
    }
)  # fmt: skip
_MACRO_RE = re.compile(r"\{([a-zA-Z0-9_]{1,40})\}")

# Wait after the 1st, 2nd … failed try; after the last one the delivery fails (~21 h in all).
RETRY_DELAYS_SECONDS = (60, 300, 1800, 7200, 21600, 43200)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
RETRY_JITTER = 0.1  # ± 10 %, so deliveries that failed together don't retry together
# While one worker sends, the delivery is not due for others (longer than any one try).
CLAIM_SECONDS = 300
_ERROR_MAX = 500


def _problem(code: str, message: str, field: str = "url_template") -> Problem:
    return Problem(code, message, field)


def postback_url_problems(url_template: str) -> list[Problem]:
    """What is wrong with a postback URL template; empty when it may be saved."""
    problems, host = url_shape_problems(url_template, "url_template", URL_MAX_LENGTH)
    if not host and problems:
        return problems
    leftover = _MACRO_RE.sub("", url_template)
    if "{" in leftover or "}" in leftover:
        problems.append(
            _problem("macro_syntax", "A macro is a name of letters, digits and _ in braces.")
        )
    unknown = sorted(set(_MACRO_RE.findall(url_template)) - POSTBACK_MACROS)
    if unknown:
        known = ", ".join("{" + m + "}" for m in sorted(POSTBACK_MACROS))
        problems.append(
            _problem(
                "unknown_macro",
                f"Unknown macro {', '.join('{' + m + '}' for m in unknown)}; known: {known}.",
            )
        )
    if not problems:
        refused = host_problem(host, "url_template")
        if refused is not None:
            problems.append(refused)
    return problems


def affiliate_postback_create(
    *,
    affiliate: Organization,
    event: str,
    url_template: str,
    offer: Offer | None = None,
) -> AffiliatePostback:
    """Store an affiliate's postback for one event, for one offer or (offer None) all.

    Raises PermissionDenied for an organization that is not an affiliate and
    Invalid (422) for an unknown event, an offer it may not run or a URL that
    is not a safe http(s) URL with known macros; then nothing is stored.
    """
    if affiliate.kind != OrganizationKind.AFFILIATE:
        raise PermissionDenied("affiliates_only", "Only affiliates set up postbacks.")
    url_template = url_template.strip()
    problems = []
    if event not in PostbackEvent.values:
        problems.append(
            Problem("invalid_event", f"Choose one of {', '.join(PostbackEvent.values)}.", "event")
        )
    if offer is not None and not affiliate_may_promote(offer=offer, affiliate=affiliate):
        problems.append(
            Problem("offer_not_approved", "You are not approved to run this offer.", "offer_id")
        )
    problems += postback_url_problems(url_template)
    if problems:
        raise Invalid(problems)
    return AffiliatePostback.objects.create(
        affiliate=affiliate, event=event, offer=offer, url_template=url_template
    )


def affiliate_postback_delete(*, affiliate: Organization, postback_id: int) -> None:
    """Delete one of the affiliate's postbacks (another's id: NotFound).

    Its deliveries stay as the log; pending ones are no longer sent.
    """
    deleted, _ = AffiliatePostback.objects.filter(pk=postback_id, affiliate=affiliate).delete()
    if not deleted:
        raise NotFound("Postback")


def _macro_values(lead: Lead) -> Mapping[str, str | int | None]:
    return {
        "sub1": lead.sub1,
        "sub2": lead.sub2,
        "sub3": lead.sub3,
        "sub4": lead.sub4,
        "sub5": lead.sub5,
        "click_id": lead.click_id,
        "lead_id": lead.pk,
        "offer_id": lead.offer_id,
        "payout": money_decimal(lead.payout_minor, lead.currency),
        "currency": lead.currency,
        "status": lead.status,
    }


def affiliate_postbacks_enqueue(*, lead: Lead, event: PostbackEvent | str) -> list[int]:
    """Store a delivery per active postback of the lead's affiliate for this event.

    Call it inside the transaction that changes the lead: the deliveries commit
    with the change, and the sends are queued only after commit. An event that
    was already stored for a postback is not stored again. Returns the new ids.
    """
    if lead.affiliate_id is None:
        return []
    postbacks = list(
        AffiliatePostback.objects.filter(
            affiliate_id=lead.affiliate_id, event=event, is_active=True
        ).filter(Q(offer__isnull=True) | Q(offer_id=lead.offer_id))
    )
    if not postbacks:
        return []
    done = set(
        PostbackDelivery.objects.filter(lead=lead, event=event, postback__in=postbacks).values_list(
            "postback_id", flat=True
        )
    )
    values = _macro_values(lead)
    now = timezone.now()
    new = [
        PostbackDelivery(
            postback=postback,
            lead=lead,
            event=event,
            url=landing_url_render(postback.url_template, values),
            next_attempt_at=now,
        )
        for postback in postbacks
        if postback.pk not in done
    ]
    if not new:
        return []
    # A concurrent writer may have stored one meanwhile: the constraint keeps one of each.
    PostbackDelivery.objects.bulk_create(new, ignore_conflicts=True)
    ids = list(
        PostbackDelivery.objects.filter(
            lead=lead, event=event, postback_id__in=[d.postback_id for d in new]
        ).values_list("pk", flat=True)
    )

    def queue() -> None:
        for delivery_id in ids:
            postback_deliver.enqueue(delivery_id)

    # robust: a queue that is down must not fail a lead that is already committed.
    transaction.on_commit(queue, robust=True)
    return ids


def postback_deliveries_resume(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Queue a send for pending deliveries that are due: for a worker that died mid-try,
    a queue that lost a task, or a task backend that can't run tasks later. Safe to
    run at any time (a delivery that is not due, or is being sent, is left alone)."""
    now = now or timezone.now()
    ids = list(
        PostbackDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in ids:
        postback_deliver.enqueue(delivery_id)
    return len(ids)


def postback_deliveries_resume_now() -> int:
    """The worker's periodic sweep (settings.LEADRELAY_PERIODIC_JOBS)."""
    return postback_deliveries_resume()


@dataclass(frozen=True)
class AttemptOutcome:
    """What one call of `postback_delivery_attempt` did; `retry_at` when to call it again."""

    attempted: bool
    status: str
    retry_at: datetime | None = None


def _call(url: str, now: datetime) -> Answer:
    return safe_call(
        Request("GET", url, {"User-Agent": f"leadrelay-postback/{__version__}"}),
        timeout=settings.LEADRELAY_POSTBACK_TIMEOUT_SECONDS,
        max_body=RESPONSE_EXCERPT_MAX,
        now=now,
    )


def _retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    cap = RETRY_DELAYS_SECONDS[-1]
    if retry_after is not None:
        return timedelta(seconds=min(max(retry_after, 1.0), cap))
    base = RETRY_DELAYS_SECONDS[min(attempts, len(RETRY_DELAYS_SECONDS)) - 1]
    return timedelta(seconds=base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER))


def _claim(delivery_id: int, now: datetime) -> tuple[PostbackDelivery | None, AttemptOutcome]:
    with transaction.atomic():
        delivery = (
            PostbackDelivery.objects.select_for_update(of=("self",))
            .select_related("postback")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None, AttemptOutcome(attempted=False, status="missing")
        if delivery.status != DeliveryStatus.PENDING or (
            delivery.next_attempt_at is not None and delivery.next_attempt_at > now
        ):
            # Done already, not due yet, or another worker is sending it now.
            return None, AttemptOutcome(attempted=False, status=delivery.status)
        if delivery.postback is None or not delivery.postback.is_active:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            delivery.last_error = "The postback was deleted or switched off before it was sent."
            delivery.save(update_fields=["status", "next_attempt_at", "last_error", "updated_at"])
            return None, AttemptOutcome(attempted=False, status=delivery.status)
        delivery.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
        delivery.save(update_fields=["next_attempt_at", "updated_at"])
    return delivery, AttemptOutcome(attempted=True, status=delivery.status)


def postback_delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """Make one try of a pending, due delivery and record it; call outside a transaction.

    2xx: sent. Timeout, connection error, 5xx, 408, 429: pending again, due
    after a capped backoff with jitter (Retry-After, in seconds or as a date, is
    honoured up to the cap) until MAX_ATTEMPTS, then failed. Any other answer,
    or an address that is not public: failed at once. A delivery that is sent,
    failed, not due or being tried by another worker is left alone, so a
    repeated task does nothing.
    """
    now = timezone.now()
    delivery, outcome = _claim(delivery_id, now)
    if delivery is None:
        return outcome
    started_at = timezone.now()
    started = time.monotonic()
    answer = _call(delivery.url, started_at)
    duration_ms = int((time.monotonic() - started) * 1000)
    error = text_kept(answer.error, _ERROR_MAX)
    with transaction.atomic():
        delivery = PostbackDelivery.objects.select_for_update().get(pk=delivery_id)
        PostbackAttempt.objects.create(
            delivery=delivery,
            started_at=started_at,
            status_code=answer.status_code,
            error=error,
            duration_ms=duration_ms,
        )
        delivery.attempts += 1
        delivery.last_status_code = answer.status_code
        delivery.last_error = error
        delivery.response_excerpt = text_kept(answer.body, RESPONSE_EXCERPT_MAX)
        retry_at = None
        if delivery.status != DeliveryStatus.PENDING:
            pass  # settled by another worker after our claim ran out: keep its verdict
        elif answer.status_code is not None and 200 <= answer.status_code < 300:
            delivery.status = DeliveryStatus.SENT
            delivery.next_attempt_at = None
        elif answer.retryable and delivery.attempts < MAX_ATTEMPTS:
            retry_at = timezone.now() + _retry_delay(delivery.attempts, answer.retry_after)
            delivery.next_attempt_at = retry_at
        else:
            if answer.retryable:
                delivery.last_error = text_kept(
                    f"gave up after {delivery.attempts} attempts; last: {error}", _ERROR_MAX
                )
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        delivery.save()
    return AttemptOutcome(attempted=True, status=delivery.status, retry_at=retry_at)
