import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client

from leadrelay.core.clickid import click_id_issue
from leadrelay.leads.models import Lead, LeadStatus, LeadStatusChange
from leadrelay.leads.services import lead_review_decide
from leadrelay.ledger.models import Entry, Transaction
from leadrelay.offers.services import FieldSpec
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer
from tests.factories import approve, make_click, make_offer, member

GOOD = {"first_name": "  Ana  ", "email": "Ana.Lima@Example.COM", "phone": "(415) 555-2671"}


def post(headers: dict[str, str], body: dict[str, Any]):
    return Client().post("/api/v1/leads", body, content_type="application/json", **headers)


def test_a_valid_lead_is_approved_normalized_and_booked(offer, affiliate, affiliate_headers):
    response = post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["reasons"]) == ("approved", [])
    lead = Lead.objects.get(pk=body["id"])
    assert lead.fields == {
        "first_name": "Ana",
        "email": "Ana.Lima@example.com",
        "phone": "+14155552671",
    }
    assert (lead.email_normalized, lead.phone_e164) == ("ana.lima@example.com", "+14155552671")
    assert (lead.affiliate, lead.revenue_minor, lead.payout_minor) == (affiliate, 2500, 1800)
    txn = Transaction.objects.get(lead=lead)
    assert txn.external_id == f"lead:{lead.pk}:approved"
    assert sorted(e.amount_minor for e in txn.entries.all()) == [-1800, -700, 2500]
    assert [c.to_status for c in LeadStatusChange.objects.filter(lead=lead)] == [
        "pending_review",
        "approved",
    ]


def test_invalid_fields_answer_422_per_field_and_store_nothing(offer, affiliate_headers):
    response = post(
        affiliate_headers,
        {
            "offer_id": offer.pk,
            "fields": {"email": "not-an-email", "phone": "12", "zip": "!!", "color": "red"},
        },
    )
    assert response.status_code == 422
    problems = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert problems == {
        ("fields.color", "unknown_field"),
        ("fields.first_name", "required"),
        ("fields.email", "invalid_email"),
        ("fields.phone", "invalid_phone"),
        ("fields.zip", "invalid_postal_code"),
    }
    assert Lead.objects.count() == 0
    assert Transaction.objects.count() == 0


def test_a_malformed_body_answers_422(offer, affiliate_headers):
    response = post(affiliate_headers, {"offer_id": "x", "fields": []})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"offer_id", "fields"}


@pytest.mark.parametrize(
    ("spec", "value", "stored"),
    [
        (FieldSpec("n", "number"), "42", 42),
        (FieldSpec("n", "number"), 12.50, "12.5"),
        (FieldSpec("d", "date"), "2001-02-03", "2001-02-03"),
        (FieldSpec("b", "boolean"), "yes", True),
        (FieldSpec("b", "boolean"), False, False),
        (FieldSpec("c", "country"), "deu", "DE"),
        (FieldSpec("c", "choice", choices=("a", "b")), "b", "b"),
        (FieldSpec("t", "text", max_length=5), " a  b ", "a b"),
    ],
)
def test_each_field_type_is_stored_in_its_normal_form(advertiser, affiliate, spec, value, stored):
    offer = make_offer(advertiser, fields=[spec])
    approve(offer, affiliate)
    response = post(bearer(affiliate), {"offer_id": offer.pk, "fields": {spec.key: value}})
    assert response.status_code == 201, response.content
    assert Lead.objects.get().fields == {spec.key: stored}


