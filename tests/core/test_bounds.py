"""Bounds everywhere (core/bounds.py): every id, amount, count and day the API, the pages and
the exports take is checked against what its column (or the business) allows before the
database sees it. Out of range is a 422 naming the field (on a page: the form's error), an
id in a URL that no row can have is a 404, never a 500; and nothing is stored.

The values are the ones a fuzzer found (each answered 500) and the edges of each range."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from leadrelay.accounts.models import ApiKey, Organization
from leadrelay.core.bounds import DATE_MAX, DATE_MIN, ID_MAX, INT32_MAX, MINOR_MAX, id_parse
from leadrelay.distribution.models import Buyer, BuyerCap, BuyerReturn, InboundPing
from leadrelay.leads.models import Lead
from leadrelay.ledger.models import Invoice, PayoutRun, Transaction
from leadrelay.offers.models import Offer
from leadrelay.postbacks.models import AffiliatePostback
from leadrelay.tracking.models import TrackingLink
from tests.conftest import bearer, logged_in

BIG = 2**63  # one past the largest id
HUGE = "99999999999999999999"  # 20 digits, as the fuzzer sent it
DAY = "A day from 2000-01-01 to 2100-12-31."
STORED = (
    *(Buyer, BuyerCap, BuyerReturn, InboundPing, Lead, Offer, AffiliatePostback, TrackingLink),
    *(Transaction, Invoice, PayoutRun, ApiKey),
)


def _stored() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in STORED}


def _api(method: str, path: str, key: dict[str, str], body: Any = None, **query: str) -> Any:
    client = Client(raise_request_exception=False)
    if method == "get":
        return client.get(path, query, **key)
    return getattr(client, method)(
        path, data=json.dumps(body or {}), content_type="application/json", **key
    )


def _problems(response: Any) -> list[tuple[str, str | None]]:
    body = response.json()
    assert body["code"] == "validation_failed", body
    return [(e["code"], e["field"]) for e in body["errors"]]


def test_the_bounds_are_the_columns_and_the_business_ones():
    assert (ID_MAX, INT32_MAX, MINOR_MAX) == (9223372036854775807, 2147483647, 10**12)
    assert (DATE_MIN.isoformat(), DATE_MAX.isoformat()) == ("2000-01-01", "2100-12-31")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1), ("0042", 42), (str(ID_MAX), ID_MAX), (str(BIG), None), (HUGE, None),
        ("0", None), ("", None), ("-1", None), (" 1", None), ("1.0", None), ("²", None),
        ("١٢", None), ("9" * 5000, None),
    ],
)  # fmt: skip
def test_an_id_posted_as_text_is_one_any_row_can_have_or_none(text, expected):
    assert id_parse(text) == expected


# --- the API: query and path parameters ------------------------------------------------------

GE, LE = "greater_than_equal", "less_than_equal"


@pytest.mark.parametrize(
    ("path", "query", "problems"),
    [
        ("/api/v1/reports/summary", {"end": "0001-01-01"}, [(GE, "end")]),
        ("/api/v1/reports/summary", {"start": "9999-12-30", "end": "9999-12-31"},
         [(LE, "start"), (LE, "end")]),
        ("/api/v1/reports/summary", {"start": "1999-12-31", "end": "2000-01-01"}, [(GE, "start")]),
        ("/api/v1/reports/summary", {"start": "2100-12-31", "end": "2101-01-01"}, [(LE, "end")]),
        ("/api/v1/reports/quality", {"end": "0001-01-01"}, [(GE, "end")]),
        ("/api/v1/reports/quality", {"start": "9999-12-31"}, [(LE, "start")]),
        ("/api/v1/reports/attribution", {"end": "9999-12-31"}, [(LE, "end")]),
        ("/api/v1/reports", {"start": "0001-01-01"}, [(GE, "start")]),
        ("/api/v1/reports", {"offer_id": HUGE}, [(LE, "offer_id")]),
        ("/api/v1/reports", {"affiliate_id": HUGE}, [(LE, "affiliate_id")]),
        ("/api/v1/reports", {"offer_id": str(BIG)}, [(LE, "offer_id")]),
        ("/api/v1/reports", {"offer_id": "0"}, [(GE, "offer_id")]),
        ("/api/v1/reports", {"affiliate_id": "-1"}, [(GE, "affiliate_id")]),
        (f"/api/v1/leads/{BIG}", {}, [(LE, "lead_id")]),
        ("/api/v1/leads/0", {}, [(GE, "lead_id")]),
        (f"/api/v1/offers/{BIG}", {}, [(LE, "offer_id")]),
        (f"/api/v1/buyers/{BIG}", {}, [(LE, "buyer_id")]),
        (f"/api/v1/buyers/{BIG}/leads", {}, [(LE, "buyer_id")]),
        ("/api/v1/buyers/1/leads", {"after": str(BIG)}, [(LE, "after")]),
        ("/api/v1/buyers/1/leads", {"limit": "501"}, [(LE, "limit")]),
    ],
)  # fmt: skip
def test_a_parameter_out_of_range_is_422_with_its_name(advertiser, path, query, problems):
    key = bearer(advertiser)
    before = _stored()
    response = _api("get", path, key, **query)
    assert response.status_code == 422, response.content
    assert _problems(response) == problems
    assert _stored() == before


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/leads/{ID_MAX}",
        f"/api/v1/offers/{ID_MAX}",
        f"/api/v1/buyers/{ID_MAX}",
        f"/api/v1/buyers/{ID_MAX}/leads",
    ],
)
def test_the_largest_id_is_looked_up_and_not_found(advertiser, path):
    response = _api("get", path, bearer(advertiser))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_first_and_last_days_and_the_largest_ids_report(network):
    key = bearer(network)
    for day in ("2000-01-01", "2100-12-31"):
        for path in ("/api/v1/reports/summary", "/api/v1/reports/quality", "/api/v1/reports"):
            response = _api("get", path, key, start=day, end=day)
            assert response.status_code == 200, (path, response.content)
            assert (response.json()["start"], response.json()["end"]) == (day, day)
    # No offer or affiliate has such an id: an empty report, not an error.
    for query in ({"offer_id": str(ID_MAX)}, {"affiliate_id": str(ID_MAX)}, {"affiliate_id": "0"}):
        response = _api("get", "/api/v1/reports", key, group_by="offer", **query)
        assert response.status_code == 200
        assert (response.json()["rows"], response.json()["totals"]["leads"]) == ([], 0)


# --- the API: bodies ---------------------------------------------------------------------------

BUYER = {"name": "Bounded", "vertical": "insurance", "price_minor": 3000, "method": "pull",
         "field_map": {"mail": "{email}"}}  # fmt: skip
OFFER = {"name": "Bounded", "revenue_minor": 2500, "payout_minor": 1800,
         "landing_url": "https://lp.example.com/?cid={click_id}"}  # fmt: skip
RETURN_PATH = "/api/v1/leads/15363614513358822204048932864/return"  # the fuzzer's


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "problems"),
    [
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "offer_ids": [1, BIG]},
         [(LE, "offer_ids.1")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "offer_ids": [0]},
         [(GE, "offer_ids.0")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "price_minor": BIG},
         [(LE, "price_minor")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "price_minor": MINOR_MAX + 1},
         [(LE, "price_minor")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "price_minor": -1},
         [(GE, "price_minor")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "priority": BIG}, [(LE, "priority")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "priority": 2**31}, [(LE, "priority")]),
        ("advertiser", "post", "/api/v1/buyers", {**BUYER, "credit_limit_minor": BIG},
         [(LE, "credit_limit_minor")]),
        ("advertiser", "post", "/api/v1/buyers",
         {**BUYER, "weight": 2**31, "pause_after_failures": BIG, "return_window_days": 366,
          "auto_accept_returns_bp": 10_001, "ping_timeout_ms": BIG},
         [(LE, "weight"), (LE, "ping_timeout_ms"), (LE, "pause_after_failures"),
          (LE, "return_window_days"), (LE, "auto_accept_returns_bp")]),
        ("network", "post", "/api/v1/buyers", {**BUYER, "advertiser_id": BIG},
         [(LE, "advertiser_id")]),
        ("advertiser", "post", "/api/v1/offers", {**OFFER, "revenue_minor": BIG},
         [(LE, "revenue_minor")]),
        ("advertiser", "post", "/api/v1/offers", {**OFFER, "payout_minor": BIG},
         [(LE, "payout_minor")]),
        ("advertiser", "post", "/api/v1/offers", {**OFFER, "fallback_offer_id": BIG},
         [(LE, "fallback_offer_id")]),
        ("advertiser", "post", "/api/v1/offers",
         {**OFFER, "fields": [{"key": "email", "type": "email", "max_length": BIG}]},
         [(LE, "fields.0.max_length")]),
        ("network", "post", "/api/v1/offers", {**OFFER, "advertiser_id": BIG},
         [(LE, "advertiser_id")]),
        ("advertiser", "post", RETURN_PATH, {"reason": "bad_phone"}, [(LE, "lead_id")]),
        ("affiliate", "post", "/api/v1/leads", {"offer_id": BIG, "fields": {}},
         [(LE, "offer_id")]),
        ("affiliate", "post", "/api/v1/leads",
         {"offer_id": 1, "fields": {}, "consent": {"text": "Yes", "given_at": "0001-01-01T00:00Z"}},
         [(GE, "consent.given_at")]),
        ("affiliate", "post", "/api/v1/leads",
         {"offer_id": 1, "fields": {}, "consent": {"text": "Yes", "given_at": "9999-12-31T23:59Z"}},
         [("less_than", "consent.given_at")]),
        ("affiliate", "post", "/api/v1/ping", {"offer_id": BIG, "fields": {}}, [(LE, "offer_id")]),
        ("affiliate", "post", "/api/v1/postbacks",
         {"event": "lead_approved", "url_template": "https://t.example.com/", "offer_id": BIG},
         [(LE, "offer_id")]),
        ("affiliate", "delete", f"/api/v1/postbacks/{BIG}", None, [(LE, "postback_id")]),
        ("affiliate", "post", f"/api/v1/offers/{BIG}/links", {}, [(LE, "offer_id")]),
        ("advertiser", "put", f"/api/v1/offers/{BIG}/rules", {"rules": {}}, [(LE, "offer_id")]),
        ("advertiser", "post", f"/api/v1/offers/{BIG}/rules/dry-run", {"rules": {}},
         [(LE, "offer_id")]),
        ("advertiser", "patch", f"/api/v1/buyers/{BIG}", {}, [(LE, "buyer_id")]),
        ("advertiser", "post", f"/api/v1/buyers/{BIG}/secrets", None, [(LE, "buyer_id")]),
        ("advertiser", "delete", f"/api/v1/buyers/{BIG}/secrets/abc", None, [(LE, "buyer_id")]),
    ],
)  # fmt: skip
def test_a_body_or_path_value_out_of_range_is_422_and_stores_nothing(
    request, network, advertiser, affiliate, who, method, path, body, problems
):
    key = bearer(request.getfixturevalue(who))
    before = _stored()
    response = _api(method, path, key, body)
    assert response.status_code == 422, response.content
    assert _problems(response) == problems
    assert _stored() == before


def test_a_change_out_of_range_changes_nothing(advertiser):
    key = bearer(advertiser)
    created = _api("post", "/api/v1/buyers", key, BUYER)
    assert created.status_code == 201, created.content
    buyer_id = created.json()["id"]
    refused = _api("patch", f"/api/v1/buyers/{buyer_id}", key,
                   {"weight": BIG, "offer_ids": [BIG], "price_minor": 1})  # fmt: skip
    assert refused.status_code == 422
    assert _problems(refused) == [(LE, "offer_ids.0"), (LE, "weight")]
    buyer = Buyer.objects.get(pk=buyer_id)
    assert (buyer.weight, buyer.price_minor, list(buyer.offers.all())) == (1, 3000, [])


def test_the_largest_values_the_columns_hold_are_stored(network, advertiser):
    key = bearer(advertiser)
    top = {"price_minor": MINOR_MAX, "credit_limit_minor": MINOR_MAX, "priority": INT32_MAX,
           "weight": INT32_MAX, "pause_after_failures": INT32_MAX}  # fmt: skip
    created = _api("post", "/api/v1/buyers", key, {**BUYER, **top})
    assert created.status_code == 201, created.content
    buyer = Buyer.objects.get(pk=created.json()["id"])
    assert {name: getattr(buyer, name) for name in top} == top
    offer = _api("post", "/api/v1/offers", key,
                 {**OFFER, "revenue_minor": MINOR_MAX, "payout_minor": MINOR_MAX})  # fmt: skip
    assert offer.status_code == 201, offer.content
    assert Offer.objects.filter(pk=offer.json()["id"], revenue_minor=MINOR_MAX).exists()


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("advertiser", "post", f"/api/v1/leads/{ID_MAX}/return", {"reason": "bad_phone"}),
        ("affiliate", "post", "/api/v1/leads", {"offer_id": ID_MAX, "fields": {}}),
        ("affiliate", "post", "/api/v1/postbacks",
         {"event": "lead_approved", "url_template": "https://t.example.com/", "offer_id": ID_MAX}),
        ("affiliate", "delete", f"/api/v1/postbacks/{ID_MAX}", None),
        ("affiliate", "post", f"/api/v1/offers/{ID_MAX}/links", {}),
        ("advertiser", "patch", f"/api/v1/buyers/{ID_MAX}", {}),
    ],
)  # fmt: skip
def test_the_largest_id_in_a_write_is_not_found_and_stores_nothing(
    request, advertiser, affiliate, who, method, path, body
):
    key = bearer(request.getfixturevalue(who))
    before = _stored()
    response = _api(method, path, key, body)
    assert response.status_code == 404, response.content
    assert _stored() == before


def test_the_openapi_document_shows_the_bounds(db):
    doc = Client().get("/api/v1/openapi.json").json()

    def param(path: str, method: str, name: str) -> dict[str, Any]:
        found = next(p for p in doc["paths"][path][method]["parameters"] if p["name"] == name)
        return found["schema"]

    assert param("/api/v1/leads/{lead_id}/return", "post", "lead_id") == {
        "maximum": ID_MAX, "minimum": 1, "title": "Lead Id", "type": "integer"
    }  # fmt: skip
    assert param("/api/v1/reports", "get", "offer_id")["anyOf"][0] == {
        "maximum": ID_MAX, "minimum": 1, "type": "integer"
    }  # fmt: skip
    day = param("/api/v1/reports/summary", "get", "end")["anyOf"][0]
    assert (day["format"], day["formatMinimum"], day["formatMaximum"]) == (
        "date", "2000-01-01", "2100-12-31"
    )  # fmt: skip
    buyer = doc["components"]["schemas"]["BuyerIn"]["properties"]
    assert buyer["offer_ids"]["anyOf"][0]["items"] == {
        "maximum": ID_MAX, "minimum": 1, "type": "integer"
    }  # fmt: skip
    bounds = {
        name: (buyer[name]["anyOf"][0]["minimum"], buyer[name]["anyOf"][0]["maximum"])
        for name in ("price_minor", "credit_limit_minor", "priority", "weight",
                     "pause_after_failures", "ping_timeout_ms", "return_window_days",
                     "auto_accept_returns_bp")
    }  # fmt: skip
    assert bounds == {
        "price_minor": (0, MINOR_MAX), "credit_limit_minor": (0, MINOR_MAX),
        "priority": (1, INT32_MAX), "weight": (1, INT32_MAX),
        "pause_after_failures": (1, INT32_MAX), "ping_timeout_ms": (50, 10_000),
        "return_window_days": (0, 365), "auto_accept_returns_bp": (0, 10_000),
    }  # fmt: skip
    offer = doc["components"]["schemas"]["OfferIn"]["properties"]
    assert (offer["revenue_minor"]["minimum"], offer["revenue_minor"]["maximum"]) == (0, MINOR_MAX)


# --- pages and exports ---------------------------------------------------------------------------

PAGES = ["/portal/", "/portal/reports/", "/portal/quality/", "/portal/attribution/"]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"end": "0001-01-01"}, [("end", DAY)]),
        ({"start": "9999-12-30", "end": "9999-12-31"}, [("start", DAY), ("end", DAY)]),
        ({"start": "1999-12-31"}, [("start", DAY)]),
        ({"end": "2101-01-01"}, [("end", DAY)]),
    ],
)
def test_a_page_filter_out_of_range_shows_the_form_error(network, page, query, errors):
    client = logged_in(network)
    client.raise_request_exception = False
    response = client.get(page, query)
    assert response.status_code == 422
    assert {n: [str(e) for e in v] for n, v in response.context["form"].errors.items()} == {
        name: [text] for name, text in errors
    }
    html = response.content.decode()
    for name, text in errors:
        if page == "/portal/reports/":
            assert f'<li class="error" data-code="{name}">{name.capitalize()}: {text}</li>' in html
        else:
            assert f'<li class="error" data-field="{name}">{name.capitalize()}: {text}</li>' in html


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_an_export_out_of_range_is_422_with_the_reason(network, extension):
    client = logged_in(network)
    client.raise_request_exception = False
    path = f"/portal/reports/export.{extension}"
    response = client.get(path, {"end": "0001-01-01"})
    assert (response.status_code, response.content.decode()) == (422, f"end: {DAY}\n")
    response = client.get(path, {"start": "9999-12-30", "end": "9999-12-31"})
    assert (response.status_code, response.content.decode()) == (
        422, f"start: {DAY}\nend: {DAY}\n"
    )  # fmt: skip


@pytest.mark.parametrize("page", [*PAGES, "/portal/reports/export.csv"])
def test_the_first_and_last_days_open_every_page(network, page):
    client = logged_in(network)
    for day in ("2000-01-01", "2100-12-31"):
        assert client.get(page, {"start": day, "end": day}).status_code == 200, (page, day)


def test_a_typed_affiliate_id_out_of_range_is_the_forms_error(advertiser):
    client = logged_in(advertiser)
    response = client.get("/portal/reports/", {"affiliate": HUGE})
    assert response.status_code == 422
    assert response.context["form"].errors == {
        "affiliate": [f"Ensure this value is less than or equal to {ID_MAX}."]
    }
    export = client.get("/portal/reports/export.csv", {"affiliate": HUGE})
    assert (export.status_code, export.content.decode()) == (
        422, f"affiliate: Ensure this value is less than or equal to {ID_MAX}.\n"
    )  # fmt: skip
    assert client.get("/portal/reports/", {"affiliate": str(ID_MAX)}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/portal/offers/{BIG}/", f"/portal/offers/{HUGE}/", f"/portal/offers/{ID_MAX}/",
        "/portal/offers/0/", f"/f/{HUGE}/", f"/f/{BIG}/thanks", f"/f/{ID_MAX}/embed.js",
        f"/portal/buyers/{BIG}/", f"/portal/buyers/{ID_MAX}/edit", f"/portal/invoices/{BIG}/",
        f"/portal/invoices/{BIG}.pdf", f"/portal/payouts/{BIG}/", f"/portal/payouts/{HUGE}.csv",
        f"/portal/statements/{BIG}/", f"/portal/statements/{ID_MAX}/",
    ],
)  # fmt: skip
def test_an_id_in_a_page_url_that_no_row_can_have_is_404(network, path):
    client = logged_in(network)
    client.raise_request_exception = False
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    ("who", "path", "data"),
    [
        ("network", f"/portal/leads/{BIG}/review", {"decision": "approve"}),
        ("network", f"/portal/leads/{HUGE}/take-back", {"reason": "x"}),
        ("affiliate", f"/portal/postbacks/{BIG}/delete", {}),
        ("network", f"/portal/access/{BIG}", {"decision": "approve"}),
        ("network", f"/portal/switch/{BIG}", {}),
        ("affiliate", f"/portal/offers/{BIG}/apply", {}),
        ("affiliate", f"/portal/offers/{BIG}/links", {}),
        ("network", f"/portal/buyer-returns/{BIG}/review", {"decision": "accept"}),
        ("network", "/portal/api-keys/", {"revoke": HUGE}),
        ("network", "/portal/api-keys/", {"revoke": "²"}),
    ],
)
def test_a_posted_id_that_no_row_can_have_is_404_and_changes_nothing(request, who, path, data):
    client = logged_in(request.getfixturevalue(who))
    client.raise_request_exception = False
    before = _stored()
    assert client.post(path, data).status_code == 404
    assert _stored() == before


def test_ticked_leads_out_of_range_are_left_out(network):
    client = logged_in(network)
    response = client.post(
        "/portal/leads/review", {"decision": "approve", "lead": [HUGE, str(BIG), "²"]}, follow=True
    )
    assert response.status_code == 200
    assert "Tick the leads to decide." in response.content.decode()


BUYER_FORM = {
    "name": "Page buyer", "vertical": "insurance", "price": "30.50", "currency": "USD",
    "priority": "10", "weight": "1", "timezone": "UTC", "method": "pull",
    "field_map": '{"mail": "{email}"}', "ping_timeout_ms": "1000",
    "pause_after_failures": "20", "return_window_days": "7", "auto_accept_returns_bp": "0",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"priority": str(BIG)}, "priority", f"A whole number from 1 to {INT32_MAX}."),
        ({"weight": str(2**31)}, "weight", f"A whole number from 1 to {INT32_MAX}."),
        ({"pause_after_failures": HUGE}, "pause_after_failures",
         f"A whole number from 1 to {INT32_MAX}."),
        ({"ping_timeout_ms": HUGE}, "ping_timeout_ms", "50 to 10000 ms."),
        ({"return_window_days": HUGE}, "return_window_days", "A whole number from 0 to 365."),
        ({"price": "10000000000.01"}, "price", "The amount is out of range."),
        ({"credit_limit": "1e20"}, "credit_limit", "The amount is out of range."),
        ({"offers": [HUGE]}, "offers", f"“{HUGE}” is not a valid value."),
    ],
)  # fmt: skip
def test_the_buyer_form_shows_a_value_out_of_range_on_its_field(
    other_advertiser, changes, field, text
):
    client = logged_in(other_advertiser)
    before = _stored()
    page = client.post("/portal/buyers/new", {**BUYER_FORM, **changes})
    assert page.status_code == 200
    assert f'data-testid="error-{field}">{text}</div>' in page.content.decode()
    assert _stored() == before


def test_the_buyer_pages_refuse_ids_and_caps_out_of_range(other_advertiser):
    client = logged_in(other_advertiser)
    client.raise_request_exception = False
    assert client.post("/portal/buyers/new", BUYER_FORM).status_code == 302
    buyer = Buyer.objects.get()
    page = f"/portal/buyers/{buyer.pk}/"
    before = _stored()
    assert client.post(page, {"resend": HUGE}).status_code == 404
    assert client.post(f"{page}returns", {"lead": HUGE, "reason": "x"}).status_code == 404
    refused = client.post(f"{page}caps", {"period": "day", "max_leads": str(2**31)}, follow=True)
    assert f"A whole number from 0 to {INT32_MAX}." in refused.content.decode()
    refused = client.post(f"{page}caps", {"period": "day", "max_spend": "1e15"}, follow=True)
    assert "Refused: the spend is out of range." in refused.content.decode()
    assert _stored() == before
    client.post(f"{page}caps", {"period": "day", "max_leads": str(INT32_MAX)})
    assert list(buyer.caps.values_list("max_leads", flat=True)) == [INT32_MAX]


def test_money_pages_refuse_amounts_and_days_out_of_range(network, advertiser):
    client = logged_in(network)
    before = _stored()
    paid = client.post(
        "/portal/money/payments",
        {"organization": advertiser.pk, "currency": "USD", "amount": "10000000000.01",
         "reference": "wire 1"},
        follow=True,
    )  # fmt: skip
    assert "The amount is out of range." in paid.content.decode()
    invoiced = client.post(
        "/portal/invoices/",
        {"advertiser": advertiser.pk, "currency": "USD", "start": "0001-01-01",
         "end": "9999-12-31"},
        follow=True,
    )  # fmt: skip
    assert "Refused: * start\n  * A day from 2000-01-01 to 2100-12-31.\n* end\n  * A day from" in (
        invoiced.content.decode()
    )
    run = client.post("/portal/payouts/", {"period_end": "9999-12-31"}, follow=True)
    assert (
        "Refused: give the period&#x27;s last day as YYYY-MM-DD, 2000-01-01 to 2100-12-31."
        in run.content.decode()
    )
    assert _stored() == before


def test_an_organization_the_user_belongs_to_is_still_switched_to(network: Organization):
    # The id converter changes nothing for ids in range.
    client = logged_in(network)
    assert client.post(f"/portal/switch/{network.pk}").status_code == 302
