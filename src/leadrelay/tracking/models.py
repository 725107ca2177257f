from __future__ import annotations

from django.db import models

from leadrelay.accounts.models import Organization
from leadrelay.offers.models import Offer

SUB_FIELDS = ("sub1", "sub2", "sub3", "sub4", "sub5")
SUB_MAX_LENGTH = 100


class TrackingLink(models.Model):
    """An affiliate's link for one offer, with the sub ids it reports back under."""

    code = models.CharField(max_length=16, unique=True)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="links")
    affiliate = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="links")
    sub1 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub2 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub3 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub4 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub5 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"/c/{self.code}"


class Fallback(models.TextChoices):
    OFFER = "offer", "Sent to the fallback offer"
    URL = "url", "Sent to the fallback URL"
    NONE = "none", "No fallback: not redirected"


class Click(models.Model):
    """One visit through a tracking link. Keyed by its self-describing click id."""

    click_id = models.CharField(max_length=1100, unique=True)
    link = models.ForeignKey(TrackingLink, on_delete=models.PROTECT, related_name="clicks")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="clicks")
    affiliate = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="clicks")
    created_at = models.DateTimeField(db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    referer = models.CharField(max_length=1000, blank=True)
    visitor_id = models.CharField(max_length=40, blank=True)
    ip_ua_hash = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=2, blank=True)
    device = models.CharField(max_length=16, blank=True)
    os = models.CharField(max_length=40, blank=True)
    browser = models.CharField(max_length=40, blank=True)
    is_bot = models.BooleanField(default=False)
    is_unique = models.BooleanField(default=True)
    params = models.JSONField(default=dict, blank=True)
    landing_variant = models.ForeignKey(
        "offers.LandingVariant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clicks",
    )
    # Set when the link's offer refused the click (offers/targeting.py): the reason, and
    # where the visitor went instead. Then `offer` is the fallback offer, if there was one.
    refusal = models.CharField(max_length=32, blank=True)
    fallback = models.CharField(max_length=8, choices=Fallback.choices, blank=True)
    fallback_from = models.ForeignKey(
        Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sub1 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub2 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub3 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub4 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub5 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["offer", "created_at"]),
            models.Index(fields=["affiliate", "created_at"]),
            models.Index(fields=["offer", "visitor_id", "created_at"]),
            models.Index(fields=["offer", "ip_ua_hash", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.click_id


class PostbackKey(models.Model):
    """An advertiser's credentials for server-to-server conversion postbacks.

    The token is stored hashed (it is a bearer secret). The HMAC secret is kept
    as issued, because checking a signature needs it; it is shown once.
    """

    advertiser = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="postback_key"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    hmac_secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"postback key of {self.advertiser}"


class ConversionStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending"
    REJECTED = "rejected", "Rejected"


class ConversionSource(models.TextChoices):
    SERVER = "server", "Server-to-server postback"
    PIXEL = "pixel", "Pixel"


class Conversion(models.Model):
    """An event an advertiser reports for a click: a sale, a signup, a qualified call.

    Unique on (click, event, transaction id): a repeated postback books nothing twice.
    """

    click_id = models.CharField(max_length=1100)
    event = models.CharField(max_length=64)
    txid = models.CharField(max_length=128, blank=True)
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="conversions")
    affiliate = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="conversions"
    )
    link = models.ForeignKey(
        TrackingLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    credited_click_id = models.CharField(
        max_length=1100, help_text="The click the attribution model credited."
    )
    clicked_at = models.DateTimeField()
    sub1 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub2 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub3 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub4 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub5 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    amount_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=ConversionStatus.choices)
    reason = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=8, choices=ConversionSource.choices)
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    # Booked when approved on a CPA or RevShare offer (ledger/earnings.py).
    revenue_minor = models.BigIntegerField(default=0)
    payout_minor = models.BigIntegerField(default=0)
    booked_at = models.DateTimeField(null=True, blank=True)
    payable_at = models.DateTimeField(null=True, blank=True, db_index=True)
    released_at = models.DateTimeField(null=True, blank=True)
    payout_line = models.ForeignKey(
        "ledger.PayoutLine",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="conversions",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["click_id", "event", "txid"], name="conversion_once_per_txid"
            )
        ]
        indexes = [models.Index(fields=["offer", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event} on {self.click_id[:12]}… ({self.status})"
