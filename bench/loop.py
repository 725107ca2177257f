"""Load the two hot paths of a running leadrelay: click redirects and lead posts.

    .venv/bin/python bench/loop.py --base http://127.0.0.1:8000 \
        --credentials data/demo-credentials.json --seconds 10 --concurrency 8

It reads an affiliate's key and link from the demo credentials file, then, for
`--seconds` each, sends GET /c/<code> (no redirect following) and POST
/api/v1/leads with fresh emails and the click id from the redirect, from
`--concurrency` threads, and prints requests per second and latency
percentiles. It only talks to the address given (use a local one) and stops by
itself. No targets are set for the Foundation; later issues set them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

_counter = itertools.count()


def _run(name: str, seconds: float, concurrency: int, call: Callable[[httpx.Client], int]) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(timeout=10, follow_redirects=False) as client:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                status = call(client)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        f"{name:<12} {len(latencies) / wall:8.1f} req/s  "
        f"p50 {q[49] * 1000:6.1f} ms  p95 {q[94] * 1000:6.1f} ms  p99 {q[98] * 1000:6.1f} ms  "
        f"statuses {dict(sorted(statuses.items()))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--credentials", type=Path, default=Path("data/demo-credentials.json"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if urlsplit(args.base).hostname not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("benchmarks only target this machine")

    creds = json.loads(args.credentials.read_text())
    affiliate = next(a for a in creds["affiliates"] if a["links"])
    link = affiliate["links"][0]
    offer = next(o for o in creds["offers"] if o["id"] == link["offer_id"])
    code = link["url"].rsplit("/", 1)[1]
    headers = {"Authorization": f"Bearer {affiliate['api_key']}"}

    def sample_fields(n: int) -> dict[str, object]:
        fields: dict[str, object] = {}
        for field in offer["fields"]:
            key, kind = field["key"], field["type"]
            if kind == "email":
                fields[key] = f"bench{n}.{time.time_ns()}@example.com"
            elif kind == "phone":
                fields[key] = f"+1415{200 + n % 700:03d}{n % 10000:04d}"
            elif kind == "number":
                fields[key] = 2020
            elif kind == "choice":
                fields[key] = field["choices"][0]
            elif kind == "postal_code":
                fields[key] = "94103"
            elif kind == "date":
                fields[key] = "1990-01-01"
            elif kind == "boolean":
                fields[key] = True
            elif kind == "country":
                fields[key] = "US"
            else:
                fields[key] = "Bench"
        return fields

    def click(client: httpx.Client) -> int:
        return client.get(f"{args.base}/c/{code}").status_code

    def lead(client: httpx.Client) -> int:
        redirect = client.get(f"{args.base}/c/{code}")
        query = parse_qs(urlsplit(redirect.headers["location"]).query)
        click_id = next(query[k][0] for k in ("cid", "click_id", "clickid", "subid") if k in query)
        body = {
            "offer_id": offer["id"],
            "click_id": click_id,
            "fields": sample_fields(next(_counter)),
        }
        return client.post(f"{args.base}/api/v1/leads", json=body, headers=headers).status_code

    print(f"{args.base}, {args.concurrency} threads, {args.seconds:g} s each")
    _run("click", args.seconds, args.concurrency, click)
    _run("click+lead", args.seconds, args.concurrency, lead)


if __name__ == "__main__":
    main()
