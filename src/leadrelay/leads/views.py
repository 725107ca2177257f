"""The hosted capture form: a page per offer rendered from its field schema."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import phonenumbers
import pycountry
from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from leadrelay.accounts.models import Membership, OrganizationKind
from leadrelay.core.addresses import client_ip
from leadrelay.core.errors import DomainError, Invalid
from leadrelay.leads.consent import Consent
from leadrelay.leads.dedupe import suppression_list_upload
from leadrelay.leads.models import LeadSource, SuppressionEntry
from leadrelay.leads.services import LeadOrigin, lead_intake
from leadrelay.offers.models import FieldType, Offer, OfferField, OfferStatus
from leadrelay.portals.access import portal_view
from leadrelay.tracking.visitor import VISITOR_COOKIE

_INPUT_TYPES: dict[str, tuple[str, str]] = {
    FieldType.EMAIL: ("email", "email"),
    FieldType.PHONE: ("tel", "tel"),
    FieldType.TEXT: ("text", ""),
    FieldType.NUMBER: ("number", ""),
    FieldType.DATE: ("date", ""),
    FieldType.POSTAL_CODE: ("text", "postal-code"),
}
_COUNTRIES = sorted((c.alpha_2, c.name) for c in pycountry.countries)


@dataclass(frozen=True)
class FormField:
    field: OfferField
    value: Any
    error: str
    input_type: str
    autocomplete: str
    options: list[tuple[str, str]]


def _form_fields(offer: Offer, values: dict[str, Any], errors: dict[str, str]) -> list[FormField]:
    out = []
    for field in offer.fields.all():
        input_type, autocomplete = _INPUT_TYPES.get(field.type, ("text", ""))
        options: list[tuple[str, str]] = []
        if field.type == FieldType.CHOICE:
            options = [(c, c) for c in field.choices]
        elif field.type == FieldType.COUNTRY:
            options = _COUNTRIES
            autocomplete = "country"
        out.append(
            FormField(
                field=field,
                value=values.get(field.key, ""),
                error=errors.get(field.key, ""),
                input_type=input_type,
                autocomplete=autocomplete,
                options=options,
            )
        )
    return out


FORM_TOKEN = "lr_ft"
CONSENT_FIELD = "lr_consent"
HONEYPOT_FIELD = "lr_hp_url"  # hidden from people; a bot that fills every input fills it
_TOKEN_SALT = "leadrelay.lead-form"


def _form_seconds(token: str, offer: Offer) -> float:
    """Seconds from when the form was shown to when it was sent; 0 without a valid token
    (a post that never loaded the page is as fast as it gets)."""
    try:
        data = signing.loads(token, salt=_TOKEN_SALT, max_age=24 * 3600)
    except signing.BadSignature:
        return 0.0
    if not isinstance(data, dict) or data.get("o") != offer.pk:
        return 0.0
    return max(0.0, time.time() - float(data.get("t", 0)))


def _active_offer(offer_id: int) -> Offer:
    offer = Offer.objects.filter(pk=offer_id, status=OfferStatus.ACTIVE).first()
    if offer is None:
        raise Http404("This offer is not taking leads.")
    return offer


# Public and embeddable: it is shown in other sites' iframes, where our cookies (CSRF's
# included) are not sent. It grants nothing a session could abuse; the timing token,
# the honeypot and the per-address rate limit guard it instead.
@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def lead_form(request: HttpRequest, offer_id: int) -> HttpResponse:
    offer = _active_offer(offer_id)
    click_id = (request.POST.get("click_id") or request.GET.get("click_id") or "")[:1100]
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    general_error = ""
    if request.method == "POST":
        keys = {f.key for f in offer.fields.all()}
        values = {k: v for k, v in request.POST.items() if k in keys}
        try:
            lead_intake(
                offer_id=offer.pk,
                fields=values,
                source=LeadSource.FORM,
                click_id=click_id or None,
                origin=LeadOrigin(
                    ip=client_ip(request),
                    user_agent=request.headers.get("User-Agent", ""),
                    visitor_id=request.COOKIES.get(VISITOR_COOKIE, ""),
                    form_seconds=_form_seconds(request.POST.get(FORM_TOKEN, ""), offer),
                    honeypot_filled=bool(request.POST.get(HONEYPOT_FIELD, "").strip()),
                ),
                consent=Consent(
                    text=offer.consent_text, page_url=request.build_absolute_uri()[:2000]
                )
                if offer.consent_text and request.POST.get(CONSENT_FIELD)
                else None,
            )
        except Invalid as exc:
            for problem in exc.problems:
                key = (problem.field or "").removeprefix("fields.")
                if key == "click_id":
                    # A visitor can't fix a bad click id: take the lead unattributed instead.
                    click_id = ""
                    general_error = "Please send the form again."
                else:
                    errors.setdefault(key, problem.message)
        except DomainError as exc:
            general_error = exc.message
        else:
            if offer.thank_you_url:
                return HttpResponseRedirect(offer.thank_you_url)
            return redirect("lead-form-thanks", offer_id=offer.pk)
    status = 422 if errors or general_error else 200
    return render(
        request,
        "leads/form.html",
        {
            "offer": offer,
            "form_fields": _form_fields(offer, values, errors),
            "click_id": click_id,
            "general_error": general_error,
            "form_token": signing.dumps({"o": offer.pk, "t": time.time()}, salt=_TOKEN_SALT),
            "form_token_name": FORM_TOKEN,
            "honeypot_name": HONEYPOT_FIELD,
            "consent_name": CONSENT_FIELD,
            "consent_error": errors.get("consent", ""),
        },
        status=status,
    )


@xframe_options_exempt
def lead_form_thanks(request: HttpRequest, offer_id: int) -> HttpResponse:
    offer = _active_offer(offer_id)
    return render(request, "leads/thanks.html", {"offer": offer})


@portal_view(OrganizationKind.ADVERTISER)
def suppression_upload(request: HttpRequest, membership: Membership) -> HttpResponse:
    """An advertiser uploads the emails and phones it already has; they are kept hashed."""
    result = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        text = request.POST.get("lines", "")
        if upload is not None:
            if upload.size and upload.size > 20 * 1024 * 1024:
                return HttpResponse("At most 20 MB a file.", status=413)
            text += "\n" + upload.read().decode("utf-8", "replace")
        region = request.POST.get("region", "US").upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            region = "US"
        result = suppression_list_upload(
            advertiser=membership.organization, lines=text.splitlines(), region=region
        )
    return render(
        request,
        "leads/suppression.html",
        {
            "result": result,
            "count": SuppressionEntry.objects.filter(advertiser=membership.organization).count(),
        },
    )


_EMBED_JS = """(function () {
  var s = document.currentScript;
  var params = new URLSearchParams(window.location.search);
  var cid = s.getAttribute("data-click-id") || params.get("cid") || params.get("click_id") || "";
  var f = document.createElement("iframe");
  f.src = %(form_url)s + (cid ? "?click_id=" + encodeURIComponent(cid) : "");
  f.title = %(title)s;
  f.style.width = "100%%"; f.style.maxWidth = "560px"; f.style.border = "0";
  f.style.height = s.getAttribute("data-height") || "760px";
  f.setAttribute("loading", "lazy");
  s.parentNode.insertBefore(f, s);
})();
"""


def lead_form_embed(request: HttpRequest, offer_id: int) -> HttpResponse:
    """A script for affiliates' own pages: it puts the hosted form in an iframe, carrying the
    click id from the page's ?cid= / ?click_id= or the tag's data-click-id."""
    offer = _active_offer(offer_id)
    # The public address, not the one this request came in on (a TLS proxy speaks http to us).
    form_url = settings.PUBLIC_BASE_URL + reverse("lead-form", args=[offer.pk])
    body = _EMBED_JS % {"form_url": json.dumps(form_url), "title": json.dumps(offer.name)}
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response
