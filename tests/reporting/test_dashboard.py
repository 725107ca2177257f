import datetime as dt

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from leadrelay.leads.models import LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.models import AccountRole, Entry
from leadrelay.reporting.selectors import dashboard_report
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer, logged_in
from tests.factories import approve, make_click, make_offer


def _lead(offer, affiliate, email, click_id=None):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": email},
        source=LeadSource.API,
        affiliate=affiliate,
        click_id=click_id,
    )


@pytest.fixture
def traffic(network, advertiser, other_advertiser, affiliate, other_affiliate):
    """Two advertisers' offers, two affiliates; known clicks, leads and money."""
    mine = make_offer(advertiser, revenue_minor=2500, payout_minor=1800)
    theirs = make_offer(other_advertiser, revenue_minor=4000, payout_minor=3000)
    approve(mine, affiliate)
    approve(theirs, affiliate)
    approve(mine, other_affiliate, payout=2000)
    link = tracking_link_create(offer=mine, affiliate=affiliate, subs={"sub1": "search"})
    clicks = [make_click(link) for _ in range(4)]
    _lead(mine, affiliate, "a@example.com", clicks[0].click_id)  # approved
    _lead(mine, affiliate, "a@example.com", clicks[1].click_id)  # duplicate
    _lead(theirs, affiliate, "b@example.com")  # approved, other advertiser
    _lead(mine, other_affiliate, "c@example.com")  # approved, other affiliate
    return mine, theirs


def _today():
    today = timezone.now().date()
    return today - dt.timedelta(days=6), today


def test_the_network_sees_everything(network, traffic):
    start, end = _today()
    report = dashboard_report(organization=network, start=start, end=end)
    t = report.totals
    assert (t.clicks, t.leads, t.approved, t.rejected, t.pending) == (4, 4, 3, 1, 0)
    usd = t.money["USD"]
    assert (usd.revenue_minor, usd.payout_minor, usd.profit_minor) == (9000, 6800, 2200)
    assert t.conversion_rate_bp == 10000
    assert t.approval_rate_bp == 7500
    by_offer = {row.label: row.leads for row in report.breakdowns["offer"]}
    assert by_offer == {traffic[0].name: 3, traffic[1].name: 1}
    assert report.visibility.profit


def test_an_advertiser_sees_only_its_offers_and_what_it_pays(advertiser, traffic):
    start, end = _today()
    report = dashboard_report(organization=advertiser, start=start, end=end)
    t = report.totals
    assert (t.clicks, t.leads, t.approved) == (4, 3, 2)
    assert t.money["USD"].revenue_minor == 5000
    assert not report.visibility.payout and not report.visibility.profit
    labels = {row.label for row in report.breakdowns["affiliate"]}
    assert all(label.startswith("Source #") for label in labels)


def test_an_affiliate_sees_only_its_own_leads_and_earnings(affiliate, other_affiliate, traffic):
    start, end = _today()
    mine = dashboard_report(organization=affiliate, start=start, end=end).totals
    theirs = dashboard_report(organization=other_affiliate, start=start, end=end).totals
    assert (mine.clicks, mine.leads, mine.approved, mine.money["USD"].payout_minor) == (
        4,
        3,
        2,
        4800,
    )
    assert (theirs.clicks, theirs.leads, theirs.money["USD"].payout_minor) == (0, 1, 2000)


def test_report_money_equals_the_ledger(network, traffic):
    start, end = _today()
    usd = dashboard_report(organization=network, start=start, end=end).totals.money["USD"]
    receivable = Entry.objects.filter(account__role=AccountRole.ADVERTISER_RECEIVABLE).aggregate(
        s=Sum("amount_minor")
    )["s"]
    payable = Entry.objects.filter(account__role=AccountRole.AFFILIATE_PAYABLE).aggregate(
        s=Sum("amount_minor")
    )["s"]
    assert (usd.revenue_minor, usd.payout_minor) == (receivable, -payable)


@pytest.mark.parametrize(
    ("who", "visible", "hidden"),
    [
        ("network", ["Revenue", "Payout", "Profit"], []),
        ("advertiser", ["Spend"], ["Payout", "Profit", "Good Traffic"]),
        ("affiliate", ["Earnings"], ["Revenue", "Profit", "Other Traffic"]),
    ],
)
def test_dashboard_pages_show_each_role_its_columns(request, traffic, who, visible, hidden):
    organization = request.getfixturevalue(who)
    page = logged_in(organization).get("/portal/").content.decode()
    for text in visible:
        assert text in page
    for text in hidden:
        assert text not in page


def test_api_report_is_scoped_and_hides_columns(affiliate, advertiser, traffic):
    body = Client().get("/api/v1/reports/summary", **bearer(affiliate)).json()
    assert body["totals"]["leads"] == 3
    assert body["totals"]["money"] == [
        {"currency": "USD", "revenue_minor": None, "payout_minor": 4800, "profit_minor": None}
    ]
    body = Client().get("/api/v1/reports/summary", **bearer(advertiser)).json()
    assert body["totals"]["money"][0]["payout_minor"] is None
    assert body["totals"]["money"][0]["revenue_minor"] == 5000


def test_api_report_refuses_bad_ranges(affiliate):
    headers = bearer(affiliate)
    response = Client().get("/api/v1/reports/summary?start=2026-02-01&end=2026-01-01", **headers)
    assert (response.status_code, response.json()["errors"][0]["code"]) == (422, "invalid_range")
    response = Client().get("/api/v1/reports/summary?start=2020-01-01&end=2026-01-01", **headers)
    assert response.json()["errors"][0]["code"] == "range_too_long"
