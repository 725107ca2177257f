"""The buyer pages: an advertiser sees why its buyer is paused, re-sends, resumes it; sets a
buyer up and edits it, its caps and its secrets; only its own."""

from leadrelay.distribution.buyers import buyer_secret_fingerprint
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import Buyer, Delivery
from tests.conftest import logged_in
from tests.distribution.conftest import make_buyer, new_lead


def test_an_advertiser_sees_why_its_buyer_is_paused_resends_and_resumes(
    routed, affiliate, other_advertiser, advertiser, network, buyer_server
):
    buyer = make_buyer(
        other_advertiser, buyer_server.url, name="Auto buyer", pause_after_failures=1
    )
    buyer_server.answer(404, b"gone")
    (delivery,) = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    delivery_attempt(delivery_id=delivery.pk)
    client = logged_in(other_advertiser)
    page = client.get("/portal/buyers/").content.decode()
    assert "Auto buyer" in page
    assert "Paused after 1 failed deliveries in a row; last: HTTP 404" in page
    detail = client.get(f"/portal/buyers/{buyer.pk}/").content.decode()
    assert "404 failed" in detail and "Send again" in detail

    client.post(f"/portal/buyers/{buyer.pk}/", {"resume": "1"})
    buyer.refresh_from_db()
    assert (buyer.status, buyer.paused_reason, buyer.consecutive_failures) == ("active", "", 0)
    client.post(f"/portal/buyers/{buyer.pk}/", {"resend": delivery.pk})
    assert Delivery.objects.get(pk=delivery.pk).status == "pending"
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"

    # Another advertiser neither sees nor touches it; the network sees every buyer.
    assert "Auto buyer" not in logged_in(advertiser).get("/portal/buyers/").content.decode()
    assert logged_in(advertiser).get(f"/portal/buyers/{buyer.pk}/").status_code == 404
    assert "Auto buyer" in logged_in(network).get("/portal/buyers/").content.decode()
    assert logged_in(affiliate).get("/portal/buyers/").status_code == 403
    assert Buyer.objects.get(pk=buyer.pk).status == "active"


def test_the_admin_shows_distribution(routed, affiliate, other_advertiser, network, buyer_server):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    client = logged_in(network)
    for path in (
        "/admin/distribution/offerrouting/",
        f"/admin/distribution/offerrouting/{routed.routing.pk}/change/",
        "/admin/distribution/buyer/",
        f"/admin/distribution/buyer/{buyer.pk}/change/",
        "/admin/distribution/delivery/",
        "/admin/distribution/routingdecision/",
        "/admin/distribution/pingbid/",
        "/admin/distribution/buyerreturn/",
        "/admin/ledger/payoutrun/",
        "/admin/ledger/invoice/",
        "/admin/ledger/payoutthreshold/",
    ):
        assert client.get(path).status_code == 200, path


FORM = {
    "name": "Page buyer",
    "vertical": "insurance",
    "price": "30.50",
    "currency": "USD",
    "priority": "10",
    "weight": "1",
    "exclusive": "on",
    "filters": "",
    "schedule": '{"mon": [["09:00", "17:00"]]}',
    "timezone": "Europe/Berlin",
    "credit_limit": "",
    "method": "post_json",
    "url": "https://buyer.example.com/in",
    "email_to": "",
    "email_subject": "",
    "field_map": '{"z": "{email}", "a": "{first_name}"}',
    "headers": '{"X-Api-Key": "k1"}',
    "accept_json_path": "",
    "accept_value": "",
    "accept_regex": "",
    "lead_id_json_path": "",
    "price_json_path": "",
    "ping_url": "",
    "ping_field_map": "",
    "bid_json_path": "",
    "ping_id_json_path": "",
    "ping_timeout_ms": "1000",
    "pause_after_failures": "20",
    "return_window_days": "7",
    "auto_accept_returns_bp": "0",
}


