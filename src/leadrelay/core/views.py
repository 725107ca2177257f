from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from leadrelay.core.selectors import set_aside_counts


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers a query, 503 otherwise. `set_aside` counts the rows
    batched writers could not store (core/batches.py) per kind: not a reason for 503, since
    every other row is written; null when it can't be read (before `migrate`)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return JsonResponse(
            {"status": "unavailable", "database": "down", "error": type(exc).__name__}, status=503
        )
    try:
        set_aside: dict[str, int] | None = set_aside_counts()
    except Exception:
        set_aside = None
    return JsonResponse({"status": "ok", "database": "up", "set_aside": set_aside})
