from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from leadrelay.core.errors import NotFound
from leadrelay.tracking.services import RedirectRefused, click_record
from leadrelay.tracking.visitor import VISITOR_COOKIE, visitor_facts


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


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
        secure=request.is_secure(),
    )
    return response
