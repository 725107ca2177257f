"""Background sends of affiliate postbacks. Tasks take ids and may run twice safely."""

from __future__ import annotations

import logging
from datetime import datetime

from django_tasks import task

logger = logging.getLogger(__name__)


@task()
def postback_deliver(delivery_id: int) -> str:
    """One try of a delivery; when it must be tried again, queue this task for then."""
    from leadrelay.postbacks.services import postback_delivery_attempt  # services import us

    outcome = postback_delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_at is not None:
        postback_deliver_later(delivery_id=delivery_id, run_after=outcome.retry_at)
    return outcome.status


def postback_deliver_later(*, delivery_id: int, run_after: datetime) -> None:
    """Queue the next try for `run_after`. A backend that can't wait (the immediate one)
    leaves the delivery pending and due; `postback_deliveries_resume` sends it then."""
    if not postback_deliver.get_backend().supports_defer:
        logger.info("postback delivery %s is due again at %s", delivery_id, run_after)
        return
    postback_deliver.using(run_after=run_after).enqueue(delivery_id)
