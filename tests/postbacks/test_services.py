from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from leadrelay.core.errors import Invalid, NotFound, PermissionDenied
from leadrelay.core.money import money_decimal
from leadrelay.leads.models import LeadStatus
from leadrelay.postbacks.models import (
    AffiliatePostback,
    DeliveryStatus,
    PostbackAttempt,
    PostbackDelivery,
    PostbackEvent,
)
from leadrelay.postbacks.services import (
    MAX_ATTEMPTS,
    RETRY_DELAYS_SECONDS,
    affiliate_postback_create,
    affiliate_postback_delete,
    affiliate_postbacks_enqueue,
    postback_deliveries_resume,
    postback_delivery_attempt,
)
from leadrelay.postbacks.tasks import postback_deliver
from tests.factories import approve, lead_row, make_offer

APPROVED = PostbackEvent.LEAD_APPROVED


def approved_lead(offer, affiliate, **fields):
    defaults = {"status": LeadStatus.APPROVED, "payout_minor": 1800, "revenue_minor": 2500}
    defaults.update(fields)
    return lead_row(offer, affiliate, **defaults)


def delivery_to(tracker, offer, affiliate, path="/pb?lead={lead_id}", **lead_fields):
    affiliate_postback_create(affiliate=affiliate, event=APPROVED, url_template=tracker.url + path)
    lead = approved_lead(offer, affiliate, **lead_fields)
    [delivery_id] = affiliate_postbacks_enqueue(lead=lead, event=APPROVED)
    return PostbackDelivery.objects.get(pk=delivery_id)


def time_passes(delivery):
    """The retry is due now: as if the worker woke up at next_attempt_at."""
    PostbackDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# Setting up


def test_macros_are_rendered_and_url_encoded(offer, affiliate):
    template = (
        "https://tracker.example.com/pb/{offer_id}?cid={click_id}&lead={lead_id}&amt={payout}"
        "&cur={currency}&st={status}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}"
    )
    affiliate_postback_create(affiliate=affiliate, event=APPROVED, url_template=template)
    lead = approved_lead(
        offer,
        affiliate,
        click_id="c1.ab-_~",
        sub1="a b&c=d",
        sub2="ü/?#",
        sub3="{sub4}",
        sub5="100%",
    )
    [delivery_id] = affiliate_postbacks_enqueue(lead=lead, event=APPROVED)
    delivery = PostbackDelivery.objects.get(pk=delivery_id)
    assert delivery.url == (
        f"https://tracker.example.com/pb/{offer.pk}?cid=c1.ab-_~&lead={lead.pk}&amt=18.00"
        "&cur=USD&st=approved&s1=a%20b%26c%3Dd&s2=%C3%BC%2F%3F%23&s3=%7Bsub4%7D&s4=&s5=100%25"
    )
    assert (delivery.status, delivery.attempts, delivery.event) == ("pending", 0, APPROVED)
    assert delivery.postback.affiliate == affiliate


def test_payout_is_a_plain_decimal_in_the_currency_exponent():
    assert money_decimal(1800, "USD") == "18.00"
    assert money_decimal(123456, "USD") == "1234.56"
    assert money_decimal(5, "EUR") == "0.05"
    assert money_decimal(500, "JPY") == "500"
    assert money_decimal(1234, "KWD") == "1.234"
    assert money_decimal(-250, "USD") == "-2.50"


def test_an_event_is_stored_once_even_when_enqueued_twice(offer, affiliate):
    affiliate_postback_create(
        affiliate=affiliate, event=APPROVED, url_template="https://t.example.com/a"
    )
    lead = approved_lead(offer, affiliate)
    first = affiliate_postbacks_enqueue(lead=lead, event=APPROVED)
    second = affiliate_postbacks_enqueue(lead=lead, event=APPROVED)
    assert len(first) == 1
    assert second == []
    assert PostbackDelivery.objects.count() == 1


