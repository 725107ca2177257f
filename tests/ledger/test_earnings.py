"""What clicks (CPC), conversions (CPA, RevShare) and volume tiers book."""

import datetime as dt
import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from leadrelay.core.models import SetAside, SetAsideKind
from leadrelay.leads.models import LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.checks import ledger_problems
from leadrelay.ledger.earnings import clicks_book, conversion_book, conversions_hold_release
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.selectors import advertiser_balances, affiliate_balances
from leadrelay.offers.models import Offer
from leadrelay.offers.payouts import payout_tier_set
from leadrelay.reporting.rollups import rollup_problems
from leadrelay.tracking.buffer import click_buffer
from leadrelay.tracking.conversions import postback_key_issue
from leadrelay.tracking.models import Click, Conversion
from leadrelay.tracking.services import tracking_link_create
from tests.factories import CHROME_UA, approve, make_offer

HOUR = dt.timedelta(hours=1)


def _aff(affiliate):
    b = {x.currency: x for x in affiliate_balances(organization=affiliate)}.get("USD")
    return (b.pending_minor, b.available_minor) if b else (0, 0)


def _owed(advertiser, currency="USD"):
    b = {x.currency: x for x in advertiser_balances(organization=advertiser)}.get(currency)
    return b.owed_minor if b else 0


def _set_aside_open():
    return Client().get("/healthz").json()["set_aside"]


def _click(link, ip="203.0.113.10", ua=CHROME_UA):
    response = Client().get(f"/c/{link.code}", HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)
    return parse_qs(urlsplit(response["Location"]).query).get("cid", [""])[0]


def test_cpc_clicks_are_booked_by_the_closed_hour_once(advertiser, affiliate):
    offer = make_offer(advertiser, payout_model="cpc", revenue_minor=40, payout_minor=25)
    approve(offer, affiliate)
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    start = timezone.now().replace(minute=10, second=0, microsecond=0) - 3 * HOUR
    with time_machine.travel(start, tick=False):
        for n in range(3):
            _click(link, ip=f"203.0.113.{n + 1}")
        _click(link, ip="203.0.113.1")  # the same visitor again: not unique
        _click(link, ua="Googlebot/2.1 (+http://www.google.com/bot.html)", ip="198.51.100.9")
    with time_machine.travel(start + HOUR, tick=False):
        _click(link, ip="203.0.113.50")
    click_buffer.flush()
    assert Click.objects.count() == 6

    with time_machine.travel(start + HOUR + dt.timedelta(minutes=20), tick=False):
        assert clicks_book() == 1  # the first hour is closed, the second still open
    assert _aff(affiliate) == (0, 75) and _owed(advertiser) == 120
    txn = Transaction.objects.get(kind="clicks")
    assert (txn.quantity, txn.offer, txn.affiliate) == (3, offer, affiliate)

    assert clicks_book() == 1  # later: the second hour
    assert clicks_book() == 0  # and nothing twice
    assert _aff(affiliate) == (0, 100) and _owed(advertiser) == 160


def test_an_offer_that_fails_to_book_holds_back_no_other_and_books_once_fixed(
    advertiser, affiliate, caplog
):
    broken = make_offer(advertiser, payout_model="cpc", revenue_minor=40, payout_minor=25)
    fine = make_offer(advertiser, payout_model="cpc", revenue_minor=40, payout_minor=25)
    start = timezone.now().replace(minute=10, second=0, microsecond=0) - 3 * HOUR
    for offer in (broken, fine):
        approve(offer, affiliate)
        link = tracking_link_create(offer=offer, affiliate=affiliate)
        with time_machine.travel(start, tick=False):
            _click(link, ip="203.0.113.1")
            _click(link, ip="203.0.113.2")
    click_buffer.flush()
    # Its price times its two clicks is beyond what a 64-bit amount holds: the ledger
    # refuses the entry (PostgreSQL: bigint out of range; SQLite: too large an integer).
    Offer.objects.filter(pk=broken.pk).update(revenue_minor=2**62)

    with caplog.at_level(logging.ERROR):
        assert clicks_book() == 1  # the offer after the broken one is booked
    assert list(Transaction.objects.filter(kind="clicks").values_list("offer", "quantity")) == [
        (fine.pk, 2)
    ]
    assert _aff(affiliate) == (0, 50) and _owed(advertiser) == 80
    failed = SetAside.objects.get()
    assert (failed.kind, failed.key, failed.attempts) == ("cpc", f"offer:{broken.pk}", 1)
    assert json.loads(failed.data)["offer_id"] == broken.pk
    assert [r.getMessage() for r in caplog.records] == [
        f"cpc offer:{broken.pk} set aside: {failed.error}"
    ]
    assert _set_aside_open() == dict.fromkeys(SetAsideKind.values, 0) | {"cpc": 1}

    assert clicks_book() == 0  # still broken: tried again, counted once
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at) == (2, None)

    Offer.objects.filter(pk=broken.pk).update(revenue_minor=40)  # fixed
    assert clicks_book() == 1
    assert clicks_book() == 0  # and nothing twice
    booked = Transaction.objects.filter(kind="clicks").order_by("offer")
    assert list(booked.values_list("offer", "quantity")) == [(broken.pk, 2), (fine.pk, 2)]
    assert _aff(affiliate) == (0, 100) and _owed(advertiser) == 160
    failed.refresh_from_db()
    assert failed.resolved_at is not None
    assert _set_aside_open() == dict.fromkeys(SetAsideKind.values, 0)
    assert rollup_problems() == []


