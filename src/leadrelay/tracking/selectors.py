from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.tracking.models import Conversion, TrackingLink


def links_visible_to(*, organization: Organization) -> QuerySet[TrackingLink]:
    qs = TrackingLink.objects.select_related("offer", "affiliate").order_by("-created_at")
    if organization.kind == OrganizationKind.NETWORK:
        return qs
    if organization.kind == OrganizationKind.AFFILIATE:
        return qs.filter(affiliate=organization)
    return qs.none()  # advertisers never see affiliates' links


def tracking_link_url(link: TrackingLink) -> str:
    return f"{settings.PUBLIC_BASE_URL}/c/{link.code}"


def conversions_visible_to(*, organization: Organization) -> QuerySet[Conversion]:
    qs = Conversion.objects.select_related("offer", "affiliate").order_by("-created_at", "-pk")
    if organization.kind == OrganizationKind.NETWORK:
        return qs
    if organization.kind == OrganizationKind.ADVERTISER:
        return qs.filter(offer__advertiser=organization)
    return qs.filter(affiliate=organization)
