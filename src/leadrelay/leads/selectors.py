from __future__ import annotations

from django.db.models import QuerySet

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import NotFound
from leadrelay.leads.models import Lead, LeadStatus


def leads_visible_to(*, organization: Organization) -> QuerySet[Lead]:
    """The network sees every lead; an advertiser the leads of its offers; an affiliate its own."""
    qs = Lead.objects.select_related("offer", "affiliate").order_by("-created_at", "-pk")
    if organization.kind == OrganizationKind.NETWORK:
        return qs
    if organization.kind == OrganizationKind.ADVERTISER:
        return qs.filter(offer__advertiser=organization)
    return qs.filter(affiliate=organization)


def lead_get(*, organization: Organization, lead_id: int) -> Lead:
    lead = leads_visible_to(organization=organization).filter(pk=lead_id).first()
    if lead is None:
        raise NotFound("Lead")
    return lead


def leads_awaiting_review(*, organization: Organization) -> QuerySet[Lead]:
    """Leads this organization may decide: all for the network; an advertiser's own where
    the offer lets the advertiser review; none for affiliates."""
    pending = leads_visible_to(organization=organization).filter(status=LeadStatus.PENDING_REVIEW)
    if organization.kind == OrganizationKind.NETWORK:
        return pending
    if organization.kind == OrganizationKind.ADVERTISER:
        return pending.filter(offer__advertiser_reviews=True)
    return Lead.objects.none()
