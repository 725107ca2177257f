"""The click buffer: a click the database refuses never holds back anyone else's."""

import datetime as dt
import json
import logging

import pytest
from django.db import OperationalError, connection
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

import leadrelay.tracking.buffer as buffer
from leadrelay.core.models import SetAside, SetAsideKind
from leadrelay.reporting.models import Rollup
from leadrelay.reporting.rollups import rollup_problems
from leadrelay.tracking.buffer import CHUNK, click_buffer
from leadrelay.tracking.models import Click, TrackingLink
from leadrelay.tracking.services import click_record, tracking_link_create
from tests.factories import CHROME_UA, visitor


def _good_clicks(link: TrackingLink, n: int, start: dt.datetime, tag: str = "good") -> list[Click]:
    """`n` clicks of different visitors (all unique), a millisecond apart from `start`."""
    return [
        Click(
            click_id=f"{tag}-{i:04d}",
            link=link,
            offer_id=link.offer_id,
            affiliate_id=link.affiliate_id,
            created_at=start + dt.timedelta(milliseconds=i),
            ip="203.0.113.7",
            user_agent=CHROME_UA,
            visitor_id=f"{tag}-visitor-{i}",
            ip_ua_hash=f"{tag}-{i}".encode().hex()[:32],
            device="desktop",
            sub1="search",
        )
        for i in range(n)
    ]


def _counted(offer_id: int) -> tuple[int, int]:
    """(clicks, unique clicks) the offer's rollup cells hold, over all hours."""
    total = Rollup.objects.filter(offer_id=offer_id, dim="").aggregate(
        clicks=Sum("clicks"), unique=Sum("unique_clicks")
    )
    return total["clicks"] or 0, total["unique"] or 0


def _poison_link_deleted(offer, affiliate) -> str:
    """A click on a link deleted between the redirect and the flush: its foreign key fails
    when the chunk commits (checked at commit on both databases)."""
    doomed = tracking_link_create(offer=offer, affiliate=affiliate)
    outcome = click_record(code=doomed.code, visitor=visitor(ip="198.51.100.66"))
    doomed.delete()  # allowed: no click row points at it yet
    return outcome.click.click_id


def _poison_nul_in_sub1(offer, affiliate) -> str:
    """A row with a NUL in sub1, as `GET /c/<code>?sub1=%00` made before the redirect
    cleaned its query string (core/text.py): PostgreSQL text can't hold it (SQLite can)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores a NUL in text")
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    response = Client().get(f"/c/{link.code}?sub1=%00", REMOTE_ADDR="198.51.100.66")
    assert response.status_code == 302
    [click] = click_buffer._rows
    assert click.sub1 == ""  # the edge cleans it now; the writer must survive one anyway
    click.sub1 = "\x00"
    return click.click_id


# Transactional: each chunk commits on its own, as in the flush thread, so a foreign key
# checked at commit fails in the chunk that holds it.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("poison", "error"),
    [(_poison_link_deleted, "IntegrityError"), (_poison_nul_in_sub1, "DataError")],
    ids=["link-deleted", "nul-in-sub1"],
)
def test_one_poison_click_among_a_thousand_is_set_aside_and_the_rest_written(
    offer, affiliate, poison, error, caplog
):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    bad = poison(offer, affiliate)  # buffered now, so among the good ones by time
    for click in _good_clicks(link, 999, timezone.now() - dt.timedelta(milliseconds=500)):
        click_buffer.add(click)
    assert click_buffer.pending() == 1000

    with caplog.at_level(logging.WARNING):
        assert click_buffer.flush() == 999

    assert click_buffer.pending() == 0  # nothing stuck in line
    assert Click.objects.count() == 999
    assert not Click.objects.filter(click_id=bad).exists()
    assert _counted(offer.pk) == (999, 999)
    assert rollup_problems() == []
    kept = SetAside.objects.get()
    assert (kept.kind, kept.key, kept.attempts, kept.resolved_at) == ("click", bad, 1, None)
    assert kept.error.startswith(f"{error}: ")
    data = json.loads(kept.data)
    assert (data["click_id"], data["offer_id"], data["affiliate_id"]) == (
        bad,
        offer.pk,
        affiliate.pk,
    )
    if poison is _poison_nul_in_sub1:
        assert data["sub1"] == "\x00"  # kept exactly, for a replay
        assert "\x00" not in kept.data
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"click {bad} set aside: {kept.error}"]
    health = Client().get("/healthz")
    assert health.status_code == 200
    assert health.json()["set_aside"] == dict.fromkeys(SetAsideKind.values, 0) | {"click": 1}

    # The next flush goes through as usual.
    later = _good_clicks(link, 3, timezone.now(), tag="later")
    for click in later:
        click_buffer.add(click)
    assert click_buffer.flush() == 3
    assert Click.objects.count() == 1002
    assert _counted(offer.pk) == (1002, 1002)
    assert SetAside.objects.count() == 1


def test_an_outage_sets_nothing_aside_and_the_clicks_wait_for_the_next_flush(
    offer, affiliate, monkeypatch
):
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    for click in _good_clicks(link, 2 * CHUNK, timezone.now() - dt.timedelta(seconds=2)):
        click_buffer.add(click)
    write = buffer._clicks_write_chunk
    tried: list[int] = []

    def down_after_the_first_chunk(rows):
        tried.append(len(rows))
        if len(tried) > 1:
            raise OperationalError("server closed the connection unexpectedly")
        return write(rows)

    with monkeypatch.context() as patch:
        patch.setattr(buffer, "_clicks_write_chunk", down_after_the_first_chunk)
        assert click_buffer.flush() == CHUNK
    assert tried == [CHUNK, CHUNK]  # the failed chunk was not halved
    assert (Click.objects.count(), click_buffer.pending()) == (CHUNK, CHUNK)
    assert not SetAside.objects.exists()

    assert click_buffer.flush() == CHUNK  # the database is back
    assert (Click.objects.count(), click_buffer.pending()) == (2 * CHUNK, 0)
    assert _counted(link.offer_id) == (2 * CHUNK, 2 * CHUNK)
    assert rollup_problems() == []
    assert not SetAside.objects.exists()
