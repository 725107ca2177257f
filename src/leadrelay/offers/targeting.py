"""Who an offer takes on a click: status, countries, devices and a weekly schedule.

The schedule is a week of opening hours in the offer's own IANA time zone:
{"mon": [["09:00", "17:30"]], "sat": [], ...}; a day left out is closed, an
empty schedule means always open. A span's end is exclusive and may be
"24:00"; to run overnight, give two spans ("22:00"-"24:00" and "00:00"-"06:00").
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

import pycountry

from leadrelay.offers.caps import offer_capped
from leadrelay.offers.models import Offer, OfferStatus

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEVICES = ("desktop", "mobile", "tablet")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_END_RE = re.compile(r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")


class Refusal:
    OFFER_NOT_ACTIVE = "offer_not_active"
    COUNTRY = "country_not_allowed"
    DEVICE = "device_not_allowed"
    SCHEDULE = "outside_schedule"
    CAP = "cap_reached"


def schedule_problems(schedule: Mapping[str, Any]) -> list[str]:
    if not isinstance(schedule, Mapping):
        return ["The schedule maps days (mon…sun) to lists of [start, end] times."]
    problems = []
    for day, spans in schedule.items():
        if day not in DAYS:
            problems.append(f"{day!r} is not a day: use {', '.join(DAYS)}.")
            continue
        if not isinstance(spans, list):
            problems.append(f"{day}: a list of [start, end] pairs.")
            continue
        for span in spans:
            ok = (
                isinstance(span, list | tuple)
                and len(span) == 2
                and isinstance(span[0], str)
                and isinstance(span[1], str)
                and _TIME_RE.match(span[0]) is not None
                and _END_RE.match(span[1]) is not None
                and span[0] < span[1]
            )
            if not ok:
                problems.append(f"{day}: {span!r} is not a pair of HH:MM times, start first.")
    return problems


def countries_problems(countries: Sequence[str]) -> list[str]:
    return [
        f"{c!r} is not an ISO 3166 alpha-2 country code."
        for c in countries
        if not isinstance(c, str) or len(c) != 2 or pycountry.countries.get(alpha_2=c) is None
    ]


def devices_problems(devices: Sequence[str]) -> list[str]:
    return [f"{d!r} is not one of {', '.join(DEVICES)}." for d in devices if d not in DEVICES]


def schedule_is_open(schedule: Mapping[str, Any], tz: str, at: dt.datetime) -> bool:
    """Whether a weekly schedule ({"mon": [["09:00", "17:00"]], …} in time zone `tz`) is
    open at `at`; an empty schedule is always open."""
    if not schedule:
        return True
    local = at.astimezone(zoneinfo.ZoneInfo(tz))
    hhmm = local.strftime("%H:%M")
    spans = schedule.get(DAYS[local.weekday()], [])
    return any(start <= hhmm < end for start, end in spans)


def is_open(offer: Offer, at: dt.datetime) -> bool:
    return schedule_is_open(offer.schedule, offer.timezone, at)


def offer_refusal(*, offer: Offer, country: str, device: str, at: dt.datetime) -> str | None:
    """Why this offer won't take this click now, as a reason code; None if it will.

    An unknown country or device fails a restriction: the offer asked for certain ones.
    """
    if offer.status != OfferStatus.ACTIVE:
        return Refusal.OFFER_NOT_ACTIVE
    if offer.allowed_countries and country not in offer.allowed_countries:
        return Refusal.COUNTRY
    if offer.allowed_devices and device not in offer.allowed_devices:
        return Refusal.DEVICE
    if not is_open(offer, at):
        return Refusal.SCHEDULE
    if offer_capped(offer=offer, at=at):
        return Refusal.CAP
    return None
