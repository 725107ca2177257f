"""Report tables: groupings, the viewer's time zone, breakdowns, metrics and scoping."""

import datetime as dt

import pytest
import time_machine
from django.test import Client

from leadrelay.core.errors import Invalid
from leadrelay.leads.models import LeadSource
from leadrelay.leads.returns import lead_return
from leadrelay.leads.services import lead_intake
from leadrelay.reporting.metrics import MetricRow, MoneyTotals
from leadrelay.reporting.tables import TableQuery, report_table
from leadrelay.tracking.services import click_record, tracking_link_create
from tests.conftest import bearer
from tests.factories import approve, make_offer, visitor

# 23:30 UTC on the 9th is already the 10th in Berlin (UTC+1 in March).
LATE = dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.UTC)
NEXT = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def traffic(network, advertiser, other_advertiser, affiliate, other_affiliate):
    mine = make_offer(advertiser, name="Mine", revenue_minor=2500, payout_minor=1800,
                      return_window_days=30)  # fmt: skip
    theirs = make_offer(other_advertiser, name="Theirs", revenue_minor=4000, payout_minor=3000)
    for offer in (mine, theirs):
        approve(offer, affiliate)
    approve(mine, other_affiliate)
    link = tracking_link_create(offer=mine, affiliate=affiliate, subs={"sub1": "search"})
    n = iter(range(1000))

    def lead(offer, who, at, **fields):
        with time_machine.travel(at, tick=False):
            click = click_record(
                code=link.code, visitor=visitor(ip=f"203.0.113.{next(n)}"), write_now=True
            ).click
            return lead_intake(
                offer_id=offer.pk,
                fields={"first_name": "A", "email": f"x{next(n)}@example.com", **fields},
                source=LeadSource.API,
                affiliate=who,
                click_id=click.click_id if offer == mine and who == affiliate else None,
            )

    first = lead(mine, affiliate, LATE)
    lead(mine, affiliate, NEXT)
    lead(mine, other_affiliate, NEXT)
    lead(theirs, affiliate, NEXT)
    with time_machine.travel(NEXT + dt.timedelta(hours=1), tick=False):
        lead_return(lead_id=first.pk, by=advertiser, reason="unreachable")
    return mine, theirs


def _q(**kwargs):
    return TableQuery(start=dt.date(2026, 3, 9), end=dt.date(2026, 3, 10), **kwargs)


def test_days_follow_the_viewers_time_zone(network, traffic):
    utc = report_table(organization=network, query=_q(group_by=("day",)))
    berlin = report_table(organization=network, query=_q(group_by=("day",), tz="Europe/Berlin"))
    assert [(r.label, r.leads) for r in utc.rows] == [("2026-03-09", 1), ("2026-03-10", 3)]
    assert [(r.label, r.leads) for r in berlin.rows] == [("2026-03-10", 4)]


def test_day_by_offer_by_affiliate_for_the_network(network, affiliate, traffic):
    table = report_table(organization=network, query=_q(group_by=("day", "offer", "affiliate")))
    cells = {tuple(r.parts.values()): r for r in table.rows}
    assert set(cells) == {
        ("2026-03-09", "Mine", affiliate.name),
        ("2026-03-10", "Mine", affiliate.name),
        ("2026-03-10", "Mine", "Other Traffic"),
        ("2026-03-10", "Theirs", affiliate.name),
    }
    returned = cells[("2026-03-09", "Mine", affiliate.name)]
    assert (returned.leads, returned.approved, returned.returned) == (1, 0, 1)
    t = table.totals
    assert (t.clicks, t.leads, t.approved, t.returned) == (4, 4, 3, 1)
    usd = t.money["USD"]
    # Four approved and booked, one of them returned (its sale and payout reversed).
    assert (usd.revenue_minor, usd.payout_minor) == (2500 + 2500 + 4000, 1800 + 1800 + 3000)
    assert t.return_rate_bp == 2500 and t.approval_rate_bp == 10000
    assert t.cpl_minor("USD") == 3000  # 90.00 for the three leads kept
    assert t.epc_minor("USD") == 1650  # 66.00 earned over four clicks
    assert (table.previous.leads, table.previous.clicks) == (0, 0)


def test_a_breakdown_shows_values_and_none_for_the_rest(network, traffic):
    table = report_table(organization=network, query=_q(group_by=("sub1",)))
    by = {r.label: (r.clicks, r.leads) for r in table.rows}
    # Every click came through the link with sub1=search; leads without a click have none.
    assert by == {"search": (4, 2), "(none)": (0, 2)}
    with_offer = report_table(organization=network, query=_q(group_by=("offer", "sub1")))
    assert {r.label: r.leads for r in with_offer.rows} == {
        "Mine · search": 2, "Mine · (none)": 1, "Theirs · (none)": 1,
    }  # fmt: skip


def test_each_role_sees_its_own_rows_and_groupings(advertiser, affiliate, traffic):
    mine = report_table(organization=advertiser, query=_q(group_by=("offer",)))
    assert [r.label for r in mine.rows] == ["Mine"]
    assert mine.totals.leads == 3
    assert not mine.visibility.payout
    theirs = report_table(organization=affiliate, query=_q(group_by=("offer",)))
    assert {r.label: r.leads for r in theirs.rows} == {"Mine": 2, "Theirs": 1}
    with pytest.raises(Invalid) as exc:
        report_table(organization=advertiser, query=_q(group_by=("sub1",)))
    assert exc.value.problems[0].code == "invalid_group"
    with pytest.raises(Invalid):
        report_table(organization=affiliate, query=_q(group_by=("affiliate",)))
    with pytest.raises(Invalid) as exc:
        report_table(organization=affiliate, query=_q(group_by=("sub1", "country")))
    assert exc.value.problems[0].code == "one_breakdown"
    with pytest.raises(Invalid) as exc:
        report_table(organization=affiliate, query=_q(tz="Mars/Base"))
    assert exc.value.problems[0].code == "invalid_timezone"


