"""The Reports page: per role its own rows and allowed columns, refusals with their
messages, totals against the previous period, charts; the dashboard's charts."""

import datetime as dt
import re

import pytest
import time_machine

from leadrelay.leads.models import LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.reporting.tables import TableQuery, report_table
from leadrelay.tracking.services import click_record, tracking_link_create
from tests.conftest import logged_in
from tests.factories import approve, make_offer, visitor

AT = dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)
BEFORE = AT - dt.timedelta(days=10)  # in the previous period of 2026-03-01…03-10
PERIOD = {"start": "2026-03-01", "end": "2026-03-10"}
EVIL_OFFER = '=HYPERLINK("http://x")'


@pytest.fixture
def traffic(network, advertiser, other_advertiser, affiliate, other_affiliate):
    """An offer with a formula for a name, sub ids that look like formulas, and leads of
    two affiliates on two advertisers' offers; one lead in the previous period."""
    mine = make_offer(advertiser, name=EVIL_OFFER, revenue_minor=2500, payout_minor=1800)
    theirs = make_offer(other_advertiser, name="Theirs", revenue_minor=4000, payout_minor=3000)
    approve(mine, affiliate)
    approve(theirs, affiliate)
    approve(mine, other_affiliate)
    link = tracking_link_create(
        offer=mine, affiliate=affiliate, subs={"sub1": "+1", "sub2": "@SUM(A1)"}
    )
    n = iter(range(1000))

    def lead(offer, who, at, email=None, clicked=False):
        with time_machine.travel(at, tick=False):
            click_id = None
            if clicked:
                ip = f"203.0.113.{next(n)}"
                click_id = click_record(code=link.code, visitor=visitor(ip=ip), write_now=True)
                click_id = click_id.click.click_id
            return lead_intake(
                offer_id=offer.pk,
                fields={"first_name": "A", "email": email or f"x{next(n)}@example.com"},
                source=LeadSource.API,
                affiliate=who,
                click_id=click_id,
            )

    lead(mine, affiliate, BEFORE, clicked=True)
    lead(mine, affiliate, AT, email="same@example.com", clicked=True)
    assert lead(mine, affiliate, AT, email="same@example.com", clicked=True).status == "duplicate"
    lead(mine, other_affiliate, AT)
    lead(theirs, affiliate, AT)
    return mine, theirs


def _get(organization, path="/portal/reports/", **params):
    return logged_in(organization).get(path, {**PERIOD, **params})


def _columns(response):
    return [c.key for c in response.context["grid"].columns]


def _rows(response):
    return [(tuple(r.parts), r.shown) for r in response.context["grid"].rows]


COUNTS = [
    "clicks", "unique_clicks", "leads", "approved", "rejected", "duplicates", "pending",
    "returned", "conversion_rate", "approval_rate", "return_rate",
]  # fmt: skip


def test_the_network_sees_every_row_and_every_column(network, affiliate, traffic):
    response = _get(network, group_by=["offer", "affiliate"])
    assert response.status_code == 200
    assert _columns(response) == [
        *COUNTS, "revenue", "payout", "profit", "margin", "roi", "epc", "cpl"
    ]  # fmt: skip
    rows = _rows(response)
    assert [parts for parts, _ in rows] == [
        (EVIL_OFFER, "Good Traffic"),
        (EVIL_OFFER, "Other Traffic"),  # fewer leads, then by label
        ("Theirs", "Good Traffic"),
    ]
    # Two clicks, two leads (one a duplicate), one approved: USD 25.00 in, 18.00 out.
    assert rows[0][1] == [
        "2", "2", "2", "1", "1", "1", "0", "0", "100.00%", "50.00%", "0.00%",
        "USD 25.00", "USD 18.00", "USD 7.00", "28.00%", "38.89%", "USD 9.00", "USD 25.00",
    ]  # fmt: skip
    html = response.content.decode()
    for title in ("Revenue", "Payout", "Profit", "Margin", "ROI", "EPC", "CPL"):
        assert re.search(f'data-column="{title.lower()}" title="[^"]+">{title}</th>', html)
    assert "=HYPERLINK(&quot;http://x&quot;)" in html  # shown as text, escaped for HTML


