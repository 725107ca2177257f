import pytest
from django.test import Client

from leadrelay.leads.models import Lead, LeadSource, LeadStatus
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.models import Transaction
from leadrelay.offers.models import AccessStatus, OfferAccess
from leadrelay.offers.services import offer_access_request
from leadrelay.tracking.models import TrackingLink
from tests.conftest import logged_in
from tests.factories import approve, make_offer

PAGES = ["/portal/", "/portal/offers/", "/portal/links/", "/portal/leads/", "/portal/api-keys/"]


@pytest.mark.parametrize("who", ["network", "advertiser", "affiliate"])
def test_every_portal_page_opens_for_every_role(request, offer, who):
    client = logged_in(request.getfixturevalue(who))
    for page in [*PAGES, f"/portal/offers/{offer.pk}/"]:
        assert client.get(page).status_code == 200, page


def test_pages_need_a_login(db):
    for page in PAGES:
        response = Client().get(page)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_another_advertisers_offer_is_404(other_advertiser, offer):
    assert logged_in(other_advertiser).get(f"/portal/offers/{offer.pk}/").status_code == 404


def test_a_private_offer_is_404_for_other_affiliates(advertiser, affiliate, other_affiliate):
    offer = make_offer(advertiser, visibility="private")
    approve(offer, affiliate)
    assert logged_in(affiliate).get(f"/portal/offers/{offer.pk}/").status_code == 200
    assert logged_in(other_affiliate).get(f"/portal/offers/{offer.pk}/").status_code == 404


def test_leads_pages_list_only_ones_own_leads(offer, affiliate, other_affiliate):
    approve(offer, other_affiliate)
    for org, email in ((affiliate, "mine@example.com"), (other_affiliate, "theirs@example.com")):
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "X", "email": email},
            source=LeadSource.API,
            affiliate=org,
        )
    page = logged_in(affiliate).get("/portal/leads/").content.decode()
    assert "mine@example.com" in page
    assert "theirs@example.com" not in page


def test_an_affiliate_applies_and_the_advertiser_approves(advertiser, affiliate):
    offer = make_offer(advertiser, visibility="approval")
    response = logged_in(affiliate).post(f"/portal/offers/{offer.pk}/apply")
    assert response.status_code == 302
    access = OfferAccess.objects.get()
    assert access.status == AccessStatus.PENDING
    response = logged_in(advertiser).post(f"/portal/access/{access.pk}", {"decision": "approve"})
    assert response.status_code == 302
    access.refresh_from_db()
    assert access.status == AccessStatus.APPROVED


def test_an_advertiser_cannot_decide_another_advertisers_applications(
    advertiser, other_advertiser, affiliate
):
    offer = make_offer(advertiser, visibility="approval")
    access = offer_access_request(offer=offer, affiliate=affiliate)
    response = logged_in(other_advertiser).post(
        f"/portal/access/{access.pk}", {"decision": "approve"}
    )
    assert response.status_code == 404
    access.refresh_from_db()
    assert access.status == AccessStatus.PENDING


def test_an_affiliate_makes_a_link_in_the_portal(offer, affiliate):
    client = logged_in(affiliate)
    response = client.post(f"/portal/offers/{offer.pk}/links", {"sub1": "spring"}, follow=True)
    assert response.status_code == 200
    link = TrackingLink.objects.get()
    assert (link.affiliate, link.sub1) == (affiliate, "spring")
    assert f"/c/{link.code}" in response.content.decode()


def test_network_staff_review_leads_in_the_portal(network, advertiser, affiliate):
    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    lead = lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "X", "email": "x@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    page = logged_in(network).get("/portal/leads/?status=pending_review").content.decode()
    assert f"/portal/leads/{lead.pk}/review" in page
    response = logged_in(network).post(f"/portal/leads/{lead.pk}/review", {"decision": "approve"})
    assert response.status_code == 302
    assert Lead.objects.get().status == LeadStatus.APPROVED
    assert Transaction.objects.count() == 1


def test_only_network_staff_review(advertiser, affiliate):
    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    lead = lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "X", "email": "x@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    # The advertiser may review only where its offer allows it (not here): not found.
    response = logged_in(advertiser).post(
        f"/portal/leads/{lead.pk}/review", {"decision": "approve"}
    )
    assert response.status_code == 404
    response = logged_in(affiliate).post(f"/portal/leads/{lead.pk}/review", {"decision": "approve"})
    assert response.status_code == 403
    assert Lead.objects.get().status == LeadStatus.PENDING_REVIEW
    assert Transaction.objects.count() == 0


