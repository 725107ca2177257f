"""Reads of core's own rows (staff only: nothing here belongs to an organization)."""

from __future__ import annotations

from django.db.models import Count

from leadrelay.core.models import SetAside, SetAsideKind


def set_aside_counts() -> dict[str, int]:
    """Open set-aside rows (core/batches.py) per kind, every kind present (0 when none)."""
    counts = dict.fromkeys(SetAsideKind.values, 0)
    grouped = (
        SetAside.objects.filter(resolved_at__isnull=True)
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )
    for kind, n in grouped:
        counts[kind] = n
    return counts
