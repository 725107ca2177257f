import pytest
from django.core.management import call_command
from django.db import connection

from leadrelay.core.errors import Conflict, Invalid
from leadrelay.ledger.models import Entry, Transaction
from leadrelay.ledger.selectors import balances_for
from leadrelay.ledger.services import lead_approval_post, transaction_reverse
from tests.factories import lead_row, make_offer


@pytest.fixture
def booked(network, advertiser, affiliate):
    offer = make_offer(advertiser)
    txn, _ = lead_approval_post(
        lead_id=lead_row(offer, affiliate).pk,
        offer_id=offer.pk,
        advertiser=advertiser,
        affiliate=affiliate,
        currency="USD",
        revenue_minor=2500,
        payout_minor=1800,
    )
    return txn


def test_a_reversal_mirrors_the_transaction_and_links_to_it(booked, affiliate, advertiser):
    reversal = transaction_reverse(transaction_id=booked.pk, reason="lead returned")
    assert (reversal.reverses, reversal.kind) == (booked, "reversal")
    assert sorted(e.amount_minor for e in reversal.entries.all()) == [-2500, 700, 1800]
    assert {b.amount_minor for b in balances_for(organization=affiliate)} == {0}
    assert {b.amount_minor for b in balances_for(organization=advertiser)} == {0}


def test_a_transaction_is_reversed_once(booked):
    reversal = transaction_reverse(transaction_id=booked.pk, reason="returned")
    with pytest.raises(Conflict) as second:
        transaction_reverse(transaction_id=booked.pk, reason="again")
    assert second.value.code == "already_reversed"
    with pytest.raises(Conflict) as of_reversal:
        transaction_reverse(transaction_id=reversal.pk, reason="undo")
    assert of_reversal.value.code == "cannot_reverse_reversal"
    with pytest.raises(Invalid):
        transaction_reverse(transaction_id=booked.pk, reason=" ")
    assert Transaction.objects.count() == 2
    assert Entry.objects.count() == 6


def test_the_check_passes_on_a_healthy_ledger(booked, capsys):
    transaction_reverse(transaction_id=booked.pk, reason="returned")
    call_command("ledger", "check")
    assert "every invariant holds" in capsys.readouterr().out


def test_the_check_finds_what_is_off_and_exits_1(booked, capsys):
    account = Entry.objects.filter(transaction=booked).first().account_id
    with connection.cursor() as cursor:  # written behind the services' back
        if connection.vendor == "postgresql":  # and the database's balance trigger
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the checks due so far pass
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "INSERT INTO ledger_entry (transaction_id, account_id, amount_minor, currency) "
            "VALUES (%s, %s, %s, %s)",
            [booked.pk, account, 5, "USD"],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(SystemExit) as exit_:
        call_command("ledger", "check")
    assert exit_.value.code == 1
    out = capsys.readouterr().out
    assert f"transaction {booked.external_id} is off by 5 USD" in out
    assert "debits and credits differ by 5 USD" in out
