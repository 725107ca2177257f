from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from leadrelay.accounts.models import Membership, OrganizationKind
from leadrelay.core.errors import DomainError
from leadrelay.portals.access import portal_view
from leadrelay.portals.forms import DateRangeForm
from leadrelay.reporting.api import report_range
from leadrelay.reporting.attribution import MODELS, attribution_comparison, credit_format
from leadrelay.reporting.forms import QualityForm
from leadrelay.reporting.quality import groupings_for, lead_quality_report


@portal_view(OrganizationKind.NETWORK, OrganizationKind.ADVERTISER)
def attribution(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = DateRangeForm(request.GET or None)
    try:
        start, end = report_range(*form.range())
    except DomainError:
        start, end = report_range(None, None)
    report = attribution_comparison(organization=membership.organization, start=start, end=end)
    rows = [
        {"label": r.label, "values": [credit_format(r.credit_bp[m]) for m in MODELS]}
        for r in report.rows
    ]
    return render(
        request, "reporting/attribution.html", {"form": form, "report": report, "rows": rows}
    )


@portal_view()
def quality(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    form = QualityForm(request.GET or None, groupings=groupings_for(organization))
    try:
        start, end = report_range(*form.range())
    except DomainError:
        start, end = report_range(None, None)
    report = lead_quality_report(
        organization=organization, start=start, end=end, group_by=form.grouping()
    )
    return render(request, "reporting/quality.html", {"form": form, "report": report})
