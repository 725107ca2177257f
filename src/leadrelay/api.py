"""The JSON API under /api/v1, with one mapping of domain errors to HTTP answers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

from leadrelay import __version__
from leadrelay.core.errors import DomainError
from leadrelay.core.ratelimit import TooManyRequests
from leadrelay.core.schemas import ErrorOut
from leadrelay.distribution.api import router as returns_router
from leadrelay.distribution.ping_api import router as ping_router
from leadrelay.leads.api import router as leads_router
from leadrelay.ledger.api import router as money_router
from leadrelay.offers.api import router as offers_router
from leadrelay.postbacks.api import router as postbacks_router
from leadrelay.reporting.api import router as reporting_router

# Answers any operation may give, documented once here rather than on each endpoint:
# (status, when it applies, description). Endpoint-specific ones (403, 409) are declared
# on the endpoints that give them.
COMMON_ERRORS = [
    (400, "body", "The body is not JSON in UTF-8."),
    (401, "security", "No valid API key (`Authorization: Bearer <key>`)."),
    (404, "path", "No such object, or not yours to see."),
    (413, "body", "The body is larger than 2.5 MB."),
    (422, "always", "Invalid input: one error per field path (also text the text rule refuses)."),
    (429, "always", "Too many requests from this address or with this key; see Retry-After."),
]


class Api(NinjaAPI):
    """The API with its common error answers in the OpenAPI document, so clients (and the
    fuzzer in tests/test_api_fuzz.py) know every status an operation can give."""

    def get_openapi_schema(self, **kwargs: Any) -> OpenAPISchema:
        schema = super().get_openapi_schema(**kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(_error_components())
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                _document_errors(operation)
        return schema


def _error_components() -> dict[str, Any]:
    out = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = out.pop("$defs", {})
    return {**definitions, "ErrorOut": out}


def _document_errors(operation: dict[str, Any]) -> None:
    applies = {
        "always": True,
        "body": "requestBody" in operation,
        "security": bool(operation.get("security")),
        "path": any(p.get("in") == "path" for p in operation.get("parameters", [])),
    }
    responses = operation.setdefault("responses", {})
    for status, when, description in COMMON_ERRORS:
        if applies[when] and str(status) not in responses and status not in responses:
            responses[str(status)] = {
                "description": description,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
                },
            }


api = Api(
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
api.add_router("/", money_router)
api.add_router("/", returns_router)
api.add_router("/", ping_router)


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


def _body_error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(
        request,
        {"code": code, "message": message, "errors": [{"code": code, "message": message,
                                                       "field": "body"}]},
        status=status,
    )  # fmt: skip


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # django-ninja raises HttpError(400, "Cannot parse request body…") for unreadable JSON.
    if exc.status_code == 400 and str(exc).startswith("Cannot parse request body"):
        return _body_error(request, 400, "invalid_body", "The body is not JSON in UTF-8.")
    return api.create_response(
        request, {"code": "http_error", "message": str(exc), "errors": []}, status=exc.status_code
    )


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _body_error(request, 413, "body_too_large", "The body is larger than 2.5 MB.")


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
