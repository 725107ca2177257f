"""Buyers, what they are sent, and every try: the rows behind distribution.

See leadrelay.distribution.services for routing and delivery.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from leadrelay.accounts.models import Organization
from leadrelay.core.models import TimestampedModel
from leadrelay.leads.models import Lead
from leadrelay.offers.models import CapPeriod, Offer, Vertical


class BuyerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


class DeliveryMethod(models.TextChoices):
    POST_JSON = "post_json", "HTTP POST, JSON body"
    POST_FORM = "post_form", "HTTP POST, form body"
    GET = "get", "HTTP GET, fields in the query"
    POST_XML = "post_xml", "HTTP POST, XML body"
    EMAIL = "email", "Email"
    PULL = "pull", "The buyer fetches its leads (API or CSV)"


class Buyer(TimestampedModel):
    """An advertiser's buyer campaign: which leads it buys, at what price, when, how many,
    and where they are sent."""

    advertiser = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="buyers")
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=8, choices=BuyerStatus.choices, default=BuyerStatus.ACTIVE, db_index=True
    )
    # Which leads: the offers it buys from (none: every offer of the vertical) and filters
    # in the rule language of qualification rules (leads/rules.py).
    vertical = models.CharField(max_length=32, choices=Vertical.choices)
    offers = models.ManyToManyField(Offer, blank=True, related_name="buyers")
    filters = models.JSONField(default=dict, blank=True)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    priority = models.PositiveIntegerField(default=100, help_text="Lower goes first.")
    weight = models.PositiveIntegerField(default=1)
    exclusive = models.BooleanField(
        default=True, help_text="Buys leads no one else buys; else shares them."
    )
    schedule = models.JSONField(default=dict, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # Budget: what it may owe beyond its prepaid balance; null: no limit.
    credit_limit_minor = models.BigIntegerField(null=True, blank=True)
    # Delivery.
    method = models.CharField(
        max_length=16, choices=DeliveryMethod.choices, default=DeliveryMethod.POST_JSON
    )
    url = models.CharField(max_length=2000, blank=True)
    email_to = models.CharField(max_length=500, blank=True, help_text="Comma separated.")
    email_subject = models.CharField(max_length=200, blank=True)
    # [[their field name, template such as "{first_name}"], …]: a list, because PostgreSQL's
    # jsonb does not keep an object's key order and buyers' formats may depend on it.
    field_map = models.JSONField(default=list)
    headers = models.JSONField(default=dict, blank=True)
    # Success: a 2xx status and, when set, a response rule.
    accept_json_path = models.CharField(max_length=200, blank=True)
    accept_value = models.CharField(max_length=200, blank=True)
    accept_regex = models.CharField(max_length=200, blank=True)
    lead_id_json_path = models.CharField(max_length=200, blank=True)
    # Where the answer says what the buyer pays for this lead, when it sets the price itself.
    price_json_path = models.CharField(max_length=200, blank=True)
    # Ping-post: the ping (non-personal fields only) and how to read its bid.
    ping_url = models.CharField(max_length=2000, blank=True)
    ping_field_map = models.JSONField(default=list, blank=True)
    bid_json_path = models.CharField(max_length=200, blank=True)
    ping_id_json_path = models.CharField(max_length=200, blank=True)
    ping_timeout_ms = models.PositiveIntegerField(default=1000)
    # Standard Webhooks signing secrets ("whsec_…"): the newest signs; all are sent
    # while a rotation overlaps.
    signing_secrets = models.JSONField(default=list, blank=True)
    # Pausing after a run of failures.
    pause_after_failures = models.PositiveIntegerField(default=20)
    # Returns: within this many days of delivery; accepted without review up to this share
    # of the month's deliveries (basis points; 0: every return is reviewed).
    return_window_days = models.PositiveIntegerField(default=7)
    auto_accept_returns_bp = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_minor__gte=0), name="buyer_price_non_negative"
            ),
            models.CheckConstraint(condition=models.Q(weight__gte=1), name="buyer_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def mapping(self) -> dict[str, str]:
        """The field map in its order."""
        return {name: template for name, template in self.field_map}

    def ping_mapping(self) -> dict[str, str]:
        return {name: template for name, template in self.ping_field_map}


class BuyerCap(models.Model):
    """At most `max_leads` leads and/or `max_spend_minor` per period in the buyer's time zone."""

    buyer = models.ForeignKey(Buyer, on_delete=models.CASCADE, related_name="caps")
    period = models.CharField(max_length=8, choices=CapPeriod.choices)
    max_leads = models.PositiveIntegerField(null=True, blank=True)
    max_spend_minor = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["buyer", "period"], name="buyer_cap_unique")]

    def __str__(self) -> str:
        return f"{self.buyer_id} {self.period}: {self.max_leads} / {self.max_spend_minor}"


class RoutingMode(models.TextChoices):
    PRIORITY = "priority", "Priority waterfall"
    WEIGHTED = "weighted", "Weighted round-robin"
    HIGHEST_PRICE = "highest_price", "Highest price"
    SHARED = "shared", "Send to every eligible buyer (shared)"
    PING_POST = "ping_post", "Ping-post auction"


