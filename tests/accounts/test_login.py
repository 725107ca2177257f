from django.test import Client

from leadrelay.accounts.models import OrganizationKind
from tests.factories import OrganizationFactory, UserFactory, member


def test_login_and_logout(db) -> None:
    org = OrganizationFactory(kind=OrganizationKind.ADVERTISER)
    user = member(org)
    client = Client()
    response = client.post("/login/", {"username": user.email, "password": "correct horse battery"})
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    assert client.get("/portal/").status_code == 200
    client.post("/logout/")
    assert client.get("/portal/").status_code == 302


def test_a_wrong_password_does_not_log_in(db) -> None:
    user = member(OrganizationFactory())
    client = Client()
    response = client.post("/login/", {"username": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert client.get("/portal/").status_code == 302


def test_a_user_without_an_organization_is_refused(db) -> None:
    client = Client()
    client.force_login(UserFactory())
    assert client.get("/portal/").status_code == 403


def test_network_members_are_staff_and_reach_the_admin(network) -> None:
    user = member(network)
    assert user.is_staff
    client = Client()
    client.force_login(user)
    assert client.get("/admin/").status_code == 200


def test_advertisers_do_not_reach_the_admin(advertiser) -> None:
    client = Client()
    client.force_login(member(advertiser))
    assert client.get("/admin/").status_code == 302


def test_network_admin_rights_follow_the_role(network) -> None:
    from leadrelay.accounts.models import Role
    from leadrelay.accounts.services import membership_create

    user = member(network, role=Role.MANAGER)
    assert (user.is_staff, user.is_superuser) == (True, True)
    membership_create(user=user, organization=network, role=Role.VIEWER)
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, False)
