"""The money pages and API, per role: what each sees, what staff can do, what is refused."""

import csv
import io

import pytest
from django.utils import timezone

from leadrelay.leads.models import Lead, LeadSource, LeadStatus
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.models import Invoice, PayoutLine, Transaction
from tests.conftest import bearer, logged_in
from tests.factories import approve, make_offer


@pytest.fixture
def sold(network, advertiser, affiliate):
    offer = make_offer(advertiser, name="Auto quotes", return_window_days=5)
    approve(offer, affiliate)
    return [
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "A", "email": f"m{n}@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
        for n in range(2)
    ]


def test_each_role_sees_its_own_balances(sold, network, advertiser, affiliate, other_affiliate):
    page = logged_in(affiliate).get("/portal/money/").content.decode()
    assert "USD 36.00" in page and 'data-testid="affiliate-balances"' in page  # pending
    page = logged_in(advertiser).get("/portal/money/").content.decode()
    assert "USD 50.00" in page and "payment-form" not in page
    page = logged_in(network).get("/portal/money/").content.decode()
    assert advertiser.name in page and affiliate.name in page and "payment-form" in page
    assert "USD 0.00" not in logged_in(other_affiliate).get("/portal/money/").content.decode()


def test_staff_record_payments_and_adjustments_and_see_refusals(sold, network, advertiser):
    client = logged_in(network)
    response = client.post(
        "/portal/money/payments",
        {"organization": advertiser.pk, "currency": "USD", "amount": "20.00", "reference": "A1"},
        follow=True,
    )
    assert "Payment recorded." in response.content.decode()
    response = client.post(
        "/portal/money/payments",
        {"organization": advertiser.pk, "currency": "USD", "amount": "99.00", "reference": "A2"},
        follow=True,
    )
    assert "payment_exceeds_owed" in response.content.decode()
    response = client.post(
        "/portal/money/adjustments",
        {"organization": advertiser.pk, "currency": "USD", "amount": "1.234", "reason": "x"},
        follow=True,
    )
    assert "more decimals than USD has" in response.content.decode()
    assert Transaction.objects.filter(kind="payment").count() == 1
    assert Transaction.objects.filter(kind="adjustment").count() == 0
    # Only the network posts money.
    assert logged_in(advertiser).post("/portal/money/payments", {}).status_code == 403


def test_payout_run_pages_csv_and_the_affiliates_statement(network, advertiser, affiliate):
    offer = make_offer(advertiser)
    approve(offer, affiliate)
    lead = lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": "s@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    client = logged_in(network)
    today = timezone.now().date().isoformat()
    response = client.post("/portal/payouts/", {"period_end": today}, follow=True)
    assert "1 line(s)" in response.content.decode()
    line = PayoutLine.objects.get()
    export = client.get(f"/portal/payouts/{line.run_id}.csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[1][2:5] == [affiliate.name, "USD", "18.00"]
    client.post(f"/portal/payouts/{line.run_id}/", {"line": line.pk, "reference": "W-1"})
    line.refresh_from_db()
    assert line.reference == "W-1" and line.paid_id

    statement = logged_in(affiliate).get(f"/portal/statements/{line.pk}/").content.decode()
    assert f"<td>{lead.pk}</td>" in statement and "offer payout" in statement
    assert logged_in(advertiser).get(f"/portal/statements/{line.pk}/").status_code == 403
    assert logged_in(affiliate).get(f"/portal/payouts/{line.run_id}.csv").status_code == 403
    response = client.post("/portal/payouts/", {"period_end": "not a day"}, follow=True)
    assert "YYYY-MM-DD" in response.content.decode()


def test_invoices_issue_show_pdf_and_mark_paid(sold, network, advertiser, other_advertiser):
    client = logged_in(network)
    today = timezone.now().date().isoformat()
    response = client.post(
        "/portal/invoices/",
        {"advertiser": advertiser.pk, "currency": "USD", "start": today, "end": today},
        follow=True,
    )
    page = response.content.decode()
    invoice = Invoice.objects.get()
    assert f"Invoice {invoice.number} issued." in page and "Auto quotes: Approved leads" in page
    own = logged_in(advertiser)
    assert invoice.number in own.get("/portal/invoices/").content.decode()
    pdf = own.get(f"/portal/invoices/{invoice.pk}.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    assert logged_in(other_advertiser).get(f"/portal/invoices/{invoice.pk}/").status_code == 404
    assert own.post(f"/portal/invoices/{invoice.pk}/", {"reference": "x"}).status_code == 404
    client.post(f"/portal/invoices/{invoice.pk}/", {"reference": "WIRE-5"})
    invoice.refresh_from_db()
    assert invoice.status == "paid"


def test_an_advertiser_returns_a_lead_from_the_leads_page(sold, advertiser, network):
    client = logged_in(advertiser)
    assert 'data-testid="take-back-' in client.get("/portal/leads/").content.decode()
    response = client.post(
        f"/portal/leads/{sold[0].pk}/take-back", {"reason": "bad_phone"}, follow=True
    )
    assert f"Lead {sold[0].pk} returned." in response.content.decode()
    assert Lead.objects.get(pk=sold[0].pk).status == LeadStatus.RETURNED
    response = client.post(f"/portal/leads/{sold[0].pk}/take-back", {"reason": "x"}, follow=True)
    assert "lead_not_approved" in response.content.decode()
    response = logged_in(network).post(
        f"/portal/leads/{sold[1].pk}/take-back", {"reason": "fraud ring"}, follow=True
    )
    assert Lead.objects.get(pk=sold[1].pk).status == LeadStatus.REVERSED


def test_the_api_answers_balances_and_takes_returns(sold, advertiser, affiliate, other_advertiser):
    from django.test import Client

    answer = Client().get("/api/v1/balances", **bearer(affiliate)).json()
    assert answer == [
        {
            "currency": "USD",
            "pending": "36.00",
            "available": "0.00",
            "in_payout_run": "0.00",
            "paid": "0.00",
            "owed": None,
            "prepaid": None,
        }
    ]
    url = f"/api/v1/leads/{sold[0].pk}/return"
    response = Client().post(
        url, {"reason": "bad_phone"}, content_type="application/json", **bearer(advertiser)
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"id": sold[0].pk, "status": "returned", "return_reason": "bad_phone"}
    again = Client().post(
        url, {"reason": "bad_phone"}, content_type="application/json", **bearer(advertiser)
    )
    assert (again.status_code, again.json()["code"]) == (409, "lead_not_approved")
    other = Client().post(
        f"/api/v1/leads/{sold[1].pk}/return",
        {"reason": "mine"},
        content_type="application/json",
        **bearer(other_advertiser),
    )
    assert other.status_code == 404
    assert (
        Client()
        .post(url, {"reason": "x"}, content_type="application/json", **bearer(affiliate))
        .status_code
        == 401
    )
