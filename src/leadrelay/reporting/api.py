from __future__ import annotations

import datetime as dt
from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Router, Schema

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.core.bounds import ID_MAX, Day, Id
from leadrelay.core.dateranges import date_range_resolve
from leadrelay.core.schemas import ErrorOut
from leadrelay.reporting.attribution import attribution_comparison
from leadrelay.reporting.metrics import MetricRow
from leadrelay.reporting.quality import QualityRow, lead_quality_report
from leadrelay.reporting.selectors import Report, dashboard_report
from leadrelay.reporting.tables import MAX_ROWS, TableQuery, Visibility, report_table

router = Router(tags=["reports"])
# Rollups keep leads without an affiliate (Direct) under affiliate 0.
AffiliateFilter = Annotated[
    int, Field(ge=0, le=ID_MAX, description="An affiliate's id; 0: leads without one (Direct).")
]


class MoneyOut(Schema):
    currency: str
    revenue_minor: int | None
    payout_minor: int | None
    profit_minor: int | None


class RowOut(Schema):
    key: str
    label: str
    clicks: int
    leads: int
    approved: int
    rejected: int
    pending: int
    conversion_rate_bp: int | None = Field(..., description="Leads per click, basis points.")
    approval_rate_bp: int | None = Field(..., description="Approved per decided lead, bp.")
    money: list[MoneyOut]


class ReportOut(Schema):
    start: dt.date
    end: dt.date
    totals: RowOut
    breakdowns: dict[str, list[RowOut]]


def _row(metric: MetricRow, report: Report) -> RowOut:
    vis = report.visibility
    return RowOut(
        key=metric.key,
        label=metric.label,
        clicks=metric.clicks,
        leads=metric.leads,
        approved=metric.approved,
        rejected=metric.rejected,
        pending=metric.pending,
        conversion_rate_bp=metric.conversion_rate_bp,
        approval_rate_bp=metric.approval_rate_bp,
        money=[
            MoneyOut(
                currency=currency,
                revenue_minor=m.revenue_minor if vis.revenue else None,
                payout_minor=m.payout_minor if vis.payout else None,
                profit_minor=m.profit_minor if vis.profit else None,
            )
            for currency, m in sorted(metric.money.items())
        ],
    )


@router.get("/reports/summary", auth=ApiKeyAuth(), response=ReportOut)
def reports_summary(
    request: HttpRequest, start: Day | None = None, end: Day | None = None
) -> ReportOut:
    """Clicks, leads, decisions and money for your organization, with breakdowns."""
    org = request_api_key(request).organization
    start, end = date_range_resolve(start, end)
    report = dashboard_report(organization=org, start=start, end=end)
    return ReportOut(
        start=report.start,
        end=report.end,
        totals=_row(report.totals, report),
        breakdowns={k: [_row(m, report) for m in v] for k, v in report.breakdowns.items()},
    )


class TableMoneyOut(Schema):
    currency: str
    revenue_minor: int | None = Field(..., description="null when your role doesn't see it.")
    payout_minor: int | None
    profit_minor: int | None
    margin_bp: int | None = Field(..., description="Profit ÷ revenue, basis points.")
    roi_bp: int | None = Field(..., description="Profit ÷ payout, basis points.")
    epc_minor: int | None = Field(..., description="Payout ÷ clicks.")
    cpl_minor: int | None = Field(..., description="Revenue ÷ approved leads.")


class TableRowOut(Schema):
    key: str
    label: str
    ids: dict[str, str] = Field(
        ..., description="Per grouping, its key: the day, the offer or affiliate id, the value."
    )
    parts: dict[str, str] = Field(..., description="Per grouping, its label.")
    clicks: int
    unique_clicks: int
    leads: int
    approved: int
    rejected: int = Field(..., description="Rejected and duplicate.")
    duplicates: int
    pending: int
    returned: int
    conversion_rate_bp: int | None
    approval_rate_bp: int | None
    return_rate_bp: int | None
    money: list[TableMoneyOut]


class TableOut(Schema):
    start: dt.date
    end: dt.date
    tz: str
    group_by: list[str]
    rows: list[TableRowOut]
    totals: TableRowOut
    previous: TableRowOut = Field(..., description="The period of the same length just before.")
    truncated: bool = Field(..., description=f"More than {MAX_ROWS} rows: the first are shown.")


def table_row_out(metric: MetricRow, visibility: Visibility) -> TableRowOut:
    """A report row as the API shows it to a role (hidden money is null)."""
    money = []
    for currency, m in sorted(metric.money.items()):
        money.append(
            TableMoneyOut(
                currency=currency,
                revenue_minor=m.revenue_minor if visibility.revenue else None,
                payout_minor=m.payout_minor if visibility.payout else None,
                profit_minor=m.profit_minor if visibility.profit else None,
                margin_bp=m.margin_bp if visibility.profit else None,
                roi_bp=m.roi_bp if visibility.profit else None,
                epc_minor=metric.epc_minor(currency) if visibility.payout else None,
                cpl_minor=metric.cpl_minor(currency) if visibility.revenue else None,
            )
        )
    return TableRowOut(
        key=metric.key,
        label=metric.label,
        ids=metric.ids,
        parts=metric.parts,
        clicks=metric.clicks,
        unique_clicks=metric.unique_clicks,
        leads=metric.leads,
        approved=metric.approved,
        rejected=metric.rejected,
        duplicates=metric.duplicates,
        pending=metric.pending,
        returned=metric.returned,
        conversion_rate_bp=metric.conversion_rate_bp,
        approval_rate_bp=metric.approval_rate_bp,
        return_rate_bp=metric.return_rate_bp,
        money=money,
    )


