"""Fraud signals and the score they add up to.

Each signal is a coded fact with a weight; a lead's score is the sum of its
signals' weights. An offer sets two thresholds: at `fraud_review_score` a lead
that would have been approved waits for review instead, at
`fraud_reject_score` it is rejected with the reason `fraud_score`. The signals
are stored on the lead whatever they decided, for review and the quality
report. Velocity is counted network-wide over the last hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.db.models import Q

from leadrelay.core.clickid import ClickIdentity
from leadrelay.leads.models import Lead
from leadrelay.leads.rules import Facts
from leadrelay.leads.signals import DISPOSABLE_EMAIL, email_is_disposable
from leadrelay.offers.models import FieldType, Offer, OfferField

HONEYPOT = "honeypot_filled"
FORM_TOO_FAST = "form_too_fast"
IP_VELOCITY = "ip_velocity"
DEVICE_VELOCITY = "device_velocity"
PHONE_NOT_MOBILE = "phone_not_mobile"
CRAWLER = "crawler_user_agent"
IP_COUNTRY_MISMATCH = "ip_country_mismatch"
CLICK_TOO_RECENT = "click_too_recent"
CLICK_ID_REUSED = "click_id_reused"

WEIGHTS = {
    HONEYPOT: 100,
    CRAWLER: 100,
    CLICK_ID_REUSED: 50,
    FORM_TOO_FAST: 40,
    CLICK_TOO_RECENT: 40,
    DISPOSABLE_EMAIL: 40,
    IP_VELOCITY: 30,
    DEVICE_VELOCITY: 30,
    PHONE_NOT_MOBILE: 30,
    IP_COUNTRY_MISMATCH: 30,
}
VELOCITY_WINDOW = timedelta(hours=1)
VELOCITY_LIMIT = 3  # leads from one IP or device in the window before it counts
CLICK_TO_LEAD_MIN = timedelta(seconds=3)


@dataclass(frozen=True)
class Submission:
    """How a lead arrived, beyond its fields."""

    ip: str | None = None
    user_agent: str = ""
    visitor_id: str = ""  # the first-party cookie, for hosted forms
    form_seconds: float | None = None  # time from form shown to sent, for hosted forms
    honeypot_filled: bool = False


@dataclass(frozen=True)
class Assessment:
    signals: list[str]
    score: int


def _lead_country(schema: list[OfferField], cleaned: dict[str, Any]) -> str:
    return next(
        (str(cleaned[f.key]) for f in schema if f.type == FieldType.COUNTRY and f.key in cleaned),
        "",
    )


def _not_mobile(phone: str) -> bool:
    kind = phonenumbers.number_type(phonenumbers.parse(phone))
    return kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def fraud_assess(
    *,
    offer: Offer,
    schema: list[OfferField],
    cleaned: dict[str, Any],
    email: str,
    phone: str,
    submission: Submission,
    facts: Facts,
    identity: ClickIdentity | None,
    now: datetime,
) -> Assessment:
    signals = []
    if submission.honeypot_filled:
        signals.append(HONEYPOT)
    if submission.form_seconds is not None and submission.form_seconds < offer.min_form_seconds:
        signals.append(FORM_TOO_FAST)
    if email and email_is_disposable(email):
        signals.append(DISPOSABLE_EMAIL)
    if phone and offer.require_mobile and _not_mobile(phone):
        signals.append(PHONE_NOT_MOBILE)
    if facts.device == "bot":
        signals.append(CRAWLER)
    lead_country = _lead_country(schema, cleaned)
    ip_country = facts.country
    if lead_country and ip_country and lead_country != ip_country:
        signals.append(IP_COUNTRY_MISMATCH)
    if identity is not None:
        if now - identity.issued_at < CLICK_TO_LEAD_MIN:
            signals.append(CLICK_TOO_RECENT)
        if Lead.objects.filter(click_id=identity.click_id).exists():
            signals.append(CLICK_ID_REUSED)
    recent = Lead.objects.filter(created_at__gte=now - VELOCITY_WINDOW, created_at__lte=now)
    if submission.ip and recent.filter(ip=submission.ip).count() >= VELOCITY_LIMIT:
        signals.append(IP_VELOCITY)
    if (
        submission.visitor_id
        and recent.filter(Q(visitor_id=submission.visitor_id)).count() >= VELOCITY_LIMIT
    ):
        signals.append(DEVICE_VELOCITY)
    return Assessment(signals=signals, score=sum(WEIGHTS.get(s, 0) for s in signals))
