"""Who may open a portal page: a logged-in member, acting for one organization."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

from leadrelay.accounts.models import Membership, OrganizationKind, Role, User
from leadrelay.accounts.selectors import acting_membership

View = Callable[..., HttpResponse]


def portal_view(*kinds: OrganizationKind, viewer_may_post: bool = False) -> Callable[[View], View]:
    """Require a membership; with kinds, only members of those organization kinds.

    Members with the viewer role only look: their POSTs are refused unless the
    view says otherwise. Views receive the acting membership as their second argument.
    """

    def decorator(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership: Membership | None = acting_membership(request)
            if membership is None:
                return HttpResponseForbidden("Your account is not a member of any organization.")
            if kinds and membership.organization.kind not in kinds:
                return HttpResponseForbidden("This page is not part of your portal.")
            if (
                request.method not in ("GET", "HEAD")
                and membership.role == Role.VIEWER
                and not viewer_may_post
            ):
                return HttpResponseForbidden("Viewers can look but not change anything.")
            return view(request, membership, *args, **kwargs)

        return wrapper

    return decorator


def portal_user(request: HttpRequest) -> User:
    """The logged-in user of a portal view (portal_view has checked there is one)."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("portal views need a logged-in user")
    return user
