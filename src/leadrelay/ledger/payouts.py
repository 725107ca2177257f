"""Paying affiliates: payout runs, their lines, the CSV for the bank, and statements.

A run pays what affiliates had available at the end of its period:

1. **Freeze** (`payout_run_create`): for every affiliate and currency, the
   available balance as of `period_end` (or now, if less) is moved to the
   affiliate's "in a payout run" account, provided it reaches the affiliate's
   threshold (`PayoutThreshold`: its own, else the network's default for the
   currency). One line per affiliate and currency, with the leads and
   conversions whose earnings it pays. The money has left "available", so a
   second run, even one made at the same moment, finds nothing to pay twice:
   each account is locked while it is read and debited, always in the same
   order, and the ledger refuses to take out more than an account holds.
2. **Export** (`payout_run_csv`): one row per line, formula-safe.
3. **Pay** (`payout_line_mark_paid`): the money leaves the network's cash;
   the line and, once every line is paid, the run are marked paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from leadrelay.accounts.models import Organization, User
from leadrelay.core.csvexport import csv_text
from leadrelay.core.errors import Conflict, Invalid, NotFound, Problem
from leadrelay.core.money import currency_is_valid, money_decimal
from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.models import (
    Account,
    AccountRole,
    PayoutLine,
    PayoutRun,
    PayoutRunStatus,
    PayoutThreshold,
    TransactionKind,
)
from leadrelay.ledger.services import (
    Posting,
    account_balance,
    account_for,
    network_organization,
    reference_problems,
    staff_check,
    transaction_post,
)
from leadrelay.tracking.models import Conversion, ConversionStatus


def payout_threshold_set(
    *, currency: str, minimum_minor: int, affiliate: Organization | None = None
) -> PayoutThreshold:
    problems = []
    if not currency_is_valid(currency):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    if not isinstance(minimum_minor, int) or minimum_minor < 0:
        problems.append(Problem("invalid_amount", "A whole, non-negative number.", "minimum_minor"))
    if problems:
        raise Invalid(problems)
    threshold, _ = PayoutThreshold.objects.update_or_create(
        affiliate=affiliate, currency=currency, defaults={"minimum_minor": minimum_minor}
    )
    return threshold


def _threshold(affiliate_id: int, currency: str) -> int:
    """The affiliate's own minimum, else the network's default; at least one minor unit."""
    rows = PayoutThreshold.objects.filter(
        Q(affiliate_id=affiliate_id) | Q(affiliate__isnull=True), currency=currency
    ).order_by(F("affiliate_id").asc(nulls_last=True))  # the affiliate's own row first
    found = rows.values_list("minimum_minor", flat=True).first()
    return max(1, found or 0)


def _available_earnings(affiliate_id: int, currency: str, until: datetime) -> tuple[Q, Q]:
    """The approved leads and conversions whose earnings are available and not yet paid."""
    out_of_hold = Q(payable_at__isnull=True) | Q(released_at__isnull=False)
    common = Q(affiliate_id=affiliate_id, currency=currency, payout_line__isnull=True)
    leads = common & out_of_hold & Q(status=LeadStatus.APPROVED, payout_minor__gt=0)
    leads &= Q(decided_at__lte=until)
    conversions = common & out_of_hold & Q(status=ConversionStatus.APPROVED, payout_minor__gt=0)
    conversions &= Q(booked_at__lte=until)
    return leads, conversions


def payout_run_create(
    *, period_end: datetime, staff: User | None, now: datetime | None = None
) -> PayoutRun:
    """Freeze what every affiliate is owed up to `period_end`. Refused with `nothing_to_pay`
    when no affiliate reaches its threshold (so nothing is created)."""
    staff_check(staff)
    now = now or timezone.now()
    if period_end > now:
        raise Invalid([Problem("period_in_future", "A period must have ended.", "period_end")])
    with transaction.atomic():
        run = PayoutRun.objects.create(period_end=period_end, created_by=staff, created_at=now)
        accounts = Account.objects.filter(role=AccountRole.AFFILIATE_PAYABLE).order_by("pk")
        for account_id in accounts.values_list("pk", flat=True):
            # Lock first, then read: a concurrent run waits here and then sees what is left.
            account = (
                Account.objects.select_for_update()
                .select_related("organization")
                .get(pk=account_id)
            )
            as_of_end = -(
                account.entries.filter(transaction__posted_at__lte=period_end).aggregate(
                    t=Sum("amount_minor")
                )["t"]
                or 0
            )
            amount = min(as_of_end, account_balance(account))
            if amount <= 0 or amount < _threshold(account.organization_id, account.currency):
                continue
            affiliate = account.organization
            frozen, _ = transaction_post(
                external_id=f"payout_run:{run.pk}:{affiliate.pk}:{account.currency}",
                kind=TransactionKind.PAYOUT_FROZEN,
                postings=[
                    Posting(account, amount),
                    Posting(
                        account_for(
                            organization=affiliate,
                            role=AccountRole.AFFILIATE_PAYABLE_IN_RUN,
                            currency=account.currency,
                        ),
                        -amount,
                    ),
                ],
                memo=f"Payout run {run.pk}: earnings to {period_end:%Y-%m-%d %H:%M} UTC",
                affiliate_id=affiliate.pk,
                created_by=staff,
                posted_at=now,
            )
            line = PayoutLine.objects.create(
                run=run,
                affiliate=affiliate,
                currency=account.currency,
                amount_minor=amount,
                frozen=frozen,
            )
            leads, conversions = _available_earnings(affiliate.pk, account.currency, period_end)
            # A lead or conversion locked right now is being taken back (that path locks it
            # before the accounts, the opposite order): skip it rather than deadlock.
            for model, q in ((Lead, leads), (Conversion, conversions)):
                ids = model.objects.filter(q).select_for_update(skip_locked=True)
                model.objects.filter(pk__in=list(ids.values_list("pk", flat=True))).update(
                    payout_line=line
                )
        if not run.lines.exists():
            raise Conflict("nothing_to_pay", "No affiliate has earnings to pay in this period.")
    return run


def payout_line_mark_paid(
    *, line_id: int, reference: str, staff: User | None, now: datetime | None = None
) -> PayoutLine:
    """The money was sent: book it out of the network's cash. Once per line."""
    staff_check(staff)
    if not reference.strip():
        raise Invalid(reference_problems(reference))
    now = now or timezone.now()
    with transaction.atomic():
        line = (
            PayoutLine.objects.select_for_update()
            .select_related("affiliate", "run")
            .filter(pk=line_id)
            .first()
        )
        if line is None:
            raise NotFound("Payout line")
        if line.paid_id is not None:
            raise Conflict("already_paid", "This payout line is already paid.")
        paid, _ = transaction_post(
            external_id=f"payout_line:{line.pk}:paid",
            kind=TransactionKind.PAYOUT_SENT,
            postings=[
                Posting(
                    account_for(
                        organization=line.affiliate,
                        role=AccountRole.AFFILIATE_PAYABLE_IN_RUN,
                        currency=line.currency,
                    ),
                    line.amount_minor,
                ),
                Posting(
                    account_for(
                        organization=network_organization(),
                        role=AccountRole.NETWORK_CASH,
                        currency=line.currency,
                    ),
                    -line.amount_minor,
                ),
            ],
            memo=f"Payout to {line.affiliate.name}: {reference.strip()}",
            affiliate_id=line.affiliate_id,
            created_by=staff,
            posted_at=now,
        )
        line.paid, line.paid_at, line.reference = paid, now, reference.strip()[:120]
        line.save(update_fields=["paid", "paid_at", "reference"])
        if not line.run.lines.filter(paid__isnull=True).exists():
            PayoutRun.objects.filter(pk=line.run_id).update(status=PayoutRunStatus.PAID)
    return line


