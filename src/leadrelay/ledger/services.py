"""The double-entry ledger.

Every movement of money is a Transaction of Entries. Amounts are signed
integers in minor units: a debit is positive, a credit negative, so the
entries of a transaction sum to zero in each currency. Rows are append only:
a correction is a new, reversing transaction. Each transaction has an
external id (`lead:42:approved`), unique in the table, so an event retried
after a crash or a timeout posts nothing the second time.

The accounts are the network's books. For a CPL lead worth R to the
advertiser and P to the affiliate:

    debit  advertiser receivable   R   (the advertiser owes us)
    credit affiliate payable       P   (we owe the affiliate)
    credit network revenue       R-P   (our margin)
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.accounts.services import organization_create
from leadrelay.core.errors import Conflict, Invalid, NotFound, PermissionDenied, Problem
from leadrelay.core.money import currency_is_valid
from leadrelay.ledger.models import Account, AccountRole, Entry, Transaction, TransactionKind


class Unbalanced(Conflict):
    def __init__(self, detail: str) -> None:
        super().__init__("ledger_unbalanced", f"The entries do not balance: {detail}.")


@dataclass(frozen=True)
class Posting:
    account: Account
    amount_minor: int


def account_for(*, organization: Organization, role: AccountRole, currency: str) -> Account:
    account, _ = Account.objects.get_or_create(
        organization=organization, role=role, currency=currency
    )
    return account


def network_organization() -> Organization:
    """The operator's organization: the books' own side. One per installation."""
    org = Organization.objects.filter(kind=OrganizationKind.NETWORK).order_by("pk").first()
    if org is None:
        org = organization_create(name="Network", kind=OrganizationKind.NETWORK)
    return org


def transaction_post(
    *,
    external_id: str,
    kind: TransactionKind,
    postings: Sequence[Posting],
    memo: str = "",
    lead_id: int | None = None,
    posted_at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """Post a balanced transaction once. Returns (transaction, created).

    A second call with the same external id returns the first transaction and
    posts nothing, whatever postings it carries.
    """
    postings = [p for p in postings if p.amount_minor != 0]
    if not postings:
        raise Unbalanced("a transaction needs at least one non-zero entry")
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        if not isinstance(posting.amount_minor, int) or isinstance(posting.amount_minor, bool):
            raise Unbalanced("amounts are whole minor units")
        totals[posting.account.currency] += posting.amount_minor
    off = {currency: total for currency, total in totals.items() if total != 0}
    if off:
        raise Unbalanced(", ".join(f"{c} off by {t}" for c, t in sorted(off.items())))
    existing = Transaction.objects.filter(external_id=external_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            txn = Transaction.objects.create(
                external_id=external_id,
                kind=kind,
                memo=memo[:500],
                lead_id=lead_id,
                posted_at=posted_at or timezone.now(),
            )
            Entry.objects.bulk_create(
                Entry(
                    transaction=txn,
                    account=p.account,
                    amount_minor=p.amount_minor,
                    currency=p.account.currency,
                )
                for p in postings
            )
    except IntegrityError:
        # Another request posted the same external id between our check and insert.
        return Transaction.objects.get(external_id=external_id), False
    return txn, True


def lead_approval_post(
    *,
    lead_id: int,
    advertiser: Organization,
    affiliate: Organization | None,
    currency: str,
    revenue_minor: int,
    payout_minor: int,
    posted_at: datetime | None = None,
    in_hold: bool = False,
) -> tuple[Transaction, bool]:
    """Book an approved CPL lead; idempotent per lead.

    `in_hold`: the affiliate's share goes to its pending account, to be moved to
    available by `lead_hold_release_post` when the offer's hold ends.
    """
    network = network_organization()
    postings = [
        Posting(
            account_for(
                organization=advertiser,
                role=AccountRole.ADVERTISER_RECEIVABLE,
                currency=currency,
            ),
            revenue_minor,
        ),
        Posting(
            account_for(organization=network, role=AccountRole.NETWORK_REVENUE, currency=currency),
            -(revenue_minor - payout_minor),
        ),
    ]
    if affiliate is not None:
        role = AccountRole.AFFILIATE_PAYABLE_PENDING if in_hold else AccountRole.AFFILIATE_PAYABLE
        postings.append(
            Posting(
                account_for(organization=affiliate, role=role, currency=currency),
                -payout_minor,
            )
        )
    return transaction_post(
        external_id=f"lead:{lead_id}:approved",
        kind=TransactionKind.LEAD_APPROVED,
        postings=postings,
        memo=f"Lead {lead_id} approved",
        lead_id=lead_id,
        posted_at=posted_at,
    )


def lead_hold_release_post(
    *,
    lead_id: int,
    affiliate: Organization,
    currency: str,
    payout_minor: int,
    posted_at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """Move a lead's payout from the affiliate's pending account to available; once."""
    return transaction_post(
        external_id=f"lead:{lead_id}:released",
        kind=TransactionKind.HOLD_RELEASED,
        postings=[
            Posting(
                account_for(
                    organization=affiliate,
                    role=AccountRole.AFFILIATE_PAYABLE_PENDING,
                    currency=currency,
                ),
                payout_minor,
            ),
            Posting(
                account_for(
                    organization=affiliate, role=AccountRole.AFFILIATE_PAYABLE, currency=currency
                ),
                -payout_minor,
            ),
        ],
        memo=f"Lead {lead_id}: hold over",
        lead_id=lead_id,
        posted_at=posted_at,
    )


def transaction_reverse(*, transaction_id: int, reason: str) -> Transaction:
    """Post the exact opposite of a transaction, linked to it. A transaction is reversed once:
    a second reversal, or reversing a reversal, is refused and posts nothing."""
    if not reason.strip():
        raise Invalid([Problem("reason_required", "Say why it is reversed.", "reason")])
    with transaction.atomic():
        original = Transaction.objects.select_for_update().filter(pk=transaction_id).first()
        if original is None:
            raise NotFound("Transaction")
        if original.reverses_id is not None:
            raise Conflict("cannot_reverse_reversal", "A reversal can't itself be reversed.")
        if Transaction.objects.filter(reverses=original).exists():
            raise Conflict("already_reversed", "This transaction was already reversed.")
        entries = list(original.entries.select_related("account"))
        try:
            with transaction.atomic():
                reversal = Transaction.objects.create(
                    external_id=f"{original.external_id}:reversal",
                    kind=TransactionKind.REVERSAL,
                    memo=f"Reverses {original.external_id}: {reason}"[:500],
                    lead_id=original.lead_id,
                    reverses=original,
                )
                Entry.objects.bulk_create(
                    Entry(
                        transaction=reversal,
                        account=e.account,
                        amount_minor=-e.amount_minor,
                        currency=e.currency,
                    )
                    for e in entries
                )
        except IntegrityError:
            raise Conflict("already_reversed", "This transaction was already reversed.") from None
    return reversal


ADJUSTABLE_ROLES = {
    OrganizationKind.AFFILIATE: AccountRole.AFFILIATE_PAYABLE,
    OrganizationKind.ADVERTISER: AccountRole.ADVERTISER_RECEIVABLE,
}


def ledger_adjustment_post(
    *,
    organization: Organization,
    currency: str,
    amount_minor: int,
    reason: str,
    staff: User,
) -> Transaction:
    """A manual correction by network staff, with its reason and who made it.

    Positive amounts are in the organization's favour: an affiliate is owed more,
    an advertiser owes less. The other side is the network's adjustments account.
    """
    problems = []
    role = ADJUSTABLE_ROLES.get(OrganizationKind(organization.kind))
    if role is None:
        problems.append(
            Problem("not_adjustable", "Adjust affiliates or advertisers.", "organization")
        )
    if not reason.strip():
        problems.append(Problem("reason_required", "Say why.", "reason"))
    if not currency_is_valid(currency):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor == 0:
        problems.append(
            Problem("invalid_amount", "A whole, non-zero number of minor units.", "amount_minor")
        )
    if problems or role is None:
        raise Invalid(problems)
    if not staff.memberships.filter(
        organization__kind=OrganizationKind.NETWORK, role__in=["owner", "manager"]
    ).exists():
        raise PermissionDenied("staff_only", "Only network owners and managers adjust balances.")
    target = account_for(organization=organization, role=role, currency=currency)
    other = account_for(
        organization=network_organization(), role=AccountRole.NETWORK_ADJUSTMENTS, currency=currency
    )
    # Credit the affiliate (owed more) or the advertiser's receivable (owes less).
    with transaction.atomic():
        txn = Transaction.objects.create(
            external_id=f"adjustment:{uuid.uuid4().hex}",
            kind=TransactionKind.ADJUSTMENT,
            memo=reason.strip()[:500],
            created_by=staff,
        )
        Entry.objects.bulk_create(
            [
                Entry(
                    transaction=txn, account=target, amount_minor=-amount_minor, currency=currency
                ),
                Entry(transaction=txn, account=other, amount_minor=amount_minor, currency=currency),
            ]
        )
    return txn
