"""Idempotency keys for the lead-post API.

A client that sends `Idempotency-Key: <key>` may retry a POST safely: the
first successful answer is stored with a hash of the request, and a retry
with the same key and the same body gets that answer again, while a retry
with the same key and a different body gets 409. The record is written in the
same transaction as the lead, so concurrent requests with one key serialize on
its unique constraint and only one lead is made. Failed requests (4xx) store
nothing: they changed nothing, so retrying them is harmless. Keys are kept for
24 hours (`idempotency_records_prune`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from leadrelay.accounts.models import ApiKey
from leadrelay.core.errors import Conflict, Invalid, Problem
from leadrelay.leads.models import IdempotencyRecord

KEY_MAX_LENGTH = 255
KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: dict[str, Any]
    replayed: bool


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """A hash of what was asked; JSON bodies are compared by content, not formatting."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > KEY_MAX_LENGTH or not key.isprintable():
        raise Invalid(
            [
                Problem(
                    "invalid_idempotency_key",
                    f"An Idempotency-Key is 1 to {KEY_MAX_LENGTH} printable characters.",
                    "Idempotency-Key",
                )
            ]
        )


def _replay(record: IdempotencyRecord, fingerprint: str) -> StoredAnswer:
    if record.fingerprint != fingerprint:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
            "Idempotency-Key",
        )
    return StoredAnswer(record.response_status, record.response_body, replayed=True)


def idempotent(
    *,
    api_key: ApiKey,
    key: str,
    fingerprint: str,
    run: Callable[[], tuple[int, dict[str, Any]]],
) -> StoredAnswer:
    """Run `run` once per (API key, idempotency key); replay its answer afterwards."""
    _check_key(key)
    existing = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
    if existing is not None:
        return _replay(existing, fingerprint)
    try:
        with transaction.atomic():
            # Claim the key first: a concurrent request with the same key waits here
            # (PostgreSQL) or behind the write lock (SQLite) until this one commits.
            record = IdempotencyRecord.objects.create(
                api_key=api_key, key=key, fingerprint=fingerprint, response_status=0
            )
            status, body = run()
            record.response_status = status
            record.response_body = body
            record.save(update_fields=["response_status", "response_body"])
    except IntegrityError:
        record = IdempotencyRecord.objects.get(api_key=api_key, key=key)
        return _replay(record, fingerprint)
    return StoredAnswer(status, body, replayed=False)


def idempotency_records_prune() -> int:
    """Forget keys older than 24 hours (a periodic job)."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    return deleted
