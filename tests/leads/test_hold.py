import datetime as dt
import json
import logging

import time_machine
from django.test import Client

from leadrelay.core.models import SetAside, SetAsideKind
from leadrelay.leads.hold import leads_hold_release
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.returns import lead_reverse
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.checks import ledger_problems
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.selectors import balances_for, trial_balance
from leadrelay.offers.models import Offer
from leadrelay.reporting.rollups import rollup_problems
from tests.factories import member

START = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)


def _balances(org):
    return {b.role: b.amount_minor for b in balances_for(organization=org)}


def test_a_held_payout_becomes_available_when_the_hold_ends(offer, affiliate, advertiser):
    Offer.objects.filter(pk=offer.pk).update(hold_days=14)
    with time_machine.travel(START, tick=False):
        lead = lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "A", "email": "hold@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
    assert lead.payable_at == START + dt.timedelta(days=14)
    assert _balances(affiliate) == {"affiliate_payable_pending": 1800}
    assert _balances(advertiser) == {"advertiser_receivable": 2500}  # billed at once

    assert leads_hold_release(now=START + dt.timedelta(days=13, hours=23)) == 0
    assert leads_hold_release(now=START + dt.timedelta(days=14)) == 1
    assert _balances(affiliate) == {"affiliate_payable": 1800, "affiliate_payable_pending": 0}
    assert leads_hold_release(now=START + dt.timedelta(days=30)) == 0  # once only
    assert Transaction.objects.filter(kind="hold_released").count() == 1
    assert Lead.objects.get().released_at is not None
    assert trial_balance().ok


def test_without_a_hold_the_payout_is_available_at_once(offer, affiliate):
    lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": "now@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    assert _balances(affiliate) == {"affiliate_payable": 1800}
    assert Lead.objects.get().payable_at is None
    assert leads_hold_release() == 0


def test_reports_count_held_payouts_as_payout(network, offer, affiliate):
    from leadrelay.reporting.selectors import dashboard_report

    Offer.objects.filter(pk=offer.pk).update(hold_days=7)
    lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": "r@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
    )
    today = dt.datetime.now(dt.UTC).date()
    money = dashboard_report(organization=network, start=today, end=today).totals.money["USD"]
    assert (money.revenue_minor, money.payout_minor) == (2500, 1800)


def _held_lead(offer, affiliate, n, at):
    with time_machine.travel(at, tick=False):
        return lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "A", "email": f"held{n}@example.com"},
            source=LeadSource.API,
            affiliate=affiliate,
        )


def _set_aside_open():
    return Client().get("/healthz").json()["set_aside"]


def test_a_lead_whose_release_fails_holds_back_no_other_and_is_released_once_fixed(
    offer, affiliate, caplog
):
    Offer.objects.filter(pk=offer.pk).update(hold_days=14)
    broken = _held_lead(offer, affiliate, 1, START)
    fine = _held_lead(offer, affiliate, 2, START + dt.timedelta(hours=1))
    # Its payout is no longer what its approval put in pending (changed by hand, say): the
    # ledger refuses to take more out of the pending account than it holds.
    Lead.objects.filter(pk=broken.pk).update(payout_minor=1_000_000)
    after = START + dt.timedelta(days=15)

    with caplog.at_level(logging.ERROR):
        assert leads_hold_release(now=after) == 1  # the lead after the broken one
    released = Transaction.objects.filter(kind="hold_released")
    assert list(released.values_list("lead", flat=True)) == [fine.pk]
    assert _balances(affiliate) == {"affiliate_payable": 1800, "affiliate_payable_pending": 1800}
    failed = SetAside.objects.get()
    assert (failed.kind, failed.key, failed.attempts, failed.resolved_at) == (
        "lead_hold",
        f"lead:{broken.pk}",
        1,
        None,
    )
    assert failed.error == (
        f"InsufficientBalance: {affiliate.name} has 3600 USD minor units in affiliate payable "
        "(in hold); 1000000 were asked for."
    )
    assert json.loads(failed.data) == {
        "lead_id": broken.pk,
        "offer_id": offer.pk,
        "affiliate_id": affiliate.pk,
        "currency": "USD",
        "payout_minor": 1_000_000,
        "payable_at": "2026-04-15T12:00:00Z",
    }
    assert [r.getMessage() for r in caplog.records] == [
        f"lead_hold lead:{broken.pk} set aside: {failed.error}"
    ]
    assert _set_aside_open() == dict.fromkeys(SetAsideKind.values, 0) | {"lead_hold": 1}

    assert leads_hold_release(now=after) == 0  # still refused: tried again, counted
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at) == (2, None)
    assert "has 1800 USD" in failed.error

    Lead.objects.filter(pk=broken.pk).update(payout_minor=1800)  # fixed
    assert leads_hold_release(now=after) == 1
    assert leads_hold_release(now=after) == 0  # and nothing twice
    assert sorted(released.values_list("lead", flat=True)) == sorted([broken.pk, fine.pk])
    assert _balances(affiliate) == {"affiliate_payable": 3600, "affiliate_payable_pending": 0}
    assert list(Lead.objects.filter(released_at=after).order_by("pk")) == [broken, fine]
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at is not None) == (2, True)
    assert _set_aside_open() == dict.fromkeys(SetAsideKind.values, 0)
    assert ledger_problems() == []
    assert rollup_problems() == []


def test_a_set_aside_lead_taken_back_meanwhile_is_resolved_and_nothing_released(
    offer, affiliate, network
):
    Offer.objects.filter(pk=offer.pk).update(hold_days=14)
    lead = _held_lead(offer, affiliate, 1, START)
    Lead.objects.filter(pk=lead.pk).update(payout_minor=1_000_000)
    after = START + dt.timedelta(days=15)
    assert leads_hold_release(now=after) == 0
    assert SetAside.objects.get().resolved_at is None

    # No longer due, so no longer in the sweep's list; its set-aside row is visited anyway.
    lead_reverse(lead_id=lead.pk, reason="fraud found", staff=member(network))
    assert leads_hold_release(now=after) == 0
    failed = SetAside.objects.get()
    assert (failed.attempts, failed.resolved_at is not None) == (1, True)
    assert not Transaction.objects.filter(kind="hold_released").exists()
    assert _balances(affiliate) == {"affiliate_payable_pending": 0}
    assert ledger_problems() == []
    assert rollup_problems() == []
