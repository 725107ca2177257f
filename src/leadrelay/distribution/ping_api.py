"""`POST /api/v1/ping`: an affiliate asks what a lead would earn before posting it
(distribution/inbound.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.core.bounds import Id
from leadrelay.core.money import money_decimal
from leadrelay.core.schemas import ErrorOut
from leadrelay.distribution.inbound import inbound_ping
from leadrelay.leads.api import visitor_ip

router = Router(tags=["leads"])


class PingIn(Schema):
    offer_id: Id = Field(..., examples=[1])
    fields: dict[str, Any] = Field(
        ...,
        description="The lead's non-personal fields (no name, email, phone, address or birth "
        "date), keyed as in the offer's field schema. Post the lead with the same values.",
        examples=[{"zip": "94103", "loan_amount": 15000}],
    )
    visitor_ip: str | None = Field(None, max_length=45, examples=["203.0.113.7"])
    visitor_user_agent: str = Field("", max_length=512)


class PingOut(Schema):
    ping_id: str = Field(..., description="Post the lead with it as `ping_id`.")
    accepted: bool = Field(..., description="Whether a buyer wants such a lead now.")
    payout: str = Field(
        ..., description="What the lead earns you, in `currency`.", examples=["18.00"]
    )
    payout_minor: int
    currency: str
    expires_at: str = Field(..., description="Post the lead before this time.")


@router.post(
    "/ping",
    auth=ApiKeyAuth(OrganizationKind.AFFILIATE, limit="ping_key"),
    response={
        200: PingOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
    },
    summary="Ask what a lead would earn",
)  # fmt: skip
def ping(request: HttpRequest, payload: PingIn) -> PingOut:
    """Send the lead's non-personal fields; the answer says whether a buyer wants it and
    what it earns you if you post it (`POST /api/v1/leads` with `ping_id` and the same
    values) before `expires_at`. An approved lead posted so is paid this quote.

    Personal fields are refused (422 `personal_field_in_ping`); an offer that doesn't
    sell leads to buyers answers 409 `pings_not_taken`. The answer may take as long as
    the offer's auction (its deadline, 2 s by default).
    """
    api_key = request_api_key(request)
    quote = inbound_ping(
        affiliate=api_key.organization,
        offer_id=payload.offer_id,
        fields=payload.fields,
        ip=visitor_ip(payload.visitor_ip),
        user_agent=payload.visitor_user_agent,
    )
    return PingOut(
        ping_id=quote.token,
        accepted=quote.accepted,
        payout=money_decimal(quote.quote_minor, quote.currency),
        payout_minor=quote.quote_minor,
        currency=quote.currency,
        expires_at=quote.expires_at.isoformat(),
    )