@pytest.mark.parametrize(
    ("spec", "value", "code"),
    [
        (FieldSpec("n", "number"), "1e400", "invalid_number"),
        (FieldSpec("n", "number"), True, "invalid_number"),
        (FieldSpec("d", "date"), "03/02/2001", "invalid_date"),
        (FieldSpec("b", "boolean"), "maybe", "invalid_boolean"),
        (FieldSpec("c", "country"), "XX", "invalid_country"),
        (FieldSpec("c", "choice", choices=("a",)), "z", "invalid_choice"),
        (FieldSpec("t", "text", max_length=5), "abcdef", "too_long"),
        (FieldSpec("t", "text"), {"nested": 1}, "invalid_type"),
        (FieldSpec("b", "boolean", required=True), False, "required"),
    ],
)
def test_bad_values_are_refused(advertiser, affiliate, spec, value, code):
    offer = make_offer(advertiser, fields=[spec])
    approve(offer, affiliate)
    response = post(bearer(affiliate), {"offer_id": offer.pk, "fields": {spec.key: value}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == code
    assert Lead.objects.count() == 0


def test_the_click_id_attributes_link_and_sub_ids(offer, affiliate, affiliate_headers):
    link = tracking_link_create(
        offer=offer, affiliate=affiliate, subs={"sub1": "spring", "sub2": "b"}
    )
    click = make_click(link)
    body = post(
        affiliate_headers, {"offer_id": offer.pk, "click_id": click.click_id, "fields": GOOD}
    ).json()
    lead = Lead.objects.get(pk=body["id"])
    assert (lead.link, lead.click_id, lead.sub1, lead.sub2) == (link, click.click_id, "spring", "b")


def test_a_lost_click_row_still_attributes_the_lead(offer, affiliate, affiliate_headers):
    link = tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "lost"})
    identity = click_id_issue(link_id=link.pk, offer_id=offer.pk, affiliate_id=affiliate.pk)
    body = post(
        affiliate_headers, {"offer_id": offer.pk, "click_id": identity.click_id, "fields": GOOD}
    ).json()
    lead = Lead.objects.get(pk=body["id"])
    assert (lead.status, lead.affiliate, lead.link, lead.sub1) == (
        "approved",
        affiliate,
        link,
        "lost",
    )


def test_a_forged_click_id_is_refused(offer, affiliate, affiliate_headers):
    real = click_id_issue(link_id=1, offer_id=offer.pk, affiliate_id=affiliate.pk).click_id
    forged = real[:-1] + ("a" if real[-1] != "a" else "b")
    response = post(affiliate_headers, {"offer_id": offer.pk, "click_id": forged, "fields": GOOD})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "code": "invalid_click_id",
        "message": "This click id was not issued by us.",
        "field": "click_id",
    }
    assert Lead.objects.count() == 0


def test_another_affiliates_click_id_is_rejected(offer, affiliate, other_affiliate):
    approve(offer, other_affiliate)
    link = tracking_link_create(offer=offer, affiliate=other_affiliate)
    click = make_click(link)
    body = post(
        bearer(affiliate), {"offer_id": offer.pk, "click_id": click.click_id, "fields": GOOD}
    ).json()
    assert (body["status"], body["reasons"]) == ("rejected", ["click_affiliate_mismatch"])
    assert Lead.objects.get().affiliate == affiliate
    assert Transaction.objects.count() == 0


def test_a_click_id_for_another_offer_is_rejected(advertiser, offer, affiliate, affiliate_headers):
    second = make_offer(advertiser)
    approve(second, affiliate)
    link = tracking_link_create(offer=second, affiliate=affiliate)
    click = make_click(link)
    body = post(
        affiliate_headers, {"offer_id": offer.pk, "click_id": click.click_id, "fields": GOOD}
    ).json()
    assert (body["status"], body["reasons"]) == ("rejected", ["click_offer_mismatch"])


def test_the_same_email_or_phone_within_30_days_is_a_duplicate(offer, affiliate_headers):
    first = post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD}).json()
    same_email = {**GOOD, "email": "ANA.LIMA@example.com", "phone": "+1 212 555 0100"}
    second = post(affiliate_headers, {"offer_id": offer.pk, "fields": same_email}).json()
    same_phone = {**GOOD, "email": "someone@example.org", "phone": "+1-415-555-2671"}
    third = post(affiliate_headers, {"offer_id": offer.pk, "fields": same_phone}).json()
    assert [first["status"], second["status"], third["status"]] == [
        "approved",
        "duplicate",
        "duplicate",
    ]
    assert second["reasons"] == ["duplicate"]
    assert Lead.objects.get(pk=second["id"]).duplicate_of_id == first["id"]
    assert Transaction.objects.count() == 1