def test_only_matching_active_postbacks_of_the_leads_affiliate_fire(
    advertiser, offer, affiliate, other_affiliate
):
    other_offer = make_offer(advertiser)
    approve(other_offer, affiliate)
    approve(offer, other_affiliate)
    all_offers = affiliate_postback_create(
        affiliate=affiliate, event=APPROVED, url_template="https://t.example.com/all"
    )
    this_offer = affiliate_postback_create(
        affiliate=affiliate, event=APPROVED, url_template="https://t.example.com/one", offer=offer
    )
    affiliate_postback_create(
        affiliate=affiliate,
        event=APPROVED,
        url_template="https://t.example.com/other",
        offer=other_offer,
    )
    affiliate_postback_create(
        affiliate=affiliate,
        event=PostbackEvent.LEAD_REJECTED,
        url_template="https://t.example.com/rejected",
    )
    switched_off = affiliate_postback_create(
        affiliate=affiliate, event=APPROVED, url_template="https://t.example.com/off"
    )
    AffiliatePostback.objects.filter(pk=switched_off.pk).update(is_active=False)
    affiliate_postback_create(
        affiliate=other_affiliate, event=APPROVED, url_template="https://t.example.com/theirs"
    )
    affiliate_postbacks_enqueue(lead=approved_lead(offer, affiliate), event=APPROVED)
    assert sorted(PostbackDelivery.objects.values_list("postback_id", flat=True)) == sorted(
        [all_offers.pk, this_offer.pk]
    )
    # A lead with no affiliate (the network's own traffic) calls no one.
    assert affiliate_postbacks_enqueue(lead=approved_lead(offer, None), event=APPROVED) == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://t.example.com/pb", "url_scheme"),
        ("javascript:alert(1)", "url_scheme"),
        ("https://{sub1}.example.com/pb", "url_host"),
        ("https://t.example.com:{sub1}/pb", "url_invalid"),
        ("https:///pb", "url_host"),
        ("https://user:pw@t.example.com/pb", "url_credentials"),
        ("https://t.example.com/pb?x={nope}", "unknown_macro"),
        ("https://t.example.com/pb?x={sub1", "macro_syntax"),
        ("https://t.example.com/pb?x=sub1}", "macro_syntax"),
        ("https://t.example.com/p b", "url_invalid"),
        ("", "required"),
        ("https://t.example.com/" + "a" * 2000, "url_too_long"),
    ],
)
def test_a_bad_url_is_refused_and_nothing_stored(affiliate, url, code):
    with pytest.raises(Invalid) as exc:
        affiliate_postback_create(affiliate=affiliate, event=APPROVED, url_template=url)
    assert code in [p.code for p in exc.value.problems]
    assert {p.field for p in exc.value.problems} == {"url_template"}
    assert AffiliatePostback.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/pb",
        "http://localhost/pb",
        "http://api.localhost/pb",
        "http://10.1.2.3/pb",
        "http://192.168.0.1/pb",
        "http://172.16.0.1/pb",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.64.0.1/pb",
        "http://0.0.0.0/pb",
        "http://[::1]/pb",
        "http://[::ffff:127.0.0.1]/pb",
        "http://[fd00:ec2::254]/pb",
        "http://2130706433/pb",
        "http://0x7f.1/pb",
        "http://localhost./pb",
        "http://tracker.local/pb",
        "http://tracker/pb",
        "http://[::127.0.0.1]/pb",
        "http://[64:ff9b::a9fe:a9fe]/pb",
        "http://[2002:7f00:1::]/pb",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/pb",
    ],
)
def test_a_private_host_is_refused_at_save(settings, affiliate, url):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    with pytest.raises(Invalid) as exc:
        affiliate_postback_create(affiliate=affiliate, event=APPROVED, url_template=url)
    assert [(p.code, p.field) for p in exc.value.problems] == [("url_private_host", "url_template")]
    assert AffiliatePostback.objects.count() == 0


def test_a_public_ip_is_accepted_without_the_private_switch(settings, affiliate):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    postback = affiliate_postback_create(
        affiliate=affiliate, event=APPROVED, url_template="http://93.184.215.14/pb?c={click_id}"
    )
    assert postback.url_template == "http://93.184.215.14/pb?c={click_id}"


def test_unknown_event_offer_not_run_and_non_affiliates_are_refused(advertiser, affiliate, offer):
    not_mine = make_offer(advertiser)  # public, but the affiliate is not approved on it
    with pytest.raises(Invalid) as exc:
        affiliate_postback_create(
            affiliate=affiliate,
            event="lead_paid",
            url_template="https://t.example.com/pb",
            offer=not_mine,
        )
    assert [(p.code, p.field) for p in exc.value.problems] == [
        ("invalid_event", "event"),
        ("offer_not_approved", "offer_id"),
    ]
    with pytest.raises(PermissionDenied):
        affiliate_postback_create(
            affiliate=advertiser, event=APPROVED, url_template="https://t.example.com/pb"
        )
    assert AffiliatePostback.objects.count() == 0


def test_delete_is_scoped_to_the_affiliate(affiliate, other_affiliate):
    postback = affiliate_postback_create(
        affiliate=affiliate, event=APPROVED, url_template="https://t.example.com/pb"
    )
    with pytest.raises(NotFound):
        affiliate_postback_delete(affiliate=other_affiliate, postback_id=postback.pk)
    assert AffiliatePostback.objects.filter(pk=postback.pk).exists()
    affiliate_postback_delete(affiliate=affiliate, postback_id=postback.pk)
    assert not AffiliatePostback.objects.exists()


# Sending


