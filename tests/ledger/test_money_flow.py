"""Money from an approved lead to a paid affiliate and a paid invoice, and the refusals."""

import csv
import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from leadrelay.accounts.models import Role
from leadrelay.core.errors import Conflict, Invalid, PermissionDenied
from leadrelay.leads.models import Lead, LeadSource, LeadStatus
from leadrelay.leads.returns import lead_return, lead_reverse
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.invoices import invoice_issue, invoice_mark_paid, invoice_pdf
from leadrelay.ledger.models import (
    AccountRole,
    Entry,
    InvoiceStatus,
    PayoutLine,
    PayoutRunStatus,
    Transaction,
)
from leadrelay.ledger.payments import advertiser_payment_record
from leadrelay.ledger.payouts import (
    payout_line_mark_paid,
    payout_run_create,
    payout_run_csv,
    payout_run_mark_paid,
    payout_threshold_set,
    statement_for,
)
from leadrelay.ledger.selectors import advertiser_balances, affiliate_balances
from leadrelay.ledger.services import (
    Posting,
    account_for,
    ledger_adjustment_post,
    transaction_post,
)
from leadrelay.postbacks.models import PostbackDelivery
from tests.concurrency import run_together
from tests.factories import approve, make_offer, member

DAY = dt.timedelta(days=1)


@pytest.fixture
def staff(network):
    return member(network, role=Role.MANAGER)


def _offer(advertiser, affiliate, **kwargs):
    offer = make_offer(advertiser, **kwargs)
    approve(offer, affiliate)
    return offer


def _lead(offer, affiliate, n=0, at=None):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "Ann", "email": f"ann{n}-{offer.pk}@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
        received_at=at,
    )


def _aff(affiliate, currency="USD"):
    rows = {b.currency: b for b in affiliate_balances(organization=affiliate)}
    b = rows.get(currency)
    return (b.pending_minor, b.available_minor, b.in_run_minor, b.paid_minor) if b else (0,) * 4


def _adv(advertiser, currency="USD"):
    rows = {b.currency: b for b in advertiser_balances(organization=advertiser)}
    b = rows.get(currency)
    return (b.owed_minor, b.prepaid_minor) if b else (0, 0)


def _ledger_ok():
    call_command("ledger", "check")  # exits 1 (SystemExit) if anything is off


# --- balances and payouts -----------------------------------------------------------


def test_from_approved_lead_to_paid_affiliate(network, advertiser, affiliate, staff):
    offer = _offer(advertiser, affiliate, hold_days=0)
    for n in range(3):
        assert _lead(offer, affiliate, n).status == LeadStatus.APPROVED
    assert _aff(affiliate) == (0, 5400, 0, 0)
    assert _adv(advertiser) == (7500, 0)

    run = payout_run_create(period_end=timezone.now(), staff=staff)
    line = run.lines.get()
    assert (line.affiliate, line.amount_minor, line.currency) == (affiliate, 5400, "USD")
    assert _aff(affiliate) == (0, 0, 5400, 0)
    assert set(Lead.objects.values_list("payout_line", flat=True)) == {line.pk}

    rows = list(csv.reader(io.StringIO(payout_run_csv(run))))
    assert rows[1][1:6] == [str(affiliate.pk), affiliate.name, "USD", "54.00", "unpaid"]

    with pytest.raises(Conflict) as again:
        payout_run_create(period_end=timezone.now(), staff=staff)
    assert again.value.code == "nothing_to_pay"

    payout_run_mark_paid(run_id=run.pk, reference="WIRE-1", staff=staff)
    run.refresh_from_db()
    assert run.status == PayoutRunStatus.PAID
    assert _aff(affiliate) == (0, 0, 0, 5400)
    with pytest.raises(Conflict) as twice:
        payout_line_mark_paid(line_id=line.pk, reference="WIRE-2", staff=staff)
    assert twice.value.code == "already_paid"
    _ledger_ok()


def test_a_run_pays_what_was_available_at_the_period_end(network, advertiser, affiliate, staff):
    offer = _offer(advertiser, affiliate)
    now = timezone.now()
    _lead(offer, affiliate, 1, at=now - 3 * DAY)
    _lead(offer, affiliate, 2, at=now - DAY)
    run = payout_run_create(period_end=now - 2 * DAY, staff=staff, now=now)
    assert run.lines.get().amount_minor == 1800
    assert _aff(affiliate) == (0, 1800, 1800, 0)
    statement = statement_for(organization=affiliate, line_id=run.lines.get().pk)
    assert [lead.fields["email"] for lead in statement.leads] == [f"ann1-{offer.pk}@example.com"]
    assert statement.other_minor == 0


