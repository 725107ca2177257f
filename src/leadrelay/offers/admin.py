from django.contrib import admin

from leadrelay.offers.models import LandingVariant, Offer, OfferAccess, OfferField


class LandingVariantInline(admin.TabularInline):
    model = LandingVariant
    extra = 0


class OfferFieldInline(admin.TabularInline):
    model = OfferField
    extra = 0


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = [
        "name", "advertiser", "vertical", "status", "payout_model",
        "currency", "revenue_minor", "payout_minor", "visibility",
    ]  # fmt: skip
    list_filter = ["status", "vertical", "visibility", "payout_model"]
    search_fields = ["name", "advertiser__name"]
    inlines = [OfferFieldInline, LandingVariantInline]


@admin.register(OfferAccess)
class OfferAccessAdmin(admin.ModelAdmin):
    list_display = ["offer", "affiliate", "status", "payout_minor_override", "decided_at"]
    list_filter = ["status"]
    search_fields = ["offer__name", "affiliate__name"]