def test_a_2xx_answer_marks_it_sent_with_one_attempt(tracker, offer, affiliate):
    tracker.answer(204, body=b"")
    delivery = delivery_to(tracker, offer, affiliate, path="/pb?lead={lead_id}&amt={payout}")
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.attempted, outcome.status, outcome.retry_at) == (True, "sent", None)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("sent", 1, 204)
    assert (delivery.last_error, delivery.next_attempt_at) == ("", None)
    [seen] = tracker.requests
    assert seen.path == f"/pb?lead={delivery.lead_id}&amt=18.00"
    assert seen.headers["Host"] == tracker.url.removeprefix("http://")
    assert seen.headers["User-Agent"].startswith("leadrelay-postback/")
    [attempt] = PostbackAttempt.objects.all()
    assert (attempt.delivery_id, attempt.status_code, attempt.error) == (delivery.pk, 204, "")
    assert attempt.duration_ms >= 0


def test_a_sent_delivery_is_not_sent_again(tracker, offer, affiliate):
    delivery = delivery_to(tracker, offer, affiliate)
    postback_delivery_attempt(delivery_id=delivery.pk)
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.attempted, outcome.status) == (False, "sent")
    assert len(tracker.requests) == 1
    assert PostbackAttempt.objects.count() == 1


def test_500_then_200_is_retried_on_a_growing_backoff_and_sent(tracker, offer, affiliate):
    tracker.answer(500, body=b"down")
    tracker.answer(503, body=b"still down")
    tracker.answer(200, body=b"thanks")
    delivery = delivery_to(tracker, offer, affiliate)

    first = postback_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (first.status, delivery.status, delivery.attempts) == ("pending", "pending", 1)
    assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500")
    assert delivery.response_excerpt == "down"
    assert first.retry_at == delivery.next_attempt_at
    first_wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 0.9 * RETRY_DELAYS_SECONDS[0] - 2 < first_wait <= 1.1 * RETRY_DELAYS_SECONDS[0]

    # Not due yet: a second run of the task does nothing.
    early = postback_delivery_attempt(delivery_id=delivery.pk)
    assert early.attempted is False
    assert len(tracker.requests) == 1

    time_passes(delivery)
    second = postback_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (second.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 503)
    second_wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 0.9 * RETRY_DELAYS_SECONDS[1] - 2 < second_wait <= 1.1 * RETRY_DELAYS_SECONDS[1]
    assert second_wait > first_wait

    time_passes(delivery)
    third = postback_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (third.status, delivery.status, delivery.attempts) == ("sent", "sent", 3)
    assert (delivery.last_status_code, delivery.last_error) == (200, "")
    assert delivery.response_excerpt == "thanks"
    assert list(PostbackAttempt.objects.values_list("status_code", "error")) == [
        (500, "HTTP 500"),
        (503, "HTTP 503"),
        (200, ""),
    ]
    assert len(tracker.requests) == 3


def test_a_404_fails_at_once_without_retry(tracker, offer, affiliate):
    tracker.answer(404, body=b"no such postback")
    delivery = delivery_to(tracker, offer, affiliate)
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 404)
    assert (delivery.last_error, delivery.next_attempt_at) == ("HTTP 404", None)
    assert delivery.response_excerpt == "no such postback"
    assert postback_delivery_attempt(delivery_id=delivery.pk).attempted is False
    assert len(tracker.requests) == 1
    assert PostbackAttempt.objects.count() == 1


def test_a_redirect_is_not_followed_and_fails(tracker, offer, affiliate):
    tracker.answer(302, body=b"", Location="http://169.254.169.254/")
    delivery = delivery_to(tracker, offer, affiliate)
    assert postback_delivery_attempt(delivery_id=delivery.pk).status == "failed"
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302
    assert delivery.last_error.startswith("HTTP 302: redirects are not followed")
    assert len(tracker.requests) == 1


def test_a_timeout_is_retried(settings, tracker, offer, affiliate):
    settings.LEADRELAY_POSTBACK_TIMEOUT_SECONDS = 0.3
    tracker.answer(200, delay=1.5)
    delivery = delivery_to(tracker, offer, affiliate)
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.status, outcome.retry_at is not None) == ("pending", True)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error == "timeout: no answer within 0.3 s"
    [attempt] = PostbackAttempt.objects.all()
    assert (attempt.status_code, attempt.error) == (None, "timeout: no answer within 0.3 s")
    assert 250 <= attempt.duration_ms < 1500


def test_a_refused_connection_is_retried(tracker, offer, affiliate):
    delivery = delivery_to(tracker, offer, affiliate)
    tracker.server.shutdown()
    tracker.server.server_close()  # nothing listens on the port any more
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert outcome.status == "pending"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("connection: ConnectError")


