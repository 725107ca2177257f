from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Schema
from ninja.responses import Status

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.accounts.selectors import advertiser_acted_for
from leadrelay.core.bounds import Id
from leadrelay.core.errors import NotFound
from leadrelay.core.schemas import ErrorOut
from leadrelay.leads.services import offer_rules_dry_run, offer_rules_set
from leadrelay.offers.models import Offer
from leadrelay.offers.schemas import FieldOut, LinkIn, LinkOut, OfferIn, OfferOut
from leadrelay.offers.selectors import offer_get, offers_visible_to
from leadrelay.offers.services import FieldSpec, Targeting, offer_create, offer_payout_for
from leadrelay.tracking.selectors import tracking_link_url
from leadrelay.tracking.services import tracking_link_create

router = Router(tags=["offers"])
any_key = ApiKeyAuth()
manager_key = ApiKeyAuth(OrganizationKind.NETWORK, OrganizationKind.ADVERTISER)
affiliate_key = ApiKeyAuth(OrganizationKind.AFFILIATE)


def offer_out(offer: Offer, viewer: Organization) -> OfferOut:
    # Advertisers see what they pay, affiliates what they earn, the network both.
    sees_revenue = viewer.kind == OrganizationKind.NETWORK or viewer.pk == offer.advertiser_id
    payout: int | None = None
    if viewer.kind == OrganizationKind.AFFILIATE:
        payout = offer_payout_for(offer=offer, affiliate=viewer)
    elif viewer.kind == OrganizationKind.NETWORK:
        payout = offer.payout_minor
    return OfferOut(
        id=offer.pk,
        name=offer.name,
        vertical=offer.vertical,
        status=offer.status,
        payout_model=offer.payout_model,
        currency=offer.currency,
        payout_minor=payout,
        revenue_minor=offer.revenue_minor if sees_revenue else None,
        visibility=offer.visibility,
        fields=[
            FieldOut(key=f.key, type=f.type, label=f.label, required=f.required, choices=f.choices)
            for f in offer.fields.all()
        ],
        form_url=settings.PUBLIC_BASE_URL + reverse("lead-form", args=[offer.pk]),
    )


@router.get("/offers", auth=any_key, response=list[OfferOut])
def offers_list(request: HttpRequest) -> list[OfferOut]:
    """The offers your organization can see."""
    org = request_api_key(request).organization
    offers = offers_visible_to(organization=org).prefetch_related("fields")[:500]
    return [offer_out(o, org) for o in offers]


@router.get("/offers/{offer_id}", auth=any_key, response={200: OfferOut, 404: ErrorOut})
def offers_read(request: HttpRequest, offer_id: Id) -> OfferOut:
    org = request_api_key(request).organization
    return offer_out(offer_get(organization=org, offer_id=offer_id), org)


@router.post("/offers", auth=manager_key, response={201: OfferOut, 404: ErrorOut, 422: ErrorOut})
def offers_create(request: HttpRequest, payload: OfferIn) -> Status[OfferOut]:
    """Create an offer. An advertiser's key creates its own; a network key names the advertiser."""
    org = request_api_key(request).organization
    advertiser = advertiser_acted_for(organization=org, advertiser_id=payload.advertiser_id)
    targeting_keys = {
        "allowed_countries", "allowed_devices", "schedule", "fallback_offer_id", "fallback_url"
    }  # fmt: skip
    data = payload.dict(exclude={"advertiser_id", "fields", "timezone", *targeting_keys})
    offer = offer_create(
        advertiser=advertiser,
        tz=payload.timezone,
        targeting=Targeting(**payload.dict(include=targeting_keys)),
        by_advertiser=org.kind == OrganizationKind.ADVERTISER,
        fields=[FieldSpec(**f.dict()) for f in payload.fields],
        **data,
    )
    return Status(201, offer_out(offer, org))


@router.post(
    "/offers/{offer_id}/links",
    auth=affiliate_key,
    response={201: LinkOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut},
)
def links_create(request: HttpRequest, offer_id: Id, payload: LinkIn) -> Status[LinkOut]:
    """Get a tracking link for an offer (applies for access on public offers automatically)."""
    org = request_api_key(request).organization
    offer = offer_get(organization=org, offer_id=offer_id)
    subs = {k: v for k, v in payload.dict().items() if v}
    link = tracking_link_create(offer=offer, affiliate=org, subs=subs)
    out = LinkOut(
        code=link.code,
        url=tracking_link_url(link),
        offer_id=offer.pk,
        sub1=link.sub1,
        sub2=link.sub2,
        sub3=link.sub3,
        sub4=link.sub4,
        sub5=link.sub5,
    )
    return Status(201, out)


class RulesIn(Schema):
    rules: dict[str, Any] = Field(
        ...,
        examples=[{"all": [{"field": "fields.homeowner", "op": "equals", "value": "yes"}]}],
    )
    last: int = Field(500, ge=1, le=5000, description="Dry run: how many recent leads.")


class DryRunOut(Schema):
    leads: int
    would_reject: int
    newly_rejected: list[int]
    newly_accepted: list[int]
    by_reason: dict[str, int]


def _own_offer(request: HttpRequest, offer_id: int) -> Offer:
    org = request_api_key(request).organization
    offer = offer_get(organization=org, offer_id=offer_id)
    if org.kind == OrganizationKind.AFFILIATE:
        raise NotFound("Offer")
    return offer


@router.post(
    "/offers/{offer_id}/rules/dry-run",
    auth=manager_key,
    response={200: DryRunOut, 404: ErrorOut, 422: ErrorOut},
)
def rules_dry_run(request: HttpRequest, offer_id: Id, payload: RulesIn) -> DryRunOut:
    """What these rules would have decided for the offer's last leads. Saves nothing."""
    result = offer_rules_dry_run(
        offer=_own_offer(request, offer_id), rules=payload.rules, last=payload.last
    )
    return DryRunOut(**result.__dict__)


@router.put(
    "/offers/{offer_id}/rules",
    auth=manager_key,
    response={200: OfferOut, 404: ErrorOut, 422: ErrorOut},
)
def rules_set(request: HttpRequest, offer_id: Id, payload: RulesIn) -> OfferOut:
    """Replace the offer's qualification rules (checked against its fields first)."""
    offer = offer_rules_set(offer=_own_offer(request, offer_id), rules=payload.rules)
    return offer_out(offer, request_api_key(request).organization)
