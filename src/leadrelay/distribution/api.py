"""Returns in the JSON API: an advertiser sends back a lead it bought, as the offer's own
advertiser (leads/returns.py) or through one of its buyer campaigns (returns.py here)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Router, Schema

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
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
