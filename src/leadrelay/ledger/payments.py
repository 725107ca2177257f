"""Money from advertisers: payments against what they owe, prepayments, and applying them.

    payment       debit network cash, credit advertiser receivable (owes less)
    prepayment    debit network cash, credit advertiser prepaid (money held for later)
    apply         debit advertiser prepaid, credit advertiser receivable

Each is posted once per reference: recording the same bank reference twice
posts nothing the second time.
"""

from __future__ import annotations

from django.db import transaction

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.core.errors import Conflict, Invalid, Problem
from leadrelay.core.money import currency_is_valid
from leadrelay.ledger.models import Account, AccountRole, Transaction, TransactionKind
from leadrelay.ledger.services import (
    Posting,
    account_balance,
    account_for,
    network_organization,
    reference_problems,
    staff_check,
    transaction_post,
)


def _validate(advertiser: Organization, currency: str, amount_minor: int, reference: str) -> None:
    problems = []
    if advertiser.kind != OrganizationKind.ADVERTISER:
        problems.append(Problem("not_an_advertiser", "Payments come from advertisers.", None))
    if not currency_is_valid(currency):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        problems.append(
            Problem("invalid_amount", "A whole, positive number of minor units.", "amount_minor")
        )
    problems += reference_problems(reference)
    if problems:
        raise Invalid(problems)


def advertiser_payment_record(
    *,
    advertiser: Organization,
    currency: str,
    amount_minor: int,
    reference: str,
    staff: User | None,
    prepayment: bool = False,
) -> Transaction:
    """Record money received from an advertiser, once per reference.

    A payment settles what the advertiser owes and may not exceed it
    (`payment_exceeds_owed`: record the rest as a prepayment); a prepayment is
    held on the advertiser's prepaid account until applied to an invoice.
    """
    _validate(advertiser, currency, amount_minor, reference)
    staff_check(staff)
    reference = reference.strip()[:120]
    if not prepayment:
        return payment_post(
            advertiser=advertiser,
            currency=currency,
            amount_minor=amount_minor,
            external_id=f"payment:{advertiser.pk}:{currency}:{reference}",
            memo=f"Payment: {reference}",
            staff=staff,
        )
    txn, _ = transaction_post(
        external_id=f"prepayment:{advertiser.pk}:{currency}:{reference}",
        kind=TransactionKind.PREPAYMENT,
        postings=[
            Posting(_cash(currency), amount_minor),
            Posting(
                account_for(
                    organization=advertiser, role=AccountRole.ADVERTISER_PREPAID, currency=currency
                ),
                -amount_minor,
            ),
        ],
        memo=f"Prepayment: {reference}",
        created_by=staff,
    )
    return txn


def _cash(currency: str) -> Account:
    return account_for(
        organization=network_organization(), role=AccountRole.NETWORK_CASH, currency=currency
    )


def payment_post(
    *,
    advertiser: Organization,
    currency: str,
    amount_minor: int,
    external_id: str,
    memo: str,
    staff: User | None,
    for_invoice: bool = False,
) -> Transaction:
    """Money received against what the advertiser owes, posted once per external id.

    A payment on account may not exceed what is owed (`payment_exceeds_owed`). An
    invoice's payment is its total whatever happened since it was issued: returns
    credited after it leave the advertiser in credit until its next invoice.
    """
    receivable = account_for(
        organization=advertiser, role=AccountRole.ADVERTISER_RECEIVABLE, currency=currency
    )
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=receivable.pk).first()
        existing = Transaction.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing
        owed = account_balance(receivable)
        if amount_minor > owed and not for_invoice:
            raise Conflict(
                "payment_exceeds_owed",
                f"{advertiser.name} owes {owed} {currency} minor units, less than "
                f"{amount_minor}; record the rest as a prepayment.",
                "amount_minor",
            )
        txn, _ = transaction_post(
            external_id=external_id,
            kind=TransactionKind.PAYMENT,
            postings=[Posting(_cash(currency), amount_minor), Posting(receivable, -amount_minor)],
            memo=memo,
            created_by=staff,
        )
    return txn


def prepaid_apply(
    *,
    advertiser: Organization,
    currency: str,
    amount_minor: int,
    external_id: str,
    memo: str,
    created_by: User | None = None,
) -> Transaction:
    """Settle part of what an advertiser owes from its prepaid balance, once per external id.
    More than the prepaid balance is refused (`insufficient_balance`)."""
    txn, _ = transaction_post(
        external_id=external_id,
        kind=TransactionKind.PREPAID_APPLIED,
        postings=[
            Posting(
                account_for(
                    organization=advertiser, role=AccountRole.ADVERTISER_PREPAID, currency=currency
                ),
                amount_minor,
            ),
            Posting(
                account_for(
                    organization=advertiser,
                    role=AccountRole.ADVERTISER_RECEIVABLE,
                    currency=currency,
                ),
                -amount_minor,
            ),
        ],
        memo=memo,
        created_by=created_by,
    )
    return txn
