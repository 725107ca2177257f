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
from django.db.models import Sum
from django.utils import timezone

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.accounts.services import organization_create
from leadrelay.core.errors import Conflict, Invalid, NotFound, PermissionDenied, Problem
from leadrelay.core.money import currency_is_valid
from leadrelay.ledger.models import (
    CREDIT_NORMAL_ROLES,
    Account,
    AccountRole,
    Entry,
    Transaction,
    TransactionKind,
)
from leadrelay.reporting.rollups import money_posted


class Unbalanced(Conflict):
    def __init__(self, detail: str) -> None:
        super().__init__("ledger_unbalanced", f"The entries do not balance: {detail}.")


class InsufficientBalance(Conflict):
    def __init__(self, account: Account, balance_minor: int, wanted_minor: int) -> None:
        super().__init__(
            "insufficient_balance",
            f"{account.organization.name} has {balance_minor} {account.currency} minor units in "
            f"{AccountRole(account.role).label.lower()}; {wanted_minor} were asked for.",
        )


# Credit-normal accounts that hold someone's money: they may never go below zero.
NEVER_NEGATIVE_ROLES = frozenset(
    {
        AccountRole.AFFILIATE_PAYABLE,
        AccountRole.AFFILIATE_PAYABLE_PENDING,
        AccountRole.AFFILIATE_PAYABLE_IN_RUN,
        AccountRole.ADVERTISER_PREPAID,
    }
)


@dataclass(frozen=True)
class Posting:
    """An amount on an account. `currency`, when given, must be the account's own."""

    account: Account
    amount_minor: int
    currency: str | None = None


def account_for(*, organization: Organization, role: AccountRole, currency: str) -> Account:
    account, _ = Account.objects.get_or_create(
        organization=organization, role=role, currency=currency
    )
    return account


def account_balance(account: Account) -> int:
    """The account's balance in its normal direction (what is owed, held or kept)."""
    total = account.entries.aggregate(t=Sum("amount_minor"))["t"] or 0
    return -total if account.role in CREDIT_NORMAL_ROLES else total


def network_organization() -> Organization:
    """The operator's organization: the books' own side. One per installation."""
    org = Organization.objects.filter(kind=OrganizationKind.NETWORK).order_by("pk").first()
    if org is None:
        org = organization_create(name="Network", kind=OrganizationKind.NETWORK)
    return org


def _check(postings: Sequence[Posting]) -> list[Posting]:
    postings = [p for p in postings if p.amount_minor != 0]
    if not postings:
        raise Unbalanced("a transaction needs at least one non-zero entry")
    totals: dict[str, int] = defaultdict(int)
    for posting in postings:
        if not isinstance(posting.amount_minor, int) or isinstance(posting.amount_minor, bool):
            raise Unbalanced("amounts are whole minor units")
        if posting.currency is not None and posting.currency != posting.account.currency:
            raise Conflict(
                "currency_mismatch",
                f"The account {posting.account} holds {posting.account.currency}, "
                f"not {posting.currency}.",
            )
        totals[posting.account.currency] += posting.amount_minor
    off = {currency: total for currency, total in totals.items() if total != 0}
    if off:
        raise Unbalanced(", ".join(f"{c} off by {t}" for c, t in sorted(off.items())))
    return postings


def _refuse_overdraw(postings: Sequence[Posting]) -> None:
    """Lock every account this would take money out of and refuse if it hasn't enough.

    Accounts are locked in id order, so two transactions never wait on each other.
    """
    debits: dict[int, int] = defaultdict(int)
    for p in postings:
        if p.account.role in NEVER_NEGATIVE_ROLES:
            debits[p.account.pk] += p.amount_minor
    for account_id in sorted(a for a, d in debits.items() if d > 0):
        account = (
            Account.objects.select_for_update().select_related("organization").get(pk=account_id)
        )
        balance = account_balance(account)
        if balance - debits[account_id] < 0:
            raise InsufficientBalance(account, balance, debits[account_id])


