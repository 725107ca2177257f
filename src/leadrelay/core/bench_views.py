"""Endpoints for benchmarks only, routed when LEADRELAY_BENCH_ENDPOINTS is on.

`bench_echo` is the floor a lead post is compared with (bench/leads.py): the
same server, middleware and JSON parsing, and no database.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def bench_echo(request: HttpRequest) -> JsonResponse:
    """Parse the JSON body and answer 201, as a lead post would, without doing anything."""
    json.loads(request.body)
    return JsonResponse({"ok": True}, status=201)
