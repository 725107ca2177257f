"""Lead intake throughput and latency against a bare JSON POST, on SQLite and PostgreSQL.

    .venv/bin/python bench/leads.py --seconds 10

For each database it starts its own `leadrelay serve --workers 1` on a free
127.0.0.1 port (a fresh temp data dir; PostgreSQL: the database
`leadrelay_bench`, dropped and created anew), with LEADRELAY_BENCH_ENDPOINTS=1
and the lead-post rate limits raised out of the way, migrates, and makes one
advertiser, one affiliate approved on one active public auto-approve CPL offer
(the demo's contact fields plus a qualification rule) and an API key. Then:

  1. peak: `--concurrency` keep-alive connections send POST /bench/echo (JSON
     parsed, nothing else), then POST /api/v1/leads with a unique email, phone
     and visitor IP each (no duplicates, every lead approved and booked), each
     for `--seconds`, closed loop. The driver is wrk when installed (one Python
     core tops out near 1,000 echo posts/s, below what the server answers),
     else httpx threads (`--client python`);
  2. half peak: POST /api/v1/leads on a fixed schedule at half the lead peak
     (open loop: latency is counted from when a request was due, so a stall
     shows as the requests it delayed, not as one slow request);

and prints a table: requests/s of both, their ratio, p50/p99 at peak, p50/p95/p99
at half peak, and PASS/MISS against the issue's targets (lead ≥ 0.3x echo
requests/s, p99 ≤ 25 ms at half peak). Client and server CPU seconds are shown
so a saturated client is visible, and the stored leads are counted by status so
a run that made duplicates or rejections shows it.

Where the machine allows, the server is pinned to the first CPU and this
process to the last, so they don't take turns on one core. It talks only to
127.0.0.1, stops its servers (SIGTERM, then SIGKILL) and removes its temp dirs
even when a phase fails.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import phonenumbers

HOST = "127.0.0.1"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "leadrelay_bench"
TARGET_RATIO = 0.3
TARGET_P99_MS = 25.0
WARMUP_SECONDS = 1.0
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
AREA_CODES = ["415", "212", "312", "206", "617", "303", "512", "404"]

# Run as `leads.py --setup` inside the server's environment: builds the fixture, prints JSON.
SETUP_FLAG = "--setup"
COUNTS_FLAG = "--counts"  # likewise: prints how many leads were stored with each status


def fixture_create() -> dict[str, Any]:
    """One advertiser, one affiliate approved on one offer, and the affiliate's API key."""
    import django

    django.setup()
    from leadrelay.accounts.services import api_key_create, organization_create
    from leadrelay.demo import CONTACT
    from leadrelay.leads.services import offer_rules_set
    from leadrelay.offers.services import offer_access_grant, offer_create

    advertiser = organization_create(name="Bench Buyer", kind="advertiser")
    affiliate = organization_create(name="Bench Traffic", kind="affiliate")
    offer = offer_create(
        advertiser=advertiser,
        name="Bench Auto Quotes",
        vertical="insurance",
        status="active",
        visibility="public",
        review_mode="auto_approve",
        revenue_minor=2500,
        payout_minor=1800,
        landing_url="https://lp.example.com/quote?cid={click_id}",
        fields=CONTACT,
    )
    offer_rules_set(
        offer=offer,
        rules={"all": [{"field": "fields.zip", "op": "regex", "value": "^[0-9]{5}$"}]},
    )
    offer_access_grant(offer=offer, affiliate=affiliate)
    key = api_key_create(organization=affiliate, name="bench")
    return {"offer_id": offer.pk, "api_key": key.secret}


def lead_status_counts() -> dict[str, int]:
    import django

    django.setup()
    from django.db.models import Count

    from leadrelay.leads.models import Lead

    rows = Lead.objects.values_list("status").annotate(n=Count("id")).order_by("status")
    return {status: n for status, n in rows}


# ---------------------------------------------------------------------------- the load side


