import pytest
from django.db import DatabaseError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from leadrelay.accounts.models import OrganizationKind
from leadrelay.ledger.models import (
    AccountRole,
    AppendOnlyError,
    Entry,
    Transaction,
    TransactionKind,
)
from leadrelay.ledger.selectors import balances_for, trial_balance
from leadrelay.ledger.services import (
    Posting,
    Unbalanced,
    account_for,
    lead_approval_post,
    transaction_post,
)
from tests.factories import OrganizationFactory, lead_row, make_offer


@pytest.fixture
def accounts(network, advertiser, affiliate):
    return (
        account_for(
            organization=advertiser, role=AccountRole.ADVERTISER_RECEIVABLE, currency="USD"
        ),
        account_for(organization=affiliate, role=AccountRole.AFFILIATE_PAYABLE, currency="USD"),
        account_for(organization=network, role=AccountRole.NETWORK_REVENUE, currency="USD"),
    )


def test_an_unbalanced_transaction_is_refused(accounts):
    receivable, payable, _ = accounts
    with pytest.raises(Unbalanced, match="USD off by 1"):
        transaction_post(
            external_id="x",
            kind=TransactionKind.LEAD_APPROVED,
            postings=[Posting(receivable, 100), Posting(payable, -99)],
        )
    assert Transaction.objects.count() == 0


def test_balance_is_per_currency(network, advertiser, accounts):
    receivable, _, _ = accounts
    eur = account_for(organization=network, role=AccountRole.NETWORK_REVENUE, currency="EUR")
    with pytest.raises(Unbalanced):
        transaction_post(
            external_id="x",
            kind=TransactionKind.LEAD_APPROVED,
            postings=[Posting(receivable, 100), Posting(eur, -100)],
        )


def test_the_same_external_id_posts_once(accounts):
    receivable, payable, revenue = accounts
    postings = [Posting(receivable, 2500), Posting(payable, -1800), Posting(revenue, -700)]
    first, created = transaction_post(
        external_id="lead:1:approved", kind=TransactionKind.LEAD_APPROVED, postings=postings
    )
    again, created_again = transaction_post(
        external_id="lead:1:approved", kind=TransactionKind.LEAD_APPROVED, postings=postings
    )
    assert (created, created_again, first.pk) == (True, False, again.pk)
    assert Entry.objects.count() == 3


def test_ledger_rows_are_append_only_in_code(accounts):
    receivable, _, revenue = accounts
    txn, _ = transaction_post(
        external_id="t",
        kind=TransactionKind.LEAD_APPROVED,
        postings=[Posting(receivable, 10), Posting(revenue, -10)],
    )
    entry = txn.entries.first()
    entry.amount_minor = 99
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        Entry.objects.update(amount_minor=1)
    with pytest.raises(AppendOnlyError):
        Transaction.objects.all().delete()
    assert sorted(Entry.objects.values_list("amount_minor", flat=True)) == [-10, 10]


def test_ledger_rows_are_append_only_in_the_database(accounts):
    receivable, _, revenue = accounts
    transaction_post(
        external_id="t",
        kind=TransactionKind.LEAD_APPROVED,
        postings=[Posting(receivable, 10), Posting(revenue, -10)],
    )
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_entry SET amount_minor = 0")
    if connection.vendor == "postgresql":
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM ledger_entry")
    assert sorted(Entry.objects.values_list("amount_minor", flat=True)) == [-10, 10]


def test_balances_come_from_the_entries(network, advertiser, affiliate):
    offer = make_offer(advertiser)
    for _ in range(2):
        lead_approval_post(
            lead_id=lead_row(offer, affiliate).pk,
            offer_id=offer.pk,
            advertiser=advertiser,
            affiliate=affiliate,
            currency="USD",
            revenue_minor=2500,
            payout_minor=1800,
        )
    assert [
        (b.role, b.currency, b.amount_minor) for b in balances_for(organization=advertiser)
    ] == [("advertiser_receivable", "USD", 5000)]
    assert [(b.role, b.amount_minor) for b in balances_for(organization=affiliate)] == [
        ("affiliate_payable", 3600)
    ]
    assert [(b.role, b.amount_minor) for b in balances_for(organization=network)] == [
        ("network_revenue", 1400)
    ]
    assert trial_balance().ok


class TestLedgerInvariants(HypothesisTestCase):
    @settings(max_examples=30, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 10**9), st.integers(0, 10**9), st.sampled_from(["USD", "EUR"])
            ),
            min_size=1,
            max_size=8,
        )
    )
    def test_any_sequence_of_approvals_keeps_the_books_balanced(self, approvals) -> None:
        network = OrganizationFactory(kind=OrganizationKind.NETWORK)
        advertiser = OrganizationFactory(kind=OrganizationKind.ADVERTISER)
        affiliate = OrganizationFactory(kind=OrganizationKind.AFFILIATE)
        offer = make_offer(advertiser)
        expected: dict[str, int] = {}
        for revenue, payout, currency in approvals:
            if revenue == 0 and payout == 0:
                continue
            lead_approval_post(
                lead_id=lead_row(offer, affiliate).pk,
                offer_id=offer.pk,
                advertiser=advertiser,
                affiliate=affiliate,
                currency=currency,
                revenue_minor=revenue,
                payout_minor=payout,
            )
            expected[currency] = expected.get(currency, 0) + payout
        balance = trial_balance()
        assert balance.ok, balance
        earned = {b.currency: b.amount_minor for b in balances_for(organization=affiliate)}
        assert earned == {c: v for c, v in expected.items() if v}
        assert network.kind == "network"
