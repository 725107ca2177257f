import pytest
from django.test import Client

from leadrelay.core.errors import Invalid, NotFound
from leadrelay.offers.models import AccessStatus, Offer, OfferAccess
from leadrelay.offers.selectors import offers_visible_to
from leadrelay.offers.services import (
    FieldSpec,
    offer_access_decide,
    offer_access_request,
    offer_payout_for,
)
from tests.conftest import bearer
from tests.factories import approve, make_offer


def test_an_offer_keeps_its_money_and_schema(advertiser) -> None:
    offer = make_offer(
        advertiser,
        fields=[
            FieldSpec("email", "email", "Email", required=True),
            FieldSpec("plan", "choice", "Plan", choices=("basic", "gold")),
        ],
    )
    offer.refresh_from_db()
    assert (offer.revenue_minor, offer.payout_minor, offer.currency) == (2500, 1800, "USD")
    assert [(f.key, f.type, f.required, f.choices) for f in offer.fields.all()] == [
        ("email", "email", True, []),
        ("plan", "choice", False, ["basic", "gold"]),
    ]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"currency": "usd"}, "invalid_currency", "currency"),
        ({"revenue_minor": -1}, "invalid_amount", "revenue_minor"),
        ({"payout_minor": 12.5}, "invalid_amount", "payout_minor"),
        ({"landing_url": "javascript:alert(1)"}, "invalid_landing_url", "landing_url"),
        ({"landing_url": "https://{sub1}.evil.test/"}, "invalid_landing_url", "landing_url"),
        ({"landing_url": "https://lp.test/?x={no pe}"}, "invalid_landing_url", "landing_url"),
        ({"deeplink_domains": ["not a domain"]}, "invalid_domain", "deeplink_domains"),
        ({"vertical": "casino"}, "invalid_choice", "vertical"),
        ({"tz": "Mars/Olympus"}, "invalid_timezone", "timezone"),
        ({"fields": [FieldSpec("Bad Key", "text")]}, "invalid_key", "fields[0].key"),
        (
            {"fields": [FieldSpec("a", "text"), FieldSpec("a", "text")]},
            "duplicate_key",
            "fields[1]",
        ),
        ({"fields": [FieldSpec("c", "choice")]}, "choices_required", "fields[0].choices"),
        ({"fields": [FieldSpec("c", "blob")]}, "invalid_type", "fields[0]"),
        (
            {"fields": [FieldSpec("c", "choice", choices=("a",), qualifying_choices=("b",))]},
            "invalid_qualifying_choices",
            "fields[0].qualifying_choices",
        ),
    ],
)
def test_bad_offers_are_refused_and_nothing_is_stored(advertiser, overrides, code, field) -> None:
    with pytest.raises(Invalid) as caught:
        make_offer(advertiser, **overrides)
    assert (code, field) in [(p.code, p.field) for p in caught.value.problems]
    assert Offer.objects.count() == 0


def test_only_advertisers_own_offers(affiliate) -> None:
    with pytest.raises(Invalid) as caught:
        make_offer(affiliate)
    assert caught.value.problems[0].code == "not_an_advertiser"


def test_public_offers_are_approved_at_once(advertiser, affiliate) -> None:
    offer = make_offer(advertiser, visibility="public")
    assert offer_access_request(offer=offer, affiliate=affiliate).status == AccessStatus.APPROVED


def test_offers_needing_approval_wait_for_a_decision(network, advertiser, affiliate) -> None:
    offer = make_offer(advertiser, visibility="approval")
    access = offer_access_request(offer=offer, affiliate=affiliate, message="email list, 40k")
    assert access.status == AccessStatus.PENDING
    offer_access_decide(access=access, approve=True, decided_by=None, payout_minor_override=2000)
    assert offer_payout_for(offer=offer, affiliate=affiliate) == 2000


def test_private_offers_do_not_exist_for_outsiders(advertiser, affiliate) -> None:
    offer = make_offer(advertiser, visibility="private")
    assert offer not in offers_visible_to(organization=affiliate)
    with pytest.raises(NotFound):
        offer_access_request(offer=offer, affiliate=affiliate)
    assert not OfferAccess.objects.exists()
    approve(offer, affiliate)
    assert offer in offers_visible_to(organization=affiliate)


