from __future__ import annotations

from typing import Any

from ninja import Field, Schema


class LeadIn(Schema):
    offer_id: int = Field(..., ge=1, examples=[1])
    click_id: str | None = Field(
        None, max_length=1100, description="The click id the landing page received."
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


class ProblemOut(Schema):
    code: str
    message: str
    field: str | None


class ErrorOut(Schema):
    code: str
    message: str
    errors: list[ProblemOut]
