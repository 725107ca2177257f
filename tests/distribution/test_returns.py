"""Buyers returning delivered leads: the window, auto-accept up to a rate, review (also in
the portal), and what an accepted return takes back in the ledger."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from leadrelay.accounts.models import Role
from leadrelay.core.errors import Conflict, NotFound
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import BuyerReturn, Delivery, OfferRouting
from leadrelay.distribution.returns import buyer_return_decide, buyer_return_request
from leadrelay.leads.models import Lead
from leadrelay.ledger.checks import ledger_problems
from leadrelay.ledger.selectors import advertiser_balances, affiliate_balances
from tests.conftest import bearer, logged_in
from tests.distribution.conftest import make_buyer, new_lead
from tests.factories import member


def _owed(org):
    return {b.currency: b.owed_minor for b in advertiser_balances(organization=org)}.get("USD", 0)


def _earned(affiliate):
    b = {x.currency: x for x in affiliate_balances(organization=affiliate)}.get("USD")
    return b.available_minor + b.pending_minor if b else 0


def _sold(offer, affiliate):
    lead = new_lead(offer, affiliate)
    for delivery in lead_distribute(lead_id=lead.pk):
        delivery_attempt(delivery_id=delivery.pk)
    return lead


def test_an_auto_accepted_return_reverses_the_sale_and_the_commission(
    routed, affiliate, other_advertiser, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url, auto_accept_returns_bp=10_000)
    lead = _sold(routed, affiliate)
    assert _owed(other_advertiser) == 3000 and _earned(affiliate) == 1800
    returned = buyer_return_request(lead_id=lead.pk, by=other_advertiser, reason="bad_phone")
    assert returned.status == "accepted"
    assert _owed(other_advertiser) == 0 and _earned(affiliate) == 0
    assert Delivery.objects.get(lead=lead).status == "returned"
    assert Lead.objects.get(pk=lead.pk).status == "returned"
    with pytest.raises(Conflict) as again:
        buyer_return_request(lead_id=lead.pk, by=other_advertiser, reason="bad_phone")
    assert again.value.code == "already_returned"
    assert ledger_problems() == []


def test_returns_beyond_the_rate_wait_for_review(
    routed, affiliate, other_advertiser, network, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url, auto_accept_returns_bp=2500)  # 25 %
    leads = [_sold(routed, affiliate) for _ in range(4)]
    first = buyer_return_request(lead_id=leads[0].pk, by=other_advertiser, reason="bad_phone")
    second = buyer_return_request(lead_id=leads[1].pk, by=other_advertiser, reason="bad_phone")
    assert (first.status, second.status) == ("accepted", "pending")
    assert _owed(other_advertiser) == 9000
    staff = member(network)
    buyer_return_decide(return_id=second.pk, accept=False, staff=staff)
    assert _owed(other_advertiser) == 9000
    with pytest.raises(Conflict):
        buyer_return_decide(return_id=second.pk, accept=True, staff=staff)
    third = buyer_return_request(lead_id=leads[2].pk, by=other_advertiser, reason="fake")
    buyer_return_decide(return_id=third.pk, accept=True, staff=staff)
    assert _owed(other_advertiser) == 6000


def test_a_shared_lead_keeps_its_commission_while_another_buyer_keeps_it(
    routed, affiliate, other_advertiser, advertiser, buyer_server, settings
):
    OfferRouting.objects.filter(offer=routed).update(mode="shared", max_buyers=2)
    make_buyer(other_advertiser, buyer_server.url, exclusive=False, auto_accept_returns_bp=10_000)
    make_buyer(advertiser, buyer_server.url, exclusive=False, auto_accept_returns_bp=10_000)
    lead = _sold(routed, affiliate)
    buyer_return_request(lead_id=lead.pk, by=other_advertiser, reason="dup")
    assert _earned(affiliate) == 1800  # the other buyer still has it
    buyer_return_request(lead_id=lead.pk, by=advertiser, reason="dup")
    assert _earned(affiliate) == 0


def test_the_network_may_keep_commissions_on_returns(
    routed, affiliate, other_advertiser, buyer_server, settings
):
    settings.LEADRELAY_RETURNS_REVERSE_COMMISSION = False
    make_buyer(other_advertiser, buyer_server.url, auto_accept_returns_bp=10_000)
    lead = _sold(routed, affiliate)
    buyer_return_request(lead_id=lead.pk, by=other_advertiser, reason="bad_phone")
    assert _owed(other_advertiser) == 0 and _earned(affiliate) == 1800
    assert Lead.objects.get(pk=lead.pk).status == "approved"


def test_late_or_foreign_returns_are_refused(
    routed, affiliate, other_advertiser, advertiser, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url, return_window_days=3)
    lead = _sold(routed, affiliate)
    with pytest.raises(Conflict) as late:
        buyer_return_request(
            lead_id=lead.pk,
            by=other_advertiser,
            reason="late",
            now=timezone.now() + dt.timedelta(days=4),
        )
    assert late.value.code == "return_window_closed"
    from leadrelay.accounts.models import Organization

    stranger = Organization.objects.create(name="Stranger", slug="stranger", kind="advertiser")
    with pytest.raises(NotFound):
        buyer_return_request(lead_id=lead.pk, by=stranger, reason="mine")


def test_a_buyer_returns_through_the_api(routed, affiliate, other_advertiser, buyer_server):
    make_buyer(other_advertiser, buyer_server.url)
    lead = _sold(routed, affiliate)
    response = Client().post(
        f"/api/v1/leads/{lead.pk}/return",
        {"reason": "bad_phone"},
        content_type="application/json",
        **bearer(other_advertiser),
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"id": lead.pk, "status": "pending", "return_reason": "bad_phone"}


def test_network_staff_accept_a_return_in_the_portal_as_the_automatic_path_does(
    routed, affiliate, other_advertiser, advertiser, network, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url, name="Reviewed buyer")
    lead = _sold(routed, affiliate)
    owner = logged_in(other_advertiser)
    filed = owner.post(
        f"/portal/buyers/{Delivery.objects.get(lead=lead).buyer_id}/returns",
        {"lead": lead.pk, "reason": "bad_phone"},
        follow=True,
    )
    assert "return Waiting for review" in filed.content.decode()
    pending = BuyerReturn.objects.get()
    assert (pending.status, pending.reason) == ("pending", "bad_phone")
    assert _owed(other_advertiser) == 3000 and _earned(affiliate) == 1800

    # The advertiser sees its return waiting, can't decide it; another advertiser sees nothing.
    mine = owner.get("/portal/buyer-returns/").content.decode()
    assert "Reviewed buyer" in mine and "Waiting for review" in mine
    assert 'value="accept"' not in mine
    review = f"/portal/buyer-returns/{pending.pk}/review"
    assert owner.post(review, {"decision": "accept"}).status_code == 403
    theirs = logged_in(advertiser).get("/portal/buyer-returns/").content.decode()
    assert "Reviewed buyer" not in theirs
    assert logged_in(affiliate).get("/portal/buyer-returns/").status_code == 403

    staff = logged_in(network)
    queue = staff.get("/portal/buyer-returns/?status=pending").content.decode()
    assert f'data-testid="return-{pending.pk}"' in queue and 'value="accept"' in queue
    row = staff.post(
        f"/portal/buyer-returns/{pending.pk}/review",
        {"decision": "accept"},
        HTTP_HX_REQUEST="true",
    )
    assert row.status_code == 200
    assert row.content.decode().startswith(f'<tr id="return-{pending.pk}"')
    assert "Accepted" in row.content.decode()
    pending.refresh_from_db()
    assert pending.status == "accepted" and pending.decided_by is not None
    # Exactly what an automatic acceptance does: the sale and the commission are reversed.
    assert _owed(other_advertiser) == 0 and _earned(affiliate) == 0
    assert Delivery.objects.get(lead=lead).status == "returned"
    assert Lead.objects.get(pk=lead.pk).status == "returned"
    assert ledger_problems() == []
    again = staff.post(
        f"/portal/buyer-returns/{pending.pk}/review", {"decision": "refuse"}, follow=True
    )
    assert "This return was decided already." in again.content.decode()
    assert BuyerReturn.objects.get().status == "accepted"


def test_a_refused_return_leaves_the_sale(
    routed, affiliate, other_advertiser, network, buyer_server
):
    make_buyer(other_advertiser, buyer_server.url)
    lead = _sold(routed, affiliate)
    pending = buyer_return_request(lead_id=lead.pk, by=other_advertiser, reason="fake")
    staff = logged_in(network)
    staff.post(f"/portal/buyer-returns/{pending.pk}/review", {"decision": "refuse"})
    pending.refresh_from_db()
    assert pending.status == "refused"
    assert _owed(other_advertiser) == 3000 and _earned(affiliate) == 1800
    assert Delivery.objects.get(lead=lead).status == "delivered"
    assert Lead.objects.get(pk=lead.pk).status == "approved"
    assert ledger_problems() == []
    # A network viewer sees the queue but decides nothing.
    viewer = Client()
    viewer.force_login(member(network, role=Role.VIEWER))
    other = _sold(routed, affiliate)
    waiting = buyer_return_request(lead_id=other.pk, by=other_advertiser, reason="fake")
    assert 'value="accept"' not in viewer.get("/portal/buyer-returns/").content.decode()
    review = f"/portal/buyer-returns/{waiting.pk}/review"
    assert viewer.post(review, {"decision": "accept"}).status_code == 403
    assert BuyerReturn.objects.get(pk=waiting.pk).status == "pending"
