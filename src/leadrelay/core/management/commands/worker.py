"""`leadrelay worker`: runs background tasks on the configured backend.

With REDIS_URL set, tasks go through RQ (django-tasks-rq) and this runs an RQ
worker; otherwise they sit in the database (django-tasks-db) and this runs its
`db_worker`. Beside it, a thread runs the periodic jobs listed in
`LEADRELAY_PERIODIC_JOBS` (dotted path, seconds): sweeps that re-queue work a
crashed worker or a lost task left behind. Each is safe to run on several
workers at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


def _periodic(path: str, every: float, stop: threading.Event) -> None:
    job = import_string(path)
    while not stop.wait(every):
        close_old_connections()
        try:
            job()
        except Exception:
            log.exception("periodic job %s failed; it runs again in %s s", path, every)


class Command(BaseCommand):
    help = "Run background tasks (database queue by default, RQ when REDIS_URL is set)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for path, every in settings.LEADRELAY_PERIODIC_JOBS:
            threading.Thread(
                target=_periodic, args=(path, every, stop), name=path, daemon=True
            ).start()
        try:
            if settings.REDIS_URL:
                # django-tasks-rq's own Job class runs Task objects; RQ's default can't.
                call_command(
                    "rqworker",
                    options["queue"],
                    with_scheduler=True,
                    job_class="django_tasks_rq.Job",
                )
            else:
                call_command("db_worker", queue_name=options["queue"])
        finally:
            stop.set()
