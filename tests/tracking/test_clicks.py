from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from leadrelay.core.clickid import click_id_verify
from leadrelay.core.errors import PermissionDenied
from leadrelay.offers.services import offer_status_set
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.models import Click
from leadrelay.tracking.services import tracking_link_create
from leadrelay.tracking.visitor import VISITOR_COOKIE
from tests.conftest import bearer
from tests.factories import CHROME_UA, make_offer

GEOIP = str(Path(__file__).parent.parent / "fixtures" / "geoip-test.mmdb")
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def geoip(settings):
    settings.LEADRELAY_GEOIP_DB = GEOIP


def _query(response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response["Location"]).query)


def test_a_click_redirects_with_macros_and_is_recorded_after_the_answer(
    advertiser, affiliate, geoip
) -> None:
    offer = make_offer(
        advertiser,
        landing_url="https://lp.example.com/q?cid={click_id}&s1={sub1}&c={country}&d={device}"
        "&g={gclid}&o={offer_id}&a={affiliate_id}&none={unset}",
    )
    link = tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "fb ads&x=1"})
    response = Client().get(
        f"/c/{link.code}?gclid=abc%20123&sub2=kw",
        HTTP_USER_AGENT=IPHONE,
        REMOTE_ADDR="203.0.113.200",
    )
    assert response.status_code == 302
    assert urlsplit(response["Location"]).netloc == "lp.example.com"
    query = _query(response)
    assert query["s1"] == ["fb ads&x=1"]  # encoded, so it can't add a parameter
    assert "x" not in query
    assert (query["c"], query["d"], query["g"]) == (["DE"], ["mobile"], ["abc 123"])
    assert (query["o"], query["a"]) == ([str(offer.pk)], [str(affiliate.pk)])
    assert "none" not in query  # an unknown macro with no value is empty
    # The answer came before the row: it waits in the buffer until the flush.
    assert Click.objects.count() == 0
    assert click_buffer.flush() == 1
    click = Click.objects.get()
    assert query["cid"] == [click.click_id]
    assert (click.country, click.device, click.os, click.browser) == (
        "DE",
        "mobile",
        "iOS",
        "Mobile Safari",
    )
    assert (click.sub1, click.sub2, click.params) == ("fb ads&x=1", "kw", {"gclid": "abc 123"})
    assert (click.ip, click.is_bot, click.is_unique) == ("203.0.113.200", False, True)
    identity = click_id_verify(click.click_id)
    assert (identity.link_id, identity.offer_id, identity.affiliate_id) == (
        link.pk,
        offer.pk,
        affiliate.pk,
    )
    assert identity.subs == {"sub2": "kw"}  # per-click sub ids ride in the id
    assert response.cookies[VISITOR_COOKIE].value == click.visitor_id


