"""Setting buyers up through the JSON API: create, read, change, rotate secrets; every problem
at once; another advertiser's buyer is 404; secrets are never read back."""

import json

from django.test import Client

from leadrelay.distribution.buyers import buyer_secret_fingerprint
from leadrelay.distribution.models import Buyer
from tests.conftest import bearer
from tests.distribution.conftest import make_buyer

NEW = {
    "name": "Acme calls",
    "vertical": "insurance",
    "price_minor": 3000,
    "url": "https://buyer.example.com/leads",
    "field_map": {"z": "{email}", "a": "{first_name}", "source": "leadrelay"},
    "schedule": {"mon": [["09:00", "17:00"]]},
    "timezone": "America/New_York",
}


def _call(method, path, headers, body=None):
    client = Client()
    kwargs = {"content_type": "application/json", **headers}
    if body is not None:
        kwargs["data"] = json.dumps(body)
    return getattr(client, method)(path, **kwargs)


def test_an_advertiser_creates_reads_and_changes_its_buyer(other_advertiser, routed):
    key = bearer(other_advertiser)
    created = _call("post", "/api/v1/buyers", key, {**NEW, "offer_ids": [routed.pk]})
    assert created.status_code == 201, created.content
    body = created.json()
    buyer = Buyer.objects.get(pk=body["id"])
    assert buyer.advertiser == other_advertiser
    assert body["signing_secret"] == buyer.signing_secrets[0]
    assert body["signing_secret"].startswith("whsec_")
    assert body["signing_secret_fingerprints"] == [buyer_secret_fingerprint(body["signing_secret"])]
    assert list(body["field_map"]) == ["z", "a", "source"]
    assert (body["offer_ids"], body["timezone"], body["status"]) == (
        [routed.pk],
        "America/New_York",
        "active",
    )

    read = _call("get", f"/api/v1/buyers/{buyer.pk}", key)
    assert read.status_code == 200
    assert "signing_secret" not in read.json()
    assert buyer.signing_secrets[0] not in read.content.decode()
    assert {k: v for k, v in read.json().items()} == {
        k: v for k, v in body.items() if k != "signing_secret"
    }
    listed = _call("get", "/api/v1/buyers", key)
    assert [b["id"] for b in listed.json()] == [buyer.pk]
    assert buyer.signing_secrets[0] not in listed.content.decode()

    changed = _call(
        "patch",
        f"/api/v1/buyers/{buyer.pk}",
        key,
        {"price_minor": 4200, "field_map": {"b": "{email}", "a": "{zip}"}, "offer_ids": []},
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["price_minor"], changed.json()["offer_ids"]) == (4200, [])
    assert list(changed.json()["field_map"].items()) == [("b", "{email}"), ("a", "{zip}")]
    buyer.refresh_from_db()
    assert (buyer.price_minor, buyer.field_map, buyer.name) == (
        4200,
        [["b", "{email}"], ["a", "{zip}"]],
        "Acme calls",
    )
    assert "signing_secret" not in changed.json()