def test_an_advertiser_sees_its_offers_sources_by_id_and_no_payout(
    advertiser, affiliate, other_affiliate, traffic
):
    response = _get(advertiser, group_by=["offer", "affiliate"])
    assert response.status_code == 200
    assert _columns(response) == [*COUNTS, "revenue", "cpl"]
    assert [parts for parts, _ in _rows(response)] == [
        (EVIL_OFFER, f"Source #{affiliate.pk}"),
        (EVIL_OFFER, f"Source #{other_affiliate.pk}"),
    ]
    html = response.content.decode()
    assert ">Spend</th>" in html and ">Source</th>" in html
    for hidden in ("Payout", "Profit", "Margin", "ROI", "EPC", "Earnings", "Theirs"):
        assert hidden not in html.split("<main>")[1]
    assert "Good Traffic" not in html


def test_an_affiliate_sees_its_own_leads_and_earnings_only(affiliate, traffic):
    response = _get(affiliate, group_by=["offer"])
    assert response.status_code == 200
    assert _columns(response) == [*COUNTS, "payout", "epc"]
    rows = dict(_rows(response))
    assert set(rows) == {(EVIL_OFFER,), ("Theirs",)}
    assert rows[(EVIL_OFFER,)][2:4] == ["2", "1"]  # not the other affiliate's lead
    total = response.context["grid"].total
    assert total.shown[2:4] == ["3", "2"]
    assert total.shown[-2:] == ["USD 48.00", "USD 24.00"]
    main = response.content.decode().split("<main>")[1]
    for hidden in ("Revenue", "Spend", "Profit", "Margin", "ROI", "CPL", "Other Traffic"):
        assert hidden not in main
    assert ">Earnings</th>" in main


@pytest.mark.parametrize(
    ("who", "params", "code", "message"),
    [
        ("advertiser", {"group_by": "sub1"}, "invalid_group",
         "Not a grouping you can use: sub1 (use day, offer, affiliate, country, device, "
         "variant, reason)."),
        ("affiliate", {"group_by": "affiliate"}, "invalid_group",
         "Not a grouping you can use: affiliate (use day, offer, sub1, sub2, sub3, sub4, sub5, "
         "country, device, variant, reason)."),
        ("network", {"group_by": ["sub1", "country"]}, "one_breakdown",
         "At most one of sub1, sub2, sub3, sub4, sub5, country, device, variant, reason."),
        ("network", {"tz": "Mars/Olympus"}, "invalid_timezone", "An IANA time zone."),
        ("network", {"start": "2026-03-10", "end": "2026-03-01"}, "invalid_range",
         "start is after end."),
    ],
)  # fmt: skip
def test_a_query_the_role_may_not_run_is_refused_with_the_reason(
    request, traffic, who, params, code, message
):
    organization = request.getfixturevalue(who)
    response = _get(organization, **params)
    assert response.status_code == 422
    assert response.context["grid"] is None
    html = response.content.decode()
    assert f'<li class="error" data-code="{code}">{message}</li>' in html
    assert 'data-testid="report-table"' not in html
    export = _get(organization, "/portal/reports/export.csv", **params)
    assert (export.status_code, export.content.decode()) == (422, message + "\n")


def test_totals_compare_with_the_previous_period(network, traffic):
    response = _get(network, group_by="day")
    grid = response.context["grid"]
    table = report_table(
        organization=network,
        query=TableQuery(dt.date(2026, 3, 1), dt.date(2026, 3, 10), ("day",)),
    )
    assert [r.parts for r in grid.rows] == [["2026-03-09"]]
    assert grid.total.values[:4] == [table.totals.clicks, 2, 4, 3]
    assert grid.previous.values[:4] == [table.previous.clicks, 1, 1, 1]
    assert grid.previous.parts[0] == "Previous period (2026-02-19 – 2026-02-28)"
    changes = dict(zip(_columns(response), grid.changes_shown, strict=True))
    assert changes["leads"] == "+300.00%"  # 4 against 1
    assert changes["approved"] == "+200.00%"
    assert changes["returned"] == "–"  # nothing to compare with
    assert changes["approval_rate"] == "−25.00 pt"  # 75 % against 100 %
    assert changes["revenue"] == "+260.00%"  # USD 90.00 against 25.00
    html = response.content.decode()
    assert '<tr class="change" data-testid="report-change">' in html