def test_retry_after_is_honoured_up_to_the_cap(tracker, offer, affiliate):
    tracker.answer(503, Retry_After="120")
    delivery = delivery_to(tracker, offer, affiliate)
    before = timezone.now()
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    wait = (outcome.retry_at - before).total_seconds()
    assert 120 <= wait < 125

    tracker.answer(429, Retry_After="999999")
    time_passes(delivery)
    before = timezone.now()
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    wait = (outcome.retry_at - before).total_seconds()
    assert RETRY_DELAYS_SECONDS[-1] <= wait < RETRY_DELAYS_SECONDS[-1] + 5
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code) == (2, 429)


def test_it_gives_up_after_the_last_retry(tracker, offer, affiliate):
    delivery = delivery_to(tracker, offer, affiliate)
    for _ in range(MAX_ATTEMPTS):
        tracker.answer(500)
    for n in range(1, MAX_ATTEMPTS + 1):
        outcome = postback_delivery_attempt(delivery_id=delivery.pk)
        assert outcome.attempted
        assert (outcome.retry_at is None) == (n == MAX_ATTEMPTS)
        time_passes(delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert delivery.last_error == f"gave up after {MAX_ATTEMPTS} attempts; last: HTTP 500"
    assert PostbackAttempt.objects.count() == MAX_ATTEMPTS == len(tracker.requests)
    assert sum(RETRY_DELAYS_SECONDS) / 3600 > 20  # about a day of trying


def test_a_private_address_is_refused_at_send(settings, tracker, offer, affiliate):
    delivery = delivery_to(tracker, offer, affiliate)  # saved while local URLs were allowed
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.status, outcome.retry_at) == ("failed", None)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("blocked_address")
    assert tracker.requests == []
    [attempt] = PostbackAttempt.objects.all()
    assert (attempt.status_code, attempt.error) == (None, delivery.last_error)


def test_a_local_name_saved_before_the_name_rule_is_refused_at_send(
    settings, tracker, offer, affiliate
):
    delivery = delivery_to(tracker, offer, affiliate)
    PostbackDelivery.objects.filter(pk=delivery.pk).update(url="http://tracker.local/pb")
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.status, outcome.retry_at) == ("failed", None)  # not a DNS error, retried
    delivery.refresh_from_db()
    assert delivery.last_error == (
        "blocked_address: the host is or resolves to a local, private or metadata address"
    )
    assert tracker.requests == []


def test_a_deleted_postback_is_not_sent_and_its_log_stays(tracker, offer, affiliate):
    delivery = delivery_to(tracker, offer, affiliate)
    affiliate_postback_delete(affiliate=affiliate, postback_id=delivery.postback_id)
    outcome = postback_delivery_attempt(delivery_id=delivery.pk)
    assert (outcome.attempted, outcome.status) == (False, "failed")
    delivery.refresh_from_db()
    assert (delivery.postback_id, delivery.status, delivery.attempts) == (None, "failed", 0)
    assert tracker.requests == []


def test_the_task_queues_itself_again_for_the_retry(settings, tracker, offer, affiliate):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
    }
    tracker.answer(500)
    delivery = delivery_to(tracker, offer, affiliate)
    assert postback_deliver.call(delivery.pk) == "pending"
    delivery.refresh_from_db()
    [queued] = DBTaskResult.objects.all()
    assert queued.task_path == "leadrelay.postbacks.tasks.postback_deliver"
    assert queued.args_kwargs == {"args": [delivery.pk], "kwargs": {}}
    assert queued.run_after == delivery.next_attempt_at
    assert postback_deliver.call(delivery.pk) == "pending"  # not due: no second task
    assert DBTaskResult.objects.count() == 1


def test_resume_queues_due_pending_deliveries_only(settings, tracker, offer, affiliate):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
    }
    due = delivery_to(tracker, offer, affiliate)
    later = PostbackDelivery.objects.create(
        postback=due.postback,
        lead=approved_lead(offer, affiliate),
        event=APPROVED,
        url=due.url,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    PostbackDelivery.objects.create(
        postback=due.postback,
        lead=approved_lead(offer, affiliate),
        event=APPROVED,
        url=due.url,
        status=DeliveryStatus.SENT,
    )
    assert postback_deliveries_resume() == 1
    assert [r.args_kwargs["args"] for r in DBTaskResult.objects.all()] == [[due.pk]]
    assert later.pk != due.pk


def test_the_response_excerpt_is_cut_at_2_kb_and_storable(tracker, offer, affiliate):
    tracker.answer(200, body=b"\x00ok" + "é".encode() * 5000)
    delivery = delivery_to(tracker, offer, affiliate)
    postback_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    # The first 2048 bytes: a NUL (PostgreSQL can't store it), "ok", 1022 "é" and half of one.
    assert delivery.response_excerpt == "\ufffdok" + "é" * 1022
