"""Background sends to buyers. Tasks take ids and may run twice safely."""

from __future__ import annotations

import logging

from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def delivery_send(delivery_id: int) -> str:
    """One try of a delivery; when it must be tried again, queue this task for then."""
    from leadrelay.distribution.delivery import delivery_attempt  # it imports us

    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_at is not None:
        if delivery_send.get_backend().supports_defer:
            delivery_send.using(run_after=outcome.retry_at).enqueue(delivery_id)
        else:  # the immediate backend: the periodic sweep sends it when due
            logger.info("delivery %s is due again at %s", delivery_id, outcome.retry_at)
    return outcome.status


@task()
def lead_distribute_task(lead_id: int) -> int:
    from leadrelay.distribution.delivery import lead_distribute

    return len(lead_distribute(lead_id=lead_id))
