"""Identical leads at the same instant: exactly one is accepted (real threads, real database)."""

import pytest
from django.db import connection

from leadrelay.leads.models import Lead, LeadSource, LeadStatus
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.models import Transaction
from tests.concurrency import run_together


@pytest.mark.django_db(transaction=True)
def test_identical_leads_posted_together_give_one_approved(offer, affiliate) -> None:
    # SQLite serializes writers; a few threads still prove the lock there.
    threads_count = 4 if connection.vendor == "sqlite" else 12

    def post(_: int) -> None:
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "Same", "email": "same@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )

    errors = run_together(threads_count, post)
    assert errors == []
    statuses = sorted(Lead.objects.values_list("status", flat=True))
    assert statuses == [LeadStatus.APPROVED] + [LeadStatus.DUPLICATE] * (threads_count - 1)
    assert Transaction.objects.count() == 1
