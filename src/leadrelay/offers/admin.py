from typing import Any

from django import forms
from django.contrib import admin

from leadrelay.leads.rules import rules_problems
from leadrelay.offers.macros import deeplink_domains_problems, landing_url_problems
from leadrelay.offers.models import (
    LandingVariant,
    LeadCap,
    Offer,
    OfferAccess,
    OfferField,
    PayoutTier,
)
from leadrelay.offers.services import time_zones
from leadrelay.offers.targeting import countries_problems, devices_problems, schedule_problems


class LeadCapInline(admin.TabularInline):
    model = LeadCap
    extra = 0
    fields = ["period", "limit", "affiliate"]


class PayoutTierInline(admin.TabularInline):
    model = PayoutTier
    extra = 0
    fields = ["min_approved", "payout_minor", "affiliate"]


class LandingVariantInline(admin.TabularInline):
    model = LandingVariant
    extra = 0


class OfferFieldInline(admin.TabularInline):
    model = OfferField
    extra = 0


class OfferAdminForm(forms.ModelForm):
    """The checks the offer services make, for edits made in the admin."""

    class Meta:
        model = Offer
        fields = "__all__"  # noqa: DJ007 - the admin edits every field

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        checks = {
            "landing_url": landing_url_problems(data.get("landing_url") or "https://x.example/"),
            "fallback_url": landing_url_problems(data["fallback_url"])
            if data.get("fallback_url")
            else [],
            "allowed_countries": countries_problems(data.get("allowed_countries") or []),
            "allowed_devices": devices_problems(data.get("allowed_devices") or []),
            "schedule": schedule_problems(data.get("schedule") or {}),
            "deeplink_domains": deeplink_domains_problems(data.get("deeplink_domains") or []),
            "rules": [
                f"{p.field}: {p.message}"
                for p in rules_problems(
                    data.get("rules") or {},
                    set(self.instance.fields.values_list("key", flat=True))
                    if self.instance.pk
                    else set(),
                )
            ],
            "dedupe_fields": [
                f"{key!r} is not one of this offer's fields."
                for key in (data.get("dedupe_fields") or [])
                if self.instance.pk
                and key not in set(self.instance.fields.values_list("key", flat=True))
            ],
            "timezone": []
            if data.get("timezone") in time_zones()
            else ["Use an IANA time zone name."],
        }
        for field, messages in checks.items():
            for message in messages:
                self.add_error(field, message)
        return data


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferAdminForm
    list_display = [
        "name", "advertiser", "vertical", "status", "payout_model",
        "currency", "revenue_minor", "payout_minor", "visibility",
    ]  # fmt: skip
    list_filter = ["status", "vertical", "visibility", "payout_model"]
    search_fields = ["name", "advertiser__name"]
    inlines = [OfferFieldInline, LandingVariantInline, LeadCapInline, PayoutTierInline]


@admin.register(OfferAccess)
class OfferAccessAdmin(admin.ModelAdmin):
    list_display = ["offer", "affiliate", "status", "payout_minor_override", "decided_at"]
    list_filter = ["status"]
    search_fields = ["offer__name", "affiliate__name"]
