"""Distribution in the JSON API: an advertiser sets up its buyers and rotates their signing
secrets; a pull buyer fetches its leads; an advertiser returns a lead it bought, as the
offer's own advertiser (leads/returns.py) or as a buyer (returns.py).

A buyer's signing secrets are never read back: the answer that makes one carries it once,
and afterwards only its fingerprint names it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.responses import Status

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.accounts.selectors import advertiser_acted_for
from leadrelay.core.bounds import ID_MAX, Id, MinorUnits, PositiveCount
from leadrelay.core.errors import Invalid, Problem
from leadrelay.core.schemas import ErrorOut
from leadrelay.distribution.buyers import (
    BP_MAX,
    PING_TIMEOUT_MS,
    RETURN_WINDOW_DAYS_MAX,
    buyer_create,
    buyer_secret_add,
    buyer_secret_fingerprint,
    buyer_secret_new,
    buyer_secret_remove,
    buyer_update,
)
from leadrelay.distribution.models import Buyer
from leadrelay.distribution.pull import PAGE_MAX, buyer_leads_csv, buyer_leads_pull
from leadrelay.distribution.returns import buyer_return_request
from leadrelay.distribution.selectors import buyer_get, buyers_visible_to, offers_sold_to_buyers
from leadrelay.leads.models import Lead
from leadrelay.leads.returns import lead_return

router = Router(tags=["returns"])
# The delivery id a pull buyer fetched last; 0 from the start.
Cursor = Annotated[int, Field(ge=0, le=ID_MAX)]
PingTimeout = Annotated[int, Field(ge=PING_TIMEOUT_MS[0], le=PING_TIMEOUT_MS[1])]
manager_key = ApiKeyAuth(OrganizationKind.NETWORK, OrganizationKind.ADVERTISER)


class ReturnIn(Schema):
    reason: str = Field(..., max_length=64, examples=["bad_phone"], description="A reason code.")


class ReturnOut(Schema):
    id: int
    status: str = Field(
        ..., description="`returned`, or for a buyer's return that waits for review `pending`."
    )
    return_reason: str


@router.post(
    "/leads/{lead_id}/return",
    auth=ApiKeyAuth(OrganizationKind.ADVERTISER),
    response={200: ReturnOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    summary="Return a lead you bought",
)
def lead_return_api(request: HttpRequest, lead_id: Id, payload: ReturnIn) -> ReturnOut:
    """Within the return window. Errors: `returns_not_accepted`, `return_window_closed`,
    `lead_not_approved`, `already_returned`, `invalid_reason`."""
    organization = request_api_key(request).organization
    own_offer = Lead.objects.filter(pk=lead_id, offer__advertiser=organization).exists()
    if own_offer:
        lead = lead_return(lead_id=lead_id, by=organization, reason=payload.reason)
        return ReturnOut(id=lead.pk, status=lead.status, return_reason=lead.return_reason)
    returned = buyer_return_request(lead_id=lead_id, by=organization, reason=payload.reason)
    status = "returned" if returned.status == "accepted" else returned.status
    return ReturnOut(id=lead_id, status=status, return_reason=returned.reason)


class PulledLeadOut(Schema):
    delivery_id: int
    lead_id: int
    price: str
    currency: str
    delivered_at: datetime
    fields: dict[str, str]


@router.get(
    "/buyers/{buyer_id}/leads",
    auth=ApiKeyAuth(OrganizationKind.ADVERTISER),
    response={200: list[PulledLeadOut], 404: ErrorOut},
    summary="Fetch a pull buyer's leads",
)
def buyer_leads(
    request: HttpRequest,
    buyer_id: Id,
    after: Cursor = 0,
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 100,
    format: str = "json",
) -> Any:
    """Leads after the `after` cursor (a delivery id), oldest first, up to `limit` (1 to 500).
    Fetching delivers them and books their sale, once; fetch again from your last cursor
    after a lost answer. `format=csv` answers a CSV file (formula-safe)."""
    advertiser = request_api_key(request).organization
    rows = buyer_leads_pull(advertiser=advertiser, buyer_id=buyer_id, after=after, limit=limit)
    if format == "csv":
        buyer = Buyer.objects.get(pk=buyer_id)
        response = HttpResponse(buyer_leads_csv(rows, buyer), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="buyer-{buyer_id}-leads.csv"'
        return response
    return [PulledLeadOut(**row.__dict__) for row in rows]


class BuyerIn(Schema):
    """Buyer settings (docs/distribution.md). Creating: `name`, `vertical`, `price_minor`,
    `field_map` and, but for email and pull buyers, `url` are needed. Changing: only the
    settings sent change; the whole is checked again."""

    advertiser_id: Id | None = Field(None, description="A network key names the advertiser.")
    name: str | None = None
    vertical: str | None = Field(None, examples=["insurance"])
    offer_ids: list[Id] | None = Field(
        None, max_length=1000, description="None or []: the whole vertical."
    )
    price_minor: MinorUnits | None = Field(None, examples=[3000])
    currency: str | None = Field(None, examples=["USD"])
    priority: PositiveCount | None = Field(None, description="Lower goes first.")
    weight: PositiveCount | None = None
    exclusive: bool | None = None
    filters: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = Field(None, examples=[{"mon": [["09:00", "17:00"]]}])
    timezone: str | None = None
    credit_limit_minor: MinorUnits | None = Field(None, description="null: no limit.")
    method: str | None = Field(None, examples=["post_json"])
    url: str | None = None
    field_map: dict[str, Any] | None = Field(
        None, examples=[{"fname": "{first_name}", "mail": "{email}", "source": "leadrelay"}]
    )
    headers: dict[str, Any] | None = None
    accept_json_path: str | None = None
    accept_value: str | None = None
    accept_regex: str | None = None
    lead_id_json_path: str | None = None
    price_json_path: str | None = None
    email_to: str | None = None
    email_subject: str | None = None
    ping_url: str | None = None
    ping_field_map: dict[str, Any] | None = None
    bid_json_path: str | None = None
    ping_id_json_path: str | None = None
    ping_timeout_ms: PingTimeout | None = None
    pause_after_failures: PositiveCount | None = None
    return_window_days: Annotated[int, Field(ge=0, le=RETURN_WINDOW_DAYS_MAX)] | None = None
    auto_accept_returns_bp: Annotated[int, Field(ge=0, le=BP_MAX)] | None = None


class BuyerOut(Schema):
    id: int
    advertiser_id: int
    status: str
    paused_reason: str
    name: str
    vertical: str
    offer_ids: list[int]
    price_minor: int
    currency: str
    priority: int
    weight: int
    exclusive: bool
    filters: dict[str, Any]
    schedule: dict[str, Any]
    timezone: str
    credit_limit_minor: int | None
    method: str
    url: str
    field_map: dict[str, str] = Field(..., description="In the order the fields are sent.")
    headers: dict[str, Any]
    accept_json_path: str
    accept_value: str
    accept_regex: str
    lead_id_json_path: str
    price_json_path: str
    email_to: str
    email_subject: str
    ping_url: str
    ping_field_map: dict[str, str]
    bid_json_path: str
    ping_id_json_path: str
    ping_timeout_ms: int
    pause_after_failures: int
    return_window_days: int
    auto_accept_returns_bp: int
    signing_secret_fingerprints: list[str] = Field(
        ..., description="The secrets that sign, newest first, named without showing them."
    )


class BuyerCreatedOut(BuyerOut):
    signing_secret: str = Field(..., description="Shown once: keep it to verify deliveries.")


class SecretOut(Schema):
    signing_secret: str = Field(..., description="Shown once.")
    signing_secret_fingerprints: list[str]


def _buyer_out(buyer: Buyer) -> dict[str, Any]:
    skip = {"offer_ids", "field_map", "ping_field_map", "signing_secret_fingerprints"}
    data = {name: getattr(buyer, name) for name in BuyerOut.model_fields if name not in skip}
    return {
        **data,
        "offer_ids": sorted(o.pk for o in buyer.offers.all()),
        "field_map": buyer.mapping(),
        "ping_field_map": buyer.ping_mapping(),
        "signing_secret_fingerprints": [buyer_secret_fingerprint(s) for s in buyer.signing_secrets],
    }


def _settings(payload: BuyerIn) -> dict[str, Any]:
    """What the request sets: null leaves a setting as it is, but for the credit limit."""
    sent = payload.dict(exclude_unset=True, exclude={"advertiser_id", "offer_ids"})
    return {k: v for k, v in sent.items() if v is not None or k == "credit_limit_minor"}


def _offers(payload: BuyerIn) -> list[Any] | None:
    if payload.offer_ids is None:
        return None
    ids = set(payload.offer_ids)
    offers = list(offers_sold_to_buyers().filter(pk__in=ids))
    if len(offers) != len(ids):
        missing = sorted(ids - {o.pk for o in offers})
        raise Invalid([Problem("unknown_offer", f"No distributed offer {missing}.", "offer_ids")])
    return offers


@router.post(
    "/buyers",
    auth=manager_key,
    response={201: BuyerCreatedOut, 404: ErrorOut, 422: ErrorOut},
    tags=["buyers"],
    summary="Set up a buyer campaign",
)
def buyers_create(request: HttpRequest, payload: BuyerIn) -> Status[BuyerCreatedOut]:
    """An advertiser's key sets up its own buyer; a network key names the advertiser. The
    buyer gets a signing secret, in this answer only. Every problem is listed at once (422)."""
    organization = request_api_key(request).organization
    buyer = buyer_create(
        advertiser=advertiser_acted_for(
            organization=organization, advertiser_id=payload.advertiser_id
        ),
        offers=_offers(payload),
        signing_secrets=[buyer_secret_new()],
        **_settings(payload),
    )
    return Status(
        201, BuyerCreatedOut(**_buyer_out(buyer), signing_secret=buyer.signing_secrets[0])
    )


@router.get("/buyers", auth=manager_key, response=list[BuyerOut], tags=["buyers"])
def buyers_list(request: HttpRequest) -> list[BuyerOut]:
    """Your buyers (a network key: every buyer)."""
    organization = request_api_key(request).organization
    rows = buyers_visible_to(organization=organization).prefetch_related("offers")[:500]
    return [BuyerOut(**_buyer_out(b)) for b in rows]


@router.get(
    "/buyers/{buyer_id}", auth=manager_key, response={200: BuyerOut, 404: ErrorOut}, tags=["buyers"]
)
def buyers_read(request: HttpRequest, buyer_id: Id) -> BuyerOut:
    organization = request_api_key(request).organization
    return BuyerOut(**_buyer_out(buyer_get(organization=organization, buyer_id=buyer_id)))


@router.patch(
    "/buyers/{buyer_id}",
    auth=manager_key,
    response={200: BuyerOut, 404: ErrorOut, 422: ErrorOut},
    tags=["buyers"],
    summary="Change a buyer's settings",
)
def buyers_update(request: HttpRequest, buyer_id: Id, payload: BuyerIn) -> BuyerOut:
    """Only the settings sent change (`offer_ids` replaces the list). Nothing changes unless
    the whole passes; every problem is listed at once (422)."""
    organization = request_api_key(request).organization
    buyer = buyer_get(organization=organization, buyer_id=buyer_id)
    if payload.advertiser_id is not None:
        raise Invalid([Problem("not_changeable", "A buyer keeps its advertiser.", "advertiser_id")])
    buyer = buyer_update(
        buyer=buyer, by=organization, offers=_offers(payload), **_settings(payload)
    )
    return BuyerOut(**_buyer_out(buyer))


@router.post(
    "/buyers/{buyer_id}/secrets",
    auth=manager_key,
    response={201: SecretOut, 404: ErrorOut, 409: ErrorOut},
    tags=["buyers"],
    summary="Add a signing secret (rotation)",
)
def buyer_secrets_add(request: HttpRequest, buyer_id: Id) -> Status[SecretOut]:
    """The new secret signs from now on next to the old ones (at most 3); shown once."""
    organization = request_api_key(request).organization
    buyer = buyer_get(organization=organization, buyer_id=buyer_id)
    secret = buyer_secret_add(buyer=buyer, by=organization)
    buyer.refresh_from_db()
    fingerprints = [buyer_secret_fingerprint(s) for s in buyer.signing_secrets]
    return Status(201, SecretOut(signing_secret=secret, signing_secret_fingerprints=fingerprints))


@router.delete(
    "/buyers/{buyer_id}/secrets/{fingerprint}",
    auth=manager_key,
    response={204: None, 404: ErrorOut, 409: ErrorOut},
    tags=["buyers"],
    summary="Remove a signing secret (rotation)",
)
def buyer_secrets_remove(request: HttpRequest, buyer_id: Id, fingerprint: str) -> Status[None]:
    """It signs no more. The only secret can't be removed (`last_secret`)."""
    organization = request_api_key(request).organization
    buyer = buyer_get(organization=organization, buyer_id=buyer_id)
    buyer_secret_remove(buyer=buyer, by=organization, fingerprint=fingerprint)
    return Status(204, None)
