import datetime as dt
from collections import Counter
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client

from leadrelay.core.clickid import click_id_verify
from leadrelay.core.errors import Invalid
from leadrelay.offers.models import Offer
from leadrelay.offers.services import (
    Targeting,
    landing_variant_set,
    offer_status_set,
    offer_targeting_set,
)
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.models import Click
from leadrelay.tracking.services import tracking_link_create
from tests.factories import CHROME_UA, approve, make_offer
from tests.tracking.test_clicks import GEOIP, IPHONE

US, DE = "203.0.113.5", "203.0.113.200"


@pytest.fixture(autouse=True)
def geoip(settings):
    settings.LEADRELAY_GEOIP_DB = GEOIP


def _go(link, ip=US, agent=CHROME_UA):
    return Client().get(f"/c/{link.code}", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)


def _only_click() -> Click:
    click_buffer.flush()
    return Click.objects.get()


def test_a_click_from_an_allowed_country_and_device_lands(offer, affiliate):
    offer_targeting_set(
        offer=offer, targeting=Targeting(allowed_countries=["US"], allowed_devices=["desktop"])
    )
    response = _go(tracking_link_create(offer=offer, affiliate=affiliate))
    assert urlsplit(response["Location"]).netloc == "lp.example.com"
    click = _only_click()
    assert (click.refusal, click.fallback) == ("", "")


@pytest.mark.parametrize(
    ("targeting", "ip", "agent", "reason"),
    [
        (Targeting(allowed_countries=["US"]), DE, CHROME_UA, "country_not_allowed"),
        (Targeting(allowed_countries=["US"]), "8.8.8.8", CHROME_UA, "country_not_allowed"),
        (Targeting(allowed_devices=["mobile"]), US, CHROME_UA, "device_not_allowed"),
        (Targeting(allowed_devices=["desktop"]), US, IPHONE, "device_not_allowed"),
    ],
)
def test_a_refused_click_goes_to_the_fallback_url(offer, affiliate, targeting, ip, agent, reason):
    targeting = Targeting(
        **{**targeting.__dict__, "fallback_url": "https://other.example/?c={click_id}"}
    )
    offer_targeting_set(offer=offer, targeting=targeting)
    response = _go(tracking_link_create(offer=offer, affiliate=affiliate), ip, agent)
    assert response.status_code == 302
    assert response["Location"].startswith("https://other.example/?c=")
    click = _only_click()
    assert (click.refusal, click.fallback, click.offer) == (reason, "url", offer)


def test_a_refused_click_goes_to_the_fallback_offer_and_counts_there(
    network, advertiser, offer, affiliate
):
    backup = make_offer(advertiser, landing_url="https://backup.example/?cid={click_id}")
    approve(backup, affiliate)
    offer_targeting_set(
        offer=offer, targeting=Targeting(allowed_countries=["US"], fallback_offer_id=backup.pk)
    )
    response = _go(tracking_link_create(offer=offer, affiliate=affiliate), ip=DE)
    assert urlsplit(response["Location"]).netloc == "backup.example"
    click = _only_click()
    assert (click.offer, click.fallback_from, click.refusal, click.fallback) == (
        backup,
        offer,
        "country_not_allowed",
        "offer",
    )
    # The click id names the fallback offer, so the lead is taken for it.
    assert click_id_verify(click.click_id).offer_id == backup.pk


def test_without_a_fallback_a_refused_click_is_recorded_and_not_redirected(offer, affiliate):
    offer_targeting_set(offer=offer, targeting=Targeting(allowed_countries=["IT"]))
    response = _go(tracking_link_create(offer=offer, affiliate=affiliate))
    assert response.status_code == 404
    click = _only_click()
    assert (click.refusal, click.fallback) == ("country_not_allowed", "none")


def test_a_paused_offer_sends_clicks_to_its_fallback(offer, affiliate):
    offer_targeting_set(offer=offer, targeting=Targeting(fallback_url="https://other.example/"))
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    offer_status_set(offer=offer, status="paused")
    assert _go(link)["Location"] == "https://other.example/"
    assert _only_click().refusal == "offer_not_active"


def test_refused_clicks_are_left_out_of_click_counts(network, offer, affiliate):
    from django.utils import timezone

    from leadrelay.reporting.selectors import dashboard_report

    offer_targeting_set(offer=offer, targeting=Targeting(allowed_countries=["US"]))
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    _go(link, ip=US)
    _go(link, ip=DE)
    click_buffer.flush()
    today = timezone.now().date()
    assert dashboard_report(organization=network, start=today, end=today).totals.clicks == 1


