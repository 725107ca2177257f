"""The double-entry ledger's rows. See leadrelay.ledger.services for the mechanism."""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

from leadrelay.accounts.models import Organization


class AppendOnlyError(Exception):
    """Ledger rows are never changed or removed: post a reversing transaction instead."""


class AppendOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("ledger rows are append only")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("ledger rows are append only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("ledger rows are append only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("ledger rows are append only")


class AccountRole(models.TextChoices):
    # Balances are debit-positive: assets and expenses grow with debits,
    # liabilities and income with credits (negative amounts).
    ADVERTISER_RECEIVABLE = "advertiser_receivable", "Advertiser receivable"
    AFFILIATE_PAYABLE = "affiliate_payable", "Affiliate payable (available)"
    AFFILIATE_PAYABLE_PENDING = "affiliate_payable_pending", "Affiliate payable (in hold)"
    NETWORK_REVENUE = "network_revenue", "Network revenue"
    NETWORK_ADJUSTMENTS = "network_adjustments", "Network adjustments"


CREDIT_NORMAL_ROLES = frozenset(
    {
        AccountRole.AFFILIATE_PAYABLE,
        AccountRole.AFFILIATE_PAYABLE_PENDING,
        AccountRole.NETWORK_REVENUE,
    }
)


class Account(models.Model):
    """One organization's account in one role and currency."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    role = models.CharField(max_length=32, choices=AccountRole.choices)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "role", "currency"], name="ledger_account_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization.name} {self.role} {self.currency}"


class TransactionKind(models.TextChoices):
    LEAD_APPROVED = "lead_approved", "Lead approved (CPL)"
    HOLD_RELEASED = "hold_released", "Affiliate earnings out of hold"
    REVERSAL = "reversal", "Reversal of an earlier transaction"
    ADJUSTMENT = "adjustment", "Manual adjustment"


class Transaction(AppendOnlyModel):
    """A set of entries that balance per currency, posted once per external id."""

    external_id = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=TransactionKind.choices)
    memo = models.CharField(max_length=500, blank=True)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    posted_at = models.DateTimeField(default=timezone.now, db_index=True)
    # A reversal points at what it reverses; one-to-one, so nothing is reversed twice.
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )

    def __str__(self) -> str:
        return self.external_id


class Entry(AppendOnlyModel):
    """A signed amount on one account: debits positive, credits negative."""

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount_minor=0), name="entry_non_zero")
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.amount_minor} {self.currency}"
