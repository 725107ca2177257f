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


def set_aside_open_ids(*, kind: SetAsideKind) -> list[int]:
    """The ids that end the keys (`lead:42`) of `kind`'s open set-aside rows, oldest first:
    for a periodic job to visit its set-aside items again, even those that have left its
    list of due items meanwhile (so that their rows are resolved)."""
    keys = (
        SetAside.objects.filter(kind=kind, resolved_at__isnull=True)
        .order_by("pk")
        .values_list("key", flat=True)
    )
    return [
        int(tail) for key in keys if (tail := key.rpartition(":")[2]).isascii() and tail.isdigit()
    ]
