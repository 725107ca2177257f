"""Batched writes that one bad row can't block, and the rows set aside on the way.

A writer that stores many rows at once (the click buffer, CPC booking) hands them to
`batch_write` with a function that writes one chunk. Chunks are written in order. When a
chunk fails, it is written again in halves, each half again in halves if it fails, down
to single rows; a row that still fails on its own is handed to `set_aside` and every
other row is written. A 500-row chunk with one bad row costs about 2·log2(500) ≈ 18
more attempts; a chunk that succeeds costs nothing more. `row_set_aside` keeps such a
row (core/models.py SetAside), logged and counted in /healthz, instead of retrying it
forever in front of everyone else's.

Periodic jobs whose items each move on their own in one transaction (CPC booking per
offer, the hold releases of leads and conversions, claiming report summaries) use
`batch_write_each`: one item a chunk, a failing item set aside under its own key and
tried again by the next run (an attempt more), its row resolved once it goes through.

Bad row or outage: `OperationalError` and `InterfaceError` say the database did not
answer (it is down, the connection was lost, a lock or statement timed out, a deadlock):
no row is to blame, so nothing is set aside and `BatchInterrupted` hands every row not
written yet back to the caller, in order, to try again later. Any other error is taken
as the chunk's rows' own doing and looked for by halving: a `DataError` (a NUL, which
PostgreSQL text can't hold; a number out of range), an `IntegrityError` (a foreign key
to a row deleted meanwhile), a `ValueError` from adapting a value (a lone surrogate).
An error every row meets (a bug in the writer) so sets every row aside: kept and loud,
rather than retried in memory until the process ends and loses them.

Each attempt must be one transaction that has committed when `write` returns: foreign
keys are checked at commit (Django makes them DEFERRABLE INITIALLY DEFERRED on
PostgreSQL, and SQLite checks deferred keys at commit), so a row's failure only shows
where its attempt commits. Inside a caller's `transaction.atomic` the attempts are
savepoints (on PostgreSQL a failed one is rolled back and the connection goes on), but a
key checked at commit then fails the caller's commit, not an attempt.

Written by hand: a loop over a deque; no maintained library splits failing batches of
Django writes.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from leadrelay.core.models import SetAside, SetAsideKind

log = logging.getLogger(__name__)
T = TypeVar("T")

OUTAGES = (OperationalError, InterfaceError)
ERROR_MAX = 2000
KEY_MAX = SetAside._meta.get_field("key").max_length or 1200


@dataclass
class BatchResult:
    written: int = 0  # rows in chunks that were written
    set_aside: int = 0
    counted: int = 0  # batch_write_each: what the `write` calls returned, added up


class BatchInterrupted(Exception):
    """The database stopped answering: `unwritten` holds every row not written, in order
    (none was set aside for it); `written` rows were stored before. The cause is chained."""

    def __init__(self, unwritten: list[Any], written: int) -> None:
        super().__init__(f"{len(unwritten)} rows not written")
        self.unwritten = unwritten
        self.written = written


def batch_write(
    rows: Sequence[T],
    *,
    write: Callable[[list[T]], object],
    set_aside: Callable[[T, Exception], object],
    chunk: int,
) -> BatchResult:
    """Write `rows` with `write`, `chunk` at a time; halve a chunk that fails down to single
    rows and hand a single row that still fails to `set_aside` (see the module docstring).
    Raises BatchInterrupted when the database doesn't answer, or when `set_aside` fails."""
    result = BatchResult()
    # (rows, found by halving): the first failure of a chunk is logged, not each half's.
    parts: deque[tuple[list[T], bool]] = deque(
        (list(rows[i : i + chunk]), False) for i in range(0, len(rows), chunk)
    )
    while parts:
        part, halved = parts.popleft()
        try:
            write(part)
        except OUTAGES as exc:
            raise BatchInterrupted(_rows_of(part, parts), result.written) from exc
        except Exception as exc:
            if len(part) > 1:
                if not halved:
                    log.warning(
                        "writing %d rows failed (%s); writing them in halves to find the rows "
                        "at fault",
                        len(part),
                        _error_text(exc),
                    )
                half = len(part) // 2
                parts.extendleft([(part[half:], True), (part[:half], True)])
                continue
            try:
                set_aside(part[0], exc)
            except Exception as kept:  # the row can't be kept either: it goes back in line
                log.exception("setting a row aside failed")
                raise BatchInterrupted(_rows_of(part, parts), result.written) from kept
            result.set_aside += 1
            continue
        result.written += len(part)
    return result


