import contextlib
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from leadrelay.accounts.models import Membership, OrganizationKind
from leadrelay.core.errors import DomainError, Invalid, NotFound, Problem
from leadrelay.core.text import text_cleaned_by_view, texts_clean
from leadrelay.portals.access import portal_view
from leadrelay.tracking.conversions import (
    Unauthenticated,
    conversion_record,
    postback_advertiser,
    postback_key_issue,
)
from leadrelay.tracking.models import ConversionSource, PostbackKey
from leadrelay.tracking.selectors import conversions_visible_to
from leadrelay.tracking.services import RedirectRefused, click_record
from leadrelay.tracking.visitor import VISITOR_COOKIE, visitor_facts


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@text_cleaned_by_view  # click_record keeps the query string without what can't be stored
@require_GET
@never_cache
def click_redirect(request: HttpRequest, code: str) -> HttpResponse:
    visitor = visitor_facts(request)
    try:
        outcome = click_record(code=code, visitor=visitor, params=request.GET.dict())
    except NotFound:
        return _text("This link is not active.", 404)
    except RedirectRefused as exc:
        return _text(exc.message, 400)
    if outcome.redirect_url is None:
        response: HttpResponse = _text("This offer is not available to you right now.", 404)
    else:
        response = HttpResponseRedirect(outcome.redirect_url)
    response.set_cookie(
        VISITOR_COOKIE,
        visitor.visitor_id,
        max_age=settings.VISITOR_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
    )
    return response


# A transparent 1x1 GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _postback_params(request: HttpRequest) -> dict[str, str]:
    params = request.GET.dict()
    if request.method == "POST":
        if request.content_type == "application/json":
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise Invalid([Problem("invalid_body", "Send a JSON object.", None)])
            params.update({str(k): str(v) for k, v in body.items() if v is not None})
        else:
            params.update(request.POST.dict())
    return params


@csrf_exempt
@require_http_methods(["GET", "POST"])
@never_cache
def conversion_postback(request: HttpRequest) -> HttpResponse:
    """Server-to-server conversion postback; see tracking/conversions.py."""
    try:
        # The raw bytes first: once a form body is parsed they can't be read for the signature.
        payload = (
            request.body
            if request.method == "POST"
            else request.META.get("QUERY_STRING", "").encode()
        )
        params = _postback_params(request)
        advertiser = postback_advertiser(
            token=params.pop("token", "") or "",
            signature=request.headers.get("X-Leadrelay-Signature", ""),
            timestamp=request.headers.get("X-Leadrelay-Timestamp", ""),
            payload=payload,
        )
        if advertiser is None:
            raise Unauthenticated()
        conversion, created = conversion_record(
            params=params, source=ConversionSource.SERVER, advertiser=advertiser
        )
    except DomainError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status)
    return JsonResponse(
        {
            "id": conversion.pk,
            "status": conversion.status,
            "reason": conversion.reason,
            "duplicate": not created,
        },
        status=201 if created else 200,
    )


@text_cleaned_by_view
@require_GET
@never_cache
def conversion_pixel(request: HttpRequest) -> HttpResponse:
    """The pixel fallback: always a GIF (a page shows no errors); bad input records nothing.
    Its query string is tracking data from a browser: kept without what can't be stored."""
    with contextlib.suppress(DomainError):
        conversion_record(
            params=texts_clean(request.GET.dict()),
            source=ConversionSource.PIXEL,
            advertiser=None,
        )
    return HttpResponse(PIXEL, content_type="image/gif")


@portal_view(OrganizationKind.ADVERTISER)
def postback_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    """An advertiser's postback token and secret (issued on POST, shown once), and its log."""
    advertiser = membership.organization
    issued = postback_key_issue(advertiser=advertiser) if request.method == "POST" else None
    return render(
        request,
        "tracking/postback_settings.html",
        {
            "issued": issued,
            "has_key": PostbackKey.objects.filter(advertiser=advertiser).exists(),
            "base_url": settings.PUBLIC_BASE_URL,
            "conversions": conversions_visible_to(organization=advertiser)[:100],
        },
    )
