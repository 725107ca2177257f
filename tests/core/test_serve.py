"""`leadrelay serve --with-worker` starts the real server and worker, and stops on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from django.db import connection


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or "postgres"
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start(tmp_path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": _database_url(), "LEADRELAY_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "leadrelay", "serve", "--with-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(process.communicate()[0].decode())


@pytest.mark.django_db(transaction=True)
def test_clicks_are_written_within_a_second_and_on_sigterm(tmp_path, offer, affiliate) -> None:
    from leadrelay.tracking.models import Click
    from leadrelay.tracking.services import tracking_link_create

    link = tracking_link_create(offer=offer, affiliate=affiliate)
    port = _free_port()
    process = _start(tmp_path, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(5):
                assert http.get(f"/c/{link.code}").status_code == 302
            time.sleep(1.6)
            assert Click.objects.count() == 5  # flushed by the clock, nobody asked
            for _ in range(7):
                assert http.get(f"/c/{link.code}").status_code == 302
    finally:
        process.send_signal(signal.SIGTERM)  # at once: these 7 are still in the buffer
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert Click.objects.count() == 12, output


@pytest.mark.django_db(transaction=True)
def test_serve_answers_and_stops_cleanly(tmp_path) -> None:
    port = _free_port()
    process = _start(tmp_path, port)  # waits until /healthz answers
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode() for line in process.stdout), daemon=True
    )
    reader.start()
    try:
        status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
        assert status == 200
        login = httpx.get(f"http://127.0.0.1:{port}/login/", timeout=5)
        assert login.status_code == 200 and "Log in to leadrelay" in login.text
        css = httpx.get(f"http://127.0.0.1:{port}/static/leadrelay/app.css", timeout=5)
        assert css.status_code == 200
        # The task worker starts beside the server, in its own time: a loaded machine
        # answered the pages before the worker had said anything.
        deadline = time.monotonic() + 30
        while not any("Starting worker" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert process.returncode == 0, output
    assert "Starting worker" in output  # the task worker ran beside the server
