from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.core.bounds import Id
from leadrelay.core.schemas import ErrorOut
from leadrelay.offers.selectors import offer_get
from leadrelay.postbacks.models import AffiliatePostback
from leadrelay.postbacks.schemas import PostbackDeliveryOut, PostbackIn, PostbackOut
from leadrelay.postbacks.selectors import postback_deliveries_for, postbacks_for
from leadrelay.postbacks.services import affiliate_postback_create, affiliate_postback_delete

router = Router(tags=["postbacks"])
affiliate_key = ApiKeyAuth(OrganizationKind.AFFILIATE)
DELIVERIES_LIMIT = 100


def _out(postback: AffiliatePostback) -> PostbackOut:
    return PostbackOut(
        id=postback.pk,
        event=postback.event,
        offer_id=postback.offer_id,
        url_template=postback.url_template,
        is_active=postback.is_active,
        created_at=postback.created_at,
    )


@router.get("/postbacks", auth=affiliate_key, response=list[PostbackOut])
def postbacks_list(request: HttpRequest) -> list[PostbackOut]:
    """Your postbacks: the URLs leadrelay calls when your leads are accepted, approved …"""
    affiliate = request_api_key(request).organization
    return [_out(p) for p in postbacks_for(affiliate=affiliate)]


@router.post(
    "/postbacks",
    auth=affiliate_key,
    response={201: PostbackOut, 404: ErrorOut, 422: ErrorOut},
)
def postbacks_create(request: HttpRequest, payload: PostbackIn) -> Status[PostbackOut]:
    """Add a postback for one event, for one offer you run or (no offer_id) all of them.

    The URL must be http(s) with a fixed public host and known macros only.
    """
    affiliate = request_api_key(request).organization
    offer = None
    if payload.offer_id is not None:
        offer = offer_get(organization=affiliate, offer_id=payload.offer_id)
    postback = affiliate_postback_create(
        affiliate=affiliate, event=payload.event, url_template=payload.url_template, offer=offer
    )
    return Status(201, _out(postback))


@router.get("/postbacks/deliveries", auth=affiliate_key, response=list[PostbackDeliveryOut])
def postback_deliveries_list(request: HttpRequest) -> list[PostbackDeliveryOut]:
    """Your last 100 postback calls, newest first, with their state and last answer."""
    affiliate = request_api_key(request).organization
    deliveries = postback_deliveries_for(affiliate=affiliate)[:DELIVERIES_LIMIT]
    return [PostbackDeliveryOut.from_orm(d) for d in deliveries]


@router.delete("/postbacks/{postback_id}", auth=affiliate_key, response={204: None, 404: ErrorOut})
def postbacks_delete(request: HttpRequest, postback_id: Id) -> Status[None]:
    """Delete a postback. Its past calls stay in the log; pending ones are not sent."""
    affiliate = request_api_key(request).organization
    affiliate_postback_delete(affiliate=affiliate, postback_id=postback_id)
    return Status(204, None)
