"""Rate limits: at most N requests per window for a key (an API key, an IP address).

Fixed windows: the count for `<name>:<key>:<window number>` goes up by one per
request and the request is refused past N, with the seconds until the window
ends as its Retry-After. With REDIS_URL the counters live in Redis (INCR and
EXPIRE in one round trip, shared by every web node); otherwise in the
database, as a guarded UPDATE per request, which is exact across processes
and the embedded default's only shared state. Old database windows are
pruned by the worker's periodic sweep.

Limits come first. `AddressLimitMiddleware` counts a request against its
address's limit (`LEADRELAY_ADDRESS_LIMITS`: the first rule whose method and
path match) before anything else reads it — no session, no API key lookup, no
body parsing — so a flood of invalid or unauthenticated requests is refused
with 429 as cheaply as it can be: one Redis round trip with REDIS_URL, else one
small database write. A key's own limit is counted right after the key is
authenticated (`ApiKeyAuth(limit=…)`, accounts/auth.py), before the body is read.

Written by hand: django-ratelimit counts in Django's cache, whose database
backend can't increment atomically, and the limits must hold across nodes.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import RedisError

from leadrelay.core.addresses import client_ip
from leadrelay.core.errors import DomainError
from leadrelay.core.models import RateCounter

log = logging.getLogger(__name__)


class TooManyRequests(DomainError):
    def __init__(self, retry_after: int, what: str) -> None:
        super().__init__(
            code="rate_limited",
            message=f"Too many requests {what}. Try again in {retry_after} s.",
            status=429,
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    requests: int
    seconds: int


class Counter(Protocol):
    def hit(self, bucket: str, ttl: int) -> int:
        """Count one request in `bucket` (kept `ttl` seconds); the count after it."""


class RedisCounter:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    def hit(self, bucket: str, ttl: int) -> int:
        pipe = self.client.pipeline()
        pipe.incr(bucket)
        pipe.expire(bucket, ttl, nx=True)
        count, _ = pipe.execute()  # one round trip, no database
        return int(count)


class DatabaseCounter:
    @transaction.atomic
    def hit(self, bucket: str, ttl: int) -> int:
        updated = RateCounter.objects.filter(bucket=bucket).update(count=F("count") + 1)
        if not updated:
            try:
                with transaction.atomic():  # a savepoint: the insert may lose a race
                    RateCounter.objects.create(
                        bucket=bucket, count=1, expires_at=int(time.time()) + ttl
                    )
                return 1
            except IntegrityError:  # another request made it first
                RateCounter.objects.filter(bucket=bucket).update(count=F("count") + 1)
        return int(RateCounter.objects.get(bucket=bucket).count)


@lru_cache(maxsize=4)
def _counter(redis_url: str) -> Counter:
    return RedisCounter(redis_url) if redis_url else DatabaseCounter()


def rate_limit_check(*, name: str, key: str, what: str) -> None:
    """Count one request for `key` under limit `name`; raise TooManyRequests past it.
    Nothing is counted for a limit that is not configured or an empty key."""
    configured = settings.LEADRELAY_RATE_LIMITS.get(name)
    if not configured or not key:
        return
    limit = Limit(*configured)
    now = time.time()
    window = int(now // limit.seconds)
    try:
        count = _counter(settings.REDIS_URL).hit(f"rl:{name}:{key}:{window}", limit.seconds + 1)
    except RedisError:
        # Losing a lead to a limiter outage is worse than letting a burst through.
        log.warning("rate limits not counted: Redis is unavailable", exc_info=True)
        return
    if count > limit.requests:
        retry_after = max(1, int((window + 1) * limit.seconds - now + 0.999))
        raise TooManyRequests(retry_after, what)


def rate_counters_prune() -> int:
    """Forget finished database windows (a periodic job; Redis expires its own)."""
    deleted, _ = RateCounter.objects.filter(expires_at__lt=int(time.time())).delete()
    return deleted


def address_limit_for(method: str, path: str) -> str:
    """The name of the limit a request's address is counted under ("" for none): the first
    rule of `LEADRELAY_ADDRESS_LIMITS` (method or "*", path pattern, limit name) that
    matches."""
    for rule_method, pattern, name in settings.LEADRELAY_ADDRESS_LIMITS:
        if rule_method in {"*", method} and re.fullmatch(pattern, path):
            return str(name)
    return ""


def too_many_response(request: HttpRequest, exc: TooManyRequests) -> HttpResponse:
    """429 with Retry-After: the API's error shape, or plain text for a browser."""
    response: HttpResponse
    if "text/html" in request.headers.get("Accept", ""):
        response = HttpResponse(exc.message, status=429, content_type="text/plain")
    else:
        response = JsonResponse(exc.as_dict(), status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


class AddressLimitMiddleware:
    """Count each request against its address's limit before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = address_limit_for(request.method or "GET", request.path_info)
        if name:
            try:
                rate_limit_check(name=name, key=client_ip(request) or "", what="from your address")
            except TooManyRequests as exc:
                return too_many_response(request, exc)
        return self.get_response(request)