def test_repeat_clicks_are_recognised_by_cookie_or_by_ip_and_agent(offer, affiliate) -> None:
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    browser = Client(HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.1")
    browser.get(f"/c/{link.code}")
    browser.get(f"/c/{link.code}", REMOTE_ADDR="203.0.113.99")  # new IP, same cookie
    Client().get(f"/c/{link.code}", HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.1")
    Client().get(f"/c/{link.code}", HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.2")
    click_buffer.flush()
    uniques = list(Click.objects.order_by("created_at").values_list("is_unique", flat=True))
    assert uniques == [True, False, False, True]


def test_bot_clicks_are_flagged_and_left_out_of_counts(network, offer, affiliate) -> None:
    from django.utils import timezone

    from leadrelay.reporting.selectors import dashboard_report

    link = tracking_link_create(offer=offer, affiliate=affiliate)
    Client().get(f"/c/{link.code}", HTTP_USER_AGENT=GOOGLEBOT)
    Client().get(f"/c/{link.code}", HTTP_USER_AGENT=CHROME_UA)
    click_buffer.flush()
    bot = Click.objects.get(is_bot=True)
    assert (bot.device, bot.is_unique) == ("bot", False)
    today = timezone.now().date()
    assert dashboard_report(organization=network, start=today, end=today).totals.clicks == 1


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "seen"),
    [
        ("203.0.113.9", "198.51.100.1", [], "203.0.113.9"),  # untrusted: header ignored
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "garbage", ["10.0.0.0/8"], "10.0.0.2"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    settings, offer, affiliate, remote, forwarded, trusted, seen
) -> None:
    from leadrelay.core.addresses import _trusted_networks

    settings.LEADRELAY_TRUSTED_PROXIES = trusted
    _trusted_networks.cache_clear()
    try:
        link = tracking_link_create(offer=offer, affiliate=affiliate)
        Client().get(f"/c/{link.code}", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
        click_buffer.flush()
        assert Click.objects.get().ip == seen
    finally:
        _trusted_networks.cache_clear()


def test_deep_links_go_only_to_allowed_domains(advertiser, affiliate) -> None:
    offer = make_offer(advertiser, deeplink_domains=["shop.example.com"])
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    ok = Client().get(f"/c/{link.code}", {"url": "https://m.shop.example.com/p/1?ref={click_id}"})
    assert ok.status_code == 302
    assert ok["Location"].startswith("https://m.shop.example.com/p/1?ref=")
    for bad in [
        "https://evil.example/",
        "https://shop.example.com.evil.example/",
        "https://evilshop.example.com/",
        "javascript:alert(1)",
        "//evil.example/",
        "https://user:pw@shop.example.com/",
        "https://shop.example.com:8443/",
        "https://{sub1}.shop.example.com/",
    ]:
        response = Client().get(f"/c/{link.code}", {"url": bad})
        assert response.status_code == 400, bad
    click_buffer.flush()
    assert Click.objects.count() == 1


def test_without_an_allow_list_deep_links_are_refused(offer, affiliate) -> None:
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    response = Client().get(f"/c/{link.code}", {"url": "https://lp.example.com/other"})
    assert response.status_code == 400


def test_unknown_and_paused_links_answer_404(offer, affiliate) -> None:
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    assert Client().get("/c/nosuchcode").status_code == 404
    offer_status_set(offer=offer, status="paused")
    assert Client().get(f"/c/{link.code}").status_code == 404
    click_buffer.flush()
    assert Click.objects.get().refusal == "offer_not_active"  # recorded, not counted


def test_a_link_needs_access_to_the_offer(advertiser, affiliate) -> None:
    offer = make_offer(advertiser, visibility="approval")
    with pytest.raises(PermissionDenied) as caught:
        tracking_link_create(offer=offer, affiliate=affiliate)
    assert caught.value.code == "offer_access_required"


def test_a_failed_flush_keeps_the_clicks_for_the_next(offer, affiliate, monkeypatch) -> None:
    import leadrelay.tracking.buffer as buffer

    link = tracking_link_create(offer=offer, affiliate=affiliate)
    Client().get(f"/c/{link.code}")

    def broken(rows):
        raise RuntimeError("database is down")

    with monkeypatch.context() as patch:
        patch.setattr(buffer, "clicks_write", broken)
        assert click_buffer.flush() == 0
    assert click_buffer.pending() == 1
    assert click_buffer.flush() == 1
    assert Click.objects.count() == 1


def test_api_an_affiliate_gets_a_link(advertiser, affiliate) -> None:
    offer = make_offer(advertiser, visibility="public")
    response = Client().post(
        f"/api/v1/offers/{offer.pk}/links",
        {"sub1": "newsletter"},
        content_type="application/json",
        **bearer(affiliate),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"].endswith(f"/c/{body['code']}")
    assert body["sub1"] == "newsletter"


def test_api_sub_ids_are_bounded(offer, affiliate) -> None:
    response = Client().post(
        f"/api/v1/offers/{offer.pk}/links",
        {"sub1": "x" * 101},
        content_type="application/json",
        **bearer(affiliate),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "sub1"


def test_redirects_keep_a_link_for_a_few_seconds(settings, offer, affiliate) -> None:
    import time

    settings.LEADRELAY_LINK_CACHE_SECONDS = 0.3
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    assert Client().get(f"/c/{link.code}").status_code == 302
    offer_status_set(offer=offer, status="paused")
    assert Client().get(f"/c/{link.code}").status_code == 302  # still cached
    time.sleep(0.35)
    assert Client().get(f"/c/{link.code}").status_code == 404
