"""Sending leads to buyers' real HTTP servers: bodies, signatures, verdicts, retries, the
waterfall, pausing, and what a buyer's bad answers become."""

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from leadrelay.core.errors import Conflict, Invalid
from leadrelay.distribution.buyers import buyer_secret_new
from leadrelay.distribution.delivery import (
    MAX_ATTEMPTS,
    delivery_attempt,
    delivery_resend,
    lead_distribute,
)
from leadrelay.distribution.models import Buyer, Delivery, DeliveryAttempt, RoutingDecision
from tests.distribution.conftest import make_buyer, new_lead

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _send(lead):
    deliveries = lead_distribute(lead_id=lead.pk)
    return deliveries


def _try(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    return delivery_attempt(delivery_id=delivery.pk)


@pytest.mark.parametrize(
    ("method", "check"),
    [
        ("post_json", lambda seen: json.loads(seen.body)),
        ("post_form", lambda seen: {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}),
        ("get", lambda seen: {k: v[0] for k, v in parse_qs(urlsplit(seen.path).query).items()}),
    ],
)
def test_each_method_sends_the_mapped_fields(
    routed, affiliate, other_advertiser, buyer_server, method, check
):
    make_buyer(other_advertiser, buyer_server.url + "/in?key=k1", method=method)
    (delivery,) = _send(new_lead(routed, affiliate, email="ada@example.com"))
    assert _try(delivery).status == "delivered"
    seen = buyer_server.requests[0]
    sent = check(seen)
    sent.pop("key", None)
    assert sent == {"fname": "Ada", "mail": "ada@example.com", "source": "leadrelay"}


def test_xml_bodies_are_escaped(routed, affiliate, other_advertiser, buyer_server):
    make_buyer(other_advertiser, buyer_server.url, method="post_xml")
    (delivery,) = _send(new_lead(routed, affiliate, first_name="A<b>&c"))
    _try(delivery)
    body = buyer_server.requests[0].body.decode()
    assert "<fname>A&lt;b&gt;&amp;c</fname>" in body and body.startswith("<?xml")


def test_a_signed_delivery_verifies_with_the_standardwebhooks_library(
    routed, affiliate, other_advertiser, buyer_server
):
    old = buyer_secret_new()
    make_buyer(other_advertiser, buyer_server.url, signing_secrets=[SECRET, old])
    (delivery,) = _send(new_lead(routed, affiliate))
    _try(delivery)
    seen = buyer_server.requests[0]
    headers = {k.lower(): v for k, v in seen.headers.items()}
    # Both the new and the old secret verify during a rotation.
    for secret in (SECRET, old):
        payload = Webhook(secret).verify(seen.body, headers)
        assert payload["fname"] == "Ada"
    assert headers["webhook-id"] == f"lead_{delivery.lead_id}_buyer_{delivery.buyer_id}"
    tampered = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(seen.body, tampered)


def test_the_response_rule_decides_and_reads_the_buyers_lead_id(
    routed, affiliate, other_advertiser, buyer_server
):
    make_buyer(
        other_advertiser,
        buyer_server.url,
        accept_json_path="$.result",
        accept_value="accepted",
        lead_id_json_path="$.ids[0]",
    )
    buyer_server.answer(200, b'{"result": "Accepted", "ids": ["B-77"]}')
    (delivery,) = _send(new_lead(routed, affiliate))
    assert _try(delivery).status == "delivered"
    delivery.refresh_from_db()
    assert delivery.buyer_lead_id == "B-77"
    buyer_server.answer(200, b'{"result": "duplicate"}')
    (second,) = _send(new_lead(routed, affiliate))
    assert _try(second).status == "rejected"
    second.refresh_from_db()
    assert second.last_error == '$.result is "duplicate"'


def test_control_characters_in_a_buyers_answer_are_kept_as_replacement_characters(
    routed, affiliate, other_advertiser, buyer_server
):
    """A buyer's server is outside text too: a NUL or a lone surrogate escaped in its JSON
    would stop the delivery's row from being saved on PostgreSQL."""
    make_buyer(
        other_advertiser, buyer_server.url, accept_json_path="$.ok", lead_id_json_path="$.id"
    )
    buyer_server.answer(200, b'{"ok": true, "id": "B\\u0000-\\ud800-7"}')
    (delivery,) = _send(new_lead(routed, affiliate))
    assert _try(delivery).status == "delivered"
    delivery.refresh_from_db()
    assert delivery.buyer_lead_id == "B\ufffd-\ufffd-7"


def test_a_rejection_passes_the_lead_down_the_waterfall(
    routed, affiliate, advertiser, other_advertiser, buyer_server
):
    first = make_buyer(
        other_advertiser, buyer_server.url, name="First", priority=1, accept_regex="OK"
    )
    second = make_buyer(advertiser, buyer_server.url, name="Second", priority=2, accept_regex="OK")
    buyer_server.answer(200, b"NO")
    lead = new_lead(routed, affiliate)
    (delivery,) = _send(lead)
    assert delivery.buyer == first
    _try(delivery)
    nxt = Delivery.objects.get(lead=lead, buyer=second)
    assert _try(nxt).status == "delivered"
    decision = RoutingDecision.objects.get(lead=lead)
    assert decision.chosen == [first.pk, second.pk]
    assert [c["reason"] for c in decision.considered] == ["rank:1", "rank:2"]
    assert _send(lead) == []  # routed once


def test_retryable_answers_are_retried_then_fail_and_4xx_is_not(
    routed, affiliate, other_advertiser, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url)
    (delivery,) = _send(new_lead(routed, affiliate))
    buyer_server.answer(503, b"busy", Retry_After="120")
    outcome = _try(delivery)
    assert outcome.status == "pending"
    assert 119 <= (outcome.retry_at - timezone.now()).total_seconds() <= 121
    for _ in range(MAX_ATTEMPTS - 1):
        buyer_server.answer(500, b"<html>error</html>")
        outcome = _try(delivery)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == MAX_ATTEMPTS
    assert delivery.last_error.startswith(f"gave up after {MAX_ATTEMPTS} attempts")

    (other,) = _send(new_lead(routed, affiliate))
    buyer_server.answer(400, b'{"error": "bad zip"}')
    assert _try(other).status == "failed"
    attempt = DeliveryAttempt.objects.filter(delivery=other).get()
    assert (attempt.status_code, attempt.response) == (400, '{"error": "bad zip"}')


def test_the_retry_schedule_lasts_at_least_a_day():
    from leadrelay.distribution.delivery import RETRY_DELAYS_SECONDS, RETRY_JITTER

    assert sum(RETRY_DELAYS_SECONDS) * (1 - RETRY_JITTER) >= 24 * 3600


def test_redirects_huge_and_slow_answers_are_logged_failures(
    routed, affiliate, other_advertiser, buyer_server, monkeypatch
):
    monkeypatch.setattr("leadrelay.distribution.delivery.SEND_TIMEOUT_SECONDS", 0.5)
    make_buyer(other_advertiser, buyer_server.url)
    buyer_server.answer(302, b"", Location="http://169.254.169.254/")
    (moved,) = _send(new_lead(routed, affiliate))
    assert _try(moved).status == "failed"
    assert len(buyer_server.requests) == 1  # the redirect was not followed

    buyer_server.answer(200, b"x" * 200_000)
    (huge,) = _send(new_lead(routed, affiliate))
    assert _try(huge).status == "delivered"
    assert len(DeliveryAttempt.objects.get(delivery=huge).response) == 2048

    buyer_server.answer(200, b"late", delay=2)
    (slow,) = _send(new_lead(routed, affiliate))
    outcome = _try(slow)
    assert outcome.status == "pending" and outcome.retry_at is not None
    assert DeliveryAttempt.objects.get(delivery=slow).error.startswith("timeout")


def test_a_buyer_url_inside_the_network_is_refused_when_saved_and_when_sent(
    routed, affiliate, other_advertiser, buyer_server, settings
):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    with pytest.raises(Invalid) as saved:
        make_buyer(other_advertiser, "http://169.254.169.254/latest/meta-data")
    assert saved.value.problems[0].code == "url_private_host"
    (delivery,) = _send(new_lead(routed, affiliate))
    assert delivery.buyer == buyer
    assert _try(delivery).status == "failed"
    assert buyer_server.requests == []
    assert DeliveryAttempt.objects.get(delivery=delivery).error.startswith("blocked_address")


def test_a_run_of_failures_pauses_the_buyer_and_says_why(
    routed, affiliate, other_advertiser, buyer_server
):
    buyer = make_buyer(other_advertiser, buyer_server.url, pause_after_failures=2)
    for _ in range(2):
        buyer_server.answer(404, b"no such endpoint")
        (delivery,) = _send(new_lead(routed, affiliate))
        _try(delivery)
    buyer.refresh_from_db()
    assert buyer.status == "paused"
    assert buyer.paused_reason.startswith(
        "Paused after 2 failed deliveries in a row; last: HTTP 404"
    )
    decision = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    assert decision == []
    assert RoutingDecision.objects.last().considered[0]["reason"] == "paused"


def test_a_failed_delivery_is_resent_by_hand_unless_sold_meanwhile(
    routed, affiliate, other_advertiser, advertiser, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url, priority=1)
    buyer_server.answer(400, b"bad")
    lead = new_lead(routed, affiliate)
    (delivery,) = _send(lead)
    _try(delivery)
    resent = delivery_resend(delivery_id=delivery.pk)
    assert resent.status == "pending"
    assert _try(resent).status == "delivered"
    with pytest.raises(Conflict):
        delivery_resend(delivery_id=delivery.pk)

    make_buyer(advertiser, buyer_server.url, name="Backup", priority=2)
    buyer_server.answer(400, b"bad")
    other = new_lead(routed, affiliate)
    (first,) = _send(other)
    _try(first)  # fails: the lead goes down the waterfall to the backup
    backup = Delivery.objects.get(lead=other, buyer__name="Backup")
    _try(backup)
    with pytest.raises(Conflict) as sold:
        delivery_resend(delivery_id=first.pk)
    assert sold.value.code == "already_sold"


def test_a_delivery_is_made_once_per_lead_and_buyer(
    routed, affiliate, other_advertiser, buyer_server
):
    from django.db import IntegrityError, transaction

    make_buyer(other_advertiser, buyer_server.url)
    (delivery,) = _send(new_lead(routed, affiliate))
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(
            lead=delivery.lead, buyer=delivery.buyer, price_minor=1, currency="USD"
        )


def test_a_settled_or_not_due_delivery_is_left_alone(
    routed, affiliate, other_advertiser, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url)
    (delivery,) = _send(new_lead(routed, affiliate))
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )
    assert delivery_attempt(delivery_id=delivery.pk).attempted is False
    _try(delivery)
    assert delivery_attempt(delivery_id=delivery.pk).attempted is False
    assert len(buyer_server.requests) == 1
    assert Buyer.objects.get().consecutive_failures == 0


