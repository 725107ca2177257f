"""Invoices: what an advertiser owes for a period, by offer, with returns credited.

Issuing an invoice gathers every transaction that moved the advertiser's
receivable in the period and is on no invoice yet (approved leads, click
batches, conversions, their reversals and returns, adjustments), groups them
by offer and kind into lines, and records each transaction as invoiced: a
transaction is on one invoice at most (a unique constraint). Payments are not
lines: marking the invoice paid books one (from a bank transfer into the
network's cash, or from the advertiser's prepaid balance). An invoice whose
credits outweigh its charges is issued as paid: there is nothing to collect.

The HTML page is portals/templates/portals/invoice.html; `invoice_pdf` draws
the same content with fpdf2 and its built-in fonts (nothing downloaded).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from fpdf import FPDF

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.core.errors import Conflict, Invalid, NotFound, Problem
from leadrelay.core.money import currency_is_valid, money_format
from leadrelay.ledger.models import (
    Account,
    AccountRole,
    Entry,
    Invoice,
    InvoicedTransaction,
    InvoiceLine,
    InvoiceStatus,
    TransactionKind,
)
from leadrelay.ledger.payments import payment_post, prepaid_apply
from leadrelay.ledger.services import account_for, reference_problems, staff_check
from leadrelay.offers.models import Offer

INVOICED_KINDS = [
    TransactionKind.LEAD_APPROVED,
    TransactionKind.CLICKS,
    TransactionKind.CONVERSION,
    TransactionKind.SALE,
    TransactionKind.LEAD_RETURNED,
    TransactionKind.REVERSAL,
    TransactionKind.ADJUSTMENT,
]
_LINE_NAMES = {
    TransactionKind.LEAD_APPROVED: "Approved leads",
    TransactionKind.CLICKS: "Clicks",
    TransactionKind.CONVERSION: "Conversions",
    TransactionKind.SALE: "Leads bought",
    TransactionKind.LEAD_RETURNED: "Returns (credited)",
    TransactionKind.REVERSAL: "Returns and reversals (credited)",
    TransactionKind.ADJUSTMENT: "Adjustments",
}


def invoice_issue(
    *,
    advertiser: Organization,
    currency: str,
    period_start: datetime,
    period_end: datetime,
    staff: User | None,
    now: datetime | None = None,
) -> Invoice:
    """Invoice everything not yet invoiced in [period_start, period_end). Refused with
    `nothing_to_invoice` when there is nothing (and then nothing is created)."""
    staff_check(staff)
    now = now or timezone.now()
    problems = []
    if advertiser.kind != OrganizationKind.ADVERTISER:
        problems.append(Problem("not_an_advertiser", "Invoices are for advertisers.", None))
    if not currency_is_valid(currency):
        problems.append(Problem("invalid_currency", "Use an ISO 4217 code.", "currency"))
    if period_start >= period_end:
        problems.append(Problem("invalid_period", "The period must end after it starts.", None))
    if period_end > now:
        problems.append(Problem("period_in_future", "A period must have ended.", "period_end"))
    if problems:
        raise Invalid(problems)
    receivable = account_for(
        organization=advertiser, role=AccountRole.ADVERTISER_RECEIVABLE, currency=currency
    )
    with transaction.atomic():
        # One issuer at a time per advertiser and currency.
        Account.objects.select_for_update().filter(pk=receivable.pk).first()
        entries = list(
            Entry.objects.filter(
                account=receivable,
                transaction__kind__in=INVOICED_KINDS,
                transaction__posted_at__gte=period_start,
                transaction__posted_at__lt=period_end,
            )
            .exclude(transaction__in=InvoicedTransaction.objects.values("transaction"))
            .select_related("transaction")
            .order_by("transaction__posted_at", "pk")
        )
        if not entries:
            raise Conflict("nothing_to_invoice", "Nothing to invoice in this period.")
        groups: dict[tuple[int | None, str], list[Entry]] = defaultdict(list)
        for entry in entries:
            groups[(entry.transaction.offer_id, entry.transaction.kind)].append(entry)
        total = sum(e.amount_minor for e in entries)
        invoice = Invoice.objects.create(
            number=f"pending-{now.timestamp()}-{receivable.pk}",
            advertiser=advertiser,
            currency=currency,
            period_start=period_start,
            period_end=period_end,
            total_minor=total,
            issued_at=now,
            status=InvoiceStatus.ISSUED if total > 0 else InvoiceStatus.PAID,
            paid_at=None if total > 0 else now,
        )
        invoice.number = f"INV-{now:%Y}-{invoice.pk:06d}"
        invoice.save(update_fields=["number"])
        offers = dict(
            Offer.objects.filter(pk__in={k[0] for k in groups if k[0]}).values_list("pk", "name")
        )
        for (offer_id, kind), group in sorted(
            groups.items(), key=lambda kv: (offers.get(kv[0][0] or 0, ""), kv[0][1])
        ):
            name = _LINE_NAMES.get(TransactionKind(kind), kind)
            InvoiceLine.objects.create(
                invoice=invoice,
                offer_id=offer_id,
                kind=kind,
                description=f"{offers[offer_id]}: {name}" if offer_id else name,
                quantity=sum(
                    e.transaction.quantity if e.amount_minor > 0 else -e.transaction.quantity
                    for e in group
                ),
                amount_minor=sum(e.amount_minor for e in group),
            )
        InvoicedTransaction.objects.bulk_create(
            InvoicedTransaction(invoice=invoice, transaction_id=e.transaction_id) for e in entries
        )
    return invoice


def invoice_mark_paid(
    *,
    invoice_id: int,
    reference: str,
    staff: User | None,
    from_prepaid: bool = False,
    now: datetime | None = None,
) -> Invoice:
    """Book the invoice's payment once: into the network's cash (a transfer, with its
    reference) or out of the advertiser's prepaid balance."""
    staff_check(staff)
    if not from_prepaid and not reference.strip():
        raise Invalid(reference_problems(reference))
    now = now or timezone.now()
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update()
            .select_related("advertiser")
            .filter(pk=invoice_id)
            .first()
        )
        if invoice is None:
            raise NotFound("Invoice")
        if invoice.status == InvoiceStatus.PAID:
            raise Conflict("already_paid", "This invoice is already paid.")
        external_id = f"invoice:{invoice.pk}:paid"
        memo = f"Invoice {invoice.number} paid" + (
            " from prepaid balance" if from_prepaid else f": {reference.strip()}"
        )
        if from_prepaid:
            paid = prepaid_apply(
                advertiser=invoice.advertiser,
                currency=invoice.currency,
                amount_minor=invoice.total_minor,
                external_id=external_id,
                memo=memo,
                created_by=staff,
            )
        else:
            paid = payment_post(
                advertiser=invoice.advertiser,
                currency=invoice.currency,
                amount_minor=invoice.total_minor,
                external_id=external_id,
                memo=memo,
                staff=staff,
                for_invoice=True,
            )
        invoice.paid, invoice.paid_at, invoice.status = paid, now, InvoiceStatus.PAID
        invoice.save(update_fields=["paid", "paid_at", "status"])
    return invoice