def test_the_previous_period_is_the_same_length_just_before(network, traffic):
    later = TableQuery(start=dt.date(2026, 3, 11), end=dt.date(2026, 3, 12))
    table = report_table(organization=network, query=later)
    assert table.totals.leads == 0
    assert table.previous.leads == 4  # the 9th and 10th


def test_money_metrics_are_defined_once():
    money = MoneyTotals(revenue_minor=10_000, payout_minor=7_500)
    assert (money.profit_minor, money.margin_bp, money.roi_bp) == (2500, 2500, 3333)
    assert MoneyTotals().margin_bp is None
    row = MetricRow(key="", label="", clicks=3, approved=0, money={"USD": money})
    assert row.epc_minor("USD") == 2500 and row.cpl_minor("USD") is None


def _api(org, **params):
    query = {"start": "2026-03-09", "end": "2026-03-10", **params}
    return Client().get("/api/v1/reports", query, **bearer(org))


def test_the_api_gives_each_role_its_rows_and_hides_what_it_may_not_see(
    network, advertiser, affiliate, traffic
):
    everything = _api(network, group_by="day,offer,affiliate").json()
    assert everything["totals"]["leads"] == 4 and len(everything["rows"]) == 4
    (usd,) = everything["totals"]["money"]
    assert (usd["revenue_minor"], usd["payout_minor"], usd["profit_minor"]) == (9000, 6600, 2400)
    assert usd["margin_bp"] == 2667 and usd["cpl_minor"] == 3000
    row = everything["rows"][0]
    assert row["ids"]["offer"] == str(traffic[0].pk) and row["parts"]["offer"] == "Mine"

    spend = _api(advertiser, group_by="offer").json()
    assert [r["label"] for r in spend["rows"]] == ["Mine"]
    (usd,) = spend["totals"]["money"]
    assert usd["payout_minor"] is None and usd["profit_minor"] is None and usd["epc_minor"] is None
    assert usd["revenue_minor"] == 5000

    earned = _api(affiliate, group_by="offer,sub1").json()
    (usd,) = earned["totals"]["money"]
    assert usd["revenue_minor"] is None and usd["cpl_minor"] is None
    assert usd["payout_minor"] == 1800 + 3000  # its own: the returned lead's payout reversed
    assert {r["parts"]["sub1"] for r in earned["rows"]} == {"search", "(none)"}


def test_the_api_refuses_what_a_role_may_not_ask_with_a_clear_error(advertiser, affiliate, traffic):
    refused = _api(advertiser, group_by="sub1")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "invalid_group"
    assert _api(affiliate, group_by="affiliate").status_code == 422
    assert _api(affiliate, tz="Not/AZone").json()["errors"][0]["code"] == "invalid_timezone"
    backwards = _api(affiliate, start="2026-03-10", end="2026-03-01")
    assert backwards.json()["errors"][0]["code"] == "invalid_range"
    assert Client().get("/api/v1/reports").status_code == 401


def test_a_cut_table_keeps_the_busiest_rows_of_the_whole_period(network, traffic, monkeypatch):
    from leadrelay.reporting import tables

    monkeypatch.setattr(tables, "MAX_ROWS", 2)
    table = report_table(organization=network, query=_q(group_by=("day", "offer")))
    assert table.truncated
    # Busiest by leads, then clicks: the 10th's Mine (2 leads), then the 9th's Mine (1 lead,
    # 1 click) over the 10th's Theirs (1 lead, no click); shown by day.
    assert [(r.label, r.leads) for r in table.rows] == [
        ("2026-03-09 · Mine", 1), ("2026-03-10 · Mine", 2),
    ]  # fmt: skip
    monkeypatch.setattr(tables, "MAX_ROWS", 1)
    table = report_table(organization=network, query=_q(group_by=("day", "offer")))
    # Not the first day's row, as the cut used to keep: the busiest one.
    assert [(r.label, r.leads) for r in table.rows] == [("2026-03-10 · Mine", 2)]
    assert table.totals.leads == 4  # totals are never cut


@pytest.mark.parametrize("group_by", [("day",), ("offer", "affiliate"), ()])
def test_a_filter_no_cell_can_match_is_an_empty_table(network, advertiser, traffic, group_by):
    # Django refuses to write SQL for an id beyond its column (EmptyResultSet): callers bound
    # ids (core/bounds.py), and the table answers "nothing" if one gets through all the same.
    beyond = [{"offer_id": 2**63}, {"affiliate_id": 2**63}, {"offer_id": -(2**63) - 1}]
    for who in (network, advertiser):
        for ids in beyond:
            table = report_table(organization=who, query=_q(group_by=group_by, **ids))
            assert (table.rows, table.truncated, table.currencies) == ([], False, [])
            t = table.totals
            assert (t.clicks, t.leads, t.approved, t.money) == (0, 0, 0, {})
