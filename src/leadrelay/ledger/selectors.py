"""Balances, always derived from ledger entries: there is no counter to drift."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from leadrelay.accounts.models import Organization
from leadrelay.ledger.models import CREDIT_NORMAL_ROLES, AccountRole, Entry, TransactionKind


@dataclass(frozen=True)
class Balance:
    role: str
    currency: str
    amount_minor: int  # in the account's normal direction: what is owed, earned or kept

    @property
    def label(self) -> str:
        return AccountRole(self.role).label


def balances_for(*, organization: Organization) -> list[Balance]:
    rows = (
        Entry.objects.filter(account__organization=organization)
        .values("account__role", "currency")
        .annotate(total=Sum("amount_minor"))
        .order_by("account__role", "currency")
    )
    return [
        Balance(
            role=row["account__role"],
            currency=row["currency"],
            amount_minor=-row["total"]
            if row["account__role"] in CREDIT_NORMAL_ROLES
            else row["total"],
        )
        for row in rows
    ]


@dataclass
class AffiliateBalance:
    """What an affiliate has earned in one currency, by where the money is."""

    currency: str
    pending_minor: int = 0  # in hold or the advertiser's return window
    available_minor: int = 0  # can go into the next payout run
    in_run_minor: int = 0  # frozen in a payout run, not sent yet
    paid_minor: int = 0  # sent, all time


@dataclass
class AdvertiserBalance:
    currency: str
    owed_minor: int = 0  # billed or billable, not paid
    prepaid_minor: int = 0  # paid in advance, not applied yet


def affiliate_balances(*, organization: Organization) -> list[AffiliateBalance]:
    """Per currency, all from ledger entries."""
    out: dict[str, AffiliateBalance] = {}
    fields = {
        AccountRole.AFFILIATE_PAYABLE_PENDING: "pending_minor",
        AccountRole.AFFILIATE_PAYABLE: "available_minor",
        AccountRole.AFFILIATE_PAYABLE_IN_RUN: "in_run_minor",
    }
    for b in balances_for(organization=organization):
        if b.role in fields:
            row = out.setdefault(b.currency, AffiliateBalance(b.currency))
            setattr(row, fields[AccountRole(b.role)], b.amount_minor)
    paid = (
        Entry.objects.filter(
            account__organization=organization,
            account__role=AccountRole.AFFILIATE_PAYABLE_IN_RUN,
            transaction__kind=TransactionKind.PAYOUT_SENT,
        )
        .values("currency")
        .annotate(total=Sum("amount_minor"))
    )
    for row in paid:
        out.setdefault(row["currency"], AffiliateBalance(row["currency"])).paid_minor = row["total"]
    return [out[c] for c in sorted(out)]


def advertiser_balances(*, organization: Organization) -> list[AdvertiserBalance]:
    out: dict[str, AdvertiserBalance] = {}
    for b in balances_for(organization=organization):
        if b.role == AccountRole.ADVERTISER_RECEIVABLE:
            out.setdefault(b.currency, AdvertiserBalance(b.currency)).owed_minor = b.amount_minor
        elif b.role == AccountRole.ADVERTISER_PREPAID:
            row = out.setdefault(b.currency, AdvertiserBalance(b.currency))
            row.prepaid_minor = b.amount_minor
    return [out[c] for c in sorted(out)]


@dataclass(frozen=True)
class TrialBalance:
    debits_minor: dict[str, int]
    credits_minor: dict[str, int]
    unbalanced_transactions: list[str]

    @property
    def ok(self) -> bool:
        return not self.unbalanced_transactions and self.debits_minor == self.credits_minor


def trial_balance() -> TrialBalance:
    """Debits and credits per currency over the whole ledger, and any transaction that is off."""
    debits: dict[str, int] = {}
    credits: dict[str, int] = {}
    for row in Entry.objects.values("currency", "amount_minor"):
        bucket = debits if row["amount_minor"] > 0 else credits
        bucket[row["currency"]] = bucket.get(row["currency"], 0) + abs(row["amount_minor"])
    off = (
        Entry.objects.values("transaction__external_id", "currency")
        .annotate(total=Sum("amount_minor"))
        .exclude(total=0)
        .values_list("transaction__external_id", flat=True)
    )
    return TrialBalance(debits, credits, sorted(set(off)))