def test_the_schedule_is_read_in_the_offers_time_zone(advertiser, affiliate):
    offer = make_offer(advertiser, tz="America/New_York")
    approve(offer, affiliate)
    offer_targeting_set(
        offer=offer,
        targeting=Targeting(
            schedule={"mon": [["09:00", "17:00"]]}, fallback_url="https://closed.example/"
        ),
    )
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    monday_10_in_new_york = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
    monday_08_in_new_york = dt.datetime(2026, 11, 23, 13, 0, tzinfo=dt.UTC)
    sunday_noon_in_new_york = dt.datetime(2026, 11, 22, 17, 0, tzinfo=dt.UTC)
    with time_machine.travel(monday_10_in_new_york, tick=False):
        assert urlsplit(_go(link)["Location"]).netloc == "lp.example.com"
    with time_machine.travel(monday_08_in_new_york, tick=False):
        assert _go(link)["Location"] == "https://closed.example/"
    with time_machine.travel(sunday_noon_in_new_york, tick=False):
        assert _go(link)["Location"] == "https://closed.example/"


@pytest.mark.parametrize(
    ("targeting", "code", "field"),
    [
        (Targeting(allowed_countries=["XX"]), "invalid_country", "allowed_countries"),
        (Targeting(allowed_devices=["fridge"]), "invalid_device", "allowed_devices"),
        (Targeting(schedule={"funday": []}), "invalid_schedule", "schedule"),
        (Targeting(schedule={"mon": [["17:00", "09:00"]]}), "invalid_schedule", "schedule"),
        (Targeting(schedule={"mon": [["9am", "5pm"]]}), "invalid_schedule", "schedule"),
        (Targeting(fallback_url="ftp://x"), "invalid_fallback_url", "fallback_url"),
        (Targeting(fallback_offer_id=999999), "invalid_fallback_offer", "fallback_offer_id"),
    ],
)
def test_bad_targeting_is_refused_and_changes_nothing(offer, targeting, code, field):
    with pytest.raises(Invalid) as caught:
        offer_targeting_set(offer=offer, targeting=targeting)
    assert [(p.code, p.field) for p in caught.value.problems] == [(code, field)]
    offer.refresh_from_db()
    assert (offer.allowed_countries, offer.allowed_devices, offer.schedule) == ([], [], {})


def test_an_offer_cannot_fall_back_to_itself(offer):
    with pytest.raises(Invalid):
        offer_targeting_set(offer=offer, targeting=Targeting(fallback_offer_id=offer.pk))


def test_landing_variants_split_clicks_by_weight_and_are_recorded(settings, offer, affiliate):
    from leadrelay.tracking.services import _landing

    landing_variant_set(
        offer=offer, name="A", url="https://lp.example.com/a?c={click_id}", weight=3
    )
    landing_variant_set(
        offer=offer, name="B", url="https://lp.example.com/b?c={click_id}", weight=1
    )
    landing_variant_set(offer=offer, name="off", url="https://lp.example.com/off", weight=0)
    offer = Offer.objects.prefetch_related("landing_variants").get(pk=offer.pk)
    draws = Counter(_landing(offer)[1].name for _ in range(4000))
    assert set(draws) == {"A", "B"}
    assert 2850 <= draws["A"] <= 3150  # 3000 expected; 5 standard deviations either side

    settings.LEADRELAY_LINK_CACHE_SECONDS = 60
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    paths = Counter(urlsplit(_go(link)["Location"]).path for _ in range(40))
    click_buffer.flush()
    recorded = Counter(Click.objects.values_list("landing_variant__name", flat=True))
    assert recorded == {"A": paths["/a"], "B": paths["/b"]}
    assert sum(recorded.values()) == 40


def test_bad_variants_are_refused(offer):
    with pytest.raises(Invalid):
        landing_variant_set(offer=offer, name="x", url="https://{sub1}.example/")
    with pytest.raises(Invalid):
        landing_variant_set(offer=offer, name="x", url="https://lp.example.com/", weight=-1)
    assert not offer.landing_variants.exists()


def test_api_offer_with_targeting(advertiser):
    from tests.conftest import bearer

    response = Client().post(
        "/api/v1/offers",
        {
            "name": "Geo offer",
            "revenue_minor": 100,
            "payout_minor": 50,
            "landing_url": "https://lp.example.com/",
            "allowed_countries": ["US", "CA"],
            "schedule": {"mon": [["09:00", "17:00"]]},
            "fallback_url": "https://other.example/",
        },
        content_type="application/json",
        **bearer(advertiser),
    )
    assert response.status_code == 201, response.content
    offer = Offer.objects.get(pk=response.json()["id"])
    assert (offer.allowed_countries, offer.schedule["mon"], offer.fallback_url) == (
        ["US", "CA"],
        [["09:00", "17:00"]],
        "https://other.example/",
    )
