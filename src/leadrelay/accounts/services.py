"""Writes for organizations, users, memberships and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from leadrelay.accounts.models import ApiKey, Membership, Organization, OrganizationKind, Role, User
from leadrelay.core.errors import NotFound

API_KEY_PREFIX = "lr"
# Writing last_used_at on every request would turn each API call into two writes.
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def organization_create(*, name: str, kind: OrganizationKind | str, slug: str = "") -> Organization:
    base = slugify(slug or name)[:60] or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Organization.objects.create(name=name, kind=OrganizationKind(kind), slug=candidate)


def user_create(
    *, email: str, password: str | None, first_name: str = "", last_name: str = ""
) -> User:
    return User.objects.create_user(
        email=email, password=password, first_name=first_name, last_name=last_name
    )


def membership_create(
    *, user: User, organization: Organization, role: Role | str = Role.MANAGER
) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": Role(role)}
    )
    if organization.kind == OrganizationKind.NETWORK:
        # Network staff run the network through the Django admin too; viewers only look.
        user.is_staff = True
        user.is_superuser = membership.role != Role.VIEWER
        user.save(update_fields=["is_staff", "is_superuser"])
    return membership


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # the whole key, shown to the user once and never stored


def _hash_secret(secret: str) -> str:
    # A random 256-bit secret needs no slow hash: SHA-256 can't be brute-forced back.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *, organization: Organization, name: str, created_by: User | None = None
) -> IssuedApiKey:
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name[:100],
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        created_by=created_by,
    )
    return IssuedApiKey(api_key=api_key, secret=secret)


def api_key_revoke(*, organization: Organization, api_key_id: int) -> ApiKey:
    with transaction.atomic():
        api_key = (
            ApiKey.objects.select_for_update()
            .filter(organization=organization, pk=api_key_id)
            .first()
        )
        if api_key is None:
            raise NotFound("API key")
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The active key this secret belongs to, or None. Constant-time on the hash."""
    parts = secret.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    api_key = (
        ApiKey.objects.select_related("organization")
        .filter(prefix=parts[1], revoked_at__isnull=True, organization__is_active=True)
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _hash_secret(secret)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key
