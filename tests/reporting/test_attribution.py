import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.reporting.attribution import UNIT, attribution_comparison, model_shares
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.conversions import postback_key_issue
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer, logged_in
from tests.factories import CHROME_UA, approve

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def test_each_model_splits_one_conversion():
    times = [T0, T0 + dt.timedelta(days=7), T0 + dt.timedelta(days=14)]
    shares = model_shares(times, converted_at=T0 + dt.timedelta(days=14))
    assert shares["last_click"] == [0, 0, UNIT]
    assert shares["first_click"] == [UNIT, 0, 0]
    assert shares["linear"] == [3334, 3333, 3333]
    # weights 1/4, 1/2, 1 of 1.75: 1428.57…, 2857.14…, 5714.28…
    assert shares["time_decay"] == [1429, 2857, 5714]


@given(
    st.lists(st.integers(min_value=0, max_value=90 * 24 * 3600), min_size=1, max_size=30),
)
def test_shares_always_add_up_to_one_conversion(offsets):
    times = sorted(T0 + dt.timedelta(seconds=s) for s in offsets)
    for model, shares in model_shares(times, converted_at=times[-1]).items():
        assert sum(shares) == UNIT, model
        assert all(s >= 0 for s in shares)


@pytest.fixture
def multi_click_conversion(network, advertiser, offer, affiliate, other_affiliate):
    """One visitor clicks affiliate's link, then other_affiliate's, and converts; another
    visitor clicks once and converts."""
    approve(offer, other_affiliate)
    first = tracking_link_create(offer=offer, affiliate=affiliate)
    second = tracking_link_create(offer=offer, affiliate=other_affiliate)
    key = postback_key_issue(advertiser=advertiser)
    browser = Client(HTTP_USER_AGENT=CHROME_UA)
    browser.get(f"/c/{first.code}")
    response = browser.get(f"/c/{second.code}")
    click_id = parse_qs(urlsplit(response["Location"]).query)["cid"][0]
    lone = Client(HTTP_USER_AGENT="Mozilla/5.0 other").get(f"/c/{first.code}")
    lone_id = parse_qs(urlsplit(lone["Location"]).query)["cid"][0]
    click_buffer.flush()
    assert Client().get("/postback", {"cid": click_id, "token": key.token}).status_code == 201
    assert Client().get("/postback", {"cid": lone_id, "token": key.token}).status_code == 201


def _today():
    today = dt.datetime.now(dt.UTC).date()
    return {"start": today - dt.timedelta(days=1), "end": today}


def test_the_network_compares_models_per_affiliate(
    network, affiliate, other_affiliate, multi_click_conversion
):
    report = attribution_comparison(organization=network, **_today())
    assert (report.conversions, report.single_click) == (1, 1)
    credit = {row.label: row.credit_bp for row in report.rows}
    assert credit[affiliate.name]["first_click"] == UNIT
    assert credit[affiliate.name]["last_click"] == 0
    assert credit[other_affiliate.name]["last_click"] == UNIT
    assert credit[affiliate.name]["linear"] == credit[other_affiliate.name]["linear"] == UNIT // 2
    page = logged_in(network).get("/portal/attribution/").content.decode()
    assert "1.00" in page and "0.50" in page and affiliate.name in page


def test_advertisers_see_sources_not_names_and_affiliates_see_nothing(
    advertiser, affiliate, multi_click_conversion
):
    body = Client().get("/api/v1/reports/attribution", **bearer(advertiser)).json()
    assert body["conversions"] == 1
    assert all(row["label"].startswith("Source #") for row in body["rows"])
    assert Client().get("/api/v1/reports/attribution", **bearer(affiliate)).status_code == 401
    assert logged_in(affiliate).get("/portal/attribution/").status_code == 403