def test_an_advertiser_creates_and_edits_a_buyer_in_the_portal(routed, other_advertiser):
    client = logged_in(other_advertiser)
    form = client.get("/portal/buyers/new")
    assert form.status_code == 200 and 'name="field_map"' in form.content.decode()
    assert 'name="advertiser"' not in form.content.decode()
    created = client.post("/portal/buyers/new", {**FORM, "offers": [routed.pk]})
    assert created.status_code == 302
    buyer = Buyer.objects.get(name="Page buyer")
    assert (buyer.advertiser, buyer.price_minor, buyer.timezone) == (
        other_advertiser,
        3050,
        "Europe/Berlin",
    )
    assert buyer.field_map == [["z", "{email}"], ["a", "{first_name}"]]
    assert buyer.headers == {"X-Api-Key": "k1"} and list(buyer.offers.all()) == [routed]
    # The new signing secret is shown once.
    secret = buyer.signing_secrets[0]
    assert secret in client.get(created.url).content.decode()
    assert secret not in client.get(created.url).content.decode()

    edit = client.get(f"/portal/buyers/{buyer.pk}/edit").content.decode()
    assert "30.50" in edit and "{first_name}" in edit and secret not in edit
    saved = client.post(
        f"/portal/buyers/{buyer.pk}/edit",
        {**FORM, "price": "12", "field_map": '{"mail": "{email}"}', "credit_limit": "100.00"},
    )
    assert saved.status_code == 302
    buyer.refresh_from_db()
    assert (buyer.price_minor, buyer.credit_limit_minor, buyer.field_map) == (
        1200,
        10000,
        [["mail", "{email}"]],
    )
    assert list(buyer.offers.all()) == [] and buyer.signing_secrets == [secret]


