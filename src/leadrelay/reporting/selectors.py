"""Dashboard numbers from raw rows (clicks, leads, ledger entries), scoped per organization.

Counts are by the day a click or lead arrived; money by the day it was booked
in the ledger, so the money here always equals the ledger's. Days are UTC.
Rollups replace the raw scans when reporting grows (ROADMAP 6).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.models import AccountRole, Entry, TransactionKind
from leadrelay.offers.models import Offer
from leadrelay.reporting.metrics import MetricRow
from leadrelay.tracking.models import Click, Fallback

DIMENSIONS = ("day", "offer", "affiliate", "sub1")
# The grouping expression for each dimension in clicks, leads and ledger entries.
SALE_KINDS = [
    TransactionKind.LEAD_APPROVED,
    TransactionKind.CLICKS,
    TransactionKind.CONVERSION,
    TransactionKind.SALE,
]

_PATHS: dict[str, tuple[Any, Any, Any]] = {
    "day": (
        TruncDate("created_at", tzinfo=dt.UTC),
        TruncDate("created_at", tzinfo=dt.UTC),
        TruncDate("transaction__posted_at", tzinfo=dt.UTC),
    ),
    "offer": (F("offer_id"), F("offer_id"), F("transaction__offer_id")),
    "affiliate": (F("affiliate_id"), F("affiliate_id"), F("transaction__affiliate_id")),
    "sub1": (F("sub1"), F("sub1"), F("transaction__lead__sub1")),
}


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


def _scoped(qs: QuerySet[Any], organization: Organization, offer: str, affiliate: str) -> Any:
    if organization.kind == OrganizationKind.ADVERTISER:
        return qs.filter(**{f"{offer}__advertiser": organization})
    if organization.kind == OrganizationKind.AFFILIATE:
        return qs.filter(**{affiliate: organization})
    return qs


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants a report over the UTC days start…end (inclusive) runs between."""
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC),
    )


def _group(
    qs: QuerySet[Any], path: Any, extra: tuple[str, ...], **aggregates: Any
) -> list[dict[str, Any]]:
    """Aggregate `qs` by `path` (and the `extra` fields), or over all of it when path is None."""
    if path is None:
        if extra:
            rows = list(qs.values(*extra).annotate(**aggregates).order_by())
            return [{"k": None, **r} for r in rows]
        return [{"k": None, **qs.aggregate(**aggregates)}]
    return list(qs.annotate(k=path).values("k", *extra).annotate(**aggregates).order_by())


def _grouped(
    organization: Organization, start: dt.date, end: dt.date, dim: str | None
) -> dict[Any, MetricRow]:
    lo, hi = day_bounds(start, end)
    rows: dict[Any, MetricRow] = {}

    def row(key: Any) -> MetricRow:
        return rows.setdefault(key, MetricRow(key=str(key), label=str(key)))

    click_path, lead_path, entry_path = _PATHS[dim] if dim else (None, None, None)
    clicks = _scoped(
        # Bots and clicks the offer refused (sent to a fallback URL or nowhere) don't count;
        # a click sent to a fallback offer counts for that offer.
        Click.objects.filter(created_at__gte=lo, created_at__lt=hi, is_bot=False).exclude(
            fallback__in=[Fallback.URL, Fallback.NONE]
        ),
        organization,
        "offer",
        "affiliate",
    )
    for r in _group(clicks, click_path, (), n=Count("id")):
        if r["n"]:
            row(r["k"]).clicks += r["n"]

    leads = _scoped(
        Lead.objects.filter(created_at__gte=lo, created_at__lt=hi),
        organization,
        "offer",
        "affiliate",
    )
    lead_counts = _group(
        leads,
        lead_path,
        (),
        n=Count("id"),
        approved=Count("id", filter=Q(status=LeadStatus.APPROVED)),
        rejected=Count("id", filter=Q(status__in=[LeadStatus.REJECTED, LeadStatus.DUPLICATE])),
        pending=Count("id", filter=Q(status=LeadStatus.PENDING_REVIEW)),
    )
    for r in lead_counts:
        if not r["n"]:
            continue
        target = row(r["k"])
        target.leads += r["n"]
        target.approved += r["approved"]
        target.rejected += r["rejected"]
        target.pending += r["pending"]

    # Money is what sales booked (leads, clicks, conversions) less their reversals and
    # returns, by the day it was booked; payments, payouts and adjustments are not sales.
    entries = _scoped(
        Entry.objects.filter(
            Q(transaction__kind__in=SALE_KINDS)
            | Q(
                transaction__kind=TransactionKind.REVERSAL,
                transaction__reverses__kind__in=SALE_KINDS,
            ),
            transaction__posted_at__gte=lo,
            transaction__posted_at__lt=hi,
            account__role__in=[
                AccountRole.ADVERTISER_RECEIVABLE,
                AccountRole.AFFILIATE_PAYABLE,
                AccountRole.AFFILIATE_PAYABLE_PENDING,
            ],
        ),
        organization,
        "transaction__offer",
        "transaction__affiliate",
    )
    for r in _group(entries, entry_path, ("currency", "account__role"), total=Sum("amount_minor")):
        totals = row(r["k"]).money_for(r["currency"])
        if r["account__role"] == AccountRole.ADVERTISER_RECEIVABLE:
            totals.revenue_minor += r["total"]
        else:
            totals.payout_minor -= r["total"]
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
