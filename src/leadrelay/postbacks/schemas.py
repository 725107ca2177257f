from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema

from leadrelay.core.bounds import Id


class PostbackIn(Schema):
    event: str = Field(
        ...,
        examples=["lead_approved"],
        description="lead_accepted, lead_approved, lead_rejected or lead_reversed.",
    )
    url_template: str = Field(
        ...,
        max_length=2000,
        examples=["https://tracker.example.com/pb?cid={click_id}&amount={payout}&s1={sub1}"],
        description=(
            "Macros: {sub1}…{sub5}, {click_id}, {lead_id}, {offer_id}, {payout}, {currency}, "
            "{status}; values are URL-encoded. The host is fixed."
        ),
    )
    offer_id: Id | None = Field(None, description="One offer; leave out for all offers.")


class PostbackOut(Schema):
    id: int
    event: str
    offer_id: int | None
    url_template: str
    is_active: bool
    created_at: datetime


class PostbackDeliveryOut(Schema):
    id: int
    postback_id: int | None
    lead_id: int
    event: str
    url: str
    status: str = Field(..., examples=["sent"], description="pending, sent or failed.")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str
    response_excerpt: str
    created_at: datetime
    updated_at: datetime
