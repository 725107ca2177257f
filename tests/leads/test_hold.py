import datetime as dt

import time_machine

from leadrelay.leads.hold import leads_hold_release
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.selectors import balances_for, trial_balance
from leadrelay.offers.models import Offer

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
