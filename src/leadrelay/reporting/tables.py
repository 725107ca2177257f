"""Report tables: the metrics grouped by day (in the viewer's time zone), offer, affiliate
and at most one breakdown (sub1…sub5, country, device, landing variant, refusal reason),
read from the rollups (reporting/rollups.py), with the previous period's totals to compare.

Scoping: the network sees everything, an advertiser its offers (affiliates by id only,
never their sub ids), an affiliate what is attributed to it. Every page, API answer and
export of a report goes through `report_table`, so they all show the same numbers.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncDate

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import Invalid, Problem
from leadrelay.offers.models import LandingVariant, Offer
from leadrelay.reporting.metrics import MetricRow
from leadrelay.reporting.models import Rollup
from leadrelay.reporting.rollups import BREAKDOWNS, COLUMNS, DAY

PLAIN = ("day", "offer", "affiliate")
GROUPS = (*PLAIN, *BREAKDOWNS)
MAX_ROWS = 5000
NONE_LABEL = "(none)"
_SUMS = {column: Sum(column) for column in COLUMNS}


@dataclass(frozen=True)
class Visibility:
    """Which money columns and groupings a role may see."""

    revenue: bool
    payout: bool
    groups: tuple[str, ...]

    @property
    def profit(self) -> bool:
        return self.revenue and self.payout


def visibility_for(organization: Organization) -> Visibility:
    if organization.kind == OrganizationKind.NETWORK:
        return Visibility(True, True, GROUPS)
    if organization.kind == OrganizationKind.ADVERTISER:
        # What it pays, never what affiliates earn; sources by id, not their sub ids.
        return Visibility(
            True, False, ("day", "offer", "affiliate", "country", "device", "variant", "reason")
        )
    return Visibility(False, True, tuple(g for g in GROUPS if g != "affiliate"))


@dataclass(frozen=True)
class TableQuery:
    start: dt.date
    end: dt.date
    group_by: tuple[str, ...] = ("day",)
    tz: str = "UTC"
    offer_id: int | None = None
    affiliate_id: int | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> TableQuery:
        """The period of the same length just before."""
        length = dt.timedelta(days=self.days)
        return TableQuery(
            self.start - length, self.start - dt.timedelta(days=1), self.group_by, self.tz,
            self.offer_id, self.affiliate_id,
        )  # fmt: skip


@dataclass
class Table:
    query: TableQuery
    visibility: Visibility
    rows: list[MetricRow]
    totals: MetricRow
    previous_read: Callable[[], MetricRow] = field(repr=False, compare=False)
    truncated: bool = False  # more rows than MAX_ROWS: the first ones by leads are shown

    @cached_property
    def previous(self) -> MetricRow:
        """The previous period's totals, read when first asked for: a page or the dashboard
        that shows several tables of one period compares only one."""
        return self.previous_read()

    @property
    def currencies(self) -> list[str]:
        return sorted(set(self.totals.money) | set(self.previous.money))


@dataclass
class _Row:
    parts: dict[str, Any] = field(default_factory=dict)
    metric: MetricRow = field(default_factory=lambda: MetricRow(key="", label=""))


def table_problems(organization: Organization, query: TableQuery) -> list[Problem]:
    allowed = visibility_for(organization).groups
    problems = []
    if query.start > query.end:  # the length is for callers to bound (date_range_resolve)
        problems.append(Problem("invalid_range", "start is after end.", "start"))
    unknown = [g for g in query.group_by if g not in allowed]
    if unknown:
        shown = ", ".join(allowed)
        message = f"Not a grouping you can use: {', '.join(unknown)} (use {shown})."
        problems.append(Problem("invalid_group", message, "group_by"))
    if sum(1 for g in query.group_by if g in BREAKDOWNS) > 1:
        problems.append(Problem("one_breakdown", f"At most one of {', '.join(BREAKDOWNS)}.",
                                "group_by"))  # fmt: skip
    if len(set(query.group_by)) != len(query.group_by):
        problems.append(Problem("repeated_group", "Each grouping once.", "group_by"))
    try:
        zoneinfo.ZoneInfo(query.tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(Problem("invalid_timezone", "An IANA time zone.", "tz"))
    return problems


def bounds(start: dt.date, end: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The instants between which the days start…end (inclusive) of time zone `tz` run."""
    zone = zoneinfo.ZoneInfo(tz)
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def scoped_cells(organization: Organization) -> QuerySet[Rollup]:
    cells = Rollup.objects.all()
    if organization.kind == OrganizationKind.ADVERTISER:
        return cells.filter(offer_id__in=Offer.objects.filter(advertiser=organization).values("pk"))
    if organization.kind == OrganizationKind.AFFILIATE:
        return cells.filter(affiliate_id=organization.pk)
    return cells


