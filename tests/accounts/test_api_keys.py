from django.test import Client

from leadrelay.accounts.models import ApiKey
from leadrelay.accounts.services import api_key_authenticate, api_key_create, api_key_revoke
from tests.conftest import logged_in


def test_a_key_is_shown_once_and_stored_hashed(affiliate) -> None:
    issued = api_key_create(organization=affiliate, name="main")
    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert issued.secret.startswith(f"lr_{stored.prefix}_")
    assert issued.secret not in stored.secret_hash
    assert len(stored.secret_hash) == 64
    assert api_key_authenticate(secret=issued.secret) == stored


def test_a_wrong_or_malformed_key_authenticates_nobody(affiliate) -> None:
    issued = api_key_create(organization=affiliate, name="main")
    assert api_key_authenticate(secret=issued.secret + "x") is None
    assert api_key_authenticate(secret=issued.secret[:-1]) is None
    assert api_key_authenticate(secret="lr_nope") is None
    assert api_key_authenticate(secret="") is None


def test_a_revoked_key_stops_working(affiliate) -> None:
    issued = api_key_create(organization=affiliate, name="main")
    api_key_revoke(organization=affiliate, api_key_id=issued.api_key.pk)
    assert api_key_authenticate(secret=issued.secret) is None
    response = Client().get("/api/v1/offers", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_an_organization_cannot_revoke_another_ones_key(affiliate, other_affiliate) -> None:
    issued = api_key_create(organization=affiliate, name="main")
    client = logged_in(other_affiliate)
    response = client.post("/portal/api-keys/", {"revoke": issued.api_key.pk})
    assert response.status_code == 404
    assert api_key_authenticate(secret=issued.secret) is not None


def test_the_portal_shows_a_new_key_once(affiliate) -> None:
    client = logged_in(affiliate)
    response = client.post("/portal/api-keys/", {"name": "server"})
    assert response.status_code == 200
    secret = response.context["new_secret"]
    assert secret.startswith("lr_")
    assert api_key_authenticate(secret=secret).organization == affiliate
    again = client.get("/portal/api-keys/")
    assert secret not in again.content.decode()


def test_calls_without_a_key_answer_401() -> None:
    response = Client().post("/api/v1/leads", {}, content_type="application/json")
    assert response.status_code == 401