class Fields:
    """Unique, valid contact fields: a new email, phone and visitor IP per call."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.counter = itertools.count()
        # Exchanges phonenumbers takes as real numbers; the subscriber part varies below them.
        self.prefixes = [
            f"+1{area}{exchange}"
            for area in AREA_CODES
            for exchange in range(200, 1000)
            if all(
                phonenumbers.is_valid_number(phonenumbers.parse(f"+1{area}{exchange}{sub}"))
                for sub in ("0000", "5555", "9999")
            )
        ]

    def body(self, offer_id: int) -> dict[str, Any]:
        n = next(self.counter)
        prefix = self.prefixes[(n // 10_000) % len(self.prefixes)]
        return {
            "offer_id": offer_id,
            "visitor_ip": f"198.18.{(n >> 8) & 0xFF}.{n & 0xFF}",
            "visitor_user_agent": USER_AGENT,
            "fields": {
                "first_name": "Bench",
                "last_name": f"Lead{n}",
                "email": f"bench{n}.{self.run}@example.com",
                "phone": f"{prefix}{n % 10_000:04d}",
                "zip": "94103",
            },
        }


@dataclass
class Result:
    seconds: float
    latencies: list[float]  # seconds
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    count: int | None = None  # set by wrk, which keeps the latencies to itself
    percentiles: dict[int, float] = field(default_factory=dict)  # ms, from wrk

    @property
    def rate(self) -> float:
        count = len(self.latencies) if self.count is None else self.count
        return count / self.seconds if self.seconds else 0.0

    def ms(self, percentile: int) -> float:
        if percentile in self.percentiles:
            return self.percentiles[percentile]
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[percentile - 1] * 1000

    @property
    def ok(self) -> bool:
        return not self.errors and set(self.statuses) == {201}


Call = Callable[[httpx.Client], int]


def _client() -> httpx.Client:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(timeout=10, limits=limits, follow_redirects=False)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants (the granian worker), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        pids.extend(int(c) for c in children)
    return total


def _record(result: Result, lock: threading.Lock, call: Call, client: httpx.Client) -> float:
    start = time.perf_counter()
    try:
        status = call(client)
    except httpx.HTTPError as exc:
        with lock:
            result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
        return start
    with lock:
        result.statuses[status] = result.statuses.get(status, 0) + 1
    return start


def closed_loop(call: Call, *, seconds: float, concurrency: int, server_pid: int) -> Result:
    """`concurrency` threads, each sending its next request as soon as the last is answered."""
    result = Result(seconds=0.0, latencies=[])
    lock = threading.Lock()
    clients = [_client() for _ in range(concurrency)]
    try:
        # Connect and warm every worker thread of the server before measuring.
        warm_until = time.perf_counter() + WARMUP_SECONDS

        def warm(client: httpx.Client) -> None:
            while time.perf_counter() < warm_until:
                call(client)

        _threads_run([functools.partial(warm, c) for c in clients])
        deadline = time.perf_counter() + seconds

        def worker(client: httpx.Client) -> None:
            while time.perf_counter() < deadline:
                start = _record(result, lock, call, client)
                elapsed = time.perf_counter() - start
                with lock:
                    result.latencies.append(elapsed)

        cpu0, server0, began = _cpu_seconds(), _tree_cpu_seconds(server_pid), time.perf_counter()
        _threads_run([functools.partial(worker, c) for c in clients])
        result.seconds = time.perf_counter() - began
        result.client_cpu = _cpu_seconds() - cpu0
        result.server_cpu = _tree_cpu_seconds(server_pid) - server0
    finally:
        for client in clients:
            client.close()
    result.latencies.sort()
    return result


def open_loop(
    call: Call, *, rate: float, seconds: float, concurrency: int, server_pid: int
) -> Result:
    """Requests due at fixed times, `rate` per second; latency counts from the due time."""
    result = Result(seconds=0.0, latencies=[])
    lock = threading.Lock()
    total = max(1, int(rate * seconds))
    interval = 1.0 / rate
    schedule = itertools.count()
    clients = [_client() for _ in range(concurrency)]
    try:
        for client in clients:  # open the connections outside the schedule
            call(client)
        began = time.perf_counter() + 0.05

        def worker(client: httpx.Client) -> None:
            while True:
                with lock:
                    i = next(schedule)
                if i >= total:
                    return
                due = began + i * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                _record(result, lock, call, client)
                elapsed = time.perf_counter() - due
                with lock:
                    result.latencies.append(elapsed)

        cpu0, server0 = _cpu_seconds(), _tree_cpu_seconds(server_pid)
        _threads_run([functools.partial(worker, c) for c in clients])
        result.seconds = time.perf_counter() - began
        result.client_cpu = _cpu_seconds() - cpu0
        result.server_cpu = _tree_cpu_seconds(server_pid) - server0
    finally:
        for client in clients:
            client.close()
    result.latencies.sort()
    return result


def _threads_run(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


WRK_SCRIPT = r"""
-- Closed loop for bench/leads.py: each request a lead no earlier one duplicates.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  path, run, offer, auth = args[1], args[2], args[3], args[4]
  prefixes = {}
  for p in string.gmatch(args[5], "[^,]+") do table.insert(prefixes, p) end
  headers = {["Content-Type"] = "application/json"}
  if auth ~= "" then headers["Authorization"] = "Bearer " .. auth end
  static = args[6]
  counter = 0
