"""Which buyers get a lead, in which order, and the logged reason for every other buyer."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from leadrelay.core.errors import Invalid
from leadrelay.distribution.buyers import buyer_cap_set
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import Delivery, OfferRouting, RoutingDecision
from leadrelay.ledger.payments import advertiser_payment_record
from tests.distribution.conftest import make_buyer, new_lead
from tests.factories import member


def _reasons(lead):
    decision = RoutingDecision.objects.get(lead=lead)
    return {c["name"]: c["reason"] for c in decision.considered}


def _mode(offer, mode, max_buyers=1):
    OfferRouting.objects.filter(offer=offer).update(mode=mode, max_buyers=max_buyers)


def test_every_buyer_is_logged_with_why_it_was_or_wasnt_chosen(
    routed, affiliate, advertiser, other_advertiser, buyer_server
):
    url = buyer_server.url
    make_buyer(other_advertiser, url, name="Chosen", priority=1)
    make_buyer(
        other_advertiser,
        url,
        name="Filtered",
        filters={"field": "fields.zip", "op": "regex", "value": "^9", "code": "not_west"},
    )
    make_buyer(
        other_advertiser,
        url,
        name="Closed",
        schedule={"mon": [["00:00", "00:01"]]},
        timezone="America/New_York",
    )
    make_buyer(other_advertiser, url, name="Euro", currency="EUR")
    make_buyer(other_advertiser, url, name="Sharer", exclusive=False)
    make_buyer(other_advertiser, url, name="Solar", vertical="solar")
    paused = make_buyer(other_advertiser, url, name="Paused")
    paused.status = "paused"
    paused.save()
    lead = new_lead(routed, affiliate, zip="10001")
    with time_machine.travel(dt.datetime(2026, 11, 25, 15, tzinfo=dt.UTC)):  # a Wednesday
        (delivery,) = lead_distribute(lead_id=lead.pk)
    assert delivery.buyer.name == "Chosen"
    assert _reasons(lead) == {
        "Chosen": "rank:1",
        "Filtered": "filter:not_west",
        "Closed": "outside_schedule",
        "Euro": "currency",
        "Sharer": "shared_only",
        "Paused": "paused",
    }  # a buyer of another vertical is not considered at all


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("priority", ["Cheap first", "Rich", "Mid"]),
        ("highest_price", ["Rich", "Mid", "Cheap first"]),
    ],
)
def test_priority_and_highest_price_orders(
    routed, affiliate, other_advertiser, buyer_server, mode, expected
):
    _mode(routed, mode)
    make_buyer(other_advertiser, buyer_server.url, name="Cheap first", priority=1, price_minor=1000)
    make_buyer(other_advertiser, buyer_server.url, name="Rich", priority=5, price_minor=5000)
    make_buyer(other_advertiser, buyer_server.url, name="Mid", priority=9, price_minor=3000)
    lead = new_lead(routed, affiliate)
    lead_distribute(lead_id=lead.pk)
    decision = RoutingDecision.objects.get(lead=lead)
    names = {c["buyer"]: c["name"] for c in decision.considered}
    assert [names[b] for b in decision.chosen] == expected


def test_weighted_round_robin_shares_leads_by_weight(
    routed, affiliate, other_advertiser, buyer_server
):
    _mode(routed, "weighted")
    heavy = make_buyer(other_advertiser, buyer_server.url, name="Heavy", weight=3)
    light = make_buyer(other_advertiser, buyer_server.url, name="Light", weight=1)
    first = [lead_distribute(lead_id=new_lead(routed, affiliate).pk)[0].buyer for _ in range(8)]
    assert first.count(heavy) == 6 and first.count(light) == 2


def test_shared_leads_go_to_at_most_n_buyers_highest_price_first(
    routed, affiliate, other_advertiser, buyer_server
):
    _mode(routed, "shared", max_buyers=2)
    for name, price in (("A", 1000), ("B", 3000), ("C", 2000)):
        make_buyer(
            other_advertiser, buyer_server.url, name=name, price_minor=price, exclusive=False
        )
    make_buyer(other_advertiser, buyer_server.url, name="Exclusive")
    lead = new_lead(routed, affiliate)
    deliveries = lead_distribute(lead_id=lead.pk)
    assert sorted(d.buyer.name for d in deliveries) == ["B", "C"]
    assert _reasons(lead) == {
        "A": "beyond_max_buyers",
        "B": "rank:1",
        "C": "rank:2",
        "Exclusive": "exclusive_only",
    }
    for delivery in deliveries:
        assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    assert Delivery.objects.filter(lead=lead, status="delivered").count() == 2


def test_count_and_spend_caps_in_the_buyers_time_zone(
    routed, affiliate, other_advertiser, advertiser, buyer_server
):
    capped = make_buyer(other_advertiser, buyer_server.url, name="Capped", priority=1)
    make_buyer(advertiser, buyer_server.url, name="Backup", priority=2)
    buyer_cap_set(buyer=capped, period="day", max_leads=2)
    names = [
        lead_distribute(lead_id=new_lead(routed, affiliate).pk)[0].buyer.name for _ in range(3)
    ]
    assert names == ["Capped", "Capped", "Backup"]
    lead = RoutingDecision.objects.last().lead
    assert _reasons(lead)["Capped"] == "cap_reached:day:leads"
    buyer_cap_set(buyer=capped, period="week", max_leads=None, max_spend_minor=5000)
    buyer_cap_set(buyer=capped, period="day", max_leads=10)
    lead = new_lead(routed, affiliate)
    lead_distribute(lead_id=lead.pk)
    assert _reasons(lead)["Capped"] == "cap_reached:week:spend"
    with pytest.raises(Invalid):
        buyer_cap_set(buyer=capped, period="year", max_leads=-1)


def test_a_buyer_over_its_budget_is_skipped(
    routed, affiliate, other_advertiser, network, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url, name="Tight", credit_limit_minor=0)
    lead = new_lead(routed, affiliate)
    assert lead_distribute(lead_id=lead.pk) == []
    assert _reasons(lead)["Tight"] == "over_budget"
    advertiser_payment_record(
        advertiser=other_advertiser,
        currency="USD",
        amount_minor=3000,
        reference="PRE-1",
        staff=member(network),
        prepayment=True,
    )
    (delivery,) = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    assert delivery.buyer.name == "Tight"
    lead = new_lead(routed, affiliate)
    assert lead_distribute(lead_id=lead.pk) == []  # the prepayment is spoken for


def test_an_approved_lead_is_routed_after_commit(
    routed, affiliate, other_advertiser, buyer_server, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    make_buyer(other_advertiser, buyer_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        lead = new_lead(routed, affiliate)
    assert DBTaskResult.objects.filter(task_path__endswith="lead_distribute_task").count() == 1
    assert not RoutingDecision.objects.filter(lead=lead).exists()  # the worker routes it
    lead_distribute(lead_id=lead.pk)
    assert RoutingDecision.objects.filter(lead=lead).count() == 1


def test_bad_buyer_settings_are_refused_with_every_problem(routed, other_advertiser):
    from tests.distribution.conftest import make_buyer as mk

    with pytest.raises(Invalid) as exc:
        mk(
            other_advertiser,
            "ftp://user:pw@example.com/",
            name=" ",
            price_minor=-1,
            currency="usd",
            method="post_xml",
            field_map={"1bad": "{nope}"},
            headers={"Host": "x", "X-Ok": "a\nb"},
            accept_regex="(",
            accept_json_path="result",
            signing_secrets=["not a secret"],
            schedule={"funday": []},
            timezone="Mars/Base",
        )
    codes = {p.code for p in exc.value.problems}
    assert codes >= {
        "required",
        "invalid_amount",
        "invalid_currency",
        "url_scheme",
        "url_credentials",
        "invalid_xml_name",
        "unknown_macro",
        "invalid_header",
        "invalid_regex",
        "invalid_json_path",
        "invalid_secret",
        "invalid_schedule",
        "invalid_timezone",
    }


def test_time_zone_schedules_open_and_close(routed, affiliate, other_advertiser, buyer_server):
    make_buyer(
        other_advertiser,
        buyer_server.url,
        name="NY hours",
        schedule={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        timezone="America/New_York",
    )
    wednesday_10_ny = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
    with time_machine.travel(wednesday_10_ny):
        assert lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    with time_machine.travel(wednesday_10_ny + dt.timedelta(hours=8)):
        assert lead_distribute(lead_id=new_lead(routed, affiliate).pk) == []
    assert timezone.now()  # the clock is back
