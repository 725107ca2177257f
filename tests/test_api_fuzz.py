"""The API fuzzed from its own OpenAPI document (schemathesis), with each role's key.

Every operation gets schemathesis' boundary cases (the coverage phase: each
documented minimum and maximum, one past them, empty and missing values) and
generated ones (the fuzzing phase), positive and negative, with a fixed seed so a
run is repeatable. A case fails on any 5xx, an undocumented status, or an answer
that doesn't match its documented schema. The figures of the last run (cases,
statuses, 5xx) are printed at the end of the test session.

`LEADRELAY_FUZZ_EXAMPLES` sets the generated cases per operation and role (default 12).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import seed as hypothesis_seed
from schemathesis import checks

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.accounts.services import api_key_create
from leadrelay.distribution.buyers import buyer_create
from leadrelay.leads.models import Lead
from leadrelay.offers.models import Offer
from tests.factories import OrganizationFactory, approve, lead_row, make_offer

EXAMPLES = int(os.environ.get("LEADRELAY_FUZZ_EXAMPLES", "12"))
SEED = 20261202

# What the fuzz saw, for the summary at the end of the session (tests/conftest.py).
FUZZ_STATS: Counter[str] = Counter()

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def _connection_kept() -> Iterator[None]:
    """Requests reach the app through WSGI, not Django's test client: keep Django from
    closing the test's connection (inside the test's transaction) at each request's end,
    as the test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def network_data(db: Any, settings: Any, _connection_kept: None) -> dict[str, Organization]:
    """A small network for the fuzzer to find: an offer, a link-able affiliate, leads, a
    buyer, so ids 1, 2, 3… exist and some calls go past their 404."""
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    network = OrganizationFactory(name="Net", kind=OrganizationKind.NETWORK)
    advertiser = OrganizationFactory(name="Adv", kind=OrganizationKind.ADVERTISER)
    affiliate = OrganizationFactory(name="Aff", kind=OrganizationKind.AFFILIATE)
    offer: Offer = make_offer(advertiser, vertical="insurance")
    approve(offer, affiliate)
    for status in ("approved", "pending_review", "rejected"):
        lead: Lead = lead_row(offer, affiliate, status=status)
        assert lead.pk
    buyer_create(
        advertiser=advertiser,
        offers=[offer],
        name="Buyer",
        vertical="insurance",
        price_minor=1000,
        url="https://buyer.example.com/leads",
        field_map={"fname": "{first_name}", "mail": "{email}"},
    )
    return {"network": network, "advertiser": advertiser, "affiliate": affiliate}


@pytest.fixture
def role_headers(role: str, network_data: dict[str, Organization]) -> dict[str, str]:
    issued = api_key_create(organization=network_data[role], name="fuzz")
    return {"Authorization": f"Bearer {issued.secret}"}


@pytest.mark.parametrize("role", ["network", "advertiser", "affiliate"])
@hypothesis_seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_the_api_never_answers_5xx_and_keeps_to_its_schema(
    case: Any, role: str, role_headers: dict[str, str]
) -> None:
    response = case.call(headers=role_headers)
    FUZZ_STATS["cases"] += 1
    FUZZ_STATS[f"status {response.status_code // 100}xx"] += 1
    FUZZ_STATS["5xx"] += response.status_code >= 500  # shown even when it stays 0
    case.validate_response(response, checks=CHECKS)


def _inputs(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every schema a client sends: parameters and request bodies, with the component
    schemas they refer to, each with a path that says where it is."""
    components = doc["components"]["schemas"]
    seen: set[str] = set()
    stack: list[tuple[str, Any]] = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            for p in operation.get("parameters", []):
                stack.append((f"{method} {path} {p['name']}", p["schema"]))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                stack.append((f"{method} {path} body", media["schema"]))
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref:
                name = ref.rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    stack.append((name, components[name]))
                continue
            yield where, node
            stack.extend((f"{where}.{k}", v) for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(node))


def test_every_number_and_day_a_client_sends_has_its_range_in_the_document(db: Any) -> None:
    """What the fuzzer can only find by luck (an id of 2^63, a day in year 1) it finds at
    once when the document says where each range ends: so every integer and day sent to
    the API must say it."""
    numbers = [(w, n) for w, n in _inputs(schema.raw_schema) if n.get("type") == "integer"]
    days = [(w, n) for w, n in _inputs(schema.raw_schema) if n.get("format") == "date"]
    assert len(numbers) >= 30 and len(days) >= 6  # the walk reaches bodies and queries
    assert [w for w, n in numbers if not {"minimum", "maximum"} <= n.keys()] == []
    assert [w for w, n in days if not {"formatMinimum", "formatMaximum"} <= n.keys()] == []
