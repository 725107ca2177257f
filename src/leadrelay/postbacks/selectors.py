"""Reads of postbacks and their deliveries, scoped to the affiliate that asks."""

from __future__ import annotations

from django.db.models import QuerySet

from leadrelay.accounts.models import Organization
from leadrelay.offers.models import AccessStatus, Offer, OfferStatus
from leadrelay.postbacks.models import AffiliatePostback, PostbackDelivery


def postbacks_for(*, affiliate: Organization) -> QuerySet[AffiliatePostback]:
    return (
        AffiliatePostback.objects.filter(affiliate=affiliate)
        .select_related("offer")
        .order_by("event", "offer_id", "pk")
    )


def postback_deliveries_for(*, affiliate: Organization) -> QuerySet[PostbackDelivery]:
    """The affiliate's delivery log, newest first; scoped by the lead, so it outlives a
    deleted postback."""
    return (
        PostbackDelivery.objects.filter(lead__affiliate=affiliate)
        .select_related("lead")
        .order_by("-created_at", "-pk")
    )


def offers_for_postbacks(*, affiliate: Organization) -> QuerySet[Offer]:
    """The active offers the affiliate is approved to run: the ones a postback may name."""
    return Offer.objects.filter(
        status=OfferStatus.ACTIVE,
        accesses__affiliate=affiliate,
        accesses__status=AccessStatus.APPROVED,
    ).order_by("name")
