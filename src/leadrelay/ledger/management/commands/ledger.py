"""`leadrelay ledger check`: verify the ledger's invariants; exit 1 if any is broken."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from leadrelay.ledger.checks import ledger_problems


class Command(BaseCommand):
    help = "Ledger tools. `check` verifies every invariant and prints what is off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["check"])

    def handle(self, *args: Any, **options: Any) -> None:
        problems = ledger_problems()
        for problem in problems:
            self.stdout.write(f"OFF: {problem}")
        if problems:
            self.stdout.write(f"{len(problems)} problem(s) in the ledger.")
            sys.exit(1)
        self.stdout.write("The ledger balances: every invariant holds.")
