"""Normalization: postal codes per country, regions, disposable emails; invariants by property."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.leads.postal import postal_code_normalize
from leadrelay.leads.signals import email_is_disposable
from leadrelay.leads.validation import lead_fields_clean
from leadrelay.offers.models import OfferField


def _fields(*specs):
    return [OfferField(key=k, type=t, label=k, max_length=200) for k, t in specs]


@pytest.mark.parametrize(
    ("country", "given", "stored"),
    [
        ("US", "94103", "94103"),
        ("US", "94103 1234", "94103-1234"),
        ("CA", "k1a0b1", "K1A 0B1"),
        ("GB", "sw1a1aa", "SW1A 1AA"),
        ("NL", "1234ab", "1234 AB"),
        ("DE", "10115", "10115"),
        ("BR", "01310100", "01310-100"),
        ("IT", "00184", "00184"),
        ("ZA", "8001", "8001"),  # no rule: the generic check
    ],
)
def test_postal_codes_are_written_as_the_country_writes_them(country, given, stored):
    assert postal_code_normalize(given, country) == stored


@pytest.mark.parametrize(
    ("country", "given"),
    [("US", "9410"), ("CA", "12345"), ("DE", "1011"), ("GB", "ABC"), ("NL", "12 AB"), ("ZA", "!")],
)
def test_postal_codes_of_another_shape_are_refused(country, given):
    assert postal_code_normalize(given, country) is None


def test_a_leads_own_country_decides_its_postal_code_and_region():
    schema = _fields(("zip", "postal_code"), ("region", "subdivision"), ("country", "country"))
    cleaned, problems = lead_fields_clean(
        schema=schema, raw={"zip": "k1a 0b1", "region": "on", "country": "CA"}, default_region="US"
    )
    assert problems == []
    assert cleaned == {"zip": "K1A 0B1", "region": "CA-ON", "country": "CA"}
    cleaned, problems = lead_fields_clean(
        schema=schema,
        raw={"zip": "k1a 0b1", "region": "US-CA", "country": "US"},
        default_region="US",
    )
    assert {(p.field, p.code) for p in problems} == {
        ("fields.zip", "invalid_postal_code"),
    }
    _, problems = lead_fields_clean(
        schema=schema, raw={"region": "US-CA", "country": "DE"}, default_region="US"
    )
    assert [(p.field, p.code) for p in problems] == [
        ("fields.region", "subdivision_country_mismatch")
    ]


def test_disposable_emails_are_recognised_with_their_subdomains():
    assert email_is_disposable("x@mailinator.com")
    assert email_is_disposable("x@eu.mailinator.com")
    assert not email_is_disposable("x@gmail.com")
    assert not email_is_disposable("x@example.com")


def test_a_disposable_email_is_a_signal_on_the_lead(offer, affiliate):
    from leadrelay.leads.models import LeadSource
    from leadrelay.leads.services import lead_intake

    lead = lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": "temp@mailinator.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    assert lead.signals == ["disposable_email"]


US_NUMBERS = st.builds(
    lambda area, rest: f"+1{area}{rest:07d}",
    st.sampled_from(["212", "415", "312", "617", "206"]),
    st.integers(min_value=2_000_000, max_value=9_999_999),
)


@given(US_NUMBERS, st.sampled_from(["{}", " {} ", "({}", "{}"]))
def test_phone_normalization_is_idempotent_and_ignores_formatting(number, shape):
    schema = _fields(("phone", "phone"))
    if not phonenumbers.is_valid_number(phonenumbers.parse(number)):
        return
    national = phonenumbers.format_number(
        phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.NATIONAL
    )
    first, problems = lead_fields_clean(
        schema=schema, raw={"phone": shape.format(national)}, default_region="US"
    )
    if problems:
        return  # "(" without its ")" may be refused: never stored wrong
    again, _ = lead_fields_clean(schema=schema, raw={"phone": first["phone"]}, default_region="US")
    assert first["phone"] == again["phone"] == number


@given(
    st.from_regex(r"[a-z][a-z0-9._]{0,15}[a-z0-9]", fullmatch=True),
    st.sampled_from(["Example.COM", "example.org", "MAIL.Example.net"]),
)
def test_email_normalization_is_idempotent(local, domain):
    schema = _fields(("email", "email"))
    first, problems = lead_fields_clean(
        schema=schema, raw={"email": f" {local}@{domain} "}, default_region="US"
    )
    if problems:
        return  # consecutive dots and the like are refused, never stored
    again, _ = lead_fields_clean(schema=schema, raw={"email": first["email"]}, default_region="US")
    assert first == again
    assert first["email"].endswith("@" + domain.lower())


@given(st.text(max_size=300))
def test_text_fields_are_bounded_and_never_crash(text):
    schema = _fields(("t", "text"))
    cleaned, problems = lead_fields_clean(schema=schema, raw={"t": text}, default_region="US")
    assert problems or len(cleaned.get("t", "")) <= 200
