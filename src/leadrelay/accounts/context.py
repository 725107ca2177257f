from typing import Any

from django.http import HttpRequest

from leadrelay.accounts.selectors import acting_membership


def acting_organization(request: HttpRequest) -> dict[str, Any]:
    membership = acting_membership(request)
    return {
        "membership": membership,
        "organization": membership.organization if membership else None,
    }
