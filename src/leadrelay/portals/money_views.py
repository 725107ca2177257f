"""Portal pages for money: balances, payments, adjustments, payout runs, statements, invoices,
and taking back leads. Each parses its form, calls one ledger service and shows the outcome;
a refused operation shows the service's message and changes nothing."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from leadrelay.accounts.models import Membership, Organization, OrganizationKind
from leadrelay.core.bounds import DATE_MAX, DATE_MIN, DayField, id_parse
from leadrelay.core.errors import DomainError
from leadrelay.core.money import currency_is_valid, money_parse
from leadrelay.leads.returns import lead_return, lead_reverse
from leadrelay.ledger.invoices import (
    invoice_get,
    invoice_issue,
    invoice_mark_paid,
    invoice_pdf,
    invoices_for,
)
from leadrelay.ledger.models import PayoutRun
from leadrelay.ledger.payments import advertiser_payment_record
from leadrelay.ledger.payouts import (
    payout_line_mark_paid,
    payout_lines_for,
    payout_run_create,
    payout_run_csv,
    payout_run_mark_paid,
    statement_for,
)
from leadrelay.ledger.selectors import advertiser_balances, affiliate_balances
from leadrelay.ledger.services import ledger_adjustment_post
from leadrelay.portals.access import portal_user, portal_view

NETWORK, ADVERTISER, AFFILIATE = (
    OrganizationKind.NETWORK,
    OrganizationKind.ADVERTISER,
    OrganizationKind.AFFILIATE,
)


def _refused(request: HttpRequest, exc: DomainError) -> None:
    text = "; ".join(p.message for p in exc.problems) if exc.problems else exc.message
    messages.error(request, f"Refused ({exc.code}): {text}")


class AmountForm(forms.Form):
    """An organization, a currency and an amount typed as people write it ("125.50")."""

    organization = forms.ModelChoiceField(queryset=Organization.objects.none())
    currency = forms.CharField(max_length=3, initial="USD")
    amount = forms.CharField(max_length=20)

    def __init__(self, *args: object, kinds: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        org_field = self.fields["organization"]
        assert isinstance(org_field, forms.ModelChoiceField)
        org_field.queryset = Organization.objects.filter(kind__in=kinds, is_active=True)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        currency = str(data.get("currency", "")).upper()
        if not currency_is_valid(currency):
            self.add_error("currency", "Use an ISO 4217 code such as USD.")
            return data
        data["currency"] = currency
        text = str(data.get("amount", "")).strip()
        negative = text.startswith("-")
        try:
            minor = money_parse(text.lstrip("-"), currency)
        except ValueError as exc:
            self.add_error("amount", f"The amount is {exc}.")
            return data
        data["amount_minor"] = -minor if negative else minor
        return data


class PaymentForm(AmountForm):
    reference = forms.CharField(max_length=120)
    prepayment = forms.BooleanField(required=False)


class AdjustmentForm(AmountForm):
    reason = forms.CharField(max_length=500)


@portal_view()
def money(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Balances for everyone; for network staff also the payment and adjustment forms."""
    organization = membership.organization
    context: dict[str, object] = {}
    if organization.kind == AFFILIATE:
        context["affiliate_balances"] = affiliate_balances(organization=organization)
    elif organization.kind == ADVERTISER:
        context["advertiser_balances"] = advertiser_balances(organization=organization)
    else:
        context["advertisers"] = [
            (org, advertiser_balances(organization=org))
            for org in Organization.objects.filter(kind=ADVERTISER)
        ]
        context["affiliates"] = [
            (org, affiliate_balances(organization=org))
            for org in Organization.objects.filter(kind=AFFILIATE)
        ]
        context["payment_form"] = PaymentForm(kinds=[ADVERTISER])
        context["adjustment_form"] = AdjustmentForm(kinds=[ADVERTISER, AFFILIATE])
    return render(request, "portals/money.html", context)