class OfferRouting(models.Model):
    """Whether an offer's approved leads are distributed to buyers, and how."""

    offer = models.OneToOneField(Offer, on_delete=models.CASCADE, related_name="routing")
    mode = models.CharField(
        max_length=16, choices=RoutingMode.choices, default=RoutingMode.PRIORITY
    )
    max_buyers = models.PositiveIntegerField(
        default=1, help_text="Shared leads: sold to at most this many buyers."
    )
    # Ping-post: no bid under the reserve wins; the whole auction ends by the deadline.
    reserve_minor = models.BigIntegerField(default=0)
    auction_deadline_ms = models.PositiveIntegerField(default=2000)
    # Inbound pings (affiliates asking what a lead would earn): the network keeps this share
    # of what buyers pay (basis points), and a quote holds this long.
    margin_bps = models.PositiveIntegerField(default=0)
    ping_ttl_seconds = models.PositiveIntegerField(default=120)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.offer_id}: {self.mode}"

    @property
    def shared(self) -> bool:
        """Shared leads go to several buyers at once: `shared`, or a ping-post to the top N."""
        return self.mode == RoutingMode.SHARED or (
            self.mode == RoutingMode.PING_POST and self.max_buyers > 1
        )


class RoutingDecision(models.Model):
    """Which buyers were considered for a lead, why each was or wasn't chosen, and the order
    they are tried in. `considered`: [{buyer, name, price_minor, eligible, reason}]."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="routing_decisions")
    mode = models.CharField(max_length=16, choices=RoutingMode.choices)
    shared = models.BooleanField(default=False)
    considered = models.JSONField(default=list)
    chosen = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"lead {self.lead_id}: {self.mode} → {self.chosen}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    RETURNED = "returned", "Returned by the buyer"
    REJECTED = "rejected", "Rejected by the buyer"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One lead sent to one buyer: once per (lead, buyer)."""

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="deliveries")
    buyer = models.ForeignKey(Buyer, on_delete=models.PROTECT, related_name="deliveries")
    decision = models.ForeignKey(
        RoutingDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    buyer_lead_id = models.CharField(max_length=200, blank=True)
    ping_id = models.CharField(max_length=200, blank=True)
    # When the sale reached the ledger; until then its price counts against the budget here.
    booked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["lead", "buyer"], name="delivery_once_per_buyer")
        ]

    def __str__(self) -> str:
        return f"lead {self.lead_id} → {self.buyer_id}: {self.status}"


RESPONSE_KEEP = 2048


class DeliveryAttempt(models.Model):
    """One try: what was sent where, what came back (its first 2 KB), how long it took."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response = models.TextField(blank=True)
    outcome = models.CharField(max_length=16)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.started_at}: {self.outcome}"


class ReturnStatus(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    ACCEPTED = "accepted", "Accepted"
    REFUSED = "refused", "Refused"


class BuyerReturn(models.Model):
    """A buyer sending back a lead it was delivered, with a reason code; once per delivery."""

    delivery = models.OneToOneField(
        Delivery, on_delete=models.PROTECT, related_name="return_request"
    )
    reason = models.CharField(max_length=64)
    status = models.CharField(
        max_length=8, choices=ReturnStatus.choices, default=ReturnStatus.PENDING
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.delivery_id}: {self.reason} ({self.status})"


class BidStatus(models.TextChoices):
    BID = "bid", "Bid"
    NO_BID = "no_bid", "No bid"
    BELOW_RESERVE = "below_reserve", "Below the reserve"
    TIMEOUT = "timeout", "No answer in time"
    ERROR = "error", "Error"


class PingBid(models.Model):
    """One buyer's answer to one ping of a ping-post auction."""

    decision = models.ForeignKey(RoutingDecision, on_delete=models.CASCADE, related_name="bids")
    buyer = models.ForeignKey(Buyer, on_delete=models.PROTECT, related_name="bids")
    status = models.CharField(max_length=16, choices=BidStatus.choices)
    bid_minor = models.BigIntegerField(null=True, blank=True)
    ping_id = models.CharField(max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    response = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.decision_id}/{self.buyer_id}: {self.status} {self.bid_minor}"


class InboundPing(models.Model):
    """An affiliate asked what a lead would earn before posting it (`POST /api/v1/ping`).

    `fields` are the non-personal fields it sent; `price_minor` what the buyers would pay
    (ping-post: their bids; other modes: their prices), `quote_minor` the affiliate's share
    after the network's margin. The lead posted with `token` before `expires_at`, with the
    same values for these fields, is paid the quote; its auction is this one's
    (`considered`, `bids`: [{buyer, status, bid_minor, ping_id, duration_ms, error}])."""

    token = models.CharField(max_length=40, unique=True)
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="inbound_pings")
    affiliate = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="inbound_pings"
    )
    fields = models.JSONField(default=dict)
    accepted = models.BooleanField(help_text="Some buyer would take such a lead.")
    price_minor = models.BigIntegerField(default=0)
    quote_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    margin_bps = models.PositiveIntegerField(default=0)
    considered = models.JSONField(default=list)
    bids = models.JSONField(default=list)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    lead = models.OneToOneField(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_ping"
    )
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["affiliate", "created_at"])]

    def __str__(self) -> str:
        return self.token