end
function request()
  if static ~= "" then return wrk.format("POST", path, headers, static) end
  counter = counter + 1
  -- thread t takes prefixes t, t + 64, ...: no two threads share a phone prefix
  local prefix = prefixes[tid + 64 * math.floor(counter / 10000)]
  local body = string.format(
    '{"offer_id": %s, "visitor_ip": "198.19.%d.%d", "visitor_user_agent": "Mozilla/5.0 ' ..
    '(Windows NT 10.0; Win64; x64) Chrome/131.0", "fields": {"first_name": "Bench", ' ..
    '"last_name": "Wrk", "email": "w%d.%d.%s@example.com", "phone": "%s%04d", "zip": "94103"}}',
    offer, tid * 8 + math.floor(counter / 256) % 8, counter % 256, tid, counter, run,
    prefix, counter % 10000)
  return wrk.format("POST", path, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_closed_loop(
    *,
    base: str,
    path: str,
    seconds: float,
    concurrency: int,
    server_pid: int,
    script: Path,
    script_args: Callable[[], list[str]],
) -> Result:
    """The same closed loop as `closed_loop`, driven by wrk: a client that needs less CPU."""

    def command(duration: float) -> list[str]:
        return [
            # A 10 s timeout like the Python client's: a slow answer is latency, not an error.
            *("wrk", "-t", str(concurrency), "-c", str(concurrency)),
            *("--latency", "--timeout", "10s"),
            *("-d", f"{max(1, round(duration))}s", "-s", str(script), f"{base}{path}"),
            *("--", path, *script_args()),
        ]

    subprocess.run(command(WARMUP_SECONDS), check=True, capture_output=True, timeout=60)
    cpu0, server0 = _children_cpu_seconds(), _tree_cpu_seconds(server_pid)
    out = subprocess.run(
        command(seconds), check=True, capture_output=True, text=True, timeout=seconds + 60
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    summary = json.loads(line[4:])
    result = Result(seconds=summary["duration_us"] / 1e6, latencies=[])
    result.count = summary["requests"]
    result.percentiles = {50: summary["p50_us"] / 1000, 99: summary["p99_us"] / 1000}
    ok = summary["requests"] - summary["non2xx"]
    result.statuses = {201: ok} if not summary["non2xx"] else {201: ok, 0: summary["non2xx"]}
    if summary["socket_errors"]:
        result.errors = {"socket": summary["socket_errors"]}
    result.client_cpu = _children_cpu_seconds() - cpu0
    result.server_cpu = _tree_cpu_seconds(server_pid) - server0
    return result


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------- the server side


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs): the first and the last allowed CPU, when there are two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return {allowed[0]}, {allowed[-1]}


def postgres_recreate() -> str:
    """Drop and create the bench database; the server gets a database with no history."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_BENCH_DB}"


def postgres_drop() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    offer_id: int
    api_key: str
    log: Path


def _env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEADRELAY_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        LEADRELAY_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        LEADRELAY_BENCH_ENDPOINTS="1",
        LEADRELAY_RATE_LEAD_POST_PER_KEY=str(10**9),
        LEADRELAY_RATE_LEAD_POST_PER_IP=str(10**9),
        DJANGO_SETTINGS_MODULE="leadrelay.settings",
        LOG_LEVEL="WARNING",
    )
    return env


@contextlib.contextmanager
def server_running(
    *, data_dir: Path, database_url: str, cpus: set[int] | None, threads: int
) -> Iterator[Server]:
    env = _env(data_dir, database_url)
    subprocess.run(
        [sys.executable, "-m", "leadrelay", "migrate", "--noinput", "-v", "0"],
        env=env,
        check=True,
        timeout=300,
    )
    setup = subprocess.run(
        [sys.executable, __file__, SETUP_FLAG],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    fixture = json.loads(setup.stdout.strip().splitlines()[-1])
    port = _free_port()
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "leadrelay", "serve", "--host", HOST),
                *("--port", str(port), "--workers", "1", "--threads", str(threads)),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a last-resort kill reaches granian too
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
    server = Server(f"http://{HOST}:{port}", process, fixture["offer_id"], fixture["api_key"], log)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout} s: {server.log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    # `serve` waits for granian, but a stray child of this group must not outlive the bench.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------- the run


@dataclass
class Outcome:
    database: str
    echo: Result
    lead: Result
    half: Result
    half_rate: float

    @property
    def ratio(self) -> float:
        return self.lead.rate / self.echo.rate if self.echo.rate else 0.0


def database_bench(
    name: str, database_url: str, data_dir: Path, args: argparse.Namespace
) -> Outcome:
    server_cpus, client_cpus = args.cpus
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    fields = Fields()
    with server_running(
        data_dir=data_dir, database_url=database_url, cpus=server_cpus, threads=args.threads
    ) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        echo_body = json.dumps(fields.body(server.offer_id)).encode()
        json_type = {"Content-Type": "application/json"}

        def echo(client: httpx.Client) -> int:
            url = f"{server.base}/bench/echo"
            return client.post(url, content=echo_body, headers=json_type).status_code

        def lead(client: httpx.Client) -> int:
            body = json.dumps(fields.body(server.offer_id)).encode()
            url = f"{server.base}/api/v1/leads"
            return client.post(url, content=body, headers={**headers, **json_type}).status_code

        pid = server.process.pid
        kw: dict[str, Any] = {"seconds": args.seconds, "server_pid": pid}
        peak: Callable[[str, Call, str], Result]
        if args.client == "wrk":
            script = data_dir / "leads.lua"
            script.write_text(WRK_SCRIPT)
            # wrk's phones come from the second half of the prefixes, the threads' from the
            # first; each wrk run (its warm-up too) gets prefixes and a tag of its own.
            wrk_prefixes = fields.prefixes[len(fields.prefixes) // 2 :]
            wrk_runs = itertools.count()

            def peak(path: str, call: Call, body: str) -> Result:
                auth = server.api_key if path == "/api/v1/leads" else ""

                def fresh_args() -> list[str]:
                    k = next(wrk_runs)
                    chunk = wrk_prefixes[k * 256 : (k + 1) * 256]
                    return [f"{fields.run}r{k}", str(server.offer_id), auth, ",".join(chunk), body]

                return wrk_closed_loop(
                    base=server.base,
                    path=path,
                    concurrency=args.concurrency,
                    script=script,
                    script_args=fresh_args,
                    **kw,
                )
        else:

            def peak(path: str, call: Call, body: str) -> Result:
                return closed_loop(call, concurrency=args.concurrency, **kw)

        what = f"{args.concurrency} connections, {args.client}, {args.seconds:g} s"
        print(f"[{name}] echo peak, {what}", flush=True)
        echo_result = peak("/bench/echo", echo, echo_body.decode())
        print(f"[{name}] lead peak, {what}", flush=True)
        lead_result = peak("/api/v1/leads", lead, "")
        half_rate = lead_result.rate / 2
        print(f"[{name}] lead at {half_rate:.0f}/s (half peak), {args.seconds:g} s", flush=True)
        half = open_loop(lead, rate=half_rate, concurrency=args.open_threads, **kw)
        statuses = subprocess.run(
            [sys.executable, __file__, COUNTS_FLAG],
            env=_env(data_dir, database_url),
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print(f"[{name}] leads stored by status: {statuses}", flush=True)
    return Outcome(name, echo_result, lead_result, half, half_rate)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cpus = args.cpus
    print(f"cpus: server {cpus[0]}, client {cpus[1]}; load average before the table: {load}")
    print(
        f"server: 1 granian worker, {args.threads} threads; client: {args.concurrency} "
        f"connections at peak ({args.client}), {args.open_threads} open-loop threads; "
        f"{args.seconds:g} s per phase"
    )
    head = (
        f"{'database':<9}{'echo r/s':>10}{'lead r/s':>10}{'ratio':>7}"
        f"{'peak p50':>10}{'peak p99':>10}{'half r/s':>10}{'half p50':>10}{'half p95':>10}"
        f"{'half p99':>10}  ratio>=0.3  p99<=25ms"
    )
    print(head)
    print("-" * len(head))
    for o in outcomes:
        print(
            f"{o.database:<9}{o.echo.rate:>10.0f}{o.lead.rate:>10.0f}{o.ratio:>7.2f}"
            f"{o.lead.ms(50):>8.1f}ms{o.lead.ms(99):>8.1f}ms{o.half.rate:>10.0f}"
            f"{o.half.ms(50):>8.1f}ms{o.half.ms(95):>8.1f}ms{o.half.ms(99):>8.1f}ms"
            f"  {_verdict(o.ratio >= TARGET_RATIO):<10}  {_verdict(o.half.ms(99) <= TARGET_P99_MS)}"
        )
    print()
    print("echo at peak: p50/p99 ms; CPU seconds per phase (client | server); statuses")
    for o in outcomes:
        for phase, r in (("echo", o.echo), ("lead", o.lead), ("half", o.half)):
            note = "" if r.ok else "  <-- not all 201"
            print(
                f"  {o.database:<9}{phase:<5} {r.ms(50):6.1f} / {r.ms(99):6.1f} ms  "
                f"cpu {r.client_cpu:5.1f} | {r.server_cpu:5.1f} of {r.seconds:4.1f} s  "
                f"{dict(sorted(r.statuses.items()))} {r.errors or ''}{note}"
            )


def main() -> None:
    if sys.argv[1:] == [SETUP_FLAG]:
        print(json.dumps(fixture_create()))
        return
    if sys.argv[1:] == [COUNTS_FLAG]:
        print(json.dumps(lead_status_counts()))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5, help="per phase (default 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads at peak")
    parser.add_argument("--open-threads", type=int, default=32, help="client threads, open loop")
    parser.add_argument("--threads", type=int, default=8, help="server blocking threads")
    parser.add_argument(
        "--databases", default="sqlite,postgres", help="comma separated: sqlite, postgres"
    )
    parser.add_argument(
        "--client",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="closed-loop driver at peak (default wrk when installed: one Python core\n"
        "can't saturate the echo endpoint); the half-peak phase is always Python",
    )
    parser.add_argument("--no-pin", action="store_true", help="don't pin server and client CPUs")
    args = parser.parse_args()
    if args.seconds <= 0 or args.seconds > 120:
        parser.error("--seconds: between 0 and 120")
    names = [n.strip() for n in args.databases.split(",") if n.strip()]
    if not set(names) <= {"sqlite", "postgres"}:
        parser.error("--databases: sqlite and/or postgres")

    args.cpus = _cpus() if not args.no_pin else (None, None)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the finally blocks that stop the servers

    signal.signal(signal.SIGTERM, interrupted)
    outcomes = []
    for name in names:
        data_dir = Path(tempfile.mkdtemp(prefix=f"leadrelay-bench-{name}-"))
        try:
            if name == "sqlite":
                url = f"sqlite:///{data_dir / 'bench.sqlite3'}"
            else:
                url = postgres_recreate()
            outcomes.append(database_bench(name, url, data_dir, args))
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
            if name == "postgres":
                with contextlib.suppress(Exception):
                    postgres_drop()
    report(outcomes, args)


if __name__ == "__main__":
    main()