def payout_run_mark_paid(
    *, run_id: int, reference: str, staff: User | None, now: datetime | None = None
) -> PayoutRun:
    """Mark every unpaid line of a run paid with one reference (a batch transfer)."""
    run = PayoutRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound("Payout run")
    for line_id in run.lines.filter(paid__isnull=True).values_list("pk", flat=True):
        payout_line_mark_paid(line_id=line_id, reference=reference, staff=staff, now=now)
    run.refresh_from_db()
    return run


CSV_HEADER = ["line", "affiliate_id", "affiliate", "currency", "amount", "status", "reference"]


def payout_run_csv(run: PayoutRun) -> str:
    """The run as a CSV for the bank or the payment processor (core/csvexport.py): every
    cell quoted, names and references escaped against formulas, amounts as numbers."""
    return csv_text(
        CSV_HEADER,
        (
            [
                line.pk,
                line.affiliate_id,
                line.affiliate.name,
                line.currency,
                Decimal(money_decimal(line.amount_minor, line.currency)),
                "paid" if line.paid_id else "unpaid",
                line.reference,
            ]
            for line in run.lines.select_related("affiliate")
        ),
    )


@dataclass(frozen=True)
class Statement:
    line: PayoutLine
    leads: list[Lead]
    conversions: list[Conversion]

    @property
    def other_minor(self) -> int:
        """Clicks, adjustments and corrections in the line beyond its leads and conversions."""
        return (
            self.line.amount_minor
            - sum(lead.payout_minor for lead in self.leads)
            - sum(c.payout_minor for c in self.conversions)
        )


def payout_lines_for(*, organization: Organization) -> QuerySet[PayoutLine]:
    """An affiliate's own lines; the network's every line; nothing for advertisers."""
    lines = PayoutLine.objects.select_related("run", "affiliate").order_by(
        "-run__created_at", "-pk"
    )
    if organization.kind == "network":
        return lines
    if organization.kind == "affiliate":
        return lines.filter(affiliate=organization)
    return lines.none()


def statement_for(*, organization: Organization, line_id: int) -> Statement:
    line = payout_lines_for(organization=organization).filter(pk=line_id).first()
    if line is None:
        raise NotFound("Statement")
    return Statement(
        line=line,
        leads=list(line.leads.select_related("offer").order_by("decided_at", "pk")),
        conversions=list(line.conversions.select_related("offer").order_by("booked_at", "pk")),
    )
