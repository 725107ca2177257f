"""Real-browser tests: headless Chromium (Playwright, sync API) against the live server.

Chromium is Debian's /usr/bin/chromium; nothing is downloaded. When it is missing
these tests fail (CI installs it) instead of being skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from leadrelay.accounts.models import Organization
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.offers.models import Offer
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.models import Click
from leadrelay.tracking.services import tracking_link_create
from tests.factories import CHROME_UA, approve, member

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # In these tests the "affiliate's site" is served by Playwright and our server is on
    # loopback; Chromium's local-network protection would stop the embed test's page from
    # loading our script. On the web, the affiliate's page and ours are both public.
    "--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessRespectPreflightResults,"
    "BlockInsecurePrivateNetworkRequests",
]
PASSWORD = "correct horse battery"  # what tests.factories.UserFactory sets
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need it "
            "(apt-get install chromium). They do not download a browser.",
            pytrace=False,
        )
    # Playwright's sync API runs an event loop in this thread, which makes Django
    # refuse ORM calls from the test body unless told it is fine.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture
def new_page(browser: Browser, live_server: Any, transactional_db: Any) -> Iterator[Any]:
    """Open pages in fresh browser contexts (own cookies) with the live server as base URL."""
    contexts = []

    def open_page() -> Page:
        # Headless Chromium says "HeadlessChrome", which the crawler list rightly flags;
        # these pages are about what a person's browser shows, so it says what one would.
        context = browser.new_context(base_url=live_server.url, user_agent=CHROME_UA)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Page:
    return new_page()


def _click_id(page: Page, offer: Offer, affiliate: Organization) -> str:
    """A real click id: GET /c/<code> on the live server, without following the redirect."""
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    response = page.request.get(f"/c/{link.code}", max_redirects=0)
    assert response.status == 302
    location = response.headers["location"]
    assert location.startswith("https://lp.example.com/?cid=")
    click_id = parse_qs(urlsplit(location).query)["cid"][0]
    assert click_buffer.flush() == 1  # the server's buffered click row, written now
    assert Click.objects.filter(click_id=click_id, link=link, affiliate=affiliate).count() == 1
    return click_id


def _log_in(page: Page, organization: Organization) -> None:
    user = member(organization)
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/portal/$"))
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.get_by_test_id("acting-org")).to_have_text(
        f"{organization.name} · {organization.get_kind_display()}"
    )


def test_hosted_form_submission_stores_approved_attributed_lead(
    page: Page, offer: Offer, affiliate: Organization, tmp_path: Path
) -> None:
    # Playwright fills the form in milliseconds, which the fraud check calls too fast
    # for a person; this offer asks for no minimum time.
    Offer.objects.filter(pk=offer.pk).update(min_form_seconds=0)
    click_id = _click_id(page, offer, affiliate)

    page.goto(f"/f/{offer.pk}/?click_id={quote(click_id)}")
    expect(page).to_have_title(offer.name)
    expect(page.locator("h1")).to_have_text(offer.name)
    expect(page.locator("input[name=click_id]")).to_have_value(click_id)
    shot = tmp_path / "hosted-form.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0

    page.get_by_label("First name *").fill("Ada")
    page.get_by_label("Email *").fill("Ada@Example.com")
    page.get_by_label("Phone").fill("(415) 555-2671")
    page.get_by_label("ZIP").fill("94107")
    page.get_by_role("button", name="Send").click()

    expect(page).to_have_url(re.compile(rf"^http://[^/]+/f/{offer.pk}/thanks$"))
    expect(page).to_have_title("Thank you")
    expect(page.locator("h1")).to_have_text("Thank you")
    expect(page.locator(".lead-form p")).to_have_text(
        f"We have your details for {offer.name}. You will hear from us soon."
    )

    leads = list(Lead.objects.filter(offer=offer))
    assert len(leads) == 1
    lead = leads[0]
    assert lead.status == "approved"
    assert lead.source == LeadSource.FORM
    assert lead.affiliate_id == affiliate.pk
    assert lead.click_id == click_id
    assert lead.link is not None and lead.link.affiliate_id == affiliate.pk
    assert lead.email_normalized == "ada@example.com"  # the dedupe key is lower-cased
    assert lead.phone_e164 == "+14155552671"
    assert lead.fields == {
        "first_name": "Ada",
        "email": "Ada@example.com",
        "phone": "+14155552671",
        "zip": "94107",
    }
    assert lead.revenue_minor == 2500
    assert lead.payout_minor == 1800


def test_hosted_form_shows_field_error_and_keeps_values(
    page: Page, offer: Offer, affiliate: Organization
) -> None:
    click_id = _click_id(page, offer, affiliate)
    page.goto(f"/f/{offer.pk}/?click_id={quote(click_id)}")

    page.get_by_label("First name *").fill("Ada")
    page.get_by_label("Email *").fill("ada.example.com")
    page.get_by_label("Phone").fill("(415) 555-2671")
    page.get_by_label("ZIP").fill("94107")
    # The browser checks first: an address without an @ is never sent.
    page.get_by_role("button", name="Send").click()
    assert page.locator("#f_email").evaluate("e => e.validity.typeMismatch") is True
    expect(page).to_have_url(re.compile(rf"/f/{offer.pk}/\?click_id="))

    # One the browser accepts but the server doesn't: the server's message comes back.
    page.get_by_label("Email *").fill("ada@example")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Send").click()
    assert posted.value.status == 422
    page.wait_for_load_state()
    message = "The part after the @-sign is not valid. It should have a period."

    # The message sits in the email field's own box and the input points at it.
    email_box = page.locator(".field", has=page.locator("#f_email"))
    expect(email_box.locator(".error")).to_have_text(message)
    expect(page.locator("#f_email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f_email")).to_have_attribute("aria-describedby", "e_email")
    expect(page.locator("#e_email")).to_have_text(message)
    expect(page.locator(".error")).to_have_count(1)
    expect(page.get_by_role("alert")).to_have_count(0)

    # What the visitor typed is still there, exactly as typed.
    expect(page.get_by_label("First name *")).to_have_value("Ada")
    expect(page.get_by_label("Email *")).to_have_value("ada@example")
    expect(page.get_by_label("Phone")).to_have_value("(415) 555-2671")
    expect(page.get_by_label("ZIP")).to_have_value("94107")
    expect(page.locator("input[name=click_id]")).to_have_value(click_id)

    assert Lead.objects.count() == 0


def test_affiliate_sees_own_numbers_and_leads_only(
    page: Page, offer: Offer, affiliate: Organization, other_affiliate: Organization
) -> None:
    approve(offer, other_affiliate)
    fields = {"first_name": "Mine", "email": "mine@example.com"}
    mine = lead_intake(offer_id=offer.pk, fields=fields, source=LeadSource.API, affiliate=affiliate)
    fields = {"first_name": "Theirs", "email": "theirs@example.com"}
    theirs = lead_intake(
        offer_id=offer.pk, fields=fields, source=LeadSource.API, affiliate=other_affiliate
    )
    assert (mine.status, theirs.status) == ("approved", "approved")

    _log_in(page, affiliate)
    totals = page.get_by_test_id("totals")
    expect(totals.locator("[data-metric=clicks]")).to_have_text("0")
    expect(totals.locator("[data-metric=leads]")).to_have_text("1")
    expect(totals.locator("[data-metric=approved]")).to_have_text("1")
    expect(totals.locator("[data-metric=payout]")).to_have_text("USD 18.00")
    expect(totals.locator("[data-metric=revenue]")).to_have_count(0)
    expect(totals.locator("[data-metric=profit]")).to_have_count(0)

    page.get_by_role("link", name="Leads", exact=True).click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/portal/leads/$"))
    rows = page.get_by_test_id("leads").locator("tr")
    expect(rows).to_have_count(2)  # the header and the affiliate's one lead
    expect(rows.nth(1).locator("td").first).to_have_text(str(mine.pk))
    expect(rows.nth(1)).to_contain_text("mine@example.com")
    expect(rows.nth(1)).to_contain_text("Approved")
    expect(page.locator("main")).not_to_contain_text("theirs@example.com")


def test_advertiser_dashboard_hides_payout_and_profit_network_shows_them(
    new_page: Any, network: Organization, offer: Offer, affiliate: Organization
) -> None:
    fields = {"first_name": "Mine", "email": "mine@example.com"}
    lead = lead_intake(offer_id=offer.pk, fields=fields, source=LeadSource.API, affiliate=affiliate)
    assert lead.status == "approved"

    advertiser_page = new_page()
    _log_in(advertiser_page, offer.advertiser)
    main = advertiser_page.locator("main")
    expect(main.get_by_test_id("totals").locator("[data-metric=leads]")).to_have_text("1")
    expect(main.get_by_test_id("totals").locator("[data-metric=revenue]")).to_have_text("USD 25.00")
    expect(main).to_contain_text("Spend")
    expect(main).not_to_contain_text("Payout")
    expect(main).not_to_contain_text("Profit")
    expect(main).not_to_contain_text("Earnings")

    network_page = new_page()
    _log_in(network_page, network)
    main = network_page.locator("main")
    totals = main.get_by_test_id("totals")
    expect(totals.locator("[data-metric=leads]")).to_have_text("1")
    expect(totals.locator("[data-metric=revenue]")).to_have_text("USD 25.00")
    expect(totals.locator("[data-metric=payout]")).to_have_text("USD 18.00")
    expect(totals.locator("[data-metric=profit]")).to_have_text("USD 7.00")
    expect(main).to_contain_text("Payout")
    expect(main).to_contain_text("Profit")


def test_the_form_embedded_on_an_affiliates_page_carries_the_click_id(
    page: Page, offer: Offer, affiliate: Organization, live_server: Any, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url  # where the embed script sends the iframe
    Offer.objects.filter(pk=offer.pk).update(min_form_seconds=0)
    click_id = _click_id(page, offer, affiliate)
    # The affiliate's own page, on its own site: served here by Playwright, not fetched.
    landing = f"http://affiliate.localhost/quote?cid={quote(click_id)}"
    html = (
        "<!doctype html><title>Quotes</title><h1>Get a quote</h1>"
        f'<script src="{live_server.url}/f/{offer.pk}/embed.js"></script>'
    )
    page.route(
        "http://affiliate.localhost/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=html),
    )
    page.goto(landing)
    form = page.frame_locator("iframe")
    form.get_by_label("First name *").fill("Embed")
    form.get_by_label("Email *").fill("embed@example.com")
    form.get_by_role("button", name="Send").click()
    expect(form.locator("h1")).to_have_text("Thank you")
    lead = Lead.objects.get(offer=offer)
    assert (lead.click_id, lead.affiliate_id, lead.source) == (click_id, affiliate.pk, "form")


def test_an_advertiser_returns_a_lead_and_opens_its_invoice(
    new_page: Any, network: Organization, advertiser: Organization, affiliate: Organization
) -> None:
    from django.utils import timezone

    from leadrelay.ledger.invoices import invoice_issue
    from tests.factories import make_offer

    offer = make_offer(advertiser, name="Auto quotes", return_window_days=7)
    approve(offer, affiliate)
    lead = lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "Ada", "email": "ada@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    page = new_page()
    _log_in(page, advertiser)
    page.goto("/portal/leads/")
    page.get_by_label(f"Reason for lead {lead.pk}").fill("bad_phone")
    page.get_by_test_id(f"take-back-{lead.pk}").click()
    expect(page.get_by_text(f"Lead {lead.pk} returned.")).to_be_visible()
    lead.refresh_from_db()
    assert (lead.status, lead.return_reason) == ("returned", "bad_phone")

    invoice = invoice_issue(
        advertiser=advertiser,
        currency="USD",
        period_start=timezone.now() - timezone.timedelta(days=1),
        period_end=timezone.now(),
        staff=member(network),
    )
    page.goto("/portal/invoices/")
    page.get_by_role("link", name=invoice.number).click()
    expect(page.get_by_test_id("invoice-lines")).to_contain_text("Auto quotes: Approved leads")
    expect(page.get_by_test_id("invoice-total")).to_have_text("USD 0.00")
    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")


# Buyer campaigns: set up in the portal, their secrets rotated, their returns reviewed.

BUYER_URL = "https://buyer.example.com/leads"  # public-looking; unresolved offline, allowed


def test_an_advertiser_sets_up_a_buyer_fixing_what_the_form_points_out(
    page: Page, advertiser: Organization, settings: Any
) -> None:
    from leadrelay.distribution.models import Buyer
    from tests.factories import make_offer

    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False  # the URL is checked as in production
    make_offer(advertiser, vertical="insurance")  # its fields are what a field map may name
    _log_in(page, advertiser)
    page.get_by_role("link", name="Buyers", exact=True).click()
    page.get_by_test_id("buyer-new").click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/portal/buyers/new$"))
    expect(page.locator("h1")).to_have_text("New buyer campaign")

    form = page.get_by_test_id("buyer-form")
    form.get_by_label("Name", exact=True).fill("Browser buyer")
    form.get_by_label("Vertical", exact=True).select_option("insurance")
    form.get_by_label("Price", exact=True).fill("30.50")
    form.get_by_label("Url", exact=True).fill("ftp://buyer.example.com/leads")
    bad_map = '{"z": "{email}", "a": "{first_name}",}'  # the trailing comma is no JSON
    form.get_by_label("Field map", exact=True).fill(bad_map)
    form.get_by_label("Headers", exact=True).fill('{"X-Api-Key": "k1"}')
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        form.get_by_role("button", name="Create buyer").click()
    assert posted.value.status == 200
    page.wait_for_load_state()

    expect(page.get_by_test_id("error-field_map")).to_have_text(
        "Not JSON: Expecting property name enclosed in double quotes at line 1, column 38."
    )
    expect(page.get_by_test_id("error-url")).to_have_text(
        "The URL must start with http:// or https://."
    )
    expect(page.locator(".buyer-form .error")).to_have_count(2)
    expect(page.locator("tr.invalid")).to_have_count(2)
    # What was typed is all still there.
    expect(form.get_by_label("Name", exact=True)).to_have_value("Browser buyer")
    expect(form.get_by_label("Vertical", exact=True)).to_have_value("insurance")
    expect(form.get_by_label("Price", exact=True)).to_have_value("30.50")
    expect(form.get_by_label("Url", exact=True)).to_have_value("ftp://buyer.example.com/leads")
    expect(form.get_by_label("Field map", exact=True)).to_have_value(bad_map)
    expect(form.get_by_label("Headers", exact=True)).to_have_value('{"X-Api-Key": "k1"}')
    assert not Buyer.objects.exists()

    form.get_by_label("Url", exact=True).fill(BUYER_URL)
    form.get_by_label("Field map", exact=True).fill(
        '{"z": "{email}", "a": "{first_name}", "source": "leadrelay"}'
    )
    form.get_by_role("button", name="Create buyer").click()

    buyer = Buyer.objects.get()
    expect(page).to_have_url(re.compile(rf"^http://[^/]+/portal/buyers/{buyer.pk}/$"))
    assert (buyer.advertiser_id, buyer.name, buyer.url, buyer.price_minor) == (
        advertiser.pk,
        "Browser buyer",
        BUYER_URL,
        3050,
    )
    assert buyer.field_map == [["z", "{email}"], ["a", "{first_name}"], ["source", "leadrelay"]]
    assert buyer.headers == {"X-Api-Key": "k1"}
    assert len(buyer.signing_secrets) == 1
    secret = buyer.signing_secrets[0]
    expect(page.locator("h1")).to_have_text("Browser buyer")
    expect(page.locator(".messages")).to_have_text("Browser buyer is set up.")
    expect(page.get_by_test_id("new-secret").locator("p.mono")).to_have_text(secret)
    expect(page.get_by_test_id("buyer-settings")).to_contain_text(
        "z = {email}a = {first_name}source = leadrelay"
    )

    page.reload()
    expect(page.locator("h1")).to_have_text("Browser buyer")
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text(secret)

    # Editing lists every problem at once too, and changes nothing until all are fixed.
    page.get_by_test_id("buyer-edit").click()
    expect(form.get_by_label("Url", exact=True)).to_have_value(BUYER_URL)
    form.get_by_label("Url", exact=True).fill("ftp://buyer.example.com/leads")
    form.get_by_label("Headers", exact=True).fill('{"X-Api-Key": "k2"')
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("error-headers")).to_have_text(
        "Not JSON: Expecting ',' delimiter at line 1, column 19."
    )
    expect(page.get_by_test_id("error-url")).to_have_text(
        "The URL must start with http:// or https://."
    )
    expect(page.locator(".buyer-form .error")).to_have_count(2)
    buyer.refresh_from_db()
    assert (buyer.url, buyer.headers) == (BUYER_URL, {"X-Api-Key": "k1"})


def test_an_advertiser_rotates_a_buyers_signing_secret(
    new_page: Any, advertiser: Organization
) -> None:
    from leadrelay.distribution.buyers import (
        buyer_create,
        buyer_secret_fingerprint,
        buyer_secret_new,
    )
    from leadrelay.distribution.models import Buyer

    old = buyer_secret_new()
    buyer = buyer_create(
        advertiser=advertiser,
        name="Rotating buyer",
        vertical="insurance",
        price_minor=3000,
        url=BUYER_URL,
        field_map={"mail": "{email}"},
        signing_secrets=[old],
    )
    page = new_page()
    _log_in(page, advertiser)
    page.goto(f"/portal/buyers/{buyer.pk}/")
    secrets = page.get_by_test_id("secrets").locator("tr")
    expect(secrets).to_have_count(2)  # the header and the one secret
    expect(secrets.nth(1)).to_contain_text(buyer_secret_fingerprint(old))
    expect(secrets.nth(1).get_by_role("button", name="Remove")).to_have_count(0)

    page.get_by_role("button", name="Add a new secret").click()
    expect(page.locator(".messages")).to_have_text(
        "A new secret signs from now on, next to the old ones."
    )
    new = Buyer.objects.get(pk=buyer.pk).signing_secrets[0]
    assert Buyer.objects.get(pk=buyer.pk).signing_secrets == [new, old]
    expect(page.get_by_test_id("new-secret").locator("p.mono")).to_have_text(new)
    expect(secrets).to_have_count(3)
    expect(secrets.nth(1)).to_contain_text(buyer_secret_fingerprint(new))
    expect(secrets.nth(1)).to_contain_text("newest")
    expect(secrets.nth(2)).to_contain_text(buyer_secret_fingerprint(old))
    expect(page.get_by_test_id("secrets")).not_to_contain_text(old)  # only its start

    # A second tab, left open on the two secrets, to try removing the last one later.
    stale = page.context.new_page()
    stale.goto(f"/portal/buyers/{buyer.pk}/")
    expect(stale.get_by_test_id("secrets").locator("tr")).to_have_count(3)

    secrets.nth(2).get_by_role("button", name="Remove").click()
    expect(page.locator(".messages")).to_have_text("The secret signs no more.")
    expect(secrets).to_have_count(2)
    expect(secrets.nth(1)).to_contain_text(buyer_secret_fingerprint(new))
    expect(page.get_by_test_id("secrets").get_by_role("button", name="Remove")).to_have_count(0)
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    assert Buyer.objects.get(pk=buyer.pk).signing_secrets == [new]

    stale_rows = stale.get_by_test_id("secrets").locator("tr")
    stale_rows.filter(has_text=buyer_secret_fingerprint(new)).get_by_role(
        "button", name="Remove"
    ).click()
    expect(stale.locator(".messages")).to_have_text(
        "Refused (last_secret): This is the only secret: add a new one first."
    )
    expect(stale_rows).to_have_count(2)
    expect(stale_rows.nth(1)).to_contain_text(buyer_secret_fingerprint(new))
    assert Buyer.objects.get(pk=buyer.pk).signing_secrets == [new]


def test_network_staff_accept_a_buyer_return_in_place(
    page: Page,
    network: Organization,
    advertiser: Organization,
    affiliate: Organization,
    settings: Any,
) -> None:
    from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
    from leadrelay.distribution.models import BuyerReturn, Delivery, OfferRouting
    from leadrelay.distribution.returns import buyer_return_request
    from leadrelay.ledger.checks import ledger_problems
    from leadrelay.ledger.models import Transaction
    from tests.distribution.conftest import make_buyer, new_lead
    from tests.factories import make_offer
    from tests.localhttp import LocalServer

    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True  # the buyer's server is on 127.0.0.1
    offer = make_offer(advertiser, vertical="insurance")
    approve(offer, affiliate)
    OfferRouting.objects.create(offer=offer, mode="priority")
    server = LocalServer().start()
    try:
        # No automatic acceptance: every return of this buyer waits for the network.
        make_buyer(advertiser, server.url, name="Reviewed buyer", auto_accept_returns_bp=0)
        lead = new_lead(offer, affiliate)
        (delivery,) = lead_distribute(lead_id=lead.pk)
        assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    finally:
        server.stop()
    pending = buyer_return_request(lead_id=lead.pk, by=advertiser, reason="bad_phone")
    assert pending.status == "pending"

    staff = member(network)
    page.goto("/login/")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("acting-org")).to_have_text("The Network · Network")
    page.goto("/portal/buyer-returns/")
    row = page.get_by_test_id(f"return-{pending.pk}")
    expect(row).to_contain_text("Reviewed buyer")
    expect(row).to_contain_text("Acme Insurance")
    expect(row).to_contain_text("bad_phone")
    expect(row.locator(".badge")).to_have_text("Waiting for review")

    # A full page load would forget this; an htmx swap of the row keeps it.
    page.evaluate("window.stillThisPage = true")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        row.get_by_role("button", name="Accept").click()
    assert posted.value.status == 200
    assert posted.value.request.header_value("hx-request") == "true"
    expect(row.locator(".badge")).to_have_text("Accepted")
    expect(row).to_contain_text(f"by {staff.email}")
    expect(row.get_by_role("button")).to_have_count(0)
    assert page.evaluate("window.stillThisPage") is True
    expect(page.locator(".messages")).to_have_count(0)
    expect(page.get_by_test_id("buyer-returns").locator("tr")).to_have_count(2)

    pending.refresh_from_db()
    assert (pending.status, pending.decided_by_id) == ("accepted", staff.pk)
    assert Delivery.objects.get(pk=delivery.pk).status == "returned"
    assert BuyerReturn.objects.count() == 1
    # The sale is reversed by one transaction, made by the staff member who accepted.
    sale = Transaction.objects.get(external_id=f"sale:{lead.pk}:{delivery.buyer_id}")
    reversal = Transaction.objects.get(reverses=sale)
    assert (reversal.kind, reversal.created_by_id) == ("reversal", staff.pk)
    assert sorted(reversal.entries.values_list("amount_minor", flat=True)) == sorted(
        -amount for amount in sale.entries.values_list("amount_minor", flat=True)
    )
    assert ledger_problems() == []


def test_a_user_regroups_a_report_sees_its_chart_and_downloads_the_csv(
    page: Page, network: Organization, offer: Offer, affiliate: Organization
) -> None:
    import csv
    import io

    for n in range(2):
        lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "R", "email": f"report{n}@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
    _log_in(page, network)
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page).to_have_url(re.compile(r"^http://[^/]+/portal/reports/$"))
    expect(page.locator("h1")).to_have_text("Reports")
    expect(page.locator("svg[data-chart=line] > title")).to_have_text("Leads by day")

    form = page.get_by_test_id("report-form")
    form.get_by_label("Day").uncheck()
    form.get_by_label("Offer", exact=True).check()
    form.get_by_label("Breakdown").select_option("country")
    form.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"group_by=offer&group_by=country"))

    charts = page.get_by_test_id("report-charts")
    expect(charts.locator("svg")).to_have_count(2)
    bars = charts.locator("svg[data-chart=bars]")
    expect(bars.locator("> title")).to_have_text("Leads by offer (top ten)")
    expect(bars.locator("rect")).to_have_count(1)
    expect(bars).to_contain_text(offer.name)
    table = page.get_by_test_id("report-table")
    expect(table.locator("thead th").nth(0)).to_have_text("Offer")
    expect(table.locator("thead th").nth(1)).to_have_text("Country")
    body_rows = table.locator("tbody tr")
    expect(body_rows).to_have_count(1)
    expect(body_rows.nth(0).locator("td").nth(0)).to_have_text(offer.name)
    expect(body_rows.nth(0).locator("td").nth(1)).to_have_text("(none)")
    expect(page.get_by_test_id("report-total").locator("td").nth(2)).to_have_text("2")

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    assert re.fullmatch(
        r"leadrelay-report-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d-offer-country\.csv",
        download.value.suggested_filename,
    )
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][:5] == ["Offer", "Country", "Currency", "Clicks", "Unique clicks"]
    assert rows[1][:2] == [offer.name, "(none)"]
    assert rows[1][5:7] == ["2", "2"]  # leads, approved
    assert rows[-2][0] == "Total"
