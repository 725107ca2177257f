"""A real HTTP server on 127.0.0.1 in a thread, standing in for an affiliate's tracker or a
buyer's endpoint: it records each request and answers with queued answers in turn."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"OK"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


class LocalServer:
    """Answers with the queued answers in turn, then with `default` (200 "OK")."""

    def __init__(self, default: Answer | None = None) -> None:
        self.requests: list[Seen] = []
        self.answers: deque[Answer] = deque()
        self.default = default or Answer()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        # A client that gave up (timeout test) leaves a broken pipe: not a test failure.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        # A short poll: stop() waits for the loop to notice, 0.5 s a server by default.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

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

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        local = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with local.lock:
                    local.requests.append(
                        Seen(self.command, self.path, dict(self.headers.items()), body)
                    )
                    answer = local.answers.popleft() if local.answers else local.default
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