def test_the_page_opens_by_day_over_the_last_30_days_with_charts(network, traffic):
    response = logged_in(network).get("/portal/reports/")
    assert response.status_code == 200
    table = response.context["table"]
    assert table.query.group_by == ("day",)
    assert table.query.days == 30 and table.query.tz == "UTC"
    html = response.content.decode()
    assert '<a href="/portal/reports/">Reports</a>' in html
    assert html.count("<svg") == 1  # by day only: no breakdown to draw bars of
    assert re.search(r'<svg [^>]*role="img"[^>]*data-chart="line"', html)
    assert "<title id=" in html and "<desc id=" in html


def test_charts_show_the_chosen_metric_by_day_and_by_the_grouping(network, traffic):
    response = _get(network, group_by=["offer", "sub1"], metric="payout")
    html = response.content.decode()
    charts = response.context["charts"]
    assert len(charts) == 2
    line, bars = charts
    assert "<title" in line and ">Payout by day</title>" in line
    assert "2026-03-09: USD 66.00" in line  # three approved leads' payouts that day
    assert ">Payout by offer (top ten)</title>" in bars
    assert "=HYPERLINK(&quot;http://x&quot;): USD 36.00" in bars
    assert "Theirs: USD 30.00" in bars
    assert "<script" not in html.split("<main>")[1]
    assert '<option value="payout" selected>Payout</option>' in html


def test_money_is_shown_in_the_currency_chosen(network, advertiser, affiliate, traffic):
    euro = make_offer(advertiser, name="Euro", currency="EUR", revenue_minor=1000, payout_minor=700)
    approve(euro, affiliate)
    with time_machine.travel(AT, tick=False):
        lead_intake(
            offer_id=euro.pk,
            fields={"first_name": "E", "email": "e@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
    first = _get(network, group_by="offer")
    assert first.context["grid"].currency == "EUR"  # the first of the report's currencies
    assert '<select name="currency">' in first.content.decode()
    usd = dict(_rows(_get(network, group_by="offer", currency="USD")))
    assert usd[("Euro",)][11:14] == ["USD 0.00", "USD 0.00", "USD 0.00"]
    assert usd[("Theirs",)][11:14] == ["USD 40.00", "USD 30.00", "USD 10.00"]
    rows = dict(_rows(_get(network, group_by="offer", currency="EUR")))
    assert rows[("Euro",)][11:14] == ["EUR 10.00", "EUR 7.00", "EUR 3.00"]
    assert rows[("Theirs",)][11:14] == ["EUR 0.00", "EUR 0.00", "EUR 0.00"]


def test_the_dashboard_draws_leads_and_money_by_day_and_top_offers(affiliate, traffic):
    client = logged_in(affiliate)
    with time_machine.travel(AT + dt.timedelta(days=1), tick=False):
        response = client.get("/portal/")
    html = response.content.decode()
    assert response.status_code == 200
    assert ">Leads by day</title>" in html
    assert ">Earnings by day (USD)</title>" in html
    assert ">Top offers by leads</title>" in html
    assert "2026-03-09: 3" in html  # its three leads that day (one a duplicate)
    assert 'href="/portal/reports/?' in html


def test_every_number_shown_has_its_definition_next_to_it(network, affiliate, traffic):
    from leadrelay.reporting.metrics import DEFINITIONS

    html = _get(network, group_by=["offer"]).content.decode()
    for key in _columns(_get(network, group_by=["offer"])):
        assert f'data-column="{key}" title="{DEFINITIONS[key]}"'.replace("'", "&#x27;") in html
    glossary = html.split('data-testid="definitions"')[1]
    assert "Leads ÷ clicks." in glossary and "Profit ÷ payout." in glossary
    dashboard = logged_in(affiliate).get("/portal/").content.decode()
    glossary = dashboard.split('data-testid="definitions"')[1]
    assert DEFINITIONS["payout"] in glossary and DEFINITIONS["revenue"] not in glossary
