"""`leadrelay worker`: runs background tasks on the configured backend.

With REDIS_URL set, tasks go through RQ (django-tasks-rq) and this runs an RQ
worker; otherwise they sit in the database (django-tasks-db) and this runs its
`db_worker`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run background tasks (database queue by default, RQ when REDIS_URL is set)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.REDIS_URL:
            call_command("rqworker", options["queue"], with_scheduler=True)
        else:
            call_command("db_worker", queue_name=options["queue"])
