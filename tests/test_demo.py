import json

from django.core.management import call_command
from django.test import Client

from leadrelay.accounts.models import Organization
from leadrelay.accounts.services import api_key_authenticate
from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.selectors import trial_balance
from leadrelay.offers.models import Offer
from leadrelay.reporting.rollups import rollup_problems


def test_demo_data_builds_a_believable_network_and_its_credentials(db, tmp_path, capsys):
    out = tmp_path / "demo-credentials.json"
    call_command("demo-data", "--days", "4", "--credentials-out", str(out))
    printed = capsys.readouterr().out
    creds = json.loads(out.read_text())

    kinds = {
        k: Organization.objects.filter(kind=k).count()
        for k in ("network", "advertiser", "affiliate")
    }
    assert kinds == {"network": 1, "advertiser": 3, "affiliate": 12}
    assert Offer.objects.count() == 8
    assert set(Offer.objects.values_list("vertical", flat=True)) == {
        "insurance",
        "solar",
        "loans",
        "education",
    }
    statuses = set(Lead.objects.values_list("status", flat=True))
    assert {LeadStatus.APPROVED, LeadStatus.REJECTED, LeadStatus.DUPLICATE} <= statuses
    assert trial_balance().ok
    assert rollup_problems() == []  # the dashboards' rollups match the demo's rows

    # One login per role is printed; every login is in the file and works.
    for role in ("network", "advertiser", "affiliate"):
        assert f"  {role}" in printed
    assert len(creds["logins"]) == 16
    for login in creds["logins"][:4]:
        assert Client().login(username=login["email"], password=login["password"])
    assert str(out) in printed

    affiliate = creds["affiliates"][0]
    assert (
        api_key_authenticate(secret=affiliate["api_key"]).organization.name
        == affiliate["organization"]
    )
    assert affiliate["links"] and affiliate["links"][0]["url"].startswith(creds["base_url"])
    offer = creds["offers"][0]
    assert {f["key"] for f in offer["fields"]} >= {"email", "phone", "first_name"}

    # The file's link and key work together: click, then post a lead with the click id.
    client = Client()
    response = client.get("/c/" + affiliate["links"][0]["url"].rsplit("/", 1)[1])
    assert response.status_code == 302


def test_demo_data_twice_keeps_the_data_and_renews_credentials(db, tmp_path):
    out = tmp_path / "c.json"
    call_command("demo-data", "--days", "1", "--credentials-out", str(out))
    first = json.loads(out.read_text())
    leads = Lead.objects.count()
    call_command("demo-data", "--days", "1", "--credentials-out", str(out))
    second = json.loads(out.read_text())
    assert Lead.objects.count() == leads
    assert Offer.objects.count() == 8
    assert first["logins"][0]["password"] != second["logins"][0]["password"]
    assert api_key_authenticate(secret=first["affiliates"][0]["api_key"]) is None
    assert api_key_authenticate(secret=second["affiliates"][0]["api_key"]) is not None
