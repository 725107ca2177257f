from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString

from leadrelay.accounts.models import Membership, Organization, OrganizationKind
from leadrelay.core.dateranges import DateRangeForm, date_range_resolve
from leadrelay.core.errors import Invalid, Problem
from leadrelay.offers.selectors import offers_visible_to
from leadrelay.portals.access import portal_view
from leadrelay.reporting.attribution import MODELS, attribution_comparison, credit_format
from leadrelay.reporting.charts import bar_chart, day_points, line_chart, top_points
from leadrelay.reporting.exports import (
    Column,
    Grid,
    cell_format,
    report_csv,
    report_filename,
    report_grid,
    report_xlsx,
)
from leadrelay.reporting.forms import COMMON_TIME_ZONES, QualityForm, ReportForm
from leadrelay.reporting.quality import groupings_for, lead_quality_report
from leadrelay.reporting.tables import (
    BREAKDOWNS,
    PLAIN,
    Table,
    TableQuery,
    report_table,
    visibility_for,
)


def _status(form: DateRangeForm) -> int:
    # A page whose filter is refused shows the default period, with the form's errors.
    return 422 if form.errors else 200


@portal_view(OrganizationKind.NETWORK, OrganizationKind.ADVERTISER)
def attribution(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = DateRangeForm(request.GET or None)
    start, end = form.period()
    report = attribution_comparison(organization=membership.organization, start=start, end=end)
    rows = [
        {"label": r.label, "values": [credit_format(r.credit_bp[m]) for m in MODELS]}
        for r in report.rows
    ]
    context = {"form": form, "report": report, "rows": rows}
    return render(request, "reporting/attribution.html", context, status=_status(form))


@portal_view()
def quality(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    form = QualityForm(request.GET or None, groupings=groupings_for(organization))
    start, end = form.period()
    report = lead_quality_report(
        organization=organization, start=start, end=end, group_by=form.grouping()
    )
    context = {"form": form, "report": report}
    return render(request, "reporting/quality.html", context, status=_status(form))


@dataclass
class _Report:
    form: ReportForm
    problems: list[Problem] = field(default_factory=list)
    table: Table | None = None
    grid: Grid | None = None


def _report_form(request: HttpRequest, organization: Organization) -> ReportForm:
    offers = list(
        offers_visible_to(organization=organization).order_by("name").values_list("pk", "name")
    )
    affiliates: list[tuple[int, str]] | None = None
    if organization.kind == OrganizationKind.NETWORK:
        affiliates = list(
            Organization.objects.filter(kind=OrganizationKind.AFFILIATE)
            .order_by("name")
            .values_list("pk", "name")
        )
    # Neither users nor organizations carry a time zone yet: UTC unless one is asked for.
    return ReportForm(request.GET or None, offers=offers, affiliates=affiliates)


def _report(request: HttpRequest, organization: Organization) -> _Report:
    """The report the query string asks for, or the problems that stop it."""
    form = _report_form(request, organization)
    report = _Report(form=form)
    if form.data and not form.is_valid():
        return report
    try:
        start, end = date_range_resolve(*form.range())
        affiliate = form.value("affiliate")
        query = TableQuery(
            start=start,
            end=end,
            group_by=form.group_by(),
            tz=form.time_zone(),
            offer_id=form.value("offer"),  # type: ignore[arg-type]
            affiliate_id=None if organization.kind == OrganizationKind.AFFILIATE else affiliate,  # type: ignore[arg-type]
        )
        report.table = report_table(organization=organization, query=query)
    except Invalid as exc:
        report.problems = exc.problems
        return report
    currencies = report.table.currencies
    wanted = form.value("currency")
    currency = wanted if wanted in currencies else (currencies[0] if currencies else "")
    report.grid = report_grid(report.table, kind=organization.kind, currency=str(currency))
    return report


def _charts(organization: Organization, report: _Report) -> tuple[Column | None, list[SafeString]]:
    """The chosen metric by day, and by the first grouping other than day (its top ten)."""
    table, grid = report.table, report.grid
    assert table is not None and grid is not None
    choices = [c for c in grid.columns if c.additive]
    metric = next((c for c in choices if c.key == report.form.value("metric")), None)
    metric = metric or next(c for c in choices if c.key == "leads")

    def value(row: object) -> int:
        return metric.value(row, grid.currency) or 0  # type: ignore[arg-type]

    def fmt(n: int) -> str:
        return cell_format(metric, n, grid.currency)

    query = table.query
    by_day = table if query.group_by == ("day",) else _regroup(organization, query, ("day",))
    charts = [
        line_chart(
            title=f"{metric.title} by day",
            points=day_points(by_day.rows, query.start, query.end, value),
            y_label=metric.title + (f" ({grid.currency})" if metric.kind == "money" else ""),
            fmt=fmt,
            x_label=f"Day ({query.tz})",
        )
    ]
    group = next((g for g in query.group_by if g != "day"), None)
    if group is not None:
        by_group = table if query.group_by == (group,) else _regroup(organization, query, (group,))
        title = grid.group_titles[query.group_by.index(group)]
        charts.append(
            bar_chart(
                title=f"{metric.title} by {title.lower()} (top ten)",
                bars=top_points(by_group.rows, value),
                x_label=metric.title,
                y_label=title,
                fmt=fmt,
            )
        )
    return metric, charts


def _regroup(organization: Organization, query: TableQuery, group_by: tuple[str, ...]) -> Table:
    return report_table(
        organization=organization,
        query=TableQuery(
            query.start, query.end, group_by, query.tz, query.offer_id, query.affiliate_id
        ),
    )


@portal_view()
def reports(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    report = _report(request, organization)
    allowed = visibility_for(organization).groups
    context: dict[str, object] = {
        "form": report.form,
        "problems": report.problems,
        "table": report.table,
        "grid": report.grid,
        "plain_groups": [g for g in PLAIN if g in allowed],
        "breakdowns": [g for g in BREAKDOWNS if g in allowed],
        "chosen": report.form.group_by(),
        "time_zones": COMMON_TIME_ZONES,
        "query": request.GET.urlencode(),
    }
    if report.grid is not None:
        context["metric"], context["charts"] = _charts(organization, report)
        context["metrics"] = [c for c in report.grid.columns if c.additive]
    status = 422 if report.problems or report.form.errors else 200
    return render(request, "reporting/reports.html", context, status=status)


@portal_view()
def report_export(request: HttpRequest, membership: Membership, extension: str) -> HttpResponse:
    """The Reports page's table as CSV or XLSX, for the same query string."""
    report = _report(request, membership.organization)
    if report.grid is None or report.table is None:
        problems = report.problems or [
            Problem("invalid", f"{name}: {' '.join(str(e) for e in errors)}", name)
            for name, errors in report.form.errors.items()
        ]
        text = "\n".join(p.message for p in problems) + "\n"
        return HttpResponse(text, status=422, content_type="text/plain; charset=utf-8")
    filename = report_filename(report.table, extension)
    if extension == "csv":
        response = HttpResponse(report_csv(report.grid), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(
            report_xlsx(report.grid),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
