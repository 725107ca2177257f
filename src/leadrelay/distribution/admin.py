"""Admin: which offers are distributed and how (editable); buyers, their caps, deliveries,
routing decisions, bids and returns (shown; buyers are set up with `buyer_create`, which
checks every setting)."""

from django.contrib import admin

from leadrelay.core.admin import ReadOnlyAdmin
from leadrelay.distribution.models import (
    Buyer,
    BuyerCap,
    BuyerReturn,
    Delivery,
    InboundPing,
    OfferRouting,
    PingBid,
    RoutingDecision,
)


@admin.register(OfferRouting)
class OfferRoutingAdmin(admin.ModelAdmin):
    list_display = ["offer", "mode", "max_buyers", "reserve_minor", "margin_bps", "enabled"]
    list_filter = ["mode", "enabled"]


class BuyerCapInline(admin.TabularInline):
    model = BuyerCap
    extra = 0


@admin.register(Buyer)
class BuyerAdmin(ReadOnlyAdmin):
    list_display = ["name", "advertiser", "vertical", "price_minor", "currency", "method", "status"]
    list_filter = ["status", "vertical", "method"]
    inlines = [BuyerCapInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["pk", "lead", "buyer", "status", "price_minor", "attempts", "created_at"]
    list_filter = ["status"]


@admin.register(RoutingDecision)
class RoutingDecisionAdmin(ReadOnlyAdmin):
    list_display = ["lead", "mode", "chosen", "created_at"]


@admin.register(PingBid)
class PingBidAdmin(ReadOnlyAdmin):
    list_display = ["decision", "buyer", "status", "bid_minor", "duration_ms"]
    list_filter = ["status"]


@admin.register(BuyerReturn)
class BuyerReturnAdmin(ReadOnlyAdmin):
    list_display = ["delivery", "reason", "status", "created_at", "decided_at"]
    list_filter = ["status"]


@admin.register(InboundPing)
class InboundPingAdmin(ReadOnlyAdmin):
    list_display = [
        "token", "offer", "affiliate", "accepted", "price_minor", "quote_minor", "created_at",
        "lead",
    ]  # fmt: skip
    list_filter = ["accepted"]
