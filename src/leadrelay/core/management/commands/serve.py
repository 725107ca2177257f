"""`leadrelay serve`: the web server (granian, WSGI), optionally with a task worker beside it."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the web server (granian) and, with --with-worker, a background task worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="Web worker processes.")
        parser.add_argument("--threads", type=int, default=8, help="Blocking threads per worker.")
        parser.add_argument(
            "--with-worker", action="store_true", help="Also run `leadrelay worker`."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        server_cmd = [
            sys.executable, "-m", "granian",
            "--interface", "wsgi",
            "--host", options["host"],
            "--port", str(options["port"]),
            "--workers", str(options["workers"]),
            "--blocking-threads", str(options["threads"]),
            "--no-ws",
            "leadrelay.wsgi:application",
        ]  # fmt: skip
        children = []
        if options["with_worker"]:
            children.append(subprocess.Popen([sys.executable, "-m", "leadrelay", "worker"]))
        children.append(subprocess.Popen(server_cmd))  # noqa: S603

        def stop(signum: int, frame: object) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"leadrelay on http://{options['host']}:{options['port']}/")
        exit_code = 0
        try:
            # If any child ends, stop the others: a server without its worker is half a product.
            while all(child.poll() is None for child in children):
                try:
                    children[-1].wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            stop(signal.SIGTERM, None)
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                exit_code = exit_code or (child.returncode or 0)
        if exit_code not in (0, -signal.SIGTERM, -signal.SIGINT):
            sys.exit(exit_code)
