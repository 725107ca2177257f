"""Dashboard numbers from the report rollups (reporting/rollups.py), scoped per organization.

Counts are by the day a click or lead arrived; money by the day it was booked
in the ledger, so the money here always equals the ledger's. Days are the
viewer's (UTC unless asked).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.reporting.metrics import MetricRow
from leadrelay.reporting.tables import (
    TableQuery,
    Visibility,
    bounds,
    report_table,
    visibility_for,
)

DIMENSIONS = ("day", "offer", "affiliate", "sub1")  # the dashboard's breakdowns


@dataclass
class Report:
    start: dt.date
    end: dt.date
    visibility: Visibility
    totals: MetricRow
    breakdowns: dict[str, list[MetricRow]]
    previous: MetricRow  # the totals of the period of the same length just before

    @property
    def currencies(self) -> list[str]:
        return sorted(self.totals.money)


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants a report over the UTC days start…end (inclusive) runs between."""
    return bounds(start, end, "UTC")


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


def dashboard_report(
    *, organization: Organization, start: dt.date, end: dt.date, tz: str = "UTC"
) -> Report:
    """Totals and breakdowns for the days start…end (inclusive) of time zone `tz`, as this
    organization may see them (reporting/tables.py)."""
    visibility = visibility_for(organization)
    breakdowns: dict[str, list[MetricRow]] = {}
    table = None
    for dim in (d for d in DIMENSIONS if d in visibility.groups):
        query = TableQuery(start=start, end=end, group_by=(dim,), tz=tz)
        table = report_table(organization=organization, query=query)
        breakdowns[dim] = table.rows
    if table is None:  # no breakdown to show: the totals alone
        table = report_table(
            organization=organization, query=TableQuery(start=start, end=end, group_by=(), tz=tz)
        )
    return Report(
        start=start,
        end=end,
        visibility=visibility,
        totals=table.totals,
        breakdowns=breakdowns,
        previous=table.previous,
    )