def test_a_delivered_lead_books_one_sale_for_the_buyer(
    routed, affiliate, other_advertiser, network, buyer_server
):
    from leadrelay.ledger.checks import ledger_problems
    from leadrelay.ledger.models import Transaction
    from leadrelay.ledger.selectors import advertiser_balances
    from leadrelay.reporting.selectors import dashboard_report

    make_buyer(other_advertiser, buyer_server.url, price_minor=4200)
    lead = new_lead(routed, affiliate)
    (delivery,) = _send(lead)
    _try(delivery)
    _try(delivery)  # a repeated task books nothing more
    sale = Transaction.objects.get(kind="sale")
    assert sale.external_id == f"sale:{lead.pk}:{delivery.buyer_id}"
    assert (sale.offer_id, sale.affiliate_id) == (routed.pk, affiliate.pk)
    assert [
        (b.currency, b.owed_minor) for b in advertiser_balances(organization=other_advertiser)
    ] == [("USD", 4200)]
    delivery.refresh_from_db()
    assert delivery.booked_at is not None
    today = timezone.now().date()
    money = dashboard_report(organization=network, start=today, end=today).totals.money["USD"]
    # The offer's own revenue (2500) at approval plus the buyer's price.
    assert money.revenue_minor == 2500 + 4200
    assert ledger_problems() == []


def test_a_buyer_that_states_its_price_is_billed_that_price(
    routed, affiliate, other_advertiser, buyer_server
):
    from leadrelay.ledger.models import Entry

    make_buyer(other_advertiser, buyer_server.url, price_minor=3000, price_json_path="$.price")
    buyer_server.answer(200, b'{"price": "27.50"}')
    (delivery,) = _send(new_lead(routed, affiliate))
    assert _try(delivery).status == "delivered"
    delivery.refresh_from_db()
    assert delivery.price_minor == 2750
    sale = Entry.objects.get(transaction__kind="sale", amount_minor__gt=0)
    assert sale.amount_minor == 2750
    buyer_server.answer(200, b'{"price": "lots"}')  # unreadable: the agreed price stands
    (other,) = _send(new_lead(routed, affiliate))
    _try(other)
    other.refresh_from_db()
    assert (other.status, other.price_minor) == ("delivered", 3000)
