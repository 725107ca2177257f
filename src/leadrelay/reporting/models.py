"""Report rollups: counts and money per hour, offer, affiliate and breakdown value.

Kept up to date in the same database transaction as the rows they count
(reporting/rollups.py), so dashboards read these instead of scanning clicks,
leads and ledger entries; `leadrelay reports rebuild` recomputes them.
"""

from __future__ import annotations

from django.db import models


class Rollup(models.Model):
    """One cell: the UTC hour, offer and affiliate (0: none), and either the whole of them
    (`dim` "") or the part whose breakdown `dim` (sub1…sub5, country, device, variant,
    reason) has `value`. Empty values are not stored: a breakdown's "(none)" is the whole
    less its values. Counts are in the rows with currency "", money in its currency's."""

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
            models.Index(fields=["dim", "hour"], name="rollup_dim_hour"),
            models.Index(fields=["offer_id", "dim", "hour"], name="rollup_offer_dim_hour"),
            models.Index(fields=["affiliate_id", "dim", "hour"], name="rollup_aff_dim_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h offer {self.offer_id} aff {self.affiliate_id} {self.dim}"
