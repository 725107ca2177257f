"""Outbound affiliate postbacks: an affiliate's tracker URLs, each send and each try.

An `AffiliatePostback` says "call this URL when that happens to one of my leads".
When it happens, one `PostbackDelivery` is stored with the URL already rendered
(so the log shows exactly what was called), and every HTTP try is a
`PostbackAttempt`. The unique (postback, lead, event) makes an event send once.
"""

from __future__ import annotations

from django.db import models

from leadrelay.accounts.models import Organization
from leadrelay.leads.models import Lead
from leadrelay.offers.models import Offer

URL_MAX_LENGTH = 2000
RESPONSE_EXCERPT_MAX = 2048


class PostbackEvent(models.TextChoices):
    """What happened to a lead.

    `lead_reversed` is accepted now so affiliates can set it up; nothing fires it
    yet: the returns/reversal work will call `affiliate_postbacks_enqueue` with it.
    """

    LEAD_ACCEPTED = "lead_accepted", "Lead accepted"
    LEAD_APPROVED = "lead_approved", "Lead approved"
    LEAD_REJECTED = "lead_rejected", "Lead rejected"
    LEAD_REVERSED = "lead_reversed", "Lead reversed"


class AffiliatePostback(models.Model):
    """An affiliate's tracker URL template for one event; for one offer or, without one, all."""

    affiliate = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="postbacks")
    event = models.CharField(max_length=16, choices=PostbackEvent.choices)
    offer = models.ForeignKey(
        Offer, null=True, blank=True, on_delete=models.CASCADE, related_name="postbacks"
    )
    url_template = models.CharField(max_length=URL_MAX_LENGTH)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["affiliate", "event"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.url_template}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class PostbackDelivery(models.Model):
    """One event of one lead for one postback: the URL called, its state and the last answer.

    The postback may be deleted later; the delivery stays as the affiliate's log
    (scoped by the lead's affiliate) and a pending one is then not sent.
    """

    postback = models.ForeignKey(
        AffiliatePostback,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="postback_deliveries")
    event = models.CharField(max_length=16, choices=PostbackEvent.choices)
    url = models.TextField()
    status = models.CharField(
        max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=RESPONSE_EXCERPT_MAX, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["postback", "lead", "event"], name="postback_delivery_once_per_event"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["lead", "event"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} of lead {self.lead_id}: {self.status}"


class PostbackAttempt(models.Model):
    """One HTTP try of a delivery: when, the status code or the error, how long it took."""

    delivery = models.ForeignKey(
        PostbackDelivery, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}: {self.status_code or self.error}"