def test_viewers_look_but_do_not_change(offer, affiliate):
    from leadrelay.accounts.models import ApiKey, Role
    from tests.factories import member

    client = Client()
    client.force_login(member(affiliate, role=Role.VIEWER))
    assert client.get("/portal/api-keys/").status_code == 200
    assert client.post("/portal/api-keys/", {"name": "x"}).status_code == 403
    assert client.post(f"/portal/offers/{offer.pk}/links", {"sub1": "a"}).status_code == 403
    assert ApiKey.objects.count() == 0
    assert TrackingLink.objects.count() == 0


def test_review_does_not_redirect_off_site(network, advertiser, affiliate):
    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    lead = lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "X", "email": "x@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    response = logged_in(network).post(
        f"/portal/leads/{lead.pk}/review",
        {"decision": "reject", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/portal/leads/"


def test_network_staff_can_use_the_admin(network, offer):
    client = logged_in(network)
    assert client.get("/admin/offers/offer/").status_code == 200
    assert client.get(f"/admin/offers/offer/{offer.pk}/change/").status_code == 200
    assert client.get("/admin/ledger/transaction/").status_code == 200


def test_the_api_docs_load_nothing_from_a_cdn(db):
    page = Client().get("/api/v1/docs").content.decode()
    assert "swagger" in page.lower()
    assert "cdn" not in page.lower()
    assert Client().get("/api/v1/openapi.json").json()["info"]["title"] == "leadrelay API"


def _pending(offer, affiliate, n):
    return [
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "X", "email": f"bulk{n}-{i}@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
        for i in range(n)
    ]


def test_staff_decide_many_leads_at_once_with_a_reason(network, advertiser, affiliate):
    from leadrelay.leads.models import LeadStatusChange

    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    leads = _pending(offer, affiliate, 3)
    client = logged_in(network)
    page = client.get("/portal/leads/").content.decode()
    assert 'data-testid="bulk-review"' in page
    response = client.post(
        "/portal/leads/review",
        {
            "lead": [leads[0].pk, leads[1].pk],
            "decision": "reject",
            "reason": "bad_contact",
            "note": "called, wrong number",
        },
    )
    assert response.status_code == 302
    statuses = {lead.pk: lead.status for lead in Lead.objects.all()}
    assert statuses == {
        leads[0].pk: "rejected",
        leads[1].pk: "rejected",
        leads[2].pk: "pending_review",
    }
    change = LeadStatusChange.objects.filter(lead=leads[0]).last()
    assert (change.reasons, change.note, change.to_status) == (
        ["bad_contact"],
        "called, wrong number",
        "rejected",
    )


def test_advertisers_review_only_where_the_offer_lets_them(advertiser, other_advertiser, affiliate):
    from leadrelay.offers.models import Offer

    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    (lead,) = _pending(offer, affiliate, 1)
    client = logged_in(advertiser)
    assert (
        client.post(f"/portal/leads/{lead.pk}/review", {"decision": "approve"}).status_code == 404
    )
    Offer.objects.filter(pk=offer.pk).update(advertiser_reviews=True)
    assert (
        logged_in(other_advertiser)
        .post(f"/portal/leads/{lead.pk}/review", {"decision": "approve"})
        .status_code
        == 404
    )
    assert (
        client.post(f"/portal/leads/{lead.pk}/review", {"decision": "approve"}).status_code == 302
    )
    assert Lead.objects.get().status == "approved"


def test_only_network_staff_see_which_lead_a_duplicate_repeats(
    network, offer, affiliate, advertiser
):
    first, second = (
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "X", "email": "dup@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
        for _ in range(2)
    )
    assert second.duplicate_of_id == first.pk
    assert f"of #{first.pk}" in logged_in(network).get("/portal/leads/").content.decode()
    for org in (advertiser, affiliate):
        assert "of #" not in logged_in(org).get("/portal/leads/").content.decode()


def test_a_rows_own_button_works_whatever_else_is_ticked(network, advertiser, affiliate):
    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    one, two, three = _pending(offer, affiliate, 3)
    lead_review_decide_elsewhere = logged_in(network)
    lead_review_decide_elsewhere.post(f"/portal/leads/{three.pk}/review", {"decision": "reject"})
    client = logged_in(network)
    # Row one's Approve button, with two (and the meanwhile decided three) ticked.
    client.post(
        f"/portal/leads/{one.pk}/review", {"decision": "approve", "lead": [two.pk, three.pk]}
    )
    assert Lead.objects.get(pk=one.pk).status == "approved"
    assert Lead.objects.get(pk=two.pk).status == "pending_review"
    # The bulk button with a lead someone else decided: the rest still go through.
    response = client.post(
        "/portal/leads/review", {"decision": "reject", "lead": [two.pk, three.pk]}, follow=True
    )
    assert Lead.objects.get(pk=two.pk).status == "rejected"
    assert "1 lead(s) were already decided" in response.content.decode()