def group_by_parse(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@router.get("/reports", auth=ApiKeyAuth(), response={200: TableOut, 401: ErrorOut, 422: ErrorOut})
def reports_table(
    request: HttpRequest,
    start: Day | None = None,
    end: Day | None = None,
    group_by: str = "day",
    tz: str = "UTC",
    offer_id: Id | None = None,
    affiliate_id: AffiliateFilter | None = None,
) -> TableOut:
    """Any report table, as on the Reports page and in its exports: `group_by` is a
    comma-separated list of day, offer, affiliate and at most one of sub1…sub5, country,
    device, variant, reason (those your role may use); days are `tz`'s. Numbers you may
    not see are null; rows are only your organization's."""
    organization = request_api_key(request).organization
    start, end = date_range_resolve(start, end)
    query = TableQuery(
        start=start,
        end=end,
        group_by=group_by_parse(group_by),
        tz=tz,
        offer_id=offer_id,
        affiliate_id=affiliate_id,
    )
    table = report_table(organization=organization, query=query)
    vis = table.visibility
    return TableOut(
        start=start,
        end=end,
        tz=tz,
        group_by=list(query.group_by),
        rows=[table_row_out(r, vis) for r in table.rows],
        totals=table_row_out(table.totals, vis),
        previous=table_row_out(table.previous, vis),
        truncated=table.truncated,
    )


class CreditOut(Schema):
    affiliate_id: int
    label: str
    credit_bp: dict[str, int] = Field(
        ..., description="Per model, conversions credited in basis points (10000 = one)."
    )


class AttributionOut(Schema):
    start: dt.date
    end: dt.date
    conversions: int
    single_click: int
    rows: list[CreditOut]


@router.get(
    "/reports/attribution",
    auth=ApiKeyAuth(OrganizationKind.NETWORK, OrganizationKind.ADVERTISER),
    response=AttributionOut,
)
def reports_attribution(
    request: HttpRequest, start: Day | None = None, end: Day | None = None
) -> AttributionOut:
    """Last-click, first-click, linear and time-decay credit per affiliate, compared."""
    start, end = date_range_resolve(start, end)
    report = attribution_comparison(
        organization=request_api_key(request).organization, start=start, end=end
    )
    return AttributionOut(
        start=report.start,
        end=report.end,
        conversions=report.conversions,
        single_click=report.single_click,
        rows=[
            CreditOut(affiliate_id=r.affiliate_id, label=r.label, credit_bp=r.credit_bp)
            for r in report.rows
        ],
    )


class QualityRowOut(Schema):
    affiliate_id: int | None = Field(..., description="None for leads without an affiliate.")
    sub: str | None = Field(..., description="The sub id's value when grouped by one.")
    label: str
    leads: int
    accepted: int = Field(..., description="Approved or waiting for review.")
    refused: int = Field(..., description="Rejected or duplicate.")
    refusal_rate_bp: int | None = Field(..., description="Refused per lead, basis points.")
    refused_by_reason: dict[str, int] = Field(
        ..., description='Refused leads per reason prefix ("not_qualified", "cap_reached").'
    )
    refused_by_code: dict[str, int] = Field(
        ..., description='Refused leads per full reason code ("not_qualified:owner").'
    )
    signals: dict[str, int] = Field(..., description="Leads per quality signal.")


class QualityOut(Schema):
    start: dt.date
    end: dt.date
    group_by: str
    totals: QualityRowOut
    rows: list[QualityRowOut]


def _quality_row(row: QualityRow) -> QualityRowOut:
    return QualityRowOut(
        affiliate_id=row.affiliate_id,
        sub=row.sub,
        label=row.label,
        leads=row.leads,
        accepted=row.accepted,
        refused=row.refused,
        refusal_rate_bp=row.refusal_rate_bp,
        refused_by_reason=dict(row.refused_by_reason),
        refused_by_code=dict(row.refused_by_code),
        signals=dict(row.signals),
    )


@router.get("/reports/quality", auth=ApiKeyAuth(), response=QualityOut)
def reports_quality(
    request: HttpRequest,
    start: Day | None = None,
    end: Day | None = None,
    group_by: str = "affiliate",
) -> QualityOut:
    """Leads accepted and refused, by reason, per affiliate or per affiliate and sub id."""
    start, end = date_range_resolve(start, end)
    report = lead_quality_report(
        organization=request_api_key(request).organization,
        start=start,
        end=end,
        group_by=group_by,
    )
    return QualityOut(
        start=report.start,
        end=report.end,
        group_by=report.group_by,
        totals=_quality_row(report.totals),
        rows=[_quality_row(r) for r in report.rows],
    )
