"""Changing a buyer after it is set up: settings checked as a whole, pausing and resuming by
its owner, and rotating its signing secrets without a delivery going unverifiable."""

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from leadrelay.core.errors import Conflict, Invalid, NotFound
from leadrelay.distribution.buyers import (
    buyer_secret_add,
    buyer_secret_fingerprint,
    buyer_secret_new,
    buyer_secret_remove,
    buyer_settings,
    buyer_status_set,
    buyer_update,
)
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import Buyer, Delivery
from tests.distribution.conftest import make_buyer, new_lead
from tests.factories import make_offer


def _stored(buyer):
    return Buyer.objects.get(pk=buyer.pk)


def test_an_update_changes_only_what_is_sent_and_keeps_the_field_order(
    other_advertiser, buyer_server
):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    updated = buyer_update(
        buyer=buyer,
        by=other_advertiser,
        price_minor=4500,
        field_map={"z_last": "{email}", "a_first": "{first_name}", "m": "static"},
        ping_field_map={"zip": "{zip}", "country": "{country}"},
    )
    stored = _stored(buyer)
    assert updated.price_minor == stored.price_minor == 4500
    assert stored.field_map == [["z_last", "{email}"], ["a_first", "{first_name}"], ["m", "static"]]
    assert stored.ping_field_map == [["zip", "{zip}"], ["country", "{country}"]]
    assert list(stored.mapping()) == ["z_last", "a_first", "m"]
    assert (stored.name, stored.url, stored.vertical) == ("Buyer", buyer_server.url, "insurance")


def test_a_refused_update_names_every_problem_and_changes_nothing(
    routed, other_advertiser, buyer_server
):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    before = buyer_settings(_stored(buyer))
    with pytest.raises(Invalid) as refused:
        buyer_update(
            buyer=buyer,
            by=other_advertiser,
            name="Renamed",
            price_minor=-1,
            timezone="Mars/Olympus",
            headers={"Host": "evil"},
            field_map={"x": "{no_such_field}"},
        )
    assert sorted((p.code, p.field) for p in refused.value.problems) == [
        ("invalid_amount", "price_minor"),
        ("invalid_header", "headers"),
        ("invalid_timezone", "timezone"),
        ("unknown_macro", "field_map.x"),
    ]
    assert buyer_settings(_stored(buyer)) == before
    with pytest.raises(TypeError, match="unknown buyer settings: advertiser, status"):
        buyer_update(buyer=buyer, by=other_advertiser, status="active", advertiser=None)


def test_an_update_is_checked_against_the_address_rules(other_advertiser, buyer_server, settings):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    for url in ("http://127.0.0.1:9/", "http://[::1]/", "http://2130706433/"):
        with pytest.raises(Invalid) as refused:
            buyer_update(buyer=buyer, by=other_advertiser, url=url)
        assert [(p.code, p.field) for p in refused.value.problems] == [
            ("url_private_host", "url")
        ], url
    assert _stored(buyer).url == buyer_server.url


def test_offers_are_kept_replaced_or_refused_for_another_vertical(
    other_advertiser, advertiser, routed, buyer_server
):
    buyer = make_buyer(other_advertiser, buyer_server.url, offers=[routed])
    buyer_update(buyer=buyer, by=other_advertiser, priority=5)
    assert list(_stored(buyer).offers.all()) == [routed]
    solar = make_offer(advertiser, vertical="solar")
    with pytest.raises(Invalid) as refused:
        buyer_update(buyer=buyer, by=other_advertiser, offers=[solar])
    assert [p.code for p in refused.value.problems] == ["offer_vertical"]
    buyer_update(buyer=buyer, by=other_advertiser, offers=[])
    assert list(_stored(buyer).offers.all()) == []


def test_only_its_advertiser_and_the_network_change_a_buyer(
    other_advertiser, advertiser, affiliate, network, buyer_server
):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    for stranger in (advertiser, affiliate):
        with pytest.raises(NotFound):
            buyer_update(buyer=buyer, by=stranger, price_minor=1)
        with pytest.raises(NotFound):
            buyer_status_set(buyer=buyer, by=stranger, status="paused")
        with pytest.raises(NotFound):
            buyer_secret_add(buyer=buyer, by=stranger)
    assert _stored(buyer).price_minor == 3000 and _stored(buyer).signing_secrets == []
    buyer_update(buyer=buyer, by=network, price_minor=1)
    assert _stored(buyer).price_minor == 1


def test_its_owner_pauses_and_resumes_a_buyer(routed, affiliate, other_advertiser, buyer_server):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    Buyer.objects.filter(pk=buyer.pk).update(consecutive_failures=3)
    paused = buyer_status_set(buyer=buyer, by=other_advertiser, status="paused")
    assert (paused.status, paused.paused_reason, paused.consecutive_failures) == ("paused", "", 3)
    assert lead_distribute(lead_id=new_lead(routed, affiliate).pk) == []
    Buyer.objects.filter(pk=buyer.pk).update(paused_reason="Paused after 3 failed deliveries")
    resumed = buyer_status_set(buyer=buyer, by=other_advertiser, status="active")
    assert (resumed.status, resumed.paused_reason, resumed.consecutive_failures) == (
        "active",
        "",
        0,
    )
    with pytest.raises(Invalid):
        buyer_status_set(buyer=buyer, by=other_advertiser, status="deleted")


def _signed_by(buyer_server, routed, affiliate, secrets):
    """Which of `secrets` verify the next delivery."""
    (delivery,) = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    seen = buyer_server.requests[-1]
    headers = {k.lower(): v for k, v in seen.headers.items()}
    verified = []
    for secret in secrets:
        try:
            Webhook(secret).verify(seen.body, headers)
            verified.append(secret)
        except Exception:
            pass
    return verified, len(headers["webhook-signature"].split(" "))


def test_a_rotation_signs_with_both_secrets_then_with_the_new_one_only(
    routed, affiliate, other_advertiser, buyer_server
):
    old = buyer_secret_new()
    buyer = make_buyer(other_advertiser, buyer_server.url, signing_secrets=[old])
    assert _signed_by(buyer_server, routed, affiliate, [old]) == ([old], 1)
    new = buyer_secret_add(buyer=buyer, by=other_advertiser)
    assert _stored(buyer).signing_secrets == [new, old]
    assert _signed_by(buyer_server, routed, affiliate, [new, old]) == ([new, old], 2)
    buyer_secret_remove(buyer=buyer, by=other_advertiser, fingerprint=buyer_secret_fingerprint(old))
    assert _stored(buyer).signing_secrets == [new]
    assert _signed_by(buyer_server, routed, affiliate, [new, old]) == ([new], 1)
    # The only secret stays; an unknown fingerprint is not found.
    with pytest.raises(Conflict) as last:
        buyer_secret_remove(
            buyer=buyer, by=other_advertiser, fingerprint=buyer_secret_fingerprint(new)
        )
    assert last.value.code == "last_secret"
    with pytest.raises(NotFound):
        buyer_secret_remove(buyer=buyer, by=other_advertiser, fingerprint="0" * 12)
    assert _stored(buyer).signing_secrets == [new]


def test_at_most_three_secrets_sign_at_once(other_advertiser, buyer_server):
    buyer = make_buyer(other_advertiser, buyer_server.url)
    added = [buyer_secret_add(buyer=buyer, by=other_advertiser) for _ in range(3)]
    assert _stored(buyer).signing_secrets == added[::-1]
    with pytest.raises(Conflict) as full:
        buyer_secret_add(buyer=buyer, by=other_advertiser)
    assert full.value.code == "too_many_secrets"
    assert _stored(buyer).signing_secrets == added[::-1]
