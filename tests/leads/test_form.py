from django.test import Client

from leadrelay.leads.models import Lead
from leadrelay.offers.services import FieldSpec
from leadrelay.tracking.services import tracking_link_create
from tests.factories import approve, form_submit, make_click, make_offer


def test_the_form_renders_the_offer_schema(advertiser):
    offer = make_offer(
        advertiser,
        consent_text="I agree to be called.",
        fields=[
            FieldSpec("email", "email", "Your email", required=True),
            FieldSpec("phone", "phone", "Phone"),
            FieldSpec("plan", "choice", "Plan", choices=("basic", "gold")),
            FieldSpec("terms", "boolean", "I accept the terms", required=True),
            FieldSpec("country", "country", "Country"),
        ],
    )
    page = Client().get(f"/f/{offer.pk}/?click_id=abc").content.decode()
    assert 'type="email"' in page and "Your email *" in page
    assert 'type="tel"' in page
    assert '<option value="gold">gold</option>' in page
    assert 'type="checkbox"' in page
    assert '<option value="DE">Germany</option>' in page
    assert 'name="click_id" value="abc"' in page
    assert "I agree to be called." in page


def test_a_submitted_form_is_a_lead_attributed_by_click(advertiser, affiliate):
    offer = make_offer(advertiser)
    approve(offer, affiliate)
    link = tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "tiktok"})
    click = make_click(link)
    client = Client()
    response = form_submit(
        client,
        offer,
        {"click_id": click.click_id, "first_name": "Bo", "email": "bo@example.com"},
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code == 302
    assert response["Location"] == f"/f/{offer.pk}/thanks"
    assert "Thank you" in client.get(response["Location"]).content.decode()
    lead = Lead.objects.get()
    assert (lead.status, lead.affiliate, lead.sub1, lead.source, lead.ip) == (
        "approved",
        affiliate,
        "tiktok",
        "form",
        "198.51.100.7",
    )


def test_a_form_with_errors_is_shown_again_and_nothing_is_stored(advertiser):
    offer = make_offer(advertiser)
    response = Client().post(f"/f/{offer.pk}/", {"first_name": "Bo", "email": "bo@"})
    assert response.status_code == 422
    page = response.content.decode()
    assert 'value="Bo"' in page
    assert 'id="e_email"' in page
    assert Lead.objects.count() == 0


def test_a_form_with_a_forged_click_id_asks_again_without_it(advertiser):
    offer = make_offer(advertiser)
    response = Client().post(
        f"/f/{offer.pk}/", {"click_id": "forged", "first_name": "Bo", "email": "bo@example.com"}
    )
    assert response.status_code == 422
    assert 'name="click_id" value=""' in response.content.decode()
    assert Lead.objects.count() == 0


def test_forms_of_inactive_offers_are_404(advertiser):
    offer = make_offer(advertiser, status="paused")
    assert Client().get(f"/f/{offer.pk}/").status_code == 404
    assert Client().get("/f/999999/").status_code == 404


def test_a_form_lead_from_an_affiliate_no_longer_approved_is_house_traffic(advertiser, affiliate):
    from leadrelay.offers.models import OfferAccess

    offer = make_offer(advertiser)
    approve(offer, affiliate)
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    click = make_click(link)
    OfferAccess.objects.filter(affiliate=affiliate).update(status="rejected")
    response = form_submit(
        Client(),
        offer,
        {"click_id": click.click_id, "first_name": "Bo", "email": "bo@example.com"},
    )
    assert response.status_code == 302
    lead = Lead.objects.get()
    assert (lead.status, lead.affiliate, lead.link, lead.payout_minor) == (
        "approved",
        None,
        None,
        0,
    )


def test_the_form_can_be_framed_and_posted_without_our_cookies(advertiser):
    offer = make_offer(advertiser)
    page = Client().get(f"/f/{offer.pk}/")
    assert "X-Frame-Options" not in page  # other sites may show it in an iframe
    strict = Client(enforce_csrf_checks=True)
    response = form_submit(strict, offer, {"first_name": "Bo", "email": "bo@example.com"})
    assert response.status_code == 302
    assert Lead.objects.count() == 1


def test_an_offer_can_send_visitors_to_its_own_thank_you_page(advertiser):
    from leadrelay.offers.models import Offer

    offer = make_offer(advertiser)
    Offer.objects.filter(pk=offer.pk).update(thank_you_url="https://thanks.example/done")
    response = form_submit(Client(), offer, {"first_name": "Bo", "email": "bo@example.com"})
    assert response["Location"] == "https://thanks.example/done"


def test_the_embed_script_points_at_the_form(advertiser):
    offer = make_offer(advertiser)
    script = Client().get(f"/f/{offer.pk}/embed.js")
    assert script["Content-Type"].startswith("text/javascript")
    body = script.content.decode()
    assert f'"http://127.0.0.1:8000/f/{offer.pk}/"' in body  # LEADRELAY_PUBLIC_URL's default
    assert 'params.get("cid")' in body and "data-click-id" in body


def test_the_embed_script_uses_the_public_address(settings, advertiser):
    settings.LEADRELAY_PUBLIC_URL = settings.PUBLIC_BASE_URL = "https://leads.example.net"
    offer = make_offer(advertiser)
    body = Client().get(f"/f/{offer.pk}/embed.js").content.decode()
    assert f'"https://leads.example.net/f/{offer.pk}/"' in body


def test_a_form_that_needs_consent_it_cannot_show_says_so(advertiser):
    from leadrelay.offers.models import Offer

    offer = make_offer(advertiser)
    Offer.objects.filter(pk=offer.pk).update(requires_consent=True, consent_text="")
    response = form_submit(Client(), offer, {"first_name": "Bo", "email": "bo@example.com"})
    assert response.status_code == 422
    assert "needs the visitor" in response.content.decode()
