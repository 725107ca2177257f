"""A real tracker for postbacks to call: an HTTP server on 127.0.0.1 in a thread."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"OK"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class Tracker:
    """Records each request; answers with the queued answers in turn, then 200 "OK"."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.answers: deque[Answer] = deque()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A client that gave up (timeout test) leaves a broken pipe: not a test failure.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(
        self, status: int = 200, body: bytes = b"OK", delay: float = 0.0, **headers: str
    ) -> None:
        self.answers.append(
            Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()}, delay)
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with tracker.lock:
                    tracker.requests.append(Seen(self.path, dict(self.headers.items())))
                    answer = tracker.answers.popleft() if tracker.answers else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    server = Tracker()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(autouse=True)
def _local_urls_allowed(settings: Any) -> None:
    """The tracker lives on 127.0.0.1; tests that check the refusal turn this off."""
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    settings.LEADRELAY_POSTBACK_TIMEOUT_SECONDS = 2.0
