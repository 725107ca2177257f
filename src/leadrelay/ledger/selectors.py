"""Balances, always derived from ledger entries: there is no counter to drift."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from leadrelay.accounts.models import Organization
from leadrelay.ledger.models import CREDIT_NORMAL_ROLES, AccountRole, Entry


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
