from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from leadrelay.core.admin import ReadOnlyAdmin
from leadrelay.ledger.models import (
    Account,
    Entry,
    Invoice,
    InvoiceLine,
    PayoutLine,
    PayoutRun,
    PayoutThreshold,
    Transaction,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class EntryInline(ReadOnlyInline):
    model = Entry


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["organization", "role", "currency", "created_at"]
    list_filter = ["role", "currency"]


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "kind", "posted_at", "memo"]
    list_filter = ["kind"]
    search_fields = ["external_id"]
    inlines = [EntryInline]


@admin.register(PayoutThreshold)
class PayoutThresholdAdmin(admin.ModelAdmin):
    """The least paid per run: per affiliate and currency, or the network's default."""

    list_display = ["affiliate", "currency", "minimum_minor"]
    list_filter = ["currency"]


class PayoutLineInline(ReadOnlyInline):
    model = PayoutLine
    fields = ["affiliate", "currency", "amount_minor", "paid_at", "reference"]


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "period_end", "status", "created_at", "created_by"]
    inlines = [PayoutLineInline]


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["description", "quantity", "amount_minor"]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "advertiser", "currency", "total_minor", "status", "issued_at"]
    list_filter = ["status", "currency"]
    inlines = [InvoiceLineInline]
