from django.db import models


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
