from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from leadrelay.core.clickid import click_id_verify
from leadrelay.core.errors import PermissionDenied
from leadrelay.offers.services import offer_status_set
from leadrelay.tracking.models import Click
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer
from tests.factories import make_offer


def test_a_click_redirects_with_macros_and_is_recorded(offer, affiliate) -> None:
    link = tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "fb ads&x=1"})
    response = Client().get(
        f"/c/{link.code}", HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="203.0.113.9"
    )
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc) == ("https", "lp.example.com")
    query = parse_qs(location.query)
    assert query["s1"] == ["fb ads&x=1"]  # encoded, so it can't add a parameter
    assert "x" not in query
    click = Click.objects.get()
    assert query["cid"] == [click.click_id]
    identity = click_id_verify(click.click_id)
    assert (identity.link_id, identity.offer_id, identity.affiliate_id) == (
        link.pk,
        offer.pk,
        affiliate.pk,
    )
    assert (click.ip, click.user_agent, click.sub1) == ("203.0.113.9", "Mozilla/5.0", "fb ads&x=1")


def test_unknown_and_paused_links_answer_404(offer, affiliate) -> None:
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    assert Client().get("/c/nosuchcode").status_code == 404
    offer_status_set(offer=offer, status="paused")
    assert Client().get(f"/c/{link.code}").status_code == 404
    assert Click.objects.count() == 0


def test_a_link_needs_access_to_the_offer(advertiser, affiliate) -> None:
    offer = make_offer(advertiser, visibility="approval")
    with pytest.raises(PermissionDenied) as caught:
        tracking_link_create(offer=offer, affiliate=affiliate)
    assert caught.value.code == "offer_access_required"


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
