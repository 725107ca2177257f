"""Idempotency-Key on POST /api/v1/leads: replays, conflicts, and one lead under a stampede."""

import pytest
from django.db import connection
from django.test import Client

from leadrelay.leads.models import IdempotencyRecord, Lead
from leadrelay.ledger.models import Transaction
from tests.concurrency import run_together

BODY = {"first_name": "Ana", "email": "ana@example.com"}


def _post(headers, offer, key, fields=None, client=None):
    return (client or Client()).post(
        "/api/v1/leads",
        {"offer_id": offer.pk, "fields": fields or BODY},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
        **headers,
    )


def test_a_retry_with_the_same_key_and_body_gets_the_same_answer(offer, affiliate_headers):
    first = _post(affiliate_headers, offer, "order-1")
    again = _post(affiliate_headers, offer, "order-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert (first["Idempotent-Replayed"], again["Idempotent-Replayed"]) == ("false", "true")
    assert Lead.objects.count() == 1
    assert Transaction.objects.count() == 1


def test_the_same_key_with_another_body_is_a_conflict(offer, affiliate_headers):
    _post(affiliate_headers, offer, "order-2")
    other = _post(affiliate_headers, offer, "order-2", {**BODY, "email": "bo@example.com"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert Lead.objects.count() == 1


def test_keys_belong_to_one_api_key(offer, affiliate):
    from tests.conftest import bearer

    a, b = bearer(affiliate), bearer(affiliate)
    assert _post(a, offer, "k").status_code == 201
    second = _post(b, offer, "k", {**BODY, "email": "bo@example.com"})
    assert second.status_code == 201
    assert Lead.objects.count() == 2


def test_a_refused_request_stores_nothing_and_can_be_retried(offer, affiliate_headers):
    bad = _post(affiliate_headers, offer, "k1", {"email": "nope"})
    assert bad.status_code == 422
    assert IdempotencyRecord.objects.count() == 0
    assert _post(affiliate_headers, offer, "k1").status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_bad_keys_are_refused(offer, affiliate_headers, key):
    response = _post(affiliate_headers, offer, key)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert Lead.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_posts_with_one_key_make_one_lead(offer, affiliate) -> None:
    from tests.conftest import bearer

    headers = bearer(affiliate)
    count = 50 if connection.vendor == "postgresql" else 10
    answers: list[tuple[int, dict]] = []

    def post(_: int) -> None:
        response = _post(headers, offer, "stampede")
        answers.append((response.status_code, response.json()))  # list.append is atomic

    assert run_together(count, post) == []
    assert len(answers) == count
    assert {status for status, _ in answers} == {201}
    assert len({body["id"] for _, body in answers}) == 1
    assert Lead.objects.count() == 1
    assert Transaction.objects.count() == 1
