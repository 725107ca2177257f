"""Ping-post auctions: ask eligible buyers what they would pay, then post to the best bid.

Every eligible buyer with a `ping_url` is pinged at once with its
`ping_field_map` — non-personal fields only, checked when the buyer is saved.
Each ping has the buyer's own timeout and the whole auction the offer's
`auction_deadline_ms`; a ping still out at the deadline counts as a timeout.

The pings run on one event loop per process, in a thread of its own, with one
HTTP session whose connections stay open between auctions (`_Engine`): a
worker or a web thread hands its auction over and waits at most the deadline
(plus `DEADLINE_GRACE`), so an auction returns on time with the bids that
came in even when the loop is busy with other auctions. Requests are built
and bids read in the caller's thread (that is where the database is).

A bid is read at `bid_json_path` (a decimal in the buyer's currency,
e.g. `{"bid": 12.50}`) and, if set, a ping id at `ping_id_json_path` that the
post can carry as `{ping_id}`. Bids under the offer's `reserve_minor` lose.

The lead is posted (delivery.py) to the highest bidder at its bid; when that
buyer says no, to the next-highest (the waterfall); with no bid left the lead
is unsold. Every ping is kept as a PingBid; the routing decision lists each
buyer with its bid or why it had none.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import json
import os
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
import certifi

from leadrelay import __version__
from leadrelay.core.money import money_parse
from leadrelay.core.outbound import Answer, Request, pinned_session, safe_call_async
from leadrelay.core.text import text_kept
from leadrelay.distribution.models import BidStatus, Buyer, OfferRouting
from leadrelay.distribution.payload import json_path_get, lead_values, mapped_fields
from leadrelay.leads.models import Lead

RESPONSE_KEEP = 2048
PING_MAX_BODY = 65_536
# How long past its deadline a caller waits for a busy loop before it reads what came in.
DEADLINE_GRACE = 0.02


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle takes tens of milliseconds, more than
    an auction may spend on itself."""
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class Bid:
    buyer: Buyer
    status: str
    bid_minor: int | None = None
    ping_id: str = ""
    duration_ms: int = 0
    error: str = ""
    response: str = ""


def _ping_request(buyer: Buyer, lead: Lead) -> Request:
    values = lead_values(lead, 0, buyer.currency)
    fields = mapped_fields(buyer.ping_mapping(), values)
    return Request(
        "POST",
        buyer.ping_url,
        {
            "User-Agent": f"leadrelay/{__version__}",
            "Content-Type": "application/json",
            **buyer.headers,
        },
        json.dumps(fields, ensure_ascii=False).encode(),
    )


def _read_bid(buyer: Buyer, answer: Answer, reserve_minor: int) -> Bid:
    ms, body = answer.duration_ms, answer.body[:RESPONSE_KEEP]

    def failed(status: str, error: str) -> Bid:
        return Bid(buyer, status, error=error[:500], duration_ms=ms, response=body)

    if not answer.ok:
        timed_out = answer.error.startswith("timeout")
        return failed(BidStatus.TIMEOUT if timed_out else BidStatus.ERROR, answer.error)
    try:
        document = json.loads(answer.body)
    except ValueError:
        return failed(BidStatus.ERROR, "the answer is not JSON")
    raw = json_path_get(document, buyer.bid_json_path)
    if raw in (None, "", 0, "0") or isinstance(raw, bool):
        return failed(BidStatus.NO_BID, "")
    try:
        bid_minor = money_parse(str(Decimal(str(raw))), buyer.currency)
    except (ValueError, InvalidOperation) as exc:
        return failed(BidStatus.ERROR, f"bid {raw!r}: {exc}")
    ping_id = ""
    if buyer.ping_id_json_path:
        found = json_path_get(document, buyer.ping_id_json_path)
        ping_id = "" if found is None else text_kept(str(found), 200)
    status = BidStatus.BID if bid_minor >= reserve_minor else BidStatus.BELOW_RESERVE
    return Bid(buyer, status, bid_minor, ping_id, duration_ms=ms, response=body)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # about a fifth less CPU per ping (bench/pingpost.py)
    except ImportError:  # pragma: no cover - uvloop has no Windows build
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Engine:
    """The process's ping loop: a daemon thread running an event loop, and the session
    whose kept-alive connections all auctions of the process share."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="leadrelay-pingpost", daemon=True
        )
        self.thread.start()
        self.session = self.submit(self._open()).result()
        atexit.register(self.close)

    async def _open(self) -> aiohttp.ClientSession:
        return pinned_session(tls_context())

    def close(self) -> None:
        """At exit: close the kept connections, then stop the loop."""
        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self.submit(self.session.close()).result(timeout=2)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _engine_get() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def _engine_forget() -> None:
    """In a forked child (RQ runs each job in one) the parent's loop thread is gone."""
    global _engine, _engine_lock
    _engine, _engine_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_engine_forget)


async def _pings(
    session: aiohttp.ClientSession,
    requests: list[tuple[Request, float]],
    answers: dict[int, Answer],
    deadline: float,
    now: datetime,
) -> None:
    """Fills `answers` (by index) as the answers come in; the caller reads it at any time."""

    async def one(index: int, request: Request, timeout: float) -> None:
        answers[index] = await safe_call_async(
            session, request, timeout=timeout, max_body=PING_MAX_BODY, now=now
        )

    tasks = [asyncio.ensure_future(one(i, r, t)) for i, (r, t) in enumerate(requests)]
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=deadline)
    # Cancelled pings unwind on the loop later; the auction doesn't wait for them.
    for task in pending:
        task.cancel()


def auction_run(lead: Lead, buyers: list[Buyer], routing: OfferRouting, now: datetime) -> list[Bid]:
    """Ping every buyer at once; their bids (or why not), in the buyers' order. Returns by
    the auction's deadline (plus `DEADLINE_GRACE`) however busy the process is."""
    deadline = routing.auction_deadline_ms / 1000
    requests = [
        (_ping_request(buyer, lead), min(buyer.ping_timeout_ms / 1000, deadline))
        for buyer in buyers
    ]
    answers: dict[int, Answer] = {}
    started = time.monotonic()
    if requests:
        engine = _engine_get()
        future = engine.submit(_pings(engine.session, requests, answers, deadline, now))
        try:
            future.result(timeout=deadline + DEADLINE_GRACE)
        except concurrent.futures.TimeoutError:
            future.cancel()
    arrived = dict(answers)  # the loop may still be adding to it
    late_ms = int((time.monotonic() - started) * 1000)
    return [
        _read_bid(buyer, arrived[i], routing.reserve_minor)
        if i in arrived
        else Bid(
            buyer,
            BidStatus.TIMEOUT,
            duration_ms=late_ms,
            error=f"timeout: no bid by the auction's {deadline:g} s deadline",
        )
        for i, buyer in enumerate(buyers)
    ]
