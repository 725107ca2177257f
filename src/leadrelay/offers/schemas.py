from __future__ import annotations

from ninja import Field, Schema

from leadrelay.core.bounds import Id, MinorUnits


class FieldIn(Schema):
    key: str = Field(..., examples=["email"])
    type: str = Field(..., examples=["email"])
    label: str = ""
    required: bool = False
    choices: list[str] = []
    max_length: int = Field(200, ge=1, le=5000)
    qualifying_choices: list[str] = Field(
        [], description="For a choice field: the answers that qualify; others are rejected."
    )


class OfferIn(Schema):
    advertiser_id: Id | None = Field(
        None, description="Network keys only: the advertiser the offer belongs to."
    )
    name: str = Field(..., max_length=200)
    vertical: str = "other"
    description: str = Field("", max_length=5000)
    status: str = "draft"
    payout_model: str = Field("cpl", description="cpl now; cpc, cpa, revshare are booked later.")
    consent_text: str = Field("", max_length=5000)
    currency: str = Field("USD", examples=["USD"])
    revenue_minor: MinorUnits = Field(
        ..., examples=[2500], description="Advertiser pays, minor units."
    )
    payout_minor: MinorUnits = Field(
        ..., examples=[1800], description="Affiliate earns, minor units."
    )
    visibility: str = "approval"
    review_mode: str = "auto_approve"
    landing_url: str = Field(..., examples=["https://lp.example.com/?cid={click_id}&s={sub1}"])
    deeplink_domains: list[str] = Field(
        [], description="Domains links may deep-link to with ?url=, e.g. shop.example.com."
    )
    default_region: str = "US"
    timezone: str = "UTC"
    allowed_countries: list[str] = Field([], examples=[["US", "CA"]])
    allowed_devices: list[str] = Field([], examples=[["mobile", "tablet"]])
    schedule: dict[str, list[list[str]]] = Field(
        {}, examples=[{"mon": [["09:00", "17:30"]], "tue": [["09:00", "17:30"]]}]
    )
    fallback_offer_id: Id | None = None
    fallback_url: str = ""
    fields: list[FieldIn] = []


class FieldOut(Schema):
    key: str
    type: str
    label: str
    required: bool
    choices: list[str]


class OfferOut(Schema):
    id: int
    name: str
    vertical: str
    status: str
    payout_model: str
    currency: str
    payout_minor: int | None = Field(
        None, description="Shown to the network and, as their own payout, to affiliates."
    )
    revenue_minor: int | None = Field(
        None, description="Shown to the network and the offer's advertiser only."
    )
    visibility: str
    fields: list[FieldOut]
    form_url: str


class LinkIn(Schema):
    sub1: str = Field("", max_length=100)
    sub2: str = Field("", max_length=100)
    sub3: str = Field("", max_length=100)
    sub4: str = Field("", max_length=100)
    sub5: str = Field("", max_length=100)


class LinkOut(Schema):
    code: str
    url: str
    offer_id: int
    sub1: str
    sub2: str
    sub3: str
    sub4: str
    sub5: str