def test_after_30_days_the_same_person_is_a_new_lead(offer, affiliate_headers):
    start = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        assert (
            post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD}).json()["status"]
            == "approved"
        )
    with time_machine.travel(start + dt.timedelta(days=29, hours=23), tick=False):
        assert (
            post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD}).json()["status"]
            == "duplicate"
        )
    with time_machine.travel(start + dt.timedelta(days=30, seconds=1), tick=False):
        assert (
            post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD}).json()["status"]
            == "approved"
        )


def test_empty_keys_never_match(advertiser, affiliate):
    offer = make_offer(
        advertiser, fields=[FieldSpec("email", "email"), FieldSpec("phone", "phone")]
    )
    approve(offer, affiliate)
    headers = bearer(affiliate)
    a = post(headers, {"offer_id": offer.pk, "fields": {"email": "a@example.com"}}).json()
    b = post(headers, {"offer_id": offer.pk, "fields": {"phone": "+14155552671"}}).json()
    assert [a["status"], b["status"]] == ["approved", "approved"]


def test_duplicates_are_per_offer(advertiser, offer, affiliate, affiliate_headers):
    second = make_offer(advertiser)
    approve(second, affiliate)
    post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD})
    body = post(affiliate_headers, {"offer_id": second.pk, "fields": GOOD}).json()
    assert body["status"] == "approved"


def test_unqualified_answers_are_rejected_with_a_reason(advertiser, affiliate):
    offer = make_offer(
        advertiser,
        fields=[
            FieldSpec("owner", "choice", choices=("yes", "no"), qualifying_choices=("yes",)),
        ],
    )
    approve(offer, affiliate)
    body = post(bearer(affiliate), {"offer_id": offer.pk, "fields": {"owner": "no"}}).json()
    assert (body["status"], body["reasons"]) == ("rejected", ["not_qualified:owner"])
    assert Transaction.objects.count() == 0


def test_review_mode_holds_leads_until_staff_decide(network, advertiser, affiliate):
    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    headers = bearer(affiliate)
    held = post(headers, {"offer_id": offer.pk, "fields": GOOD}).json()
    other = post(
        headers, {"offer_id": offer.pk, "fields": {**GOOD, "email": "b@example.org", "phone": ""}}
    ).json()
    assert held["status"] == other["status"] == "pending_review"
    assert Transaction.objects.count() == 0
    staff = member(network)
    lead_review_decide(lead_id=held["id"], approve=True, actor=staff, note="called, real")
    lead_review_decide(lead_id=other["id"], approve=False, actor=staff, reason="bad_contact")
    assert Lead.objects.get(pk=held["id"]).status == LeadStatus.APPROVED
    rejected = Lead.objects.get(pk=other["id"])
    assert (rejected.status, rejected.reasons) == ("rejected", ["bad_contact"])
    assert Transaction.objects.get().lead_id == held["id"]
    change = LeadStatusChange.objects.filter(lead_id=other["id"]).last()
    assert (change.from_status, change.to_status, change.actor) == (
        "pending_review",
        "rejected",
        staff,
    )


def test_a_decided_lead_cannot_be_decided_again(network, offer, affiliate_headers):
    from leadrelay.core.errors import Conflict

    body = post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD}).json()
    with pytest.raises(Conflict):
        lead_review_decide(lead_id=body["id"], approve=True, actor=member(network))
    assert Transaction.objects.count() == 1
    assert Entry.objects.count() == 3


def test_offers_the_affiliate_may_not_run(advertiser, affiliate):
    waiting = make_offer(advertiser, visibility="approval")
    private = make_offer(advertiser, visibility="private")
    headers = bearer(affiliate)
    response = post(headers, {"offer_id": waiting.pk, "fields": GOOD})
    assert (response.status_code, response.json()["code"]) == (403, "offer_access_required")
    assert post(headers, {"offer_id": private.pk, "fields": GOOD}).status_code == 404
    assert post(headers, {"offer_id": 999999, "fields": GOOD}).status_code == 404
    assert Lead.objects.count() == 0


