"""Ping-post auction overhead: `python bench/pingpost.py [--auctions 200]`.

Buyers are local HTTP servers in a separate process (asyncio, on core 0 when
`taskset` is available) that answer a bid after a set latency; some answer
after their timeout. Auctions run in this process (core 1) through
`distribution.pingpost.auction_run`'s engine, with 1, 5 and 20 buyers.

For each auction: overhead = wall time - the time no auction can beat, which is
the slowest in-time buyer's latency, or the timeout when a buyer is late (a late
buyer is waited for until its timeout). Printed: p50 and
p99 of the overhead per buyer count (target p50 ≤ 10 ms, p99 ≤ 25 ms), then
200 auctions at once against 20 buyers (wall time of the batch, and the
overhead's p50/p99/max: a stall shows as a max far above the p99).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TIMEOUT_MS = 200
DEADLINE_MS = 400


def _latencies(n: int) -> list[int]:
    """Buyer latencies (ms): spread under the timeout, and one in five past it."""
    out = []
    for i in range(n):
        out.append(TIMEOUT_MS + 150 if i % 5 == 4 else 20 + (i * 37) % 120)
    return out


def _serve(ports: list[int], latencies: list[int], ready: multiprocessing.Event) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    async def main() -> None:
        async def handler_for(latency: int) -> Any:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                try:
                    while True:
                        head = await reader.readuntil(b"\r\n\r\n")
                        length = 0
                        for line in head.split(b"\r\n"):
                            if line.lower().startswith(b"content-length:"):
                                length = int(line.split(b":")[1])
                        if length:
                            await reader.readexactly(length)
                        await asyncio.sleep(latency / 1000)
                        body = b'{"bid": 12.50, "ping_id": "p"}'
                        writer.write(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                        )
                        await writer.drain()
                except (asyncio.IncompleteReadError, ConnectionError):
                    pass
                finally:
                    writer.close()

            return handle

        servers = [
            await asyncio.start_server(await handler_for(lat), "127.0.0.1", port, backlog=4096)
            for port, lat in zip(ports, latencies, strict=True)
        ]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def _free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadrelay.settings")
    os.environ["LEADRELAY_ALLOW_PRIVATE_URLS"] = "1"
    os.environ.setdefault("LEADRELAY_DATA_DIR", "/tmp/leadrelay-bench-pingpost")
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


def _world(ports: list[int]) -> Any:
    from leadrelay.distribution.models import Buyer, OfferRouting
    from leadrelay.leads.models import Lead
    from leadrelay.offers.models import Offer

    offer = Offer(pk=1, name="Bench", currency="USD", revenue_minor=0, payout_minor=0)
    lead = Lead(pk=1, offer=offer, fields={"zip": "94107", "state": "CA"}, currency="USD")
    routing = OfferRouting(offer=offer, mode="ping_post", auction_deadline_ms=DEADLINE_MS)
    buyers = [
        Buyer(
            pk=i + 1,
            name=f"b{i}",
            currency="USD",
            ping_url=f"http://127.0.0.1:{port}/ping",
            ping_field_map=[["zip", "{zip}"], ["state", "{state}"]],
            bid_json_path="$.bid",
            ping_id_json_path="$.ping_id",
            ping_timeout_ms=TIMEOUT_MS,
            headers={},
        )
        for i, port in enumerate(ports)
    ]
    return lead, routing, buyers


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--auctions", type=int, default=200)
    args = parser.parse_args()
    ports = _free_ports(20)
    latencies = _latencies(20)
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(ports, latencies, ready), daemon=True)
    server.start()
    ready.wait(10)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1} if os.cpu_count() and os.cpu_count() > 1 else {0})
    _setup_django()
    from django.utils import timezone

    from leadrelay.distribution import pingpost

    lead, routing, buyers = _world(ports)
    print(
        f"buyer timeout {TIMEOUT_MS} ms, auction deadline {DEADLINE_MS} ms; latencies {latencies}"
    )

    async def one(n: int) -> float:
        # As in production (auction_run): each auction opens its own client.
        started = time.monotonic()
        bids = await pingpost._auction(lead, buyers[:n], routing, timezone.now())
        wall = (time.monotonic() - started) * 1000
        assert len(bids) == n
        # What no auction can beat: the slowest in-time answer, or a late buyer's timeout.
        return wall - max(min(lat, TIMEOUT_MS) for lat in latencies[:n])

    async def run() -> None:
        for n in (1, 5, 20):
            await one(n)
            overheads = [await one(n) for _ in range(args.auctions)]
            print(
                f"{n:>2} buyers, {args.auctions} auctions one after another: overhead "
                f"p50 {statistics.median(overheads):.1f} ms, p99 {_pct(overheads, 0.99):.1f} ms"
            )
        started = time.monotonic()
        overheads = await asyncio.gather(*(one(20) for _ in range(args.auctions)))
        wall = (time.monotonic() - started) * 1000
        print(
            f"20 buyers, {args.auctions} auctions at once: batch {wall:.0f} ms; overhead "
            f"p50 {statistics.median(overheads):.1f} ms, p99 {_pct(overheads, 0.99):.1f} ms, "
            f"max {max(overheads):.1f} ms"
        )

    try:
        asyncio.run(run())
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
