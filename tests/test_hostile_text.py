"""Hostile text (NUL, other controls, lone surrogates, right-to-left overrides, 100 KB)
through every way text comes in: clicks, the hosted form, the lead API, postbacks and
the name fields. On both databases the answer is the one the text rule predicts (core/
text.py) and never 5xx, and what is stored holds no character the rule refuses."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.accounts.models import ApiKey
from leadrelay.core.text import text_clean, text_refused_char
from leadrelay.distribution.models import Buyer
from leadrelay.leads.models import Lead
from leadrelay.offers.models import Offer
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.conversions import postback_key_issue
from leadrelay.tracking.models import Click, Conversion, TrackingLink
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer, logged_in
from tests.factories import CHROME_UA

NASTY = ["\x00", "\ud800", "\udfff", "\u202e", "\u200f", "\x1b", "\x7f", "\x85", "\ufeff", "\r"]
hostile = st.one_of(
    st.text(alphabet=st.one_of(st.characters(), st.sampled_from(NASTY)), max_size=40),
    st.sampled_from(NASTY).map(lambda c: f"A{c}B"),
    st.just("\u202eevil.exe"),
    st.just("x" * 100_000),
    st.just("\x00" * 1000),
)
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _clean(value: str) -> bool:
    return text_refused_char(value) is None


def _q(value: str) -> str:
    # What a browser sends: UTF-8, a lone surrogate as its 3 bytes (%ED%A0%80).
    return quote(value, safe="", errors="surrogatepass")


def _as_sent(value: str) -> str:
    """What Django reads from a query string or form field: a lone surrogate's bytes are
    not UTF-8 and decode to U+FFFD."""
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _form(client: Client, url: str, data: dict[str, str], **extra: Any) -> Any:
    body = "&".join(f"{_q(k)}={_q(v)}" for k, v in data.items())
    return client.post(url, body, content_type="application/x-www-form-urlencoded", **extra)


def _json(client: Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(url, body, content_type="application/json", **headers)


@given(value=hostile)
@EXAMPLES
def test_clicks_keep_hostile_tracking_data_clean(offer, affiliate, value):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    response = Client().get(
        f"/c/{link.code}?sub1={_q(value)}&{_q('k' + value[:30])}={_q(value)}",
        HTTP_USER_AGENT=value,
        HTTP_REFERER=value,
    )
    assert response.status_code == 302
    assert click_buffer.flush() == 1
    click = Click.objects.order_by("-pk").first()
    assert click is not None
    kept = [click.sub1, click.user_agent, click.referer, *click.params, *click.params.values()]
    assert all(map(_clean, kept)), kept
    assert click.user_agent == text_clean(value)[:512]


@given(value=hostile)
@EXAMPLES
def test_the_hosted_form_refuses_what_the_rule_refuses(offer, value):
    before = Lead.objects.count()
    form = {"first_name": value, "email": "ana@example.com", "phone": "(415) 555-2671"}
    response = _form(Client(), f"/f/{offer.pk}/", form, HTTP_ACCEPT="text/html")
    if not _clean(_as_sent(value)):
        assert response.status_code == 422
        assert b"first_name" in response.content
    else:
        assert response.status_code in {302, 422}  # 422: too long or blank
    stored = Lead.objects.count() - before
    assert stored == (1 if response.status_code == 302 else 0)


@given(value=hostile, agent=hostile)
@EXAMPLES
def test_the_lead_api_refuses_typed_text_and_cleans_the_user_agent(
    offer, affiliate_headers, value, agent
):
    before = Lead.objects.count()
    response = _json(
        Client(),
        "/api/v1/leads",
        {
            "offer_id": offer.pk,
            "fields": {"first_name": value, "email": "ana@example.com"},
            "visitor_user_agent": agent,
        },
        affiliate_headers,
    )
    if not _clean(value):
        assert response.status_code == 422
        assert "fields.first_name" in {e["field"] for e in response.json()["errors"]}
    assert response.status_code in {201, 422}, response.content
    if response.status_code == 201:
        lead = Lead.objects.get(pk=response.json()["id"])
        assert lead.fields["first_name"] and _clean(lead.fields["first_name"])
        assert lead.user_agent == text_clean(agent)[:512]
    else:
        assert Lead.objects.count() == before


@pytest.fixture
def postback_query(offer, affiliate, advertiser) -> str:
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    click = Client().get(f"/c/{link.code}", HTTP_USER_AGENT=CHROME_UA)
    click_id = parse_qs(urlsplit(click["Location"]).query)["cid"][0]
    return f"click_id={click_id}&token={postback_key_issue(advertiser=advertiser).token}"


@given(value=hostile)
@EXAMPLES
def test_postbacks_refuse_hostile_text(postback_query, value):
    before = Conversion.objects.count()
    response = Client().get(f"/postback?{postback_query}&txid={_q(value)}&goal={_q(value)}")
    assert response.status_code < 500
    if not _clean(_as_sent(value)):
        assert response.status_code == 422
        assert Conversion.objects.count() == before
    for conversion in Conversion.objects.all():
        assert _clean(conversion.txid) and _clean(conversion.event)
        assert all(map(_clean, [*conversion.params, *conversion.params.values()]))


@given(value=hostile)
@EXAMPLES
def test_name_fields_refuse_what_the_rule_refuses(network, advertiser, affiliate, offer, value):
    counts = (Offer.objects.count(), Buyer.objects.count(), TrackingLink.objects.count())
    client = Client()
    made = _json(
        client,
        "/api/v1/offers",
        {
            "name": value,
            "revenue_minor": 100,
            "payout_minor": 50,
            "landing_url": "https://lp.example.com/",
        },
        bearer(network),
    )
    buyer = _json(
        client,
        "/api/v1/buyers",
        {"name": value, "price_minor": 1000, "url": "https://buyer.example.com/"},
        bearer(advertiser),
    )
    link = _json(client, f"/api/v1/offers/{offer.pk}/links", {"sub1": value}, bearer(affiliate))
    key = _form(logged_in(affiliate), "/portal/api-keys/", {"name": value}, HTTP_ACCEPT="text/html")
    answers = [made.status_code, buyer.status_code, link.status_code, key.status_code]
    assert max(answers) < 500, answers
    if not _clean(value):
        assert (made.status_code, buyer.status_code) == (422, 422)
    if not _clean(_as_sent(value)):
        assert key.status_code == 422
        assert (Offer.objects.count(), Buyer.objects.count()) == counts[:2]
    # Sub ids are tracking data: kept without the characters, never refused for them.
    if link.status_code == 201:
        assert TrackingLink.objects.order_by("-pk").first().sub1 == text_clean(value)
    else:
        assert len(text_clean(value)) > 100 and TrackingLink.objects.count() == counts[2]
    for name in [
        *Offer.objects.values_list("name", flat=True),
        *Buyer.objects.values_list("name", flat=True),
        *ApiKey.objects.values_list("name", flat=True),
    ]:
        assert _clean(name)


@pytest.mark.parametrize("value", ["A\x00B", "\ud83d", "x" * 100_000])
def test_a_hostile_sub_id_on_the_click_path_never_stops_recording(offer, affiliate, value):
    """The poison click of issue 13: one request used to stop every later click's row."""
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    Client().get(f"/c/{link.code}?sub1={_q(value)}", HTTP_USER_AGENT=CHROME_UA)
    Client().get(f"/c/{link.code}?sub1=fine", HTTP_USER_AGENT=CHROME_UA)
    assert click_buffer.flush() == 2
    subs = list(Click.objects.order_by("pk").values_list("sub1", flat=True))
    assert subs[1] == "fine"
    assert subs[0] and _clean(subs[0])
