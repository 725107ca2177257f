from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.accounts.services import api_key_create
from leadrelay.offers.models import Offer
from tests.factories import OrganizationFactory, approve, make_offer, member


@pytest.fixture
def network(db: Any) -> Organization:
    return OrganizationFactory(name="The Network", kind=OrganizationKind.NETWORK)


@pytest.fixture
def advertiser(db: Any) -> Organization:
    return OrganizationFactory(name="Acme Insurance", kind=OrganizationKind.ADVERTISER)


@pytest.fixture
def other_advertiser(db: Any) -> Organization:
    return OrganizationFactory(name="Other Buyer", kind=OrganizationKind.ADVERTISER)


@pytest.fixture
def affiliate(db: Any) -> Organization:
    return OrganizationFactory(name="Good Traffic", kind=OrganizationKind.AFFILIATE)


@pytest.fixture
def other_affiliate(db: Any) -> Organization:
    return OrganizationFactory(name="Other Traffic", kind=OrganizationKind.AFFILIATE)


@pytest.fixture
def offer(network: Organization, advertiser: Organization, affiliate: Organization) -> Offer:
    offer = make_offer(advertiser)
    approve(offer, affiliate)
    return offer


def bearer(organization: Organization) -> dict[str, str]:
    """Headers for a Django test client call with a fresh API key of this organization."""
    issued = api_key_create(organization=organization, name="test")
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


@pytest.fixture
def affiliate_headers(affiliate: Organization) -> dict[str, str]:
    return bearer(affiliate)


def logged_in(organization: Organization) -> Client:
    client = Client()
    client.force_login(member(organization))
    return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2 at full strength costs 0.3 s a password; the tests need none of that.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _click_buffer_by_hand(settings: Any) -> Any:
    """No flush thread in tests: a test writes buffered clicks with click_buffer.flush()."""
    from leadrelay.tracking.buffer import click_buffer

    settings.LEADRELAY_CLICK_FLUSH_THREAD = False
    settings.LEADRELAY_LINK_CACHE_SECONDS = 0  # a paused offer stops redirecting at once
    yield
    click_buffer.discard()


@pytest.fixture(autouse=True)
def _no_rate_limits_unless_asked(settings: Any) -> None:
    # Tests post many leads from one key and address; rate-limit tests set their own.
    settings.LEADRELAY_RATE_LIMITS = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The API fuzz's figures (tests/test_api_fuzz.py), when it ran."""
    import sys

    fuzz = sys.modules.get("tests.test_api_fuzz")
    stats = getattr(fuzz, "FUZZ_STATS", None)
    if stats:
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
        terminalreporter.write_line(f"API fuzz: {shown}")
