"""What an affiliate earns per approved lead: payout rules, applied at approval time.

In order: the affiliate's own volume tiers, else the offer's tiers (the highest
tier whose `min_approved` the lead reaches, counting it among the affiliate's
approved leads on the offer this calendar month in the offer's time zone), else
the affiliate's override on its offer access, else the offer's payout. The rule
that decided is kept on the lead (`payout_basis`) and shown on statements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db.models import Q

from leadrelay.accounts.models import Organization
from leadrelay.core.errors import Invalid, Problem
from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.offers.models import Offer, OfferAccess, PayoutTier


@dataclass(frozen=True)
class PayoutDecision:
    payout_minor: int
    basis: str


def month_start(offer: Offer, at: datetime) -> datetime:
    """The start of `at`'s calendar month in the offer's time zone."""
    local = at.astimezone(ZoneInfo(offer.timezone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def offer_payout_decide(
    *, offer: Offer, affiliate: Organization | None, at: datetime
) -> PayoutDecision:
    """The payout for the lead being approved now (call before it is marked approved)."""
    if affiliate is None:
        return PayoutDecision(0, "no affiliate")
    # One query for both scopes: an affiliate with tiers of its own ignores the offer's.
    both = list(
        PayoutTier.objects.filter(Q(affiliate=affiliate) | Q(affiliate__isnull=True), offer=offer)
    )
    tiers = [t for t in both if t.affiliate_id == affiliate.pk]
    scope = "affiliate tier"
    if not tiers:
        tiers = [t for t in both if t.affiliate_id is None]
        scope = "offer tier"
    if tiers:
        nth = (
            Lead.objects.filter(
                offer=offer,
                affiliate=affiliate,
                status=LeadStatus.APPROVED,
                decided_at__gte=month_start(offer, at),
                decided_at__lte=at,
            ).count()
            + 1
        )
        reached = [t for t in tiers if t.min_approved <= nth]
        if reached:
            tier = max(reached, key=lambda t: t.min_approved)
            return PayoutDecision(
                tier.payout_minor, f"{scope}: from lead {tier.min_approved} of the month (#{nth})"
            )
    override = (
        OfferAccess.objects.filter(offer=offer, affiliate=affiliate)
        .values_list("payout_minor_override", flat=True)
        .first()
    )
    if override is not None:
        return PayoutDecision(override, "affiliate override")
    return PayoutDecision(offer.payout_minor, "offer payout")


def payout_tier_set(
    *, offer: Offer, min_approved: int, payout_minor: int, affiliate: Organization | None = None
) -> PayoutTier:
    problems = []
    if not isinstance(min_approved, int) or min_approved < 1:
        problems.append(
            Problem("invalid_tier", "A tier starts at lead 1 or later.", "min_approved")
        )
    if not isinstance(payout_minor, int) or payout_minor < 0:
        problems.append(Problem("invalid_amount", "A payout can't be negative.", "payout_minor"))
    if problems:
        raise Invalid(problems)
    tier, _ = PayoutTier.objects.update_or_create(
        offer=offer,
        affiliate=affiliate,
        min_approved=min_approved,
        defaults={"payout_minor": payout_minor},
    )
    return tier
