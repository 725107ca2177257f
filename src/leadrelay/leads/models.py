from __future__ import annotations

from django.db import models

from leadrelay.accounts.models import Organization, User
from leadrelay.offers.models import Offer
from leadrelay.tracking.models import SUB_MAX_LENGTH, TrackingLink


class LeadStatus(models.TextChoices):
    PENDING_REVIEW = "pending_review", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    DUPLICATE = "duplicate", "Duplicate"
    # After approval: sent back by the advertiser within the offer's return window, or
    # reversed by network staff; either takes back the sale and the affiliate's payout.
    RETURNED = "returned", "Returned"
    REVERSED = "reversed", "Reversed"


class LeadSource(models.TextChoices):
    API = "api", "Lead-post API"
    FORM = "form", "Hosted form"


class ConsentText(models.Model):
    """One wording of a consent disclosure, stored once (leads/consent.py)."""

    sha256 = models.CharField(max_length=64, unique=True)
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… {self.text[:40]}"


class Lead(models.Model):
    """A prospect's submission for an offer, its attribution and its decision."""

    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="leads")
    affiliate = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    link = models.ForeignKey(
        TrackingLink, null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    click_id = models.CharField(max_length=1100, blank=True, db_index=True)
    sub1 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub2 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub3 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub4 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    sub5 = models.CharField(max_length=SUB_MAX_LENGTH, blank=True)
    source = models.CharField(max_length=8, choices=LeadSource.choices)
    fields = models.JSONField(default=dict)
    email_normalized = models.CharField(max_length=320, blank=True)
    phone_e164 = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=16, choices=LeadStatus.choices, db_index=True)
    reasons = models.JSONField(default=list, blank=True)
    # Quality signals seen at intake (leads/signals.py), whether or not they decided anything.
    signals = models.JSONField(default=list, blank=True)
    fraud_score = models.PositiveIntegerField(default=0)
    visitor_id = models.CharField(max_length=40, blank=True, db_index=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Consent evidence (leads/consent.py); with ip and user_agent it shows who agreed to what.
    consent_text = models.ForeignKey(
        ConsentText, null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    consent_page_url = models.CharField(max_length=2000, blank=True)
    consent_at = models.DateTimeField(null=True, blank=True)
    trustedform_cert_url = models.CharField(max_length=200, blank=True)
    jornaya_leadid = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    currency = models.CharField(max_length=3)
    revenue_minor = models.BigIntegerField(default=0, help_text="Booked when approved.")
    payout_minor = models.BigIntegerField(default=0, help_text="Booked when approved.")
    created_at = models.DateTimeField(db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # When the affiliate's payout leaves hold (leads/hold.py); null: nothing held.
    payable_at = models.DateTimeField(null=True, blank=True, db_index=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # Which rule set the payout (offers/payouts.py), shown on the affiliate's statement.
    payout_basis = models.CharField(max_length=120, blank=True)
    # Posted with an inbound ping's id (distribution/inbound.py): the payout quoted then.
    ping_quote_minor = models.BigIntegerField(null=True, blank=True)
    # The visitor's country and device at intake, and the landing variant its click saw:
    # kept on the lead so reports (reporting/rollups.py) can be rebuilt from rows alone.
    country = models.CharField(max_length=2, blank=True)
    device = models.CharField(max_length=16, blank=True)
    landing_variant = models.ForeignKey(
        "offers.LandingVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    returned_at = models.DateTimeField(null=True, blank=True)
    return_reason = models.CharField(max_length=64, blank=True)
    # The payout-run line that paid this lead's payout (ledger/payouts.py).
    payout_line = models.ForeignKey(
        "ledger.PayoutLine", null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )

    class Meta:
        indexes = [
            models.Index(fields=["offer", "email_normalized", "created_at"]),
            models.Index(fields=["offer", "phone_e164", "created_at"]),
            models.Index(fields=["affiliate", "created_at"]),
            models.Index(fields=["offer", "created_at"]),
            models.Index(fields=["ip", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"Lead {self.pk} ({self.status})"


class LeadStatusChange(models.Model):
    """Who changed a lead's status, when, from what, to what, and why."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    reasons = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=1000, blank=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.lead_id}: {self.from_status or '∅'} → {self.to_status}"


class IdempotencyRecord(models.Model):
    """The stored answer to a write made with an Idempotency-Key (leads/idempotency.py)."""

    api_key = models.ForeignKey(
        "accounts.ApiKey", on_delete=models.CASCADE, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_once")
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id}:{self.key}"


class LeadKey(models.Model):
    """A keyed hash of a lead's dedupe value (leads/dedupe.py): how duplicates are found."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="keys")
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="+")
    advertiser = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=64)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["digest", "name", "created_at"])]

    def __str__(self) -> str:
        return f"{self.lead_id}:{self.name}"


class SuppressionEntry(models.Model):
    """An email or phone an advertiser already has, stored only as a keyed hash."""

    advertiser = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="suppression_entries"
    )
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "suppression entries"
        constraints = [
            models.UniqueConstraint(fields=["advertiser", "digest"], name="suppression_once")
        ]

    def __str__(self) -> str:
        return f"{self.advertiser_id}:{self.digest[:12]}…"
