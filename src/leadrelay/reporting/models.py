"""Report rollups: counts and money per hour, offer, affiliate and breakdown value.

Kept up to date in the same database transaction as the rows they count
(reporting/rollups.py), so dashboards read these instead of scanning clicks,
leads and ledger entries; `leadrelay reports rebuild` recomputes them.
"""

from __future__ import annotations

from django.db import models

# What a report reads from a cell besides its hour: in covering indexes, so the reads don't
# visit the table on PostgreSQL.
_READ = ["offer_id", "affiliate_id", "currency", "clicks", "unique_clicks", "leads",
         "approved", "rejected", "duplicate", "pending", "returned", "revenue_minor",
         "payout_minor"]  # fmt: skip


class Rollup(models.Model):
    """One cell: the UTC hour, offer and affiliate (0: none), and either the whole of them
    (`dim` "") or the part whose breakdown `dim` (sub1…sub5, country, device, variant,
    reason) has `value`. Empty values are not stored: a breakdown's "(none)" is the whole
    less its values. Counts are in the rows with currency "", money in its currency's.
    Cells with `dim` "@day" hold the whole of a UTC day, `hour` being its midnight."""

    hour = models.DateTimeField()
    offer_id = models.BigIntegerField()
    affiliate_id = models.BigIntegerField(default=0)
    dim = models.CharField(max_length=8, default="", blank=True)
    value = models.CharField(max_length=100, default="", blank=True)
    currency = models.CharField(max_length=3, default="", blank=True)
    clicks = models.BigIntegerField(default=0)
    unique_clicks = models.BigIntegerField(default=0)
    leads = models.BigIntegerField(default=0)
    approved = models.BigIntegerField(default=0)
    rejected = models.BigIntegerField(default=0)
    duplicate = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    returned = models.BigIntegerField(default=0)
    revenue_minor = models.BigIntegerField(default=0)
    payout_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "offer_id", "affiliate_id", "dim", "value", "currency"],
                name="rollup_cell",
            )
        ]
        indexes = [
            # The whole cells of a period, read without touching the table on PostgreSQL
            # (bench/reports: the network's 30-day report 25 % faster at 1M clicks).
            models.Index(
                fields=["hour"],
                include=_READ,
                condition=models.Q(dim=""),
                name="rollup_whole_hour",
            ),
            # The same for the day cells (dim "@day", rollups.DAY), read by every report
            # without a breakdown (reporting/tables.py).
            models.Index(
                fields=["hour"],
                include=_READ,
                condition=models.Q(dim="@day"),
                name="rollup_day",
            ),
            models.Index(fields=["dim", "hour"], name="rollup_dim_hour"),
            models.Index(fields=["offer_id", "dim", "hour"], name="rollup_offer_dim_hour"),
            models.Index(fields=["affiliate_id", "dim", "hour"], name="rollup_aff_dim_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h offer {self.offer_id} aff {self.affiliate_id} {self.dim}"


class ReportFrequency(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"


class ReportSubscription(models.Model):
    """A user's emailed summary of their dashboard, as the organization they subscribed
    for sees it (reporting/subscriptions.py). One per user."""

    user = models.OneToOneField(
        "accounts.User", on_delete=models.CASCADE, related_name="report_subscription"
    )
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="report_subscriptions"
    )
    frequency = models.CharField(max_length=8, choices=ReportFrequency.choices)
    hour = models.PositiveSmallIntegerField()  # local hour of sending, 0…23
    weekday = models.PositiveSmallIntegerField(default=0)  # weekly: 0 Monday … 6 Sunday
    timezone = models.CharField(max_length=64)  # IANA
    # Summaries are due from here on: a new or changed subscription sends nothing for a
    # moment already past.
    active_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.frequency} summary for {self.user_id} at {self.hour}h {self.timezone}"


class ReportSendStatus(models.TextChoices):
    SENDING = "sending", "Sending"  # claimed by a worker; the SMTP conversation may be under way
    SENT = "sent", "Sent"
    RETRY = "retry", "Waiting to retry"  # the mail server did not take it; the next run tries
    FAILED = "failed", "Failed"  # refused for good, or retried for too long
    UNKNOWN = "unknown", "Unknown"  # the worker stopped mid-send: not sent again (at most once)


class ReportSend(models.Model):
    """One summary for one subscription and period. The unique period is the claim: a row
    is committed before the mail goes out, so two workers, or two runs, never both send it."""

    subscription = models.ForeignKey(
        ReportSubscription, on_delete=models.CASCADE, related_name="sends"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=8, choices=ReportSendStatus.choices)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, default="", blank=True)
    created_at = models.DateTimeField()
    claimed_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start", "period_end"], name="report_send_period"
            )
        ]
        indexes = [models.Index(fields=["status", "claimed_at"], name="report_send_status")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.period_start}…{self.period_end} {self.status}"
