"""Buffered click writes: the redirect answers before its click row is committed.

Each process keeps the clicks it served in memory and a background thread
writes them in one batch at least every `LEADRELAY_CLICK_FLUSH_SECONDS` (1 s),
sooner when `LEADRELAY_CLICK_BATCH` rows wait, and once more when the process
shuts down (SIGTERM or a normal exit). This is safe because the click id is
self-describing (core/clickid.py): a lead carrying it is attributed to the
right link, offer, affiliate and sub ids even if its row was lost in a crash.

Whether a click is unique (the visitor's first on that offer in 24 hours) is
decided here, per batch, not in the request: the redirect never waits on a read
of earlier clicks. Two processes flushing the same visitor in the same second
may both count it unique: it counts clicks, not people.

A click the database refuses (a NUL in a sub id, which PostgreSQL text can't hold; its
link deleted between the redirect and the flush) must not hold back everyone else's:
a chunk that fails is written again in halves down to single clicks, and a click that
still fails alone is set aside (core/batches.py: kept as a SetAside row, logged,
counted in /healthz). The rollup cells are added in the same transaction as the chunk,
so they are halved with it and count exactly the clicks stored. When the database does
not answer at all, nothing is set aside: the clicks not written go back in line.

Written by hand: this is a few dozen lines around a thread and a list, and no
maintained library buffers Django model inserts.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import signal
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q

from leadrelay.core.batches import BatchInterrupted, batch_write, row_set_aside
from leadrelay.core.models import SetAsideKind
from leadrelay.reporting.rollups import clicks_counted
from leadrelay.tracking.models import Click

log = logging.getLogger(__name__)
UNIQUE_WINDOW = timedelta(hours=24)
MAX_PENDING = 200_000  # beyond this (the database is down for minutes) the oldest are dropped


CHUNK = 500  # rows per uniqueness query and insert: far below any bound-parameter limit


def clicks_write(rows: list[Click]) -> int:
    """Insert clicks in chunks (a backlog after an outage can be large). Idempotent.

    Returns the number written; a click the database refuses is set aside and every other
    one written (module docstring). Raises BatchInterrupted, holding the clicks not
    written, when the database does not answer."""
    rows = sorted(rows, key=lambda c: c.created_at)
    done = batch_write(rows, write=_clicks_write_chunk, set_aside=_click_set_aside, chunk=CHUNK)
    return done.written


def _click_set_aside(click: Click, error: Exception) -> None:
    data = {f.attname: getattr(click, f.attname) for f in Click._meta.concrete_fields}
    data.pop("id", None)
    row_set_aside(kind=SetAsideKind.CLICK, key=click.click_id, data=data, error=error)


def _clicks_write_chunk(rows: list[Click]) -> int:
    """Insert clicks, deciding each one's uniqueness against earlier clicks.

    A click repeats an earlier one on the same offer within 24 hours if it has
    the same visitor cookie or the same IP and user agent (a visitor whose
    cookie is new on its second click is still recognised). Bot clicks are
    never unique and are not matched against. The insert and its rollup cells are one
    transaction, committed here, so a click whose link was deleted fails in this attempt
    (core/batches.py).
    """
    if not rows:
        return 0
    rows = sorted(rows, key=lambda c: c.created_at)
    by_cookie: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    by_hash: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    humans = [c for c in rows if not c.is_bot]
    if humans:
        found = (
            Click.objects.filter(
                offer_id__in={c.offer_id for c in humans},
                created_at__gte=rows[0].created_at - UNIQUE_WINDOW,
                created_at__lte=rows[-1].created_at,
                is_bot=False,
            )
            .filter(
                Q(visitor_id__in={c.visitor_id for c in humans if c.visitor_id})
                | Q(ip_ua_hash__in={c.ip_ua_hash for c in humans if c.ip_ua_hash})
            )
            .exclude(click_id__in=[c.click_id for c in rows])
        )
        for offer_id, cookie, digest, at in found.values_list(
            "offer_id", "visitor_id", "ip_ua_hash", "created_at"
        ):
            if cookie:
                by_cookie[(offer_id, cookie)].append(at)
            if digest:
                by_hash[(offer_id, digest)].append(at)
    for click in rows:
        if click.is_bot:
            click.is_unique = False
            continue
        seen = []
        if click.visitor_id:
            seen += by_cookie[(click.offer_id, click.visitor_id)]
        if click.ip_ua_hash:
            seen += by_hash[(click.offer_id, click.ip_ua_hash)]
        click.is_unique = not any(
            click.created_at - UNIQUE_WINDOW < at <= click.created_at for at in seen
        )
        if click.visitor_id:
            by_cookie[(click.offer_id, click.visitor_id)].append(click.created_at)
        if click.ip_ua_hash:
            by_hash[(click.offer_id, click.ip_ua_hash)].append(click.created_at)
    with transaction.atomic():
        # A retried chunk may have been written once already (its commit's answer lost):
        # those rows are skipped by the insert and must not be counted again.
        written = set(
            Click.objects.filter(click_id__in=[c.click_id for c in rows]).values_list(
                "click_id", flat=True
            )
        )
        Click.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        clicks_counted(c for c in rows if c.click_id not in written)
    return len(rows)


class ClickBuffer:
    def __init__(self) -> None:
        self._rows: list[Click] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, click: Click) -> None:
        with self._lock:
            self._rows.append(click)
            if len(self._rows) > MAX_PENDING:
                dropped = len(self._rows) - MAX_PENDING
                del self._rows[:dropped]
                log.error("click buffer full: dropped %d unwritten clicks", dropped)
            full = len(self._rows) >= settings.LEADRELAY_CLICK_BATCH
        if settings.LEADRELAY_CLICK_FLUSH_THREAD:
            self._ensure_thread()
            if full:
                self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self) -> int:
        """Write what waits now; returns the number written. Clicks the database refuses
        are set aside; when it doesn't answer, the clicks not written go back in line."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            return clicks_write(rows)
        except BatchInterrupted as stopped:
            log.error(
                "writing clicks stopped (%r); %d wait for the next try",
                stopped.__cause__,
                len(stopped.unwritten),
            )
            self._requeue(stopped.unwritten)
            return stopped.written
        except Exception:
            log.exception("writing %d clicks failed; they will be retried", len(rows))
            self._requeue(rows)
            return 0

    def _requeue(self, rows: list[Click]) -> None:
        with self._lock:
            self._rows = rows + self._rows

    def discard(self) -> None:
        with self._lock:
            self._rows = []

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="click-flush", daemon=True)
            self._thread.start()
        _install_shutdown_hooks()

    def _run(self) -> None:
        interval = settings.LEADRELAY_CLICK_FLUSH_SECONDS
        while not self._stopping.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            close_old_connections()
            self.flush()
        connection.close()

    def stop(self) -> None:
        """Stop the thread and write everything that waits (called at shutdown)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.flush()


click_buffer = ClickBuffer()
_hooks_installed = False


def _install_shutdown_hooks() -> None:
    """Flush on a normal exit and on SIGTERM, keeping any handler that was there before."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(click_buffer.stop)
    # Server workers run as multiprocessing children (granian), which end with
    # os._exit after running multiprocessing's own finalizers, never atexit's.
    multiprocessing.util.Finalize(None, click_buffer.stop, exitpriority=100)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> Any:
        click_buffer.stop()
        if callable(previous):
            return previous(signum, frame)
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
        return None

    signal.signal(signal.SIGTERM, on_sigterm)
