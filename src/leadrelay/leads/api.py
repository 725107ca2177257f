from __future__ import annotations

import ipaddress
from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import Router
from ninja.responses import Status

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.core.bounds import Id
from leadrelay.core.errors import Invalid, Problem
from leadrelay.core.schemas import ErrorOut
from leadrelay.leads.consent import Consent
from leadrelay.leads.idempotency import idempotent, request_fingerprint
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.schemas import LeadIn, LeadOut
from leadrelay.leads.selectors import lead_get
from leadrelay.leads.services import LeadOrigin, lead_intake

router = Router(tags=["leads"])
lead_post_auth = ApiKeyAuth(OrganizationKind.AFFILIATE, limit="lead_post_key")
any_key_auth = ApiKeyAuth()


def visitor_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise Invalid(
            [Problem("invalid_ip", "Not an IPv4 or IPv6 address.", "visitor_ip")]
        ) from None


def _out(lead: Lead) -> LeadOut:
    return LeadOut(
        id=lead.pk,
        offer_id=lead.offer_id,
        status=lead.status,
        reasons=list(lead.reasons),
        click_id=lead.click_id,
        created_at=lead.created_at.isoformat(),
    )


@router.post(
    "/leads",
    auth=lead_post_auth,
    response={
        201: LeadOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        422: ErrorOut,
        429: ErrorOut,
    },
    summary="Post a lead",
)  # fmt: skip
def lead_post(request: HttpRequest, payload: LeadIn) -> Any:
    """Post a lead for an offer you are approved to run.

    The answer says at once whether the lead was approved, rejected (with reason
    codes), marked duplicate, or held for review. Invalid fields are refused with
    422 and one error per field (`fields.<key>`), and nothing is stored.

    Send an `Idempotency-Key` header to retry safely: the same key with the same
    body answers as the first time (with `Idempotent-Replayed: true`) and makes
    no new lead; the same key with another body answers 409.
    """
    api_key = request_api_key(request)

    def run() -> tuple[int, dict[str, Any]]:
        lead = lead_intake(
            offer_id=payload.offer_id,
            fields=payload.fields,
            source=LeadSource.API,
            affiliate=api_key.organization,
            click_id=payload.click_id,
            ping_id=payload.ping_id,
            consent=Consent(**payload.consent.dict()) if payload.consent else None,
            # The request comes from the affiliate's server: the visitor is who it says.
            origin=LeadOrigin(
                ip=visitor_ip(payload.visitor_ip), user_agent=payload.visitor_user_agent
            ),
        )
        return 201, _out(lead).dict()

    key = request.headers.get("Idempotency-Key")
    if key is None:
        status, body = run()
        return Status(status, body)
    answer = idempotent(
        api_key=api_key,
        key=key,
        fingerprint=request_fingerprint(request.method or "POST", request.path, request.body),
        run=run,
    )
    response = JsonResponse(answer.body, status=answer.status)
    response["Idempotent-Replayed"] = "true" if answer.replayed else "false"
    return response


@router.get("/leads/{lead_id}", auth=any_key_auth, response={200: LeadOut, 404: ErrorOut})
def lead_read(request: HttpRequest, lead_id: Id) -> LeadOut:
    api_key = request_api_key(request)
    return _out(lead_get(organization=api_key.organization, lead_id=lead_id))
