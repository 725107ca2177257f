"""The JSON API under /api/v1, with one mapping of domain errors to HTTP answers."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from leadrelay import __version__
from leadrelay.core.errors import DomainError
from leadrelay.core.ratelimit import TooManyRequests
from leadrelay.leads.api import router as leads_router
from leadrelay.offers.api import router as offers_router
from leadrelay.postbacks.api import router as postbacks_router
from leadrelay.reporting.api import router as reporting_router

api = NinjaAPI(
    title="leadrelay API",
    version=__version__,
    description=(
        "Authenticate with `Authorization: Bearer <API key>`. Errors answer with a stable "
        "`code`, a `message` and an `errors` list whose items name the `field` path."
    ),
    urls_namespace="api",
)
api.add_router("/", leads_router)
api.add_router("/", offers_router)
api.add_router("/", reporting_router)
api.add_router("/", postbacks_router)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    response = api.create_response(request, exc.as_dict(), status=exc.status)
    if isinstance(exc, TooManyRequests):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _path(loc: list[object]) -> str:
    # ninja locates errors as ["body", "payload", "fields", "email"]; we answer "fields.email".
    parts = [str(p) for p in loc]
    while parts and parts[0] in {"body", "payload", "query", "path", "header"}:
        parts.pop(0)
    return ".".join(parts)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {
            "code": str(e.get("type", "invalid")),
            "message": str(e.get("msg", "Invalid value.")),
            "field": _path(list(e.get("loc", []))) or None,
        }
        for e in exc.errors
    ]
    return api.create_response(
        request,
        {"code": "validation_failed", "message": "The input is not valid.", "errors": errors},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        {
            "code": "unauthorized",
            "message": "Send a valid API key as `Authorization: Bearer <key>`.",
            "errors": [],
        },
        status=401,
    )
