"""Test data, built through the same services the product uses."""

from __future__ import annotations

import itertools
from typing import Any

import factory

from leadrelay.accounts.models import Organization, OrganizationKind, Role, User
from leadrelay.accounts.services import membership_create
from leadrelay.offers.models import Offer
from leadrelay.offers.services import FieldSpec, offer_access_grant, offer_create

_seq = itertools.count(1)

DEFAULT_FIELDS = [
    FieldSpec("first_name", "text", "First name", required=True),
    FieldSpec("email", "email", "Email", required=True),
    FieldSpec("phone", "phone", "Phone"),
    FieldSpec("zip", "postal_code", "ZIP"),
]


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    kind = OrganizationKind.AFFILIATE


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @classmethod
    def _after_postgeneration(cls, instance: User, create: bool, results: Any = None) -> None:
        if create:
            instance.save()


def member(organization: Organization, role: Role = Role.OWNER) -> User:
    user = UserFactory()
    membership_create(user=user, organization=organization, role=role)
    user.refresh_from_db()
    return user


def make_offer(advertiser: Organization, **overrides: Any) -> Offer:
    kwargs: dict[str, Any] = {
        "name": f"Offer {next(_seq)}",
        "revenue_minor": 2500,
        "payout_minor": 1800,
        "currency": "USD",
        "landing_url": "https://lp.example.com/?cid={click_id}&s1={sub1}",
        "status": "active",
        "visibility": "public",
        "fields": DEFAULT_FIELDS,
    }
    kwargs.update(overrides)
    return offer_create(advertiser=advertiser, **kwargs)


def approve(offer: Offer, affiliate: Organization, payout: int | None = None) -> None:
    offer_access_grant(offer=offer, affiliate=affiliate, payout_minor_override=payout)


def lead_row(offer: Offer, affiliate: Organization | None = None, **fields: Any) -> Any:
    """A bare lead row, for tests of what happens after intake (the ledger, reports)."""
    from django.utils import timezone

    from leadrelay.leads.models import Lead, LeadSource, LeadStatus

    defaults: dict[str, Any] = {
        "offer": offer,
        "affiliate": affiliate,
        "source": LeadSource.API,
        "status": LeadStatus.PENDING_REVIEW,
        "currency": offer.currency,
        "created_at": timezone.now(),
    }
    defaults.update(fields)
    return Lead.objects.create(**defaults)


CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def visitor(
    ip: str | None = "203.0.113.10",
    user_agent: str = CHROME_UA,
    visitor_id: str = "",
    country: str = "",
) -> Any:
    """The facts of a visitor, as the redirect view would read them from a request."""
    import secrets

    from leadrelay.tracking.visitor import VisitorFacts, device_for

    return VisitorFacts(
        ip=ip,
        user_agent=user_agent,
        referer="",
        visitor_id=visitor_id or secrets.token_hex(16),
        country=country,
        device=device_for(user_agent),
    )


def make_click(link: Any, **params: str) -> Any:
    """A click on `link`, written at once; returns the Click."""
    from leadrelay.tracking.services import click_record

    return click_record(code=link.code, visitor=visitor(), params=params, write_now=True).click


def form_submit(
    client: Any, offer: Offer, data: dict[str, str], seconds: float = 20, **extra: Any
) -> Any:
    """Open the hosted form, fill it in for `seconds` as a person would, and send it."""
    import datetime as dt
    import re

    import time_machine
    from django.utils import timezone

    page = client.get(f"/f/{offer.pk}/", {"click_id": data.get("click_id", "")}).content.decode()
    token = re.search(r'name="lr_ft" value="([^"]+)"', page)
    assert token, "the form carries its timing token"
    with time_machine.travel(timezone.now() + dt.timedelta(seconds=seconds), tick=True):
        return client.post(f"/f/{offer.pk}/", {**data, "lr_ft": token.group(1)}, **extra)