def batch_write_each(
    items: Sequence[T],
    *,
    write: Callable[[T], int | None],
    kind: SetAsideKind,
    key: Callable[[T], str],
    data: Callable[[T], Mapping[str, Any]],
) -> BatchResult:
    """Write each of `items` on its own with `write` (one transaction an item): an item that
    fails is set aside as (`kind`, `key(item)`), an attempt more if it already was, and the
    items after it are written; then the open set-aside rows of the items written are
    resolved. `write` may return what it did (1 or 0, a count of postings): the result's
    `counted` adds them up. For periodic jobs whose items each move on their own (an offer's clicks
    booked, a held payout released), so that one item the database or the ledger refuses
    is tried again on every run without holding back the others. Raises BatchInterrupted
    when the database doesn't answer (nothing is resolved then: the next run does it)."""
    written: list[str] = []
    counted = 0

    def one(part: list[T]) -> None:
        nonlocal counted
        counted += write(part[0]) or 0
        written.append(key(part[0]))

    def failed(item: T, error: Exception) -> None:
        row_set_aside(kind=kind, key=key(item), data=data(item), error=error)

    result = batch_write(items, write=one, set_aside=failed, chunk=1)
    set_aside_resolve(kind=kind, keys=written)
    result.counted = counted
    return result


def _rows_of(part: list[T], parts: Iterable[tuple[list[T], bool]]) -> list[T]:
    return [*part, *(row for rest, _ in parts for row in rest)]


def _storable(text: str) -> str:
    """`text` as any database column holds it: lone surrogates and NUL as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _error_text(error: BaseException) -> str:
    return _storable(f"{type(error).__name__}: {error}".strip())[:ERROR_MAX]


class _RowEncoder(DjangoJSONEncoder):
    """Dates, decimals and UUIDs as Django writes them; anything else as its repr, so that
    setting a row aside never fails on the row's own values."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return repr(o)


def row_set_aside(
    *, kind: SetAsideKind, key: str, data: Mapping[str, Any], error: BaseException
) -> None:
    """Keep a row its writer could not store, and log it as an error. The same open row
    (kind and key) failing again counts an attempt and keeps the latest error and data.

    `data` is stored as JSON with ensure_ascii, so NUL and lone surrogates are escapes
    (`\\u0000`) that PostgreSQL text holds, and json.loads gives back the exact values."""
    text = _error_text(error)
    key = _storable(key)[:KEY_MAX]
    payload = json.dumps(dict(data), cls=_RowEncoder, ensure_ascii=True, sort_keys=True)
    log.error("%s %s set aside: %s", kind, key[:200], text)
    now = timezone.now()
    for _ in range(2):
        open_row = SetAside.objects.filter(kind=kind, key=key, resolved_at__isnull=True)
        if open_row.update(attempts=F("attempts") + 1, error=text, data=payload, failed_at=now):
            return
        try:
            with transaction.atomic():
                SetAside.objects.create(
                    kind=kind, key=key, error=text, data=payload, created_at=now, failed_at=now
                )
            return
        except IntegrityError:
            continue  # another process set the same row aside meanwhile: count an attempt


def set_aside_resolve(*, kind: SetAsideKind, keys: Iterable[str]) -> int:
    """Mark the open rows of `keys` stored after all (their writer succeeded later)."""
    keys = [_storable(key)[:KEY_MAX] for key in keys]
    if not keys:
        return 0
    return SetAside.objects.filter(kind=kind, key__in=keys, resolved_at__isnull=True).update(
        resolved_at=timezone.now()
    )