def test_each_role_sees_its_own_offers(network, advertiser, other_advertiser, affiliate) -> None:
    mine = make_offer(advertiser)
    theirs = make_offer(other_advertiser)
    draft = make_offer(other_advertiser, status="draft")
    assert set(offers_visible_to(organization=network)) == {mine, theirs, draft}
    assert set(offers_visible_to(organization=advertiser)) == {mine}
    assert set(offers_visible_to(organization=affiliate)) == {mine, theirs}


def test_the_payout_override_wins(advertiser, affiliate, other_affiliate) -> None:
    offer = make_offer(advertiser, payout_minor=1800)
    approve(offer, affiliate, payout=2100)
    approve(offer, other_affiliate)
    assert offer_payout_for(offer=offer, affiliate=affiliate) == 2100
    assert offer_payout_for(offer=offer, affiliate=other_affiliate) == 1800
    assert offer_payout_for(offer=offer, affiliate=None) == 0


def test_api_an_advertiser_creates_an_offer(advertiser) -> None:
    response = Client().post(
        "/api/v1/offers",
        {
            "name": "Solar quotes",
            "vertical": "solar",
            "status": "active",
            "revenue_minor": 4000,
            "payout_minor": 3000,
            "landing_url": "https://lp.example.com/?c={click_id}",
            "fields": [{"key": "email", "type": "email", "required": True}],
        },
        content_type="application/json",
        **bearer(advertiser),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["revenue_minor"] == 4000
    assert body["fields"][0]["key"] == "email"
    assert Offer.objects.get(pk=body["id"]).advertiser == advertiser


def test_api_bad_offer_answers_422_with_field_paths(advertiser) -> None:
    response = Client().post(
        "/api/v1/offers",
        {"name": "X", "revenue_minor": 1, "payout_minor": 1, "landing_url": "ftp://x"},
        content_type="application/json",
        **bearer(advertiser),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "landing_url"
    assert Offer.objects.count() == 0


def test_api_affiliates_cannot_create_offers(affiliate) -> None:
    response = Client().post(
        "/api/v1/offers", {}, content_type="application/json", **bearer(affiliate)
    )
    assert response.status_code == 401


def test_api_affiliates_see_their_payout_not_the_revenue(advertiser, affiliate) -> None:
    offer = make_offer(advertiser)
    approve(offer, affiliate, payout=1900)
    response = Client().get(f"/api/v1/offers/{offer.pk}", **bearer(affiliate))
    assert response.status_code == 200
    assert response.json()["payout_minor"] == 1900
    assert response.json()["revenue_minor"] is None


def test_api_advertisers_see_revenue_not_payout(advertiser) -> None:
    offer = make_offer(advertiser)
    body = Client().get(f"/api/v1/offers/{offer.pk}", **bearer(advertiser)).json()
    assert (body["revenue_minor"], body["payout_minor"]) == (2500, None)


def test_api_another_advertisers_offer_is_404(advertiser, other_advertiser) -> None:
    offer = make_offer(other_advertiser)
    response = Client().get(f"/api/v1/offers/{offer.pk}", **bearer(advertiser))
    assert response.status_code == 404


def test_money_settings_of_an_offer_are_checked_and_kept(advertiser):
    from leadrelay.core.errors import Invalid

    offer = make_offer(
        advertiser, name="Solar", payout_model="revshare", revenue_bps=3000, payout_bps=2000
    )
    assert (offer.name, offer.revenue_bps, offer.payout_bps) == ("Solar", 3000, 2000)
    with pytest.raises(Invalid) as exc:
        make_offer(
            advertiser, hold_days=-1, return_window_days=400, payout_model="revshare", payout_bps=1
        )
    assert {(p.code, p.field) for p in exc.value.problems} == {
        ("out_of_range", "hold_days"),
        ("out_of_range", "return_window_days"),
        ("payout_exceeds_revenue", "payout_bps"),
    }


def test_an_offer_whose_fields_fail_to_save_leaves_no_offer_behind(advertiser, monkeypatch):
    # Regression: offer_create had lost its transaction (the decorator sat on the cached
    # time-zone list), so a failure after the offer row left a half-made offer.
    from leadrelay.offers import services

    def broken(offer, specs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_fields_write", broken)
    with pytest.raises(RuntimeError):
        make_offer(advertiser)
    assert Offer.objects.count() == 0
