"""Configurable duplicates (fields, any/all, window, scope) and suppression lists."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from leadrelay.accounts.models import OrganizationKind
from leadrelay.leads.dedupe import suppression_list_upload
from leadrelay.leads.models import Lead, LeadKey, LeadSource, LeadStatus, SuppressionEntry
from leadrelay.leads.services import lead_intake
from leadrelay.offers.models import Offer
from leadrelay.offers.services import FieldSpec
from tests.concurrency import run_together
from tests.conftest import logged_in
from tests.factories import OrganizationFactory, approve, make_offer


def _post(offer, affiliate, **fields):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", **fields},
        source=LeadSource.API,
        affiliate=affiliate,
    )


def test_keys_are_stored_hashed(offer, affiliate):
    lead = _post(offer, affiliate, email="Ana@Example.com", phone="+14155552671")
    keys = list(LeadKey.objects.filter(lead=lead).values_list("name", "digest"))
    assert sorted(name for name, _ in keys) == ["email", "phone"]
    assert all(len(d) == 64 and "example" not in d for _, d in keys)


def test_all_fields_must_match_when_the_offer_says_so(advertiser, affiliate):
    offer = make_offer(advertiser)
    Offer.objects.filter(pk=offer.pk).update(dedupe_fields=["email", "zip"], dedupe_match="all")
    approve(offer, affiliate)
    first = _post(offer, affiliate, email="a@example.com", zip="94103")
    same_email_other_zip = _post(offer, affiliate, email="a@example.com", zip="10001")
    same_both = _post(offer, affiliate, email="A@example.com", zip="94103")
    no_zip = _post(offer, affiliate, email="a@example.com")
    assert [first.status, same_email_other_zip.status, same_both.status, no_zip.status] == [
        "approved",
        "approved",
        "duplicate",
        "approved",  # a lead without every key can't be all the same
    ]


def test_the_window_is_the_offers(offer, affiliate):
    Offer.objects.filter(pk=offer.pk).update(dedupe_window_days=2)
    start = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        _post(offer, affiliate, email="w@example.com")
    with time_machine.travel(start + dt.timedelta(days=1, hours=23), tick=False):
        assert _post(offer, affiliate, email="w@example.com").status == "duplicate"
    with time_machine.travel(start + dt.timedelta(days=2, minutes=1), tick=False):
        assert _post(offer, affiliate, email="w@example.com").status == "approved"


def test_advertiser_scope_spans_its_offers_only(advertiser, other_advertiser, affiliate):
    one, two = make_offer(advertiser), make_offer(advertiser)
    theirs = make_offer(other_advertiser)
    Offer.objects.filter(pk__in=[one.pk, two.pk]).update(dedupe_scope="advertiser")
    for offer in (one, two, theirs):
        approve(offer, affiliate)
    assert _post(one, affiliate, email="s@example.com").status == "approved"
    assert _post(two, affiliate, email="s@example.com").status == "duplicate"
    assert _post(theirs, affiliate, email="s@example.com").status == "approved"


def test_network_scope_spans_everything(network, advertiser, other_advertiser, affiliate):
    one, theirs = make_offer(advertiser), make_offer(other_advertiser)
    Offer.objects.filter(pk=theirs.pk).update(dedupe_scope="network")
    approve(one, affiliate)
    approve(theirs, affiliate)
    _post(one, affiliate, email="n1@example.com", phone="+14155552671")
    second = _post(theirs, affiliate, email="n2@example.com", phone="(415) 555-2671")
    assert second.status == "duplicate"


def test_suppressed_people_are_rejected(advertiser, offer, affiliate):
    result = suppression_list_upload(
        advertiser=advertiser,
        lines=["email,phone", "Known@Example.com", "(415) 555-2671; not-a-thing", ""],
    )
    assert (result.added, result.already_listed, result.invalid) == (2, 0, ["not-a-thing"])
    again = suppression_list_upload(advertiser=advertiser, lines=["known@example.com"])
    assert (again.added, again.already_listed) == (0, 1)
    assert "known" not in "".join(SuppressionEntry.objects.values_list("digest", flat=True))
    by_email = _post(offer, affiliate, email="KNOWN@example.com")
    by_phone = _post(offer, affiliate, email="new@example.com", phone="+1 415 555 2671")
    fresh = _post(offer, affiliate, email="fresh@example.com")
    assert [(by_email.status, by_email.reasons), (by_phone.status, by_phone.reasons)] == [
        ("rejected", ["suppressed"]),
        ("rejected", ["suppressed"]),
    ]
    assert fresh.status == "approved"


def test_another_advertisers_list_does_not_apply(other_advertiser, offer, affiliate):
    suppression_list_upload(advertiser=other_advertiser, lines=["known@example.com"])
    assert _post(offer, affiliate, email="known@example.com").status == "approved"


def test_advertisers_upload_their_list_in_the_portal(advertiser, affiliate):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = logged_in(advertiser)
    csv = SimpleUploadedFile("list.csv", b"email\nx@example.com\ny@example.com\n")
    page = client.post("/portal/suppression/", {"lines": "+14155552671", "file": csv})
    assert page.status_code == 200
    assert "3 added" in page.content.decode()
    assert SuppressionEntry.objects.filter(advertiser=advertiser).count() == 3
    assert logged_in(affiliate).get("/portal/suppression/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_identical_leads_at_once_across_an_advertisers_offers_give_one(advertiser, affiliate):
    offers = [make_offer(advertiser) for _ in range(3)]
    Offer.objects.filter(pk__in=[o.pk for o in offers]).update(dedupe_scope="advertiser")
    for offer in offers:
        approve(offer, affiliate)
    count = 9 if connection.vendor == "postgresql" else 6

    def post(i: int) -> None:
        _post(offers[i % 3], affiliate, email="race@example.com")

    errors = run_together(count, post)
    assert errors == []
    statuses = sorted(Lead.objects.values_list("status", flat=True))
    assert statuses == [LeadStatus.APPROVED] + [LeadStatus.DUPLICATE] * (count - 1)


class TestDedupeInvariant(HypothesisTestCase):
    @settings(max_examples=25, deadline=None)
    @given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=12))
    def test_each_person_is_accepted_once_per_window(self, people) -> None:
        advertiser = OrganizationFactory(kind=OrganizationKind.ADVERTISER)
        affiliate = OrganizationFactory(kind=OrganizationKind.AFFILIATE)
        offer = make_offer(advertiser, fields=[FieldSpec("email", "email")])
        approve(offer, affiliate)
        for person in people:
            lead_intake(
                offer_id=offer.pk,
                fields={"email": f"{person}@example.com"},
                source=LeadSource.API,
                affiliate=affiliate,
            )
        accepted = Lead.objects.filter(offer=offer, status=LeadStatus.APPROVED)
        assert accepted.count() == len(set(people))
        assert Lead.objects.filter(offer=offer).count() == len(people)