def _add(target: MetricRow, r: dict[str, Any], sign: int = 1) -> None:
    _add_values(target, r["currency"], [r[c] or 0 for c in COLUMNS], sign)


def _add_values(target: MetricRow, currency: str, values: Any, sign: int = 1) -> None:
    """Add a cell's or a group's COLUMNS (in that order) to a row: money to its currency's
    totals, counts from the rows without a currency."""
    (clicks, unique_clicks, leads, approved, rejected, duplicate, pending, returned, revenue,
     payout) = values  # fmt: skip
    if currency:
        money = target.money_for(currency)
        money.revenue_minor += sign * revenue
        money.payout_minor += sign * payout
        return
    target.clicks += sign * clicks
    target.unique_clicks += sign * unique_clicks
    target.leads += sign * leads
    target.approved += sign * approved
    target.rejected += sign * (rejected + duplicate)
    target.duplicates += sign * duplicate
    target.pending += sign * pending
    target.returned += sign * returned


def _empty(metric: MetricRow) -> bool:
    counts = (metric.clicks, metric.leads, metric.approved, metric.rejected, metric.pending,
              metric.returned, metric.unique_clicks)  # fmt: skip
    money = any(m.revenue_minor or m.payout_minor for m in metric.money.values())
    return not any(counts) and not money


def _query_cells(organization: Organization, query: TableQuery) -> QuerySet[Rollup]:
    cells = scoped_cells(organization)
    if query.offer_id is not None:
        cells = cells.filter(offer_id=query.offer_id)
    if query.affiliate_id is not None:
        cells = cells.filter(affiliate_id=query.affiliate_id)
    return cells


def _period_cells(organization: Organization, query: TableQuery) -> QuerySet[Rollup]:
    lo, hi = bounds(query.start, query.end, query.tz)
    return _query_cells(organization, query).filter(hour__gte=lo, hour__lt=hi)


def _totals(organization: Organization, query: TableQuery) -> MetricRow:
    plan = day_plan(query.start, query.end, query.tz)
    if plan and len(plan) <= PLAN_MAX:
        return _whole_read(organization, query, plan, ())[1]
    totals = MetricRow(key="total", label="Total")
    for r in (
        _period_cells(organization, query)
        .filter(dim="")
        .values("currency")
        .annotate(**_SUMS)
        .order_by()
    ):
        _add(totals, r)
    return totals


# --- the whole cells of a period, read by day ---------------------------------------------

# (cell hour, dim, local day, sign) rows of a plan: past this many, the hour cells are read
# instead (bound parameters: three a row, under SQLite's 32,766 and PostgreSQL's 65,535).
PLAN_MAX = 4000
Plan = list[tuple[dt.datetime, str, dt.date, int]]


def day_plan(start: dt.date, end: dt.date, tz: str) -> Plan:
    """Which cells make the whole of days start…end in time zone `tz`, and on which local day
    each counts: the day cell (rollups.DAY) of each UTC day whose noon falls on one of those
    days, corrected by the hour cells where the local day and the UTC day disagree: an hour
    the UTC day brought to the wrong local day is taken off it (sign -1) and added to its
    own (+1). For UTC that is the day cells alone; for New York, five hours a day. An hour
    counts on the local day it starts in, as the hour cells' reports always did."""
    zone = zoneinfo.ZoneInfo(tz)
    lo, hi = (t.astimezone(dt.UTC) for t in bounds(start, end, tz))

    def noon_day(day: dt.date) -> dt.date:
        return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).astimezone(zone).date()

    first, last = lo.date() - dt.timedelta(days=1), hi.date() + dt.timedelta(days=1)
    days = {}
    day = first
    while day <= last:
        local = noon_day(day)
        if start <= local <= end:
            days[day] = local
        day += dt.timedelta(days=1)
    plan: Plan = [
        (dt.datetime.combine(d, dt.time.min, tzinfo=dt.UTC), DAY, local, 1)
        for d, local in days.items()
    ]
    hour = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    stop = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    while hour < stop:
        wanted = hour.astimezone(zone).date() if lo <= hour < hi else None
        counted = days.get(hour.date())
        if wanted != counted:
            if wanted is not None:
                plan.append((hour, "", wanted, 1))
            if counted is not None:
                plan.append((hour, "", counted, -1))
        hour += dt.timedelta(hours=1)
    return plan


