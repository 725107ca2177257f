import datetime as dt
import uuid

import pytest
import redis
import time_machine
from django.db import connection
from django.test import Client

from leadrelay.core.ratelimit import TooManyRequests, _counter, rate_limit_check
from leadrelay.leads.models import Lead
from tests.concurrency import run_together
from tests.conftest import bearer

REDIS_TEST_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    _counter.cache_clear()
    if request.param == "redis":
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        settings.REDIS_URL = REDIS_TEST_URL
    else:
        settings.REDIS_URL = ""
    # At the start of a window, so a test's requests never straddle two.
    with time_machine.travel(dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.UTC), tick=False):
        yield request.param
    _counter.cache_clear()


def _post(headers, offer, n, **extra):
    return Client().post(
        "/api/v1/leads",
        {"offer_id": offer.pk, "fields": {"first_name": "A", "email": f"rl{n}@example.com"}},
        content_type="application/json",
        **headers,
        **extra,
    )


def test_a_key_over_its_limit_gets_429_with_retry_after(settings, backend, offer, affiliate):
    settings.LEADRELAY_RATE_LIMITS = {"lead_post_key": (3, 60)}
    headers = bearer(affiliate)
    assert [_post(headers, offer, n).status_code for n in range(3)] == [201, 201, 201]
    refused = _post(headers, offer, 3)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused["Retry-After"] == "55"  # the window ends at :00:60
    assert Lead.objects.count() == 3
    assert _post(bearer(affiliate), offer, 4).status_code == 201  # another key has its own


def test_an_address_over_its_limit_gets_429(settings, backend, offer, affiliate):
    settings.LEADRELAY_RATE_LIMITS = {"lead_post_ip": (2, 60)}
    a, b = bearer(affiliate), bearer(affiliate)
    ip = {"REMOTE_ADDR": "203.0.113.77"}
    assert _post(a, offer, 0, **ip).status_code == 201
    assert _post(b, offer, 1, **ip).status_code == 201
    assert _post(a, offer, 2, **ip).status_code == 429
    assert _post(a, offer, 3, REMOTE_ADDR="203.0.113.78").status_code == 201


def test_the_hosted_form_is_limited_per_address(settings, backend, offer):
    settings.LEADRELAY_RATE_LIMITS = {"form_post_ip": (1, 60)}
    data = {"first_name": "A", "email": "form@example.com"}
    assert Client().post(f"/f/{offer.pk}/", data).status_code == 302
    refused = Client().post(f"/f/{offer.pk}/", {**data, "email": "b@example.com"})
    assert refused.status_code == 429
    assert "Retry-After" in refused
    assert Lead.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_limit_of_ten_lets_exactly_ten_through_at_once(settings, backend):
    settings.LEADRELAY_RATE_LIMITS = {"burst": (10, 60)}
    count = 24 if connection.vendor == "postgresql" or backend == "redis" else 12
    key = uuid.uuid4().hex
    allowed: list[bool] = []

    def hit(_: int) -> None:
        try:
            rate_limit_check(name="burst", key=key, what="")
            allowed.append(True)
        except TooManyRequests:
            allowed.append(False)

    assert run_together(count, hit) == []
    assert allowed.count(True) == 10
    assert len(allowed) == count


def test_a_redis_outage_lets_requests_through(settings, offer, affiliate):
    _counter.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.LEADRELAY_RATE_LIMITS = {"lead_post_key": (1, 60)}
    try:
        headers = bearer(affiliate)
        assert [_post(headers, offer, n).status_code for n in range(2)] == [201, 201]
    finally:
        _counter.cache_clear()


def test_an_address_is_limited_before_its_key_and_body_are_read(
    settings, backend, offer, affiliate, django_assert_num_queries
):
    """650 unknown keys or invalid bodies from one address used to get 401/422 each."""
    settings.LEADRELAY_RATE_LIMITS = {"lead_post_ip": (3, 60)}
    ip = {"REMOTE_ADDR": "203.0.113.90"}
    unknown = {"HTTP_AUTHORIZATION": "Bearer lr_nobody"}
    invalid = Client().post(
        "/api/v1/leads", {"offer_id": "x"}, content_type="application/json",
        **bearer(affiliate), **ip,
    )  # fmt: skip
    assert invalid.status_code == 422
    assert _post(unknown, offer, 0, **ip).status_code == 401
    assert _post(unknown, offer, 1, **ip).status_code == 401
    if backend == "redis":
        with django_assert_num_queries(0):  # no session, no key lookup, no body
            refused = _post(unknown, offer, 2, **ip)
    else:
        refused = _post(unknown, offer, 2, **ip)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert "Retry-After" in refused
    assert _post(bearer(affiliate), offer, 3, **ip).status_code == 429
    assert Lead.objects.count() == 0


def test_a_key_is_limited_right_after_authentication_before_its_body(
    settings, backend, offer, affiliate
):
    settings.LEADRELAY_RATE_LIMITS = {"lead_post_key": (1, 60)}
    headers = bearer(affiliate)
    bad_body = {"offer_id": "not a number"}
    first = Client().post("/api/v1/leads", bad_body, content_type="application/json", **headers)
    again = Client().post("/api/v1/leads", bad_body, content_type="application/json", **headers)
    assert (first.status_code, again.status_code) == (422, 429)


def test_every_api_call_counts_against_its_address_and_its_key(settings, backend, affiliate):
    settings.LEADRELAY_RATE_LIMITS = {"api_ip": (2, 60), "api_key": (1, 60)}
    a, b = bearer(affiliate), bearer(affiliate)
    assert Client().get("/api/v1/offers", **a).status_code == 200
    assert Client().get("/api/v1/offers", **a).status_code == 429  # the key's one call
    assert Client().get("/api/v1/offers", **b).status_code == 429  # the address's two
    assert Client().get("/api/v1/offers", REMOTE_ADDR="203.0.113.5", **b).status_code == 200


def test_logins_are_limited_per_address(settings, backend, db):
    settings.LEADRELAY_RATE_LIMITS = {"login_ip": (2, 60)}
    form = {"username": "nobody", "password": "wrong"}
    codes = [Client().post("/login/", form).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