def test_bad_json_and_refused_settings_show_on_their_fields_and_save_nothing(
    routed, other_advertiser, settings
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    client = logged_in(other_advertiser)
    page = client.post(
        "/portal/buyers/new",
        {**FORM, "field_map": '{"a": "{email}",}', "headers": "[1, 2]", "schedule": "{"},
    )
    text = page.content.decode()
    assert page.status_code == 200 and not Buyer.objects.exists()
    assert (
        "Not JSON: Expecting property name enclosed in double quotes at line 1, column 17." in text
    )
    assert 'data-testid="error-headers">A JSON object' in text
    assert 'data-testid="error-schedule">Not JSON' in text

    page = client.post(
        "/portal/buyers/new",
        {**FORM, "url": "http://127.0.0.1:9/", "price": "1.234", "timezone": "Nowhere"},
    )
    text = page.content.decode()
    assert 'data-testid="error-price">The amount is more decimals than USD has.' in text
    assert not Buyer.objects.exists()
    page = client.post(
        "/portal/buyers/new",
        {**FORM, "url": "http://127.0.0.1:9/", "timezone": "Nowhere", "field_map": '{"x": "{y}"}'},
    )
    text = page.content.decode()
    assert page.status_code == 200 and not Buyer.objects.exists()
    assert 'data-testid="error-url"' in text and 'data-testid="error-timezone"' in text
    assert "field_map.x: Unknown field {y}." in text

    buyer = make_buyer(other_advertiser, "https://buyer.example.com/")
    page = client.post(f"/portal/buyers/{buyer.pk}/edit", {**FORM, "url": "http://10.0.0.1/"})
    assert 'data-testid="error-url"' in page.content.decode()
    buyer.refresh_from_db()
    assert (buyer.url, buyer.name) == ("https://buyer.example.com/", "Buyer")


def test_a_local_name_or_a_nat64_address_shows_on_the_url_field_and_saves_nothing(
    routed, other_advertiser, settings
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    client = logged_in(other_advertiser)
    for url in ("http://buyer.local/in", "http://[2002:a9fe:a9fe::]/in"):
        page = client.post("/portal/buyers/new", {**FORM, "url": url})
        text = page.content.decode()
        assert page.status_code == 200 and 'data-testid="error-url"' in text, url
        assert "The host must be a public name or address" in text
    assert not Buyer.objects.exists()


def test_buyer_pages_are_scoped(routed, other_advertiser, advertiser, affiliate, network):
    buyer = make_buyer(other_advertiser, "https://buyer.example.com/", name="Theirs")
    stranger = logged_in(advertiser)
    for path in (f"/portal/buyers/{buyer.pk}/edit", f"/portal/buyers/{buyer.pk}/"):
        assert stranger.get(path).status_code == 404
    for path, data in (
        (f"/portal/buyers/{buyer.pk}/edit", {**FORM, "name": "Stolen"}),
        (f"/portal/buyers/{buyer.pk}/caps", {"period": "day", "max_leads": "1"}),
        (f"/portal/buyers/{buyer.pk}/secrets", {"add": "1"}),
        (f"/portal/buyers/{buyer.pk}/", {"pause": "1"}),
    ):
        assert stranger.post(path, data).status_code == 404, path
    pages = logged_in(affiliate)
    for path in ("/portal/buyers/new", f"/portal/buyers/{buyer.pk}/edit", "/portal/buyer-returns/"):
        assert pages.get(path).status_code == 403
    assert pages.post("/portal/buyers/new", FORM).status_code == 403
    buyer.refresh_from_db()
    assert (buyer.name, buyer.status, buyer.signing_secrets) == ("Theirs", "active", [])
    assert not buyer.caps.exists()

    # Network staff set a buyer up for any advertiser, and edit any.
    staff = logged_in(network)
    assert 'name="advertiser"' in staff.get("/portal/buyers/new").content.decode()
    created = staff.post("/portal/buyers/new", {**FORM, "advertiser": other_advertiser.pk})
    assert created.status_code == 302
    assert Buyer.objects.get(name="Page buyer").advertiser == other_advertiser
    edited = staff.post(f"/portal/buyers/{buyer.pk}/edit", {**FORM, "name": "Renamed"})
    assert edited.status_code == 302
    assert Buyer.objects.get(pk=buyer.pk).name == "Renamed"


def test_caps_pause_and_secret_rotation_in_the_portal(other_advertiser):
    client = logged_in(other_advertiser)
    client.post("/portal/buyers/new", FORM)
    buyer = Buyer.objects.get()
    old = buyer.signing_secrets[0]
    page = f"/portal/buyers/{buyer.pk}/"

    client.post(f"{page}caps", {"period": "day", "max_leads": "50", "max_spend": "1500.00"})
    client.post(f"{page}caps", {"period": "month", "max_leads": "900"})
    assert sorted(buyer.caps.values_list("period", "max_leads", "max_spend_minor")) == [
        ("day", 50, 150000),
        ("month", 900, None),
    ]
    refused = client.post(f"{page}caps", {"period": "week"}, follow=True)
    assert "Cap leads, spend or both." in refused.content.decode()
    client.post(f"{page}caps", {"remove": "day"})
    assert list(buyer.caps.values_list("period", flat=True)) == ["month"]

    client.post(page, {"pause": "1"})
    assert Buyer.objects.get(pk=buyer.pk).status == "paused"
    assert "By its owner." in client.get(page).content.decode()
    client.post(page, {"resume": "1"})
    assert Buyer.objects.get(pk=buyer.pk).status == "active"

    client.post(f"{page}secrets", {"add": "1"})
    secrets = Buyer.objects.get(pk=buyer.pk).signing_secrets
    assert len(secrets) == 2 and secrets[1] == old
    shown = client.get(page).content.decode()
    assert secrets[0] in shown and old not in shown
    client.post(f"{page}secrets", {"remove": buyer_secret_fingerprint(old)})
    assert Buyer.objects.get(pk=buyer.pk).signing_secrets == [secrets[0]]
    last = client.post(
        f"{page}secrets", {"remove": buyer_secret_fingerprint(secrets[0])}, follow=True
    )
    assert "This is the only secret: add a new one first." in last.content.decode()
    assert Buyer.objects.get(pk=buyer.pk).signing_secrets == [secrets[0]]


def test_a_nul_escaped_inside_typed_json_is_refused_on_its_field(routed, other_advertiser):
    """`\\u0000` typed as six characters passes the request's text rule; decoded it is NUL,
    which PostgreSQL can't store in jsonb."""
    client = logged_in(other_advertiser)
    page = client.post(
        "/portal/buyers/new",
        {**FORM, "offers": [routed.pk], "headers": '{"X-Key": "a\\u0000b"}'},
    )
    text = page.content.decode()
    assert not Buyer.objects.exists()
    assert 'data-testid="error-headers">X-Key: Contains U+0000' in text