def test_a_paused_offer_takes_no_leads(offer, affiliate_headers):
    from leadrelay.offers.services import offer_status_set

    offer_status_set(offer=offer, status="paused")
    response = post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD})
    assert response.status_code == 404
    assert Lead.objects.count() == 0


def test_advertiser_keys_cannot_post_leads(offer, advertiser):
    response = post(bearer(advertiser), {"offer_id": offer.pk, "fields": GOOD})
    assert response.status_code == 401


def test_reading_a_lead_is_scoped(offer, affiliate_headers, other_affiliate, advertiser):
    body = post(affiliate_headers, {"offer_id": offer.pk, "fields": GOOD}).json()
    url = f"/api/v1/leads/{body['id']}"
    assert Client().get(url, **affiliate_headers).json()["status"] == "approved"
    assert Client().get(url, **bearer(advertiser)).status_code == 200
    assert Client().get(url, **bearer(other_affiliate)).status_code == 404


def test_a_free_offer_approves_without_booking(advertiser, affiliate):
    offer = make_offer(advertiser, revenue_minor=0, payout_minor=0)
    approve(offer, affiliate)
    body = post(bearer(affiliate), {"offer_id": offer.pk, "fields": GOOD}).json()
    assert body["status"] == "approved"
    assert Transaction.objects.count() == 0


def test_offers_paid_per_click_or_sale_book_nothing_per_lead(advertiser, affiliate):
    offer = make_offer(advertiser, payout_model="cpa")
    approve(offer, affiliate)
    body = post(bearer(affiliate), {"offer_id": offer.pk, "fields": GOOD}).json()
    assert body["status"] == "approved"
    assert Transaction.objects.count() == 0
    lead = Lead.objects.get()
    assert (lead.revenue_minor, lead.payout_minor) == (0, 0)  # nothing booked, nothing shown


def test_a_form_lead_with_another_offers_click_id_is_not_attributed(advertiser, affiliate):
    from leadrelay.leads.models import LeadSource
    from leadrelay.leads.services import lead_intake

    first, second = make_offer(advertiser), make_offer(advertiser)
    approve(first, affiliate)
    link = tracking_link_create(offer=first, affiliate=affiliate)
    click = make_click(link)
    lead = lead_intake(
        offer_id=second.pk, fields=GOOD, source=LeadSource.FORM, click_id=click.click_id
    )
    assert (lead.status, lead.affiliate, lead.link, lead.reasons) == (
        "rejected",
        None,
        None,
        ["click_offer_mismatch"],
    )


def test_a_lead_keeps_per_click_sub_ids_when_the_click_row_was_lost(
    offer, affiliate, affiliate_headers
):
    from leadrelay.tracking.buffer import click_buffer

    link = tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "static"})
    response = Client().get(f"/c/{link.code}?sub2=adset-7&sub3=%E2%9C%93")
    click_id = parse_qs(urlsplit(response["Location"]).query)["cid"][0]
    click_buffer.discard()  # the process died before its flush: no click row, ever
    body = post(affiliate_headers, {"offer_id": offer.pk, "click_id": click_id, "fields": GOOD})
    lead = Lead.objects.get(pk=body.json()["id"])
    assert (lead.status, lead.affiliate, lead.link) == ("approved", affiliate, link)
    assert (lead.sub1, lead.sub2, lead.sub3) == ("static", "adset-7", "✓")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"offer_id": 1, "fields": {"a": "\xff\xfe"}}', 400, "invalid_body"),
        (b"{not json", 400, "invalid_body"),
        (b'{"offer_id": 1, "fields": {"a": "' + b"x" * 3_000_000 + b'"}}', 413, "body_too_large"),
    ],
)
def test_bodies_that_cant_be_read_are_refused_with_a_code(affiliate_headers, body, status, code):
    response = Client().post(
        "/api/v1/leads", body, content_type="application/json", **affiliate_headers
    )
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["errors"][0]["field"] == "body"
    assert Lead.objects.count() == 0