@portal_view(NETWORK)
@require_POST
def payment_record(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = PaymentForm(request.POST, kinds=[ADVERTISER])
    if not form.is_valid():
        messages.error(request, f"Refused: {form.errors.as_text()}")
        return redirect("portal-money")
    data = form.cleaned_data
    try:
        advertiser_payment_record(
            advertiser=data["organization"],
            currency=data["currency"],
            amount_minor=data["amount_minor"],
            reference=data["reference"],
            staff=portal_user(request),
            prepayment=data["prepayment"],
        )
        messages.success(request, "Payment recorded.")
    except DomainError as exc:
        _refused(request, exc)
    return redirect("portal-money")


@portal_view(NETWORK)
@require_POST
def adjustment_post(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = AdjustmentForm(request.POST, kinds=[ADVERTISER, AFFILIATE])
    if not form.is_valid():
        messages.error(request, f"Refused: {form.errors.as_text()}")
        return redirect("portal-money")
    data = form.cleaned_data
    try:
        ledger_adjustment_post(
            organization=data["organization"],
            currency=data["currency"],
            amount_minor=data["amount_minor"],
            reason=data["reason"],
            staff=portal_user(request),
        )
        messages.success(request, "Adjustment posted.")
    except DomainError as exc:
        _refused(request, exc)
    return redirect("portal-money")


# --- payout runs (network) and statements (affiliates) ----------------------------------


def _end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


@portal_view(NETWORK)
def payout_runs(request: HttpRequest, membership: Membership) -> HttpResponse:
    if request.method == "POST":
        try:
            day = dt.date.fromisoformat(request.POST.get("period_end", ""))
            if not DATE_MIN <= day <= DATE_MAX:
                raise ValueError(day)
            run = payout_run_create(
                period_end=min(_end_of_day(day), timezone.now()), staff=portal_user(request)
            )
            messages.success(request, f"Payout run {run.pk}: {run.lines.count()} line(s).")
            return redirect("portal-payout-run", run_id=run.pk)
        except ValueError:
            messages.error(
                request,
                f"Refused: give the period's last day as YYYY-MM-DD, {DATE_MIN} to {DATE_MAX}.",
            )
        except DomainError as exc:
            _refused(request, exc)
        return redirect("portal-payout-runs")
    return render(
        request,
        "portals/payout_runs.html",
        {"runs": PayoutRun.objects.all()[:200], "today": timezone.now().date()},
    )


@portal_view(NETWORK)
def payout_run(request: HttpRequest, membership: Membership, run_id: int) -> HttpResponse:
    run = PayoutRun.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404
    if request.method == "POST":
        reference = request.POST.get("reference", "")
        line_id = id_parse(request.POST.get("line", ""))
        try:
            if line_id is not None and run.lines.filter(pk=line_id).exists():
                payout_line_mark_paid(
                    line_id=line_id, reference=reference, staff=portal_user(request)
                )
            else:
                payout_run_mark_paid(run_id=run.pk, reference=reference, staff=portal_user(request))
            messages.success(request, "Marked paid.")
        except DomainError as exc:
            _refused(request, exc)
        return redirect("portal-payout-run", run_id=run.pk)
    return render(
        request,
        "portals/payout_run.html",
        {"run": run, "lines": run.lines.select_related("affiliate", "paid")},
    )


@portal_view(NETWORK)
def payout_run_export(request: HttpRequest, membership: Membership, run_id: int) -> HttpResponse:
    run = PayoutRun.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404
    response = HttpResponse(payout_run_csv(run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="payout-run-{run.pk}.csv"'
    return response


@portal_view(NETWORK, AFFILIATE)
def statements(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(
        request,
        "portals/statements.html",
        {"lines": payout_lines_for(organization=membership.organization)[:500]},
    )


@portal_view(NETWORK, AFFILIATE)
def statement(request: HttpRequest, membership: Membership, line_id: int) -> HttpResponse:
    try:
        found = statement_for(organization=membership.organization, line_id=line_id)
    except DomainError:
        raise Http404 from None
    return render(request, "portals/statement.html", {"statement": found})


# --- invoices ------------------------------------------------------------------------------


class InvoiceForm(forms.Form):
    advertiser = forms.ModelChoiceField(
        queryset=Organization.objects.filter(kind=OrganizationKind.ADVERTISER)
    )
    currency = forms.CharField(max_length=3, initial="USD")
    start = DayField()
    end = DayField(help_text="Inclusive.")


@portal_view(NETWORK, ADVERTISER)
def invoices(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    form = InvoiceForm(request.POST or None) if organization.kind == NETWORK else None
    if request.method == "POST" and form is not None:
        if form.is_valid():
            data = form.cleaned_data
            try:
                invoice = invoice_issue(
                    advertiser=data["advertiser"],
                    currency=data["currency"].upper(),
                    period_start=dt.datetime.combine(data["start"], dt.time(), tzinfo=dt.UTC),
                    period_end=min(
                        dt.datetime.combine(
                            data["end"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC
                        ),
                        timezone.now(),
                    ),
                    staff=portal_user(request),
                )
                messages.success(request, f"Invoice {invoice.number} issued.")
                return redirect("portal-invoice", invoice_id=invoice.pk)
            except DomainError as exc:
                _refused(request, exc)
        else:
            messages.error(request, f"Refused: {form.errors.as_text()}")
        return redirect("portal-invoices")
    return render(
        request,
        "portals/invoices.html",
        {"invoices": invoices_for(organization=organization)[:500], "form": form},
    )


@portal_view(NETWORK, ADVERTISER)
def invoice(request: HttpRequest, membership: Membership, invoice_id: int) -> HttpResponse:
    try:
        found = invoice_get(organization=membership.organization, invoice_id=invoice_id)
    except DomainError:
        raise Http404 from None
    if request.method == "POST":
        if membership.organization.kind != NETWORK:
            raise Http404
        try:
            invoice_mark_paid(
                invoice_id=found.pk,
                reference=request.POST.get("reference", ""),
                staff=portal_user(request),
                from_prepaid=request.POST.get("from_prepaid") == "1",
            )
            messages.success(request, f"Invoice {found.number} marked paid.")
        except DomainError as exc:
            _refused(request, exc)
        return redirect("portal-invoice", invoice_id=found.pk)
    return render(request, "portals/invoice.html", {"invoice": found, "lines": found.lines.all()})


@portal_view(NETWORK, ADVERTISER)
def invoice_download(request: HttpRequest, membership: Membership, invoice_id: int) -> HttpResponse:
    try:
        found = invoice_get(organization=membership.organization, invoice_id=invoice_id)
    except DomainError:
        raise Http404 from None
    response = HttpResponse(invoice_pdf(found), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{found.number}.pdf"'
    return response


# --- taking back leads ------------------------------------------------------------------


@portal_view(NETWORK, ADVERTISER)
@require_POST
def lead_take_back(request: HttpRequest, membership: Membership, lead_id: int) -> HttpResponse:
    """An advertiser returns a lead (reason code); network staff reverse one (any reason)."""
    organization = membership.organization
    reason = request.POST.get("reason", "")
    try:
        if organization.kind == ADVERTISER:
            lead_return(lead_id=lead_id, by=organization, reason=reason, actor=portal_user(request))
            messages.success(request, f"Lead {lead_id} returned.")
        else:
            lead_reverse(lead_id=lead_id, reason=reason, staff=portal_user(request))
            messages.success(request, f"Lead {lead_id} reversed.")
    except DomainError as exc:
        if exc.status == 404:
            raise Http404 from None
        _refused(request, exc)
    return redirect("portal-leads")
