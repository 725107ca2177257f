"""`leadrelay demo-data [--credentials-out FILE]`: load the demo network and print its logins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from leadrelay.demo import demo_data_load


class Command(BaseCommand):
    help = "Load a believable demo network (once) and issue fresh demo logins and API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials-out", type=Path, default=None)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--days", type=int, default=30, help="Days of traffic, up to today.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_data_load(
            seed=options["seed"], days=options["days"], credentials_out=options["credentials_out"]
        )
        counts = result.counts
        what = "Loaded" if result.created else "Already loaded:"
        self.stdout.write(
            f"{what} {counts['offers']} offers, {counts['affiliates']} affiliates, "
            f"{counts['clicks']} clicks, {counts['leads']} leads ({counts['approved']} approved, "
            f"{counts['pending_review']} waiting for review)."
        )
        self.stdout.write("\nDemo logins (fresh passwords each run):")
        shown: set[str] = set()
        for login in result.credentials["logins"]:
            if login["role"] in shown:
                continue
            shown.add(login["role"])
            self.stdout.write(
                f"  {login['role']:<10} {login['email']:<40} {login['password']}"
                f"   ({login['organization']})"
            )
        if options["credentials_out"]:
            self.stdout.write(
                "\nEvery login, API key, tracking link and offer schema: "
                f"{options['credentials_out']}"
            )
