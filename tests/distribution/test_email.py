"""Leads delivered by email to a real local SMTP server."""

import pytest

from leadrelay.core.errors import Invalid
from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import DeliveryAttempt
from tests.distribution.conftest import make_buyer, new_lead
from tests.smtp import smtp_inbox


@pytest.fixture
def inbox(settings):
    with smtp_inbox(settings) as box:
        yield box


def _email_buyer(advertiser, **overrides):
    return make_buyer(
        advertiser,
        "",
        method="email",
        email_to="intake@buyer.example, backup@buyer.example",
        email_subject="New auto lead #{lead_id}: {first_name}",
        **overrides,
    )


def test_a_lead_is_mailed_with_its_mapped_fields(routed, affiliate, other_advertiser, inbox):
    _email_buyer(other_advertiser)
    lead = new_lead(routed, affiliate, email="ada@example.com")
    (delivery,) = lead_distribute(lead_id=lead.pk)
    assert delivery_attempt(delivery_id=delivery.pk).status == "delivered"
    (message,) = inbox.messages
    assert message["Subject"] == f"New auto lead #{lead.pk}: Ada"
    assert message["X-Leadrelay-Lead"] == str(lead.pk)
    assert inbox.envelopes[0].rcpt_tos == ["intake@buyer.example", "backup@buyer.example"]
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert body == "fname: Ada\nmail: ada@example.com\nsource: leadrelay\n"


def test_a_refused_mail_fails_and_a_missing_server_is_retried(
    routed, affiliate, other_advertiser, inbox, settings
):
    _email_buyer(other_advertiser)
    inbox.refuse = "550 No such user"
    (delivery,) = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    assert delivery_attempt(delivery_id=delivery.pk).status == "failed"
    assert "550" in DeliveryAttempt.objects.get(delivery=delivery).error

    settings.EMAIL_PORT = 1  # nothing listens there
    (other,) = lead_distribute(lead_id=new_lead(routed, affiliate).pk)
    outcome = delivery_attempt(delivery_id=other.pk)
    assert outcome.status == "pending" and outcome.retry_at is not None


def test_email_buyers_need_addresses_and_no_answer_rules(routed, other_advertiser):
    with pytest.raises(Invalid) as exc:
        make_buyer(
            other_advertiser,
            "https://example.com/",
            method="email",
            email_to="not-an-address",
            accept_regex="OK",
        )
    codes = {(p.code, p.field) for p in exc.value.problems}
    assert ("invalid_email", "email_to") in codes
    assert ("not_for_email", "accept_regex") in codes
    assert ("not_for_email", "url") in codes
