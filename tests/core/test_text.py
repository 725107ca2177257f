"""The text rule at the edge (core/text.py): refused where typed, cleaned where tracked, the
same on SQLite and PostgreSQL (which can't store NUL or a lone surrogate at all)."""

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from leadrelay.core.text import data_problems, text_clean, text_refused_char
from leadrelay.leads.models import Lead
from leadrelay.offers.models import Offer
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.conversions import postback_key_issue
from leadrelay.tracking.models import Click, Conversion, TrackingLink
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer, logged_in
from tests.factories import CHROME_UA

GOOD = {"first_name": "Ana", "email": "ana@example.com", "phone": "(415) 555-2671"}


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("plain", None),
        ("tab\tline\ncr\r", None),
        ("A\x00B", "\x00"),
        ("bell\x07", "\x07"),
        ("del\x7f", "\x7f"),
        ("c1\x85", "\x85"),
        ("lone \ud800 surrogate", "\ud800"),
        ("right-to-left \u202e override", None),
        ("emoji \U0001f600", None),
    ],
)
def test_the_rule(value, refused):
    assert text_refused_char(value) == refused
    assert text_refused_char(text_clean(value)) is None


def test_a_document_is_walked_to_every_path_keys_and_numbers_included():
    problems = data_problems(
        {
            "name": "ok",
            "fields": {"first_name": "A\x00", "b\x01ad": "x", "deep": [{"x": "\ud800"}]},
            "score": float("nan"),
        }
    )
    assert [(p.field, p.code) for p in problems] == [
        ("fields.b\\x01ad", "invalid_characters"),
        ("fields.deep.0.x", "invalid_characters"),
        ("fields.first_name", "invalid_characters"),
        ("score", "invalid_number"),
    ]


def _post_lead(headers, offer, fields, **extra):
    return Client().post(
        "/api/v1/leads",
        {"offer_id": offer.pk, "fields": fields, **extra},
        content_type="application/json",
        **headers,
    )


@pytest.mark.parametrize("bad", ["A\x00B", "A\ud800B", "A\x1bB"])
def test_a_lead_field_with_a_refused_character_is_422_with_its_path(offer, affiliate_headers, bad):
    response = _post_lead(affiliate_headers, offer, {**GOOD, "first_name": bad})
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_failed"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("fields.first_name", "invalid_characters")
    ]
    assert Lead.objects.count() == 0


def test_a_non_finite_number_is_refused_not_stored(offer, affiliate_headers):
    body = (
        b'{"offer_id": %d, "fields": {"first_name": "Ana", "email": "a@example.com", ' % (offer.pk)
        + b'"age": NaN}}'
    )
    response = Client().post(
        "/api/v1/leads", body, content_type="application/json", **affiliate_headers
    )
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("fields.age", "invalid_number")
    ]
    assert Lead.objects.count() == 0


def test_a_relayed_user_agent_is_tracking_data_kept_without_the_characters(
    offer, affiliate_headers
):
    response = _post_lead(
        affiliate_headers, offer, GOOD, visitor_user_agent="Mozilla\x00/5.0 \ud800x"
    )
    assert response.status_code == 201, response.content
    assert Lead.objects.get().user_agent == "Mozilla/5.0 x"


def test_an_idempotency_key_with_a_control_character_is_refused(offer, affiliate_headers):
    response = _post_lead({**affiliate_headers, "HTTP_IDEMPOTENCY_KEY": "k\x00"}, offer, GOOD)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert Lead.objects.count() == 0


def test_an_offer_name_with_nul_is_refused(network):
    response = Client().post(
        "/api/v1/offers",
        {
            "name": "Auto\x00",
            "revenue_minor": 100,
            "payout_minor": 50,
            "landing_url": "https://lp.example.com/",
        },
        content_type="application/json",
        **bearer(network),
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["name"]
    assert Offer.objects.count() == 0


def test_a_query_string_on_the_api_is_checked(network):
    response = Client().get("/api/v1/reports?group_by=day%00", **bearer(network))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["group_by"]


def test_link_sub_ids_are_tracking_data_cleaned(offer, affiliate):
    response = Client().post(
        f"/api/v1/offers/{offer.pk}/links",
        {"sub1": "fb\x00ads", "sub2": "\ud800kw"},
        content_type="application/json",
        **bearer(affiliate),
    )
    assert response.status_code == 201, response.content
    link = TrackingLink.objects.get()
    assert (link.sub1, link.sub2) == ("fbads", "kw")


def test_the_hosted_form_refuses_a_control_character_naming_the_field(offer):
    response = Client().post(
        f"/f/{offer.pk}/", {**GOOD, "first_name": "A\x00B"}, HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 422
    assert response["Content-Type"].startswith("text/html")
    assert b"first_name" in response.content
    assert Lead.objects.count() == 0


def test_a_portal_form_refuses_it_too(offer, affiliate):
    client = logged_in(affiliate)
    response = client.post(
        f"/portal/offers/{offer.pk}/links", {"sub1": "ok", "name\x00": "x"}, HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 422
    assert TrackingLink.objects.count() == 0


def test_a_click_keeps_its_sub_ids_and_headers_without_the_characters(offer, affiliate):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    response = Client().get(
        f"/c/{link.code}?sub1=a%00b&gclid=x%01y&sub2=%ED%A0%80",
        HTTP_USER_AGENT=CHROME_UA + "\x00",
        HTTP_REFERER="https://ref.example.com/\x00",
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["s1"] == ["ab"]
    assert click_buffer.flush() == 1
    click = Click.objects.get()
    assert (click.sub1, click.params) == ("ab", {"gclid": "xy"})
    assert (click.user_agent, click.referer) == (CHROME_UA, "https://ref.example.com/")


def test_a_postback_with_a_control_character_is_refused_and_the_pixel_cleans(
    offer, affiliate, advertiser
):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    click = Client().get(f"/c/{link.code}", HTTP_USER_AGENT=CHROME_UA)
    click_id = parse_qs(urlsplit(click["Location"]).query)["cid"][0]
    key = postback_key_issue(advertiser=advertiser)
    refused = Client().get(
        "/postback?" + urlencode({"click_id": click_id, "token": key.token, "txid": "T\x001"})
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["txid"]
    assert Conversion.objects.count() == 0
    pixel = Client().get(
        "/p/conversion.gif?" + urlencode({"click_id": click_id, "event": "le\x00ad"})
    )
    assert pixel.status_code == 200
    assert Conversion.objects.get().event == "lead"
