from django.db import models
from django.utils import timezone


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RateCounter(models.Model):
    """Requests counted in one rate-limit window (core/ratelimit.py), when there is no Redis."""

    bucket = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.BigIntegerField(db_index=True, help_text="Unix seconds")

    def __str__(self) -> str:
        return f"{self.bucket}: {self.count}"


class SetAsideKind(models.TextChoices):
    CLICK = "click", "Click row"
    CPC = "cpc", "CPC booking of an offer"
    LEAD_HOLD = "lead_hold", "Hold release of a lead"
    CONVERSION_HOLD = "conversion_hold", "Hold release of a conversion"
    REPORT_SUMMARY = "report_summary", "Report summary claim of a subscription"


class SetAside(models.Model):
    """A row a batched writer could not store (core/batches.py), kept here instead of
    blocking every row behind it, so staff can see it and replay it.

    `data` is the row as JSON text, ASCII only: it holds what the row's own table could
    not (a NUL, which PostgreSQL text refuses, or a lone surrogate). One open row per
    kind and key: the same row failing again counts an attempt. `resolved_at` is set when
    the writer later stored it (a CPC offer booked on a later run) or found nothing left
    to do for it (a held lead taken back meanwhile)."""

    kind = models.CharField(max_length=16, choices=SetAsideKind.choices)
    key = models.CharField(max_length=1200, help_text="Which row: a click id, an offer.")
    error = models.TextField(help_text="The last failure: exception class and message.")
    data = models.TextField(help_text="The row as JSON (ASCII; NUL and surrogates escaped).")
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    failed_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "set-aside row"
        constraints = [
            # Also the index healthz counts open rows per kind with.
            models.UniqueConstraint(
                fields=["kind", "key"],
                condition=models.Q(resolved_at__isnull=True),
                name="set_aside_open_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key[:60]}"
