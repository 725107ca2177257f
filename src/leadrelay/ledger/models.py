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
    ADVERTISER_PREPAID = "advertiser_prepaid", "Advertiser prepaid"
    NETWORK_REVENUE = "network_revenue", "Network revenue"
    NETWORK_ADJUSTMENTS = "network_adjustments", "Network adjustments"
    # Money in the network's bank: advertisers' payments in, affiliates' payouts out.
    NETWORK_CASH = "network_cash", "Network cash (clearing)"
    # An affiliate's earnings frozen by a payout run and not yet sent.
    AFFILIATE_PAYABLE_IN_RUN = "affiliate_payable_in_run", "Affiliate payable (in a payout run)"


CREDIT_NORMAL_ROLES = frozenset(
    {
        AccountRole.AFFILIATE_PAYABLE,
        AccountRole.AFFILIATE_PAYABLE_PENDING,
        AccountRole.ADVERTISER_PREPAID,
        AccountRole.NETWORK_REVENUE,
        AccountRole.AFFILIATE_PAYABLE_IN_RUN,
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
    CLICKS = "clicks", "Clicks (CPC), booked in batches"
    CONVERSION = "conversion", "Conversion (CPA or RevShare)"
    SALE = "sale", "Lead sold to a buyer"
    LEAD_RETURNED = "lead_returned", "Lead returned by the advertiser"
    REVERSAL = "reversal", "Reversal of an earlier transaction"
    ADJUSTMENT = "adjustment", "Manual adjustment"
    PAYMENT = "payment", "Advertiser payment"
    PREPAYMENT = "prepayment", "Advertiser prepayment"
    PREPAID_APPLIED = "prepaid_applied", "Prepaid balance applied to what is owed"
    PAYOUT_FROZEN = "payout_frozen", "Affiliate earnings frozen in a payout run"
    PAYOUT_SENT = "payout_sent", "Affiliate payout sent"


class Transaction(AppendOnlyModel):
    """A set of entries that balance per currency, posted once per external id."""

    external_id = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=TransactionKind.choices)
    memo = models.CharField(max_length=500, blank=True)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    # What the money was for, so invoices can list it by offer.
    offer = models.ForeignKey(
        "offers.Offer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    affiliate = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # How many things it books (a batch of clicks); 1 otherwise.
    quantity = models.PositiveIntegerField(default=1)
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


class PayoutThreshold(models.Model):
    """The least an affiliate is paid in one run, per currency. Without an affiliate: the
    network's default for that currency. No threshold at all: any positive amount."""

    affiliate = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    currency = models.CharField(max_length=3)
    minimum_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["affiliate", "currency"],
                name="payout_threshold_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_minor__gte=0), name="payout_threshold_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate or 'default'}: {self.minimum_minor} {self.currency}"


class PayoutRunStatus(models.TextChoices):
    OPEN = "open", "Frozen, being paid"
    PAID = "paid", "All lines paid"


class PayoutRun(models.Model):
    """Affiliates' available earnings up to `period_end`, frozen so they are paid once."""

    period_end = models.DateTimeField()
    status = models.CharField(
        max_length=8, choices=PayoutRunStatus.choices, default=PayoutRunStatus.OPEN
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Payout run {self.pk} to {self.period_end:%Y-%m-%d}"


class PayoutLine(models.Model):
    """What one affiliate is paid in one currency by one run. The amount never changes:
    it was moved out of the affiliate's available balance when the run was made."""

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="lines")
    affiliate = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    frozen = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="+")
    paid = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    reference = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["run", "affiliate__name", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "affiliate", "currency"], name="payout_line_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="payout_line_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate.name}: {self.amount_minor} {self.currency}"


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", "Issued"
    PAID = "paid", "Paid"


class Invoice(models.Model):
    """What an advertiser owes for a period, by offer, with returns credited. The lines are
    frozen when it is issued; each ledger transaction is invoiced once."""

    number = models.CharField(max_length=32, unique=True)
    advertiser = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(max_length=3)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    total_minor = models.BigIntegerField()
    status = models.CharField(
        max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.ISSUED
    )
    issued_at = models.DateTimeField(default=timezone.now)
    paid = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    offer = models.ForeignKey(
        "offers.Offer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=32, choices=TransactionKind.choices)
    description = models.CharField(max_length=200)
    quantity = models.IntegerField()
    amount_minor = models.BigIntegerField()

    class Meta:
        ordering = ["invoice", "id"]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount_minor}"


class InvoicedTransaction(models.Model):
    """A transaction on an invoice; unique, so nothing is billed twice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")
    transaction = models.OneToOneField(Transaction, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.invoice_id}:{self.transaction_id}"