_KEY_SQL = {"day": "x.d", "offer": "x.offer_id", "affiliate": "x.affiliate_id"}


def _names(named: list[str]) -> list[str]:
    return [*named, "currency", *COLUMNS]


def _whole_read(
    organization: Organization, query: TableQuery, plan: Plan, keys: tuple[str, ...],
    limit: int = 0,
) -> tuple[list[tuple[Any, ...]], MetricRow, int]:  # fmt: skip
    """The period's whole cells grouped by `keys` (of day, offer, affiliate), in one
    statement: the rows (keys…, currency, columns…) of the `limit` busiest groups (by leads,
    then clicks), one per group and currency; the totals; and how many groups hold anything."""
    ops = connection.ops
    lists, branches, params, branch_params = [], [], [], []
    for n, dim in enumerate((DAY, "")):
        mapped = [(h, d, sign) for h, kind, d, sign in plan if kind == dim]
        if not mapped:
            continue
        # One join per kind of cell, its dim a constant: the planner then looks each plan
        # row's hour up in the index made for it (rollup_day, rollup_whole_hour).
        cells = _query_cells(organization, query).filter(dim=dim)
        try:
            sql, found = cells.values("hour", "offer_id", "affiliate_id", "currency",
                                      *COLUMNS).query.sql_with_params()  # fmt: skip
        except EmptyResultSet:  # a filter no row can pass (Django says so instead of SQL)
            continue
        lists.append(f"m{n}(h, d, s) AS (VALUES {', '.join(['(%s, %s, %s)'] * len(mapped))})")
        for hour, day, sign in mapped:
            params += [ops.adapt_datetimefield_value(hour), ops.adapt_datefield_value(day), sign]
        branches.append(
            f"SELECT m{n}.d AS d, m{n}.s AS s, c.* FROM ({sql}) c JOIN m{n} ON c.hour = m{n}.h"  # noqa: S608
        )
        branch_params += found
    if not branches:
        return [], MetricRow(key="total", label="Total"), 0
    params += branch_params
    pg = connection.vendor == "postgresql"
    # PostgreSQL adds bigints up as numeric; doubles are exact for integers below 2**53 (90
    # trillion dollars in cents) and add up several times faster.
    exact = "DOUBLE PRECISION" if pg else "BIGINT"
    named = [f"g_{k}" for k in keys]
    picked = ", ".join([*(f"{_KEY_SQL[k]} AS g_{k}" for k in keys), "x.currency AS currency"])
    source = " UNION ALL ".join(branches)
    if set(keys) == set(PLAIN) and all(dim == DAY for _, dim, _, _ in plan):
        # Whole UTC days by day, offer and affiliate: each day cell is a group's row already.
        columns = ", ".join(f"x.{c}" for c in COLUMNS)
        held = " OR ".join(f"x.{c} <> 0" for c in COLUMNS)
        g = f"SELECT {picked}, {columns} FROM ({source}) x WHERE {held}"  # noqa: S608
    else:
        sums = ", ".join(f"CAST(SUM(CAST(x.{c} * x.s AS {exact})) AS BIGINT) AS {c}"
                         for c in COLUMNS)  # fmt: skip
        held = " OR ".join(f"SUM(CAST(x.{c} * x.s AS {exact})) <> 0" for c in COLUMNS)
        by = ", ".join([*(_KEY_SQL[k] for k in keys), "x.currency"])
        g = f"SELECT {picked}, {sums} FROM ({source}) x GROUP BY {by} HAVING {held}"  # noqa: S608
    nulls = "".join("NULL, " for _ in named)
    totals = ", ".join(f"CAST(SUM(CAST({c} AS {exact})) AS BIGINT)" for c in COLUMNS)
    # Names from this module and Django's own SQL; values as parameters. Parts: 1 the rows
    # of the busiest groups, 2 the totals by currency, 3 how many groups there are.
    ctes = [*lists, f"g AS ({g})"]
    selects = [f"SELECT 2, {nulls}currency, {totals}, 0 FROM g GROUP BY currency"]  # noqa: S608
    if keys:
        listed = ", ".join(named)
        same = " AND ".join(f"t.{n} = g.{n}" for n in named)
        ctes += [
            f"k AS (SELECT {listed}, SUM(CAST(leads AS {exact})) AS l, "  # noqa: S608
            f"SUM(CAST(clicks AS {exact})) AS n FROM g GROUP BY {listed})",
            f"t AS (SELECT {listed} FROM k ORDER BY l DESC, n DESC, {listed} LIMIT %s)",  # noqa: S608
        ]
        shown = ", ".join(f"g.{n}" for n in _names(named))
        zeros = ", ".join(["0"] * len(COLUMNS))
        selects += [
            f"SELECT 1, {shown}, 0 FROM g JOIN t ON {same}",  # noqa: S608
            f"SELECT 3, {nulls}'', {zeros}, COUNT(*) FROM k",  # noqa: S608
        ]
        params.append(limit)
    statement = f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}"
    rows: list[tuple[Any, ...]] = []
    total, groups = MetricRow(key="total", label="Total"), 0
    names = _names(named)
    with transaction.atomic(), connection.cursor() as cursor:
        if pg:
            # Tens of thousands of rows: sorted in memory, not merged on disk; in this process
            # (workers cost more to start and gather than they save here); and the top groups
            # found by hashing, where the planner, blind to how many rows the plan's VALUES
            # join gives, would sort all of them to merge.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(statement, params)
        for part, *found, count in cursor.fetchall():
            if part == 1:
                rows.append(tuple(found))
            elif part == 2:
                _add(total, dict(zip(names, found, strict=True)))
            else:
                groups = count or 0
    if "day" in keys and not pg:  # SQLite gives dates back as text
        at = keys.index("day")
        rows = [(*r[:at], dt.date.fromisoformat(r[at]), *r[at + 1 :]) for r in rows]
    return rows, total, groups


