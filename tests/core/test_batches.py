"""Batched writes: halving finds the rows at fault; set-aside rows keep what can't be stored."""

import json

import pytest
from django.db import InterfaceError

from leadrelay.core.batches import (
    BatchInterrupted,
    batch_write,
    batch_write_each,
    row_set_aside,
    set_aside_resolve,
)
from leadrelay.core.models import SetAside, SetAsideKind
from leadrelay.core.selectors import set_aside_counts, set_aside_open_ids


class Refused(ValueError):
    pass


def _writer(bad: set[int], log: list[list[int]], stored: list[int]):
    def write(part: list[int]) -> None:
        log.append(part)
        if bad & set(part):
            raise Refused(f"refused {sorted(bad & set(part))}")
        stored.extend(part)

    return write


def test_halving_writes_every_good_row_in_order_and_sets_aside_only_the_bad():
    rows = list(range(1200))
    attempts: list[list[int]] = []
    stored: list[int] = []
    aside: list[tuple[int, str]] = []
    result = batch_write(
        rows,
        write=_writer({7, 612}, attempts, stored),
        set_aside=lambda row, error: aside.append((row, str(error))),
        chunk=500,
    )
    assert (result.written, result.set_aside) == (1198, 2)
    assert stored == [r for r in rows if r not in (7, 612)]
    assert aside == [(7, "refused [7]"), (612, "refused [612]")]
    # Three chunks; each bad one costs two attempts per halving (500 → 1 in 9 steps).
    assert len(attempts) == 3 + 2 * 9 + 2 * 9


def test_an_outage_hands_back_every_row_not_written_and_sets_nothing_aside():
    attempts: list[list[int]] = []

    def write(part: list[int]) -> None:
        attempts.append(part)
        if part[0] >= 4:
            raise InterfaceError("connection already closed")

    with pytest.raises(BatchInterrupted) as stopped:
        batch_write(list(range(10)), write=write, set_aside=pytest.fail, chunk=4)
    assert (stopped.value.written, stopped.value.unwritten) == (4, [4, 5, 6, 7, 8, 9])
    assert isinstance(stopped.value.__cause__, InterfaceError)
    assert attempts == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_a_row_that_cannot_be_kept_either_goes_back_in_line():
    def cannot_keep(row: int, error: Exception) -> None:
        raise RuntimeError("no table")

    with pytest.raises(BatchInterrupted) as stopped:
        batch_write([1, 2, 3], write=_writer({2}, [], []), set_aside=cannot_keep, chunk=3)
    assert (stopped.value.written, stopped.value.unwritten) == (1, [2, 3])


def test_a_set_aside_row_keeps_what_no_column_can_hold(db):
    data = {"sub1": "a\x00b", "sub2": "\ud800", "n": 2**70, "when": object}
    row_set_aside(
        kind=SetAsideKind.CLICK, key="click\x00id", data=data, error=Refused("bad \x00 \udfff")
    )
    kept = SetAside.objects.get()
    assert kept.key == "click\\x00id"
    assert kept.error == "Refused: bad \\x00 \\udfff"
    assert json.loads(kept.data) == {**data, "when": repr(object)}
    assert kept.data.isascii() and "\x00" not in kept.data


def test_the_same_row_failing_again_counts_an_attempt_until_resolved(db):
    for _ in range(2):
        row_set_aside(kind=SetAsideKind.CPC, key="offer:1", data={}, error=Refused("x"))
    row_set_aside(kind=SetAsideKind.CLICK, key="c1", data={}, error=Refused("x"))
    assert SetAside.objects.get(kind="cpc").attempts == 2
    none = dict.fromkeys(SetAsideKind.values, 0)
    assert set_aside_counts() == none | {"click": 1, "cpc": 1}
    assert set_aside_resolve(kind=SetAsideKind.CPC, keys=["offer:1", "offer:2"]) == 1
    assert set_aside_counts() == none | {"click": 1}
    row_set_aside(kind=SetAsideKind.CPC, key="offer:1", data={}, error=Refused("again"))
    assert SetAside.objects.filter(kind="cpc").count() == 2  # a new failure, a new row
    assert set_aside_counts() == none | {"click": 1, "cpc": 1}


def _each(items: list[int], bad: set[int], stored: list[int]):
    write = _writer(bad, [], stored)
    return batch_write_each(
        items,
        write=lambda item: write([item]),
        kind=SetAsideKind.LEAD_HOLD,
        key=lambda item: f"lead:{item}",
        data=lambda item: {"lead_id": item},
    )


def test_each_item_on_its_own_a_failing_one_set_aside_until_written(db):
    stored: list[int] = []
    for _ in range(2):
        result = _each([1, 2, 3], {2}, stored)
        assert (result.written, result.set_aside) == (2, 1)
    assert stored == [1, 3, 1, 3]
    kept = SetAside.objects.get()
    assert (kept.kind, kept.key, kept.attempts, kept.error) == (
        "lead_hold",
        "lead:2",
        2,
        "Refused: refused [2]",
    )
    assert json.loads(kept.data) == {"lead_id": 2}
    assert set_aside_open_ids(kind=SetAsideKind.LEAD_HOLD) == [2]
    assert set_aside_open_ids(kind=SetAsideKind.CONVERSION_HOLD) == []

    result = _each([1, 2, 3], set(), stored)  # fixed
    assert (result.written, result.set_aside) == (3, 0)
    kept.refresh_from_db()
    assert (kept.attempts, kept.resolved_at is not None) == (2, True)
    assert set_aside_open_ids(kind=SetAsideKind.LEAD_HOLD) == []


def test_each_item_on_its_own_an_outage_sets_nothing_aside_and_resolves_nothing(db):
    row_set_aside(kind=SetAsideKind.LEAD_HOLD, key="lead:1", data={}, error=Refused("x"))

    def write(item: int) -> None:
        if item == 2:
            raise InterfaceError("connection already closed")

    with pytest.raises(BatchInterrupted) as stopped:
        batch_write_each(
            [1, 2, 3],
            write=write,
            kind=SetAsideKind.LEAD_HOLD,
            key=lambda item: f"lead:{item}",
            data=pytest.fail,
        )
    assert (stopped.value.written, stopped.value.unwritten) == (1, [2, 3])
    kept = SetAside.objects.get()  # the next run resolves it
    assert (kept.key, kept.attempts, kept.resolved_at) == ("lead:1", 1, None)


def test_open_ids_are_the_trailing_ids_of_open_keys_oldest_first(db):
    for key in ("lead:7", "lead:3", "lead:x", "lead:\u00b2", "lead:5"):
        row_set_aside(kind=SetAsideKind.LEAD_HOLD, key=key, data={}, error=Refused("x"))
    set_aside_resolve(kind=SetAsideKind.LEAD_HOLD, keys=["lead:5"])
    assert set_aside_open_ids(kind=SetAsideKind.LEAD_HOLD) == [7, 3]


def test_staff_see_set_aside_rows_in_the_admin_and_cannot_change_them(network):
    from tests.conftest import logged_in

    row_set_aside(kind=SetAsideKind.CLICK, key="c1", data={"sub1": "\x00"}, error=Refused("x"))
    client = logged_in(network)
    page = client.get("/admin/core/setaside/?resolved_at__isempty=1")
    assert page.status_code == 200
    assert b"c1" in page.content
    kept = SetAside.objects.get()
    assert client.get(f"/admin/core/setaside/{kept.pk}/delete/").status_code == 403
    assert client.get("/admin/core/setaside/add/").status_code == 403