def test_thresholds_per_affiliate_and_currency(
    network, advertiser, affiliate, other_affiliate, staff
):
    offer = _offer(advertiser, affiliate)
    approve(offer, other_affiliate)
    _lead(offer, affiliate, 1)
    _lead(offer, other_affiliate, 2)
    payout_threshold_set(currency="USD", minimum_minor=2000)  # the network's default
    payout_threshold_set(currency="USD", minimum_minor=1000, affiliate=other_affiliate)
    run = payout_run_create(period_end=timezone.now(), staff=staff)
    assert [(line.affiliate, line.amount_minor) for line in run.lines.all()] == [
        (other_affiliate, 1800)
    ]
    assert _aff(affiliate) == (0, 1800, 0, 0)  # under its threshold: waits for the next run


def test_held_earnings_are_not_paid_until_released(network, advertiser, affiliate, staff):
    from leadrelay.leads.hold import leads_hold_release

    offer = _offer(advertiser, affiliate, hold_days=7)
    _lead(offer, affiliate)
    assert _aff(affiliate) == (1800, 0, 0, 0)
    with pytest.raises(Conflict):
        payout_run_create(period_end=timezone.now(), staff=staff)
    leads_hold_release(now=timezone.now() + 8 * DAY)
    assert _aff(affiliate) == (0, 1800, 0, 0)


def test_payout_runs_are_for_staff_and_past_periods(network, advertiser, affiliate, staff):
    with pytest.raises(PermissionDenied):
        payout_run_create(period_end=timezone.now(), staff=member(affiliate))
    with pytest.raises(Invalid) as future:
        payout_run_create(period_end=timezone.now() + DAY, staff=staff)
    assert future.value.problems[0].code == "period_in_future"


def test_the_csv_defuses_formulas_in_names(network, advertiser, affiliate, staff):
    affiliate.name = '=HYPERLINK("http://evil")'
    affiliate.save()
    _lead(_offer(advertiser, affiliate), affiliate)
    run = payout_run_create(period_end=timezone.now(), staff=staff)
    rows = list(csv.reader(io.StringIO(payout_run_csv(run))))
    assert rows[1][2] == '\'=HYPERLINK("http://evil")'


def test_the_csv_quotes_every_cell_and_defuses_formulas_after_separators(
    network, advertiser, affiliate, other_affiliate, staff
):
    affiliate.name = "q;=1+13;"
    affiliate.save()
    other_affiliate.name = "-1"
    other_affiliate.save()
    offer = _offer(advertiser, affiliate)
    approve(offer, other_affiliate)
    _lead(offer, affiliate, 1)
    _lead(offer, other_affiliate, 2)
    run = payout_run_create(period_end=timezone.now(), staff=staff)
    mine, theirs = (run.lines.get(affiliate=a) for a in (affiliate, other_affiliate))
    payout_line_mark_paid(line_id=mine.pk, reference="a,=b", staff=staff)
    payout_line_mark_paid(line_id=theirs.pk, reference="x\t@y", staff=staff)
    assert payout_run_csv(run) == (
        '"line","affiliate_id","affiliate","currency","amount","status","reference"\r\n'
        f'"{theirs.pk}","{other_affiliate.pk}","\'-1","USD","18.00","paid","x\t\'@y"\r\n'
        f'"{mine.pk}","{affiliate.pk}","q;\'=1+13;","USD","18.00","paid","a,\'=b"\r\n'
    )  # lines by affiliate name


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_escaped(start):
    from leadrelay.core.csvexport import csv_cell

    assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell("plain") == "plain"
    assert csv_cell(-5) == "-5"  # our own numbers stay numbers


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_never_pay_the_same_money(network, advertiser, affiliate, staff):
    offer = _offer(advertiser, affiliate)
    others = []
    for n in range(4):
        from tests.factories import OrganizationFactory

        other = OrganizationFactory(kind="affiliate")
        approve(offer, other)
        others.append(other)
    for n, aff in enumerate([affiliate, *others]):
        _lead(offer, aff, n)
    count = 4 if connection.vendor == "postgresql" else 2
    outcomes = []

    def run(i: int) -> None:
        try:
            outcomes.append(payout_run_create(period_end=timezone.now(), staff=staff))
        except Conflict as exc:
            outcomes.append(exc.code)

    assert run_together(count, run) == []
    # However the runs interleave, each affiliate's 18.00 is frozen exactly once.
    assert sorted(PayoutLine.objects.values_list("affiliate_id", flat=True)) == sorted(
        a.pk for a in [affiliate, *others]
    )
    assert sum(PayoutLine.objects.values_list("amount_minor", flat=True)) == 5 * 1800
    for aff in [affiliate, *others]:
        assert _aff(aff) == (0, 0, 1800, 0)
    _ledger_ok()