def report_table(*, organization: Organization, query: TableQuery) -> Table:
    """The report for this organization; Invalid when the query is not one it may run."""
    problems = table_problems(organization, query)
    if problems:
        raise Invalid(problems)
    plain = [g for g in query.group_by if g in PLAIN]
    breakdown = next((g for g in query.group_by if g in BREAKDOWNS), None)
    plan = day_plan(query.start, query.end, query.tz) if breakdown is None else []
    if plan and len(plan) <= PLAN_MAX:
        # The busiest groups are picked in the database: a month of a network's links by
        # day is tens of thousands of rows, too many to build here only to cut them.
        found, totals, groups = _whole_read(organization, query, plan, tuple(plain), MAX_ROWS)
        n = len(plain)
        rows: dict[tuple[Any, ...], _Row] = {}
        for r in found:
            key = r[:n]
            if key not in rows:
                rows[key] = _Row(parts=dict(zip(plain, key, strict=True)))
            _add_values(rows[key].metric, r[n], r[n + 1 :])
        if not plain and not _empty(totals):  # no grouping: one row, the whole period
            rows[()] = _Row()
            rows[()].metric.add(totals)
        kept = list(rows.values())
        truncated = groups > MAX_ROWS
    else:
        kept, totals = _hour_rows(organization, query, plain, breakdown)
        truncated = len(kept) > MAX_ROWS
        if truncated:
            # The busiest rows over the whole period (not the first days'), labelled alone.
            kept.sort(key=lambda r: (-r.metric.leads, -r.metric.clicks, _sortable_parts(r)))
            kept = kept[:MAX_ROWS]
    _label(kept, organization, query)
    if "day" in query.group_by:
        kept.sort(key=_sortable_parts)
    else:
        kept.sort(key=lambda r: (-r.metric.leads, -r.metric.clicks, r.metric.label))
    return Table(
        query=query,
        visibility=visibility_for(organization),
        rows=[r.metric for r in kept],
        totals=totals,
        previous_read=partial(_totals, organization, query.previous()),
        truncated=truncated,
    )


