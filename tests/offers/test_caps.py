import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.core.errors import Invalid
from leadrelay.leads.models import Lead, LeadSource, LeadStatus
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.models import Transaction
from leadrelay.offers.caps import lead_cap_set, period_start
from leadrelay.offers.models import CapCounter, Offer
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.models import Click
from leadrelay.tracking.services import tracking_link_create
from tests.concurrency import run_together
from tests.factories import approve, make_offer

_n = iter(range(10**9))


def _lead(offer, affiliate):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": f"cap{next(_n)}@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )


def test_an_offer_cap_refuses_the_lead_over_it(offer, affiliate):
    lead_cap_set(offer=offer, period="day", limit=2)
    statuses = [_lead(offer, affiliate).status for _ in range(3)]
    assert statuses == ["approved", "approved", "rejected"]
    refused = Lead.objects.order_by("pk").last()
    assert refused.reasons == ["cap_reached:offer:day"]
    assert Transaction.objects.count() == 2


def test_an_affiliate_cap_leaves_other_affiliates_alone(offer, affiliate, other_affiliate):
    approve(offer, other_affiliate)
    lead_cap_set(offer=offer, period="week", limit=1, affiliate=affiliate)
    assert [_lead(offer, affiliate).status for _ in range(2)] == ["approved", "rejected"]
    assert Lead.objects.order_by("pk").last().reasons == ["cap_reached:affiliate:week"]
    assert _lead(offer, other_affiliate).status == "approved"


def test_a_refused_lead_takes_no_place_in_any_cap(offer, affiliate):
    offer_cap = lead_cap_set(offer=offer, period="month", limit=5)
    lead_cap_set(offer=offer, period="day", limit=0, affiliate=affiliate)
    assert _lead(offer, affiliate).status == "rejected"
    assert sum(CapCounter.objects.filter(cap=offer_cap).values_list("count", flat=True)) == 0


def test_over_cap_leads_can_be_accepted_unpaid(offer, affiliate):
    Offer.objects.filter(pk=offer.pk).update(over_cap="accept_unpaid")
    lead_cap_set(offer=offer, period="day", limit=1)
    first, second = _lead(offer, affiliate), _lead(offer, affiliate)
    assert (first.status, second.status) == ("approved", "approved")
    assert second.reasons == ["over_cap_unpaid", "cap_reached:offer:day"]
    assert (second.revenue_minor, second.payout_minor) == (0, 0)
    assert Transaction.objects.count() == 1


def test_a_new_day_in_the_offers_time_zone_opens_the_cap(advertiser, affiliate):
    offer = make_offer(advertiser, tz="America/Los_Angeles")
    approve(offer, affiliate)
    lead_cap_set(offer=offer, period="day", limit=1)
    # 07:59 UTC is 23:59 the day before in Los Angeles; 08:01 is just past midnight.
    with time_machine.travel(dt.datetime(2026, 1, 10, 7, 59, tzinfo=dt.UTC), tick=False):
        assert [_lead(offer, affiliate).status for _ in range(2)] == ["approved", "rejected"]
    with time_machine.travel(dt.datetime(2026, 1, 10, 8, 1, tzinfo=dt.UTC), tick=False):
        assert _lead(offer, affiliate).status == "approved"


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_period_starts(naive):
    at = naive.replace(tzinfo=dt.UTC)
    day = period_start("day", at, "Asia/Tokyo")
    week = period_start("week", at, "Asia/Tokyo")
    month = period_start("month", at, "Asia/Tokyo")
    assert week.weekday() == 0 and 0 <= (day - week).days < 7
    assert month.day == 1 and month <= day and (month.year, month.month) == (day.year, day.month)


def test_bad_caps_are_refused(offer):
    with pytest.raises(Invalid):
        lead_cap_set(offer=offer, period="year", limit=1)
    with pytest.raises(Invalid):
        lead_cap_set(offer=offer, period="day", limit=-1)


def test_a_full_offer_cap_sends_clicks_to_the_fallback(offer, affiliate):
    from leadrelay.offers.services import Targeting, offer_targeting_set

    offer_targeting_set(offer=offer, targeting=Targeting(fallback_url="https://full.example/"))
    lead_cap_set(offer=offer, period="day", limit=1)
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    assert Client().get(f"/c/{link.code}")["Location"].startswith("https://lp.example.com/")
    _lead(offer, affiliate)
    assert Client().get(f"/c/{link.code}")["Location"] == "https://full.example/"
    click_buffer.flush()
    assert Click.objects.order_by("created_at").last().refusal == "cap_reached"


@pytest.mark.django_db(transaction=True)
def test_a_cap_of_ten_never_admits_eleven_under_concurrency(offer, affiliate):
    lead_cap_set(offer=offer, period="day", limit=10)
    count = 30 if connection.vendor == "postgresql" else 12

    def post(i: int) -> None:
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "A", "email": f"race{i}@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )

    errors = run_together(count, post)
    assert errors == []
    assert Lead.objects.filter(status=LeadStatus.APPROVED).count() == 10
    assert Lead.objects.filter(status=LeadStatus.REJECTED).count() == count - 10
    assert CapCounter.objects.get().count == 10
