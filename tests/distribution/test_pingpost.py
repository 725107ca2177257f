"""Ping-post auctions against real buyer servers with set latencies."""

import json
import os
import time

import pytest
from django.utils import timezone

from leadrelay.core.errors import Invalid
from leadrelay.distribution import pingpost
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import Delivery, OfferRouting, PingBid, RoutingDecision
from tests.distribution.conftest import make_buyer, new_lead
from tests.localhttp import LocalServer


@pytest.fixture
def servers():
    started = [LocalServer().start() for _ in range(3)]
    yield started
    for server in started:
        server.stop()


def _ping_buyer(advertiser, server, name, **overrides):
    return make_buyer(
        advertiser,
        server.url + "/post",
        name=name,
        ping_url=server.url + "/ping",
        ping_field_map={"zip": "{zip}", "state": "{sub1}"},
        bid_json_path="$.bid",
        ping_id_json_path="$.ping_id",
        field_map={"ping": "{ping_id}", "mail": "{email}"},
        accept_regex="accepted",
        **overrides,
    )


def test_the_best_in_time_bid_wins_and_a_no_goes_to_the_next_bid(
    routed, affiliate, other_advertiser, servers
):
    OfferRouting.objects.filter(offer=routed).update(
        mode="ping_post", reserve_minor=1000, auction_deadline_ms=1500
    )
    fast, slow, mid = servers
    fast.answer(200, b'{"bid": 12.50, "ping_id": "F-1"}')
    fast.answer(200, b"accepted")
    slow.answer(200, b'{"bid": 99.00, "ping_id": "S-1"}', delay=1.0)  # past its 300 ms
    mid.answer(200, b'{"bid": "15.00", "ping_id": "M-1"}', delay=0.1)
    mid.answer(200, b"no thanks")
    buyers = [
        _ping_buyer(other_advertiser, fast, "Fast"),
        _ping_buyer(other_advertiser, slow, "Slow", ping_timeout_ms=300),
        _ping_buyer(other_advertiser, mid, "Mid"),
    ]
    lead = new_lead(routed, affiliate, zip="94107")
    started = time.monotonic()
    (delivery,) = lead_distribute(lead_id=lead.pk)
    assert time.monotonic() - started < 1.0  # the slow buyer's timeout, not its answer
    assert (delivery.buyer.name, delivery.price_minor, delivery.ping_id) == ("Mid", 1500, "M-1")
    assert json.loads(mid.requests[0].body) == {"zip": "94107", "state": ""}  # nothing personal
    decision = RoutingDecision.objects.get(lead=lead)
    assert decision.chosen == [buyers[2].pk, buyers[0].pk]
    reasons = {c["name"]: c["reason"] for c in decision.considered}
    assert reasons == {"Fast": "rank:2", "Slow": "timeout", "Mid": "rank:1"}
    assert PingBid.objects.get(buyer=buyers[1]).status == "timeout"

    assert delivery_attempt(delivery_id=delivery.pk).status == "rejected"
    second = Delivery.objects.get(lead=lead, buyer=buyers[0])
    assert (second.price_minor, second.ping_id) == (1250, "F-1")
    assert delivery_attempt(delivery_id=second.pk).status == "delivered"
    assert json.loads(fast.requests[1].body)["ping"] == "F-1"


def test_no_bid_over_the_reserve_leaves_the_lead_unsold(
    routed, affiliate, other_advertiser, servers
):
    OfferRouting.objects.filter(offer=routed).update(mode="ping_post", reserve_minor=2000)
    low, none, broken = servers
    low.answer(200, b'{"bid": 19.99}')
    none.answer(200, b'{"bid": 0}')
    broken.answer(200, b"<html>500</html>")
    for server, name in ((low, "Low"), (none, "None"), (broken, "Broken")):
        _ping_buyer(other_advertiser, server, name)
    lead = new_lead(routed, affiliate)
    assert lead_distribute(lead_id=lead.pk) == []
    reasons = {c["name"]: c["reason"] for c in RoutingDecision.objects.get(lead=lead).considered}
    assert reasons == {"Low": "below_reserve", "None": "no_bid", "Broken": "error"}


def test_a_ping_may_not_carry_personal_fields(routed, other_advertiser):
    with pytest.raises(Invalid) as exc:
        make_buyer(
            other_advertiser,
            "https://buyer.example/post",
            ping_url="https://buyer.example/ping",
            ping_field_map={"who": "{email}", "zip": "{zip}"},
            bid_json_path="bid",
        )
    codes = {(p.code, p.field) for p in exc.value.problems}
    assert ("personal_field_in_ping", "ping_field_map.who") in codes
    assert ("invalid_json_path", "bid_json_path") in codes


def test_a_shared_ping_post_sells_to_the_top_n_bids_at_once(
    routed, affiliate, other_advertiser, servers
):
    OfferRouting.objects.filter(offer=routed).update(mode="ping_post", max_buyers=2)
    for server, bid in zip(servers, (b"10.00", b"20.00", b"15.00"), strict=True):
        server.answer(200, b'{"bid": ' + bid + b"}")
        server.answer(200, b"accepted")
    names = ("Ten", "Twenty", "Fifteen")
    for server, name in zip(servers, names, strict=True):
        _ping_buyer(other_advertiser, server, name, exclusive=False)
    _ping_buyer(other_advertiser, servers[0], "Exclusive")  # buys exclusive leads only
    lead = new_lead(routed, affiliate)
    deliveries = lead_distribute(lead_id=lead.pk)
    assert sorted((d.buyer.name, d.price_minor) for d in deliveries) == [
        ("Fifteen", 1500),
        ("Twenty", 2000),
    ]
    decision = RoutingDecision.objects.get(lead=lead)
    assert decision.shared
    reasons = {c["name"]: c["reason"] for c in decision.considered}
    assert reasons["Exclusive"] == "exclusive_only"
    for delivery in deliveries:
        assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    assert Delivery.objects.filter(lead=lead).count() == 2  # no waterfall to the third


def test_an_auction_ends_by_its_deadline_when_its_process_is_busy(
    routed, affiliate, other_advertiser, servers
):
    routing = OfferRouting.objects.get(offer=routed)
    routing.auction_deadline_ms = 300
    fast = servers[0]
    fast.answer(200, b'{"bid": 12.50}')
    buyer = _ping_buyer(other_advertiser, fast, "Fast")
    lead = new_lead(routed, affiliate, zip="94107")
    engine = pingpost._engine_get()
    # Other auctions keep the ping loop busy for a second: this one still ends on time.
    engine.loop.call_soon_threadsafe(time.sleep, 1.0)
    started = time.monotonic()
    (bid,) = pingpost.auction_run(lead, [buyer], routing, timezone.now())
    assert time.monotonic() - started < 0.3 + pingpost.DEADLINE_GRACE + 0.3
    assert (bid.status, bid.bid_minor) == ("timeout", None)
    assert bid.error == "timeout: no bid by the auction's 0.3 s deadline"
    time.sleep(1.0)  # the loop is free again: the next auction gets its bid
    fast.answer(200, b'{"bid": 12.50}')
    (bid,) = pingpost.auction_run(lead, [buyer], routing, timezone.now())
    assert (bid.status, bid.bid_minor) == ("bid", 1250)


def test_auctions_share_kept_alive_connections_and_a_forked_child_starts_its_own():
    engine = pingpost._engine_get()
    assert pingpost._engine_get() is engine
    assert engine.thread.is_alive() and not engine.session.closed
    pid = os.fork()
    if pid == 0:  # the child: the parent's loop thread did not come along
        os._exit(0 if pingpost._engine is None else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert pingpost._engine is engine
