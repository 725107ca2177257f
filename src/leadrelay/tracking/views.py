from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from leadrelay.core.errors import NotFound
from leadrelay.tracking.services import click_record


@require_GET
@never_cache
def click_redirect(request: HttpRequest, code: str) -> HttpResponse:
    try:
        outcome = click_record(
            code=code,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
            referer=request.headers.get("Referer", ""),
        )
    except NotFound:
        return HttpResponse(
            "This link is not active.", status=404, content_type="text/plain; charset=utf-8"
        )
    return HttpResponseRedirect(outcome.redirect_url)
