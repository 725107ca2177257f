from django.contrib import admin

from leadrelay.leads.models import Lead, LeadStatusChange


class LeadStatusChangeInline(admin.TabularInline):
    model = LeadStatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "reasons", "note", "actor", "created_at"]


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ["id", "offer", "affiliate", "status", "source", "created_at"]
    list_filter = ["status", "source", "offer"]
    search_fields = ["email_normalized", "phone_e164", "click_id"]
    list_select_related = ["offer", "affiliate"]
    readonly_fields = ["revenue_minor", "payout_minor", "currency", "status", "reasons"]
    inlines = [LeadStatusChangeInline]
