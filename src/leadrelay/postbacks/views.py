"""The affiliate's postbacks page: its tracker URLs and the log of calls."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from leadrelay.accounts.models import Membership, OrganizationKind
from leadrelay.core.errors import Invalid, NotFound
from leadrelay.portals.access import portal_view
from leadrelay.portals.forms import problems_on_form
from leadrelay.postbacks.forms import PostbackForm
from leadrelay.postbacks.selectors import postback_deliveries_for, postbacks_for
from leadrelay.postbacks.services import (
    POSTBACK_MACROS,
    affiliate_postback_create,
    affiliate_postback_delete,
)

DELIVERIES_SHOWN = 100


@portal_view(OrganizationKind.AFFILIATE)
def postbacks(request: HttpRequest, membership: Membership) -> HttpResponse:
    affiliate = membership.organization
    form = PostbackForm(request.POST or None, affiliate=affiliate)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                affiliate_postback_create(
                    affiliate=affiliate,
                    event=form.cleaned_data["event"],
                    url_template=form.cleaned_data["url_template"],
                    offer=form.cleaned_data["offer"],
                )
            except Invalid as exc:
                problems_on_form(form, exc.problems)
            else:
                messages.success(request, "The postback is saved.")
                return redirect("portal-postbacks")
        status = 422
    return render(
        request,
        "postbacks/postbacks.html",
        {
            "form": form,
            "postbacks": postbacks_for(affiliate=affiliate),
            "deliveries": postback_deliveries_for(affiliate=affiliate)[:DELIVERIES_SHOWN],
            "macros": sorted(POSTBACK_MACROS),
        },
        status=status,
    )


@portal_view(OrganizationKind.AFFILIATE)
@require_POST
def postback_delete(request: HttpRequest, membership: Membership, postback_id: int) -> HttpResponse:
    try:
        affiliate_postback_delete(affiliate=membership.organization, postback_id=postback_id)
    except NotFound:
        raise Http404 from None
    messages.success(request, "The postback is deleted.")
    return redirect("portal-postbacks")
