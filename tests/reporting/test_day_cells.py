"""Reports without a breakdown read day cells, corrected by hour cells where the viewer's days
don't start at UTC midnight: the same rows, totals and cut as reading every hour cell."""

import datetime as dt
import zoneinfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.reporting import tables
from leadrelay.reporting.models import Rollup
from leadrelay.reporting.rollups import DAY, Deltas
from leadrelay.reporting.tables import TableQuery, bounds, day_plan, report_table

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns",
         "Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe"]  # fmt: skip
FIRST = dt.date(2026, 2, 26)  # New York moves its clocks on 8 March 2026, Berlin on the 29th
DAYS = 40


def _net(plan, hour):
    """Where one UTC hour's cell ends up under a plan: {local day: sign}."""
    out = {}
    for at, dim, day, sign in plan:
        covers = at <= hour < at + dt.timedelta(days=1) if dim == DAY else at == hour
        if covers:
            out[day] = out.get(day, 0) + sign
    return {d: n for d, n in out.items() if n}


@given(
    start=st.dates(FIRST, FIRST + dt.timedelta(days=DAYS)),
    length=st.integers(0, 40),
    tz=st.sampled_from(ZONES),
)
def test_a_day_plan_counts_each_hour_once_on_its_local_day(start, length, tz):
    end = start + dt.timedelta(days=length)
    plan = day_plan(start, end, tz)
    lo, hi = (t.astimezone(dt.UTC) for t in bounds(start, end, tz))
    hour = dt.datetime.combine(start - dt.timedelta(days=3), dt.time.min, tzinfo=dt.UTC)
    while hour < hi + dt.timedelta(days=3):
        wanted = {hour.astimezone(zoneinfo.ZoneInfo(tz)).date(): 1} if lo <= hour < hi else {}
        assert _net(plan, hour) == wanted, hour
        hour += dt.timedelta(hours=1)


def test_utc_days_read_day_cells_only_and_new_york_five_hours_a_day():
    utc = day_plan(dt.date(2026, 1, 1), dt.date(2026, 1, 30), "UTC")
    assert len(utc) == 30 and {dim for _, dim, _, _ in utc} == {DAY}
    new_york = day_plan(dt.date(2026, 1, 1), dt.date(2026, 1, 30), "America/New_York")
    assert sum(1 for _, dim, _, _ in new_york if dim == "") == 30 * 5 * 2


CHANGE = st.fixed_dictionaries(
    {"clicks": st.integers(0, 5), "unique_clicks": st.integers(0, 3),
     "leads": st.integers(0, 3), "approved": st.integers(-1, 2), "rejected": st.integers(0, 2),
     "duplicate": st.integers(0, 1), "pending": st.integers(-1, 1),
     "returned": st.integers(0, 1)}
)  # fmt: skip
MONEY = st.fixed_dictionaries(
    {"revenue_minor": st.integers(-3000, 9000), "payout_minor": st.integers(-2000, 6000)}
)
EVENT = st.tuples(
    st.integers(0, DAYS * 24 - 1),  # hour from FIRST
    st.sampled_from([11, 12, 13]),  # offer
    st.sampled_from([0, 21, 22]),  # affiliate (0: none)
    st.one_of(
        CHANGE.map(lambda c: ("", c)),
        MONEY.map(lambda m: ("USD", m)),
        MONEY.map(lambda m: ("EUR", m)),
    ),
)


def _shown(table):
    def money(row):
        return {c: (m.revenue_minor, m.payout_minor) for c, m in row.money.items()
                if m.revenue_minor or m.payout_minor}  # fmt: skip

    def metric(row):
        counts = (row.clicks, row.unique_clicks, row.leads, row.approved, row.rejected,
                  row.duplicates, row.pending, row.returned)  # fmt: skip
        return (row.key, row.label, counts, money(row), row.ids)

    return ([metric(r) for r in table.rows], metric(table.totals), metric(table.previous),
            table.truncated)  # fmt: skip


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    events=st.lists(EVENT, max_size=40),
    start=st.dates(FIRST, FIRST + dt.timedelta(days=DAYS)),
    length=st.integers(0, 12),
    tz=st.sampled_from(ZONES),
    group_by=st.sampled_from(
        [
            (),
            ("day",),
            ("offer",),
            ("day", "offer", "affiliate"),
            ("affiliate", "day"),
            ("offer", "affiliate"),
        ]
    ),
    max_rows=st.sampled_from([3, 5000]),
)
def test_day_cells_give_the_report_the_hour_cells_give(
    network, monkeypatch, events, start, length, tz, group_by, max_rows
):
    Rollup.objects.all().delete()
    deltas = Deltas()
    for hours, offer, affiliate, (currency, change) in events:
        at = dt.datetime.combine(FIRST, dt.time.min, tzinfo=dt.UTC) + dt.timedelta(hours=hours)
        deltas.add(at, offer, affiliate, [("", "")], change, currency)
    deltas.write()
    query = TableQuery(start, start + dt.timedelta(days=length), group_by, tz)
    read = []
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr(tables, "MAX_ROWS", max_rows)
        whole_read = tables._whole_read
        patched.setattr(tables, "_whole_read", lambda *a: read.append(a) or whole_read(*a))
        by_days = _shown(report_table(organization=network, query=query))
        assert read  # the rows (with a grouping) and the previous period's totals
        patched.setattr(tables, "PLAN_MAX", 0)  # past it, the hour cells are read
        read.clear()
        by_hours = _shown(report_table(organization=network, query=query))
        assert not read
    assert by_days == by_hours


def test_a_long_period_in_a_far_time_zone_reads_the_hour_cells(network, monkeypatch):
    """Past PLAN_MAX plan rows (bound parameters), the report reads hour cells instead."""
    Rollup.objects.all().delete()
    deltas = Deltas()
    deltas.add(dt.datetime(2026, 3, 2, 3, tzinfo=dt.UTC), 11, 21, [("", "")], {"clicks": 2})
    deltas.write()
    query = TableQuery(dt.date(2025, 3, 3), dt.date(2026, 3, 2), ("day",), "Pacific/Kiritimati")
    assert len(day_plan(query.start, query.end, query.tz)) > tables.PLAN_MAX
    read = []
    monkeypatch.setattr(tables, "_whole_read", lambda *a, **k: read.append(a))
    table = report_table(organization=network, query=query)
    assert [(r.label, r.clicks) for r in table.rows] == [("2026-03-02", 2)]
    assert read == []  # neither the rows nor the previous year's totals
