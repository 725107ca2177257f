from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from leadrelay.core.models import SetAside


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows that are a record (ledger entries, delivery logs): shown, never edited here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SetAside)
class SetAsideAdmin(ReadOnlyAdmin):
    """Rows batched writers could not store (core/batches.py): open ones are counted in
    /healthz; `data` is the row to replay."""

    list_display = ["kind", "key", "error", "attempts", "created_at", "failed_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "error"]
    readonly_fields = [f.name for f in SetAside._meta.fields]
