"""Writes for offers, their lead schemas and affiliates' access to them."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.db import transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.core.bounds import MINOR_MAX
from leadrelay.core.errors import Conflict, Invalid, NotFound, Problem
from leadrelay.core.money import currency_is_valid
from leadrelay.offers.macros import deeplink_domains_problems, landing_url_problems
from leadrelay.offers.models import (
    AccessStatus,
    FieldType,
    LandingVariant,
    Offer,
    OfferAccess,
    OfferField,
    OfferStatus,
    PayoutModel,
    ReviewMode,
    Vertical,
    Visibility,
)
from leadrelay.offers.targeting import countries_problems, devices_problems, schedule_problems

_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESERVED_KEYS = frozenset({"click_id", "offer_id", "csrfmiddlewaretoken", "consent"})


@dataclass(frozen=True)
class Targeting:
    """Who an offer takes on a click, and where the others go (offers/targeting.py)."""

    allowed_countries: Sequence[str] = ()
    allowed_devices: Sequence[str] = ()
    schedule: Mapping[str, Any] = field(default_factory=dict)
    fallback_offer_id: int | None = None
    fallback_url: str = ""

    def problems(
        self, offer_id: int | None = None, advertiser_id: int | None = None
    ) -> list[Problem]:
        """Every problem; with `advertiser_id`, the fallback offer must be that advertiser's
        (an advertiser may not send its clicks to, or probe for, other advertisers' offers;
        the network may)."""
        problems = [
            Problem("invalid_country", m, "allowed_countries")
            for m in countries_problems(self.allowed_countries)
        ]
        problems += [
            Problem("invalid_device", m, "allowed_devices")
            for m in devices_problems(self.allowed_devices)
        ]
        problems += [
            Problem("invalid_schedule", m, "schedule") for m in schedule_problems(self.schedule)
        ]
        if self.fallback_url:
            problems += [
                Problem("invalid_fallback_url", m, "fallback_url")
                for m in landing_url_problems(self.fallback_url)
            ]
        fallback = self.fallback_offer_id
        if fallback is not None:
            candidates = Offer.objects.filter(pk=fallback)
            if advertiser_id is not None:
                candidates = candidates.filter(advertiser_id=advertiser_id)
        if fallback is not None and (fallback == offer_id or not candidates.exists()):
            problems.append(
                Problem(
                    "invalid_fallback_offer", "Name another, existing offer.", "fallback_offer_id"
                )
            )
        return problems

    def apply(self, offer: Offer) -> None:
        offer.allowed_countries = [c.upper() for c in self.allowed_countries]
        offer.allowed_devices = list(self.allowed_devices)
        offer.schedule = dict(self.schedule)
        offer.fallback_offer_id = self.fallback_offer_id
        offer.fallback_url = self.fallback_url


def offer_targeting_set(
    *, offer: Offer, targeting: Targeting, by_advertiser: bool = False
) -> Offer:
    """Replace an offer's click targeting and fallbacks; bad input changes nothing.

    `by_advertiser`: the advertiser sets it, so its fallback offer must be its own.
    """
    problems = targeting.problems(
        offer_id=offer.pk, advertiser_id=offer.advertiser_id if by_advertiser else None
    )
    if problems:
        raise Invalid(problems)
    targeting.apply(offer)
    offer.save()
    return offer


def landing_variant_set(*, offer: Offer, name: str, url: str, weight: int = 1) -> LandingVariant:
    """Add a landing variant to an offer's rotation, or change the one of that name."""
    problems = [Problem("invalid_url", m, "url") for m in landing_url_problems(url)]
    if not name.strip() or len(name) > 100:
        problems.append(Problem("invalid_name", "A name of 1 to 100 characters.", "name"))
    if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 10_000:
        problems.append(Problem("invalid_weight", "A weight from 0 (off) to 10000.", "weight"))
    if problems:
        raise Invalid(problems)
    variant, _ = LandingVariant.objects.update_or_create(
        offer=offer, name=name.strip(), defaults={"url": url, "weight": weight}
    )
    return variant


@dataclass(frozen=True)
class FieldSpec:
    key: str
    type: str
    label: str = ""
    required: bool = False
    choices: Sequence[str] = field(default_factory=tuple)
    max_length: int = 200
    qualifying_choices: Sequence[str] = field(default_factory=tuple)