def transaction_post(
    *,
    external_id: str,
    kind: TransactionKind,
    postings: Sequence[Posting],
    memo: str = "",
    lead_id: int | None = None,
    offer_id: int | None = None,
    affiliate_id: int | None = None,
    created_by: User | None = None,
    reverses: Transaction | None = None,
    quantity: int = 1,
    posted_at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """Post a balanced transaction once. Returns (transaction, created).

    A second call with the same external id returns the first transaction and
    posts nothing, whatever postings it carries. Refused, posting nothing: entries
    that don't balance per currency (`ledger_unbalanced`), a posting in a currency
    its account doesn't hold (`currency_mismatch`), and taking more out of an
    affiliate's or a prepaid account than it holds (`insufficient_balance`).
    """
    postings = _check(postings)
    with transaction.atomic():
        existing = Transaction.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
        _refuse_overdraw(postings)
        try:
            with transaction.atomic():
                txn = Transaction.objects.create(
                    external_id=external_id,
                    kind=kind,
                    memo=memo[:500],
                    lead_id=lead_id,
                    offer_id=offer_id,
                    affiliate_id=affiliate_id,
                    created_by=created_by,
                    reverses=reverses,
                    quantity=quantity,
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
                money_posted(
                    txn, [(p.account.role, p.account.currency, p.amount_minor) for p in postings]
                )
        except IntegrityError:
            # Another request posted the same external id between our check and insert.
            found = Transaction.objects.filter(external_id=external_id).first()
            if found is None:
                raise
            return found, False
    return txn, True


def earning_postings(
    *,
    advertiser: Organization,
    affiliate: Organization | None,
    currency: str,
    revenue_minor: int,
    payout_minor: int,
    in_hold: bool,
) -> list[Posting]:
    """What any sale books: the advertiser owes the revenue, the affiliate earns the payout
    (pending while in hold), the network keeps the rest."""
    network = network_organization()
    postings = [
        Posting(
            account_for(
                organization=advertiser, role=AccountRole.ADVERTISER_RECEIVABLE, currency=currency
            ),
            revenue_minor,
        ),
        Posting(
            account_for(organization=network, role=AccountRole.NETWORK_REVENUE, currency=currency),
            -(revenue_minor - (payout_minor if affiliate is not None else 0)),
        ),
    ]
    if affiliate is not None:
        role = AccountRole.AFFILIATE_PAYABLE_PENDING if in_hold else AccountRole.AFFILIATE_PAYABLE
        postings.append(
            Posting(
                account_for(organization=affiliate, role=role, currency=currency), -payout_minor
            )
        )
    return postings


def lead_approval_post(
    *,
    lead_id: int,
    offer_id: int,
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
    return transaction_post(
        external_id=f"lead:{lead_id}:approved",
        kind=TransactionKind.LEAD_APPROVED,
        postings=earning_postings(
            advertiser=advertiser,
            affiliate=affiliate,
            currency=currency,
            revenue_minor=revenue_minor,
            payout_minor=payout_minor,
            in_hold=in_hold,
        ),
        memo=f"Lead {lead_id} approved",
        lead_id=lead_id,
        offer_id=offer_id,
        affiliate_id=affiliate.pk if affiliate else None,
        posted_at=posted_at,
    )


def lead_sale_post(
    *,
    lead_id: int,
    buyer_id: int,
    offer_id: int,
    affiliate_id: int | None,
    buyer_advertiser: Organization,
    currency: str,
    price_minor: int,
    posted_at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """A lead delivered to a buyer: the buyer's advertiser owes the price, the network
    earns it (the affiliate was paid at approval). Once per (lead, buyer)."""
    return transaction_post(
        external_id=f"sale:{lead_id}:{buyer_id}",
        kind=TransactionKind.SALE,
        postings=[
            Posting(
                account_for(
                    organization=buyer_advertiser,
                    role=AccountRole.ADVERTISER_RECEIVABLE,
                    currency=currency,
                ),
                price_minor,
            ),
            Posting(
                account_for(
                    organization=network_organization(),
                    role=AccountRole.NETWORK_REVENUE,
                    currency=currency,
                ),
                -price_minor,
            ),
        ],
        memo=f"Lead {lead_id} sold to buyer {buyer_id}",
        lead_id=lead_id,
        offer_id=offer_id,
        affiliate_id=affiliate_id,
        posted_at=posted_at,
    )


def hold_release_post(
    *,
    external_id: str,
    affiliate: Organization,
    currency: str,
    payout_minor: int,
    memo: str,
    lead_id: int | None = None,
    offer_id: int | None = None,
    posted_at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """Move earnings from the affiliate's pending account to available; once per external id."""
    return transaction_post(
        external_id=external_id,
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
        memo=memo,
        lead_id=lead_id,
        offer_id=offer_id,
        affiliate_id=affiliate.pk,
        posted_at=posted_at,
    )


def lead_hold_release_post(
    *,
    lead_id: int,
    affiliate: Organization,
    currency: str,
    payout_minor: int,
    offer_id: int | None = None,
    posted_at: datetime | None = None,
) -> tuple[Transaction, bool]:
    """Move a lead's payout from the affiliate's pending account to available; once."""
    return hold_release_post(
        external_id=f"lead:{lead_id}:released",
        affiliate=affiliate,
        currency=currency,
        payout_minor=payout_minor,
        memo=f"Lead {lead_id}: hold over",
        lead_id=lead_id,
        offer_id=offer_id,
        posted_at=posted_at,
    )


def transaction_reverse(
    *,
    transaction_id: int,
    reason: str,
    created_by: User | None = None,
    posted_at: datetime | None = None,
) -> Transaction:
    """Post the exact opposite of a transaction, linked to it. A transaction is reversed once:
    a second reversal, or reversing a reversal, is refused and posts nothing. So is a reversal
    that would take back more than an affiliate still holds (`insufficient_balance`)."""
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
        reversal, created = transaction_post(
            external_id=f"{original.external_id}:reversal",
            kind=TransactionKind.REVERSAL,
            postings=[Posting(e.account, -e.amount_minor) for e in entries],
            memo=f"Reverses {original.external_id}: {reason}",
            lead_id=original.lead_id,
            offer_id=original.offer_id,
            affiliate_id=original.affiliate_id,
            created_by=created_by,
            reverses=original,
            quantity=original.quantity,
            posted_at=posted_at,
        )
        if not created:
            raise Conflict("already_reversed", "This transaction was already reversed.")
    return reversal


def staff_check(user: User | None) -> None:
    """Money is moved by hand by the network's owners and managers only."""
    if (
        user is None
        or not user.memberships.filter(
            organization__kind=OrganizationKind.NETWORK, role__in=["owner", "manager"]
        ).exists()
    ):
        raise PermissionDenied("staff_only", "Only network owners and managers move money.")


def reference_problems(reference: str) -> list[Problem]:
    """Money that moves outside leadrelay (a transfer, a card charge) carries its reference."""
    if reference.strip():
        return []
    return [Problem("reference_required", "Give the bank or processor reference.", "reference")]


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
    staff_check(staff)
    target = account_for(organization=organization, role=role, currency=currency)
    other = account_for(
        organization=network_organization(), role=AccountRole.NETWORK_ADJUSTMENTS, currency=currency
    )
    # Credit the affiliate (owed more) or the advertiser's receivable (owes less).
    txn, _ = transaction_post(
        external_id=f"adjustment:{uuid.uuid4().hex}",
        kind=TransactionKind.ADJUSTMENT,
        postings=[Posting(target, -amount_minor), Posting(other, amount_minor)],
        memo=reason.strip(),
        affiliate_id=organization.pk if organization.kind == OrganizationKind.AFFILIATE else None,
        created_by=staff,
    )
    return txn
