"""Regression tests for problems found in review of the tracking work."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from leadrelay.core.errors import Invalid
from leadrelay.offers.models import Offer
from leadrelay.offers.services import Targeting, offer_targeting_set
from leadrelay.tracking.buffer import CHUNK, click_buffer
from leadrelay.tracking.conversions import postback_key_issue
from leadrelay.tracking.models import Click, Conversion
from leadrelay.tracking.services import _link_cache, tracking_link_create
from tests.factories import CHROME_UA, make_offer


def test_a_client_cannot_push_its_own_ip_past_our_proxies(settings, offer, affiliate):
    from leadrelay.core.addresses import _trusted_networks

    settings.LEADRELAY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    _trusted_networks.cache_clear()
    try:
        link = tracking_link_create(offer=offer, affiliate=affiliate)
        forged = ", ".join(f"6.6.6.{i}" for i in range(25))
        Client().get(
            f"/c/{link.code}",
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"{forged}, 198.51.100.7, 10.0.0.3",
        )
        click_buffer.flush()
        assert Click.objects.get().ip == "198.51.100.7"
    finally:
        _trusted_networks.cache_clear()


def test_a_large_backlog_is_written_in_chunks(offer, affiliate):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    from leadrelay.tracking.services import click_record
    from tests.factories import visitor

    for _ in range(CHUNK * 2 + 7):
        click_record(code=link.code, visitor=visitor())
    assert click_buffer.flush() == CHUNK * 2 + 7
    assert Click.objects.count() == CHUNK * 2 + 7
    assert Click.objects.filter(is_unique=True).count() == 1  # one IP and agent, one visitor


def test_a_server_postback_confirms_what_a_pixel_reported(link_and_key):
    link, key = link_and_key
    click_id = _click_id(link)
    Client().get("/p/conversion.gif", {"click_id": click_id, "event": "sale", "txid": "9"})
    assert Conversion.objects.get().status == "pending"
    params = {"click_id": click_id, "event": "sale", "txid": "9", "amount": "10"}
    response = Client().get("/postback", {**params, "token": key.token})
    assert response.status_code == 200
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.source, conversion.amount_minor) == (
        "approved",
        "server",
        1000,
    )


def test_the_window_runs_from_the_reported_click_under_first_click(advertiser, affiliate):
    from tests.factories import approve

    offer = make_offer(advertiser)
    Offer.objects.filter(pk=offer.pk).update(
        attribution_model="first_click", attribution_window_days=10
    )
    approve(offer, affiliate)
    key = postback_key_issue(advertiser=advertiser)
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    browser = Client(HTTP_USER_AGENT=CHROME_UA)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        browser.get(f"/c/{link.code}")
    with time_machine.travel(start + dt.timedelta(days=8), tick=False):
        last = parse_qs(urlsplit(browser.get(f"/c/{link.code}")["Location"]).query)["cid"][0]
        click_buffer.flush()
    with time_machine.travel(start + dt.timedelta(days=12), tick=False):
        body = Client().get("/postback", {"click_id": last, "token": key.token}).json()
    # 12 days after the first click but 4 after the reported one: inside the window.
    assert body["status"] == "approved"


def test_the_link_cache_holds_only_real_links(settings, offer, affiliate):
    settings.LEADRELAY_LINK_CACHE_SECONDS = 60
    _link_cache.clear()
    for i in range(50):
        assert Client().get(f"/c/nosuch{i:04d}").status_code == 404
    assert Client().get("/c/" + "x" * 500).status_code == 404
    assert len(_link_cache) == 0
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    Client().get(f"/c/{link.code}")
    assert list(_link_cache) == [link.code]
    _link_cache.clear()


def test_an_advertiser_may_fall_back_only_to_its_own_offers(offer, other_advertiser):
    theirs = make_offer(other_advertiser)
    with pytest.raises(Invalid):
        offer_targeting_set(
            offer=offer, targeting=Targeting(fallback_offer_id=theirs.pk), by_advertiser=True
        )
    offer_targeting_set(offer=offer, targeting=Targeting(fallback_offer_id=theirs.pk))
    offer.refresh_from_db()
    assert offer.fallback_offer == theirs  # the network may


def test_a_schedule_can_run_until_midnight(advertiser, affiliate):
    from tests.factories import approve

    offer = make_offer(advertiser)
    approve(offer, affiliate)
    offer_targeting_set(
        offer=offer,
        targeting=Targeting(
            schedule={"mon": [["22:00", "24:00"]]}, fallback_url="https://closed.example/"
        ),
    )
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    with time_machine.travel(dt.datetime(2026, 11, 23, 23, 59, 30, tzinfo=dt.UTC), tick=False):
        assert Client().get(f"/c/{link.code}")["Location"].startswith("https://lp.example.com")


def test_long_non_ascii_sub_ids_match_between_click_and_lead(offer, affiliate, affiliate_headers):
    from leadrelay.leads.models import Lead

    link = tracking_link_create(offer=offer, affiliate=affiliate)
    cid = _click_id(link, sub2="é" * 90)  # 180 bytes
    click_buffer.flush()
    Client().post(
        "/api/v1/leads",
        {
            "offer_id": offer.pk,
            "click_id": cid,
            "fields": {"first_name": "A", "email": "a@example.com"},
        },
        content_type="application/json",
        **affiliate_headers,
    )
    assert Lead.objects.get().sub2 == Click.objects.get().sub2 == "é" * 50


@pytest.mark.parametrize(
    "url",
    ["https://evil.example\\.shop.example.com/", "https://evil%2Eexample.shop.example.com/"],
)
def test_deep_links_need_a_plain_host_name(advertiser, affiliate, url):
    offer = make_offer(advertiser, deeplink_domains=["Shop.Example.com"])
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    assert Client().get(f"/c/{link.code}", {"url": url}).status_code == 400
    assert Client().get(f"/c/{link.code}", {"url": "https://shop.example.com/x"}).status_code == 302


def test_the_admin_refuses_a_schedule_that_would_break_redirects(network, offer):
    from tests.conftest import logged_in

    client = logged_in(network)
    page = client.get(f"/admin/offers/offer/{offer.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list)}
    data.update({"schedule": '{"mon": [["9am", "5pm"]]}', "timezone": "Mars/Base"})
    response = client.post(f"/admin/offers/offer/{offer.pk}/change/", data)
    assert response.status_code == 200  # shown again with errors, not saved
    errors = response.context["adminform"].form.errors
    assert "schedule" in errors and "timezone" in errors
    offer.refresh_from_db()
    assert offer.schedule == {}


@pytest.fixture
def link_and_key(advertiser, offer, affiliate):
    return tracking_link_create(offer=offer, affiliate=affiliate), postback_key_issue(
        advertiser=advertiser
    )


def _click_id(link, **params) -> str:
    response = Client().get(f"/c/{link.code}", params, HTTP_USER_AGENT=CHROME_UA)
    return parse_qs(urlsplit(response["Location"]).query)["cid"][0]
