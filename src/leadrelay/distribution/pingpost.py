"""Ping-post auctions: ask eligible buyers what they would pay, then post to the best bid.

Every eligible buyer with a `ping_url` is pinged at once (asyncio, one shared
HTTP client) with its `ping_field_map` — non-personal fields only, checked when
the buyer is saved. Each ping has the buyer's own timeout and the whole auction
the offer's `auction_deadline_ms`; a ping still out at the deadline counts as
a timeout. A bid is read at `bid_json_path` (a decimal in the buyer's currency,
e.g. `{"bid": 12.50}`) and, if set, a ping id at `ping_id_json_path` that the
post can carry as `{ping_id}`. Bids under the offer's `reserve_minor` lose.

The lead is posted (delivery.py) to the highest bidder at its bid; when that
buyer says no, to the next-highest (the waterfall); with no bid left the lead
is unsold. Every ping is kept as a PingBid; the routing decision lists each
buyer with its bid or why it had none.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

import certifi
import httpx

from leadrelay import __version__
from leadrelay.core.money import money_parse
from leadrelay.core.outbound import Answer, Request, safe_call_async
from leadrelay.distribution.models import BidStatus, Buyer, OfferRouting
from leadrelay.distribution.payload import json_path_get, lead_values, mapped_fields
from leadrelay.leads.models import Lead

RESPONSE_KEEP = 2048


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
        ping_id = "" if found is None else str(found)[:200]
    status = BidStatus.BID if bid_minor >= reserve_minor else BidStatus.BELOW_RESERVE
    return Bid(buyer, status, bid_minor, ping_id, duration_ms=ms, response=body)


async def _auction(
    lead: Lead, buyers: list[Buyer], routing: OfferRouting, now: datetime
) -> list[Bid]:
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=False, verify=tls_context()
    ) as client:
        return await _auction_with(client, lead, buyers, routing, now)


async def _auction_with(
    client: httpx.AsyncClient, lead: Lead, buyers: list[Buyer], routing: OfferRouting, now: datetime
) -> list[Bid]:
    """One auction on a client that may be shared (bench/pingpost.py runs many at once)."""
    deadline = routing.auction_deadline_ms / 1000
    started = time.monotonic()
    tasks = {
        asyncio.ensure_future(
            safe_call_async(
                client,
                _ping_request(buyer, lead),
                timeout=min(buyer.ping_timeout_ms / 1000, deadline),
                max_body=65_536,
                now=now,
            )
        ): buyer
        for buyer in buyers
    }
    done, pending = await asyncio.wait(tasks, timeout=deadline) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    late_ms = int((time.monotonic() - started) * 1000)
    bids = []
    for task, buyer in tasks.items():
        if task in done and not task.cancelled() and task.exception() is None:
            bids.append(_read_bid(buyer, task.result(), routing.reserve_minor))
        else:
            bids.append(
                Bid(
                    buyer,
                    BidStatus.TIMEOUT,
                    duration_ms=late_ms,
                    error=f"timeout: no bid by the auction's {deadline:g} s deadline",
                )
            )
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return bids


def auction_run(lead: Lead, buyers: list[Buyer], routing: OfferRouting, now: datetime) -> list[Bid]:
    """Ping every buyer at once; their bids (or why not), in the buyers' order."""
    return asyncio.run(_auction(lead, buyers, routing, now))
