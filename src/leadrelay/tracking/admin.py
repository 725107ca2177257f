from django.contrib import admin

from leadrelay.tracking.models import Click, Conversion, TrackingLink


@admin.register(TrackingLink)
class TrackingLinkAdmin(admin.ModelAdmin):
    list_display = ["code", "offer", "affiliate", "sub1", "is_active", "created_at"]
    search_fields = ["code", "offer__name", "affiliate__name", "sub1"]


@admin.register(Click)
class ClickAdmin(admin.ModelAdmin):
    list_display = ["click_id", "offer", "affiliate", "created_at", "ip"]
    list_filter = ["offer"]
    search_fields = ["click_id"]
    list_select_related = ["offer", "affiliate"]


@admin.register(Conversion)
class ConversionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "offer", "affiliate", "event", "txid", "amount_minor", "status"]
    list_filter = ["status", "source", "event"]
    search_fields = ["click_id", "txid"]
    list_select_related = ["offer", "affiliate"]
    readonly_fields = [f.name for f in Conversion._meta.fields]