def invoices_for(*, organization: Organization) -> QuerySet[Invoice]:
    """The network sees every invoice; an advertiser its own; affiliates none."""
    invoices = Invoice.objects.select_related("advertiser")
    if organization.kind == OrganizationKind.NETWORK:
        return invoices
    if organization.kind == OrganizationKind.ADVERTISER:
        return invoices.filter(advertiser=organization)
    return invoices.none()


def invoice_get(*, organization: Organization, invoice_id: int) -> Invoice:
    invoice = invoices_for(organization=organization).filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound("Invoice")
    return invoice


def _latin1(text: str) -> str:
    """fpdf2's built-in fonts are Latin-1: anything else is shown as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF, drawn with fpdf2's built-in Helvetica."""
    pdf = FPDF(format="A4")
    pdf.set_title(invoice.number)
    pdf.set_author("leadrelay")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(0, 10, f"Invoice {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 11)
    end = invoice.period_end
    for text in (
        f"Billed to: {invoice.advertiser.name}",
        f"Period: {invoice.period_start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
        f"Issued: {invoice.issued_at:%Y-%m-%d}",
        f"Status: {invoice.get_status_display()}",
    ):
        pdf.cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table(col_widths=(110, 25, 45), text_align=("LEFT", "RIGHT", "RIGHT")) as table:
        table.row(["Item", "Quantity", "Amount"])
        for line in invoice.lines.all():
            table.row(
                [
                    _latin1(line.description),
                    str(line.quantity),
                    money_format(line.amount_minor, invoice.currency),
                ]
            )
        table.row(["Total", "", money_format(invoice.total_minor, invoice.currency)])
    return bytes(pdf.output())