# --- refusals: the ledger is unchanged ------------------------------------------------


def _ledger_size():
    return Transaction.objects.count(), Entry.objects.count()


def test_taking_more_than_is_available_is_refused(network, advertiser, affiliate, staff):
    _lead(_offer(advertiser, affiliate), affiliate)
    before = _ledger_size()
    with pytest.raises(Conflict) as exc:
        ledger_adjustment_post(
            organization=affiliate,
            currency="USD",
            amount_minor=-1801,
            reason="clawback",
            staff=staff,
        )
    assert exc.value.code == "insufficient_balance"
    assert _ledger_size() == before
    ledger_adjustment_post(
        organization=affiliate, currency="USD", amount_minor=-1800, reason="clawback", staff=staff
    )
    assert _aff(affiliate) == (0, 0, 0, 0)


def test_a_posting_in_a_currency_its_account_does_not_hold_is_refused(network, affiliate):
    usd = account_for(organization=affiliate, role=AccountRole.AFFILIATE_PAYABLE, currency="USD")
    cash = account_for(organization=network, role=AccountRole.NETWORK_CASH, currency="USD")
    with pytest.raises(Conflict) as exc:
        transaction_post(
            external_id="x",
            kind="adjustment",
            postings=[Posting(cash, 100, "EUR"), Posting(usd, -100, "EUR")],
        )
    assert exc.value.code == "currency_mismatch"
    assert _ledger_size() == (0, 0)


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgresql_refuses_an_unbalanced_transaction_at_commit(network, affiliate):
    from django.db import DatabaseError, transaction

    usd = account_for(organization=affiliate, role=AccountRole.AFFILIATE_PAYABLE, currency="USD")
    txn, _ = transaction_post(
        external_id="ok",
        kind="adjustment",
        postings=[
            Posting(usd, -5),
            Posting(account_for(organization=network, role="network_cash", currency="USD"), 5),
        ],
    )
    with (
        pytest.raises(DatabaseError, match="does not balance"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO ledger_entry (transaction_id, account_id, amount_minor, currency) "
            "VALUES (%s, %s, 7, 'USD')",
            [txn.pk, usd.pk],
        )
        cursor.execute("SET CONSTRAINTS ledger_entry_balanced IMMEDIATE")


# --- advertisers: payments, prepayments ------------------------------------------------


def test_payments_settle_what_is_owed_once_per_reference(network, advertiser, affiliate, staff):
    _lead(_offer(advertiser, affiliate), affiliate)
    advertiser_payment_record(
        advertiser=advertiser, currency="USD", amount_minor=1000, reference="ACH-1", staff=staff
    )
    advertiser_payment_record(
        advertiser=advertiser, currency="USD", amount_minor=1000, reference="ACH-1", staff=staff
    )
    assert _adv(advertiser) == (1500, 0)
    with pytest.raises(Conflict) as over:
        advertiser_payment_record(
            advertiser=advertiser, currency="USD", amount_minor=1501, reference="ACH-2", staff=staff
        )
    assert over.value.code == "payment_exceeds_owed"
    advertiser_payment_record(
        advertiser=advertiser,
        currency="USD",
        amount_minor=9000,
        reference="ACH-3",
        staff=staff,
        prepayment=True,
    )
    assert _adv(advertiser) == (1500, 9000)
    with pytest.raises(PermissionDenied):
        advertiser_payment_record(
            advertiser=advertiser, currency="USD", amount_minor=1, reference="x", staff=None
        )
    with pytest.raises(Invalid) as bad:
        advertiser_payment_record(
            advertiser=advertiser, currency="usd", amount_minor=0, reference=" ", staff=staff
        )
    assert {p.code for p in bad.value.problems} == {
        "invalid_currency",
        "invalid_amount",
        "reference_required",
    }
    _ledger_ok()


# --- invoices ---------------------------------------------------------------------------


def test_an_invoice_lists_offers_credits_returns_and_books_its_payment(
    network, advertiser, affiliate, staff
):
    now = timezone.now()
    a = _offer(advertiser, affiliate, name="Auto quotes", return_window_days=5)
    b = _offer(advertiser, affiliate, name="Solar")
    leads = [_lead(a, affiliate, n, at=now - 2 * DAY) for n in range(3)]
    _lead(b, affiliate, 9, at=now - 2 * DAY)
    lead_return(lead_id=leads[0].pk, by=advertiser, reason="bad_phone", now=now - DAY)

    invoice = invoice_issue(
        advertiser=advertiser,
        currency="USD",
        period_start=now - 10 * DAY,
        period_end=now,
        staff=staff,
    )
    lines = [(ln.description, ln.quantity, ln.amount_minor) for ln in invoice.lines.all()]
    assert lines == [
        ("Auto quotes: Approved leads", 3, 7500),
        ("Auto quotes: Returns and reversals (credited)", -1, -2500),
        ("Solar: Approved leads", 1, 2500),
    ]
    assert invoice.total_minor == 7500
    assert _adv(advertiser) == (7500, 0)
    with pytest.raises(Conflict) as again:
        invoice_issue(
            advertiser=advertiser,
            currency="USD",
            period_start=now - 10 * DAY,
            period_end=now,
            staff=staff,
        )
    assert again.value.code == "nothing_to_invoice"

    pdf = invoice_pdf(invoice)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 800

    invoice_mark_paid(invoice_id=invoice.pk, reference="WIRE-9", staff=staff)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.paid.kind == "payment"
    assert _adv(advertiser) == (0, 0)
    with pytest.raises(Conflict) as twice:
        invoice_mark_paid(invoice_id=invoice.pk, reference="WIRE-9", staff=staff)
    assert twice.value.code == "already_paid"
    _ledger_ok()


def test_an_invoice_paid_from_the_prepaid_balance(network, advertiser, affiliate, staff):
    now = timezone.now()
    _lead(_offer(advertiser, affiliate), affiliate, at=now - DAY)
    advertiser_payment_record(
        advertiser=advertiser,
        currency="USD",
        amount_minor=2000,
        reference="PRE-1",
        staff=staff,
        prepayment=True,
    )
    invoice = invoice_issue(
        advertiser=advertiser,
        currency="USD",
        period_start=now - 5 * DAY,
        period_end=now,
        staff=staff,
    )
    with pytest.raises(Conflict) as short:
        invoice_mark_paid(invoice_id=invoice.pk, reference="", staff=staff, from_prepaid=True)
    assert short.value.code == "insufficient_balance"
    advertiser_payment_record(
        advertiser=advertiser,
        currency="USD",
        amount_minor=500,
        reference="PRE-2",
        staff=staff,
        prepayment=True,
    )
    invoice_mark_paid(invoice_id=invoice.pk, reference="", staff=staff, from_prepaid=True)
    assert _adv(advertiser) == (0, 0)


# --- returns and reversals --------------------------------------------------------------


def test_a_return_within_the_window_takes_back_sale_and_payout(network, advertiser, affiliate):
    offer = _offer(advertiser, affiliate, return_window_days=3)
    lead = _lead(offer, affiliate)
    assert _aff(affiliate) == (1800, 0, 0, 0)  # pending through the return window
    lead_return(lead_id=lead.pk, by=advertiser, reason="wrong_number")
    lead.refresh_from_db()
    assert (lead.status, lead.return_reason) == (LeadStatus.RETURNED, "wrong_number")
    assert _aff(affiliate) == (0, 0, 0, 0)
    assert _adv(advertiser) == (0, 0)
    approved = Transaction.objects.get(external_id=f"lead:{lead.pk}:approved")
    assert approved.reversed_by.kind == "reversal"
    with pytest.raises(Conflict) as again:
        lead_return(lead_id=lead.pk, by=advertiser, reason="wrong_number")
    assert again.value.code == "lead_not_approved"
    _ledger_ok()


def test_returns_outside_the_window_or_by_others_are_refused(
    network, advertiser, other_advertiser, affiliate
):
    from leadrelay.core.errors import NotFound

    offer = _offer(advertiser, affiliate, return_window_days=3)
    lead = _lead(offer, affiliate)
    with pytest.raises(Conflict) as late:
        lead_return(lead_id=lead.pk, by=advertiser, reason="late", now=timezone.now() + 4 * DAY)
    assert late.value.code == "return_window_closed"
    with pytest.raises(NotFound):
        lead_return(lead_id=lead.pk, by=other_advertiser, reason="mine")
    with pytest.raises(Invalid):
        lead_return(lead_id=lead.pk, by=advertiser, reason="Not a code!")
    no_returns = _lead(_offer(advertiser, affiliate), affiliate, 2)
    with pytest.raises(Conflict) as closed:
        lead_return(lead_id=no_returns.pk, by=advertiser, reason="bad")
    assert closed.value.code == "returns_not_accepted"


def test_staff_reverse_a_released_lead_and_its_postback_fires(
    network, advertiser, affiliate, staff
):
    from leadrelay.postbacks.services import affiliate_postback_create

    affiliate_postback_create(
        affiliate=affiliate,
        event="lead_reversed",
        url_template="https://postback.example/{lead_id}",
    )
    lead = _lead(_offer(advertiser, affiliate), affiliate)
    assert _aff(affiliate) == (0, 1800, 0, 0)
    lead_reverse(lead_id=lead.pk, reason="fraud found", staff=staff)
    assert _aff(affiliate) == (0, 0, 0, 0)
    assert PostbackDelivery.objects.filter(event="lead_reversed", lead=lead).count() == 1
    with pytest.raises(PermissionDenied):
        lead_reverse(lead_id=lead.pk, reason="x", staff=member(advertiser))


def test_reversing_a_lead_already_paid_out_is_refused(network, advertiser, affiliate, staff):
    lead = _lead(_offer(advertiser, affiliate), affiliate)
    payout_run_create(period_end=timezone.now(), staff=staff)
    before = _ledger_size()
    with pytest.raises(Conflict) as exc:
        lead_reverse(lead_id=lead.pk, reason="late fraud", staff=staff)
    assert exc.value.code == "insufficient_balance"
    assert _ledger_size() == before
    lead.refresh_from_db()
    assert lead.status == LeadStatus.APPROVED


def test_an_invoice_is_paid_in_full_even_after_a_later_return(
    network, advertiser, affiliate, staff
):
    """Regression: a return after the invoice's period left less owed than the invoice's
    total, and marking it paid was refused (payment_exceeds_owed)."""
    now = timezone.now()
    offer = _offer(advertiser, affiliate, return_window_days=5)
    leads = [_lead(offer, affiliate, n, at=now - 3 * DAY) for n in range(2)]
    invoice = invoice_issue(
        advertiser=advertiser,
        currency="USD",
        period_start=now - 5 * DAY,
        period_end=now - 2 * DAY,
        staff=staff,
    )
    lead_return(lead_id=leads[0].pk, by=advertiser, reason="bad_phone", now=now - DAY)
    invoice_mark_paid(invoice_id=invoice.pk, reference="WIRE-1", staff=staff)
    assert _adv(advertiser) == (-2500, 0)  # in credit until the next invoice
    credit = invoice_issue(
        advertiser=advertiser,
        currency="USD",
        period_start=now - 2 * DAY,
        period_end=now,
        staff=staff,
    )
    assert (credit.total_minor, credit.status) == (-2500, InvoiceStatus.PAID)
    _ledger_ok()


def test_the_ledger_check_finds_an_edited_payout_line_and_invoice(
    network, advertiser, affiliate, staff, capsys
):
    now = timezone.now()
    _lead(_offer(advertiser, affiliate), affiliate, at=now - DAY)
    run = payout_run_create(period_end=now, staff=staff)
    invoice = invoice_issue(
        advertiser=advertiser,
        currency="USD",
        period_start=now - 2 * DAY,
        period_end=now,
        staff=staff,
    )
    _ledger_ok()
    PayoutLine.objects.filter(run=run).update(amount_minor=9999)  # behind the services' back
    type(invoice).objects.filter(pk=invoice.pk).update(total_minor=1)
    with pytest.raises(SystemExit):
        call_command("ledger", "check")
    out = capsys.readouterr().out
    line = run.lines.get()
    assert f"payout line {line.pk} is for 9999 USD but payout_run:{run.pk}:" in out
    assert f"invoice {invoice.number} totals 1 but its lines 2500" in out
