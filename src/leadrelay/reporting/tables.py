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
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncDate

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import Invalid, Problem
from leadrelay.offers.models import LandingVariant, Offer
from leadrelay.reporting.metrics import MetricRow
from leadrelay.reporting.models import Rollup
from leadrelay.reporting.rollups import BREAKDOWNS, COLUMNS

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
    previous: MetricRow  # the previous period's totals
    truncated: bool = False  # more rows than MAX_ROWS: the first ones by leads are shown

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
    if query.start > query.end:  # the length is for callers to bound (api.report_range)
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
    if r["currency"]:
        money = target.money_for(r["currency"])
        money.revenue_minor += sign * (r["revenue_minor"] or 0)
        money.payout_minor += sign * (r["payout_minor"] or 0)
        return
    target.clicks += sign * (r["clicks"] or 0)
    target.unique_clicks += sign * (r["unique_clicks"] or 0)
    target.leads += sign * (r["leads"] or 0)
    target.approved += sign * (r["approved"] or 0)
    target.rejected += sign * ((r["rejected"] or 0) + (r["duplicate"] or 0))
    target.duplicates += sign * (r["duplicate"] or 0)
    target.pending += sign * (r["pending"] or 0)
    target.returned += sign * (r["returned"] or 0)


def _empty(metric: MetricRow) -> bool:
    counts = (metric.clicks, metric.leads, metric.approved, metric.rejected, metric.pending,
              metric.returned, metric.unique_clicks)  # fmt: skip
    money = any(m.revenue_minor or m.payout_minor for m in metric.money.values())
    return not any(counts) and not money


def _period_cells(organization: Organization, query: TableQuery) -> QuerySet[Rollup]:
    lo, hi = bounds(query.start, query.end, query.tz)
    cells = scoped_cells(organization).filter(hour__gte=lo, hour__lt=hi)
    if query.offer_id is not None:
        cells = cells.filter(offer_id=query.offer_id)
    if query.affiliate_id is not None:
        cells = cells.filter(affiliate_id=query.affiliate_id)
    return cells


def _totals(cells: QuerySet[Rollup]) -> MetricRow:
    totals = MetricRow(key="total", label="Total")
    for r in cells.filter(dim="").values("currency").annotate(**_SUMS).order_by():
        _add(totals, r)
    return totals


def report_table(*, organization: Organization, query: TableQuery) -> Table:
    """The report for this organization; Invalid when the query is not one it may run."""
    problems = table_problems(organization, query)
    if problems:
        raise Invalid(problems)
    cells = _period_cells(organization, query)
    plain = [g for g in query.group_by if g in PLAIN]
    breakdown = next((g for g in query.group_by if g in BREAKDOWNS), None)
    paths = {
        "day": TruncDate("hour", tzinfo=zoneinfo.ZoneInfo(query.tz)),
        "offer": F("offer_id"),
        "affiliate": F("affiliate_id"),
    }
    annotations = {f"g_{g}": paths[g] for g in plain}
    names = list(annotations)
    rows: dict[tuple[Any, ...], _Row] = {}

    def row(key: tuple[Any, ...]) -> _Row:
        if key not in rows:
            parts = dict(zip(query.group_by, _ordered(key, plain, breakdown, query), strict=True))
            rows[key] = _Row(parts=parts)
        return rows[key]

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
    kept = [r for r in rows.values() if not _empty(r.metric)]
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
    totals = MetricRow(key="total", label="Total")
    for r in whole_rows:  # the whole cells, grouped: their sum is the total
        _add(totals, r)
    return Table(
        query=query,
        visibility=visibility_for(organization),
        rows=[r.metric for r in kept],
        totals=totals,
        previous=_totals(_period_cells(organization, query.previous())),
        truncated=truncated,
    )


def _sortable_parts(r: _Row) -> tuple[tuple[int, str], ...]:
    return tuple(_sortable(value) for value in r.parts.values())


def _ordered(
    key: tuple[Any, ...], plain: list[str], breakdown: str | None, query: TableQuery
) -> list[Any]:
    by_group = dict(zip([*plain, *([breakdown] if breakdown else [])], key, strict=True))
    return [by_group[g] for g in query.group_by]


def _id(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value in (None, 0) else str(value)


def _sortable(value: Any) -> tuple[int, str]:
    if isinstance(value, dt.date):
        return (0, value.isoformat())
    return (1, str(value))


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
    for r in rows:
        shown = []
        for group, value in r.parts.items():
            if group == "day":
                shown.append(value.isoformat())
            elif value in ("", None):
                shown.append(NONE_LABEL)
            else:
                shown.append(names.get(group, {}).get(value, str(value)))
        r.metric.key = "|".join(str(v) for v in r.parts.values())
        r.metric.label = " · ".join(shown)
        r.metric.parts = dict(zip(r.parts, shown, strict=True))
        r.metric.ids = {g: _id(v) for g, v in r.parts.items()}
