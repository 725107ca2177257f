"""Bearer API-key authentication for the JSON API, and each key's own rate limit.

The key's limit is counted right after the key is known and before the body is
read; the address's limit was counted before this, by
core/ratelimit.py's middleware.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from leadrelay.accounts.models import ApiKey, OrganizationKind
from leadrelay.accounts.services import api_key_authenticate
from leadrelay.core.ratelimit import rate_limit_check


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer lr_…`; optionally limited to organization kinds. `limit`
    names the rate limit (settings.LEADRELAY_RATE_LIMITS) the key is counted under."""

    def __init__(self, *kinds: OrganizationKind, limit: str = "api_key") -> None:
        super().__init__()
        self.kinds = set(kinds)
        self.limit = limit

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_key: ApiKey | None = api_key_authenticate(secret=token)
        if api_key is None:
            return None
        if self.kinds and api_key.organization.kind not in self.kinds:
            return None
        rate_limit_check(name=self.limit, key=api_key.prefix, what="for this API key")
        return api_key


def request_api_key(request: HttpRequest) -> ApiKey:
    """The API key an authenticated API request was made with."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        raise TypeError("this endpoint must be behind ApiKeyAuth")
    return api_key
