"""Inbound pings: an affiliate asks what a lead earns, then posts it with the ping id."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from leadrelay.core.errors import Conflict
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.inbound import BIDS_GRACE
from leadrelay.distribution.models import Delivery, InboundPing, OfferRouting, RoutingDecision
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.checks import ledger_problems
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.selectors import advertiser_balances, affiliate_balances
from tests.concurrency import run_together
from tests.conftest import bearer
from tests.distribution.conftest import make_buyer
from tests.factories import approve
from tests.localhttp import LocalServer


@pytest.fixture
def servers():
    started = [LocalServer().start() for _ in range(2)]
    yield started
    for server in started:
        server.stop()


def _bidder(advertiser, server, name, **overrides):
    return make_buyer(
        advertiser,
        server.url + "/post",
        name=name,
        ping_url=server.url + "/ping",
        ping_field_map={"zip": "{zip}"},
        bid_json_path="$.bid",
        ping_id_json_path="$.ping_id",
        field_map={"ping": "{ping_id}", "mail": "{email}", "zip": "{zip}"},
        accept_regex="accepted",
        **overrides,
    )


def _ping(headers, offer, **fields):
    return Client().post(
        "/api/v1/ping",
        {"offer_id": offer.pk, "fields": fields},
        content_type="application/json",
        **headers,
    )


def _post(headers, offer, ping_id, **fields):
    body = {"first_name": "Ada", "email": "ada@example.com", **fields}
    return Client().post(
        "/api/v1/leads",
        {"offer_id": offer.pk, "ping_id": ping_id, "fields": body},
        content_type="application/json",
        **headers,
    )


@pytest.fixture
def auctioned(routed):
    OfferRouting.objects.filter(offer=routed).update(
        mode="ping_post", margin_bps=2000, ping_ttl_seconds=120, auction_deadline_ms=1500
    )
    return routed


def test_a_quote_is_the_best_bid_less_the_margin_and_the_post_is_paid_it(
    auctioned, affiliate, other_advertiser, servers
):
    high, low = servers
    high.answer(200, b'{"bid": "20.00", "ping_id": "H-1"}')
    low.answer(200, b'{"bid": "15.00", "ping_id": "L-1"}')
    buyers = [_bidder(other_advertiser, high, "High"), _bidder(other_advertiser, low, "Low")]
    headers = bearer(affiliate)

    answer = _ping(headers, auctioned, zip="94107")
    assert answer.status_code == 200, answer.content
    quote = answer.json()
    assert quote["accepted"] is True
    assert (quote["payout"], quote["payout_minor"], quote["currency"]) == ("16.00", 1600, "USD")
    assert json.loads(high.requests[0].body) == {"zip": "94107"}  # nothing personal
    ping = InboundPing.objects.get(token=quote["ping_id"])
    assert (ping.price_minor, ping.quote_minor, ping.margin_bps) == (2000, 1600, 2000)
    assert "High" not in json.dumps(quote)  # the buyers and their bids stay the network's

    posted = _post(headers, auctioned, quote["ping_id"], zip="94107")
    assert posted.status_code == 201, posted.content
    lead = Lead.objects.get(pk=posted.json()["id"])
    assert (lead.status, lead.payout_minor, lead.ping_quote_minor) == ("approved", 1600, 1600)
    assert lead.payout_basis == "inbound ping quote"
    (balance,) = affiliate_balances(organization=affiliate)
    assert balance.pending_minor + balance.available_minor == 1600

    # Routed on the ping's bids: no second auction, the winner's ping id and bid.
    high.answer(200, b"accepted")
    (delivery,) = lead_distribute(lead_id=lead.pk)
    assert (delivery.buyer_id, delivery.price_minor, delivery.ping_id) == (
        buyers[0].pk,
        2000,
        "H-1",
    )
    assert [r.path for r in high.requests] == ["/ping"] and len(low.requests) == 1
    decision = RoutingDecision.objects.get(lead=lead)
    assert decision.chosen == [buyers[0].pk, buyers[1].pk]
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    assert json.loads(high.requests[1].body)["ping"] == "H-1"
    assert Transaction.objects.filter(external_id=f"sale:{lead.pk}:{buyers[0].pk}").exists()
    (owed,) = advertiser_balances(organization=other_advertiser)
    assert owed.owed_minor == 2000  # the buyer pays its bid; the network keeps 4.00
    assert ledger_problems() == []

    again = _post(headers, auctioned, quote["ping_id"], zip="94107")
    assert (again.status_code, again.json()["code"]) == (409, "ping_used")


def test_a_ping_refuses_personal_and_invalid_fields(auctioned, affiliate):
    answer = _ping(bearer(affiliate), auctioned, email="a@example.com", zip="nope", colour="x")
    assert answer.status_code == 422
    problems = {(e["code"], e["field"]) for e in answer.json()["errors"]}
    assert ("personal_field_in_ping", "fields.email") in problems
    assert ("unknown_field", "fields.colour") in problems
    assert any(field == "fields.zip" for _, field in problems)
    assert not any(field == "fields.first_name" for _, field in problems)  # missing is fine
    assert InboundPing.objects.count() == 0


def test_the_post_must_match_the_ping_and_come_in_time(
    auctioned, affiliate, other_affiliate, other_advertiser, servers
):
    servers[0].answer(200, b'{"bid": "20.00"}')
    _bidder(other_advertiser, servers[0], "High")
    headers = bearer(affiliate)
    token = _ping(headers, auctioned, zip="94107").json()["ping_id"]

    other = _post(headers, auctioned, token, zip="10001")
    assert other.status_code == 422
    assert [(e["code"], e["field"]) for e in other.json()["errors"]] == [
        ("ping_mismatch", "fields.zip")
    ]
    approve(auctioned, other_affiliate)
    stranger = _post(bearer(other_affiliate), auctioned, token, zip="94107")
    assert (stranger.status_code, stranger.json()["errors"][0]["code"]) == (422, "unknown_ping")
    assert Lead.objects.count() == 0

    InboundPing.objects.filter(token=token).update(expires_at=timezone.now())
    late = _post(headers, auctioned, token, zip="94107")
    assert (late.status_code, late.json()["code"]) == (409, "ping_expired")
    assert Lead.objects.count() == 0
    assert InboundPing.objects.get(token=token).used_at is None

    nobody = _ping(headers, auctioned, zip="94107").json()  # the server now answers "OK"
    assert (nobody["accepted"], nobody["payout_minor"]) == (False, 0)
    refused = _post(headers, auctioned, nobody["ping_id"], zip="94107")
    assert (refused.status_code, refused.json()["code"]) == (409, "ping_not_accepted")


def test_fixed_price_routing_quotes_the_buyer_it_would_choose(routed, affiliate, advertiser):
    OfferRouting.objects.filter(offer=routed).update(margin_bps=2500)
    make_buyer(advertiser, "http://127.0.0.1:9/x", name="Picky", price_minor=9000, priority=1,
               filters={"field": "fields.zip", "op": "equals", "value": "10001"})  # fmt: skip
    make_buyer(advertiser, "http://127.0.0.1:9/y", name="Any", price_minor=4000, priority=2)
    headers = bearer(affiliate)
    quote = _ping(headers, routed, zip="94107").json()
    assert (quote["accepted"], quote["payout_minor"]) == (True, 3000)
    ping = InboundPing.objects.get(token=quote["ping_id"])
    reasons = {c["name"]: c["reason"] for c in ping.considered}
    assert reasons["Any"] == "rank:1" and reasons["Picky"].startswith("filter:")
    assert _ping(headers, routed, zip="10001").json()["payout_minor"] == 6750


def test_offers_that_dont_sell_to_buyers_take_no_pings(offer, affiliate, routed):
    answer = _ping(bearer(affiliate), offer, zip="94107")
    assert (answer.status_code, answer.json()["code"]) == (409, "pings_not_taken")
    OfferRouting.objects.filter(offer=routed).update(enabled=False)
    assert _ping(bearer(affiliate), routed, zip="94107").status_code == 409


def test_bids_too_old_when_routed_mean_a_fresh_auction(
    auctioned, affiliate, other_advertiser, servers
):
    server = servers[0]
    server.answer(200, b'{"bid": "20.00", "ping_id": "OLD"}')
    _bidder(other_advertiser, server, "High")
    headers = bearer(affiliate)
    token = _ping(headers, auctioned, zip="94107").json()["ping_id"]
    lead_id = _post(headers, auctioned, token, zip="94107").json()["id"]
    ping = InboundPing.objects.get(token=token)
    server.answer(200, b'{"bid": "18.00", "ping_id": "NEW"}')
    later = ping.expires_at + BIDS_GRACE + timedelta(seconds=1)
    (delivery,) = lead_distribute(lead_id=lead_id, now=later)
    assert (delivery.ping_id, delivery.price_minor) == ("NEW", 1800)
    assert [r.path for r in server.requests] == ["/ping", "/ping"]
    # The affiliate keeps its quote: 80 % of the 20.00 it was promised.
    assert Lead.objects.get(pk=lead_id).payout_minor == 1600


@pytest.mark.django_db(transaction=True)
def test_one_ping_posted_twice_at_once_makes_one_lead(routed, affiliate, advertiser):
    OfferRouting.objects.filter(offer=routed).update(margin_bps=1000)
    make_buyer(advertiser, "http://127.0.0.1:9/x", name="Any", price_minor=4000)
    token = _ping(bearer(affiliate), routed, zip="94107").json()["ping_id"]
    count = 3 if connection.vendor == "sqlite" else 8

    def post(i: int) -> None:
        lead_intake(
            offer_id=routed.pk,
            fields={"first_name": "Ada", "email": f"a{i}@example.com", "zip": "94107"},
            source=LeadSource.API,
            affiliate=affiliate,
            ping_id=token,
        )

    errors = run_together(count, post)
    assert len(errors) == count - 1
    assert all(isinstance(e, Conflict) and e.code == "ping_used" for e in errors)
    (lead,) = Lead.objects.all()
    assert lead.payout_minor == 3600
    assert Delivery.objects.filter(lead=lead).count() <= 1


def test_pings_are_rate_limited_per_key(routed, affiliate, advertiser, settings):
    settings.LEADRELAY_RATE_LIMITS = {**settings.LEADRELAY_RATE_LIMITS, "ping_key": (2, 60)}
    make_buyer(advertiser, "http://127.0.0.1:9/x", name="Any", price_minor=4000)
    headers = bearer(affiliate)
    codes = [_ping(headers, routed, zip="94107").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_shared_quote_names_the_buyers_past_max_buyers_as_routing_does(
    routed, affiliate, advertiser
):
    # Regression: the ping logged such a buyer as "rank:0".
    OfferRouting.objects.filter(offer=routed).update(mode="shared", max_buyers=1)
    make_buyer(advertiser, "http://127.0.0.1:9/x", name="First", price_minor=5000,
               exclusive=False)  # fmt: skip
    make_buyer(advertiser, "http://127.0.0.1:9/y", name="Second", price_minor=4000,
               exclusive=False)  # fmt: skip
    quote = _ping(bearer(affiliate), routed, zip="94107").json()
    assert quote["payout_minor"] == 5000
    ping = InboundPing.objects.get(token=quote["ping_id"])
    reasons = {c["name"]: c["reason"] for c in ping.considered}
    assert reasons == {"First": "rank:1", "Second": "beyond_max_buyers"}
