from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from leadrelay.core.admin import ReadOnlyAdmin
from leadrelay.ledger.models import Account, Entry, Transaction


class EntryInline(admin.TabularInline):
    model = Entry
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