def _postback_click(offer, affiliate):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    return _click(link)


@pytest.fixture
def key(advertiser):
    return postback_key_issue(advertiser=advertiser)


def test_a_cpa_conversion_books_the_offers_amounts_once(advertiser, affiliate, key):
    offer = make_offer(advertiser, payout_model="cpa", revenue_minor=9000, payout_minor=6000)
    approve(offer, affiliate, payout=6500)
    click_id = _postback_click(offer, affiliate)
    for _ in range(2):
        Client().get("/postback", {"click_id": click_id, "token": key.token, "txid": "T1"})
    conversion = Conversion.objects.get()
    assert (conversion.revenue_minor, conversion.payout_minor) == (9000, 6500)
    assert _aff(affiliate) == (0, 6500) and _owed(advertiser) == 9000
    assert Transaction.objects.filter(kind="conversion").count() == 1


def test_revshare_books_basis_points_of_the_reported_amount(advertiser, affiliate, key):
    offer = make_offer(
        advertiser,
        payout_model="revshare",
        revenue_minor=0,
        payout_minor=0,
        revenue_bps=3000,
        payout_bps=2000,
        hold_days=30,
    )
    approve(offer, affiliate)
    click_id = _postback_click(offer, affiliate)
    response = Client().get(
        "/postback", {"click_id": click_id, "token": key.token, "amount": "199.99", "txid": "S"}
    )
    assert response.status_code == 201, response.content
    # 30% of 199.99 is 59.997 → 59.99 billed; 20% is 39.998 → 39.99 earned, held 30 days.
    assert _owed(advertiser) == 5999
    assert _aff(affiliate) == (3999, 0)
    assert conversions_hold_release(now=timezone.now() + dt.timedelta(days=31)) == 1
    assert _aff(affiliate) == (0, 3999)


def test_a_pixel_conversion_books_when_the_server_confirms_and_reverses_when_rejected(
    advertiser, affiliate, key
):
    offer = make_offer(advertiser, payout_model="cpa", revenue_minor=9000, payout_minor=6000)
    approve(offer, affiliate)
    click_id = _postback_click(offer, affiliate)
    Client().get("/p/conversion.gif", {"click_id": click_id, "txid": "P"})
    assert _owed(advertiser) == 0  # a pixel alone is pending
    Client().get("/postback", {"click_id": click_id, "token": key.token, "txid": "P"})
    assert _owed(advertiser) == 9000 and _aff(affiliate) == (0, 6000)


def test_a_booked_conversion_set_rejected_is_reversed(advertiser, affiliate, key):
    offer = make_offer(advertiser, payout_model="cpa", revenue_minor=9000, payout_minor=6000)
    approve(offer, affiliate)
    click_id = _postback_click(offer, affiliate)
    Client().get("/postback", {"click_id": click_id, "token": key.token, "txid": "R"})
    conversion = Conversion.objects.get()
    conversion.status = "rejected"
    conversion.save()
    conversion_book(conversion)
    conversion_book(conversion)  # idempotent
    assert _owed(advertiser) == 0 and _aff(affiliate) == (0, 0)
    assert Transaction.objects.filter(kind="reversal").count() == 1


def _held_conversions(advertiser, affiliate, key, n):
    """`n` approved CPA conversions, 6000 each held 30 days, a minute apart."""
    offer = make_offer(
        advertiser, payout_model="cpa", revenue_minor=9000, payout_minor=6000, hold_days=30
    )
    approve(offer, affiliate)
    start = timezone.now() - dt.timedelta(days=40)
    for i in range(n):
        with time_machine.travel(start + i * dt.timedelta(minutes=1), tick=False):
            click_id = _postback_click(offer, affiliate)
            params = {"click_id": click_id, "token": key.token, "txid": f"H{i}"}
            assert Client().get("/postback", params).status_code == 201
    return offer, list(Conversion.objects.order_by("payable_at"))


