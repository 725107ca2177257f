"""Duplicates and suppression lists.

Each offer says which fields make a lead the same person (`dedupe_fields`,
default: its email and phone fields), whether any one of them or all together
must match (`dedupe_match`), for how many days (`dedupe_window_days`) and
across what (`dedupe_scope`: the offer, all the advertiser's offers, or the
whole network). The values are stored only as keyed hashes (LeadKey rows), so
a lead's contact details aren't copied into the index. Empty values never
match, and a lead is matched against earlier leads that were not themselves
duplicates. The caller holds the scope's row lock (see `dedupe_lock`), so two
identical leads at the same instant give one accepted and one duplicate.

Advertisers upload suppression lists ("already in our system") of emails and
phones; they are stored as the same keyed hashes and a lead matching one is
rejected with `suppressed`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.conf import settings
from django.db.models import Q
from email_validator import EmailNotValidError, validate_email

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.leads.models import Lead, LeadKey, LeadStatus, SuppressionEntry
from leadrelay.offers.models import DedupeMatch, DedupeScope, FieldType, Offer, OfferField

ALL = "__all__"


def _key() -> bytes:
    pepper = getattr(settings, "LEADRELAY_DEDUPE_PEPPER", "") or settings.SECRET_KEY
    return hmac.new(pepper.encode(), b"leadrelay.dedupe.v1", hashlib.sha256).digest()


def value_digest(value: str) -> str:
    return hmac.new(_key(), value.encode(), hashlib.sha256).hexdigest()


def _normal(field: OfferField, value: Any) -> str:
    text = str(value).strip()
    return text.lower() if field.type in (FieldType.EMAIL, FieldType.TEXT) else text


def dedupe_fields(offer: Offer, schema: list[OfferField]) -> list[OfferField]:
    if offer.dedupe_fields:
        chosen = set(offer.dedupe_fields)
        return [f for f in schema if f.key in chosen]
    return [f for f in schema if f.type in (FieldType.EMAIL, FieldType.PHONE)]


@dataclass(frozen=True)
class Keys:
    pairs: list[tuple[str, str]]  # (name, digest) to store and match

    @property
    def empty(self) -> bool:
        return not self.pairs


def lead_keys(offer: Offer, schema: list[OfferField], cleaned: dict[str, Any]) -> Keys:
    fields = dedupe_fields(offer, schema)
    values = [
        (f.key, _normal(f, cleaned[f.key])) for f in fields if cleaned.get(f.key) not in (None, "")
    ]
    if offer.dedupe_match == DedupeMatch.ALL:
        if not fields or len(values) < len(fields):
            return Keys([])  # a lead without every key can't be all the same
        combined = "\x1f".join(f"{k}={v}" for k, v in sorted(values))
        return Keys([(ALL, value_digest(combined))])
    return Keys([(k, value_digest(v)) for k, v in values])


def dedupe_lock(offer: Offer) -> None:
    """Take the row locks that serialize intake across the offer's dedupe scope.

    Every intake takes its advertiser's lock, whatever its own scope, so an
    advertiser-scoped check also sees leads arriving on the advertiser's other
    offers. Network-scoped offers also take the network's lock; leads arriving at
    the same instant on another advertiser's offer that is not network-scoped are
    not serialized with them (a known gap, see docs/leads.md).
    """
    Organization.objects.select_for_update().filter(pk=offer.advertiser_id).first()
    if offer.dedupe_scope == DedupeScope.NETWORK:
        Organization.objects.select_for_update().filter(kind=OrganizationKind.NETWORK).order_by(
            "pk"
        ).first()


def duplicate_of(offer: Offer, keys: Keys, now: datetime) -> Lead | None:
    if keys.empty:
        return None
    match = Q()
    for name, digest in keys.pairs:
        match |= Q(name=name, digest=digest)
    found = LeadKey.objects.filter(
        match, created_at__gte=now - timedelta(days=offer.dedupe_window_days)
    )
    if offer.dedupe_scope == DedupeScope.OFFER:
        found = found.filter(offer=offer)
    elif offer.dedupe_scope == DedupeScope.ADVERTISER:
        found = found.filter(advertiser_id=offer.advertiser_id)
    first = (
        found.exclude(lead__status=LeadStatus.DUPLICATE)
        .order_by("created_at", "lead_id")
        .values_list("lead_id", flat=True)
        .first()
    )
    return Lead.objects.filter(pk=first).first() if first else None


def lead_keys_store(lead: Lead, keys: Keys) -> None:
    LeadKey.objects.bulk_create(
        LeadKey(
            lead=lead,
            offer_id=lead.offer_id,
            advertiser_id=lead.offer.advertiser_id,
            name=name,
            digest=digest,
            created_at=lead.created_at,
        )
        for name, digest in keys.pairs
    )


def _contact_digests(email: str, phone: str) -> list[str]:
    return [value_digest(f"email:{email}")] * bool(email) + [value_digest(f"phone:{phone}")] * bool(
        phone
    )


def suppressed(*, advertiser_id: int, email: str, phone: str) -> bool:
    digests = _contact_digests(email, phone)
    return (
        bool(digests)
        and SuppressionEntry.objects.filter(
            advertiser_id=advertiser_id, digest__in=digests
        ).exists()
    )


@dataclass(frozen=True)
class SuppressionUpload:
    added: int
    already_listed: int
    invalid: list[str]  # the first lines that are neither an email nor a phone


def suppression_list_upload(
    *, advertiser: Organization, lines: Iterable[str], region: str = "US"
) -> SuppressionUpload:
    """Add emails and phones (one a line, or comma-separated) to an advertiser's list, hashed."""
    digests: set[str] = set()
    invalid: list[str] = []
    for line in lines:
        for token in line.replace(";", ",").split(","):
            token = token.strip().strip('"')
            if not token or token.lower() in {"email", "phone"}:
                continue
            digest = _suppression_digest(token, region)
            if digest is None:
                if len(invalid) < 20:
                    invalid.append(token[:100])
                continue
            digests.add(digest)
    existing = set(
        SuppressionEntry.objects.filter(advertiser=advertiser, digest__in=digests).values_list(
            "digest", flat=True
        )
    )
    SuppressionEntry.objects.bulk_create(
        [SuppressionEntry(advertiser=advertiser, digest=d) for d in digests - existing],
        batch_size=1000,
        ignore_conflicts=True,
    )
    return SuppressionUpload(len(digests - existing), len(existing), invalid)


def _suppression_digest(token: str, region: str) -> str | None:
    if "@" in token:
        try:
            email = validate_email(token, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            return None
        return value_digest(f"email:{email}")
    try:
        number = phonenumbers.parse(token, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return value_digest(
        "phone:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    )