def _validate_fields(specs: Sequence[FieldSpec]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        path = f"fields[{i}]"
        if not _KEY_RE.match(spec.key) or spec.key in _RESERVED_KEYS:
            problems.append(
                Problem(
                    "invalid_key",
                    "A field key is lowercase letters, digits and _ and starts with a letter.",
                    f"{path}.key",
                )
            )
        if spec.key in seen:
            problems.append(Problem("duplicate_key", f"Key {spec.key!r} is used twice.", path))
        seen.add(spec.key)
        if spec.type not in FieldType.values:
            problems.append(Problem("invalid_type", f"Unknown field type {spec.type!r}.", path))
        if spec.type == FieldType.CHOICE and (
            not spec.choices or any(not str(c).strip() for c in spec.choices)
        ):
            problems.append(
                Problem("choices_required", "A choice field needs its choices.", f"{path}.choices")
            )
        if set(spec.qualifying_choices) - set(spec.choices):
            problems.append(
                Problem(
                    "invalid_qualifying_choices",
                    "Qualifying answers must be among the field's choices.",
                    f"{path}.qualifying_choices",
                )
            )
        if not 1 <= spec.max_length <= 5000:
            problems.append(
                Problem("invalid_max_length", "max_length is 1 to 5000.", f"{path}.max_length")
            )
    return problems


def _validate_offer(
    *,
    advertiser: Organization,
    name: str,
    currency: str,
    revenue_minor: int,
    payout_minor: int,
    landing_url: str,
    default_region: str,
    tz: str,
    deeplink_domains: Sequence[str] = (),
    targeting: Targeting | None = None,
    by_advertiser: bool = False,
) -> list[Problem]:
    problems = []
    if targeting is not None:
        problems += targeting.problems(advertiser_id=advertiser.pk if by_advertiser else None)
    for message in deeplink_domains_problems(deeplink_domains):
        problems.append(Problem("invalid_domain", message, "deeplink_domains"))
    if advertiser.kind != OrganizationKind.ADVERTISER:
        problems.append(Problem("not_an_advertiser", "Offers belong to advertisers.", "advertiser"))
    if not name.strip():
        problems.append(Problem("required", "An offer needs a name.", "name"))
    if not currency_is_valid(currency):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    for key, value in (("revenue_minor", revenue_minor), ("payout_minor", payout_minor)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MINOR_MAX:
            problems.append(Problem("invalid_amount", f"Whole minor units, 0 to {MINOR_MAX}.", key))
    for message in landing_url_problems(landing_url):
        problems.append(Problem("invalid_landing_url", message, "landing_url"))
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(
            Problem("invalid_region", "Use a two-letter region code.", "default_region")
        )
    if tz not in time_zones():
        problems.append(Problem("invalid_timezone", "Use an IANA time zone name.", "timezone"))
    return problems


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names; read once (listing them scans the zone files on disk,
    about 0.1 s)."""
    return frozenset(zoneinfo.available_timezones())


@transaction.atomic
def offer_create(
    *,
    advertiser: Organization,
    name: str,
    revenue_minor: int,
    payout_minor: int,
    landing_url: str,
    currency: str = "USD",
    vertical: Vertical | str = Vertical.OTHER,
    description: str = "",
    status: OfferStatus | str = OfferStatus.DRAFT,
    payout_model: PayoutModel | str = PayoutModel.CPL,
    visibility: Visibility | str = Visibility.APPROVAL,
    review_mode: ReviewMode | str = ReviewMode.AUTO_APPROVE,
    default_region: str = "US",
    tz: str = "UTC",
    consent_text: str = "",
    deeplink_domains: Sequence[str] = (),
    targeting: Targeting | None = None,
    by_advertiser: bool = False,
    fields: Sequence[FieldSpec] = (),
    hold_days: int = 0,
    return_window_days: int = 0,
    revenue_bps: int = 0,
    payout_bps: int = 0,
) -> Offer:
    """Create an offer with its lead schema; refuse bad input with every problem at once.

    `hold_days` and `return_window_days` keep an approved lead's payout pending;
    `revenue_bps`/`payout_bps` are a RevShare offer's shares of a sale (100 = 1%).
    """
    problems = _validate_offer(
        advertiser=advertiser,
        name=name,
        currency=currency,
        revenue_minor=revenue_minor,
        payout_minor=payout_minor,
        landing_url=landing_url,
        default_region=default_region,
        tz=tz,
        deeplink_domains=deeplink_domains,
        targeting=targeting,
        by_advertiser=by_advertiser,
    )
    problems += _validate_fields(fields)
    for setting, number, top in (
        ("hold_days", hold_days, 365),
        ("return_window_days", return_window_days, 365),
        ("revenue_bps", revenue_bps, 10_000),
        ("payout_bps", payout_bps, 10_000),
    ):
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= top:
            problems.append(Problem("out_of_range", f"A whole number from 0 to {top}.", setting))
    if payout_model == PayoutModel.REVSHARE and payout_bps > revenue_bps:
        problems.append(
            Problem("payout_exceeds_revenue", "The affiliate's share is above yours.", "payout_bps")
        )
    for key, value, enum in (
        ("vertical", vertical, Vertical),
        ("status", status, OfferStatus),
        ("payout_model", payout_model, PayoutModel),
        ("visibility", visibility, Visibility),
        ("review_mode", review_mode, ReviewMode),
    ):
        if value not in enum.values:
            allowed = ", ".join(enum.values)
            problems.append(Problem("invalid_choice", f"Use one of: {allowed}.", key))
    if problems:
        raise Invalid(problems)
    offer = Offer.objects.create(
        advertiser=advertiser,
        name=name.strip(),
        vertical=Vertical(vertical),
        description=description,
        status=OfferStatus(status),
        payout_model=PayoutModel(payout_model),
        currency=currency,
        revenue_minor=revenue_minor,
        payout_minor=payout_minor,
        visibility=Visibility(visibility),
        landing_url=landing_url,
        review_mode=ReviewMode(review_mode),
        default_region=default_region,
        timezone=tz,
        consent_text=consent_text,
        deeplink_domains=[d.lower() for d in deeplink_domains],
        hold_days=hold_days,
        return_window_days=return_window_days,
        revenue_bps=revenue_bps,
        payout_bps=payout_bps,
    )
    if targeting is not None:
        targeting.apply(offer)
        offer.save()
    _fields_write(offer, fields)
    return offer


def _fields_write(offer: Offer, specs: Sequence[FieldSpec]) -> None:
    OfferField.objects.bulk_create(
        OfferField(
            offer=offer,
            key=spec.key,
            type=spec.type,
            label=spec.label or spec.key.replace("_", " ").capitalize(),
            required=spec.required,
            choices=[str(c) for c in spec.choices],
            qualifying_choices=[str(c) for c in spec.qualifying_choices],
            max_length=spec.max_length,
            position=i,
        )
        for i, spec in enumerate(specs)
    )


@transaction.atomic
def offer_fields_replace(*, offer: Offer, fields: Sequence[FieldSpec]) -> list[OfferField]:
    """Replace an offer's lead schema. Stored leads keep the values they were posted with."""
    problems = _validate_fields(fields)
    if problems:
        raise Invalid(problems)
    OfferField.objects.filter(offer=offer).delete()
    _fields_write(offer, fields)
    return list(offer.fields.all())


def offer_status_set(*, offer: Offer, status: OfferStatus | str) -> Offer:
    offer.status = OfferStatus(status)
    offer.save(update_fields=["status", "updated_at"])
    return offer


def offer_access_request(
    *, offer: Offer, affiliate: Organization, message: str = ""
) -> OfferAccess:
    """An affiliate asks to run an offer: public offers are approved at once, others wait.

    Private offers can't be asked for: to an outsider they do not exist.
    """
    if affiliate.kind != OrganizationKind.AFFILIATE:
        raise Conflict("not_an_affiliate", "Only affiliates run offers.")
    hidden = offer.visibility == Visibility.PRIVATE or offer.status != OfferStatus.ACTIVE
    if hidden and not OfferAccess.objects.filter(offer=offer, affiliate=affiliate).exists():
        raise NotFound("Offer")
    with transaction.atomic():
        access, _ = OfferAccess.objects.select_for_update().get_or_create(
            offer=offer,
            affiliate=affiliate,
            defaults={
                "status": AccessStatus.APPROVED
                if offer.visibility == Visibility.PUBLIC
                else AccessStatus.PENDING,
                "message": message[:1000],
                "decided_at": timezone.now() if offer.visibility == Visibility.PUBLIC else None,
            },
        )
    return access


def offer_access_decide(
    *,
    access: OfferAccess,
    approve: bool,
    decided_by: User | None,
    payout_minor_override: int | None = None,
) -> OfferAccess:
    if payout_minor_override is not None and payout_minor_override < 0:
        raise Invalid(
            [Problem("invalid_amount", "A payout can't be negative.", "payout_minor_override")]
        )
    access.status = AccessStatus.APPROVED if approve else AccessStatus.REJECTED
    access.decided_by = decided_by
    access.decided_at = timezone.now()
    if payout_minor_override is not None:
        access.payout_minor_override = payout_minor_override
    access.save()
    return access


def offer_access_grant(
    *,
    offer: Offer,
    affiliate: Organization,
    granted_by: User | None = None,
    payout_minor_override: int | None = None,
) -> OfferAccess:
    """The network gives an affiliate an offer directly (how private offers are shared)."""
    if affiliate.kind != OrganizationKind.AFFILIATE:
        raise Conflict("not_an_affiliate", "Only affiliates run offers.")
    access, _ = OfferAccess.objects.get_or_create(offer=offer, affiliate=affiliate)
    return offer_access_decide(
        access=access,
        approve=True,
        decided_by=granted_by,
        payout_minor_override=payout_minor_override,
    )


def offer_payout_for(*, offer: Offer, affiliate: Organization | None) -> int:
    """What this affiliate earns per approved lead: its override, else the offer's payout."""
    if affiliate is None:
        return 0
    override = (
        OfferAccess.objects.filter(offer=offer, affiliate=affiliate)
        .values_list("payout_minor_override", flat=True)
        .first()
    )
    return offer.payout_minor if override is None else override
