"""The whole pay-per-lead loop, over real HTTP against a running server."""

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from leadrelay.accounts.models import OrganizationKind
from leadrelay.accounts.services import api_key_create
from leadrelay.leads.models import Lead
from leadrelay.ledger.selectors import balances_for, trial_balance
from leadrelay.tracking.buffer import click_buffer
from tests.factories import OrganizationFactory, member


@pytest.mark.django_db(transaction=True)
def test_offer_link_click_lead_money_report(live_server) -> None:
    network = OrganizationFactory(kind=OrganizationKind.NETWORK, name="Loop Network")
    advertiser = OrganizationFactory(kind=OrganizationKind.ADVERTISER, name="Loop Buyer")
    affiliate = OrganizationFactory(kind=OrganizationKind.AFFILIATE, name="Loop Publisher")
    advertiser_key = api_key_create(organization=advertiser, name="loop").secret
    affiliate_key = api_key_create(organization=affiliate, name="loop").secret
    staff = member(network)

    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as http:
        # 1. The advertiser publishes an offer.
        response = http.post(
            "/api/v1/offers",
            headers={"Authorization": f"Bearer {advertiser_key}"},
            json={
                "name": "Loop Auto Quotes",
                "vertical": "insurance",
                "status": "active",
                "visibility": "public",
                "revenue_minor": 3000,
                "payout_minor": 2100,
                "landing_url": "https://lp.example.com/quote?clickid={click_id}&src={sub1}",
                "fields": [
                    {"key": "email", "type": "email", "required": True},
                    {"key": "zip", "type": "postal_code", "required": True},
                ],
            },
        )
        assert response.status_code == 201, response.text
        offer_id = response.json()["id"]

        # 2. The affiliate gets a tracking link.
        auth = {"Authorization": f"Bearer {affiliate_key}"}
        response = http.post(f"/api/v1/offers/{offer_id}/links", headers=auth, json={"sub1": "ig"})
        assert response.status_code == 201, response.text
        link_path = urlsplit(response.json()["url"]).path

        # 3. A visitor clicks and is sent to the landing page with a click id.
        response = http.get(link_path, headers={"User-Agent": "Mozilla/5.0 loop"})
        assert response.status_code == 302
        landing = urlsplit(response.headers["Location"])
        assert landing.netloc == "lp.example.com"
        click_id = parse_qs(landing.query)["clickid"][0]
        assert parse_qs(landing.query)["src"] == ["ig"]
        assert click_buffer.flush() == 1  # what the flush thread does every second

        # 4. The landing page posts the lead with the click id: approved at once.
        response = http.post(
            "/api/v1/leads",
            headers=auth,
            json={
                "offer_id": offer_id,
                "click_id": click_id,
                "fields": {"email": "visitor@example.com", "zip": "10001"},
            },
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "approved"
        lead = Lead.objects.get(pk=response.json()["id"])
        assert (lead.affiliate_id, lead.sub1, lead.click_id) == (affiliate.pk, "ig", click_id)

        # 5. The money is booked, balanced, and each side's balance shows it.
        assert trial_balance().ok
        assert [(b.role, b.amount_minor) for b in balances_for(organization=advertiser)] == [
            ("advertiser_receivable", 3000)
        ]
        assert [(b.role, b.amount_minor) for b in balances_for(organization=affiliate)] == [
            ("affiliate_payable", 2100)
        ]

        # 6. Network staff log in and the dashboard shows the click, the lead and the money.
        login_page = http.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
        assert token
        response = http.post(
            "/login/",
            data={
                "username": staff.email,
                "password": "correct horse battery",
                "csrfmiddlewaretoken": token.group(1),
            },
            headers={"Referer": f"{live_server.url}/login/"},
        )
        assert response.status_code == 302, response.text
        page = http.get("/portal/").text
        assert re.search(r'data-metric="clicks">1<', page)
        assert re.search(r'data-metric="leads">1<', page)
        assert re.search(r'data-metric="approved">1<', page)
        assert "USD 30.00" in page  # revenue
        assert "USD 21.00" in page  # payout
        assert "USD 9.00" in page  # profit
        assert "Loop Auto Quotes" in page
