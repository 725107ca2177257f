"""The buyer pages: an advertiser sees why its buyer is paused, re-sends, resumes it."""

from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import Buyer, Delivery
from tests.conftest import logged_in
from tests.distribution.conftest import make_buyer, new_lead


def test_an_advertiser_sees_why_its_buyer_is_paused_resends_and_resumes(
    routed, affiliate, other_advertiser, advertiser, network, buyer_server
):
    buyer = make_buyer(
        other_advertiser, buyer_server.url, name="Auto buyer", pause_after_failures=1
    )
    buyer_server.answer(404, b"gone")
    (delivery,) = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    delivery_attempt(delivery_id=delivery.pk)
    client = logged_in(other_advertiser)
    page = client.get("/portal/buyers/").content.decode()
    assert "Auto buyer" in page
    assert "Paused after 1 failed deliveries in a row; last: HTTP 404" in page
    detail = client.get(f"/portal/buyers/{buyer.pk}/").content.decode()
    assert "404 failed" in detail and "Send again" in detail

    client.post(f"/portal/buyers/{buyer.pk}/", {"resume": "1"})
    buyer.refresh_from_db()
    assert (buyer.status, buyer.paused_reason, buyer.consecutive_failures) == ("active", "", 0)
    client.post(f"/portal/buyers/{buyer.pk}/", {"resend": delivery.pk})
    assert Delivery.objects.get(pk=delivery.pk).status == "pending"
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"

    # Another advertiser neither sees nor touches it; the network sees every buyer.
    assert "Auto buyer" not in logged_in(advertiser).get("/portal/buyers/").content.decode()
    assert logged_in(advertiser).get(f"/portal/buyers/{buyer.pk}/").status_code == 404
    assert "Auto buyer" in logged_in(network).get("/portal/buyers/").content.decode()
    assert logged_in(affiliate).get("/portal/buyers/").status_code == 403
    assert Buyer.objects.get(pk=buyer.pk).status == "active"


def test_the_admin_shows_distribution(routed, affiliate, other_advertiser, network, buyer_server):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    client = logged_in(network)
    for path in (
        "/admin/distribution/offerrouting/",
        f"/admin/distribution/offerrouting/{routed.routing.pk}/change/",
        "/admin/distribution/buyer/",
        f"/admin/distribution/buyer/{buyer.pk}/change/",
        "/admin/distribution/delivery/",
        "/admin/distribution/routingdecision/",
        "/admin/distribution/pingbid/",
        "/admin/distribution/buyerreturn/",
        "/admin/ledger/payoutrun/",
        "/admin/ledger/invoice/",
        "/admin/ledger/payoutthreshold/",
    ):
        assert client.get(path).status_code == 200, path
