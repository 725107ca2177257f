"""Dashboard numbers from the report rollups (reporting/rollups.py), scoped per organization.

Counts are by the day a click or lead arrived; money by the day it was booked
in the ledger, so the money here always equals the ledger's. Days are UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncDate

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.offers.models import Offer
from leadrelay.reporting.metrics import MetricRow
from leadrelay.reporting.models import Rollup
from leadrelay.reporting.rollups import COLUMNS

DIMENSIONS = ("day", "offer", "affiliate", "sub1")


@dataclass(frozen=True)
class Visibility:
    """Which columns and breakdowns a role may see."""

    revenue: bool
    payout: bool
    dimensions: tuple[str, ...]

    @property
    def profit(self) -> bool:
        return self.revenue and self.payout


def visibility_for(organization: Organization) -> Visibility:
    if organization.kind == OrganizationKind.NETWORK:
        return Visibility(True, True, ("day", "offer", "affiliate", "sub1"))
    if organization.kind == OrganizationKind.ADVERTISER:
        # What it pays, never what affiliates earn; sources by id, not by name.
        return Visibility(True, False, ("day", "offer", "affiliate"))
    return Visibility(False, True, ("day", "offer", "sub1"))


@dataclass
class Report:
    start: dt.date
    end: dt.date
    visibility: Visibility
    totals: MetricRow
    breakdowns: dict[str, list[MetricRow]]

    @property
    def currencies(self) -> list[str]:
        return sorted(self.totals.money)


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants a report over the UTC days start…end (inclusive) runs between."""
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC),
    )


def _cells(organization: Organization, start: dt.date, end: dt.date) -> QuerySet[Rollup]:
    """The rollup cells of the days start…end this organization may see."""
    lo, hi = day_bounds(start, end)
    cells = Rollup.objects.filter(hour__gte=lo, hour__lt=hi)
    if organization.kind == OrganizationKind.ADVERTISER:
        return cells.filter(offer_id__in=Offer.objects.filter(advertiser=organization).values("pk"))
    if organization.kind == OrganizationKind.AFFILIATE:
        return cells.filter(affiliate_id=organization.pk)
    return cells


_SUMS = {column: Sum(column) for column in COLUMNS}


def _add(target: MetricRow, r: dict[str, Any], sign: int = 1) -> None:
    if r["currency"]:
        money = target.money_for(r["currency"])
        money.revenue_minor += sign * (r["revenue_minor"] or 0)
        money.payout_minor += sign * (r["payout_minor"] or 0)
        return
    target.clicks += sign * (r["clicks"] or 0)
    target.leads += sign * (r["leads"] or 0)
    target.approved += sign * (r["approved"] or 0)
    target.rejected += sign * ((r["rejected"] or 0) + (r["duplicate"] or 0))
    target.pending += sign * (r["pending"] or 0)


def _grouped(
    organization: Organization, start: dt.date, end: dt.date, dim: str | None
) -> dict[Any, MetricRow]:
    """Metric rows by the breakdown `dim` (None: one row, the total), from the rollups:
    counts by the day a click or lead arrived, money by the day it was booked (UTC days)."""
    cells = _cells(organization, start, end)
    rows: dict[Any, MetricRow] = {}

    def row(key: Any) -> MetricRow:
        return rows.setdefault(key, MetricRow(key=str(key), label=str(key)))

    whole = cells.filter(dim="")
    if dim is None:
        for r in whole.values("currency").annotate(**_SUMS).order_by():
            _add(row(None), r)
        return rows
    if dim in ("day", "offer", "affiliate"):
        path = {
            "day": TruncDate("hour", tzinfo=dt.UTC),
            "offer": F("offer_id"),
            "affiliate": F("affiliate_id"),
        }[dim]
        for r in whole.annotate(k=path).values("k", "currency").annotate(**_SUMS).order_by():
            key = None if dim == "affiliate" and r["k"] == 0 else r["k"]
            _add(row(key), r)
        return rows
    # A breakdown by value: the cells that have one, and "" for the rest (the whole less
    # them), since empty values are not stored.
    for r in cells.filter(dim=dim).values("value", "currency").annotate(**_SUMS).order_by():
        _add(row(r["value"]), r)
    rest = row("")
    for r in whole.values("currency").annotate(**_SUMS).order_by():
        _add(rest, r)
    for r in cells.filter(dim=dim).values("currency").annotate(**_SUMS).order_by():
        _add(rest, r, sign=-1)
    if not (
        rest.clicks
        or rest.leads
        or any(m.revenue_minor or m.payout_minor for m in rest.money.values())
    ):
        del rows[""]
    return rows


def affiliate_labels(organization: Organization, ids: list[Any]) -> dict[Any, str]:
    """How an organization sees affiliates in reports: the network by name, an advertiser
    as "Source #<id>", an affiliate itself by its own name; leads without one as "Direct"."""
    if organization.kind == OrganizationKind.NETWORK:
        names = dict(Organization.objects.filter(pk__in=ids).values_list("pk", "name"))
        return {i: names.get(i, f"#{i}") if i is not None else "Direct" for i in ids}
    return {
        i: "Direct" if i is None else organization.name if i == organization.pk else f"Source #{i}"
        for i in ids
    }


def _labels(dim: str, keys: list[Any], organization: Organization) -> dict[Any, str]:
    if dim == "offer":
        return dict(Offer.objects.filter(pk__in=keys).values_list("pk", "name"))
    if dim == "affiliate":
        return affiliate_labels(organization, keys)
    if dim == "day":
        return {k: k.isoformat() if k else "" for k in keys}
    return {k: k or "(none)" for k in keys}


def dashboard_report(*, organization: Organization, start: dt.date, end: dt.date) -> Report:
    """Totals and breakdowns for the days start…end (inclusive), as this organization may see."""
    visibility = visibility_for(organization)
    totals = _grouped(organization, start, end, None).get(None) or MetricRow(key="", label="Total")
    totals.key = totals.label = "Total"
    breakdowns: dict[str, list[MetricRow]] = {}
    for dim in visibility.dimensions:
        grouped = _grouped(organization, start, end, dim)
        labels = _labels(dim, list(grouped), organization)
        rows = []
        for key, metric in grouped.items():
            metric.label = labels.get(key, str(key))
            rows.append(metric)
        if dim == "day":
            rows.sort(key=lambda m: m.key)
        else:
            rows.sort(key=lambda m: (-m.leads, -m.clicks, m.label))
        breakdowns[dim] = rows
    return Report(start=start, end=end, visibility=visibility, totals=totals, breakdowns=breakdowns)
