"""Portal pages for buyer campaigns: each buyer's state (and why it is paused), its recent
deliveries with every try, re-sending one by hand, pausing and resuming; creating and
editing a buyer, its caps and its signing secrets; and its returns, which network staff
accept or refuse.

Advertisers see and change their own buyers, the network every buyer; affiliates have
no such pages. A buyer another advertiser owns is 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from leadrelay.accounts.models import Membership, Organization, OrganizationKind, Role
from leadrelay.core.bounds import id_parse
from leadrelay.core.errors import DomainError, Invalid, NotFound
from leadrelay.core.money import money_parse
from leadrelay.distribution.buyers import (
    buyer_cap_remove,
    buyer_cap_set,
    buyer_create,
    buyer_problems,
    buyer_secret_add,
    buyer_secret_fingerprint,
    buyer_secret_new,
    buyer_secret_remove,
    buyer_settings,
    buyer_status_set,
    buyer_update,
)
from leadrelay.distribution.delivery import delivery_resend
from leadrelay.distribution.models import Buyer, BuyerStatus, Delivery, DeliveryStatus, ReturnStatus
from leadrelay.distribution.returns import buyer_return_decide, buyer_return_request
from leadrelay.distribution.selectors import buyer_get, buyer_returns_visible_to, buyers_visible_to
from leadrelay.portals.access import portal_user, portal_view
from leadrelay.portals.buyer_forms import AMOUNT_SETTINGS, BuyerForm, CapForm

NETWORK, ADVERTISER = OrganizationKind.NETWORK, OrganizationKind.ADVERTISER
# The session keeps a new secret for the one page that shows it.
NEW_SECRET_KEY = "leadrelay_buyer_new_secret"


def _buyer_or_404(membership: Membership, buyer_id: int) -> Buyer:
    try:
        return buyer_get(organization=membership.organization, buyer_id=buyer_id)
    except NotFound:
        raise Http404 from None


def _refused(request: HttpRequest, exc: DomainError) -> None:
    text = "; ".join(p.message for p in exc.problems) if exc.problems else exc.message
    messages.error(request, f"Refused ({exc.code}): {text}")


def _secret_show_once(request: HttpRequest, buyer: Buyer, secret: str) -> None:
    request.session[NEW_SECRET_KEY] = {"buyer": buyer.pk, "secret": secret}


@portal_view(NETWORK, ADVERTISER)
def buyers(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = buyers_visible_to(organization=membership.organization).annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
    )
    return render(request, "portals/buyers.html", {"buyers": rows})


@portal_view(NETWORK, ADVERTISER)
def buyer_detail(request: HttpRequest, membership: Membership, buyer_id: int) -> HttpResponse:
    buyer = _buyer_or_404(membership, buyer_id)
    if request.method == "POST":
        if request.POST.get("resume"):
            buyer_status_set(buyer=buyer, by=membership.organization, status=BuyerStatus.ACTIVE)
            messages.success(request, f"{buyer.name} takes leads again.")
        elif request.POST.get("pause"):
            buyer_status_set(buyer=buyer, by=membership.organization, status=BuyerStatus.PAUSED)
            messages.success(request, f"{buyer.name} is paused: it is sent nothing.")
        elif "resend" in request.POST:
            delivery_id = id_parse(request.POST["resend"])
            if delivery_id is None or not buyer.deliveries.filter(pk=delivery_id).exists():
                raise Http404
            try:
                delivery_resend(delivery_id=delivery_id)
                messages.success(request, f"Delivery {delivery_id} is sent again.")
            except DomainError as exc:
                _refused(request, exc)
        return redirect("portal-buyer", buyer_id=buyer.pk)
    deliveries = (
        Delivery.objects.filter(buyer=buyer)
        .select_related("return_request")
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-pk")[:100]
    )
    shown = request.session.get(NEW_SECRET_KEY) or {}
    new_secret = None
    if shown.get("buyer") == buyer.pk:
        new_secret = request.session.pop(NEW_SECRET_KEY)["secret"]
    return render(
        request,
        "portals/buyer.html",
        {
            "buyer": buyer,
            "deliveries": deliveries,
            "caps": buyer.caps.order_by("period"),
            "cap_form": CapForm(),
            "secrets": [
                (buyer_secret_fingerprint(s), s[:10] + "…", i == 0)
                for i, s in enumerate(buyer.signing_secrets)
            ],
            "new_secret": new_secret,
            "offers": list(buyer.offers.all()),
        },
    )


def _form_page(request: HttpRequest, form: BuyerForm, buyer: Buyer | None) -> HttpResponse:
    return render(request, "portals/buyer_form.html", {"form": form, "buyer": buyer})


def _rest_checked(form: BuyerForm, buyer: Buyer | None) -> None:
    """A form that did not parse (a JSON mistake, an amount) still has what did checked, so
    the page lists every problem at once, as it says, instead of a bad URL only after the
    JSON is fixed. A field with an error of its own keeps just that one."""
    data = {"currency": "USD", **(buyer_settings(buyer) if buyer else {}), **form.settings()}
    offers = form.cleaned_data.get("offers")
    if offers is None:
        offers = buyer.offers.all() if buyer else []
    named = set(form.errors)
    form.problems_show(
        [
            p
            for p in buyer_problems(data, list(offers))
            if (key := (p.field or "").split(".")[0]) and AMOUNT_SETTINGS.get(key, key) not in named
        ]
    )


@portal_view(NETWORK, ADVERTISER)
def buyer_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    """A new buyer, for the acting advertiser or, by network staff, for any advertiser. It
    gets a signing secret, shown once."""
    organization = membership.organization
    form = BuyerForm(request.POST or None, choose_advertiser=organization.kind == NETWORK)
    if request.method != "POST":
        return _form_page(request, form, None)
    if not form.is_valid():
        _rest_checked(form, None)
        return _form_page(request, form, None)
    advertiser: Organization = form.cleaned_data.get("advertiser") or organization
    try:
        buyer = buyer_create(
            advertiser=advertiser,
            offers=list(form.cleaned_data["offers"]),
            signing_secrets=[buyer_secret_new()],
            **form.settings(),
        )
    except Invalid as exc:
        form.problems_show(exc.problems)
        return _form_page(request, form, None)
    _secret_show_once(request, buyer, buyer.signing_secrets[0])
    messages.success(request, f"{buyer.name} is set up.")
    return redirect("portal-buyer", buyer_id=buyer.pk)


@portal_view(NETWORK, ADVERTISER)
def buyer_edit(request: HttpRequest, membership: Membership, buyer_id: int) -> HttpResponse:
    buyer = _buyer_or_404(membership, buyer_id)
    form = BuyerForm(
        request.POST or None, initial=BuyerForm.initial_for(buyer), choose_advertiser=False
    )
    if request.method != "POST":
        return _form_page(request, form, buyer)
    if not form.is_valid():
        _rest_checked(form, buyer)
        return _form_page(request, form, buyer)
    try:
        buyer_update(
            buyer=buyer,
            by=membership.organization,
            offers=list(form.cleaned_data["offers"]),
            **form.settings(),
        )
    except Invalid as exc:
        form.problems_show(exc.problems)
        return _form_page(request, form, buyer)
    messages.success(request, f"{buyer.name}: saved.")
    return redirect("portal-buyer", buyer_id=buyer.pk)


@portal_view(NETWORK, ADVERTISER)
@require_POST
def buyer_caps(request: HttpRequest, membership: Membership, buyer_id: int) -> HttpResponse:
    buyer = _buyer_or_404(membership, buyer_id)
    if period := request.POST.get("remove", ""):
        buyer_cap_remove(buyer=buyer, period=period)
        messages.success(request, f"No {period} cap any more.")
        return redirect("portal-buyer", buyer_id=buyer.pk)
    form = CapForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Refused: {form.errors.as_text()}")
        return redirect("portal-buyer", buyer_id=buyer.pk)
    spend_text = form.cleaned_data["max_spend"].strip()
    try:
        buyer_cap_set(
            buyer=buyer,
            period=form.cleaned_data["period"],
            max_leads=form.cleaned_data["max_leads"],
            max_spend_minor=money_parse(spend_text, buyer.currency) if spend_text else None,
        )
    except ValueError as exc:
        messages.error(request, f"Refused: the spend is {exc}.")
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"The {form.cleaned_data['period']} cap is set.")
    return redirect("portal-buyer", buyer_id=buyer.pk)


@portal_view(NETWORK, ADVERTISER)
@require_POST
def buyer_secrets(request: HttpRequest, membership: Membership, buyer_id: int) -> HttpResponse:
    """Rotation: add a secret (both sign until the old one is removed), remove an old one."""
    buyer = _buyer_or_404(membership, buyer_id)
    try:
        if fingerprint := request.POST.get("remove", ""):
            buyer_secret_remove(buyer=buyer, by=membership.organization, fingerprint=fingerprint)
            messages.success(request, "The secret signs no more.")
        else:
            secret = buyer_secret_add(buyer=buyer, by=membership.organization)
            _secret_show_once(request, buyer, secret)
            messages.success(request, "A new secret signs from now on, next to the old ones.")
    except NotFound:
        raise Http404 from None
    except DomainError as exc:
        _refused(request, exc)
    return redirect("portal-buyer", buyer_id=buyer.pk)


@portal_view(NETWORK, ADVERTISER)
@require_POST
def buyer_return_file(request: HttpRequest, membership: Membership, buyer_id: int) -> HttpResponse:
    """The advertiser returns a lead one of its buyers was delivered."""
    buyer = _buyer_or_404(membership, buyer_id)
    lead_id = id_parse(request.POST.get("lead", ""))
    if lead_id is None or not buyer.deliveries.filter(lead_id=lead_id).exists():
        raise Http404
    try:
        returned = buyer_return_request(
            lead_id=lead_id, by=buyer.advertiser, reason=request.POST.get("reason", "")
        )
    except DomainError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Lead {lead_id}: return {returned.get_status_display()}.")
    return redirect("portal-buyer", buyer_id=buyer.pk)


def _may_decide(membership: Membership) -> bool:
    return membership.organization.kind == NETWORK and membership.role in (Role.OWNER, Role.MANAGER)


@portal_view(NETWORK, ADVERTISER)
def buyer_returns(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Returns of the buyers one sees; network staff accept or refuse those waiting."""
    rows = buyer_returns_visible_to(organization=membership.organization)
    status = request.GET.get("status", "")
    if status in ReturnStatus.values:
        rows = rows.filter(status=status)
    context: dict[str, Any] = {
        "returns": rows[:500],
        "status": status,
        "statuses": ReturnStatus.choices,
        "may_decide": _may_decide(membership),
    }
    return render(request, "portals/buyer_returns.html", context)


@portal_view(NETWORK)
@require_POST
def buyer_return_review(
    request: HttpRequest, membership: Membership, return_id: int
) -> HttpResponse:
    """Accept (the sale is reversed as for an auto-accepted return) or refuse a return."""
    found = buyer_returns_visible_to(organization=membership.organization).filter(pk=return_id)
    if not found.exists():
        raise Http404
    accept = request.POST.get("decision") == "accept"
    error = None
    try:
        buyer_return_decide(return_id=return_id, accept=accept, staff=portal_user(request))
    except DomainError as exc:
        error = f"Refused ({exc.code}): {exc.message}"
    if getattr(request, "htmx", False):
        # htmx swaps just the row, with the outcome or the refusal in it.
        context = {"r": found.get(), "may_decide": _may_decide(membership), "error": error}
        return render(request, "portals/_buyer_return_row.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Return {return_id} {'accepted' if accept else 'refused'}.")
    return redirect("portal-buyer-returns")
