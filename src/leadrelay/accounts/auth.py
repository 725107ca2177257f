"""Bearer API-key authentication for the JSON API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from leadrelay.accounts.models import ApiKey, OrganizationKind
from leadrelay.accounts.services import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer lr_…`; optionally limited to organization kinds."""

    def __init__(self, *kinds: OrganizationKind) -> None:
        super().__init__()
        self.kinds = set(kinds)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_key: ApiKey | None = api_key_authenticate(secret=token)
        if api_key is None:
            return None
        if self.kinds and api_key.organization.kind not in self.kinds:
            return None
        return api_key


def request_api_key(request: HttpRequest) -> ApiKey:
    """The API key an authenticated API request was made with."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        raise TypeError("this endpoint must be behind ApiKeyAuth")
    return api_key
