import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.core.clickid import ClickIdError, click_id_issue, click_id_verify

ids = st.integers(min_value=0, max_value=2**53)


@given(link=ids, offer=ids, affiliate=ids)
def test_a_click_id_carries_link_offer_and_affiliate(link: int, offer: int, affiliate: int) -> None:
    issued = click_id_issue(link_id=link, offer_id=offer, affiliate_id=affiliate)
    back = click_id_verify(issued.click_id)
    assert (back.link_id, back.offer_id, back.affiliate_id) == (link, offer, affiliate)
    assert back.issued_at == issued.issued_at
    assert back.click_id == issued.click_id


def test_click_ids_sort_by_time() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    issued = [
        click_id_issue(
            link_id=5000 - i, offer_id=7, affiliate_id=3, at=start + dt.timedelta(milliseconds=i)
        ).click_id
        for i in range(0, 5000, 7)
    ]
    assert sorted(issued) == issued


def test_two_clicks_in_one_millisecond_differ() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    a = click_id_issue(link_id=1, offer_id=1, affiliate_id=1, at=at)
    b = click_id_issue(link_id=1, offer_id=1, affiliate_id=1, at=at)
    assert a.click_id != b.click_id


@pytest.mark.parametrize("position", [0, 5, 12, 20, -1])
def test_a_changed_character_is_refused(position: int) -> None:
    click_id = click_id_issue(link_id=12, offer_id=34, affiliate_id=56).click_id
    chars = list(click_id)
    chars[position] = "0" if chars[position] != "0" else "1"
    with pytest.raises(ClickIdError):
        click_id_verify("".join(chars))


def test_a_click_id_signed_with_another_key_is_refused(settings) -> None:
    click_id = click_id_issue(link_id=1, offer_id=2, affiliate_id=3).click_id
    settings.SECRET_KEY = "another key entirely, as on a forger's machine"
    with pytest.raises(ClickIdError, match="signature"):
        click_id_verify(click_id)


@pytest.mark.parametrize("junk", ["", "x", "not a click id!", "0" * 81, "u" * 40])
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(ClickIdError):
        click_id_verify(junk)


@given(st.text(max_size=90))
def test_verify_never_raises_anything_but_click_id_error(text: str) -> None:
    with contextlib.suppress(ClickIdError):
        click_id_verify(text)
