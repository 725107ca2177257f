"""Reads about who is acting."""

from __future__ import annotations

from django.http import HttpRequest

from leadrelay.accounts.models import ApiKey, Membership, Organization, OrganizationKind, User
from leadrelay.core.errors import Invalid, NotFound, Problem

SESSION_ORG_KEY = "leadrelay_org_id"


def memberships_for_user(*, user: User) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user, organization__is_active=True)
        .select_related("organization")
        .order_by("organization__kind", "organization__name")
    )


def acting_membership(request: HttpRequest) -> Membership | None:
    """The membership the user acts through: the one chosen in the session, else the first."""
    user = request.user
    if not user.is_authenticated:
        return None
    cached = getattr(request, "_leadrelay_membership", None)
    if cached is not None:
        return cached
    memberships = memberships_for_user(user=user)
    chosen_id = request.session.get(SESSION_ORG_KEY)
    membership = next((m for m in memberships if m.organization_id == chosen_id), None)
    if membership is None and memberships:
        membership = memberships[0]
    request._leadrelay_membership = membership  # type: ignore[attr-defined]
    return membership


def api_keys_for_organization(*, organization: Organization) -> list[ApiKey]:
    return list(ApiKey.objects.filter(organization=organization).order_by("-created_at"))


def advertiser_acted_for(*, organization: Organization, advertiser_id: int | None) -> Organization:
    """Whom an advertiser's or the network's request sets something up for: an advertiser
    acts for itself; the network names the advertiser (Invalid without one, NotFound for
    an id that is no advertiser)."""
    if organization.kind == OrganizationKind.ADVERTISER:
        return organization
    if advertiser_id is None:
        raise Invalid([Problem("required", "Name the advertiser.", "advertiser_id")])
    found = Organization.objects.filter(pk=advertiser_id, kind=OrganizationKind.ADVERTISER).first()
    if found is None:
        raise NotFound("Advertiser")
    return found
