"""From a lead posted to a request on the affiliate's tracker, through the task queue."""

from typing import Any

import pytest

from leadrelay.leads.models import LeadSource, LeadStatus
from leadrelay.leads.services import lead_intake, lead_review_decide
from leadrelay.offers.services import FieldSpec
from leadrelay.postbacks.models import PostbackDelivery, PostbackEvent
from leadrelay.postbacks.services import affiliate_postback_create
from tests.factories import DEFAULT_FIELDS, approve, make_offer

FIELDS = {"first_name": "Ana", "email": "ana@example.com"}


@pytest.fixture
def immediate_tasks(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def postbacks_for_every_event(tracker, affiliate):
    for event in PostbackEvent.values:
        affiliate_postback_create(
            affiliate=affiliate,
            event=event,
            url_template=tracker.url + f"/{event}?lead={{lead_id}}&st={{status}}&p={{payout}}",
        )


def test_an_approved_lead_calls_the_tracker_after_commit(
    immediate_tasks, django_capture_on_commit_callbacks, tracker, offer, affiliate
):
    postbacks_for_every_event(tracker, affiliate)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lead = lead_intake(
            offer_id=offer.pk, fields=FIELDS, source=LeadSource.API, affiliate=affiliate
        )
        assert tracker.requests == []  # nothing leaves before the lead is committed
    assert lead.status == LeadStatus.APPROVED
    assert len(callbacks) == 2
    assert [r.path for r in tracker.requests] == [
        f"/lead_accepted?lead={lead.pk}&st=pending_review&p=0.00",
        f"/lead_approved?lead={lead.pk}&st=approved&p=18.00",
    ]
    assert list(
        PostbackDelivery.objects.order_by("pk").values_list("event", "status", "attempts")
    ) == [
        ("lead_accepted", "sent", 1),
        ("lead_approved", "sent", 1),
    ]


def test_review_rejection_duplicates_and_intake_rejection(
    immediate_tasks, django_capture_on_commit_callbacks, tracker, advertiser, affiliate
):
    offer = make_offer(advertiser, review_mode="manual")
    approve(offer, affiliate)
    postbacks_for_every_event(tracker, affiliate)
    with django_capture_on_commit_callbacks(execute=True):
        held = lead_intake(
            offer_id=offer.pk, fields=FIELDS, source=LeadSource.API, affiliate=affiliate
        )
    with django_capture_on_commit_callbacks(execute=True):
        duplicate = lead_intake(
            offer_id=offer.pk, fields=FIELDS, source=LeadSource.API, affiliate=affiliate
        )
    with django_capture_on_commit_callbacks(execute=True):
        lead_review_decide(lead_id=held.pk, approve=False, actor=None, reason="bad_phone")
    assert (held.status, duplicate.status) == ("pending_review", "duplicate")
    assert [r.path for r in tracker.requests] == [
        f"/lead_accepted?lead={held.pk}&st=pending_review&p=0.00",
        f"/lead_rejected?lead={held.pk}&st=rejected&p=0.00",
    ]


def test_a_lead_rejected_at_intake_fires_lead_rejected_only(
    immediate_tasks, django_capture_on_commit_callbacks, tracker, advertiser, affiliate
):
    offer = make_offer(
        advertiser,
        fields=[
            *DEFAULT_FIELDS,
            FieldSpec("owner", "choice", choices=("yes", "no"), qualifying_choices=("yes",)),
        ],
    )
    approve(offer, affiliate)
    postbacks_for_every_event(tracker, affiliate)
    with django_capture_on_commit_callbacks(execute=True):
        lead = lead_intake(
            offer_id=offer.pk,
            fields={**FIELDS, "owner": "no"},
            source=LeadSource.API,
            affiliate=affiliate,
        )
    assert lead.status == LeadStatus.REJECTED
    assert [r.path for r in tracker.requests] == [
        f"/lead_rejected?lead={lead.pk}&st=rejected&p=0.00"
    ]


def test_a_lead_waits_in_the_queue_until_the_worker_runs(
    settings, django_capture_on_commit_callbacks, tracker, offer, affiliate
):
    """The default database backend: intake only queues; the worker's run sends."""
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
    }
    affiliate_postback_create(
        affiliate=affiliate,
        event=PostbackEvent.LEAD_APPROVED,
        url_template=tracker.url + "/pb?lead={lead_id}",
    )
    with django_capture_on_commit_callbacks(execute=True):
        lead = lead_intake(
            offer_id=offer.pk, fields=FIELDS, source=LeadSource.API, affiliate=affiliate
        )
    [queued] = DBTaskResult.objects.all()
    assert tracker.requests == []
    queued.task.call(*queued.args_kwargs["args"])  # what the worker does
    assert [r.path for r in tracker.requests] == [f"/pb?lead={lead.pk}"]
    assert PostbackDelivery.objects.get().status == "sent"
