import datetime as dt
import hashlib
import hmac
import time
from urllib.parse import urlencode

import pytest
import time_machine
from django.test import Client

from leadrelay.core.clickid import click_id_issue
from leadrelay.offers.models import Offer
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.conversions import postback_key_issue
from leadrelay.tracking.models import Conversion
from leadrelay.tracking.services import tracking_link_create
from tests.factories import CHROME_UA, make_offer


@pytest.fixture
def link(offer, affiliate):
    return tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "spring"})


@pytest.fixture
def key(advertiser):
    return postback_key_issue(advertiser=advertiser)


def _click_id(link, **params) -> str:
    response = Client().get(f"/c/{link.code}", params, HTTP_USER_AGENT=CHROME_UA)
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(response["Location"]).query)["cid"][0]


@pytest.mark.parametrize("name", ["click_id", "clickid", "transaction_id", "subid", "cid"])
def test_a_postback_records_a_conversion_under_any_click_id_name(link, key, affiliate, name):
    click_id = _click_id(link, sub2="kw")
    response = Client().get(
        "/postback",
        {name: click_id, "token": key.token, "event": "sale", "amount": "49.90", "txid": "A1"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "approved"
    conversion = Conversion.objects.get()
    assert (conversion.event, conversion.txid, conversion.amount_minor, conversion.currency) == (
        "sale",
        "A1",
        4990,
        "USD",
    )
    assert (conversion.affiliate, conversion.link, conversion.sub1, conversion.sub2) == (
        affiliate,
        link,
        "spring",
        "kw",
    )
    assert "token" not in conversion.params


def test_a_repeated_postback_records_nothing_new(link, key):
    click_id = _click_id(link)
    params = {"click_id": click_id, "token": key.token, "event": "sale", "txid": "T-9"}
    first = Client().get("/postback", params)
    again = Client().post("/postback", params)
    other_tx = Client().get("/postback", {**params, "txid": "T-10"})
    assert (first.status_code, again.status_code, other_tx.status_code) == (201, 200, 201)
    assert again.json() == {**first.json(), "duplicate": True}
    assert Conversion.objects.count() == 2


def test_a_json_post_with_an_hmac_signature(link, key):
    click_id = _click_id(link)
    body = (
        f'{{"clickid": "{click_id}", "goal": "signup", "amount": 12, "currency": "EUR"}}'
    ).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(key.hmac_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    response = Client().post(
        "/postback",
        body,
        content_type="application/json",
        HTTP_X_LEADRELAY_SIGNATURE=f"sha256={signature.hexdigest()}",
        HTTP_X_LEADRELAY_TIMESTAMP=stamp,
    )
    assert response.status_code == 201, response.content
    conversion = Conversion.objects.get()
    assert (conversion.event, conversion.amount_minor, conversion.currency) == (
        "signup",
        1200,
        "EUR",
    )


def test_bad_signatures_and_tokens_are_refused(link, key):
    click_id = _click_id(link)
    body = f'{{"clickid": "{click_id}"}}'.encode()
    old = str(int(time.time()) - 3600)
    stale = hmac.new(key.hmac_secret.encode(), old.encode() + b"." + body, hashlib.sha256)
    for headers in [
        {
            "HTTP_X_LEADRELAY_SIGNATURE": "sha256=00",
            "HTTP_X_LEADRELAY_TIMESTAMP": str(int(time.time())),
        },
        {
            "HTTP_X_LEADRELAY_SIGNATURE": f"sha256={stale.hexdigest()}",
            "HTTP_X_LEADRELAY_TIMESTAMP": old,
        },
        {},
    ]:
        response = Client().post("/postback", body, content_type="application/json", **headers)
        assert response.status_code == 401
    assert Client().get("/postback", {"click_id": click_id, "token": "pb_wrong"}).status_code == 401
    assert Conversion.objects.count() == 0


def test_an_advertiser_cannot_convert_another_advertisers_clicks(link, other_advertiser):
    other_key = postback_key_issue(advertiser=other_advertiser)
    response = Client().get("/postback", {"click_id": _click_id(link), "token": other_key.token})
    assert response.status_code == 404
    assert Conversion.objects.count() == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"click_id": "forged"}, "click_id"),
        ({}, "click_id"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"status": "maybe"}, "status"),
        ({"event": "a b"}, "event"),
    ],
)
def test_bad_postbacks_answer_422_and_record_nothing(link, key, params, field):
    base = {"click_id": _click_id(link), "token": key.token}
    response = Client().get("/postback", {**base, **params} if params else {"token": key.token})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert Conversion.objects.count() == 0


