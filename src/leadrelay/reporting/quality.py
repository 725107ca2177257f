"""Lead quality per source: how many leads each affiliate (or sub id) sends, how many are
refused, and why — so a network sees which source sends junk.

Leads are counted by the UTC day they arrived. Accepted means approved or waiting
for review; refused means rejected or duplicate. Status counts are aggregated in
the database. Reasons and signals are JSON lists, which SQLite and PostgreSQL
can't group portably, so they are tallied here in Python over a `values_list`
of the period's leads; the period is bounded (core.dateranges.date_range_resolve allows
at most a year) and rollups replace this scan when reporting grows (ROADMAP 6).

Refusal reasons count refused leads only: an accepted lead can carry reasons
too (`over_cap_unpaid` and its cap) but was not refused for them. A lead counts
once per reason prefix (the code before the first ":", so `not_qualified:owner`
and `not_qualified:zip` are one `not_qualified` lead) and once per full code.

Who sees what: the network every lead, with affiliate names; an advertiser the
leads of its offers, with affiliates as "Source #<id>" and no sub ids (they
are the affiliate's business); an affiliate only its own leads.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import Invalid, Problem
from leadrelay.core.money import ratio_bp
from leadrelay.leads.models import LeadStatus
from leadrelay.leads.selectors import leads_visible_to
from leadrelay.reporting.selectors import affiliate_labels, day_bounds

SUB_GROUPINGS = ("sub1", "sub2", "sub3", "sub4", "sub5")
GROUPINGS = ("affiliate", *SUB_GROUPINGS)
ACCEPTED = (LeadStatus.APPROVED, LeadStatus.PENDING_REVIEW)
REFUSED = (LeadStatus.REJECTED, LeadStatus.DUPLICATE)


def reason_prefix(code: str) -> str:
    """`"cap_reached:offer:day"` → `"cap_reached"`; a code without ":" is its own prefix."""
    return code.partition(":")[0]


@dataclass
class QualityRow:
    affiliate_id: int | None
    sub: str | None  # the sub id's value when grouped by one, "" for leads without it
    source: str  # the affiliate as this organization may see it
    leads: int = 0
    accepted: int = 0
    refused: int = 0
    refused_by_reason: Counter[str] = field(default_factory=Counter)  # by prefix
    refused_by_code: Counter[str] = field(default_factory=Counter)  # by full code
    signals: Counter[str] = field(default_factory=Counter)

    @property
    def label(self) -> str:
        if self.sub is None:
            return self.source
        return f"{self.source} · {self.sub or '(none)'}"

    @property
    def refusal_rate_bp(self) -> int | None:
        """Refused leads among all leads, basis points."""
        return ratio_bp(self.refused, self.leads)

    @property
    def refusal_codes(self) -> list[tuple[str, int]]:
        """Full reason codes, most frequent first (templates can't call most_common on a
        Counter: the lookup finds the missing key's 0 first)."""
        return self.refused_by_code.most_common()

    def add(self, other: QualityRow) -> None:
        self.leads += other.leads
        self.accepted += other.accepted
        self.refused += other.refused
        self.refused_by_reason.update(other.refused_by_reason)
        self.refused_by_code.update(other.refused_by_code)
        self.signals.update(other.signals)


@dataclass
class QualityReport:
    start: dt.date
    end: dt.date
    group_by: str
    totals: QualityRow
    rows: list[QualityRow]

    @property
    def reasons(self) -> list[str]:
        """Every refusal reason prefix in the period, most frequent first."""
        return [r for r, _ in self.totals.refused_by_reason.most_common()]

    @property
    def signal_codes(self) -> list[str]:
        return [s for s, _ in self.totals.signals.most_common()]


def groupings_for(organization: Organization) -> tuple[str, ...]:
    """What this organization may group by: advertisers don't see affiliates' sub ids."""
    if organization.kind == OrganizationKind.ADVERTISER:
        return ("affiliate",)
    return GROUPINGS


def lead_quality_report(
    *, organization: Organization, start: dt.date, end: dt.date, group_by: str = "affiliate"
) -> QualityReport:
    """Leads, accepted, refused by reason and signals per source, start…end (UTC days).

    `group_by` is "affiliate" or a sub id ("sub1"…"sub5"), which groups by affiliate
    and that sub id's value. Raises Invalid for a grouping this organization may not use.
    """
    if group_by not in groupings_for(organization):
        allowed = ", ".join(groupings_for(organization))
        raise Invalid([Problem("invalid_group_by", f"Group by one of: {allowed}.", "group_by")])
    sub = group_by if group_by in SUB_GROUPINGS else None
    keys = ("affiliate_id", sub) if sub else ("affiliate_id",)
    lo, hi = day_bounds(start, end)
    leads = (
        leads_visible_to(organization=organization)
        .filter(created_at__gte=lo, created_at__lt=hi)
        .select_related(None)
        .order_by()
    )

    def key_of(values: Any) -> tuple[int | None, str | None]:
        return (values[0], values[1] if sub else None)

    rows: dict[tuple[int | None, str | None], QualityRow] = {}
    counted = leads.values_list(*keys).annotate(
        n=Count("id"),
        accepted=Count("id", filter=Q(status__in=ACCEPTED)),
        refused=Count("id", filter=Q(status__in=REFUSED)),
    )
    for values in counted:
        affiliate_id, sub_value = key_of(values)
        rows[(affiliate_id, sub_value)] = QualityRow(
            affiliate_id=affiliate_id,
            sub=sub_value,
            source="",
            leads=values[-3],
            accepted=values[-2],
            refused=values[-1],
        )

    for values in leads.values_list(*keys, "status", "reasons", "signals").iterator():
        status, reasons, signals = values[-3:]
        row = rows.get(key_of(values))
        if row is None:  # arrived after the counts were taken: in the next report
            continue
        row.signals.update(set(signals or ()))
        if status in REFUSED:
            codes = set(reasons or ())
            row.refused_by_code.update(codes)
            row.refused_by_reason.update({reason_prefix(c) for c in codes})

    sources = affiliate_labels(organization, list({k[0] for k in rows}))
    totals = QualityRow(affiliate_id=None, sub=None, source="Total")
    for row in rows.values():
        row.source = sources[row.affiliate_id]
        totals.add(row)
    ordered = sorted(rows.values(), key=lambda r: (-r.refused, -r.leads, r.label))
    return QualityReport(start=start, end=end, group_by=group_by, totals=totals, rows=ordered)
