"""Reads of buyers and their returns, scoped to the organization that asks.

The network sees every buyer; an advertiser its own; an affiliate none. A buyer
another organization may not see is "not found", never "forbidden".
"""

from __future__ import annotations

from django.db.models import QuerySet

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import NotFound
from leadrelay.distribution.models import Buyer, BuyerReturn, OfferRouting
from leadrelay.offers.models import Offer


def buyers_visible_to(*, organization: Organization) -> QuerySet[Buyer]:
    buyers = Buyer.objects.select_related("advertiser").order_by("advertiser__name", "name", "pk")
    if organization.kind == OrganizationKind.NETWORK:
        return buyers
    if organization.kind == OrganizationKind.ADVERTISER:
        return buyers.filter(advertiser=organization)
    return buyers.none()


def buyer_get(*, organization: Organization, buyer_id: int) -> Buyer:
    buyer = buyers_visible_to(organization=organization).filter(pk=buyer_id).first()
    if buyer is None:
        raise NotFound("Buyer")
    return buyer


def buyer_returns_visible_to(*, organization: Organization) -> QuerySet[BuyerReturn]:
    """Returns of the buyers `organization` sees, newest first."""
    return (
        BuyerReturn.objects.filter(
            delivery__buyer__in=buyers_visible_to(organization=organization).values("pk")
        )
        .select_related("delivery__buyer__advertiser", "decided_by")
        .order_by("-created_at", "-pk")
    )


def offers_sold_to_buyers() -> QuerySet[Offer]:
    """The offers whose leads are distributed to buyers: what a buyer may be limited to."""
    routed = OfferRouting.objects.filter(enabled=True).values("offer_id")
    return Offer.objects.filter(pk__in=routed).order_by("name", "pk")