def _hour_rows(
    organization: Organization, query: TableQuery, plain: list[str], breakdown: str | None
) -> tuple[list[_Row], MetricRow]:
    """The rows and totals from the hour cells: breakdowns, and periods too long for a day
    plan. Rows that hold nothing are left out."""
    rows: dict[tuple[Any, ...], _Row] = {}

    def row(key: tuple[Any, ...]) -> _Row:
        if key not in rows:
            parts = dict(zip(query.group_by, _ordered(key, plain, breakdown, query), strict=True))
            rows[key] = _Row(parts=parts)
        return rows[key]

    cells = _period_cells(organization, query)
    paths = {
        "day": TruncDate("hour", tzinfo=zoneinfo.ZoneInfo(query.tz)),
        "offer": F("offer_id"),
        "affiliate": F("affiliate_id"),
    }
    annotations = {f"g_{g}": paths[g] for g in plain}
    names = list(annotations)
    whole = cells.filter(dim="").annotate(**annotations)
    whole_rows = list(whole.values(*names, "currency").annotate(**_SUMS).order_by())
    if breakdown is None:
        for r in whole_rows:
            _add(row(tuple(r[n] for n in names)).metric, r)
    else:
        # What has no value in this breakdown is the whole less the values (empty values
        # are not stored). Reasons are only for refused leads, several per lead: no rest.
        rest = breakdown != "reason"
        part = cells.filter(dim=breakdown).annotate(**annotations)
        for r in part.values(*names, "value", "currency").annotate(**_SUMS).order_by():
            group = tuple(r[n] for n in names)
            _add(row((*group, r["value"])).metric, r)
            if rest:
                _add(row((*group, "")).metric, r, sign=-1)
        if rest:
            for r in whole_rows:
                _add(row((*(r[n] for n in names), "")).metric, r)
    totals = MetricRow(key="total", label="Total")
    for r in whole_rows:  # the whole cells, grouped: their sum is the total
        _add(totals, r)
    return [r for r in rows.values() if not _empty(r.metric)], totals


def _sortable_parts(r: _Row) -> tuple[Any, ...]:
    # Each part holds one kind of value (dates, ids or breakdown text): compared as they are.
    return tuple(r.parts.values())


def _ordered(
    key: tuple[Any, ...], plain: list[str], breakdown: str | None, query: TableQuery
) -> list[Any]:
    by_group = dict(zip([*plain, *([breakdown] if breakdown else [])], key, strict=True))
    return [by_group[g] for g in query.group_by]


def _id(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value in (None, 0) else str(value)


def _label(rows: list[_Row], organization: Organization, query: TableQuery) -> None:
    from leadrelay.reporting.selectors import affiliate_labels  # selectors build on this

    wanted: dict[str, set[Any]] = defaultdict(set)
    for r in rows:
        for group, value in r.parts.items():
            wanted[group].add(value)
    names: dict[str, dict[Any, str]] = {}
    if "offer" in wanted:
        names["offer"] = dict(
            Offer.objects.filter(pk__in=wanted["offer"]).values_list("pk", "name")
        )
    if "affiliate" in wanted:
        ids = [None if v == 0 else v for v in wanted["affiliate"]]
        by_id = affiliate_labels(organization, ids)
        names["affiliate"] = {0 if k is None else k: v for k, v in by_id.items()}
    if "variant" in wanted:
        ids = [int(v) for v in wanted["variant"] if str(v).isdigit()]
        names["variant"] = {
            str(pk): name
            for pk, name in LandingVariant.objects.filter(pk__in=ids).values_list("pk", "name")
        }
    # Each value's label, id and key text once (a month by day is 30 dates over thousands
    # of rows).
    seen: dict[tuple[str, Any], tuple[str, str, str]] = {}
    for r in rows:
        found = []
        for group, value in r.parts.items():
            got = seen.get((group, value))
            if got is None:
                if group == "day":
                    shown = value.isoformat()
                elif value in ("", None):
                    shown = NONE_LABEL
                else:
                    shown = names.get(group, {}).get(value, str(value))
                got = seen[(group, value)] = (shown, _id(value), str(value))
            found.append(got)
        r.metric.key = "|".join(text for _, _, text in found)
        r.metric.label = " · ".join(shown for shown, _, _ in found)
        r.metric.parts = {g: shown for g, (shown, _, _) in zip(r.parts, found, strict=True)}
        r.metric.ids = {g: i for g, (_, i, _) in zip(r.parts, found, strict=True)}