def test_a_conversion_after_the_window_is_recorded_rejected(link, key, offer):
    Offer.objects.filter(pk=offer.pk).update(attribution_window_days=7)
    clicked = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with time_machine.travel(clicked, tick=False):
        click_id = _click_id(link)
    with time_machine.travel(clicked + dt.timedelta(days=6, hours=23), tick=False):
        inside = Client().get("/postback", {"click_id": click_id, "token": key.token, "txid": "1"})
    with time_machine.travel(clicked + dt.timedelta(days=7, seconds=1), tick=False):
        late = Client().get("/postback", {"click_id": click_id, "token": key.token, "txid": "2"})
    assert inside.json()["status"] == "approved"
    assert (late.status_code, late.json()["status"], late.json()["reason"]) == (
        201,
        "rejected",
        "outside_attribution_window",
    )


def test_first_click_credit_goes_to_the_visitors_first_click(
    advertiser, affiliate, other_affiliate, key
):
    from tests.factories import approve

    offer = make_offer(advertiser)
    Offer.objects.filter(pk=offer.pk).update(attribution_model="first_click")
    approve(offer, affiliate)
    approve(offer, other_affiliate)
    first_link = tracking_link_create(offer=offer, affiliate=affiliate)
    last_link = tracking_link_create(offer=offer, affiliate=other_affiliate)
    browser = Client(HTTP_USER_AGENT=CHROME_UA)
    browser.get(f"/c/{first_link.code}")
    response = browser.get(f"/c/{last_link.code}")
    from urllib.parse import parse_qs, urlsplit

    last_click_id = parse_qs(urlsplit(response["Location"]).query)["cid"][0]
    click_buffer.flush()
    Client().get("/postback", {"click_id": last_click_id, "token": key.token})
    conversion = Conversion.objects.get()
    assert (conversion.affiliate, conversion.link) == (affiliate, first_link)
    assert conversion.click_id == last_click_id


def test_the_pixel_records_pending_conversions_and_always_answers_a_gif(link):
    click_id = _click_id(link)
    ok = Client().get("/p/conversion.gif?" + urlencode({"click_id": click_id, "event": "lead"}))
    bad = Client().get("/p/conversion.gif?click_id=forged")
    for response in (ok, bad):
        assert (response.status_code, response["Content-Type"]) == (200, "image/gif")
        assert response.content.startswith(b"GIF89a")
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.source) == ("pending", "pixel")


def test_a_lost_click_row_still_converts_with_its_sub_ids(link, key, affiliate, offer):
    identity = click_id_issue(
        link_id=link.pk, offer_id=offer.pk, affiliate_id=affiliate.pk, subs={"sub3": "x"}
    )
    response = Client().get("/postback", {"cid": identity.click_id, "token": key.token})
    assert response.status_code == 201
    conversion = Conversion.objects.get()
    assert (conversion.sub1, conversion.sub3, conversion.affiliate) == ("spring", "x", affiliate)


def test_an_advertiser_gets_its_postback_token_once_in_the_portal(advertiser, affiliate, link):
    from tests.conftest import logged_in

    client = logged_in(advertiser)
    page = client.post("/portal/postback-key/")
    token = page.context["issued"].token
    assert token in page.content.decode()
    assert token not in client.get("/portal/postback-key/").content.decode()
    assert Client().get("/postback", {"cid": _click_id(link), "token": token}).status_code == 201
    assert "conversion" in client.get("/portal/postback-key/").content.decode()
    assert logged_in(affiliate).get("/portal/postback-key/").status_code == 403
