"""`leadrelay reports rebuild|check`: recompute the report rollups from raw rows, or compare
them with the rows (exit 1 when they differ)."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from leadrelay.reporting.rollups import rollup_problems, rollups_rebuild


class Command(BaseCommand):
    help = (
        "Report rollups. `rebuild` recomputes them from clicks, leads and ledger entries "
        "(after an upgrade, or a restore); `check` lists cells that differ from the rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["rebuild", "check"])

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        if options["action"] == "rebuild":
            cells = rollups_rebuild()
            seconds = time.monotonic() - started
            self.stdout.write(f"Rebuilt {cells} rollup cells in {seconds:.1f} s.")
            return
        problems = rollup_problems()
        for problem in problems:
            self.stdout.write(f"OFF: {problem}")
        if problems:
            self.stdout.write(f"{len(problems)} cell(s) differ: run `leadrelay reports rebuild`.")
            sys.exit(1)
        self.stdout.write("The rollups match the rows.")
