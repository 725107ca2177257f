"""Fraud signals, their weights, and what the score decides."""

from pathlib import Path

import pytest
from django.test import Client

from leadrelay.core.clickid import click_id_issue
from leadrelay.leads.fraud import WEIGHTS
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.services import LeadOrigin, lead_intake
from leadrelay.offers.models import Offer
from leadrelay.offers.services import FieldSpec
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer
from tests.factories import CHROME_UA, approve, form_submit, make_click, make_offer

GEOIP = str(Path(__file__).parent.parent / "fixtures" / "geoip-test.mmdb")
_n = iter(range(10**9))


def _lead(offer, affiliate, origin=None, click_id=None, **fields):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": f"f{next(_n)}@example.com", **fields},
        source=LeadSource.API,
        affiliate=affiliate,
        click_id=click_id,
        origin=origin,
    )


def test_a_clean_lead_has_no_signals(offer, affiliate):
    lead = _lead(offer, affiliate, LeadOrigin(ip="198.51.100.1", user_agent=CHROME_UA))
    assert (lead.signals, lead.fraud_score, lead.status) == ([], 0, "approved")


def test_one_medium_signal_is_recorded_but_decides_nothing(offer, affiliate):
    lead = _lead(offer, affiliate, email="x@mailinator.com")
    assert (lead.signals, lead.fraud_score, lead.status) == (["disposable_email"], 40, "approved")


def test_two_medium_signals_send_the_lead_to_review(settings, offer, affiliate):
    settings.LEADRELAY_GEOIP_DB = GEOIP
    lead = _lead(
        offer, affiliate, LeadOrigin(ip="203.0.113.200"), email="x@mailinator.com"
    )  # a German address, no country field: only the disposable email counts
    assert lead.status == "approved"
    country_offer = make_offer(
        offer.advertiser,
        fields=[FieldSpec("email", "email"), FieldSpec("country", "country")],
    )
    approve(country_offer, affiliate)
    lead = lead_intake(
        offer_id=country_offer.pk,
        fields={"email": "y@mailinator.com", "country": "US"},
        source=LeadSource.API,
        affiliate=affiliate,
        origin=LeadOrigin(ip="203.0.113.200"),
    )
    assert sorted(lead.signals) == ["disposable_email", "ip_country_mismatch"]
    assert (lead.fraud_score, lead.status) == (70, "pending_review")


def test_a_crawler_is_rejected_by_score(offer, affiliate):
    lead = _lead(offer, affiliate, LeadOrigin(user_agent="Googlebot/2.1"))
    assert (lead.status, lead.reasons, lead.signals) == (
        "rejected",
        ["fraud_score"],
        ["crawler_user_agent"],
    )


def test_the_offer_sets_the_thresholds(offer, affiliate):
    Offer.objects.filter(pk=offer.pk).update(fraud_review_score=30, fraud_reject_score=40)
    lead = _lead(offer, affiliate, email="x@mailinator.com")
    assert lead.status == "rejected"


def test_velocity_from_one_address(offer, affiliate):
    origin = LeadOrigin(ip="198.51.100.9", user_agent=CHROME_UA)
    leads = [_lead(offer, affiliate, origin) for _ in range(4)]
    assert [lead.signals for lead in leads] == [[], [], [], ["ip_velocity"]]


def test_a_click_id_used_twice_and_a_lead_too_soon_after_its_click(offer, affiliate):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    click = make_click(link)
    first = _lead(offer, affiliate, click_id=click.click_id)
    second = _lead(offer, affiliate, click_id=click.click_id)
    assert first.signals == ["click_too_recent"]
    assert sorted(second.signals) == ["click_id_reused", "click_too_recent"]
    assert (second.fraud_score, second.status) == (90, "pending_review")
    old = click_id_issue(link_id=link.pk, offer_id=offer.pk, affiliate_id=affiliate.pk)
    import datetime as dt

    import time_machine
    from django.utils import timezone

    with time_machine.travel(timezone.now() + dt.timedelta(minutes=5), tick=False):
        later = _lead(offer, affiliate, click_id=old.click_id)
    assert later.signals == []


def test_landlines_where_mobiles_are_required(offer, affiliate):
    Offer.objects.filter(pk=offer.pk).update(require_mobile=True)
    # US numbers can't be told apart: they count as mobile. A UK landline can.
    lead = _lead(offer, affiliate, phone="+44 20 7946 0958")
    assert lead.signals == ["phone_not_mobile"]
    lead = _lead(offer, affiliate, phone="+44 7911 123456")
    assert lead.signals == []


def test_the_hosted_form_catches_honeypots_and_haste(offer, affiliate):
    data = {"first_name": "Bo", "email": "bo@example.com"}
    form_submit(Client(), offer, data)  # twenty seconds, like a person
    form_submit(Client(), offer, {**data, "email": "b2@example.com", "lr_hp_url": "http://x"})
    form_submit(Client(), offer, {**data, "email": "b3@example.com"}, seconds=1)
    Client().post(f"/f/{offer.pk}/", {**data, "email": "b4@example.com"})  # never loaded it
    signals = [lead.signals for lead in Lead.objects.order_by("pk")]
    assert signals == [[], ["honeypot_filled"], ["form_too_fast"], ["form_too_fast"]]
    statuses = [lead.status for lead in Lead.objects.order_by("pk")]
    assert statuses == ["approved", "rejected", "approved", "approved"]


def test_api_leads_take_the_visitors_address_from_the_body(offer, affiliate):
    response = Client().post(
        "/api/v1/leads",
        {
            "offer_id": offer.pk,
            "visitor_ip": "198.51.100.23",
            "visitor_user_agent": CHROME_UA,
            "fields": {"first_name": "A", "email": "api@example.com"},
        },
        content_type="application/json",
        REMOTE_ADDR="192.0.2.1",  # the affiliate's server
        **bearer(affiliate),
    )
    assert response.status_code == 201
    lead = Lead.objects.get()
    assert (lead.ip, lead.user_agent) == ("198.51.100.23", CHROME_UA)
    bad = Client().post(
        "/api/v1/leads",
        {"offer_id": offer.pk, "visitor_ip": "nope", "fields": {"first_name": "A"}},
        content_type="application/json",
        **bearer(affiliate),
    )
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "visitor_ip")


def test_every_signal_has_a_weight():
    from leadrelay.leads import fraud

    codes = {v for k, v in vars(fraud).items() if k.isupper() and isinstance(v, str)}
    assert codes - {"DISPOSABLE_EMAIL"} <= set(WEIGHTS)
    assert all(w > 0 for w in WEIGHTS.values())


@pytest.mark.parametrize("signal", sorted(WEIGHTS))
def test_weights_are_documented(signal):
    docs = (Path(__file__).parents[2] / "docs" / "leads.md").read_text()
    assert f"`{signal}`" in docs
