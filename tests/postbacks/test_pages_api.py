import pytest
from django.test import Client

from leadrelay.accounts.models import Role
from leadrelay.postbacks.models import AffiliatePostback, PostbackDelivery, PostbackEvent
from leadrelay.postbacks.services import affiliate_postback_create, affiliate_postbacks_enqueue
from tests.conftest import bearer, logged_in
from tests.factories import approve, lead_row, member

APPROVED = PostbackEvent.LEAD_APPROVED


@pytest.fixture
def two_logs(offer, affiliate, other_affiliate):
    """Each affiliate has a postback and one delivery in its log."""
    approve(offer, other_affiliate)
    out = {}
    for org, host in ((affiliate, "mine.example.com"), (other_affiliate, "theirs.example.com")):
        postback = affiliate_postback_create(
            affiliate=org, event=APPROVED, url_template=f"https://{host}/pb?l={{lead_id}}"
        )
        lead = lead_row(offer, org, status="approved")
        [delivery_id] = affiliate_postbacks_enqueue(lead=lead, event=APPROVED)
        out[org.pk] = (postback, PostbackDelivery.objects.get(pk=delivery_id))
    return out


# Portal


def test_the_page_lists_only_ones_own_postbacks_and_deliveries(affiliate, two_logs):
    response = logged_in(affiliate).get("/portal/postbacks/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "https://mine.example.com/pb?l={lead_id}" in page
    assert "theirs.example.com" not in page
    mine = two_logs[affiliate.pk][1]
    assert mine.url in page
    assert 'href="/portal/postbacks/"' in page  # the nav link


@pytest.mark.parametrize("who", ["network", "advertiser"])
def test_the_page_is_for_affiliates_only(request, offer, who):
    assert logged_in(request.getfixturevalue(who)).get("/portal/postbacks/").status_code == 403


def test_an_affiliate_adds_a_postback_for_an_offer_it_runs(offer, affiliate):
    response = logged_in(affiliate).post(
        "/portal/postbacks/",
        {
            "event": "lead_rejected",
            "offer": str(offer.pk),
            "url_template": "https://t.example.com/pb?c={click_id}",
        },
    )
    assert response.status_code == 302
    postback = AffiliatePostback.objects.get()
    assert (postback.affiliate, postback.event, postback.offer) == (
        affiliate,
        "lead_rejected",
        offer,
    )
    assert postback.url_template == "https://t.example.com/pb?c={click_id}"


def test_a_bad_url_in_the_portal_shows_the_problem_and_stores_nothing(affiliate):
    response = logged_in(affiliate).post(
        "/portal/postbacks/",
        {"event": "lead_approved", "offer": "", "url_template": "https://t.example.com/?x={foo}"},
    )
    assert response.status_code == 422
    assert "Unknown macro {foo}" in response.content.decode()
    assert AffiliatePostback.objects.count() == 0


def test_another_affiliates_postback_is_404_in_the_portal(affiliate, other_affiliate, two_logs):
    theirs = two_logs[other_affiliate.pk][0]
    response = logged_in(affiliate).post(f"/portal/postbacks/{theirs.pk}/delete")
    assert response.status_code == 404
    assert AffiliatePostback.objects.filter(pk=theirs.pk).exists()
    mine = two_logs[affiliate.pk][0]
    assert logged_in(affiliate).post(f"/portal/postbacks/{mine.pk}/delete").status_code == 302
    assert not AffiliatePostback.objects.filter(pk=mine.pk).exists()


def test_a_viewer_cannot_add_or_delete(affiliate, two_logs):
    client = Client()
    client.force_login(member(affiliate, role=Role.VIEWER))
    assert client.get("/portal/postbacks/").status_code == 200
    mine = two_logs[affiliate.pk][0]
    assert client.post(f"/portal/postbacks/{mine.pk}/delete").status_code == 403
    assert AffiliatePostback.objects.filter(pk=mine.pk).exists()


# API


def test_api_create_list_and_delete(client, offer, affiliate, affiliate_headers):
    response = client.post(
        "/api/v1/postbacks",
        {
            "event": "lead_approved",
            "offer_id": offer.pk,
            "url_template": "https://t.example.com/pb?p={payout}",
        },
        content_type="application/json",
        **affiliate_headers,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    postback = AffiliatePostback.objects.get()
    assert body["id"] == postback.pk
    assert (body["event"], body["offer_id"], body["is_active"]) == (
        "lead_approved",
        offer.pk,
        True,
    )
    listed = client.get("/api/v1/postbacks", **affiliate_headers).json()
    assert [p["id"] for p in listed] == [postback.pk]
    response = client.delete(f"/api/v1/postbacks/{postback.pk}", **affiliate_headers)
    assert response.status_code == 204
    assert not AffiliatePostback.objects.exists()


def test_api_refuses_a_bad_url_with_the_field(client, affiliate_headers):
    response = client.post(
        "/api/v1/postbacks",
        {"event": "lead_approved", "url_template": "https://{sub1}.example.com/"},
        content_type="application/json",
        **affiliate_headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "code": "url_host",
            "message": "The URL needs a fixed host name (no macros in the host).",
            "field": "url_template",
        }
    ]
    assert AffiliatePostback.objects.count() == 0


def test_api_scopes_postbacks_and_deliveries_to_the_affiliate(
    client, affiliate, other_affiliate, affiliate_headers, two_logs
):
    theirs, their_delivery = two_logs[other_affiliate.pk]
    mine, my_delivery = two_logs[affiliate.pk]
    response = client.delete(f"/api/v1/postbacks/{theirs.pk}", **affiliate_headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert AffiliatePostback.objects.filter(pk=theirs.pk).exists()
    assert [p["id"] for p in client.get("/api/v1/postbacks", **affiliate_headers).json()] == [
        mine.pk
    ]
    deliveries = client.get("/api/v1/postbacks/deliveries", **affiliate_headers).json()
    assert [d["id"] for d in deliveries] == [my_delivery.pk]
    assert deliveries[0]["url"] == my_delivery.url
    assert (deliveries[0]["status"], deliveries[0]["attempts"]) == ("pending", 0)
    assert their_delivery.pk not in [d["id"] for d in deliveries]


def test_api_is_for_affiliate_keys_only(client, advertiser):
    headers = bearer(advertiser)
    assert client.get("/api/v1/postbacks", **headers).status_code == 401
    assert client.get("/api/v1/postbacks/deliveries", **headers).status_code == 401


def test_api_offer_the_affiliate_cannot_see_is_404(client, advertiser, affiliate_headers):
    from tests.factories import make_offer

    private = make_offer(advertiser, visibility="private")
    response = client.post(
        "/api/v1/postbacks",
        {
            "event": "lead_approved",
            "offer_id": private.pk,
            "url_template": "https://t.example.com/",
        },
        content_type="application/json",
        **affiliate_headers,
    )
    assert response.status_code == 404
    assert AffiliatePostback.objects.count() == 0


def test_an_address_carrying_an_inside_ipv4_is_refused_in_the_api_and_the_portal(
    client, affiliate, affiliate_headers, settings
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    response = client.post(
        "/api/v1/postbacks",
        {"event": "lead_approved", "url_template": "http://[64:ff9b::7f00:1]/pb?c={click_id}"},
        content_type="application/json",
        **affiliate_headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "code": "url_private_host",
            "message": (
                "The host must be a public name or address, not a local, private or metadata one."
            ),
            "field": "url_template",
        }
    ]
    page = logged_in(affiliate).post(
        "/portal/postbacks/",
        {"event": "lead_approved", "offer": "", "url_template": "http://localhost./pb"},
    )
    assert page.status_code == 422
    assert "The host must be a public name or address" in page.content.decode()
    assert AffiliatePostback.objects.count() == 0