def test_bad_settings_answer_422_with_every_problem_and_change_nothing(
    other_advertiser, routed, settings
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    key = bearer(other_advertiser)
    refused = _call(
        "post",
        "/api/v1/buyers",
        key,
        {**NEW, "url": "http://127.0.0.1:8000/admin", "currency": "usd", "vertical": "pets"},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "validation_failed"
    assert sorted((e["code"], e["field"]) for e in refused.json()["errors"]) == [
        ("invalid_choice", "vertical"),
        ("invalid_currency", "currency"),
        ("url_private_host", "url"),
    ]
    # A number out of its range (tests/core/test_bounds.py) is refused by the schema, first.
    negative = _call("post", "/api/v1/buyers", key, {**NEW, "price_minor": -5})
    assert [(e["code"], e["field"]) for e in negative.json()["errors"]] == [
        ("greater_than_equal", "price_minor")
    ]
    assert not Buyer.objects.exists()

    buyer = make_buyer(other_advertiser, "https://buyer.example.com/")
    patched = _call(
        "patch",
        f"/api/v1/buyers/{buyer.pk}",
        key,
        {"url": "http://169.254.169.254/latest", "field_map": {"x": "{nope}"}},
    )
    assert patched.status_code == 422
    assert sorted((e["code"], e["field"]) for e in patched.json()["errors"]) == [
        ("unknown_macro", "field_map.x"),
        ("url_private_host", "url"),
    ]
    wrong_type = _call("patch", f"/api/v1/buyers/{buyer.pk}", key, {"filters": "not an object"})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"][0]["field"] == "filters"
    unknown_offer = _call("patch", f"/api/v1/buyers/{buyer.pk}", key, {"offer_ids": [999999]})
    assert unknown_offer.status_code == 422
    assert unknown_offer.json()["errors"][0]["field"] == "offer_ids"
    buyer.refresh_from_db()
    assert (buyer.url, buyer.mapping()) == (
        "https://buyer.example.com/",
        {"fname": "{first_name}", "mail": "{email}", "source": "leadrelay"},
    )


def test_an_address_carrying_an_inside_ipv4_or_a_local_name_answers_422_on_its_field(
    other_advertiser, routed, settings
):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = False
    key = bearer(other_advertiser)
    refused = _call(
        "post",
        "/api/v1/buyers",
        key,
        {
            **NEW,
            "url": "http://[64:ff9b::a9fe:a9fe]/latest",
            "ping_url": "https://localhost./",
            "bid_json_path": "$.bid",
        },
    )
    assert refused.status_code == 422
    message = "The host must be a public name or address, not a local, private or metadata one."
    assert sorted(refused.json()["errors"], key=lambda e: e["field"]) == [
        {"code": "url_private_host", "message": message, "field": "ping_url"},
        {"code": "url_private_host", "message": message, "field": "url"},
    ]
    assert not Buyer.objects.exists()


def test_another_advertisers_buyer_is_not_found_and_affiliates_have_no_buyers(
    other_advertiser, advertiser, affiliate
):
    buyer = make_buyer(other_advertiser, "https://buyer.example.com/")
    stranger = bearer(advertiser)
    assert _call("get", f"/api/v1/buyers/{buyer.pk}", stranger).status_code == 404
    assert (
        _call("patch", f"/api/v1/buyers/{buyer.pk}", stranger, {"price_minor": 1}).status_code
        == 404
    )
    assert _call("post", f"/api/v1/buyers/{buyer.pk}/secrets", stranger).status_code == 404
    assert _call("get", "/api/v1/buyers", stranger).json() == []
    assert _call("get", "/api/v1/buyers", bearer(affiliate)).status_code == 401
    assert _call("post", "/api/v1/buyers", bearer(affiliate), NEW).status_code == 401
    buyer.refresh_from_db()
    assert buyer.price_minor == 3000 and buyer.signing_secrets == []


def test_the_network_sets_up_a_buyer_for_a_named_advertiser(network, other_advertiser):
    key = bearer(network)
    unnamed = _call("post", "/api/v1/buyers", key, NEW)
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "advertiser_id"
    created = _call("post", "/api/v1/buyers", key, {**NEW, "advertiser_id": other_advertiser.pk})
    assert created.status_code == 201
    assert created.json()["advertiser_id"] == other_advertiser.pk
    assert _call("get", f"/api/v1/buyers/{created.json()['id']}", key).status_code == 200


def test_secrets_rotate_through_the_api(other_advertiser):
    key = bearer(other_advertiser)
    created = _call("post", "/api/v1/buyers", key, NEW).json()
    old = created["signing_secret"]
    added = _call("post", f"/api/v1/buyers/{created['id']}/secrets", key)
    assert added.status_code == 201
    new = added.json()["signing_secret"]
    assert added.json()["signing_secret_fingerprints"] == [
        buyer_secret_fingerprint(new),
        buyer_secret_fingerprint(old),
    ]
    path = f"/api/v1/buyers/{created['id']}/secrets/{buyer_secret_fingerprint(old)}"
    assert _call("delete", path, key).status_code == 204
    assert Buyer.objects.get(pk=created["id"]).signing_secrets == [new]
    last = _call(
        "delete", f"/api/v1/buyers/{created['id']}/secrets/{buyer_secret_fingerprint(new)}", key
    )
    assert (last.status_code, last.json()["code"]) == (409, "last_secret")
    assert Buyer.objects.get(pk=created["id"]).signing_secrets == [new]