def test_a_conversion_whose_release_fails_holds_back_no_other_and_is_released_once_fixed(
    advertiser, affiliate, key, caplog
):
    offer, (broken, fine) = _held_conversions(advertiser, affiliate, key, 2)
    assert _aff(affiliate) == (12000, 0)
    # Its payout is no longer what its booking put in pending (changed by hand, say): the
    # ledger refuses to take more out of the pending account than it holds.
    Conversion.objects.filter(pk=broken.pk).update(payout_minor=1_000_000)

    with caplog.at_level(logging.ERROR):
        assert conversions_hold_release() == 1  # the conversion after the broken one
    released = Transaction.objects.filter(kind="hold_released")
    assert list(released.values_list("external_id", flat=True)) == [
        f"conversion:{fine.pk}:released"
    ]
    assert _aff(affiliate) == (6000, 6000)
    failed = SetAside.objects.get()
    assert (failed.kind, failed.key, failed.attempts, failed.resolved_at) == (
        "conversion_hold",
        f"conversion:{broken.pk}",
        1,
        None,
    )
    assert failed.error == (
        f"InsufficientBalance: {affiliate.name} has 12000 USD minor units in affiliate payable "
        "(in hold); 1000000 were asked for."
    )
    data = json.loads(failed.data)
    assert {k: data[k] for k in ("conversion_id", "offer_id", "affiliate_id", "payout_minor")} == {
        "conversion_id": broken.pk,
        "offer_id": offer.pk,
        "affiliate_id": affiliate.pk,
        "payout_minor": 1_000_000,
    }
    assert [r.getMessage() for r in caplog.records] == [
        f"conversion_hold conversion:{broken.pk} set aside: {failed.error}"
    ]
    assert _set_aside_open() == dict.fromkeys(SetAsideKind.values, 0) | {"conversion_hold": 1}

    assert conversions_hold_release() == 0  # still refused: tried again, counted
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at) == (2, None)

    Conversion.objects.filter(pk=broken.pk).update(payout_minor=6000)  # fixed
    assert conversions_hold_release() == 1
    assert conversions_hold_release() == 0  # and nothing twice
    assert sorted(released.values_list("external_id", flat=True)) == sorted(
        [f"conversion:{broken.pk}:released", f"conversion:{fine.pk}:released"]
    )
    assert _aff(affiliate) == (0, 12000) and _owed(advertiser) == 18000
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at is not None) == (2, True)
    assert _set_aside_open() == dict.fromkeys(SetAsideKind.values, 0)
    assert ledger_problems() == []
    assert rollup_problems() == []


def test_a_set_aside_conversion_rejected_meanwhile_is_resolved_and_nothing_released(
    advertiser, affiliate, key
):
    _, (conversion,) = _held_conversions(advertiser, affiliate, key, 1)
    Conversion.objects.filter(pk=conversion.pk).update(payout_minor=1_000_000)
    assert conversions_hold_release() == 0
    assert SetAside.objects.get().resolved_at is None

    # Rejected (and so reversed): no longer in the job's list; its set-aside row is visited.
    Conversion.objects.filter(pk=conversion.pk).update(status="rejected")
    conversion_book(conversion)
    assert conversions_hold_release() == 0
    failed = SetAside.objects.get()
    assert (failed.attempts, failed.resolved_at is not None) == (1, True)
    assert not Transaction.objects.filter(kind="hold_released").exists()
    assert _aff(affiliate) == (0, 0) and _owed(advertiser) == 0
    assert ledger_problems() == []
    assert rollup_problems() == []


def test_a_cpl_offer_books_nothing_for_conversions(advertiser, affiliate, key, offer):
    click_id = _postback_click(offer, affiliate)
    Client().get("/postback", {"click_id": click_id, "token": key.token, "amount": "10"})
    assert Transaction.objects.count() == 0


def _approved_lead(offer, affiliate, n, at):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": f"tier{n}@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
        received_at=at,
    )


def test_volume_tiers_raise_the_payout_from_the_nth_lead_of_the_month(
    advertiser, affiliate, other_affiliate
):
    offer = make_offer(advertiser, payout_minor=1000, revenue_minor=3000)
    approve(offer, affiliate)
    approve(offer, other_affiliate, payout=1100)
    payout_tier_set(offer=offer, min_approved=3, payout_minor=1200)
    payout_tier_set(offer=offer, min_approved=5, payout_minor=1500)
    payout_tier_set(offer=offer, min_approved=2, payout_minor=2000, affiliate=other_affiliate)
    month = dt.datetime(2026, 10, 3, 12, tzinfo=dt.UTC)
    leads = [_approved_lead(offer, affiliate, n, month + dt.timedelta(hours=n)) for n in range(6)]
    assert [lead.payout_minor for lead in leads] == [1000, 1000, 1200, 1200, 1500, 1500]
    assert leads[0].payout_basis == "offer payout"
    assert leads[2].payout_basis == "offer tier: from lead 3 of the month (#3)"
    next_month = _approved_lead(offer, affiliate, 99, dt.datetime(2026, 11, 1, 1, tzinfo=dt.UTC))
    assert next_month.payout_minor == 1000  # the count starts again each month

    own = [
        _approved_lead(offer, other_affiliate, 10 + n, month + dt.timedelta(hours=n))
        for n in range(3)
    ]
    # Its own tiers replace the offer's; before them, its override applies.
    assert [lead.payout_minor for lead in own] == [1100, 2000, 2000]
    assert own[0].payout_basis == "affiliate override"


def test_bad_tiers_are_refused(advertiser):
    from leadrelay.core.errors import Invalid

    offer = make_offer(advertiser)
    with pytest.raises(Invalid) as exc:
        payout_tier_set(offer=offer, min_approved=0, payout_minor=-1)
    assert {p.code for p in exc.value.problems} == {"invalid_tier", "invalid_amount"}
