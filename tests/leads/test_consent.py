import pytest
from django.test import Client

from leadrelay.leads.models import ConsentText, Lead
from leadrelay.offers.models import Offer
from tests.conftest import bearer
from tests.factories import form_submit

DISCLOSURE = "I agree to be called about auto insurance, including by automated means."
CERT = "https://cert.trustedform.com/" + "a" * 40
LEADID = "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"


@pytest.fixture
def consent_offer(offer):
    Offer.objects.filter(pk=offer.pk).update(consent_text=DISCLOSURE, requires_consent=True)
    offer.refresh_from_db()
    return offer


def _api(offer, headers, **extra):
    return Client().post(
        "/api/v1/leads",
        {"offer_id": offer.pk, "fields": {"first_name": "A", "email": "c@example.com"}, **extra},
        content_type="application/json",
        **headers,
    )


def test_an_offer_that_requires_consent_refuses_leads_without_it(consent_offer, affiliate_headers):
    response = _api(consent_offer, affiliate_headers)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "code": "consent_required",
            "message": "This offer needs the visitor's consent.",
            "field": "consent",
        }
    ]
    assert Lead.objects.count() == 0


def test_consent_evidence_is_kept_with_the_text_stored_once(consent_offer, affiliate):
    headers = bearer(affiliate)
    consent = {
        "text": DISCLOSURE,
        "page_url": "https://quotes.example/form",
        "given_at": "2026-11-20T10:00:00Z",
        "trustedform_cert_url": CERT,
        "jornaya_leadid": LEADID,
    }
    assert (
        _api(consent_offer, headers, consent=consent, visitor_ip="198.51.100.4").status_code == 201
    )
    second = {**consent, "given_at": None}
    other_fields = {"first_name": "B", "email": "d@example.com"}
    Client().post(
        "/api/v1/leads",
        {"offer_id": consent_offer.pk, "fields": other_fields, "consent": second},
        content_type="application/json",
        **headers,
    )
    assert ConsentText.objects.count() == 1  # one wording, two leads
    lead = Lead.objects.order_by("pk").first()
    assert (lead.consent_text.text, lead.consent_page_url, lead.ip) == (
        DISCLOSURE,
        "https://quotes.example/form",
        "198.51.100.4",
    )
    assert lead.consent_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert (lead.trustedform_cert_url, lead.jornaya_leadid) == (CERT, LEADID)


@pytest.mark.parametrize(
    ("consent", "field"),
    [
        (
            {"text": DISCLOSURE, "trustedform_cert_url": "https://evil.example/x"},
            "consent.trustedform_cert_url",
        ),
        ({"text": DISCLOSURE, "jornaya_leadid": "nope"}, "consent.jornaya_leadid"),
        ({"text": DISCLOSURE, "page_url": "javascript:x"}, "consent.page_url"),
    ],
)
def test_bad_evidence_is_refused(consent_offer, affiliate_headers, consent, field):
    response = _api(consent_offer, affiliate_headers, consent=consent)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert Lead.objects.count() == 0


def test_the_hosted_form_asks_for_consent_and_records_it(consent_offer):
    page = Client().get(f"/f/{consent_offer.pk}/").content.decode()
    assert DISCLOSURE in page and 'name="lr_consent"' in page
    data = {"first_name": "Bo", "email": "bo@example.com"}
    refused = form_submit(Client(), consent_offer, data)
    assert refused.status_code == 422
    assert "needs the visitor" in refused.content.decode()
    assert Lead.objects.count() == 0
    accepted = form_submit(
        Client(), consent_offer, {**data, "lr_consent": "1"}, REMOTE_ADDR="198.51.100.8"
    )
    assert accepted.status_code == 302
    lead = Lead.objects.get()
    assert lead.consent_text.text == DISCLOSURE
    assert lead.consent_page_url.endswith(f"/f/{consent_offer.pk}/")
    assert lead.ip == "198.51.100.8" and lead.consent_at is not None
