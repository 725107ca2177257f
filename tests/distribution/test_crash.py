"""SIGKILL of the worker in the middle of deliveries loses nothing and sells nothing twice.

Real worker processes (`leadrelay worker`, the database task queue) send 30 leads to a real
buyer server that answers slowly; the first worker is killed with SIGKILL mid-way, a second
one picks up what was left (its sweep re-queues deliveries whose claim ran out).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from leadrelay.distribution.models import Delivery, DeliveryAttempt
from leadrelay.ledger.checks import ledger_problems
from leadrelay.ledger.models import Transaction
from tests.distribution.conftest import make_buyer, new_lead
from tests.localhttp import Answer, LocalServer

LEADS = 30


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


REDIS_URL = "redis://127.0.0.1:6379/15"


def _worker(tmp_path, backend: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "LEADRELAY_DATA_DIR": str(tmp_path),
        "LEADRELAY_ALLOW_PRIVATE_URLS": "1",
        "LEADRELAY_RESUME_SWEEP_SECONDS": "1",
        "LEADRELAY_DELIVERY_CLAIM_SECONDS": "3",
    }
    env.pop("REDIS_URL", None)
    if backend == "rq":
        env["REDIS_URL"] = REDIS_URL
    log = (tmp_path / f"worker-{time.monotonic_ns()}.log").open("wb")
    # Its own process group: RQ forks a work horse and a scheduler, and a kill of "the
    # worker" (a container stop, the OOM killer) takes them all.
    return subprocess.Popen(
        [sys.executable, "-m", "leadrelay", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the worker's whole process group and wait for it (SIGKILL after 30 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _logs(tmp_path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("worker-*.log"))


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(params=["database", "rq"])
def backend(request, settings):
    """The database task queue, and RQ on a real Redis (a database of its own, emptied)."""
    if request.param == "rq":
        if connection.vendor != "postgresql":
            # RQ is the scaled deployment (docs/deploy.md): PostgreSQL. Its forked work
            # horses sharing one SQLite file hung once in CI; that pairing isn't supported.
            pytest.skip("RQ runs against PostgreSQL")
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        settings.RQ_QUEUES = {"default": {"URL": REDIS_URL}}
        settings.TASKS = {
            "default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}
        }
        yield "rq"
        client.flushdb()
        return
    yield "database"


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_delivery_loses_nothing_and_books_each_sale_once(
    tmp_path, backend, routed, affiliate, other_advertiser
):
    server = LocalServer(default=Answer(200, b'{"ok": true}', delay=0.15)).start()
    try:
        make_buyer(other_advertiser, server.url, accept_json_path="$.ok", accept_value="true")
        leads = [new_lead(routed, affiliate) for _ in range(LEADS)]  # routed on commit
        first = _worker(tmp_path, backend)
        try:
            started = _wait(lambda: Delivery.objects.filter(status="delivered").count() >= 5, 60)
        finally:
            _kill(first, signal.SIGKILL)
        assert started, _logs(tmp_path)
        killed_at = Delivery.objects.filter(status="delivered").count()
        assert killed_at < LEADS, "the worker finished before it was killed: nothing was tested"

        second = _worker(tmp_path, backend)
        try:
            done = _wait(
                lambda: (
                    not Delivery.objects.filter(status="pending").exists()
                    and Delivery.objects.count() == LEADS
                ),
                90,
            )
        finally:
            _kill(second, signal.SIGTERM)
        assert done, _logs(tmp_path)
    finally:
        server.stop()

    delivered = Delivery.objects.filter(status="delivered")
    assert delivered.count() == LEADS
    assert sorted(delivered.values_list("lead_id", flat=True)) == sorted(lead.pk for lead in leads)
    sales = Transaction.objects.filter(kind="sale")
    assert sales.count() == LEADS  # one per (lead, buyer): the external id is unique
    assert all(DeliveryAttempt.objects.filter(delivery=d).exists() for d in delivered)
    assert ledger_problems() == []
    # The try in flight at the kill may reach the buyer twice, with the same webhook-id
    # for it to ignore; it is booked once.
    assert LEADS <= len(server.requests) <= LEADS + 2
