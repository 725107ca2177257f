"""Reads of offers, scoped to the organization that asks."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import NotFound
from leadrelay.offers.models import AccessStatus, Offer, OfferAccess, OfferStatus, Visibility


def offers_visible_to(*, organization: Organization) -> QuerySet[Offer]:
    """The network sees every offer; an advertiser its own; an affiliate the active offers it
    may find (public, needs-approval) plus any it was given access to."""
    qs = Offer.objects.select_related("advertiser")
    if organization.kind == OrganizationKind.NETWORK:
        return qs
    if organization.kind == OrganizationKind.ADVERTISER:
        return qs.filter(advertiser=organization)
    granted = OfferAccess.objects.filter(
        affiliate=organization, status=AccessStatus.APPROVED
    ).values("offer_id")
    return qs.filter(status=OfferStatus.ACTIVE).filter(
        Q(visibility__in=[Visibility.PUBLIC, Visibility.APPROVAL]) | Q(pk__in=granted)
    )


def offer_get(*, organization: Organization, offer_id: int) -> Offer:
    offer = offers_visible_to(organization=organization).filter(pk=offer_id).first()
    if offer is None:
        raise NotFound("Offer")
    return offer


def offer_access_for(*, offer: Offer, affiliate: Organization) -> OfferAccess | None:
    return OfferAccess.objects.filter(offer=offer, affiliate=affiliate).first()


def offer_accesses_pending(*, organization: Organization) -> QuerySet[OfferAccess]:
    """Applications waiting for a decision, for the network (all) or an advertiser (its own)."""
    qs = OfferAccess.objects.filter(status=AccessStatus.PENDING).select_related(
        "offer", "affiliate"
    )
    if organization.kind == OrganizationKind.NETWORK:
        return qs
    if organization.kind == OrganizationKind.ADVERTISER:
        return qs.filter(offer__advertiser=organization)
    return qs.filter(affiliate=organization)


def affiliate_may_promote(*, offer: Offer, affiliate: Organization) -> bool:
    return (
        offer.status == OfferStatus.ACTIVE
        and OfferAccess.objects.filter(
            offer=offer, affiliate=affiliate, status=AccessStatus.APPROVED
        ).exists()
    )
