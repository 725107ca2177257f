from __future__ import annotations

from typing import Any

from ninja import Field, Schema

from leadrelay.core.bounds import Id, Instant


class ConsentIn(Schema):
    text: str = Field(..., max_length=5000, description="The disclosure the visitor agreed to.")
    page_url: str = Field("", max_length=2000, description="The page the form was on.")
    given_at: Instant | None = Field(None, description="When; defaults to the post's time.")
    trustedform_cert_url: str = Field("", max_length=200)
    jornaya_leadid: str = Field("", max_length=64)


class LeadIn(Schema):
    offer_id: Id = Field(..., examples=[1])
    click_id: str | None = Field(
        None, max_length=1100, description="The click id the landing page received."
    )
    visitor_ip: str | None = Field(
        None,
        max_length=45,
        description="The visitor's IP address, if you have it: it feeds fraud checks and "
        "consent evidence. (The address your server posts from is not the visitor's.)",
        examples=["203.0.113.7"],
    )
    visitor_user_agent: str = Field("", max_length=512, description="The visitor's browser.")
    consent: ConsentIn | None = Field(
        None, description="Consent evidence; required by offers that say so (422 consent_required)."
    )
    ping_id: str | None = Field(
        None,
        max_length=40,
        description="The id `POST /api/v1/ping` gave for this lead: it is paid the quote.",
    )
    fields: dict[str, Any] = Field(
        ...,
        description="The lead's fields, keyed as in the offer's field schema.",
        examples=[{"email": "ana@example.com", "phone": "+14155550123", "zip": "94103"}],
    )


class LeadOut(Schema):
    id: int
    offer_id: int
    status: str = Field(..., examples=["approved"])
    reasons: list[str] = Field(..., examples=[[]])
    click_id: str
    created_at: str
