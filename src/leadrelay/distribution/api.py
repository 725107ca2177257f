"""Distribution in the JSON API: a pull buyer fetches its leads; an advertiser returns a lead
it bought, as the offer's own advertiser (leads/returns.py) or as a buyer (returns.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.distribution.models import Buyer
from leadrelay.distribution.pull import buyer_leads_csv, buyer_leads_pull
from leadrelay.distribution.returns import buyer_return_request
from leadrelay.leads.models import Lead
from leadrelay.leads.returns import lead_return
from leadrelay.leads.schemas import ErrorOut

router = Router(tags=["returns"])


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
def lead_return_api(request: HttpRequest, lead_id: int, payload: ReturnIn) -> ReturnOut:
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
    request: HttpRequest, buyer_id: int, after: int = 0, limit: int = 100, format: str = "json"
) -> Any:
    """Leads after the `after` cursor (a delivery id), oldest first, up to `limit` (≤ 500).
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
