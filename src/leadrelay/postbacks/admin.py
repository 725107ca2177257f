from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from leadrelay.core.admin import ReadOnlyAdmin
from leadrelay.postbacks.models import AffiliatePostback, PostbackAttempt, PostbackDelivery


@admin.register(AffiliatePostback)
class AffiliatePostbackAdmin(admin.ModelAdmin):
    list_display = ["id", "affiliate", "event", "offer", "is_active", "created_at"]
    list_filter = ["event", "is_active"]
    list_select_related = ["affiliate", "offer"]
    search_fields = ["url_template", "affiliate__name"]
    raw_id_fields = ["affiliate", "offer"]


class PostbackAttemptInline(admin.TabularInline):
    model = PostbackAttempt
    extra = 0
    can_delete = False
    fields = ["started_at", "status_code", "error", "duration_ms"]
    readonly_fields = ["started_at", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PostbackDelivery)
class PostbackDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "lead", "event", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event"]
    list_select_related = ["lead"]
    search_fields = ["url"]
    inlines = [PostbackAttemptInline]


@admin.register(PostbackAttempt)
class PostbackAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "delivery", "started_at", "status_code", "error", "duration_ms"]
    list_select_related = ["delivery"]
