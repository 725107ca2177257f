"""Buyers' servers are real HTTP servers on 127.0.0.1; a routed offer and its leads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leadrelay.distribution.buyers import buyer_create
from leadrelay.distribution.models import Buyer, OfferRouting
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.offers.models import Offer
from tests.factories import approve, make_offer
from tests.localhttp import LocalServer


@pytest.fixture(autouse=True)
def _local_urls_allowed(settings: Any) -> None:
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def buyer_server() -> Iterator[LocalServer]:
    server = LocalServer().start()
    yield server
    server.stop()


@pytest.fixture
def routed(advertiser, affiliate) -> Offer:
    offer = make_offer(advertiser, vertical="insurance")
    approve(offer, affiliate)
    OfferRouting.objects.create(offer=offer, mode="priority")
    return offer


def make_buyer(advertiser, url: str, **overrides: Any) -> Buyer:
    settings: dict[str, Any] = {
        "name": "Buyer",
        "vertical": "insurance",
        "price_minor": 3000,
        "url": url,
        "field_map": {"fname": "{first_name}", "mail": "{email}", "source": "leadrelay"},
    }
    settings.update(overrides)
    return buyer_create(advertiser=advertiser, **settings)


_n = iter(range(10**6))


def new_lead(offer: Offer, affiliate, **fields: Any) -> Lead:
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "Ada", "email": f"ada{next(_n)}@example.com", **fields},
        source=LeadSource.API,
        affiliate=affiliate,
    )
