"""The ledger's invariants, checked against a live database (`leadrelay ledger check`)."""

from __future__ import annotations

from django.db.models import Count, F, Sum

from leadrelay.ledger.models import AccountRole, Entry, Invoice, PayoutLine, Transaction
from leadrelay.ledger.services import NEVER_NEGATIVE_ROLES


def ledger_problems() -> list[str]:
    """Every broken invariant, as a sentence naming what is off; empty when all hold."""
    problems = []
    for row in (
        Entry.objects.values("transaction__external_id", "currency")
        .annotate(total=Sum("amount_minor"))
        .exclude(total=0)
        .order_by("transaction__external_id")
    ):
        problems.append(
            f"transaction {row['transaction__external_id']} is off by {row['total']} "
            f"{row['currency']}"
        )
    for row in (
        Entry.objects.values("currency").annotate(total=Sum("amount_minor")).exclude(total=0)
    ):
        problems.append(f"debits and credits differ by {row['total']} {row['currency']}")
    for entry in Entry.objects.exclude(currency=F("account__currency")).values(
        "pk", "currency", "account__currency", "transaction__external_id"
    ):
        problems.append(
            f"entry {entry['pk']} of {entry['transaction__external_id']} is in "
            f"{entry['currency']} on an account in {entry['account__currency']}"
        )
    # Credits are negative: an account that holds someone's money summing above 0 is overdrawn.
    for row in (
        Entry.objects.filter(account__role__in=NEVER_NEGATIVE_ROLES)
        .values("account_id", "account__organization__name", "account__role", "currency")
        .annotate(total=Sum("amount_minor"))
        .filter(total__gt=0)
        .order_by("account_id")
    ):
        label = AccountRole(row["account__role"]).label.lower()
        problems.append(
            f"{row['account__organization__name']} has a negative {label} balance: "
            f"{-row['total']} {row['currency']}"
        )
    for txn in Transaction.objects.filter(reverses__isnull=False).annotate(n=Count("entries")):
        original = {
            (e.account_id, e.amount_minor)
            for e in Entry.objects.filter(transaction=txn.reverses_id)
        }
        mirrored = {(e.account_id, -e.amount_minor) for e in Entry.objects.filter(transaction=txn)}
        if original != mirrored:
            problems.append(f"reversal {txn.external_id} does not mirror what it reverses")
    problems += _payout_and_invoice_problems()
    return problems


def _payout_and_invoice_problems() -> list[str]:
    problems = []
    for line in PayoutLine.objects.select_related("frozen", "paid"):
        for txn in filter(None, [line.frozen, line.paid]):
            moved = txn.entries.filter(account__role=AccountRole.AFFILIATE_PAYABLE_IN_RUN)
            amount = abs(moved.aggregate(t=Sum("amount_minor"))["t"] or 0)
            if amount != line.amount_minor:
                problems.append(
                    f"payout line {line.pk} is for {line.amount_minor} {line.currency} but "
                    f"{txn.external_id} moved {amount}"
                )
    for invoice in Invoice.objects.annotate(lines_total=Sum("lines__amount_minor")):
        if invoice.lines_total != invoice.total_minor:
            problems.append(
                f"invoice {invoice.number} totals {invoice.total_minor} but its lines "
                f"{invoice.lines_total}"
            )
    return problems
