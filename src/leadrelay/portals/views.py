"""The network, advertiser and affiliate portals: parse, call a selector or service, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from leadrelay.accounts.models import Membership, OrganizationKind
from leadrelay.accounts.selectors import (
    SESSION_ORG_KEY,
    api_keys_for_organization,
    memberships_for_user,
)
from leadrelay.accounts.services import api_key_create, api_key_revoke
from leadrelay.core.bounds import id_parse
from leadrelay.core.dateranges import DateRangeForm
from leadrelay.core.errors import DomainError, NotFound
from leadrelay.leads.models import LeadStatus
from leadrelay.leads.selectors import leads_awaiting_review, leads_visible_to
from leadrelay.leads.services import leads_review_decide
from leadrelay.ledger.selectors import balances_for
from leadrelay.offers.models import Offer, OfferAccess
from leadrelay.offers.selectors import (
    offer_access_for,
    offer_accesses_pending,
    offer_get,
    offers_visible_to,
)
from leadrelay.offers.services import offer_access_decide, offer_access_request, offer_payout_for
from leadrelay.portals.access import portal_user, portal_view
from leadrelay.portals.forms import ApiKeyForm, LinkForm, ReviewForm
from leadrelay.reporting.charts import dashboard_charts
from leadrelay.reporting.metrics import DEFINITIONS
from leadrelay.reporting.selectors import dashboard_report
from leadrelay.tracking.selectors import links_visible_to, tracking_link_url
from leadrelay.tracking.services import tracking_link_create

NETWORK, ADVERTISER, AFFILIATE = (
    OrganizationKind.NETWORK,
    OrganizationKind.ADVERTISER,
    OrganizationKind.AFFILIATE,
)


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("portal-home")
    return redirect("login")


@portal_view()
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = DateRangeForm(request.GET or None)
    start, end = form.period()
    organization = membership.organization
    report = dashboard_report(organization=organization, start=start, end=end)
    return render(
        request,
        "portals/dashboard.html",
        {
            "form": form,
            "report": report,
            "balances": balances_for(organization=organization),
            "charts": dashboard_charts(report, organization.kind),
            "definitions": DEFINITIONS,
            "review_count": leads_visible_to(organization=organization)
            .filter(status=LeadStatus.PENDING_REVIEW)
            .count()
            if organization.kind == NETWORK
            else 0,
        },
        status=422 if form.errors else 200,  # the default period is shown, with the errors
    )


@portal_view(viewer_may_post=True)
@require_POST
def organization_switch(request: HttpRequest, membership: Membership, org_id: int) -> HttpResponse:
    user = portal_user(request)
    if not any(m.organization_id == org_id for m in memberships_for_user(user=user)):
        raise Http404
    request.session[SESSION_ORG_KEY] = org_id
    return redirect("portal-home")


@portal_view()
def offers(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    offer_list = list(offers_visible_to(organization=organization).order_by("name")[:500])
    accesses: dict[int, OfferAccess] = {}
    payouts: dict[int, int] = {}
    if organization.kind == AFFILIATE:
        accesses = {
            a.offer_id: a
            for a in OfferAccess.objects.filter(affiliate=organization, offer__in=offer_list)
        }
        payouts = {o.pk: offer_payout_for(offer=o, affiliate=organization) for o in offer_list}
    return render(
        request,
        "portals/offers.html",
        {
            "offers": offer_list,
            "accesses": accesses,
            "payouts": payouts,
            "pending_accesses": offer_accesses_pending(organization=organization)
            if organization.kind != AFFILIATE
            else [],
        },
    )


def _offer_or_404(membership: Membership, offer_id: int) -> Offer:
    try:
        return offer_get(organization=membership.organization, offer_id=offer_id)
    except NotFound:
        raise Http404 from None


@portal_view()
def offer_detail(request: HttpRequest, membership: Membership, offer_id: int) -> HttpResponse:
    organization = membership.organization
    offer = _offer_or_404(membership, offer_id)
    context: dict[str, object] = {
        "offer": offer,
        "fields": list(offer.fields.all()),
        "public_base_url": settings.PUBLIC_BASE_URL,
    }
    if organization.kind == AFFILIATE:
        context["access"] = offer_access_for(offer=offer, affiliate=organization)
        context["payout"] = offer_payout_for(offer=offer, affiliate=organization)
        context["links"] = [
            (link, tracking_link_url(link))
            for link in links_visible_to(organization=organization).filter(offer=offer)
        ]
        context["link_form"] = LinkForm()
    return render(request, "portals/offer_detail.html", context)


@portal_view(AFFILIATE)
@require_POST
def offer_apply(request: HttpRequest, membership: Membership, offer_id: int) -> HttpResponse:
    offer = _offer_or_404(membership, offer_id)
    try:
        access = offer_access_request(offer=offer, affiliate=membership.organization)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Your access to {offer.name} is {access.get_status_display()}.")
    return redirect("portal-offer", offer_id=offer.pk)


@portal_view(AFFILIATE)
@require_POST
def link_create(request: HttpRequest, membership: Membership, offer_id: int) -> HttpResponse:
    offer = _offer_or_404(membership, offer_id)
    form = LinkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Sub ids are at most 100 characters.")
        return redirect("portal-offer", offer_id=offer.pk)
    try:
        subs = {k: v for k, v in form.cleaned_data.items() if v}
        link = tracking_link_create(offer=offer, affiliate=membership.organization, subs=subs)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"New link: {tracking_link_url(link)}")
    return redirect("portal-offer", offer_id=offer.pk)


@portal_view(NETWORK, ADVERTISER)
@require_POST
def access_decide(request: HttpRequest, membership: Membership, access_id: int) -> HttpResponse:
    access = (
        offer_accesses_pending(organization=membership.organization).filter(pk=access_id).first()
    )
    if access is None:
        raise Http404
    approve = request.POST.get("decision") == "approve"
    offer_access_decide(access=access, approve=approve, decided_by=portal_user(request))
    messages.success(request, f"{access.affiliate.name}: {access.get_status_display()}.")
    return redirect("portal-offers")


@portal_view()
def links(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = [
        (link, tracking_link_url(link))
        for link in links_visible_to(organization=membership.organization)[:500]
    ]
    return render(request, "portals/links.html", {"links": rows})


@portal_view()
def leads(request: HttpRequest, membership: Membership) -> HttpResponse:
    qs = leads_visible_to(organization=membership.organization)
    status = request.GET.get("status", "")
    if status in LeadStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "portals/leads.html",
        {
            "page": page,
            "status": status,
            "statuses": LeadStatus.choices,
            "reviewable": set(
                leads_awaiting_review(organization=membership.organization)
                .filter(pk__in=[lead.pk for lead in page])
                .values_list("pk", flat=True)
            ),
        },
    )


@portal_view(NETWORK, ADVERTISER)
@require_POST
def lead_review(
    request: HttpRequest, membership: Membership, lead_id: int | None = None
) -> HttpResponse:
    """Approve or reject one lead, or all the ticked ones, with a reason code."""
    # A row's own button names its lead in the URL; the bulk buttons take the ticked ones.
    asked = {lead_id} if lead_id is not None else set()
    if lead_id is None:
        asked = {n for i in request.POST.getlist("lead") if (n := id_parse(i)) is not None}
    allowed = list(
        leads_awaiting_review(organization=membership.organization)
        .filter(pk__in=asked)
        .values_list("pk", flat=True)
    )
    if lead_id is not None and not allowed:
        raise Http404
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject; a reason is a short code.")
        return redirect("portal-leads")
    outcome = leads_review_decide(
        lead_ids=allowed,
        approve=form.cleaned_data["decision"] == "approve",
        actor=portal_user(request),
        reason=form.cleaned_data["reason"],
        note=form.cleaned_data["note"],
    )
    verb = "approved" if form.cleaned_data["decision"] == "approve" else "rejected"
    if outcome.decided:
        messages.success(request, f"{len(outcome.decided)} lead(s) {verb}.")
    gone = len(outcome.skipped) + len(asked) - len(allowed)
    if gone:
        messages.error(request, f"{gone} lead(s) were already decided or are not yours to decide.")
    if not asked:
        messages.error(request, "Tick the leads to decide.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    return redirect(next_url or "portal-leads")


@portal_view()
def api_keys(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    new_secret = None
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("revoke"):
            key_id = id_parse(request.POST["revoke"])
            if key_id is None:
                raise Http404
            try:
                api_key_revoke(organization=organization, api_key_id=key_id)
            except DomainError:
                raise Http404 from None
            messages.success(request, "The key is revoked.")
            return redirect("portal-api-keys")
        if form.is_valid():
            issued = api_key_create(
                organization=organization,
                name=form.cleaned_data["name"],
                created_by=portal_user(request),
            )
            new_secret = issued.secret
            form = ApiKeyForm()
    return render(
        request,
        "portals/api_keys.html",
        {
            "form": form,
            "keys": api_keys_for_organization(organization=organization),
            "new_secret": new_secret,
        },
    )
