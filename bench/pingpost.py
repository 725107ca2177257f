"""Ping-post auction overhead: `taskset -c 1 python bench/pingpost.py [--auctions 200]`.

Buyers are local HTTP servers in a separate process (asyncio, on core 0 when
`taskset` is available) that answer a bid after a set latency; one in five
answers after its timeout. Auctions run in this process (core 1) through
`distribution.pingpost.auction_run`, as production runs them (one event loop
and one kept-alive session per process).

For each auction: overhead = wall time - the time no auction can beat, which is
the slowest in-time buyer's latency, or the timeout when a buyer is late (a late
buyer is waited for until its timeout). Printed:
1. 1, 5 and 20 buyers, auctions one after another: wall p50 and overhead p50/p99
   (target p50 <= 10 ms, p99 <= 25 ms);
2. `--auctions` auctions at once against 20 buyers in one process, each from its
   own thread (as web threads answering inbound pings call it);
3. the same batch spread over N worker processes that each run one auction at a
   time (as `leadrelay worker` does), all on this one core: the wait in the queue,
   then the auction.
For 2 and 3: the batch's wall time, each auction's wall p50/p99/max and overhead,
how many auctions went past their deadline, and how many in-time bids were lost.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import threading
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

    try:
        import uvloop  # the buyers' side should not be what limits the auctions

        uvloop.install()
    except ImportError:
        pass
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


def _in_time(n: int) -> int:
    return sum(1 for lat in _latencies(n) if lat < TIMEOUT_MS)


def _floor_ms(n: int) -> float:
    """What no auction can beat: the slowest in-time answer, or a late buyer's timeout."""
    return max(min(lat, TIMEOUT_MS) for lat in _latencies(n))


def _one(lead: Any, buyers: list[Any], routing: Any) -> tuple[float, int]:
    """One auction through the product's entry point: its wall time (ms) and its bids."""
    from django.utils import timezone

    from leadrelay.distribution.models import BidStatus
    from leadrelay.distribution.pingpost import auction_run

    started = time.monotonic()
    bids = auction_run(lead, buyers, routing, timezone.now())
    wall = (time.monotonic() - started) * 1000
    assert len(bids) == len(buyers)
    return wall, sum(1 for b in bids if b.status == BidStatus.BID)


def _report(label: str, batch_ms: float, walls: list[float], bids: list[int], cpu_s: float) -> None:
    floor = _floor_ms(20)
    overheads = [w - floor for w in walls]
    late = sum(1 for w in walls if w > DEADLINE_MS)
    lost = sum(_in_time(20) - b for b in bids)
    print(
        f"{label}: batch {batch_ms:.0f} ms; auction wall p50 {statistics.median(walls):.0f} ms, "
        f"p99 {_pct(walls, 0.99):.0f}, max {max(walls):.0f}; overhead p50 "
        f"{statistics.median(overheads):.1f} ms, p99 {_pct(overheads, 0.99):.1f}; past the "
        f"{DEADLINE_MS} ms deadline: {late}/{len(walls)}; in-time bids lost: "
        f"{lost}/{_in_time(20) * len(walls)}; CPU {cpu_s * 1000:.0f} ms "
        f"({cpu_s * 1e6 / (20 * len(walls)):.0f} us a ping)"
    )


def _threads(world: Any, auctions: int) -> None:
    lead, routing, buyers = world
    barrier = threading.Barrier(auctions)
    results: list[tuple[float, int]] = []

    def run() -> None:
        barrier.wait()
        results.append(_one(lead, buyers, routing))

    threads = [threading.Thread(target=run) for _ in range(auctions)]
    cpu = time.process_time()
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batch = (time.monotonic() - started) * 1000
    cpu = time.process_time() - cpu
    _report(
        f"20 buyers, {auctions:>3} auctions at once, 1 process",
        batch,
        [w for w, _ in results],
        [b for _, b in results],
        cpu,
    )


def _worker(world: Any, jobs: Any, done: Any) -> None:
    lead, routing, buyers = world
    _one(lead, buyers, routing)  # a running worker is warm: its loop and connections exist
    done.put(None)
    while (queued := jobs.get()) is not None:
        started = time.monotonic()
        wall, bids = _one(lead, buyers, routing)
        done.put((started - queued, wall, bids))


def _processes(world: Any, auctions: int, workers: int) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_before = before.ru_utime + before.ru_stime
    jobs: Any = multiprocessing.Queue()
    done: Any = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_worker, args=(world, jobs, done)) for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        done.get()
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    cpu += resource.getrusage(resource.RUSAGE_SELF).ru_stime
    started = time.monotonic()
    for _ in range(auctions):
        jobs.put(time.monotonic())
    results = [done.get() for _ in range(auctions)]
    batch = (time.monotonic() - started) * 1000
    for _ in procs:
        jobs.put(None)
    for proc in procs:
        proc.join()
    # The workers' whole lives (a warm-up auction each included) plus this process's share.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    cpu = children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime - cpu - children_before
    waits = [w * 1000 for w, _, _ in results]
    _report(
        f"20 buyers, {auctions} auctions at once, {workers} worker processes",
        batch,
        [w for _, w, _ in results],
        [b for _, _, b in results],
        cpu,
    )
    print(
        f"    queue wait before the auction: p50 {statistics.median(waits):.0f} ms, "
        f"max {max(waits):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--auctions", type=int, default=200)
    parser.add_argument("--workers", default="4,8,16", help="worker process counts to try")
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
    world = _world(ports)
    lead, routing, buyers = world
    print(
        f"buyer timeout {TIMEOUT_MS} ms, auction deadline {DEADLINE_MS} ms; latencies {latencies}"
    )
    try:
        for n in (1, 5, 20):
            _one(lead, buyers[:n], routing)
            walls = [_one(lead, buyers[:n], routing)[0] for _ in range(args.auctions)]
            overheads = [w - _floor_ms(n) for w in walls]
            print(
                f"{n:>2} buyers, {args.auctions} auctions one after another: wall p50 "
                f"{statistics.median(walls):.0f} ms; overhead p50 "
                f"{statistics.median(overheads):.1f} ms, p99 {_pct(overheads, 0.99):.1f} ms"
            )
        for at_once in sorted({10, 25, 50, args.auctions}):
            _threads(world, at_once)
        for workers in (int(w) for w in args.workers.split(",") if w):
            _processes(world, args.auctions, workers)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
