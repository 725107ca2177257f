import pytest
from django.core.management import call_command

from leadrelay.accounts.models import Role
from leadrelay.core.errors import Invalid, PermissionDenied
from leadrelay.ledger.models import Transaction
from leadrelay.ledger.selectors import balances_for
from leadrelay.ledger.services import ledger_adjustment_post
from tests.factories import member


def _balances(org):
    return {(b.role, b.currency): b.amount_minor for b in balances_for(organization=org)}


def test_staff_adjust_an_affiliate_and_an_advertiser_with_a_reason(network, affiliate, advertiser):
    staff = member(network, role=Role.MANAGER)
    txn = ledger_adjustment_post(
        organization=affiliate, currency="USD", amount_minor=500, reason="bonus for Q3", staff=staff
    )
    ledger_adjustment_post(
        organization=advertiser, currency="EUR", amount_minor=-1200, reason="late fee", staff=staff
    )
    assert (txn.kind, txn.memo, txn.created_by) == ("adjustment", "bonus for Q3", staff)
    assert _balances(affiliate) == {("affiliate_payable", "USD"): 500}
    assert _balances(advertiser) == {("advertiser_receivable", "EUR"): 1200}
    call_command("ledger", "check")  # still balances


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"reason": "  "}, "reason_required"),
        ({"currency": "XYZ"}, "invalid_currency"),
        ({"amount_minor": 0}, "invalid_amount"),
        ({"amount_minor": 1.5}, "invalid_amount"),
    ],
)
def test_bad_adjustments_are_refused_and_post_nothing(network, affiliate, kwargs, code):
    staff = member(network)
    args = {"currency": "USD", "amount_minor": 100, "reason": "fix", **kwargs}
    with pytest.raises(Invalid) as caught:
        ledger_adjustment_post(organization=affiliate, staff=staff, **args)
    assert caught.value.problems[0].code == code
    assert Transaction.objects.count() == 0


def test_only_network_owners_and_managers_adjust(network, advertiser, affiliate):
    for user in (member(advertiser), member(network, role=Role.VIEWER)):
        with pytest.raises(PermissionDenied):
            ledger_adjustment_post(
                organization=affiliate, currency="USD", amount_minor=100, reason="x", staff=user
            )
    assert Transaction.objects.count() == 0
